"""``convcli upsample``: transposed convolution of images and arrays."""

from __future__ import annotations

import functools
import time
from typing import Any

import click

from ..errors import ParameterError
from ..run.batch import Item
from ..shapes import format_pair
from .batching import execute, gather_sources, load_item, plan_items
from .options import batch_options, figure_options, memory_option, output_options, source_options
from .params import KernelSpecType, PairType
from .reports import Report, clipped_note, mapping_record, pixel_summary
from .streams import max_memory_option, stdout_format, write_result

#: Catalogue kernels whose bare name takes its factor from --stride.
FACTOR_KERNELS = ("bilinear", "nearest")


def _short(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else format_pair(pair)


def resolve_kernel(kernel: Any, stride: tuple[int, int]) -> Any:
    """A bare ``bilinear``/``nearest`` spec gets the stride as its factor; any other kernel is used as given."""
    from ..kernels import parse_kernel_spec

    name = kernel.spec.strip().lower()
    if name in FACTOR_KERNELS:
        return parse_kernel_spec(f"{name}:{_short(stride)}")
    return kernel


def _upsample_array(array: Any, weights: Any, settings: dict[str, Any]) -> Any:

    from ..engine import per_channel
    from ..transpose import conv_transpose2d

    return per_channel(lambda plane: conv_transpose2d(plane, weights, **settings), array)


@click.command("upsample", context_settings={"show_default": True})
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@click.option(
    "-k",
    "--kernel",
    type=KernelSpecType(),
    required=True,
    help="Kernel scattered by every input pixel (not flipped, as torch conv_transpose2d): any spec of "
    "'convcli filter' (name, inline matrix, file). A bare 'bilinear' or 'nearest' takes its factor "
    "from --stride; bilinear:F / nearest:F fix it.",
)
@click.option(
    "-s",
    "--stride",
    type=PairType("stride"),
    default="2",
    help="Spacing of the input pixels in the output (the upsampling factor).",
)
@click.option(
    "-p",
    "--padding",
    type=PairType("padding", minimum=0),
    default="0",
    help="Rows/columns cut from each side of the full result (PyTorch's padding). With -k bilinear, "
    "--padding F//2 gives exactly F times the size.",
)
@click.option(
    "--output-padding",
    type=PairType("output padding", minimum=0),
    default="0",
    help="Rows/columns added at the bottom/right; smaller than the stride or the dilation.",
)
@click.option("-d", "--dilation", type=PairType("dilation"), default="1", help="Spacing between kernel taps.")
@click.option(
    "--output-size",
    type=PairType("output size"),
    default=None,
    metavar="HxW",
    help="Wanted output size: sets the output padding (as PyTorch's output_size); an unreachable size is "
    "an error that lists the reachable ones.",
)
@click.option("--bias", type=float, default=0.0, help="Added to every output value.")
@source_options
@memory_option
@output_options
@batch_options
@figure_options
@click.pass_context
def upsample_command(ctx: click.Context, sources: tuple[str, ...], kernel: Any, **options: Any) -> None:
    """Upsample images (or number grids) by transposed convolution; write the results and print their shapes.

    SOURCE is an image file, an http(s) URL, a .npy/.txt/.csv array (used as
    is) or - for stdin, read as by 'convcli filter'. Every input pixel adds a
    copy of the kernel times its value at stride spacing; values equal
    torch.nn.functional.conv_transpose2d and the output size is
    (n-1)*s - 2p + d*(k-1) + output_padding + 1 (see 'convcli shape').
    Many sources, globs and --from run as a batch, as in 'convcli filter'.

    \b
    Examples:
      convcli upsample samples/camera.png -k bilinear --stride 2 --padding 1
      convcli upsample samples/x.txt -k samples/k.txt --stride 2 -o -
      convcli upsample samples/chelsea.png -k nearest:3 --stride 3 --color
      convcli upsample samples/x.txt -k bilinear --stride 2 --padding 1 --output-size 7x6 -o -
    """
    if options["output_size"] is not None and options["output_padding"] != (0, 0):
        raise ParameterError("--output-size sets the output padding itself; drop --output-padding")
    from ..limits import check_geometry

    check_geometry(stride=options["stride"], padding=options["padding"], dilation=options["dilation"])
    kernel = resolve_kernel(kernel, options["stride"])
    label = f"up{_short(options['stride'])}"
    expanded, batch = gather_sources(sources, options)
    plan = plan_items(expanded, [label], options, batch, one_per_source=True)
    execute(ctx, plan, functools.partial(upsample_item, kernel=kernel, options=options), options)


def upsample_item(item: Item, kernel: Any, options: dict[str, Any]) -> list[Report]:
    """Upsample one source, write the result (and the figure); runs in a worker."""
    from ..transpose import output_padding_for, transpose_geometry

    start = time.perf_counter()
    loaded = load_item(item, options)
    size = (int(loaded.array.shape[0]), int(loaded.array.shape[1]))
    output_padding = options["output_padding"]
    if options["output_size"] is not None:
        output_padding = output_padding_for(
            size,
            kernel.shape,
            options["output_size"],
            stride=options["stride"],
            padding=options["padding"],
            dilation=options["dilation"],
        )
    settings = dict(
        stride=options["stride"],
        padding=options["padding"],
        output_padding=output_padding,
        dilation=options["dilation"],
    )
    geometry = transpose_geometry(size, kernel.shape, **settings)
    from ..limits import check_memory, estimate_transpose

    channels = loaded.array.shape[2] if loaded.array.ndim == 3 else 1
    what = f"upsampling {item.source!r} ({format_pair(size)}) to {format_pair(geometry.output)}"
    check_memory(
        estimate_transpose(size, geometry.output, options["padding"], channels, 8, what), max_memory_option(options)
    )
    result = _upsample_array(loaded.array, kernel.weights, {**settings, "bias": options["bias"]})
    written = write_result(result, item.destinations[0], options, stdout_format(loaded))
    report = _report(loaded, kernel, geometry, result, written, options, time.perf_counter() - start)
    if item.figure is None:
        return [report]
    from ..teach.figures import Row, comparison_figure

    comparison_figure(
        item.figure,
        loaded.array,
        [
            Row(
                kernel.weights,
                f"kernel {kernel.name} {format_pair(kernel.shape)} (scattered)",
                result,
                f"output {format_pair(geometry.output)}",
            )
        ],
        input_title=f"input {format_pair(geometry.input)} ({loaded.detail})",
        title=f"{loaded.source.stem}: transposed convolution, {_details(geometry)}",
        cmap=options["cmap"],
        vmin=options["vmin"],
        vmax=options["vmax"],
        scale=options["scale"],
    )
    report.record["figure"] = item.figure
    return [Report((*report.lines, f"figure -> {item.figure}"), report.record)]


def _details(geometry: Any) -> str:
    return (
        f"stride {format_pair(geometry.stride)}, padding {format_pair(geometry.padding)}, "
        f"output padding {format_pair(geometry.output_padding)}, dilation {format_pair(geometry.dilation)}"
    )


def _report(
    loaded: Any, kernel: Any, geometry: Any, result: Any, written: Any, options: dict[str, Any], seconds: float
) -> Report:
    mapping = written.mapping
    where = "stdout" if written.destination == "-" else written.destination
    record = {
        "source": loaded.source.text,
        "input": list(geometry.input),
        "read_as": loaded.detail,
        "kernel": {"spec": kernel.spec, "name": kernel.name, "shape": list(kernel.shape)},
        "stride": list(geometry.stride),
        "padding": list(geometry.padding),
        "output_padding": list(geometry.output_padding),
        "dilation": list(geometry.dilation),
        "bias": options["bias"],
        "output": list(geometry.output),
        "path": where,
        "format": written.fmt,
        **mapping_record(mapping),
        "seconds": round(seconds, 4),
    }
    pixels = pixel_summary(mapping, options["depth"])
    name = loaded.source.display
    lines = [
        f"{name} ({loaded.detail}) {format_pair(geometry.input)} -> transposed {kernel.name} "
        f"{format_pair(kernel.shape)} ({_details(geometry)}) -> {format_pair(geometry.output)} -> {where}{pixels}"
    ]
    note = clipped_note(mapping, result.size)
    if note:
        lines.append(note)
    return Report(tuple(lines), record)
