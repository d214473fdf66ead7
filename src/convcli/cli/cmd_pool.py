"""``convcli pool``: max, mean and min pooling of images and arrays (a thin client of :func:`convcli.api.arrays.pool_array`)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import click
from click.core import ParameterSource

from ..api.settings import PoolSettings
from ..errors import ParameterError
from ..run.batch import Item
from ..shapes import format_pair
from .batching import run_command, short_pair
from .params import PaddingType, PairType
from .reports import Report, output_report, plural, size_record, with_figure
from .sections import SectionedCommand
from .streaming import ImageOptions, guarded, image_fields, image_options, load_or_stream, stream_item
from .streams import stdout_format, write_result


@dataclass(frozen=True)
class PoolOptions(ImageOptions):
    """``convcli pool``'s options, built once from the command line (picklable: batch workers get a copy)."""

    settings: PoolSettings


@click.command("pool", cls=SectionedCommand, context_settings={"show_default": True})
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@click.option(
    "--op",
    type=click.Choice(["max", "mean", "min"]),
    default="max",
    help="max = largest value per window (padding -inf), mean = average (padding zeros), "
    "min = smallest (padding +inf).",
)
@click.option(
    "-k",
    "--size",
    type=PairType("pool size"),
    default="2",
    help="Window size, N or HxW (rows x columns); -k as filter's.",
)
@click.option(
    "-s", "--stride", type=PairType("stride"), default=None, show_default="the size", help="Step between windows."
)
@click.option(
    "-p",
    "--padding",
    type=PaddingType(named=False),
    default="0",
    help="Rows/columns added on each side, at most half the size (PyTorch's rule): N, HxW, or four sides "
    "TOP,BOTTOM,LEFT,RIGHT (torch:LEFT,RIGHT,TOP,BOTTOM in F.pad's order), as if the input were padded so "
    "(with -inf, +inf or 0) and pooled without padding; a --ceil-mode window must start inside the input or "
    "the top/left padding.",
)
@click.option(
    "-d",
    "--dilation",
    type=PairType("dilation"),
    default="1",
    help="Spacing between window taps (max and min only; PyTorch's avg_pool2d has none).",
)
@click.option(
    "--ceil-mode",
    is_flag=True,
    help="Round the output size up: add a last, partial window when it starts inside the input or the "
    "left padding (PyTorch's ceil_mode).",
)
@click.option(
    "--count-include-pad/--no-count-include-pad",
    default=True,
    help="mean only: divide by the window's size inside the padded input (padding counts as zeros), or "
    "only by the real input values in it. The part of a --ceil-mode window past the padding is "
    "never counted.",
)
@image_options
@click.pass_context
def pool_command(ctx: click.Context, sources: tuple[str, ...], **options: Any) -> None:
    """Pool images (or number grids): max, mean or min over windows; write the results and print their shapes.

    SOURCE is an image file, an http(s) URL, a .npy/.txt/.csv array (used as
    is) or - for stdin, read as by 'convcli filter'. Values equal PyTorch's
    max_pool2d / avg_pool2d (min is -max_pool2d(-x)) for the same options,
    and the output size is pool_output_length (see 'convcli shape').
    Many sources, globs and --from run as a batch, as in 'convcli filter'.

    \b
    Examples:
      convcli pool samples/camera.png --op max --size 2
      convcli pool samples/x.txt --op mean --size 2 --stride 1 -o -
      convcli pool samples/edges.txt --op mean --size 3 --stride 2 --padding 1 --ceil-mode --no-count-include-pad -o -
      cat samples/coffee.png | convcli pool - --op min --size 4x2 -o - > coffee-min.png
    """
    from ..api.checks import pool_settings

    op = options["op"]
    if op == "mean" and options["dilation"] != (1, 1):
        raise ParameterError(
            f"--dilation {format_pair(options['dilation'])} does not apply to --op mean (PyTorch's avg_pool2d has no "
            "dilation); drop it or use --op max/min"
        )
    if op != "mean" and ctx.get_parameter_source("count_include_pad") == ParameterSource.COMMANDLINE:
        raise ParameterError(f"--count-include-pad/--no-count-include-pad only apply to --op mean, not {op}; drop it")
    record = PoolOptions(
        settings=pool_settings(
            options["size"],
            stride=options["stride"],
            padding=options["padding"],
            dilation=options["dilation"],
            op=op,
            ceil_mode=options["ceil_mode"],
            count_include_pad=options["count_include_pad"],
        ),
        **image_fields(options),
    )
    label = f"{op}{short_pair(record.settings.size)}"
    run_command(ctx, sources, [label], functools.partial(pool_item, options=record), record.run, one_per_source=True)


def pool_item(item: Item, options: PoolOptions) -> list[Report]:
    """Pool one source, write the result (and the figure); runs in a worker."""
    from ..api.arrays import pool_array

    start = time.perf_counter()
    loaded = load_or_stream(item, options, _memory_guard(item, options))
    if loaded is None:
        return _stream_item(item, options)
    result, geometry = pool_array(loaded.array, options.settings)
    written = write_result(result, item.destinations[0], options.run.write, stdout_format(loaded))
    report = _report(loaded, geometry, result, written, options, time.perf_counter() - start)
    if item.figure is not None:
        import numpy as np

        from ..teach.figures import Row, comparison_figure

        op, size = options.settings.op, geometry.kernel
        window = np.full(size, 1.0 / (size[0] * size[1])) if op == "mean" else np.ones(size)
        comparison_figure(
            item.figure,
            loaded.array,
            [
                Row(
                    window,
                    f"{op} pool window {format_pair(size)}",
                    result,
                    f"output {format_pair(geometry.output)}",
                    cell_text=None if op == "mean" else op,
                )
            ],
            input_title=f"input {format_pair(geometry.input)} (HxW, {loaded.detail})",
            title=f"{loaded.source.stem}: {op} pool {format_pair(size)}, {_describe(geometry, options.settings)}",
            cmap=options.run.cmap,
            vmin=options.run.write.vmin,
            vmax=options.run.write.vmax,
            scale=options.run.write.scale,
        )
    return with_figure([report], item.figure)


