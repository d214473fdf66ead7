"""Option bundles shared by several commands, each defined once as a decorator.

What the options' values are parsed into is :mod:`convcli.cli.params`; the typed
records a command builds from them once are :mod:`convcli.cli.option_records`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .params import (
    ColormapType,
    FiniteFloat,
    FiniteFloatRange,
    OriginType,
    PaddingType,
    PadModeType,
    PairType,
    ScaleType,
    check_tile_option,
)

F = TypeVar("F", bound=Callable[..., Any])


def _apply(options: list[Callable[[F], F]], function: F) -> F:
    for option in reversed(options):
        function = option(function)
    return function


# ---------------------------------------------------------------------------
# Option bundles


def source_options(function: F) -> F:
    """How sources are read: gray conversion, scaling, colour, frame, URL limits."""
    return _apply(
        [
            click.option(
                "--gray",
                type=click.Choice(["luma", "mean"]),
                default="luma",
                help="Colour to gray: luma = ITU-R BT.601 (0.299 R + 0.587 G + 0.114 B, as Pillow's 'L'; colour "
                "JPEG: the file's own Y channel, within 1/255 of the luma of its decoded RGB except where decoding "
                "clips a saturated colour), mean = the channel mean. Alpha is dropped.",
            ),
            click.option(
                "--normalize",
                "normalize_method",
                type=click.Choice(["dtype", "max", "none"]),
                default="dtype",
                help="Pixel scaling: dtype = divide by the pixel type's white (255, 65535) to get [0, 1]; "
                "max = divide by the image's own maximum; none = raw pixel values. "
                "Raw arrays (.npy/.txt/.csv) are never scaled.",
            ),
            click.option("--color", is_flag=True, help="Keep RGB and filter each channel separately."),
            click.option(
                "--frame",
                type=click.IntRange(min=0),
                default=0,
                help="Frame of an animated GIF or multi-page TIFF to read.",
            ),
            click.option(
                "--timeout",
                type=FiniteFloatRange(min=0.1),
                default=30.0,
                help="Seconds to wait for a URL (each network wait and the whole download).",
            ),
            click.option(
                "--orient/--no-orient",
                default=True,
                help="Turn photos upright by their EXIF orientation, as viewers show them; --no-orient keeps the "
                "pixels as stored (a phone photo may then lie on its side).",
            ),
            click.option(
                "--max-download",
                type=click.IntRange(min=1),
                default=256,
                metavar="MIB",
                help="Largest download accepted from a URL, in MiB.",
            ),
        ],
        limit_options(function),
    )


CONVOLVE_HELP = (
    "Flip the kernel 180 degrees (true convolution, as scipy.signal.convolve2d) or not "
    "(cross-correlation, as torch conv2d)."
)


PADDING_HELP = (
    "Rows/columns added on each side: N, HxW, or four sides TOP,BOTTOM,LEFT,RIGHT (e.g. 0,1,0,1; "
    "torch:LEFT,RIGHT,TOP,BOTTOM is F.pad's order); 'same' keeps the size (stride 1; an odd extra goes "
    "bottom/right as PyTorch), 'valid' is 0."
)


def placement_options(function: F) -> F:
    """--origin and --same-extra: where the window sits over each output pixel (filter)."""
    return _apply(
        [
            click.option(
                "--origin",
                type=OriginType(),
                default="0,0",
                help="Move the window Y rows up and X columns left of each output pixel (SciPy ndimage's origin; "
                "negative: down/right): one row of padding moves from the bottom to the top per step, the size "
                "stays. Range per axis: -TOP..BOTTOM of the padding (with --padding same --same-extra top-left: "
                "-(k//2)..(k-1)//2, as SciPy).",
            ),
            click.option(
                "--same-extra",
                type=click.Choice(["bottom-right", "top-left"]),
                default=None,
                show_default="bottom-right, as PyTorch",
                help="With --padding same and an even kernel: the side that gets the extra row/column; top-left "
                "is SciPy ndimage's, ImageMagick's and libvips' placement (kernel centre at k//2).",
            ),
        ],
        function,
    )


def geometry_options(convolve_help: str = CONVOLVE_HELP) -> Callable[[F], F]:
    """Stride, padding, dilation, borders and flip: how a kernel meets the input (filter, explain, learn)."""

    def decorator(function: F) -> F:
        return _apply(
            [
                click.option("-s", "--stride", type=PairType("stride"), default="1", help="Step between windows."),
                click.option(
                    "-p",
                    "--padding",
                    type=PaddingType(),
                    default="0",
                    help=PADDING_HELP,
                ),
                click.option(
                    "-d", "--dilation", type=PairType("dilation"), default="1", help="Spacing between kernel taps."
                ),
                click.option(
                    "--pad-mode",
                    type=PadModeType(),
                    default="zeros",
                    help="Border values: zeros, constant (--pad-value), reflect (edge not repeated), "
                    "symmetric (edge repeated), replicate, circular; aliases in the README.",
                ),
                click.option(
                    "--pad-value", type=FiniteFloat(), default=0.0, help="Fill value for --pad-mode constant."
                ),
                click.option("--convolve/--correlate", default=False, help=convolve_help),
            ],
            function,
        )

    return decorator


def conv_options(function: F) -> F:
    """The geometry options plus bias, method and precision (filter)."""
    function = _apply(
        [
            click.option("--bias", type=FiniteFloat(), default=0.0, help="Added to every output value."),
            click.option(
                "--method",
                type=click.Choice(["auto", "direct", "separable", "fft", "box"]),
                default="auto",
                help="Algorithm; all give the same numbers to rounding.",
            ),
            click.option(
                "--precision",
                type=click.Choice(["auto", "float32", "float64"]),
                default="auto",
                help="Arithmetic: auto = float32 for images, the array's own float type (float64 for "
                "text) for raw arrays.",
            ),
        ],
        function,
    )
    return geometry_options()(placement_options(function))


def output_options(function: F) -> F:
    """Where and how results are written."""
    return _apply(
        [
            click.option(
                "-o",
                "--output",
                metavar="PATH|-",
                help="Output file (format from the extension) or - for stdout. "
                "Default: <stem>-<kernel>.png in the current folder (.npy/.txt/.csv sources keep "
                "their extension).",
            ),
            click.option(
                "--format",
                "output_format",
                metavar="FORMAT",
                type=click.Choice(["png", "jpeg", "bmp", "webp", "gif", "tiff", "npy", "txt", "csv"]),
                help="Output format, overriding the extension (with -o -: default png).",
            ),
            click.option(
                "--scale",
                type=ScaleType(),
                default="auto",
                help="Floats to pixels: clip = [vmin, vmax] (default [0, 1]) to black..white; minmax = the "
                "output's min..max; abs = 0..max|v|; percentile[:P] (P = 99.5) = robust ends, the most extreme "
                "(100 - P)% saturate, a signed edge map symmetric about 0 (mid-grey); auto = clip when values lie "
                "in [0, 1] or --vmin/--vmax is given, percentile:99.5 for a signed edge map, else minmax.",
            ),
            click.option("--vmin", type=FiniteFloat(), help="Value shown black (fixes the low end of any --scale)."),
            click.option("--vmax", type=FiniteFloat(), help="Value shown white (fixes the high end of any --scale)."),
            click.option(
                "--compression",
                type=click.IntRange(0, 9),
                default=1,
                help="PNG zlib level: 1 is fast, 9 smallest; PNG is lossless at every level.",
            ),
            click.option(
                "--depth",
                type=click.Choice(["8", "16"]),
                default="8",
                help="Bits per pixel for image outputs (16 needs PNG).",
            ),
            click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="Print one JSON object per output on stdout instead of the summary on stderr.",
            ),
            click.option("-q", "--quiet", is_flag=True, help="No summary lines on stderr (errors still show)."),
        ],
        function,
    )


def limit_options(function: F) -> F:
    """The pixel limit checked from each source's header."""
    from ..limits import DEFAULT_MAX_PIXELS

    return click.option(
        "--max-pixels",
        type=click.IntRange(min=0),
        metavar="N",
        default=DEFAULT_MAX_PIXELS,
        help="Refuse images and arrays with more pixels (read from the header, before decoding; "
        "twice Pillow's decompression-bomb limit). 0 = no limit.",
    )(function)


