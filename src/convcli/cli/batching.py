"""Options and steps shared by the commands that take many sources: batches, figures, progress.

The pure parts (globs, names, the process pool) live in :mod:`convcli.run.batch`;
this module plans the outputs of a run and runs its items, reporting each.
A command builds its :class:`~convcli.run.batch.Item` list with :func:`plan_items`
and hands a picklable worker to :func:`execute`. The worker returns a list
of :class:`Report` (one per output): what to print, in order, on stderr
or as JSON lines on stdout.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from ..api.settings import ReadSettings
from ..errors import OutputError, OutputUsageError, ParameterError
from ..run.batch import (
    Item,
    Outcome,
    check_unique,
    default_extension,
    default_jobs,
    expand_sources,
    is_pattern,
    max_jobs,
    output_name,
    read_source_file,
    run_items,
    source_stem,
)
from ..shapes import format_pair
from .option_records import RunOptions
from .params import remembered_inputs
from .reports import HINT, Progress, Report, emit_json, message, plural
from .streams import binary_stream, check_outputs, load

# ---------------------------------------------------------------------------
# Planning


@dataclass
class Plan:
    """The items of a run and whether it is a batch (errors per source, summary line)."""

    items: list[Item]
    batch: bool
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Gathered:
    """The sources of a run: globs and folders expanded, whether it is a batch, and for each image found in a
    folder under --recursive its subfolder there (kept in its output's path: ``a/x.png`` and ``b/x.png`` never
    clash)."""

    sources: list[str]
    batch: bool
    subfolders: dict[str, str] = field(default_factory=dict)


def _expand_folders(sources: Sequence[str], recursive: bool) -> tuple[list[str], dict[str, str], int]:
    """Each folder among ``sources`` replaced by its images (sorted; see :func:`convcli.io.sources.folder_images`)."""
    from ..io.sources import folder_images
    from ..io.zarrpaths import is_zarr
    from ..run.batch import MAX_SOURCES

    expanded: list[str] = []
    subfolders: dict[str, str] = {}
    folders = 0
    for source in sources:
        if source == "-" or "://" in source or not os.path.isdir(source) or is_zarr(source):
            expanded.append(source)  # a Zarr store is a folder but one source (streamed by io.zarrs)
            continue
        folders += 1
        for path, subfolder in folder_images(source, recursive, limit=MAX_SOURCES):
            expanded.append(path)
            if subfolder:
                subfolders[path] = subfolder
    if recursive and not folders:
        raise ParameterError("--recursive lists the subfolders of a folder SOURCE, and no source is a folder")
    return expanded, subfolders, folders


def gather_sources(sources: Sequence[str], run: RunOptions) -> Gathered:
    """Sources from the arguments (folders and globs expanded) and --from, and whether this is a batch."""
    from_file = run.from_file
    listed: list[str] = []
    if from_file is not None:
        if from_file == "-" and "-" in sources:
            raise OutputUsageError("--from - and the source - both read standard input; use one of them")
        listed = read_source_file(from_file, sys.stdin)
        if not listed and not sources:
            raise ParameterError(f"--from {from_file!r} lists no source")
    if not sources and from_file is None:
        raise click.UsageError("give at least one SOURCE (a file, a quoted glob, a URL or -), or --from FILE")
    given = [*sources, *listed]
    listed_out, subfolders, folders = _expand_folders(given, run.recursive)
    expanded = expand_sources(listed_out)
    batch = (
        len(expanded) > 1
        or from_file is not None
        or folders > 0
        or any(is_pattern(s) and s not in expanded for s in sources)
        or run.outdir is not None
        or run.scheduler is not None
    )
    return Gathered(expanded, batch, subfolders)


def plan_items(
    sources: Sequence[str],
    labels: Sequence[str],
    run: RunOptions,
    batch: bool,
    *,
    one_per_source: bool = False,
    subfolders: dict[str, str] | None = None,
) -> Plan:
    """Decide every destination before any work; refuse clashes, missing folders and clobbered inputs.

    ``labels`` holds one label per output of a source (kernel names for
    filter, ``max2`` for pool...). Standard input is read here, once.
    ``subfolders`` maps the images found under a folder's subfolders
    (``--recursive``) to that subfolder, kept between --outdir (or the current
    folder) and the output's name; those folders are created.
    """
    output, outdir, template, figure = run.output, run.outdir, run.name_template, run.figure
    subfolders = subfolders or {}
    if batch and output not in (None, "-") and outdir is None and (os.path.isdir(output) or output.endswith("/")):
        output, outdir = None, output  # -o DIR/ on a batch (a folder, a glob): the folder the outputs go to
    count = len(sources) * len(labels)
    if output is not None and (outdir is not None or template is not None):
        raise OutputUsageError("-o names the output itself; drop -o to use --outdir/--name")
    if output is not None and count > 1:
        makes = f"has {len(sources)} sources" if one_per_source else f"makes {count}"
        raise OutputUsageError(
            f"-o names one output but this run {makes}; drop -o to get <stem>-{{kernel}} names (or use --outdir)"
        )
    if output == "-" and run.as_json:
        raise OutputUsageError("-o - and --json both write to stdout; choose one")
    if figure is not None:
        from ..teach.figures import check_figure_path, require_matplotlib

        check_figure_path(figure)
        require_matplotlib()
    data = None
    stdin_is_array = False
    if "-" in sources:
        from ..io import read_stdin_bytes, sniff

        data = read_stdin_bytes(binary_stream("stdin"))
        stdin_is_array = sniff(data) in (None, "NPY")
    if outdir is not None:
        try:
            os.makedirs(outdir, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create --outdir {outdir!r}: {exc.strerror or exc}") from None
    items = []
    pairs: list[tuple[str, str]] = []
    figures: list[tuple[str, str]] = []
    for index, source in enumerate(sources, 1):
        stem = source_stem(source)
        ext = default_extension(source, run.write.format, stdin_is_array)
        destinations = []
        for label in labels:
            if output is not None:
                target = output
            elif source == "-" and not batch and template is None and len(labels) == 1 and not run.as_json:
                # Read from a pipe, written to the pipe: `cat x.png | convcli filter - -k v > out.png` works, and
                # no stray stdin-<kernel>.png appears in the current folder (a terminal gets a clear refusal).
                target = "-"
            else:
                target = output_name(template or "{stem}-{kernel}.{ext}", stem=stem, kernel=label, ext=ext, index=index)
                if source in subfolders:
                    target = os.path.join(subfolders[source], target)
                if outdir is not None:
                    target = os.path.join(outdir, target)
            destinations.append(target)
            pairs.append((target, source))
        figure_path = None
        if figure is not None:
            figure_path = output_name(
                figure, stem=stem, kernel="+".join(labels), ext=ext, index=index, option="--figure"
            )
            figures.append((figure_path, source))
        items.append(Item(index, source, tuple(destinations), figure_path, data if source == "-" else None))
    check_unique(pairs + figures)
    _check_formats([p for p, _ in pairs], run.write.format)
    _make_subfolders([p for p, source in pairs if source in subfolders])
    # Kernel files and the --from list are inputs too: no output may replace them.
    inputs = [*sources, *remembered_inputs(), *([run.from_file] if run.from_file not in (None, "-") else [])]
    check_outputs([p for p, _ in pairs + figures], inputs)
    return Plan(items, batch, list(sources))


def short_pair(pair: tuple[int, int]) -> str:
    """``2`` for 2x2, ``4x2`` otherwise (in output labels: ``max2``, ``up4x2``)."""
    return str(pair[0]) if pair[0] == pair[1] else format_pair(pair)


def _make_subfolders(destinations: list[str]) -> None:
    """Create the folders that keep a --recursive folder's layout (``out/a/``, ``out/b/``) before the checks."""
    for folder in sorted({os.path.dirname(d) for d in destinations}):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {folder!r}: {exc.strerror or exc}") from None