def _describe(geometry: Any, settings: PoolSettings) -> str:
    parts = [f"stride {format_pair(geometry.stride)}", f"padding {geometry.padding_text()}"]
    if settings.op != "mean":
        parts.append(f"dilation {format_pair(geometry.dilation)}")
    if geometry.ceil_mode:
        parts.append("ceil mode")
    if settings.op == "mean" and (geometry.sides != ((0, 0), (0, 0)) or geometry.ceil_mode):
        parts.append("padding counted" if settings.count_include_pad else "padding not counted")
    return ", ".join(parts)


def _report(loaded: Any, geometry: Any, result: Any, written: Any, options: PoolOptions, seconds: float) -> Report:
    settings = options.settings
    return output_report(
        loaded,
        result,
        written,
        seconds,
        operation=f"-> {settings.op} pool {format_pair(geometry.kernel)} "
        f"({_describe(geometry, settings)}) -> {format_pair(geometry.output)}",
        fields={
            "op": settings.op,
            "size": size_record(geometry.kernel),
            "stride": list(geometry.stride),
            "padding": list(geometry.padding),
            "padding_sides": [list(side) for side in geometry.sides],
            "dilation": list(geometry.dilation),
            "ceil_mode": geometry.ceil_mode,
            "count_include_pad": settings.count_include_pad if settings.op == "mean" else None,
        },
        notes=[_uncovered_note(geometry), _aliasing_note(geometry, settings)],
        depth=options.run.write.depth,
    )


def _aliasing_note(geometry: Any, settings: PoolSettings) -> str | None:
    """Mean pooling is a box filter then a stride: say when that stride aliases (max and min are not linear)."""
    if settings.op != "mean" or geometry.stride == (1, 1):
        return None
    import numpy as np

    from ..teach.frequency import aliasing_note

    size = geometry.kernel
    return aliasing_note(np.ones(size) / (size[0] * size[1]), geometry.stride, f"a {size[0]}x{size[1]} mean")


def _uncovered_note(geometry: Any) -> str | None:
    """A note when the last input rows/columns fall in no window, suggesting --ceil-mode when it would reach them."""
    from ..pooling import pool_geometry

    rows, cols = geometry.uncovered()
    if not rows and not cols:
        return None
    unread = " and ".join(part for part in (rows and plural(rows, "row"), cols and plural(cols, "column")) if part)
    text = f"note: stride {format_pair(geometry.stride)} leaves the last {unread} of the input unread"
    if not geometry.ceil_mode:
        ceiled = pool_geometry(
            geometry.input,
            geometry.kernel,
            stride=geometry.stride,
            padding=geometry.padding,
            dilation=geometry.dilation,
            ceil_mode=True,
        )
        if ceiled.uncovered() == (0, 0):
            text += "; --ceil-mode adds windows that reach them"
    return text


def _memory_guard(item: Item, options: PoolOptions) -> Any:
    """A check run from the source's header: refuse the in-memory pooling when it would not fit the budget."""

    def check(height: int, width: int, channels: int, decoded_bytes_per_pixel: int) -> None:
        from ..api.checks import pool_geometry_for
        from ..io import output_format
        from ..limits import estimate_pool

        settings = options.settings
        geometry = pool_geometry_for((height, width), settings)
        color = options.read.color and channels >= 3
        target = item.destinations[0]
        image = decoded_bytes_per_pixel > 0
        # pool2d pads a copy when the windows reach past the input (padding, or a ceil_mode window).
        needed = [geometry.stride[a] * (geometry.output[a] - 1) + geometry.span[a] for a in range(2)]
        pads = [(geometry.padding[a], max(0, needed[a] - geometry.padding[a] - (height, width)[a])) for a in range(2)]
        padded = 0 if pads == [(0, 0), (0, 0)] else (height + sum(pads[0])) * (width + sum(pads[1]))
        uneven = settings.op == "mean" and (not settings.count_include_pad or geometry.ceil_mode)
        estimate = estimate_pool(
            (height, width),
            geometry.output,
            3 if color else 1,
            decoded_bytes_per_pixel=decoded_bytes_per_pixel,
            padded=padded,
            divided=uneven,
            itemsize=4 if image else 8,
            fmt="png" if target == "-" else output_format(target, options.run.write.format),
            depth=options.run.write.depth,
            what=f"pooling {item.source!r} ({height}x{width})",
        )
        guarded(estimate, item, height * width, decoded_bytes_per_pixel, options.max_memory)

    return check


def _stream_item(item: Item, options: PoolOptions) -> list[Report]:
    """Pool one source strip by strip into its output (TIFF, PNG, npy): the bytes the in-memory run writes."""
    from ..api.checks import pool_geometry_for
    from ..run.streamed import stream_pool

    def report(loaded: Any, result: Any, written: Any, done: Any, seconds: float) -> Report:
        geometry = pool_geometry_for(done.input_size, options.settings)
        return _report(loaded, geometry, result, written, options, seconds)

    return [stream_item(item, item.destinations[0], options, stream_pool, (options.settings,), report)]
