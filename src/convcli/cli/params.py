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
    """``N``, ``HxW``, four sides ``TOP,BOTTOM,LEFT,RIGHT``, ``torch:LEFT,RIGHT,TOP,BOTTOM``; ``same``/``valid`` when named."""

    def __init__(self, named: bool = True) -> None:
        self.named = named
        self.name = "N|HxW|T,B,L,R" + ("|same|valid" if named else "")

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:  # type: ignore[override]
        return self.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..shapes import parse_padding

        if isinstance(value, tuple):
            return value
        try:
            return parse_padding(value, "padding", named=self.named)
        except ParameterError as exc:
            self.fail(str(exc), param, ctx)


class OriginType(click.ParamType):
    """``Y,X`` (rows, columns; negative allowed) or ``N`` for both."""

    name = "Y,X"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:  # type: ignore[override]
        return self.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Pair:
        if isinstance(value, tuple):
            return value  # type: ignore[return-value]
        text = str(value).strip()
        count = len([part for part in text.replace("x", ",").split(",") if part.strip()])
        if count > 2:
            self.fail(
                f"origin {text!r} has {count} values; give Y,X (rows, columns, e.g. 1,0) or N for both", param, ctx
            )
        try:
            return parse_pair(text, "origin", minimum=-(1 << 62))
        except ParameterError:
            self.fail(f"origin {text!r} is not Y,X (rows, columns, e.g. 1,0 or -1,-1) or N for both", param, ctx)


#: ``ctx.meta`` key: files the command line reads besides its sources (kernel files), never to be overwritten.
INPUTS_KEY = "convcli.inputs"


def remember_input(ctx: click.Context | None, path: str) -> None:
    """Note that ``path`` (when it is a file) is read by this command, so no output may replace it."""
    import os

    if ctx is None:
        return
    try:
        is_file = os.path.isfile(path)
    except (OSError, ValueError):
        return
    if is_file:
        ctx.find_root().meta.setdefault(INPUTS_KEY, []).append(path)


def remembered_inputs() -> list[str]:
    """The files noted by :func:`remember_input` in the running command (none outside a command)."""
    ctx = click.get_current_context(silent=True)
    return list(ctx.find_root().meta.get(INPUTS_KEY, [])) if ctx is not None else []


class KernelSpecType(click.ParamType):
    """A kernel spec resolved to a :class:`convcli.kernels.Kernel` (names, matrices, files)."""

    name = "SPEC"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..kernels import Kernel, parse_kernel_spec

        if isinstance(value, Kernel):
            return value
        import warnings

        try:
            with warnings.catch_warnings():
                # A parameter that makes NaN or infinity (gaussian:7:1e-300) is refused below: no warning first.
                warnings.simplefilter("ignore", RuntimeWarning)
                kernel = parse_kernel_spec(str(value))
            remember_input(ctx, str(value))
            return kernel
        except ConvcliError as exc:
            self.fail(str(exc), param, ctx)
        except (OverflowError, ZeroDivisionError) as exc:  # a parameter too large for the arithmetic
            self.fail(f"kernel {str(value)!r} cannot be built: a parameter is out of range ({exc})", param, ctx)
        except OSError as exc:  # a path the system refuses to look at (too long, a loop of links)
            from ..io.sources import path_error

            self.fail(path_error(str(value), exc, "kernel file"), param, ctx)

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


def _finite(type_: click.ParamType, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
    """``value`` unless it reads as NaN or infinity (``nan``, ``inf``, ``1e400``), which fail naming the option."""
    import math

    try:
        number = float(str(value).strip()) if not isinstance(value, float) else value
    except ValueError:
        return value  # not a number at all: the float type says so
    if not math.isfinite(number):
        type_.fail(f"{value!r} is not a finite number; give an ordinary number such as 0.5", param, ctx)
    return value


class FiniteFloat(click.types.FloatParamType):
    """A float that is finite: NaN and infinity are usage errors naming the option (click's ``float`` accepts them)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(_finite(self, value, param, ctx), param, ctx)


class FiniteFloatRange(click.FloatRange):
    """:class:`click.FloatRange` that refuses NaN (which passes every comparison) and infinity."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(_finite(self, value, param, ctx), param, ctx)


class ColormapType(click.ParamType):
    """A matplotlib colour map name, checked when given (matplotlib is imported only then); close names suggested."""

    name = "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            from matplotlib import colormaps
        except ImportError:  # the figure itself says matplotlib is missing
            return text
        names = sorted(colormaps)
        if text in colormaps:
            return text
        import difflib

        lowered = {name.lower(): name for name in names}
        if text.lower() in lowered:
            self.fail(
                f"{text!r} is not a colour map; names are case-sensitive: did you mean {lowered[text.lower()]!r}?",
                param,
                ctx,
            )
        close = difflib.get_close_matches(text, names, n=4, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "common ones: 'gray', 'viridis', 'magma', 'RdBu_r'"
        )
        self.fail(f"{text!r} is not a matplotlib colour map ({len(names)} are); {hint}", param, ctx)


class ScaleType(click.ParamType):
    """``--scale``: auto, minmax, abs, clip, percentile or percentile:P (50 < P <= 100)."""

    name = "scale"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "auto|minmax|abs|clip|percentile[:P]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..errors import ParameterError
        from ..io.pixels import parse_scale

        try:
            parse_scale(str(value))
        except ParameterError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


def check_tile_option(_ctx: click.Context, _param: click.Parameter, value: int) -> int:
    """``--tile``'s callback: a tile side is a multiple of 16 (0: strips)."""
    if value and value % 16:
        raise click.BadParameter(f"{value} is not a multiple of 16 (TIFF tiles); use 256 or 512, or 0 for strips")
    return value