def memory_option(function: F) -> F:
    """``--max-memory``: the budget checked against the operation's estimate before allocating."""
    return click.option(
        "--max-memory",
        type=click.IntRange(min=1),
        default=None,
        metavar="MIB",
        help="Memory the operation may use, in MiB, checked before allocating.  [default: the memory "
        "available, from /proc/meminfo]",
    )(function)


def batch_options(function: F) -> F:
    """Many sources: --from, --outdir, --name, --jobs, --fail-fast."""
    return _apply(
        [
            click.option(
                "--recursive",
                is_flag=True,
                help="A folder SOURCE also lists its subfolders (each output keeps its subfolder under --outdir). "
                "A folder gives its images (.png .jpg .jpeg .bmp .gif .tif .tiff .webp, sorted; hidden files skipped).",
            ),
            click.option(
                "--from",
                "from_file",
                metavar="FILE|-",
                help="Read more sources from FILE (- for stdin), one per line; blank and # lines are skipped.",
            ),
            click.option(
                "--outdir",
                metavar="DIR",
                help="Write the outputs into DIR (created if missing), named by --name.",
            ),
            click.option(
                "--name",
                "name_template",
                metavar="TEMPLATE",
                help="Output file name from the fields {stem} (source name without extension), {kernel} "
                "(kernel or operation label), {ext} (the default extension) and {index} (source number from 1, "
                "{index:03d} pads it). Default: {stem}-{kernel}.{ext}.",
            ),
            click.option(
                "-j",
                "--jobs",
                type=click.IntRange(min=1),
                default=None,
                show_default="one per core",
                help="Sources processed at once, each in its own process; the outputs are the same as with --jobs 1.",
            ),
            click.option(
                "--fail-fast",
                is_flag=True,
                help="Stop at the first source that fails (by default the others still run; the exit code is 1).",
            ),
            click.option(
                "--scheduler",
                metavar="ADDRESS",
                help="Run the sources on a Dask cluster (pip install 'convcli[dask]'): tcp://HOST:8786 connects to a "
                "running scheduler, local or local:N starts N workers on 127.0.0.1 for this run. Workers read the "
                "sources and write the outputs themselves: they need the same files (a shared file system). The "
                "outputs and reports are those of --jobs 1. One source that streams (--stream) is split: its row "
                "strips are computed on the workers and written here.",
            ),
            click.option(
                "--scheduler-timeout",
                type=click.FloatRange(min=0.5, max=600),
                default=10.0,
                metavar="SECONDS",
                help="How long to try reaching the --scheduler before giving up (exit 1).",
            ),
        ],
        function,
    )


