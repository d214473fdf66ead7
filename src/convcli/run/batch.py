"""Many sources in one run: expanding globs, source lists, output names, and running items in processes.

Pure core (no click): the commands describe each source as an :class:`Item`
(its destinations decided before any work starts), and :func:`run_items`
calls one picklable worker per item, serially or in a process pool. Results
come back in input order whatever the number of processes, so a parallel
run prints and writes exactly what a serial run does.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConvcliError, OutputUsageError, ParameterError, SourceError
from ..limits import format_bytes

GLOB_CHARACTERS = frozenset("*?[")
NAME_FIELDS = ("stem", "kernel", "ext", "index")
#: Sources read as raw arrays by their extension; their outputs keep it.
RAW_SUFFIXES = (".npy", ".txt", ".csv")
FORMAT_EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}
#: Most bytes read from a ``--from`` list (about a million paths; a list that never ends is cut here).
MAX_LIST_BYTES = 256 << 20
#: Most sources in one run (arguments, globs and ``--from`` together).
MAX_SOURCES = 1_000_000
#: Widest field a ``--name`` template may ask for (``{index:05d}``): a file name holds at most 255 bytes.
MAX_FIELD_WIDTH = 255
#: ``[[fill]align][sign][z][#][0][width][grouping][.precision][type]``: the format mini-language of one field
#: (compiled by ``re`` on first use: --name templates only, not at import).
_SPEC_PATTERN = r"^(?:.?[<>=^])?[+\- ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?[a-zA-Z%]?$"


# ---------------------------------------------------------------------------
# Sources


def is_pattern(text: str) -> bool:
    """True when ``text`` holds glob characters (``*``, ``?``, ``[``).

    >>> is_pattern("photos/**/*.png"), is_pattern("a.png")
    (True, False)
    """
    return not GLOB_CHARACTERS.isdisjoint(text)


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Expand quoted glob patterns (``**`` recurses into folders); keep every other source as written.

    ``-``, URLs and existing paths are kept even when they contain glob
    characters. Each pattern's matches are sorted; files only (folders that
    match are skipped). A pattern matching no file is an error, as a shell
    with ``failglob`` would say. A source given twice stays twice (its
    outputs then clash, which :func:`check_unique` refuses).

    Raises
    ------
    SourceError
        A pattern matched no file.
    """
    expanded: list[str] = []
    for text in sources:
        if text == "-" or "://" in text or not is_pattern(text) or os.path.exists(text):
            expanded.append(text)
            continue
        matches = sorted(m for m in _glob(text) if os.path.isfile(m))
        if not matches:
            raise SourceError(f"no file matches {text!r}; check the pattern (** matches folders at any depth)")
        expanded.extend(matches)
        if len(expanded) > MAX_SOURCES:
            raise SourceError(f"{text!r} matches more than {MAX_SOURCES:,} sources; split the run")
    return expanded


def _glob(pattern: str) -> set[str]:
    """``glob.glob(pattern, recursive=True)``, except that ``**`` never follows a symbolic link to a folder.

    As bash's ``globstar``: a link back up the tree (``a/up -> ..``) would otherwise be walked again and
    again, and two such links make the walk exponential (20 s and counting for one small folder).
    Hidden folders are skipped by ``**`` as :mod:`glob` does.
    """
    import glob  # imported when a run has patterns (with fnmatch): not for one file (start-up, issue 19)

    parts = pattern.split("/")
    if "**" not in parts:
        return set(glob.glob(pattern))
    cut = parts.index("**")
    head, rest = "/".join(parts[:cut]), "/".join(parts[cut + 1 :])
    relative = head == ""
    if relative:
        bases = ["."]
    elif is_pattern(head):
        bases = [d for d in glob.glob(head) if os.path.isdir(d)]
    else:
        bases = [head] if os.path.isdir(head) else []
    found: set[str] = set()
    for base in bases:
        for folder, subfolders, files in os.walk(base, followlinks=False):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            if rest:
                found.update(_glob(os.path.join(glob.escape(folder), rest)))
            else:
                found.update(os.path.join(folder, name) for name in files if not name.startswith("."))
            if len(found) > MAX_SOURCES:
                raise SourceError(f"{pattern!r} matches more than {MAX_SOURCES:,} sources; split the run")
    if relative:
        found = {name[2:] if name.startswith("./") else name for name in found}
    return found


def read_source_list(text: str, what: str = "--from") -> list[str]:
    """Sources from a list: one per line; blank lines and lines starting with ``#`` are skipped.

    >>> read_source_list("a.png\\n\\n# skipped\\n  b c.png  \\n")
    ['a.png', 'b c.png']
    """
    sources = [line.strip() for line in text.splitlines()]
    return [line for line in sources if line and not line.startswith("#")]


def _read_list_bytes(stream: Any, what: str) -> bytes:
    """At most :data:`MAX_LIST_BYTES` of a list (a FIFO fed forever, ``/dev/zero``), refused past that."""
    data = stream.read(MAX_LIST_BYTES + 1)
    if isinstance(data, str):  # a text stream without a binary side
        data = data.encode("utf-8")
    if len(data) > MAX_LIST_BYTES:
        raise SourceError(
            f"{what} is larger than {format_bytes(MAX_LIST_BYTES)}, the limit for a list of sources; split it into "
            "several runs"
        )
    return bytes(data)


def _list_text(data: bytes, what: str) -> list[str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(f"{what} is UTF-16 text; save it as UTF-8 (one source per line)")
    if b"\0" in data:
        raise SourceError(f"{what} holds NUL bytes: it is not a text list of sources (one per line)")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{what} is not UTF-8 text (byte {exc.start + 1}); save it as UTF-8") from None
    sources = read_source_list(text)
    if len(sources) > MAX_SOURCES:
        raise SourceError(f"{what} lists {len(sources):,} sources, more than {MAX_SOURCES:,}; split it into runs")
    return sources


def read_source_file(path: str, stdin: Any = None) -> list[str]:
    """Read ``--from FILE`` (``-`` reads ``stdin``), at most :data:`MAX_LIST_BYTES` and :data:`MAX_SOURCES` lines.

    UTF-8 (a byte-order mark is skipped); NUL bytes (a binary file given by mistake) are refused.
    """
    if path == "-":
        if stdin is None:
            raise SourceError("no standard input to read --from - from")
        stream = getattr(stdin, "buffer", stdin)
        try:
            terminal = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            terminal = False
        if terminal:
            raise SourceError("--from - reads standard input, which is a terminal; pipe the list in (ls *.png | ...)")
        data = _read_list_bytes(stream, "--from -")
        return _list_text(data, "--from -")
    shown = path if len(path) <= 160 else path[:80] + "…" + path[-80:]
    what = f"--from {shown!r}"
    try:
        with open(path, "rb") as stream:
            data = _read_list_bytes(stream, what)
    except FileNotFoundError:
        raise SourceError(f"{what} does not exist; give a file with one source per line, or - for stdin") from None
    except IsADirectoryError:
        raise SourceError(f"{what} is a folder; give a file with one source per line (or a quoted glob)") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise SourceError(f"{what} is too long a name for the file system; use a shorter path") from None
        raise SourceError(f"cannot read {what}: {exc.strerror or exc}") from None
    return _list_text(data, what)


# ---------------------------------------------------------------------------
# Output names


def source_stem(text: str) -> str:
    """The stem used in output names (``stdin`` for ``-``); same rule as :class:`convcli.io.Source`."""
    from ..io import classify_source

    return classify_source(text).stem


def default_extension(source: str, output_format: str | None, stdin_is_array: bool = False) -> str:
    """Extension of an output: ``--format``'s, else the source's own for .npy/.txt/.csv arrays, else png.

    >>> default_extension("a.jpg", None), default_extension("x.txt", None), default_extension("x.txt", "jpeg")
    ('png', 'txt', 'jpg')
    """
    if output_format:
        return FORMAT_EXTENSIONS.get(output_format, output_format)
    if source == "-":
        return "txt" if stdin_is_array else "png"
    name = os.path.basename(source.split("?", 1)[0])
    suffix = os.path.splitext(name)[1].lower() if not name.startswith(".") or name.count(".") > 1 else ""
    if suffix in RAW_SUFFIXES:
        return suffix.lstrip(".")
    return "png"


@functools.lru_cache(maxsize=64)
def check_template(template: str, option: str = "--name") -> None:
    """Refuse a template with fields other than ``{stem}``, ``{kernel}``, ``{ext}``, ``{index}``, or whose format
    spec asks for more than :data:`MAX_FIELD_WIDTH` characters (``{index:99999999999}`` would allocate gigabytes).

    >>> check_template("{index:03d}-{stem:.20}.{ext}")
    >>> check_template("{stem:>99999999}")
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: --name '{stem:>99999999}' asks for a field 99,999,999 characters wide; a file name holds at most 255 bytes
    """
    shown = template if len(template) <= 80 else template[:40] + "…" + template[-40:]
    if len(os.fsencode(template)) > 4 * MAX_FIELD_WIDTH:
        raise ParameterError(f"{option} {shown!r} is {len(template):,} characters long; a file name holds 255 bytes")
    import string

    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)]
    except ValueError as exc:
        raise ParameterError(f"{option} {shown!r} is not a valid template ({exc}); write fields as {{stem}}") from None
    for name, spec, conversion in fields:
        if name is None:
            continue
        if name not in NAME_FIELDS:
            raise ParameterError(
                f"{option} {shown!r} uses {{{name}}}; the fields are {', '.join('{' + f + '}' for f in NAME_FIELDS)}"
            )
        if conversion is not None:
            raise ParameterError(f"{option} {shown!r} uses !{conversion}; write the field plainly, as {{{name}}}")
        if not spec:
            continue
        match = re.match(_SPEC_PATTERN, spec)
        if "{" in spec or match is None:
            raise ParameterError(
                f"{option} {shown!r}: {{{name}:{spec[:20]}}} is not a format this field takes (e.g. {{index:03d}})"
            )
        for digits in match.groups():
            if digits and (len(digits) > 6 or int(digits) > MAX_FIELD_WIDTH):
                width = f"{int(digits):,}" if len(digits) <= 30 else f"{len(digits)}-digit numbers of"
                raise ParameterError(
                    f"{option} {shown!r} asks for a field {width} characters wide; a file name holds at most "
                    f"{MAX_FIELD_WIDTH} bytes"
                )


