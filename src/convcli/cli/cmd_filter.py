"""``convcli filter``: apply kernels to images and arrays (a thin client of :func:`convcli.api.arrays.filter_array`)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import click

from ..api.settings import FilterSettings
from ..run.batch import Item
from ..shapes import format_pair
from .batching import run_command
from .option_records import geometry_settings
from .options import conv_options
from .params import KernelSpecType
from .reports import Report, output_report, size_record, uncovered_note, with_figure, zero_padding_hint
from .sections import SectionedCommand
from .streaming import ImageOptions, guarded, image_fields, image_options, load_or_stream, stream_item
from .streams import stdout_format, write_result

if TYPE_CHECKING:
    from ..kernels import Kernel


@dataclass(frozen=True)
class FilterOptions(ImageOptions):
    """``convcli filter``'s options, built once from the command line (picklable: batch workers get a copy)."""

    settings: FilterSettings
    chain: bool = False
    verbose: bool = False


def filter_options(options: dict[str, Any], chain: bool) -> FilterOptions:
    """Check and gather click's keyword arguments into a :class:`FilterOptions`."""
    from ..api.checks import geometry

    checked = geometry(**vars(geometry_settings(options)))
    settings = FilterSettings(checked, bias=options["bias"], method=options["method"], precision=options["precision"])
    return FilterOptions(settings=settings, chain=chain, verbose=options["verbose"], **image_fields(options))


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


def _memory_guard(item: Item, outputs: list[tuple[str, list[Kernel]]], options: FilterOptions) -> Any:
    """A check run from the source's header: refuse the run when its largest output would not fit in memory."""

    def check(height: int, width: int, channels: int, decoded_bytes_per_pixel: int) -> None:
        from ..api.arrays import plan_filter
        from ..io import output_format
        from ..limits import estimate_filter

        color = options.read.color and channels >= 3
        image = decoded_bytes_per_pixel > 0
        precision = options.settings.precision
        itemsize = 8 if precision == "float64" or (not image and precision == "auto") else 4
        shape = options.settings.geometry
        dtype = "float64" if itemsize == 8 else "float32"
        for (_label, applied), target in zip(outputs, item.destinations):
            plans = plan_filter((height, width), applied, options.settings, dtype)
            what = f"filtering {item.source!r} ({height}x{width}) with {'+'.join(k.name for k in applied)}"
            fmt = "png" if target == "-" else output_format(target, options.run.write.format)
            # OpenCV pads a whole copy for the borders it lacks (see engine.opencv).
            borders = shape.pad_mode == "circular" or (shape.pad_mode == "constant" and shape.pad_value != 0)
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
                fmt=fmt,
                depth=options.run.write.depth,
                padded_copy=borders and any(p.backend == "opencv" for p in plans),
                backends=[p.backend for p in plans],
                subsampled=[p.full is not None for p in plans],
            )
            guarded(estimate, item, height * width, decoded_bytes_per_pixel, options.max_memory)

    return check


