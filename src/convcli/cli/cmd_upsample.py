"""``convcli upsample``: transposed convolution of images and arrays (a thin client of :func:`convcli.api.arrays.upsample_array`)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ..api.settings import UpsampleSettings
from ..run.batch import Item
from ..shapes import format_pair
from .batching import run_command, short_pair
from .params import FiniteFloat, KernelSpecType, PaddingType, PairType
from .reports import Report, output_report, size_record, with_figure
from .sections import SectionedCommand
from .streaming import ImageOptions, guarded, image_fields, image_options, load_or_stream, stream_item
from .streams import stdout_format, write_result

if TYPE_CHECKING:
    from ..kernels import Kernel


@dataclass(frozen=True)
class UpsampleOptions(ImageOptions):
    """``convcli upsample``'s options, built once from the command line (picklable: batch workers get a copy)."""

    settings: UpsampleSettings
    kernel: Kernel


@click.command("upsample", cls=SectionedCommand, context_settings={"show_default": True})
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
    type=PaddingType(named=False),
    default=None,
    show_default="chosen for bilinear/nearest (exactly stride times the size), else 0",
    help="Rows/columns cut from each side of the full result (PyTorch's padding): N, HxW, or four sides "
    "TOP,BOTTOM,LEFT,RIGHT (torch:LEFT,RIGHT,TOP,BOTTOM in F.pad's order), each cut by its own amount (the "
    "adjoint of a convolution padded so). Without it a named kernel (bilinear, nearest) gets the padding that "
    "makes exactly stride times the size, printed on stderr; any other kernel gets 0.",
)
@click.option(
    "--output-padding",
    type=PairType("output padding", minimum=0),
    default="0",
    help="Rows/columns added at the bottom/right; smaller than the stride or the dilation (with --padding).",
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
@click.option("--bias", type=FiniteFloat(), default=0.0, help="Added to every output value.")
@image_options
@click.pass_context
def upsample_command(ctx: click.Context, sources: tuple[str, ...], kernel: Kernel, **options: Any) -> None:
    """Upsample images (or number grids) by transposed convolution; write the results and print their shapes.

    SOURCE is an image file, an http(s) URL, a .npy/.txt/.csv array (used as
    is) or - for stdin, read as by 'convcli filter'. Every input pixel adds a
    copy of the kernel times its value at stride spacing; values equal
    torch.nn.functional.conv_transpose2d and the output size is
    (n-1)*s - 2p + d*(k-1) + output_padding + 1 (see 'convcli shape').
    Many sources, globs and --from run as a batch, as in 'convcli filter'.

    With -k bilinear or nearest and no --padding, the padding is chosen so the
    output is exactly stride times the input (512 -> 1024 at stride 2) and
    said on stderr; --padding keeps PyTorch's meaning (--padding 0: 2n + 2).

    \b
    Examples:
      convcli upsample samples/camera.png -k bilinear --stride 2
      convcli upsample samples/x.txt -k samples/k.txt --stride 2 -o -
      convcli upsample samples/chelsea.png -k nearest:3 --stride 3 --color
      convcli upsample samples/x.txt -k bilinear --stride 2 --padding 1 --output-size 7x6 -o -
    """
    from ..api.checks import upsample_settings
    from ..api.upsampling import upsample_padding, upsampling_kernel
    from ..errors import ParameterError

    if options["output_size"] is not None and options["output_padding"] != (0, 0):
        raise ParameterError("--output-size sets the output padding itself; drop --output-padding")
    settings = upsample_settings(
        stride=options["stride"],
        padding=options["padding"],
        output_padding=options["output_padding"],
        dilation=options["dilation"],
        output_size=options["output_size"],
        bias=options["bias"],
    )
    record = UpsampleOptions(
        settings=settings,
        kernel=upsampling_kernel(kernel, settings.stride),
        **image_fields(options),
    )
    upsample_padding(record.kernel, settings)  # an --output-padding that needs --padding: exit 2 before any work
    label = f"up{short_pair(settings.stride)}"
    worker = functools.partial(upsample_item, options=record)
    run_command(ctx, sources, [label], worker, record.run, one_per_source=True)


def upsample_item(item: Item, options: UpsampleOptions) -> list[Report]:
    """Upsample one source, write the result (and the figure); runs in a worker."""
    from ..api.arrays import upsample_array
    from ..api.upsampling import upsample_geometry
    from ..limits import check_memory

    start = time.perf_counter()
    loaded = load_or_stream(item, options, _memory_guard(item, options))
    if loaded is None:
        return _stream_item(item, options)
    kernel = options.kernel
    size = (int(loaded.array.shape[0]), int(loaded.array.shape[1]))
    geometry = upsample_geometry(size, kernel, options.settings)
    channels = loaded.array.shape[2] if loaded.array.ndim == 3 else 1
    check_memory(_estimate(item, size, geometry, channels), options.max_memory)  # sources read without a header
    result, geometry = upsample_array(loaded.array, kernel, options.settings)
    written = write_result(result, item.destinations[0], options.run.write, stdout_format(loaded))
    report = _report(loaded, kernel, geometry, result, written, options, time.perf_counter() - start, _chosen(options))
    if item.figure is not None:
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
            input_title=f"input {format_pair(geometry.input)} (HxW, {loaded.detail})",
            title=f"{loaded.source.stem}: transposed convolution, {_details(geometry)}",
            cmap=options.run.cmap,
            vmin=options.run.write.vmin,
            vmax=options.run.write.vmax,
            scale=options.run.write.scale,
        )
    return with_figure([report], item.figure)


