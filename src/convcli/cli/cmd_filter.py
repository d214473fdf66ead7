"""``convcli filter``: apply kernels to images and arrays."""

from __future__ import annotations

import functools
import time
from typing import Any

import click

from ..run.batch import Item
from ..shapes import format_pair
from .batching import execute, gather_sources, load_item, plan_items
from .options import batch_options, conv_options, figure_options, memory_option, output_options, source_options
from .params import KernelSpecType
from .reports import Report, clipped_note, describe_geometry, mapping_record, pixel_summary, uncovered_note
from .streams import max_memory_option, stdout_format, write_result


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

    from ..engine import correlate2d, per_channel, plan_correlation

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
        result = per_channel(functools.partial(correlate2d, kernel=weights, **settings), result)
    return result, plans


def _memory_guard(source: str, outputs: list[tuple[str, list[Any]]], options: dict[str, Any]) -> Any:
    """A check run from the source's header: refuse the run when its largest output would not fit in memory."""

    def check(height: int, width: int, channels: int, decoded_bytes_per_pixel: int) -> None:
        from ..engine import plan_correlation
        from ..limits import check_memory, estimate_filter

        color = options["color"] and channels >= 3
        image = decoded_bytes_per_pixel > 0
        itemsize = 8 if options["precision"] == "float64" or (not image and options["precision"] == "auto") else 4
        for _label, applied in outputs:
            steps = []
            size = (height, width)
            for kernel in applied:
                plan = plan_correlation(
                    size,
                    kernel.weights,
                    stride=options["stride"],
                    padding=options["padding"],
                    dilation=options["dilation"],
                    method=options["method"],
                )
                steps.append((kernel.shape, plan.method))
                size = plan.geometry.output
            what = f"filtering {source!r} ({height}x{width}) with {'+'.join(k.name for k in applied)}"
            estimate = estimate_filter(
                (height, width),
                3 if color else 1,
                steps,
                stride=options["stride"],
                padding=options["padding"],
                dilation=options["dilation"],
                itemsize=itemsize,
                decoded_bytes_per_pixel=decoded_bytes_per_pixel,
                what=what,
            )
            check_memory(estimate, max_memory_option(options))

    return check


def _cast(array: Any, precision: str) -> Any:
    import numpy as np

    if precision == "float32":
        return array.astype(np.float32, copy=False)
    if precision == "float64":
        return array.astype(np.float64, copy=False)
    return array


@click.command("filter", context_settings={"show_default": True})
@click.argument("sources", nargs=-1, metavar="SOURCE...")
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
@memory_option
@output_options
@batch_options
@figure_options
@click.option("-v", "--verbose", is_flag=True, help="Also say which algorithm ran and why.")
@click.pass_context
def filter_command(
    ctx: click.Context, sources: tuple[str, ...], kernels: tuple[Any, ...], chain: bool, **options: Any
) -> None:
    """Filter images (or number grids) with kernels; write the results and print their shapes.

    SOURCE is an image file (PNG, JPEG, BMP, GIF, TIFF, WebP), an http(s) URL,
    a .npy/.txt/.csv array (used as is), or - for stdin. Images become gray
    values in [0, 1] (see --gray, --normalize). The kernel is applied by
    cross-correlation (not flipped, as torch conv2d) unless --convolve.

    Many sources (quoted globs such as 'photos/**/*.png' are expanded by
    convcli, --from lists more) run as a batch: --outdir/--name place the
    outputs, --jobs runs them in parallel, a failing source is reported and
    the others still run (exit 1), and a summary line ends the run.

    \b
    Examples:
      convcli filter samples/chelsea.png -k vertical
      convcli filter samples/x.txt -k "0 1; 2 3" -o -
      convcli filter 'samples/*.png' -k vertical -k horizontal --outdir out/ --figure 'out/{stem}.fig.png'
      cat samples/camera.png | convcli filter - -k gaussian:7 -o - | convcli filter - -k vertical -o e.png
    """
    from ..limits import check_geometry

    check_geometry(stride=options["stride"], padding=options["padding"], dilation=options["dilation"])
    outputs = _labels(list(kernels), chain)
    expanded, batch = gather_sources(sources, options)
    plan = plan_items(expanded, [label for label, _ in outputs], options, batch)
    execute(ctx, plan, functools.partial(filter_item, outputs=outputs, options=options), options)


