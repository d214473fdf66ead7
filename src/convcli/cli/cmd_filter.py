"""``convcli filter``: apply kernels to images and arrays (a thin client of :func:`convcli.api.arrays.filter_array`)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ..api.settings import FilterSettings, ReadSettings
from ..run.batch import Item
from ..shapes import format_pair
from .batching import execute, gather_sources, load_item, plan_items
from .options import (
    RunOptions,
    batch_options,
    conv_options,
    figure_options,
    geometry_settings,
    max_memory_bytes,
    memory_option,
    output_options,
    read_settings,
    run_options,
    source_options,
    stream_options,
)
from .params import KernelSpecType
from .reports import Report, describe_geometry, output_report, uncovered_note, with_figure
from .streams import stdout_format, write_result

if TYPE_CHECKING:
    from ..kernels import Kernel


@dataclass(frozen=True)
class FilterOptions:
    """``convcli filter``'s options, built once from the command line (picklable: batch workers get a copy)."""

    settings: FilterSettings
    read: ReadSettings
    run: RunOptions
    chain: bool = False
    verbose: bool = False
    max_memory: int | None = None
    #: True: stream; False: never; None: stream when the in-memory run would not fit the memory budget.
    stream: bool | None = None
    strip_rows: int | None = None


def filter_options(options: dict[str, Any], chain: bool) -> FilterOptions:
    """Check and gather click's keyword arguments into a :class:`FilterOptions`."""
    from ..api.arrays import geometry

    shape = geometry_settings(options)
    checked = geometry(
        stride=shape.stride,
        padding=shape.padding,
        dilation=shape.dilation,
        pad_mode=shape.pad_mode,
        pad_value=shape.pad_value,
        convolve=shape.convolve,
    )
    return FilterOptions(
        settings=FilterSettings(
            checked, bias=options["bias"], method=options["method"], precision=options["precision"]
        ),
        read=read_settings(options),
        run=run_options(options),
        chain=chain,
        verbose=options["verbose"],
        max_memory=max_memory_bytes(options),
        stream=options.get("stream"),
        strip_rows=options.get("strip_rows"),
    )


def _labels(kernels: list[Kernel], chain: bool) -> list[tuple[str, list[Kernel]]]:
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