def output_name(template: str, *, stem: str, kernel: str, ext: str, index: int, option: str = "--name") -> str:
    """Fill a name template; ``{index}`` is the source's position from 1 and takes format specs (``{index:03d}``).

    >>> output_name("{stem}.{kernel}.{ext}", stem="cat", kernel="sobel-x", ext="png", index=1)
    'cat.sobel-x.png'
    >>> output_name("{index:03d}-{stem}.png", stem="cat", kernel="k", ext="png", index=7)
    '007-cat.png'
    """
    check_template(template, option)
    try:
        return template.format(stem=stem, kernel=kernel, ext=ext, index=index)
    except (ValueError, IndexError, TypeError, OverflowError) as exc:
        raise ParameterError(f"{option} {template!r} cannot be filled ({' '.join(str(exc).split())})") from None


def check_unique(destinations: Sequence[tuple[str, str]]) -> None:
    """Refuse two outputs with the same path, before any work: ``destinations`` holds (path, source) pairs.

    ``-`` (stdout) is not a path and is skipped.
    """
    seen: dict[str, str] = {}
    for path, source in destinations:
        if path == "-":
            continue
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            first = seen[key]
            which = f"from {first!r} and {source!r}" if first != source else f"from {source!r}"
            raise OutputUsageError(
                f"two outputs would both be written to {path!r} ({which}); "
                "put {stem}, {kernel} or {index} in --name (or {stem} in --figure)"
            )
        seen[key] = source


