"""The ``convcli`` command line: a click group whose commands load lazily.

Only this package imports click. Each command lives in its own module
(``cmd_<name>.py``) and is imported when it runs or when ``--help`` lists it,
and command modules import NumPy and the image stack inside their callbacks,
so ``convcli --help`` and ``convcli shape`` start fast.

Errors are translated here, once: a :class:`convcli.errors.ConvcliError` or a
click usage error becomes one line on stderr (``convcli filter: error: ...``)
and its exit code (2 for a bad command line, 1 for a failure while running).
Credentials in URLs are hidden in every message (``http://***@host/``).

The program (:func:`run`) also guards the standard streams for every command:
output that cannot be written to stdout (closed, ``/dev/full``, an I/O error)
is an error (exit 1, one line), never a silent exit 0 or a traceback, and
Python warnings become one ``convcli: warning:`` line each. Before anything else it
sets up its process (:mod:`convcli.cli.process`: NumPy's BLAS workers asleep, freed
memory kept for the next allocations).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import os
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import ConvcliError, OutputError
from .sections import SectionedGroup, usage_message

#: command name -> "module:attribute" inside convcli.cli
COMMANDS: dict[str, str] = {
    "animate": "cmd_animate:animate_group",
    "filter": "cmd_filter:filter_command",
    "kernels": "cmd_kernels:kernels_group",
    "pool": "cmd_pool:pool_command",
    "upsample": "cmd_upsample:upsample_command",
    "learn": "cmd_learn:learn_command",
    "shape": "cmd_shape:shape_command",
    "explain": "cmd_explain:explain_command",
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "show_default": True}


def _report(message: str, command_path: str) -> None:
    """One line on stderr: credentials in URLs hidden, control characters (a newline in a file name) escaped."""
    if "@" in message:
        from ..io.sources import redact

        message = redact(message)
    if not message.isprintable():
        from .reports import printable

        message = printable(message)
    click.echo(f"{command_path}: error: {message}", err=True)


class StdoutError(OutputError):
    """Standard output cannot take the command's output (closed, full, an I/O error): exit 1."""


class _GuardedStdout(io.RawIOBase):
    """File descriptor 1 for the text and binary ``sys.stdout``: a failed write is a :class:`StdoutError`.

    ``EPIPE`` stays :class:`BrokenPipeError` (the reader went away: ``| head``). A closed descriptor
    (``>&-``) is refused at the first write, so commands that write nothing to stdout still work.
    After a failure every later write is dropped, so the flush at exit adds no second message.
    """

    def __init__(self, closed: bool) -> None:
        super().__init__()
        self.was_closed = closed
        self.failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def isatty(self) -> bool:
        return not self.was_closed and os.isatty(1)

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if self.failed:
            return size
        if self.was_closed:
            self.failed = True
            raise StdoutError("standard output is closed (>&-); redirect it to a file or a pipe (> out.txt)")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(1, view) :]
        except BrokenPipeError:
            self.failed = True
            raise
        except OSError as exc:
            self.failed = True
            fix = (
                "free some space or redirect it elsewhere" if exc.errno in (errno.ENOSPC, errno.EFBIG) else "try again"
            )
            raise StdoutError(f"cannot write to standard output: {exc.strerror or exc}; {fix}") from None
        return size


class _QuietStderr(io.RawIOBase):
    """File descriptor 2 for ``sys.stderr``: messages that cannot be written are dropped (nowhere to tell)."""

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2

    def isatty(self) -> bool:
        try:
            return os.isatty(2)
        except OSError:
            return False

    def write(self, data: Any) -> int:
        with contextlib.suppress(OSError):
            os.write(2, data)
        return len(memoryview(data))


def _open_descriptor(fd: int) -> bool:
    """Make sure ``fd`` is open (on /dev/null when it was closed), so no file the command opens lands on it;
    returns whether it was closed."""
    try:
        os.fstat(fd)
        return False
    except OSError:
        pass
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)
    return True


