"""Argument checks shared by the teaching functions (explain, learn, receptive fields, figures).

Pure Python, NumPy and the kernels imported inside the functions:
``convcli shape`` imports the teaching functions and must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from ..shapes import PaddingSpec, Pair, Sides, as_pair, parse_padding

if TYPE_CHECKING:
    from ..kernels import Kernel

IntOrPair = int | Pair


def _padding(padding: IntOrPair | str | Sides) -> PaddingSpec:
    if isinstance(padding, str) and padding.strip().lower() in ("same", "valid"):
        return padding.strip().lower()
    if isinstance(padding, tuple) and len(padding) == 2 and isinstance(padding[0], tuple):
        return parse_padding(padding)  # per side, ((top, bottom), (left, right)), as the command line gives it
    return as_pair(padding, "padding", 0)


def _pad_mode(pad_mode: str) -> str:
    from ..engine import resolve_pad_mode

    return resolve_pad_mode(str(pad_mode))


def geometry_arguments(stride: IntOrPair, padding: IntOrPair | str | Sides, dilation: IntOrPair) -> dict[str, Any]:
    """``stride``, ``padding`` and ``dilation`` checked (in that order), as keyword arguments of the solvers.

    The geometry as :func:`~convcli.api.teaching.explain`, :func:`~convcli.api.learning.learn`
    and :func:`~convcli.api.learning.kernel_size_for` take it; a bad value is refused
    in one line that names it.

    >>> geometry_arguments(2, "same", (1, 2))
    {'stride': (2, 2), 'padding': 'same', 'dilation': (1, 2)}
    """
    return dict(
        stride=as_pair(stride, "stride", 1), padding=_padding(padding), dilation=as_pair(dilation, "dilation", 1)
    )


def border_arguments(pad_mode: str, pad_value: float) -> dict[str, Any]:
    """``pad_mode`` (an alias resolved to its canonical name) and ``pad_value`` (a float), as keyword arguments.

    >>> border_arguments("edge", 1)
    {'pad_mode': 'replicate', 'pad_value': 1.0}
    """
    return dict(pad_mode=_pad_mode(pad_mode), pad_value=float(pad_value))


def _kernel(kernel: Any) -> Kernel:
    """A :class:`~convcli.kernels.Kernel` from a spec string, a ``Kernel``, a path or an array-like (``convcli.kernel``)."""
    from ..kernels import resolve_kernel

    return resolve_kernel(kernel)


def _plane(image: Any, what: str) -> Any:
    import numpy as np

    try:
        array = np.asarray(image)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} is not an array of numbers") from None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ParameterError(f"{what} has dtype {array.dtype}; give an array of numbers")
    return array
