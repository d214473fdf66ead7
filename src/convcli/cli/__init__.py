"""The ``convcli`` command line: a click group whose commands load lazily.

Only this package imports click. Each command lives in its own module
(``cmd_<name>.py``) and is imported when it runs or when ``--help`` lists it,
and command modules import NumPy and the image stack inside their callbacks,
so ``convcli --help`` and ``convcli shape`` start fast.

Errors are translated here, once: a :class:`convcli.errors.ConvcliError` or a
click usage error becomes one line on stderr (``convcli filter: error: ...``)
and its exit code (2 for a bad command line, 1 for a failure while running).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import ConvcliError

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
    click.echo(f"{command_path}: error: {message}", err=True)


class LazyGroup(click.Group):
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

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            import difflib

            close = difflib.get_close_matches(args[0], COMMANDS, n=1) if args else []
            if close:
                raise click.UsageError(f"no command {args[0]!r}; did you mean {close[0]!r}?", ctx) from None
            raise

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
            _report(exc.format_message().rstrip(".") + hint, path)
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
        except KeyboardInterrupt:
            click.echo("convcli: interrupted", err=True)
            code = 130
        else:
            code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


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

    try:
        code = main.main(prog_name="convcli", standalone_mode=False)
    except KeyboardInterrupt:  # between the command's return and the line below
        click.echo("convcli: interrupted", err=True)
        code = 130
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code if isinstance(code, int) else 0)
