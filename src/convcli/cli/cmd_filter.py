"""``convcli filter``: apply kernels to images and arrays."""

from __future__ import annotations

from typing import Any

import click

from ..errors import OutputUsageError
from ..shapes import format_pair
from .common import (
    KernelSpecType,
    check_outputs,
    clipped_note,
    conv_options,
    default_output,
    describe_geometry,
    emit_json,
    load,
    message,
    output_options,
    source_options,
    stdout_format,
    uncovered_note,
    write_result,
)


def _labels(kernels: list[Any], chain: bool) -> list[tuple[str, list[Any]]]:
    """(label, kernels applied) per output; repeated names get a number so outputs never collide."""
    if chain:
        return [("+".join(k.name for k in kernels), list(kernels))]
    names = [k.name for k in kernels]
    labels = []
    for index, kernel in enumerate(kernels):
        name = kernel.name
        if names.count(name) > 1:
            name = f"{name}{names[: index + 1].count(name)}"
        labels.append((name, [kernel]))
    return labels


def _filter_array(array: Any, kernels: list[Any], options: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Apply the kernels one after another; returns the result and each step's plan."""
    import numpy as np

    from ..engine import correlate2d, plan_correlation

    plans = []
    result = array
    for kernel in kernels:
        weights = kernel.weights[::-1, ::-1] if options["convolve"] else kernel.weights
        plan = plan_correlation(
            (result.shape[0], result.shape[1]),
            weights,
            stride=options["stride"],
            padding=options["padding"],
            dilation=options["dilation"],
            method=options["method"],
            dtype=result.dtype,
        )
        plans.append(plan)
        settings = dict(
            stride=options["stride"],
            padding=options["padding"],
            dilation=options["dilation"],
            pad_mode=options["pad_mode"],
            pad_value=options["pad_value"],
            bias=options["bias"],
            method=plan.method,
        )
        if result.ndim == 3:
            result = np.stack(
                [correlate2d(result[:, :, c], weights, **settings) for c in range(result.shape[2])], axis=2
            )
        else:
            result = correlate2d(result, weights, **settings)
    return result, plans


def _cast(array: Any, precision: str) -> Any:
    import numpy as np

    if precision == "float32":
        return array.astype(np.float32, copy=False)
    if precision == "float64":
        return array.astype(np.float64, copy=False)
    return array


@click.command("filter", context_settings={"show_default": True})
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "-k",
    "--kernel",
    "kernels",
    type=KernelSpecType(),
    multiple=True,
    required=True,
    help="Kernel: a name (convcli kernels), an inline matrix '0 1; 2 3', an ImageMagick string "
    "'3x3: ...', or a file (.txt/.csv/.npy). Repeat for one output per kernel.",
)
@click.option("--chain", is_flag=True, help="Apply the -k kernels one after another (blur, then edges): one output.")
@conv_options
@source_options
@output_options
@click.option("-v", "--verbose", is_flag=True, help="Also say which algorithm ran and why.")
def filter_command(sources: tuple[str, ...], kernels: tuple[Any, ...], chain: bool, **options: Any) -> None:
    """Filter images (or number grids) with kernels; write the results and print their shapes.

    SOURCE is an image file (PNG, JPEG, BMP, GIF, TIFF, WebP), an http(s) URL,
    a .npy/.txt/.csv array (used as is), or - for stdin. Images become gray
    values in [0, 1] (see --gray, --normalize). The kernel is applied by
    cross-correlation (not flipped, as torch conv2d) unless --convolve.

    \b
    Examples:
      convcli filter samples/chelsea.png -k vertical
      convcli filter samples/x.txt -k "0 1; 2 3" -o -
      convcli filter samples/coffee.png -k blur:5 -k sobel-x --chain --padding same
      cat samples/camera.png | convcli filter - -k gaussian:7 -o - | convcli filter - -k vertical -o edges.png
    """
    outputs = _labels(list(kernels), chain)
    destination = options["output"]
    if destination is not None and len(sources) * len(outputs) > 1:
        raise OutputUsageError(
            f"-o names one output but this run makes {len(sources) * len(outputs)}; drop -o to get "
            "<stem>-<kernel>.png names, or use --chain to apply the kernels in sequence"
        )
    if destination == "-" and options["as_json"]:
        raise OutputUsageError("-o - and --json both write to stdout; choose one")
    if destination is not None:
        check_outputs([destination], list(sources))
    quiet = options["quiet"] or options["as_json"]
    for source in sources:
        loaded = load(source, options)
        array = _cast(loaded.array, options["precision"])
        destinations = [destination or default_output(loaded, label, options["output_format"]) for label, _ in outputs]
        check_outputs(destinations, list(sources))
        for (_label, applied), target in zip(outputs, destinations):
            result, plans = _filter_array(array, applied, options)
            written = write_result(result, target, options, stdout_format(loaded))
            _report(loaded, applied, plans, result, written, options, quiet)


def _report(
    loaded: Any, applied: list[Any], plans: list[Any], result: Any, written: Any, options: dict[str, Any], quiet: bool
) -> None:
    mapping = written.mapping
    out_shape = (int(result.shape[0]), int(result.shape[1]))
    where = "stdout" if written.destination == "-" else written.destination
    if options["as_json"]:
        emit_json(
            {
                "source": loaded.source.text,
                "input": [int(loaded.array.shape[0]), int(loaded.array.shape[1])],
                "read_as": loaded.detail,
                "kernels": [
                    {"spec": k.spec, "name": k.name, "shape": list(k.shape), "method": p.method}
                    for k, p in zip(applied, plans)
                ],
                "convolve": options["convolve"],
                "stride": list(plans[0].geometry.stride),
                "padding": [list(p) for p in plans[0].geometry.padding],
                "dilation": list(plans[0].geometry.dilation),
                "pad_mode": options["pad_mode"],
                "output": list(out_shape),
                "path": where,
                "format": written.fmt,
                "scale": None if mapping is None else {"mode": mapping.scale, "low": mapping.low, "high": mapping.high},
                "clipped": 0 if mapping is None else mapping.clipped,
            }
        )
        return
    steps = " -> ".join(
        f"{k.name} {format_pair(k.shape)}{' flipped' if options['convolve'] else ''} ({describe_geometry(p.geometry)})"
        f" -> {format_pair(p.geometry.output)}"
        for k, p in zip(applied, plans)
    )
    pixels = ""
    if mapping is not None:
        pixels = f" [{mapping.low:.4g}, {mapping.high:.4g}] -> 0..{(1 << int(options['depth'])) - 1} ({mapping.scale})"
    message(
        f"{loaded.source.text if loaded.source.kind != 'stdin' else 'stdin'} ({loaded.detail}) * {steps} -> {where}{pixels}",
        quiet,
    )
    for plan in plans:
        note = uncovered_note(plan.geometry)
        if note:
            message(note, quiet)
        if options["verbose"]:
            message(f"method: {plan.method} ({plan.reason})", quiet)
    note = clipped_note(mapping, result.size)
    if note:
        message(note, quiet)
