"""How results are told: messages on stderr, JSON on stdout, the phrasing of geometry, notes and pixel ranges."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from ..shapes import format_pair, size_record  # noqa: F401  (size_record: re-exported for the commands)


def _redact(text: str) -> str:
    """Credentials in URLs hidden (``http://***@host/``); imported only when a message holds an ``@``."""
    if "@" not in text:
        return text
    from ..io.sources import redact

    return redact(text)


#: Control characters (a file named with a newline or a terminal escape) shown as escapes, never sent raw.
_CONTROL = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def printable(text: str) -> str:
    """``text`` with control characters escaped, so a message stays one line and cannot drive the terminal.

    >>> print(printable("a" + chr(10) + "b" + chr(27) + "]0;title" + chr(7) + ".png"))
    a\\nb\\x1b]0;title\\x07.png
    """
    return text.translate(_CONTROL) if not text.isprintable() else text


def message(text: str, quiet: bool = False) -> None:
    """A message for people: always stderr, one line each (credentials in URLs hidden, control characters escaped)."""
    if not quiet:
        click.echo(printable(_redact(text)), err=True)


def emit_json(record: dict[str, Any]) -> None:
    """One JSON line on stdout (credentials in URLs hidden, as in every message)."""
    import json  # --json only

    click.echo(_redact(json.dumps(record, separators=(", ", ": "))))


def percent(part: int, total: int) -> str:
    """A share as people write it, about two significant digits and never an exponent (``1e+02%``):
    ``100%`` only when it is all, ``0%`` only when it is none.

    >>> percent(4, 4), percent(47, 50), percent(1, 8), percent(3, 10_000), percent(1, 10**7), percent(9_996, 10**4)
    ('100%', '94%', '12%', '0.03%', '<0.01%', '99.96%')
    """
    if part <= 0:
        return "0%"
    if part >= total:
        return "100%"
    share = 100.0 * part / total
    if share < 0.01:
        return "<0.01%"
    fewest = 0 if share >= 10 else 1 if share >= 1 else 2
    for digits in range(fewest, 7):  # more decimals only where rounding would say 100% of a part
        text = f"{share:.{digits}f}"
        if float(text) < 100:
            return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"
    return ">99.9999%"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


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


def labelled_size(shape: Sequence[int]) -> str:
    """A size as every report line starts it: ``300x451 (HxW)``, height (rows) first as NumPy and PyTorch write
    shapes; later sizes on the same line are in the same order, unlabelled.

    >>> labelled_size((300, 451))
    '300x451 (HxW)'
    """
    return f"{int(shape[0])}x{int(shape[1])} (HxW)"


#: Report lines starting with this are said once per run, however many sources and outputs share them.
HINT = "hint: "


def zero_padding_hint(kind: str, kernels: Sequence[Any], plans: Sequence[Any], pad_mode: str) -> str | None:
    """A hint toward ``--pad-mode replicate`` when a smoothing kernel (weights >= 0, sum > 0) meets zero padding on an
    image: the zeros are black, so a 'same' blur gets a dark frame. Raw arrays get no hint (zeros may be meant)."""
    if kind != "image" or pad_mode != "zeros":
        return None
    for kernel, plan in zip(kernels, plans):
        padded = any(side > 0 for pair in plan.geometry.padding for side in pair)
        weights = kernel.weights
        if padded and float(weights.min()) >= 0 and float(weights.sum()) > 0:
            return (
                f"{HINT}zero padding is black, so this {kernel.name} blur fades to dark along the borders; "
                "--pad-mode replicate (or reflect) keeps them as bright as the image"
            )
    return None


def pixel_summary(mapping: Any, depth: int | str, total: int = 0) -> str:
    """`` [low, high] -> 0..255 (minmax)`` for the report line; empty for raw outputs (no mapping). A percentile
    mapping says how much it saturated: ``(percentile:99.5, 0.5% saturated)``."""
    if mapping is None:
        return ""
    how = mapping.scale
    if mapping.scale.startswith("percentile") and mapping.clipped:
        how += f", {percent(mapping.clipped, total) if total else plural(mapping.clipped, 'value')} saturated"
    return f" [{mapping.low:.4g}, {mapping.high:.4g}] -> 0..{(1 << int(depth)) - 1} ({how})"


def mapping_record(mapping: Any) -> dict[str, Any]:
    """The ``scale`` and ``clipped`` fields of a --json record."""
    return {
        "scale": None if mapping is None else {"mode": mapping.scale, "low": mapping.low, "high": mapping.high},
        "clipped": 0 if mapping is None else mapping.clipped,
    }


def clipped_note(mapping: Any, total: int) -> str | None:
    """A note when values were clipped (not for percentile, whose point is to saturate the extreme few)."""
    if mapping is None or not mapping.clipped or mapping.scale.startswith("percentile"):
        return None
    return (
        f"note: {plural(mapping.clipped, 'value')} ({percent(mapping.clipped, max(total, 1))}) fell outside [{mapping.low:g}, {mapping.high:g}] "
        f"and were clipped; --scale minmax or wider --vmin/--vmax keeps them"
    )


@dataclass(frozen=True)
class Report:
    """One output's report: ``lines`` for stderr, ``record`` for --json."""

    lines: tuple[str, ...]
    record: dict[str, Any]


def format_duration(seconds: float) -> str:
    """``0:07``, ``2:05``, ``1:02:03``.

    >>> format_duration(7.2), format_duration(125), format_duration(3723)
    ('0:07', '2:05', '1:02:03')
    """
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(done: int, total: int, failed: int, elapsed: float, width: int = 24) -> str:
    """``[#########...............] 3/8 1.5/s ETA 0:03``; rate and ETA once something is done.

    >>> progress_line(2, 8, 0, 4.0, width=8)
    '[##......] 2/8 0.5/s ETA 0:12'
    """
    filled = int(width * done / max(total, 1))
    text = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
    if done and elapsed > 0:
        rate = done / elapsed
        text += f" {rate:.2g}/s ETA {format_duration((total - done) / rate)}"
    if failed:
        text += f" ({failed} failed)"
    return text


class Progress:
    """A one-line progress bar redrawn in place on a terminal (stderr)."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.done = self.failed = 0
        self.shown = False

    def update(self, done: int, failed: int) -> None:
        self.done, self.failed = done, failed
        self.draw()

    def draw(self) -> None:
        line = progress_line(self.done, self.total, self.failed, time.perf_counter() - self.start)
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def output_report(
    loaded: Any,
    result: Any,
    written: Any,
    seconds: float,
    *,
    operation: str,
    fields: dict[str, Any],
    notes: Sequence[str | None] = (),
    depth: int = 8,
) -> Report:
    """One output's report, the same shape for filter, pool and upsample.

    The line reads ``SOURCE HxW (HxW, what was read) OPERATION -> DESTINATION [low, high] -> 0..255 (scale)``
    (every size height first: ``photo.png 300x451 (HxW, PNG RGB 8-bit)`` is 451 pixels wide),
    followed by the ``notes`` that are not ``None`` and the clipping note; the
    JSON record holds ``source``, ``input`` and ``read_as``, then the
    command's ``fields``, then ``output``, ``path``, ``format``, ``scale``,
    ``clipped`` and ``seconds``.
    """
    mapping = written.mapping
    where = "stdout" if written.destination == "-" else written.destination
    record = {
        "source": loaded.source.text,
        "input": size_record(loaded.array.shape),
        "read_as": loaded.detail,
        **fields,
        "output": size_record(result.shape),
        "path": where,
        "format": written.fmt,
        **mapping_record(mapping),
        "seconds": round(seconds, 4),
    }
    shape = loaded.array.shape
    line = f"{loaded.source.display} {shape[0]}x{shape[1]} (HxW, {loaded.detail}) {operation} -> {where}{pixel_summary(mapping, depth, int(result.size))}"
    lines = [line, *(note for note in notes if note), clipped_note(mapping, result.size)]
    return Report(tuple(line for line in lines if line), record)


def streamed_record(done: Any) -> dict[str, Any]:
    """The ``streamed`` field of a --json record: strip height, passes, estimated peak and, split, the split.

    ``done`` is the :class:`~convcli.run.streamed.Streamed` of the run; a run split across Dask workers (a
    :class:`~convcli.run.cluster_split.Split`) adds ``split``: the workers at the start, the tasks per pass
    (each a run of whole strips), the most tasks in flight and where the workers got their rows.
    """
    record: dict[str, Any] = {"strip_rows": done.rows, "passes": done.passes, "estimate": done.estimate.total}
    if getattr(done, "tasks", 0):
        record["split"] = {
            "workers": done.workers,
            "tasks": done.tasks,
            "window": done.window,
            "rows_from": done.rows_from,
        }
    return record


def with_figure(reports: Sequence[Report], figure: str | None) -> list[Report]:
    """The reports of one source, told that its figure was written (a last line, and ``figure`` in every record)."""
    if figure is None:
        return list(reports)
    for report in reports:
        report.record["figure"] = figure
    last = reports[-1]
    return [*reports[:-1], Report((*last.lines, f"figure -> {figure}"), last.record)]