@click.command("filter", cls=SectionedCommand, context_settings={"show_default": True})
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
@image_options
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

    Many sources (a folder gives its images, --recursive its subfolders' ones too;
    quoted globs such as 'photos/**/*.png' are expanded by convcli, --from
    lists more) run as a batch: --outdir/--name place the
    outputs, --jobs runs them in parallel, a failing source is reported and
    the others still run (exit 1), and a summary line ends the run.

    \b
    Examples:
      convcli filter samples/chelsea.png -k vertical
      convcli filter samples/x.txt -k "0 1; 2 3" -o -
      convcli filter 'samples/*.png' -k vertical -k horizontal --outdir out/ --figure 'out/{stem}.fig.png'
      cat samples/camera.png | convcli filter - -k gaussian:7 -o - | convcli filter - -k vertical -o e.png
    """
    from ..api.checks import check_placement

    record = filter_options(options, chain)
    check_placement(record.settings.geometry, kernels)  # an origin out of range: exit 2 before any work
    outputs = _labels(list(kernels), chain)

    def worker_for(images: int) -> Any:
        # OpenCV's plans are charged each image's share of importing OpenCV (the same in every process of the job).
        settings = replace(record.settings, job_images=images)
        return functools.partial(filter_item, outputs=outputs, options=replace(record, settings=settings))

    run_command(ctx, sources, [label for label, _ in outputs], worker_for(1), record.run, worker_for=worker_for)


def filter_item(item: Item, outputs: list[tuple[str, list[Kernel]]], options: FilterOptions) -> list[Report]:
    """Filter one source with every output's kernels, write the results (and the figure); runs in a worker."""
    from ..api.arrays import filter_array

    loaded = load_or_stream(item, options, _memory_guard(item, outputs, options))
    if loaded is None:
        return _stream_item(item, outputs, options)
    reports = []
    rows = []
    geometries = []
    for (_label, applied), target in zip(outputs, item.destinations):
        start = time.perf_counter()
        done = filter_array(loaded.array, applied, options.settings)
        written = write_result(done.array, target, options.run.write, stdout_format(loaded))
        reports.append(_report(loaded, done, written, options, time.perf_counter() - start))
        geometries.append(done.plans[0].geometry)
        if item.figure is not None:
            from ..teach.figures import filter_row

            rows.append(filter_row(applied, done.array, options.settings.geometry.convolve))
    if item.figure is not None:
        from ..teach.figures import comparison_figure

        shape = options.settings.geometry
        comparison_figure(
            item.figure,
            loaded.array,
            rows,
            input_title=f"input {format_pair(loaded.array.shape[:2])} (HxW, {loaded.detail})",
            title=f"{loaded.source.stem}: {geometries[0].describe()}"
            + (", convolution (kernel flipped)" if shape.convolve else ", correlation")
            + (f", pad mode {shape.pad_mode}" if shape.pad_mode != "zeros" else ""),
            cmap=options.run.cmap,
            vmin=options.run.write.vmin,
            vmax=options.run.write.vmax,
            scale=options.run.write.scale,
        )
    return with_figure(reports, item.figure)


def _report(loaded: Any, done: Any, written: Any, options: FilterOptions, seconds: float) -> Report:
    shape = options.settings.geometry
    first = done.plans[0].geometry
    flipped = " flipped" if shape.convolve else ""
    steps = " -> ".join(
        f"{k.name} {format_pair(k.shape)}{flipped} ({p.geometry.describe()}) -> {format_pair(p.geometry.output)}"
        for k, p in zip(done.kernels, done.plans)
    )
    notes: list[str | None] = [zero_padding_hint(loaded.kind, done.kernels, done.plans, shape.pad_mode)]
    for kernel, plan in zip(done.kernels, done.plans):
        notes.append(uncovered_note(plan.geometry))
        if plan.geometry.stride != (1, 1):
            from ..teach.frequency import aliasing_note

            notes.append(aliasing_note(kernel.weights, plan.geometry.stride, kernel.name))
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
                {"spec": k.spec, "name": k.name, "shape": size_record(k.shape), "method": p.method}
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


def _stream_item(item: Item, outputs: list[tuple[str, list[Kernel]]], options: FilterOptions) -> list[Report]:
    """Filter one source strip by strip into each output (TIFF, PNG, npy): the bytes the in-memory run writes."""
    from ..run.streamed import stream_filter

    reports = []
    for (_label, applied), target in zip(outputs, item.destinations):

        def report(loaded: Any, result: Any, written: Any, done: Any, seconds: float, applied: Any = applied) -> Report:
            return _report(loaded, _StreamedFilter(result, tuple(applied), done.plan.plans), written, options, seconds)

        reports.append(stream_item(item, target, options, stream_filter, (applied, options.settings), report))
    return reports


@dataclass(frozen=True)
class _StreamedFilter:
    """What :func:`_report` reads of a streamed result: its stand-in array, the kernels and the plans."""

    array: Any
    kernels: tuple[Any, ...]
    plans: tuple[Any, ...]
