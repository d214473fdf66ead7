"""Atomic writes: a hidden temporary file beside the destination, renamed into place with SIGINT/SIGTERM held."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError, OutputUsageError


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two paths name the same file (through links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


#: Longest file name (one path component) most file systems accept, in bytes, when ``pathconf`` cannot say.
NAME_MAX = 255
#: Characters a temporary name adds around the destination's name: ``.<name>.<8 random>.part``.
_PART_EXTRA = 16


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _shown(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit // 2] + "…" + text[-(limit // 2) :]


def check_output_path(destination: str, folders: dict[str, bool] | None = None) -> None:
    """Fail before any work when the output's folder is missing, the path is a folder, or a name is too long.

    ``folders`` caches the folders already checked (a batch writes thousands of files into one folder).
    """
    if destination == "-":
        return
    encoded = os.fsencode(destination)
    longest = max(len(part) for part in encoded.split(b"/"))
    if longest > NAME_MAX or len(encoded) > 4095:
        raise OutputUsageError(
            f"output {_shown(destination)!r} has a name of {longest:,} bytes ({len(encoded):,} in all); file "
            f"systems allow {NAME_MAX} per name; choose a shorter -o, --name or --outdir"
        )
    key = os.path.dirname(destination) or "."
    known = None if folders is None else folders.get(key)
    if known is None:
        known = os.path.isdir(key)
        if folders is not None:
            folders[key] = known
    if not known:
        raise OutputUsageError(f"output folder {_shown(key)!r} does not exist; create it first (mkdir -p {key})")
    kind = _special_file(destination)
    if kind in ("block device", "socket"):
        raise OutputUsageError(
            f"output {_shown(destination)!r} is a {kind}; convcli writes files, FIFOs and character devices"
        )
    # A Zarr store is a folder: an existing one is replaced when the new one is complete (io.zarrs).
    zarr_store = destination.lower().rstrip("/").endswith(".zarr") and any(
        os.path.isfile(os.path.join(destination, marker)) for marker in ("zarr.json", ".zarray", ".zgroup")
    )
    if os.path.isdir(destination) and not zarr_store:
        raise OutputUsageError(
            f"output {_shown(destination)!r} is a folder; give a file name such as {destination.rstrip('/')}/out.png"
        )


def check_output_paths(destinations: list[str]) -> None:
    """:func:`check_output_path` for many outputs, each folder checked once."""
    folders: dict[str, bool] = {}
    for destination in destinations:
        check_output_path(destination, folders)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a file is written and renamed: they take effect before or after, never in between.

    A signal that arrives meanwhile is recorded by a temporary handler and raised
    again once the previous handlers are back (so Ctrl-C still ends in
    KeyboardInterrupt and SIGTERM still ends the process). Blocking the signals
    with ``pthread_sigmask`` is not enough: NumPy's BLAS threads would take
    SIGTERM and end the process mid-write. Main thread only; elsewhere a no-op.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if signum is None:
            continue
        handler = signal.getsignal(signum)
        if handler is None or handler == signal.SIG_IGN:
            continue  # installed outside Python (cannot be restored) or ignored anyway
        previous[signum] = handler
        signal.signal(signum, lambda number, _frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])


def write_atomic(destination: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``destination`` and rename it into place.

    The temporary file is hidden and named ``.<name>.<random>.part``; it is
    removed on any error. SIGINT and SIGTERM are held during the write and the
    rename (see :func:`_signals_held`), so an interrupted run leaves either the
    old file or the new one, never a partial one; only SIGKILL (or a crash of
    the machine) can leave a ``.part`` file behind.
    """
    special = _special_file(destination)
    if special is not None:
        _write_special(destination, data, special)
        return
    with _signals_held():
        _write_atomic(destination, data)


def _special_file(destination: str | Path) -> str | None:
    """What an existing destination is when it is not a regular file (``FIFO``, ``character device``...)."""
    import stat

    try:
        mode = os.stat(destination).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return None


def _write_special(destination: str | Path, data: bytes, kind: str) -> None:
    """Write into a FIFO or a character device (``-o /dev/null``, a named pipe) instead of replacing it by a file.

    Renaming a regular file over a FIFO would leave its reader with nothing and, run as root, replace
    ``/dev/null`` itself. Block devices and sockets are refused; a FIFO without a reader is an error,
    not a wait; a terminal does not take binary formats (as ``-o -``).
    """
    shown = _shown(str(destination))
    if kind in ("block device", "socket"):
        raise OutputUsageError(f"output {shown!r} is a {kind}; convcli writes files, FIFOs and character devices")
    try:
        descriptor = os.open(destination, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(f"output {shown!r} is a FIFO that nobody reads; start its reader first") from None
        raise OutputError(f"cannot write {shown!r}: {exc.strerror or exc}") from None
    try:
        os.set_blocking(descriptor, True)
        if os.isatty(descriptor) and not data.isascii():
            raise OutputUsageError(f"refusing to write binary output to the terminal {shown!r}; redirect or pipe it")
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    except OSError as exc:
        raise OutputError(f"cannot write {shown!r}: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)


def _create_part(directory: Path, stem: str) -> tuple[int, str]:
    """A new temporary file ``.STEM.XXXXXXXX.part`` in ``directory``: its descriptor and absolute path.

    As ``tempfile.mkstemp`` makes it (a name no file has, created exclusively, mode 0600, links not
    followed), without importing :mod:`tempfile` and with it shutil and random: more start-up than
    the rest of the write of a small file (issue 19).
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(10_000):  # tempfile.TMP_MAX tries
        name = os.path.join(directory, f".{stem}.{os.urandom(4).hex()}.part")
        try:
            return os.open(name, flags | getattr(os, "O_BINARY", 0), 0o600), os.path.abspath(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name for {stem!r} in {str(directory)!r}")


def _write_atomic(destination: str | Path, data: bytes) -> None:
    path = Path(destination)
    directory = path.parent if str(path.parent) else Path(".")
    temporary = None
    try:
        # The temporary name is the destination's, shortened so that it fits where the destination fits.
        room = max(1, _name_max(directory) - _PART_EXTRA)
        stem = os.fsdecode(os.fsencode(path.name)[:room]) if len(os.fsencode(path.name)) > room else path.name
        handle, temporary = _create_part(directory, stem)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise OutputError(f"cannot write {_shown(str(destination))!r}: {exc.strerror or exc}") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
