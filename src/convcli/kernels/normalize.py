"""Kernel normalisation as the peers offer it: by the sum, by the sum of absolute values, or part by part.

Methods
-------
``sum``
    ``w / sum(w)``: the kernel then sums to 1, so a flat image keeps its
    value (a blur keeps the brightness). A kernel with a negative sum changes
    sign. A zero-sum kernel (Sobel, Laplacian: ``|sum| <= 1e-12 * sum|w|``)
    cannot be normalised this way and is refused, naming the kernel.
``abs``
    ``w / sum(|w|)``: the L1 norm is 1, so ``|output| <= max|input|``; any
    kernel but the all-zero one.
``!``
    ImageMagick's ``-define convolve:scale='!'`` (``ScaleKernelInfo`` with
    NormalizeValue), exactly: divide by ``|sum|``; for a zero-summing kernel
    (``|sum| < 1e-12``) divide by the sum of the positive values instead, so
    the output stays within -1..1 (ImageMagick's own answer to zero-sum
    kernels). An all-zero kernel is refused.
``^``
    ImageMagick's ``convolve:scale='^'`` (CorrelateNormalizeValue), exactly:
    the positive values are divided by their sum and the negative values by
    the absolute value of theirs, so positives sum to 1, negatives to -1 and
    the kernel to 0 (a template matcher). A part that is missing (sums to less
    than 1e-12 in size) is left as it is, as ImageMagick does; so a kernel of
    positive values is divided by its sum. An all-zero kernel is refused.
    ``pn`` is the same method under a name that needs no shell quoting.

Spec syntax
-----------
A normalisation is written after the kernel with ``@``: ``gaussian:7@sum``,
``im:Sobel@^``, ``"0 1; 2 3"@abs``, ``kernels/k.txt@!``. The suffix is the
last ``@`` followed by one of the method names and nothing else. ``@`` was
chosen because nothing else in a spec uses it in that place: catalogue names
and their parameters are letters, digits, ``:``, ``,``, ``x`` and ``.``;
inline matrices and ImageMagick strings are numbers; ImageMagick's own ``@``
flag (a list of 45-degree rotations, refused by convcli) never has a word
after it; and a file path ends with its suffix (``k@sum.txt`` is a file, not
``k`` normalised). An existing file whose whole name matches is still read as
the file.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..errors import KernelError
from .weights import Kernel, as_kernel_array

#: The normalisation methods, in the order they are documented.
NORMALIZATIONS = ("sum", "abs", "!", "^", "pn")

_SUFFIX_RE = re.compile(r"^(?P<base>.*\S)\s*@(?P<method>sum|abs|pn|!|\^)$", re.DOTALL)


def split_normalization(spec: str) -> tuple[str, str | None]:
    """``(base spec, method)`` for ``SPEC@METHOD``; ``(spec, None)`` without a suffix.

    >>> split_normalization("gaussian:7@sum")
    ('gaussian:7', 'sum')
    >>> split_normalization("k@sum.txt")
    ('k@sum.txt', None)
    """
    match = _SUFFIX_RE.match(spec)
    if not match:
        return spec, None
    return match.group("base"), match.group("method")


def normalize_weights(weights: Any, method: str, what: str = "kernel") -> np.ndarray:
    """Normalise ``weights`` by ``method`` (see the module docstring); a new read-only float64 array.

    Raises
    ------
    KernelError
        Unknown method; a zero-sum kernel with ``sum``; an all-zero kernel.

    Examples
    --------
    >>> normalize_weights([[1, 2, 1]], "sum")
    array([[0.25, 0.5 , 0.25]])
    >>> normalize_weights([[1, 0, -3]], "abs")
    array([[ 0.25,  0.  , -0.75]])
    >>> normalize_weights([[-1, 0, 1]], "!")
    array([[-1.,  0.,  1.]])
    >>> normalize_weights([[-1, -1, 4]], "^")
    array([[-0.5, -0.5,  1. ]])
    """
    array = as_kernel_array(weights, what)
    if method not in NORMALIZATIONS:
        raise KernelError(f"normalisation {method!r} of {what} is unknown; use one of {', '.join(NORMALIZATIONS)}")
    l1 = float(np.abs(array).sum())
    if l1 == 0:
        raise KernelError(f"{what} is all zeros; no normalisation ({method}) can scale it")
    if method == "sum":
        total = float(array.sum())
        if abs(total) <= 1e-12 * l1:
            raise KernelError(
                f"{what} sums to 0 (zero-sum), so @sum cannot normalise it; use @abs, @! (ImageMagick: by the "
                "positive sum) or @^ (each part to 1)"
            )
        result = array / total
    elif method == "abs":
        result = array / l1
    else:
        from .magick_build import magick_scale  # ImageMagick's ! and ^ only

        result = magick_scale(array, "^" if method in ("^", "pn") else "!")
    result = np.ascontiguousarray(result + 0.0)
    result.setflags(write=False)
    return result


def normalize_kernel(kernel: Any, method: str) -> Any:
    """``kernel`` normalised by ``method``: a :class:`Kernel` for a Kernel, else an array.

    A :class:`Kernel` keeps its offset (it is added after the weighted sum)
    and gains ``@METHOD`` in its spec and ``-METHOD`` in its name (``!`` and
    ``^`` read ``magick`` and ``pn`` there).

    >>> from convcli.kernels import parse_kernel_spec
    >>> normalize_kernel(parse_kernel_spec("0 1; 1 2"), "sum").weights
    array([[0.  , 0.25],
           [0.25, 0.5 ]])
    """
    if isinstance(kernel, Kernel):
        what = f"kernel {kernel.spec or kernel.name!r}"
        weights = normalize_weights(kernel.weights, method, what)
        label = {"!": "magick", "^": "pn"}.get(method, method)
        return Kernel(
            f"{kernel.name}-{label}",
            weights,
            f"{kernel.spec}@{method}" if kernel.spec else f"{kernel.name}@{method}",
            f"{kernel.description}; normalised @{method}",
            kernel.offset,
        )
    return normalize_weights(kernel, method)