# ---------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class Item:
    """One source and where its outputs go (decided before any work starts)."""

    index: int
    source: str
    destinations: tuple[str, ...]
    figure: str | None = None
    data: bytes | None = field(default=None, repr=False)  # stdin, read once by the parent


@dataclass(frozen=True)
class Outcome:
    """What one item gave: ``value`` from the worker, or ``error`` (one line) and its exit code."""

    item: Item
    value: Any = None
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def _call(worker: Callable[[Item], Any], item: Item) -> Outcome:
    """Run one item, turning a user's error (:class:`ConvcliError`, an OS error) into an Outcome."""
    start = time.perf_counter()
    try:
        value = worker(item)
    except ConvcliError as exc:
        return Outcome(item, error=str(exc), exit_code=exc.exit_code, seconds=time.perf_counter() - start)
    except (OSError, MemoryError) as exc:
        text = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
        return Outcome(item, error=text, exit_code=1, seconds=time.perf_counter() - start)
    return Outcome(item, value=value, seconds=time.perf_counter() - start)


def _init_worker(parent: int, threads: int | None = None) -> None:
    """Workers ignore Ctrl-C (the parent stops handing out items and lets running ones finish their files),
    end when the parent is gone (killed, or ended by SIGTERM), and run at most ``threads`` engine threads
    (:func:`convcli.parallel.limit_pool`: the work is cut as in the parent, so the bytes are the same).

    A worker whose parent died would otherwise wait forever on the task queue (its siblings keep the
    queue's pipe open). It sends itself SIGTERM, which the atomic writer holds until the output being
    written is complete and renamed, so no partial file is left behind.
    """
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        from ..parallel import limit_pool

        limit_pool(threads)

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, name="convcli-parent-watch", daemon=True).start()