def _estimate(item: Item, size: tuple[int, int], geometry: Any, channels: int) -> Any:
    """The in-memory upsampling's peak memory (float64 planes, the full scatter before its cut)."""
    from ..limits import estimate_transpose

    what = f"upsampling {item.source!r} ({format_pair(size)}) to {format_pair(geometry.output)}"
    cut = (max(geometry.sides[0]), max(geometry.sides[1]))
    return estimate_transpose(size, geometry.output, cut, channels, 8, what)


def _memory_guard(item: Item, options: UpsampleOptions) -> Any:
    """A check run from the source's header: refuse the in-memory upsampling when it would not fit the budget."""

    def check(height: int, width: int, channels: int, decoded_bytes_per_pixel: int) -> None:
        from ..api.upsampling import upsample_geometry

        geometry = upsample_geometry((height, width), options.kernel, options.settings)
        planes = 3 if options.read.color and channels >= 3 else 1
        estimate = _estimate(item, (height, width), geometry, planes)
        guarded(estimate, item, height * width, decoded_bytes_per_pixel, options.max_memory)

    return check


def _stream_item(item: Item, options: UpsampleOptions) -> list[Report]:
    """Upsample one source strip by strip into its output (TIFF, PNG, npy, Zarr): the bytes the in-memory run writes.

    With ``--scheduler`` (one source), the strips are computed on the Dask workers.
    """
    from ..api.upsampling import upsample_geometry
    from ..run.stream_upsample import stream_upsample

    def report(loaded: Any, result: Any, written: Any, done: Any, seconds: float) -> Report:
        geometry = upsample_geometry(done.input_size, options.kernel, options.settings)
        return _report(loaded, options.kernel, geometry, result, written, options, seconds, _chosen(options))

    operands = (options.kernel, options.settings)
    return [stream_item(item, item.destinations[0], options, stream_upsample, operands, report)]


def _chosen(options: UpsampleOptions) -> str | None:
    """The note saying which padding was chosen for a named kernel given no --padding (issue 18); None when it is 0."""
    from ..api.upsampling import is_factor_kernel, upsample_padding
    from ..shapes import format_padding

    settings, kernel = options.settings, options.kernel
    if settings.padding != "auto" or not is_factor_kernel(kernel):
        return None
    padding, extra = upsample_padding(kernel, settings)
    if padding == (0, 0) and extra == (0, 0):  # PyTorch's own default already does it (nearest): nothing to say
        return None
    added = f", output padding {format_pair(extra)}" if extra != (0, 0) else ""
    factor = short_pair(settings.stride)
    sized = "the --output-size" if settings.output_size is not None else f"exactly {factor} times the input size"
    return (
        f"-k {kernel.spec} at stride {factor} with no --padding: padding {format_padding(padding)}{added} chosen, "
        f"making {sized} (--padding sets it, with PyTorch's meaning)"
    )


def _details(geometry: Any) -> str:
    return (
        f"stride {format_pair(geometry.stride)}, padding {geometry.padding_text()}, "
        f"output padding {format_pair(geometry.output_padding)}, dilation {format_pair(geometry.dilation)}"
    )


def _report(
    loaded: Any,
    kernel: Kernel,
    geometry: Any,
    result: Any,
    written: Any,
    options: UpsampleOptions,
    seconds: float,
    chosen: str | None = None,
) -> Report:
    from ..api.upsampling import is_factor_kernel

    return output_report(
        loaded,
        result,
        written,
        seconds,
        operation=f"-> transposed {kernel.name} {format_pair(kernel.shape)} "
        f"({_details(geometry)}) -> {format_pair(geometry.output)}",
        fields={
            "kernel": {"spec": kernel.spec, "name": kernel.name, "shape": size_record(kernel.shape)},
            "stride": list(geometry.stride),
            "padding": list(geometry.padding),
            "padding_sides": [list(side) for side in geometry.sides],
            "output_padding": list(geometry.output_padding),
            "dilation": list(geometry.dilation),
            "bias": options.settings.bias,
            "padding_chosen": options.settings.padding == "auto" and is_factor_kernel(kernel),
        },
        notes=[chosen],
        depth=options.run.write.depth,
    )
