"""Parameter types: structured values (``3x5``, ``same``, kernel specs, border modes) parsed so mistakes exit 2 early."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ConvcliError, ParameterError
from ..shapes import Pair, parse_pair


class PairType(click.ParamType):
    """``N`` or ``HxW`` (rows x columns)."""

    name = "N|HxW"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:  # type: ignore[override]
        return self.name  # click would upper-case it to N|HXW

    def __init__(self, what: str, minimum: int = 1) -> None:
        self.what = what
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Pair:
        if isinstance(value, tuple):
            return value  # type: ignore[return-value]
        try:
            return parse_pair(value, self.what, self.minimum)
        except ParameterError as exc:
            self.fail(str(exc), param, ctx)


class PaddingType(click.ParamType):
    """``N``, ``HxW``, ``same`` or ``valid``."""

    name = "N|HxW|same|valid"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:  # type: ignore[override]
        return self.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        text = str(value).strip().lower()
        if text in ("same", "valid"):
            return text
        try:
            return parse_pair(text, "padding", minimum=0)
        except ParameterError as exc:
            self.fail(f"{exc} or 'same'/'valid'", param, ctx)


class KernelSpecType(click.ParamType):
    """A kernel spec resolved to a :class:`convcli.kernels.Kernel` (names, matrices, files)."""

    name = "SPEC"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..kernels import Kernel, parse_kernel_spec

        if isinstance(value, Kernel):
            return value
        try:
            return parse_kernel_spec(str(value))
        except ConvcliError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        from ..kernels import catalogue, kernel_files

        names = [entry.name for entry in catalogue()] + [path.stem for path in kernel_files()]
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]


class PadModeType(click.ParamType):
    """A border mode name or one of its aliases."""

    name = "MODE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..engine import resolve_pad_mode

        try:
            return resolve_pad_mode(str(value))
        except ParameterError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        modes = ["zeros", "constant", "reflect", "symmetric", "replicate", "circular"]
        return [CompletionItem(m) for m in modes if m.startswith(incomplete)]