def filter_item(item: Item, outputs: list[tuple[str, list[Any]]], options: dict[str, Any]) -> list[Report]:
    """Filter one source with every output's kernels, write the results (and the figure); runs in a worker."""
    loaded = load_item(item, options, on_size=_memory_guard(item.source, outputs, options))
    array = _cast(loaded.array, options["precision"])
    reports = []
    rows = []
    geometry = None
    for (_label, applied), target in zip(outputs, item.destinations):
        start = time.perf_counter()
        result, plans = _filter_array(array, applied, options)
        written = write_result(result, target, options, stdout_format(loaded))
        reports.append(_report(loaded, applied, plans, result, written, options, time.perf_counter() - start))
        geometry = geometry or plans[0].geometry
        if item.figure is not None:
            rows.append(_figure_row(applied, result, options))
    if item.figure is not None:
        from ..teach.figures import comparison_figure

        comparison_figure(
            item.figure,
            loaded.array,
            rows,
            input_title=f"input {format_pair(loaded.array.shape[:2])} ({loaded.detail})",
            title=f"{loaded.source.stem}: {describe_geometry(geometry)}"
            + (", convolution (kernel flipped)" if options["convolve"] else ", correlation")
            + (f", pad mode {options['pad_mode']}" if options["pad_mode"] != "zeros" else ""),
            cmap=options["cmap"],
            vmin=options["vmin"],
            vmax=options["vmax"],
            scale=options["scale"],
        )
        reports[-1] = Report((*reports[-1].lines, f"figure -> {item.figure}"), reports[-1].record)
        for report in reports:
            report.record["figure"] = item.figure
    return reports


def _figure_row(applied: list[Any], result: Any, options: dict[str, Any]) -> Any:
    from ..teach.figures import Row

    kernel = applied[-1]
    weights = kernel.weights[::-1, ::-1] if options["convolve"] else kernel.weights
    name = " then ".join(k.name for k in applied)
    flipped = " flipped" if options["convolve"] else ""
    return Row(
        weights,
        f"kernel {name} {format_pair(kernel.shape)}{flipped}",
        result,
        f"output {format_pair(result.shape[:2])}",
    )


def _report(
    loaded: Any,
    applied: list[Any],
    plans: list[Any],
    result: Any,
    written: Any,
    options: dict[str, Any],
    seconds: float,
) -> Report:
    mapping = written.mapping
    out_shape = (int(result.shape[0]), int(result.shape[1]))
    where = "stdout" if written.destination == "-" else written.destination
    record = {
        "source": loaded.source.text,
        "input": [int(loaded.array.shape[0]), int(loaded.array.shape[1])],
        "read_as": loaded.detail,
        "kernels": [
            {"spec": k.spec, "name": k.name, "shape": list(k.shape), "method": p.method} for k, p in zip(applied, plans)
        ],
        "convolve": options["convolve"],
        "stride": list(plans[0].geometry.stride),
        "padding": [list(p) for p in plans[0].geometry.padding],
        "dilation": list(plans[0].geometry.dilation),
        "pad_mode": options["pad_mode"],
        "output": list(out_shape),
        "path": where,
        "format": written.fmt,
        **mapping_record(mapping),
        "seconds": round(seconds, 4),
    }
    steps = " -> ".join(
        f"{k.name} {format_pair(k.shape)}{' flipped' if options['convolve'] else ''} ({describe_geometry(p.geometry)})"
        f" -> {format_pair(p.geometry.output)}"
        for k, p in zip(applied, plans)
    )
    pixels = pixel_summary(mapping, options["depth"])
    name = loaded.source.display
    lines = [f"{name} ({loaded.detail}) * {steps} -> {where}{pixels}"]
    for plan in plans:
        note = uncovered_note(plan.geometry)
        if note:
            lines.append(note)
        if options["verbose"]:
            lines.append(f"method: {plan.method} ({plan.reason})")
    note = clipped_note(mapping, result.size)
    if note:
        lines.append(note)
    return Report(tuple(lines), record)