def _memory_guard(source: str, outputs: list[tuple[str, list[Kernel]]], options: FilterOptions) -> Any:
    """A check run from the source's header: refuse the run when its largest output would not fit in memory."""

    def check(height: int, width: int, channels: int, decoded_bytes_per_pixel: int) -> None:
        from ..api.arrays import plan_filter
        from ..limits import check_memory, estimate_filter

        color = options.read.color and channels >= 3
        image = decoded_bytes_per_pixel > 0
        precision = options.settings.precision
        itemsize = 8 if precision == "float64" or (not image and precision == "auto") else 4
        shape = options.settings.geometry
        for _label, applied in outputs:
            plans = plan_filter((height, width), applied, options.settings)
            what = f"filtering {source!r} ({height}x{width}) with {'+'.join(k.name for k in applied)}"
            estimate = estimate_filter(
                (height, width),
                3 if color else 1,
                [(k.shape, p.method) for k, p in zip(applied, plans)],
                stride=shape.stride,
                padding=shape.padding,
                dilation=shape.dilation,
                itemsize=itemsize,
                decoded_bytes_per_pixel=decoded_bytes_per_pixel,
                what=what,
            )
            check_memory(estimate, options.max_memory)

    return check


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
@stream_options
@output_options
@batch_options
@figure_options
@click.option("-v", "--verbose", is_flag=True, help="Also say which algorithm ran and why.")
@click.pass_context
def filter_command(
    ctx: click.Context, sources: tuple[str, ...], kernels: tuple[Kernel, ...], chain: bool, **options: Any
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
    record = filter_options(options, chain)
    outputs = _labels(list(kernels), chain)
    expanded, batch = gather_sources(sources, record.run)
    plan = plan_items(expanded, [label for label, _ in outputs], record.run, batch)
    execute(ctx, plan, functools.partial(filter_item, outputs=outputs, options=record), record.run)


def filter_item(item: Item, outputs: list[tuple[str, list[Kernel]]], options: FilterOptions) -> list[Report]:
    """Filter one source with every output's kernels, write the results (and the figure); runs in a worker."""
    from ..api.arrays import filter_array
    from ..limits import LimitError

    if options.stream:
        return _stream_item(item, outputs, options)
    try:
        loaded = load_item(item, options.read, options.run, on_size=_memory_guard(item.source, outputs, options))
    except LimitError:
        # Too large for memory (or for the pixel limit of a format read whole): stream it when allowed and possible.
        if options.stream is False or not _can_stream(item, options):
            raise
        return _stream_item(item, outputs, options)
    reports = []
    rows = []
    geometry = None
    for (_label, applied), target in zip(outputs, item.destinations):
        start = time.perf_counter()
        done = filter_array(loaded.array, applied, options.settings)
        written = write_result(done.array, target, options.run.write, stdout_format(loaded))
        reports.append(_report(loaded, done, written, options, time.perf_counter() - start))
        geometry = geometry or done.plans[0].geometry
        if item.figure is not None:
            rows.append(_figure_row(applied, done.array, options))
    if item.figure is not None:
        from ..teach.figures import comparison_figure

        shape = options.settings.geometry
        comparison_figure(
            item.figure,
            loaded.array,
            rows,
            input_title=f"input {format_pair(loaded.array.shape[:2])} ({loaded.detail})",
            title=f"{loaded.source.stem}: {describe_geometry(geometry)}"
            + (", convolution (kernel flipped)" if shape.convolve else ", correlation")
            + (f", pad mode {shape.pad_mode}" if shape.pad_mode != "zeros" else ""),
            cmap=options.run.cmap,
            vmin=options.run.write.vmin,
            vmax=options.run.write.vmax,
            scale=options.run.write.scale,
        )
    return with_figure(reports, item.figure)


def _figure_row(applied: list[Kernel], result: Any, options: FilterOptions) -> Any:
    from ..teach.figures import Row

    kernel = applied[-1]
    convolve = options.settings.geometry.convolve
    weights = kernel.weights[::-1, ::-1] if convolve else kernel.weights
    name = " then ".join(k.name for k in applied)
    flipped = " flipped" if convolve else ""
    return Row(
        weights,
        f"kernel {name} {format_pair(kernel.shape)}{flipped}",
        result,
        f"output {format_pair(result.shape[:2])}",
    )


def _report(loaded: Any, done: Any, written: Any, options: FilterOptions, seconds: float) -> Report:
    shape = options.settings.geometry
    first = done.plans[0].geometry
    flipped = " flipped" if shape.convolve else ""
    steps = " -> ".join(
        f"{k.name} {format_pair(k.shape)}{flipped} ({describe_geometry(p.geometry)}) -> {format_pair(p.geometry.output)}"
        for k, p in zip(done.kernels, done.plans)
    )
    notes: list[str | None] = []
    for plan in done.plans:
        notes.append(uncovered_note(plan.geometry))
        if options.verbose:
            notes.append(f"method: {plan.method} ({plan.reason})")
    return output_report(
        loaded,
        done.array,
        written,
        seconds,
        operation=f"* {steps}",
        fields={
            "kernels": [
                {"spec": k.spec, "name": k.name, "shape": list(k.shape), "method": p.method}
                for k, p in zip(done.kernels, done.plans)
            ],
            "convolve": shape.convolve,
            "stride": list(first.stride),
            "padding": [list(p) for p in first.padding],
            "dilation": list(first.dilation),
            "pad_mode": shape.pad_mode,
        },
        notes=notes,
        depth=options.run.write.depth,
    )


# ---------------------------------------------------------------------------
# Streamed runs (--stream, or automatically when the in-memory run would not fit)


def _can_stream(item: Item, options: FilterOptions) -> bool:
    """A file source read by rows (TIFF, .npy), outputs streamed formats can write, and no figure."""
    from ..io import output_format
    from ..io.strips import STREAM_FORMATS, streams_by_rows

    if item.figure is not None or item.source == "-" or not streams_by_rows(item.source):
        return False
    return all(d != "-" and output_format(d, options.run.write.format) in STREAM_FORMATS for d in item.destinations)


@dataclass(frozen=True)
class _Shown:
    """What a report needs of an input or a result it never holds: a shape (a zero-stride view, no memory)."""

    source: Any
    array: Any
    kind: str
    detail: str


def _shape_only(shape: tuple[int, ...]) -> Any:
    import numpy as np

    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=np.uint8), shape=shape, strides=(0,) * len(shape))