def default_jobs() -> int:
    """One process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def max_jobs() -> int:
    """Most worker processes a run starts: four per core (at least 8); ``--jobs 100000`` would fork a process
    per source, each importing NumPy, until the machine gives out."""
    return max(8, 4 * default_jobs())


def run_items(
    items: Sequence[Item],
    worker: Callable[[Item], Any],
    *,
    jobs: int = 1,
    fail_fast: bool = False,
    on_done: Callable[[int, int], None] | None = None,
) -> Iterator[Outcome]:
    """Run ``worker`` on every item; yield the outcomes in input order.

    Parameters
    ----------
    worker : callable
        A module-level function (or ``functools.partial`` of one) taking an
        :class:`Item`, so that it can be sent to another process.
    jobs : int
        Processes; 1 (or a single item) runs in this process.
    fail_fast : bool
        Stop after the first failed item: items not started are dropped, the
        failure is the last outcome yielded.
    on_done : callable, optional
        ``on_done(finished, failed)`` after each item completes (in completion
        order), for a progress bar.

    Notes
    -----
    Workers ignore SIGINT. On Ctrl-C the parent cancels the items not
    started, waits for the running ones (each writes its files atomically)
    and re-raises ``KeyboardInterrupt``: only complete outputs are left.
    """
    jobs = min(jobs, max_jobs())
    if jobs <= 1 or len(items) <= 1:
        failed = 0
        for number, item in enumerate(items, 1):
            outcome = _call(worker, item)
            failed += not outcome.ok
            if on_done:
                on_done(number, failed)
            yield outcome
            if fail_fast and not outcome.ok:
                return
        return
    yield from _run_pool(items, worker, jobs, fail_fast, on_done)


def _run_pool(
    items: Sequence[Item],
    worker: Callable[[Item], Any],
    jobs: int,
    fail_fast: bool,
    on_done: Callable[[int, int], None] | None,
) -> Iterator[Outcome]:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    processes = min(jobs, len(items))
    # Each worker runs its engine shares on its part of the cores (the cuts, and so the bytes, stay --jobs 1's).
    threads = max(1, default_jobs() // processes)
    executor = ProcessPoolExecutor(max_workers=processes, initializer=_init_worker, initargs=(os.getpid(), threads))
    ready: dict[int, Outcome] = {}
    next_index = 0
    finished = failed = 0
    stop = False
    try:
        pending = {executor.submit(_call, worker, item): position for position, item in enumerate(items)}
        while pending and not stop:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                position = pending.pop(future)
                outcome = future.result()
                ready[position] = outcome
                finished += 1
                failed += not outcome.ok
                if on_done:
                    on_done(finished, failed)
            while next_index in ready:
                outcome = ready.pop(next_index)
                next_index += 1
                yield outcome
                if fail_fast and not outcome.ok:
                    stop = True
                    break
        if stop:
            for future in pending:
                future.cancel()
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True, cancel_futures=True)
