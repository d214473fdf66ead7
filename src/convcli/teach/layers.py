"""Layers: the specs (``conv:k=7,s=2,p=3``), their parsing and checks, and each layer's padding and output size.

Pure Python (no NumPy), so ``convcli shape`` starts fast. Every output size
comes from :mod:`convcli.shapes` (the single source of truth); this module adds
the explanation around it.

Layer specs
-----------
``conv:k=7,s=2,p=3``, ``pool:k=3,s=2,p=1,ceil``, ``transpose:k=4,s=2,p=1,op=0``.
Keys: ``k`` (kernel, required), ``s`` (stride), ``p`` (padding; ``same`` and
``valid`` for conv only), ``d`` (dilation), ``op`` (output padding, transpose
only), ``ceil`` (ceil mode, pool only). Values are ``N`` or ``HxW``; a padding
may also give four sides, ``p=TOP,BOTTOM,LEFT,RIGHT`` (``conv:k=4,s=2,p=1,2,1,2``:
the bare numbers after ``p=`` belong to it) or ``p=torch:LEFT,RIGHT,TOP,BOTTOM``.
Defaults are PyTorch's: stride 1 (pooling: the kernel size), padding 0, dilation 1.

A layer file holds one spec per line; ``#`` starts a comment, blank lines are
ignored.

Receptive fields through a stack of layers are computed by
:mod:`convcli.teach.stacks`; what the windows of one layer read, axis by axis,
by :mod:`convcli.teach.layer_axes`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ..errors import ParameterError
from ..shapes import (
    PaddingSpec,
    Pair,
    format_pair,
    output_size,
    padding_sides,
    parse_padding,
    parse_pair,
    resolve_padding,
)

OPS = ("conv", "pool", "transpose")

_KEYS = {
    "k": "kernel",
    "kernel": "kernel",
    "s": "stride",
    "stride": "stride",
    "p": "padding",
    "pad": "padding",
    "padding": "padding",
    "d": "dilation",
    "dilation": "dilation",
    "op": "output_padding",
    "output_padding": "output_padding",
    "output-padding": "output_padding",
    "ceil": "ceil_mode",
    "ceil_mode": "ceil_mode",
    "ceil-mode": "ceil_mode",
}


@dataclass(frozen=True)
class Layer:
    """One layer: ``op`` is ``conv``, ``pool`` or ``transpose``; pairs are ``(H, W)``.

    ``padding`` is a pair or, for conv, ``'same'``/``'valid'``.
    """

    op: str
    kernel: Pair
    stride: Pair
    padding: PaddingSpec = (0, 0)
    dilation: Pair = (1, 1)
    ceil_mode: bool = False
    output_padding: Pair = (0, 0)

    @property
    def spec(self) -> str:
        """Canonical spec text (``conv:k=7,s=2,p=3``), defaults left out.

        >>> make_layer("pool", 3, stride=2, padding=1).spec
        'pool:k=3,s=2,p=1'
        """
        parts = [f"k={_short(self.kernel)}"]
        default_stride = self.kernel if self.op == "pool" else (1, 1)
        if self.stride != default_stride:
            parts.append(f"s={_short(self.stride)}")
        if isinstance(self.padding, str):
            parts.append(f"p={self.padding}")
        elif isinstance(self.padding[0], tuple):
            (t, b), (left, r) = padding_sides(self.padding)
            parts.append(f"p={t},{b},{left},{r}")
        elif self.padding != (0, 0):
            parts.append(f"p={_short(self.padding)}")  # type: ignore[arg-type]
        if self.dilation != (1, 1):
            parts.append(f"d={_short(self.dilation)}")
        if self.output_padding != (0, 0):
            parts.append(f"op={_short(self.output_padding)}")
        if self.ceil_mode:
            parts.append("ceil")
        return f"{self.op}:{','.join(parts)}"


def _short(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else format_pair(pair)


def make_layer(
    op: str,
    kernel: Pair | int | str,
    *,
    stride: Pair | int | str | None = None,
    padding: PaddingSpec | int = 0,
    dilation: Pair | int | str = 1,
    ceil_mode: bool = False,
    output_padding: Pair | int | str = 0,
) -> Layer:
    """Build and check a :class:`Layer` (PyTorch defaults; pooling stride defaults to the kernel).

    Raises
    ------
    ParameterError
        For an unknown op or an option the op does not take.

    >>> layer = make_layer("conv", 7, stride=2, padding=3)
    >>> layer.kernel, layer.stride, layer.padding, layer.dilation
    ((7, 7), (2, 2), (3, 3), (1, 1))
    """
    if op not in OPS:
        close = difflib.get_close_matches(op, OPS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParameterError(f"unknown layer type {op!r}: use conv, pool or transpose{hint}")
    kernel_pair = parse_pair(kernel, "kernel size")
    stride_pair = kernel_pair if stride is None and op == "pool" else parse_pair(stride or 1, "stride")
    dilation_pair = parse_pair(dilation, "dilation")
    output_padding_pair = parse_pair(output_padding, "output padding", minimum=0)
    pad = parse_padding(padding, "padding")
    if isinstance(pad, str) and op != "conv":
        raise ParameterError(f"padding {pad!r} is only for conv layers; give {op} padding as N, HxW or four sides")
    if ceil_mode and op != "pool":
        raise ParameterError(f"ceil mode is only for pool layers, not {op}")
    if output_padding_pair != (0, 0) and op != "transpose":
        raise ParameterError(f"output padding is only for transpose layers, not {op}")
    return Layer(op, kernel_pair, stride_pair, pad, dilation_pair, bool(ceil_mode), output_padding_pair)


_SPEC_RE = re.compile(r"^\s*([A-Za-z_-]+)\s*:\s*(.*?)\s*$")


def parse_layer(text: str) -> Layer:
    """Parse a layer spec such as ``conv:k=7,s=2,p=3`` (see the module docstring).

    >>> parse_layer("conv:k=3x1,p=1x0").kernel
    (3, 1)
    >>> parse_layer("pool:k=3,s=2,ceil").ceil_mode
    True
    """
    match = _SPEC_RE.match(text)
    if not match:
        raise ParameterError(f"layer {text!r} is not TYPE:k=N,...; e.g. conv:k=7,s=2,p=3 or pool:k=3,s=2")
    op = match.group(1).lower()
    values: dict[str, object] = {}
    items: list[str] = []
    for part in filter(None, (part.strip() for part in match.group(2).split(","))):
        if (
            re.fullmatch(r"-?\d+", part)
            and items
            and _KEYS.get(items[-1].partition("=")[0].strip().lower()) == "padding"
        ):
            items[-1] += f",{part}"  # p=1,2,0,1: the four sides of the padding
        else:
            items.append(part)
    for item in items:
        key, _, value = item.partition("=")
        key = key.strip().lower()
        name = _KEYS.get(key)
        if name is None:
            raise ParameterError(f"layer {text!r}: unknown key {key!r}; use k, s, p, d, op (transpose) or ceil (pool)")
        if name in values:
            raise ParameterError(f"layer {text!r}: {key!r} is given twice")
        value = value.strip()
        if name == "ceil_mode":
            if value.lower() not in ("", "1", "true", "yes", "0", "false", "no"):
                raise ParameterError(f"layer {text!r}: ceil takes no value (or true/false), got {value!r}")
            values[name] = value.lower() in ("", "1", "true", "yes")
        elif not value:
            raise ParameterError(f"layer {text!r}: {key!r} needs a value, e.g. {key}=3")
        else:
            values[name] = value
    if "kernel" not in values:
        raise ParameterError(f"layer {text!r} has no kernel size; add k=N, e.g. {op}:k=3")
    try:
        return make_layer(op, **values)  # type: ignore[arg-type]
    except ParameterError as exc:
        message = str(exc)
        if text in message:
            raise
        raise type(exc)(f"layer {text!r}: {message}") from None


def parse_layer_file(text: str, name: str = "layer file") -> list[Layer]:
    """Parse one layer spec per line; ``#`` comments and blank lines are ignored.

    >>> [layer.spec for layer in parse_layer_file("conv:k=3  # stem\\n\\npool:k=2")]
    ['conv:k=3', 'pool:k=2']
    """
    layers = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            layers.append(parse_layer(line))
        except ParameterError as exc:
            raise type(exc)(f"{name}, line {number}: {exc}") from None
    if not layers:
        raise ParameterError(f"{name} has no layers; write one spec per line, e.g. conv:k=3,p=1")
    return layers


# ---------------------------------------------------------------------------
# One layer: padding and output size


def resolved_padding(layer: Layer) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` of a layer (``same`` split as PyTorch)."""
    return resolve_padding(layer.padding, layer.kernel, layer.dilation, layer.stride)


def layer_output(layer: Layer, size: Pair) -> Pair:
    """Output size of ``layer`` on an input of ``size``, from :mod:`convcli.shapes`.

    Raises
    ------
    ShapeError
        When the combination is invalid (the message says why).

    >>> layer_output(parse_layer("conv:k=3,s=3"), (5, 5))
    (1, 1)
    >>> layer_output(parse_layer("transpose:k=3,s=2,p=1,op=1"), (4, 4))
    (8, 8)
    """
    return output_size(  # type: ignore[return-value]
        size,
        layer.kernel,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        op=layer.op,
        ceil_mode=layer.ceil_mode,
        output_padding=layer.output_padding,
    )
