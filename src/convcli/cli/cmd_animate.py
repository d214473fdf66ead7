"""``convcli animate``: the sliding window of filter, pool and upsample as a GIF, APNG or MP4.

A thin client of :mod:`convcli.api.animation`. The geometry options are the
very option objects of ``convcli filter``, ``pool`` and ``upsample`` (borrowed
from those commands), so their names, defaults, checks and help are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..api.settings import ReadSettings
from ..errors import OutputUsageError
from .option_records import geometry_settings, read_settings
from .options import source_options
from .params import KernelSpecType
from .reports import emit_json, message
from .sections import SectionedGroup
from .streams import binary_stream, load, stdout_is_terminal

#: An inline grid given instead of a SOURCE: digits, signs, dots, spaces, commas and semicolons.
INLINE_GRID = re.compile(r"^[\s\d.eE+\-,;]+$")


@dataclass(frozen=True)
class AnimateOptions:
    """``convcli animate``'s options besides the operation's own, built once from the command line."""

    read: ReadSettings
    output: str | None
    format: str | None
    fps: float
    hold: float
    frames: int | None
    grid: bool | None
    cmap: str | None
    dpi: int
    as_json: bool
    quiet: bool


def _borrow(command_path: str, names: tuple[str, ...]) -> list[click.Parameter]:
    """The options ``names`` of an existing command: the same objects, so the same meanings and help."""
    import importlib

    module_name, attribute = command_path.split(":")
    command: click.Command = getattr(importlib.import_module(f"convcli.cli.{module_name}"), attribute)
    found = {param.name: param for param in command.params}
    return [found[name] for name in names]


def _animate_options(function: Any) -> Any:
    """The options every ``animate`` subcommand takes (output, timing, drawing) and the source options."""
    for option in reversed(
        [
            click.option(
                "-o",
                "--output",
                metavar="PATH|-",
                help="Animation file: .gif, .png (APNG) or .mp4 (needs imageio-ffmpeg); - writes GIF to stdout. "
                "Default: <stem>-<operation>.gif in the current folder (none with --json unless -o is given).",
            ),
            click.option(
                "--format",
                "animation_format",
                type=click.Choice(["gif", "apng", "mp4"]),
                help="Format, overriding the extension.",
            ),
            click.option("--fps", type=click.FloatRange(0.1, 50), default=2.0, help="Frames per second."),
            click.option(
                "--hold",
                type=click.FloatRange(0, 60),
                default=1.5,
                metavar="SECONDS",
                help="Extra time the last frame stays (the finished output).",
            ),
            click.option(
                "--frames",
                type=click.IntRange(1, 1000),
                default=None,
                show_default="every step on a number grid, 60 on a photo",
                help="Draw at most N frames, spread evenly over the steps (the first and the last included); the "
                "output still fills in with every step up to each frame.",
            ),
            click.option(
                "--grid/--picture",
                default=None,
                show_default="grid up to 16 cells a side",
                help="Draw every cell with its value, or the picture with the window moving over it.",
            ),
            click.option(
                "--cmap",
                metavar="NAME",
                help="matplotlib colour map of the cells (default: centred on 0 for signed values).",
            ),
            click.option("--dpi", type=click.IntRange(30, 300), default=100, help="Resolution of the frames."),
            click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="Print one JSON object per frame on stdout (window position, values read, weights, result).",
            ),
            click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr (errors still show)."),
        ]
    ):
        function = option(function)
    return source_options(function)


def _options(options: dict[str, Any]) -> AnimateOptions:
    if options["output"] == "-" and options["as_json"]:
        raise OutputUsageError("-o - and --json both write to stdout; choose one")
    return AnimateOptions(
        read=read_settings(options),
        output=options["output"],
        format=options["animation_format"],
        fps=options["fps"],
        hold=options["hold"],
        frames=options["frames"],
        grid=options["grid"],
        cmap=options["cmap"],
        dpi=options["dpi"],
        as_json=options["as_json"],
        quiet=options["quiet"],
    )


def _load(source: str, run: AnimateOptions) -> tuple[Any, str, str]:
    """The grid to animate, its name (for the default output) and what was read (for the summary)."""
    if not Path(source).exists() and INLINE_GRID.match(source) and re.search(r"\d", source):
        from ..matrices import parse_matrix

        grid = parse_matrix(source, f"inline grid {source!r}")
        return grid, "grid", f"inline grid {grid.shape[0]}x{grid.shape[1]} (HxW)"
    loaded = load(source, run.read, quiet=run.quiet or run.as_json)
    return (
        loaded.array,
        loaded.source.stem,
        f"{loaded.source.display} {loaded.array.shape[0]}x{loaded.array.shape[1]} (HxW, {loaded.detail})",
    )


def _finish(animation: Any, stem: str, what: str, run: AnimateOptions) -> None:
    from ..io.animation import animation_format, encode_animation
    from ..teach.animate_render import is_grid, render

    if run.as_json:
        for record in animation.records():
            emit_json(record)
        if run.output is None:
            return
    destination = run.output or f"{stem}-{animation.label}.gif"
    fmt = animation_format(destination, run.format)
    if destination == "-" and stdout_is_terminal():
        raise OutputUsageError(
            f"refusing to write {fmt.upper()} bytes to a terminal; redirect (> steps.gif) or give -o FILE"
        )
    if destination != "-":
        from ..io import check_output_path

        check_output_path(destination)
    from ..teach.figures import require_matplotlib

    require_matplotlib("convcli animate")
    grid = is_grid(animation) if run.grid is None else run.grid
    pictures = render(animation, grid=grid, dpi=run.dpi, cmap=run.cmap)
    durations = animation.durations(run.fps, run.hold)
    if destination == "-":
        stream = binary_stream("stdout")
        stream.write(encode_animation(pictures, fmt, durations, run.fps))
        stream.flush()
        where = "stdout"
    else:
        from ..io.animation import write_animation

        write_animation(destination, pictures, fmt, durations, run.fps)
        where = destination
    steps = sum(1 for frame in animation.frames if not frame.missed)
    missed = len(animation.frames) - steps
    shown = f"{len(animation.frames)} frames" if steps >= animation.count else f"{steps} of {animation.count} steps"
    if missed:
        shown += f" + {missed} {'jumps' if missed > 1 else 'jump'} the stride cannot make"
    message(
        f"{what} -> {animation.label}: {shown} "
        f"({'grid' if grid else 'picture'}, {run.fps:g} fps, last held {run.hold:g} s) -> {where} ({fmt.upper()})",
        run.quiet or run.as_json,
    )


def _limit(run: AnimateOptions, image: Any) -> int | None:
    """Frames drawn: ``--frames``, else every step on a number grid and 60 on a photo."""
    if run.frames is not None:
        return run.frames
    from ..teach.animate_render import GRID_LIMIT

    small = max(image.shape[:2]) <= GRID_LIMIT if run.grid is None else run.grid
    return None if small else 60


@click.group("animate", cls=SectionedGroup, context_settings={"show_default": True})
def animate_group() -> None:
    """Animate filter, pool or upsample step by step: a GIF (or APNG, MP4) of the window sliding.

    On a number grid (a .txt/.npy file, or values inline such as "0 1 2; 3 4 5;
    6 7 8") every cell shows its value, the window is outlined on the padded
    input, the output fills in cell by cell, and each frame's caption is the
    sum written out as 'convcli explain' writes it. On a photo the window
    moves over the picture and the output image grows (--frames samples the
    steps). The options mean what they mean in 'convcli filter', 'pool' and
    'upsample', and the numbers are the ones those commands write.

    \b
    Examples:
      convcli animate filter samples/x.txt -k "0 1; 2 3" -o classic.gif
      convcli animate filter "0 1 2 3 4; 5 6 7 8 9; 10 11 12 13 14; 15 16 17 18 19; 20 21 22 23 24" -k blur:3 -s 3
      convcli animate pool samples/edges.txt --size 2 --ceil-mode -s 2 -o pool.gif
      convcli animate upsample "0 1; 2 3" -k "0 1; 2 3" -s 1 --json
    """


@animate_group.command("filter", context_settings={"show_default": True})
@click.argument("source", metavar="SOURCE|GRID")
@click.option(
    "-k",
    "--kernel",
    type=KernelSpecType(),
    required=True,
    help="Kernel, any spec 'convcli filter' takes (a name, an inline matrix '0 1; 2 3', a file).",
)
@_animate_options
@click.pass_context
def filter_animation_command(ctx: click.Context, source: str, kernel: Any, **options: Any) -> None:
    """Animate a correlation (or --convolve): one frame per output element, its sum written out.

    \b
    Examples:
      convcli animate filter samples/x.txt -k "0 1; 2 3" -o classic.gif
      convcli animate filter samples/x.txt -k "0 1; 2 3" --padding 1 --stride 2
      convcli animate filter samples/camera.png -k vertical -s 8 --frames 40 -o camera.gif
      convcli animate filter samples/edges.txt -k "1 -1" --json
    """
    from ..api.animation import animate_filter
    from ..api.checks import geometry
    from ..api.settings import FilterSettings

    run = _options(options)
    settings = FilterSettings(geometry(**vars(geometry_settings(options))), bias=options["bias"])
    image, stem, what = _load(source, run)
    _finish(animate_filter(image, kernel, settings, frames=_limit(run, image)), stem, what, run)


@animate_group.command("pool", context_settings={"show_default": True})
@click.argument("source", metavar="SOURCE|GRID")
@_animate_options
@click.pass_context
def pool_animation_command(ctx: click.Context, source: str, **options: Any) -> None:
    """Animate max, mean or min pooling: one frame per window, its values and result.

    \b
    Examples:
      convcli animate pool samples/x.txt --size 2 -s 1
      convcli animate pool samples/edges.txt --size 2 -s 2 --ceil-mode -o ceil.gif
      convcli animate pool samples/edges.txt --op mean --size 3 -s 2 -p 1 --no-count-include-pad
    """
    from ..api.animation import animate_pool
    from ..api.checks import pool_settings

    run = _options(options)
    settings = pool_settings(
        options["size"],
        stride=options["stride"],
        padding=options["padding"],
        dilation=options["dilation"],
        op=options["op"],
        ceil_mode=options["ceil_mode"],
        count_include_pad=options["count_include_pad"],
    )
    image, stem, what = _load(source, run)
    _finish(animate_pool(image, settings, frames=_limit(run, image)), stem, what, run)


@animate_group.command("upsample", context_settings={"show_default": True})
@click.argument("source", metavar="SOURCE|GRID")
@_animate_options
@click.pass_context
def upsample_animation_command(ctx: click.Context, source: str, kernel: Any, **options: Any) -> None:
    """Animate a transposed convolution: one frame per input pixel, spreading its value times the kernel.

    \b
    Examples:
      convcli animate upsample "0 1; 2 3" -k "0 1; 2 3" -s 1
      convcli animate upsample samples/x.txt -k bilinear -s 2 -p 1 -o up.gif
      convcli animate upsample "1 2; 3 4" -k nearest -s 2 --format apng -o up.png
    """
    from ..api.animation import animate_upsample
    from ..api.checks import upsample_settings
    from ..api.upsampling import upsampling_kernel

    run = _options(options)
    settings = upsample_settings(
        stride=options["stride"],
        padding=options["padding"],
        output_padding=options["output_padding"],
        dilation=options["dilation"],
        output_size=options["output_size"],
        bias=options["bias"],
    )
    image, stem, what = _load(source, run)
    animation = animate_upsample(image, upsampling_kernel(kernel, settings.stride), settings, frames=_limit(run, image))
    _finish(animation, stem, what, run)


filter_animation_command.params[1:1] = _borrow(
    "cmd_filter:filter_command", ("stride", "padding", "dilation", "pad_mode", "pad_value", "convolve", "bias")
)
pool_animation_command.params[1:1] = _borrow(
    "cmd_pool:pool_command", ("op", "size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad")
)
upsample_animation_command.params[1:1] = _borrow(
    "cmd_upsample:upsample_command",
    ("kernel", "stride", "padding", "output_padding", "dilation", "output_size", "bias"),
)
