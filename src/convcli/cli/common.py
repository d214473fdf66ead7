"""Parameter types, option bundles and the read/write steps shared by the commands.

Nothing here imports NumPy or the image stack at import time: they are
imported when a command runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import ConvcliError, OutputUsageError, ParameterError
from ..shapes import Pair, format_pair, parse_pair

F = TypeVar("F", bound=Callable[..., Any])

RAW_OUTPUT_SUFFIXES = (".npy", ".txt", ".csv", ".tif", ".tiff")


# ---------------------------------------------------------------------------
# Parameter types


class PairType(click.ParamType):
    """``N`` or ``HxW`` (rows x columns)."""

    name = "N|HxW"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:  # type: ignore[override]
        return self.name  # click would upper-case it to N|HXW

    def __init__(self, what: str, minimum: int = 1) -> None:
        self.what = what
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Pair:
        if isinstance(value, tuple):
            return value  # type: ignore[return-value]
        try:
            return parse_pair(value, self.what, self.minimum)
        except ParameterError as exc:
            self.fail(str(exc), param, ctx)


class PaddingType(click.ParamType):
    """``N``, ``HxW``, ``same`` or ``valid``."""

    name = "N|HxW|same|valid"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:  # type: ignore[override]
        return self.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        text = str(value).strip().lower()
        if text in ("same", "valid"):
            return text
        try:
            return parse_pair(text, "padding", minimum=0)
        except ParameterError as exc:
            self.fail(f"{exc} or 'same'/'valid'", param, ctx)


class KernelSpecType(click.ParamType):
    """A kernel spec resolved to a :class:`convcli.kernels.Kernel` (names, matrices, files)."""

    name = "SPEC"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..kernels import Kernel, parse_kernel_spec

        if isinstance(value, Kernel):
            return value
        try:
            return parse_kernel_spec(str(value))
        except ConvcliError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        from ..kernels import catalogue, kernel_files

        names = [entry.name for entry in catalogue()] + [path.stem for path in kernel_files()]
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]


class PadModeType(click.ParamType):
    """A border mode name or one of its aliases."""

    name = "MODE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..engine import resolve_pad_mode

        try:
            return resolve_pad_mode(str(value))
        except ParameterError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        modes = ["zeros", "constant", "reflect", "symmetric", "replicate", "circular"]
        return [CompletionItem(m) for m in modes if m.startswith(incomplete)]


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
                type=click.FloatRange(min=0.1),
                default=30.0,
                help="Seconds to wait for a URL (each network wait and the whole download).",
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
                    help="Rows/columns added on each side; 'same' keeps the size (stride 1; an odd extra "
                    "goes bottom/right, as PyTorch), 'valid' is 0.",
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
                click.option("--pad-value", type=float, default=0.0, help="Fill value for --pad-mode constant."),
                click.option("--convolve/--correlate", default=False, help=convolve_help),
            ],
            function,
        )

    return decorator


def conv_options(function: F) -> F:
    """The geometry options plus bias, method and precision (filter)."""
    function = _apply(
        [
            click.option("--bias", type=float, default=0.0, help="Added to every output value."),
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
    return geometry_options()(function)


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
                type=click.Choice(["auto", "minmax", "abs", "clip"]),
                default="auto",
                help="Floats to pixels: clip = [vmin, vmax] (default [0, 1]) to black..white; minmax = the "
                "output's min..max; abs = 0..max|v|; auto = clip when values lie in [0, 1] or "
                "--vmin/--vmax is given, else minmax.",
            ),
            click.option("--vmin", type=float, help="Value shown black (fixes the low end of any --scale)."),
            click.option("--vmax", type=float, help="Value shown white (fixes the high end of any --scale)."),
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


# ---------------------------------------------------------------------------
# Reading and writing


@dataclass(frozen=True)
class Written:
    """What :func:`write_result` did."""

    destination: str
    fmt: str
    mapping: Any  # PixelMapping | None


def load(source: str, options: dict[str, Any], on_size: Callable[..., None] | None = None, stdin: Any = None) -> Any:
    """Load one source with the command's source options; print its notes (which frame was used) on stderr.

    ``on_size(height, width, channels, decoded_bytes_per_pixel)`` runs once the
    size is read from the header, before decoding (see :func:`memory_guard`).
    ``stdin`` replaces standard input for ``-`` (a batch reads it once, in the parent).
    """
    from ..images import load_source

    loaded = load_source(
        source,
        gray=options["gray"],
        normalize_method=options["normalize_method"],
        color=options["color"],
        frame=options["frame"],
        stdin=binary_stream("stdin") if stdin is None else stdin,
        timeout=options["timeout"],
        max_download=options["max_download"] * 1024 * 1024,
        max_pixels=max_pixels_option(options),
        on_size=on_size,
    )
    for note in getattr(loaded, "notes", ()):
        message(note, options.get("quiet", False) or options.get("as_json", False))
    return loaded


def stdout_format(loaded: Any) -> str | None:
    """Format for ``-o -`` without ``--format``: raw arrays stay raw (.npy as npy, text as txt), images go as PNG."""
    if loaded.kind != "array":
        return None
    return "npy" if loaded.detail.startswith("NPY") else "txt"


def default_output(loaded: Any, label: str, output_format: str | None) -> str:
    """``<stem>-<label>.<ext>`` in the current folder; raw sources keep their extension."""
    if output_format:
        extension = {"jpeg": "jpg", "tiff": "tif"}.get(output_format, output_format)
    elif loaded.kind == "array" and loaded.source.suffix in RAW_OUTPUT_SUFFIXES:
        extension = loaded.source.suffix.lstrip(".")
    elif loaded.kind == "array" and loaded.source.kind == "stdin":
        extension = "txt"
    else:
        extension = "png"
    return f"{loaded.source.stem}-{label}.{extension}"


def check_outputs(destinations: list[str], sources: list[str]) -> None:
    """Refuse, before any work, outputs that would clobber an input or each other, or that cannot be created."""
    from ..images import check_output_path, same_file

    seen: dict[str, str] = {}
    for destination in destinations:
        if destination == "-":
            continue
        key = str(Path(destination).resolve())
        if key in seen:
            raise OutputUsageError(
                f"two outputs would both be written to {destination!r}; use distinct kernels or -o per run"
            )
        seen[key] = destination
        check_output_path(destination)
        for source in sources:
            if (
                source != "-"
                and Path(source).exists()
                and Path(destination).exists()
                and same_file(source, destination)
            ):
                raise OutputUsageError(
                    f"output {destination!r} is the input {source!r}; convcli never overwrites its input"
                )


def write_result(array: Any, destination: str, options: dict[str, Any], raw_format: str | None = None) -> Written:
    """Encode and write one result (atomically for files; refusing binary to a terminal).

    ``raw_format`` is the format for ``-o -`` when ``--format`` is not given
    and the source was a raw array (its values stay numbers); images go as PNG.
    """
    from ..images import encode, output_format, write_atomic

    requested = options.get("output_format")
    if destination == "-" and requested is None and raw_format:
        requested = raw_format
    fmt = output_format(destination, requested)
    data, mapping = encode(
        array,
        fmt,
        scale=options["scale"],
        vmin=options["vmin"],
        vmax=options["vmax"],
        depth=int(options["depth"]),
        compression=options.get("compression", 1),
    )
    if destination == "-":
        stream = binary_stream("stdout")
        if fmt not in ("txt", "csv") and stdout_is_terminal():
            raise OutputUsageError(
                f"refusing to write {fmt.upper()} bytes to a terminal; redirect (> out.{fmt}) or pipe it, or use --format txt"
            )
        stream.write(data)
        stream.flush()
    else:
        write_atomic(destination, data)
    return Written(destination, fmt, mapping)


def binary_stream(name: str) -> Any:
    """The binary side of ``sys.stdin``/``sys.stdout``, looked up at call time (so CliRunner's swap is seen).

    ``click.get_binary_stream`` is deprecated from Click 8.5 on.
    """
    stream = getattr(sys, name)
    return getattr(stream, "buffer", stream)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def message(text: str, quiet: bool = False) -> None:
    """A message for people: always stderr."""
    if not quiet:
        click.echo(text, err=True)


def emit_json(record: dict[str, Any]) -> None:
    click.echo(json.dumps(record, separators=(", ", ": ")))


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def describe_geometry(geometry: Any) -> str:
    """``stride 1x1, padding 0x0, dilation 1x1`` (asymmetric padding as ``top,bottom x left,right``)."""
    (t, b), (left, r) = geometry.padding
    padding = f"{t}x{left}" if (t, left) == (b, r) else f"{t},{b}x{left},{r}"
    return f"stride {format_pair(geometry.stride)}, padding {padding}, dilation {format_pair(geometry.dilation)}"


def uncovered_note(geometry: Any) -> str | None:
    """A note when the stride leaves the last input rows/columns unread, with the padding that covers them."""
    rows, cols = geometry.uncovered()
    if not rows and not cols:
        return None
    parts = []
    if rows:
        parts.append(plural(rows, "row"))
    if cols:
        parts.append(plural(cols, "column"))
    cover = geometry.covering_padding()
    return (
        f"note: stride {format_pair(geometry.stride)} leaves the last {' and '.join(parts)} of the input unread; "
        f"--padding {format_pair(cover)} would reach them"
    )


def pixel_summary(mapping: Any, depth: int | str) -> str:
    """`` [low, high] -> 0..255 (minmax)`` for the report line; empty for raw outputs (no mapping)."""
    if mapping is None:
        return ""
    return f" [{mapping.low:.4g}, {mapping.high:.4g}] -> 0..{(1 << int(depth)) - 1} ({mapping.scale})"


def mapping_record(mapping: Any) -> dict[str, Any]:
    """The ``scale`` and ``clipped`` fields of a --json record."""
    return {
        "scale": None if mapping is None else {"mode": mapping.scale, "low": mapping.low, "high": mapping.high},
        "clipped": 0 if mapping is None else mapping.clipped,
    }


def clipped_note(mapping: Any, total: int) -> str | None:
    if mapping is None or not mapping.clipped:
        return None
    share = 100.0 * mapping.clipped / max(total, 1)
    return (
        f"note: {plural(mapping.clipped, 'value')} ({share:.2g}%) fell outside [{mapping.low:g}, {mapping.high:g}] "
        f"and were clipped; --scale minmax or wider --vmin/--vmax keeps them"
    )


# ---------------------------------------------------------------------------
# Limits: --max-pixels (part of source_options), --max-memory (commands that estimate their memory)


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


def max_pixels_option(options: dict[str, Any]) -> int | None:
    """``--max-pixels`` (``None`` for 0 = no limit); the default when the command has no such option."""
    from ..limits import DEFAULT_MAX_PIXELS

    value = options.get("max_pixels", DEFAULT_MAX_PIXELS)
    return None if value == 0 else value


def max_memory_option(options: dict[str, Any]) -> int | None:
    """``--max-memory`` in bytes, or ``None`` (use the memory available)."""
    value = options.get("max_memory")
    return None if value is None else int(value) * 1024 * 1024