def _check_formats(destinations: list[str], requested: str | None) -> None:
    from ..io import output_format

    checked: set[str] = set()
    for destination in destinations:
        if destination == "-":
            continue
        suffix = os.path.splitext(destination)[1].lower()  # the format depends on the suffix alone
        if suffix not in checked or not suffix:
            output_format(destination, requested)
            checked.add(suffix)


def load_item(item: Item, read: ReadSettings, run: RunOptions, on_size: Any = None) -> Any:
    """Load an item's source with the command's read settings (stdin from the bytes the parent read)."""
    return load(
        item.source,
        read,
        quiet=run.silent,
        on_size=on_size,
        stdin=io.BytesIO(item.data) if item.data is not None else None,
    )


# ---------------------------------------------------------------------------
# Running and reporting


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _show(reports: Sequence[Report], run: RunOptions, hints: set[str] | None = None) -> None:
    """Print reports (JSON records, or their lines); a ``hint:`` line only the first time in ``hints``."""
    hints = set() if hints is None else hints
    for report in reports:
        if run.as_json:
            emit_json(report.record)
        else:
            for line in report.lines:
                if line.startswith(HINT):
                    if line in hints:
                        continue
                    hints.add(line)
                message(line, run.quiet)


def execute(ctx: click.Context, plan: Plan, worker: Callable[[Item], list[Report]], run: RunOptions) -> None:
    """Run the plan's items and report: per output, per failure, and a summary line for batches.

    A single source outside a batch runs here and its error is the command's
    error (with its own exit code). In a batch a failing source is one line
    on stderr (and a JSON record with ``error``), the others still run, and
    the exit code is 1.
    """
    quiet = run.quiet
    hints: set[str] = set()
    if not plan.batch:
        for item in plan.items:
            _show(worker(item), run, hints)
        return
    total = len(plan.items)
    if run.jobs is not None and run.jobs > max_jobs() and total > max_jobs():
        message(f"note: --jobs {run.jobs} is more than this machine can use; running {max_jobs()} at once", quiet)
    progress = Progress(total) if total > 1 and not quiet and stderr_is_terminal() else None
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if run.scheduler is not None:
            from ..run.cluster import Cluster, parse_scheduler, run_items_on_cluster

            cluster = stack.enter_context(Cluster(parse_scheduler(run.scheduler), run.scheduler_timeout))
            outcomes = run_items_on_cluster(
                plan.items, worker, cluster, fail_fast=run.fail_fast, on_done=progress.update if progress else None
            )
        else:
            outcomes = run_items(
                plan.items,
                worker,
                jobs=run.jobs or default_jobs(),
                fail_fast=run.fail_fast,
                on_done=progress.update if progress else None,
            )
        done, failed = _report_outcomes(ctx, outcomes, run, progress, total, hints)
    if total > 1:
        skipped = total - done - failed
        summary = f"{plural(total, 'source')}: {done} done, {failed} failed in {time.perf_counter() - start:.2f} s"
        if skipped:
            summary += f"; {skipped} not run (--fail-fast)"
        message(summary, quiet)
    if failed:
        ctx.exit(1)