def figure_options(function: F) -> F:
    """--figure and --cmap."""
    return _apply(
        [
            click.option(
                "--figure",
                metavar="FILE",
                help="Also draw input | kernel | output side by side (.png, .svg or .pdf; needs matplotlib), one "
                "row per kernel. With several sources use {stem} or {index} in the name.",
            ),
            click.option(
                "--cmap",
                type=ColormapType(),
                metavar="NAME",
                help="matplotlib colour map of the figure's outputs. Default: gray for values of one sign, RdBu_r "
                "centred on 0 for signed values.",
            ),
        ],
        function,
    )


def stream_options(function: F) -> F:
    """``--stream/--no-stream`` and the strip height: huge images in bounded memory (filter)."""
    return _apply(
        [
            click.option(
                "--stream/--no-stream",
                default=None,
                show_default="stream when the in-memory run would not fit --max-memory",
                help="Read, compute and write in row strips (TIFF, PNG, .npy and .zarr outputs; the numbers of the "
                "in-memory run); --no-stream never does.",
            ),
            click.option(
                "--strip-rows",
                type=click.IntRange(min=1),
                default=None,
                hidden=True,
                help="Output rows computed at a time by each step of a streamed run (default: from the memory budget).",
            ),
            click.option(
                "--tile",
                type=click.IntRange(min=0),
                default=256,
                show_default=True,
                callback=check_tile_option,
                help="Tile side of a streamed TIFF output and chunk side of a Zarr one (a multiple of 16; BigTIFF "
                "above 4 GiB); 0 writes a TIFF in strips, byte for byte the in-memory file.",
            ),
        ],
        function,
    )
