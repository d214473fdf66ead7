"""The kernel record and the checks every kernel's weights pass (2-D, finite, at most 4096 per side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import KernelError

KERNEL_FILE_SUFFIXES = (".txt", ".csv", ".npy", ".kernel", ".mat")
MAX_KERNEL_SIDE = 4096


@dataclass(frozen=True)
class Kernel:
    """A named kernel.

    Attributes
    ----------
    name : str
        Short name used in output file names (``gaussian-7``, ``vertical``).
    weights : ndarray
        2-D float64 weights, read-only, applied by cross-correlation.
    spec : str
        The spec the user wrote.
    description : str
        One line: what it does, its orientation and sign.
    offset : float
        Added to every output after the weighted sum, as a libvips ``.mat``
        file's offset (``out = sum / scale + offset``; the ``1/scale`` is in
        the weights). 0 for every other kind of kernel.
    """

    name: str
    weights: np.ndarray = field(repr=False)
    spec: str = ""
    description: str = ""
    offset: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))

    def _repr_html_(self) -> str:
        """A heatmap table for notebooks: each cell coloured by its weight and the value written in it.

        Signed kernels use a diverging scale centred on 0 (red positive, blue
        negative, white 0, as the figures' ``RdBu_r``); kernels of one sign go
        from white (0) to dark. Up to 64 per side; larger ones are summarised.
        """
        import html

        weights = self.weights
        rows, cols = self.shape
        title = html.escape(f"{self.name} {rows}x{cols}" + (f": {self.description}" if self.description else ""))
        if max(rows, cols) > 64:
            return f"<p>kernel {title} (too large to show as a table)</p>"
        bound = float(np.abs(weights).max()) or 1.0
        signed = bool((weights < 0).any())
        cells = []
        for row in weights:
            tds = []
            for value in row:
                share = abs(float(value)) / bound  # 0..1
                if signed and value < 0:
                    colour = (round(255 * (1 - share * 0.85)), round(255 * (1 - share * 0.55)), 255)
                elif signed:
                    colour = (255, round(255 * (1 - share * 0.75)), round(255 * (1 - share * 0.8)))
                else:
                    level = round(255 * (1 - share * 0.8))
                    colour = (level, level, level)
                ink = "#fff" if share > 0.6 else "#000"
                tds.append(
                    f'<td style="background:rgb{colour};color:{ink};text-align:center;padding:2px 6px;'
                    f'font-family:monospace">{float(value) + 0.0:.4g}</td>'
                )
            cells.append("<tr>" + "".join(tds) + "</tr>")
        return f'<table style="border-collapse:collapse"><caption>{title}</caption>{"".join(cells)}</table>'

    @property
    def separable(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(column, row)`` with ``outer(column, row) == weights`` when the kernel is rank 1, else ``None``.

        See :func:`rank1_factors`: integer kernels such as Sobel give integer
        factors.

        >>> from convcli.kernels import parse_kernel_spec
        >>> parse_kernel_spec("sobel-x").separable
        (array([1., 2., 1.]), array([-1.,  0.,  1.]))
        """
        return rank1_factors(self.weights)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The weights, so a :class:`Kernel` goes wherever an array does (``np.asarray(kernel)``)."""
        if copy:
            return np.array(self.weights, dtype=dtype)
        return np.asarray(self.weights, dtype=dtype)


def as_kernel_array(values: Any, what: str) -> np.ndarray:
    """``values`` as read-only, contiguous float64 weights (a row for 1-D input); refuses what no kernel can be.

    Raises
    ------
    KernelError
        Not 2-D, empty, over :data:`MAX_KERNEL_SIDE` per side, not numeric, or
        holding NaN or infinity; the message starts with ``what``.
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise KernelError(f"{what} is not a grid of numbers; give a 2-D array-like such as [[0, 1], [2, 3]]") from None
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise KernelError(f"{what} has {array.ndim} dimensions; a kernel is a 2-D grid")
    if array.size == 0:
        raise KernelError(f"{what} is empty")
    if max(array.shape) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{what} is {array.shape[0]}x{array.shape[1]}; kernels are limited to {MAX_KERNEL_SIDE} per side"
        )
    if not np.all(np.isfinite(array)):
        raise KernelError(f"{what} contains NaN or infinity; every weight must be a finite number")
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


def rank1_factors(kernel: np.ndarray, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray] | None:
    """Split a rank-1 kernel exactly into ``column (kh,)`` and ``row (kw,)`` with ``outer(column, row) == kernel``.

    The factors are read off the kernel itself (the column through its largest
    entry, and that entry's row divided by it), so integer kernels such as
    Sobel give integer factors and exact results. ``None`` when the kernel is
    not rank 1 to within ``rtol`` of its largest entry.

    >>> rank1_factors(np.array([[1., 0., -1.]] * 3))
    (array([1., 1., 1.]), array([ 1.,  0., -1.]))
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    peak_index = np.unravel_index(np.argmax(np.abs(kernel)), kernel.shape)
    peak = kernel[peak_index]
    if peak == 0:
        return None
    # Sign chosen so the column's largest entry is positive ([1 2 1] x [-1 0 1] for Sobel).
    sign = 1.0 if peak > 0 else -1.0
    column = sign * kernel[:, peak_index[1]]
    row = sign * kernel[peak_index[0], :] / peak
    if np.max(np.abs(np.outer(column, row) - kernel)) > rtol * abs(peak):
        return None
    return column, row