def _report_outcomes(
    ctx: click.Context,
    outcomes: Iterable[Outcome],
    run: RunOptions,
    progress: Progress | None,
    total: int,
    hints: set[str] | None = None,
) -> tuple[int, int]:
    """Print each outcome in input order (a failure as one error line); returns (done, failed)."""
    done = failed = 0
    try:
        for outcome in outcomes:
            if progress:
                progress.clear()
            if outcome.ok:
                done += 1
                _show(outcome.value, run, hints)
            else:
                failed += 1
                text = outcome.error or "failed"
                source = outcome.item.source
                shown = "stdin" if source == "-" else source
                if shown not in text and repr(shown) not in text:
                    text = f"{shown}: {text}"
                message(f"{ctx.command_path}: error: {text}")
                if run.as_json:
                    emit_json({"source": source, "error": outcome.error, "seconds": round(outcome.seconds, 4)})
            if progress and done + failed < total:
                progress.draw()
    finally:
        if progress:
            progress.clear()
    return done, failed


def run_command(
    ctx: click.Context,
    sources: Sequence[str],
    labels: Sequence[str],
    worker: Callable[[Item], list[Report]],
    run: RunOptions,
    *,
    one_per_source: bool = False,
    worker_for: Callable[[int], Callable[[Item], list[Report]]] | None = None,
) -> None:
    """What every command over SOURCE... does: gather the sources, plan every output, run the items and report.

    ``worker_for(n)``, when given, makes the worker from the number of items the run will have (``filter``
    hands it to its plan: OpenCV's import shared by the job's images); otherwise ``worker`` runs every item.
    """
    gathered = gather_sources(sources, run)
    plan = plan_items(
        gathered.sources, labels, run, gathered.batch, one_per_source=one_per_source, subfolders=gathered.subfolders
    )
    if worker_for is not None:
        worker = worker_for(len(plan.items))
    execute(ctx, plan, worker, run)