def _stream_item(item: Item, outputs: list[tuple[str, list[Kernel]]], options: FilterOptions) -> list[Report]:
    """Filter one source strip by strip into each output (TIFF, PNG, npy): the bytes the in-memory run writes."""
    from dataclasses import replace

    from ..errors import OutputUsageError
    from ..io import classify_source, output_format
    from ..io.strips import check_stream_format, open_rows
    from ..run.stream import stream_filter
    from .reports import Progress
    from .streams import Written

    if item.figure is not None:
        raise OutputUsageError("--figure needs the whole image in memory; drop it or use --no-stream")
    read = options.read
    reports = []
    for (_label, applied), target in zip(outputs, item.destinations):
        if target == "-":
            raise OutputUsageError("a streamed run writes files, not stdout; give -o FILE.tif/.png/.npy")
        fmt = output_format(target, options.run.write.format)
        check_stream_format(fmt)
        start = time.perf_counter()
        reader = open_rows(
            item.source,
            frame=read.frame,
            gray=read.gray,
            normalize=read.normalize,
            color=read.color,
            max_pixels=read.max_pixels,
            load_whole=lambda: load_item(item, replace(read, max_pixels=read.max_pixels), options.run),
        )
        progress = Progress(1) if not options.run.silent and _stderr_is_terminal() else None
        shown = [0.0]

        def on_rows(done: int, total: int, progress: Any = progress, shown: list[float] = shown) -> None:
            now = time.perf_counter()
            if progress is not None and (now - shown[0] > 0.2 or done == total):
                progress.total = total
                progress.update(done, 0)
                shown[0] = now

        try:
            with reader:
                done = stream_filter(
                    reader,
                    target,
                    fmt,
                    applied,
                    options.settings,
                    options.run.write,
                    strip_rows=options.strip_rows,
                    budget=options.max_memory,
                    on_rows=on_rows,
                )
        finally:
            if progress is not None:
                progress.clear()
        loaded = _Shown(classify_source(item.source), _shape_only(done.input_size), done.kind, done.detail)
        result = _shape_only(done.shape)
        written = Written(target, fmt, done.mapping)
        filtered = _StreamedFilter(result, tuple(applied), done.plan.plans)
        report = _report(loaded, filtered, written, options, time.perf_counter() - start)
        passes = "two passes (the pixel range first)" if done.passes == 2 else "one pass"
        strip = f"streamed in strips of {done.plan.unit_rows} rows, {passes}, estimated peak {_bytes(done.plan.estimate.total)}"
        report.record["streamed"] = {"strip_rows": done.plan.unit_rows, "passes": done.passes}
        reports.append(Report((report.lines[0], f"note: {strip}", *report.lines[1:]), report.record))
    return reports


@dataclass(frozen=True)
class _StreamedFilter:
    array: Any
    kernels: tuple[Any, ...]
    plans: tuple[Any, ...]


def _bytes(count: int) -> str:
    from ..limits import format_bytes

    return format_bytes(count)


def _stderr_is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()