def guard_streams() -> None:
    """Replace ``sys.stdout`` and ``sys.stderr`` by guarded ones over descriptors 1 and 2 (see :class:`_GuardedStdout`).

    A descriptor closed before the start (``>&-``, ``2>&-``) is reopened on /dev/null first; a closed
    stdin stays ``None`` (reading ``-`` then says there is no standard input).
    """
    stdin_closed = _open_descriptor(0)
    stdout_closed = _open_descriptor(1)
    _open_descriptor(2)
    if stdin_closed:
        sys.stdin = None  # type: ignore[assignment]
    for name, raw in (("stdout", _GuardedStdout(stdout_closed)), ("stderr", _QuietStderr())):
        old = getattr(sys, name)
        encoding = getattr(old, "encoding", None) or "utf-8"
        errors = getattr(old, "errors", None) or "strict"
        line_buffering = name == "stderr" or bool(getattr(old, "line_buffering", False))
        if old is not None:
            with contextlib.suppress(OSError, ValueError):
                old.flush()
        buffer = io.BufferedWriter(raw)
        stream = io.TextIOWrapper(
            buffer, encoding=encoding, errors=errors, line_buffering=line_buffering, write_through=name == "stderr"
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """A Python warning as one line (no source path, no code line): ``convcli: warning: overflow encountered ...``."""
    text = " ".join(str(message).split())
    click.echo(f"convcli: warning: {text}", err=True)


def flush_stdout() -> int | None:
    """Flush stdout at the end of a command; an exit code and a message when its last bytes cannot be written."""
    try:
        sys.stdout.flush()
    except StdoutError as exc:
        _report(str(exc), "convcli")
        return 1
    except BrokenPipeError:
        return 1
    except (OSError, ValueError, AttributeError):
        return None
    return None


class LazyGroup(SectionedGroup):
    """A group that imports each command's module only when needed, and translates errors in one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        command: click.Command = getattr(module, attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConvcliError as exc:
            if not hasattr(exc, "command_path"):
                exc.command_path = " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand]))  # type: ignore[attr-defined]
            raise

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("convcli: interrupted", err=True)
            code = 130
        except click.UsageError as exc:
            path = exc.ctx.command_path if exc.ctx else "convcli"
            hint = f" (see '{path} --help')" if exc.ctx else ""
            _report(usage_message(exc) + hint, path)
            code = exc.exit_code
        except click.ClickException as exc:
            _report(exc.format_message(), "convcli")
            code = exc.exit_code
        except ConvcliError as exc:
            _report(str(exc), getattr(exc, "command_path", "convcli"))
            code = exc.exit_code
        except BrokenPipeError:
            # The reader went away (| head): stop quietly, and keep Python's flush at exit quiet too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            code = 1
        except OSError as exc:
            # A path the system refuses (too long, a loop of links, no permission) is the user's to fix, not a bug.
            if exc.errno not in _PATH_ERRNOS or exc.filename is None:
                raise
            from ..io.sources import path_error

            _report(path_error(str(exc.filename), exc, "path"), "convcli")
            code = 1
        except KeyboardInterrupt:
            click.echo("convcli: interrupted", err=True)
            code = 130
        else:
            code = result if isinstance(result, int) else 0
        return self._exit(code, standalone_mode)

    @staticmethod
    def _exit(code: int, standalone_mode: bool) -> int:
        if standalone_mode:
            sys.exit(code)
        return code


#: errno values of an OSError about a path the user gave (translated to one line instead of a traceback).
_PATH_ERRNOS = {errno.ENAMETOOLONG, errno.ELOOP, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EROFS}


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="convcli", message="%(prog)s %(version)s")
def main() -> None:
    """See what a convolution does to an image, and get CNN arithmetic exactly right.

    \b
    Examples:
      convcli filter samples/chelsea.png -k vertical
      convcli filter samples/x.txt -k "0 1; 2 3" -o -
      convcli kernels show gaussian:7

    Run 'convcli COMMAND --help' for each command's options.
    """


def run() -> None:
    """The ``convcli`` program (console script and ``python -m convcli``): :data:`main`, then exit with its code.

    Once the command has returned, its outputs are written and its code is
    final: a Ctrl-C in the last moments before the process exits is ignored,
    instead of killing Python by SIGINT (exit -2) with the work done.
    """
    import signal
    import warnings

    from .process import keep_freed_memory, quiet_blas_threads

    quiet_blas_threads()
    keep_freed_memory()
    guard_streams()
    warnings.showwarning = _show_warning
    try:
        code = main.main(prog_name="convcli", standalone_mode=False)
        flushed = flush_stdout()
        if flushed is not None and not code:
            code = flushed
    except KeyboardInterrupt:  # between the command's return and the line below
        click.echo("convcli: interrupted", err=True)
        code = 130
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code if isinstance(code, int) else 0)
