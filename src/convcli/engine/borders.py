"""Border modes, and reading windows of the padded input without padding the whole image.

The padded input ``P`` is never built for large images: :func:`gather` reads
any strided window of it (a strip, an FFT tile, one polyphase component)
straight from the image, mapping out-of-range indices with the border mode.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

#: Canonical border modes and the ``numpy.pad`` mode that implements each.
PAD_MODES: dict[str, str] = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "circular": "wrap",
}

#: Other libraries' unambiguous names for the same borders. SciPy's ``reflect``
#: is *not* an alias: it means ``symmetric`` there and ``reflect`` here.
PAD_MODE_ALIASES: dict[str, str] = {
    "zero": "zeros",
    "grid-constant": "constant",  # SciPy
    "mirror": "reflect",  # SciPy ndimage
    "reflect101": "reflect",  # OpenCV BORDER_REFLECT_101
    "reflect-101": "reflect",
    "reflect_101": "reflect",
    "border-reflect-101": "reflect",
    "border_reflect_101": "reflect",
    "border-default": "reflect",
    "grid-mirror": "symmetric",  # SciPy ndimage (its 'reflect')
    "border-reflect": "symmetric",  # OpenCV BORDER_REFLECT
    "border_reflect": "symmetric",
    "half-symmetric": "symmetric",
    "edge": "replicate",  # NumPy
    "nearest": "replicate",  # SciPy ndimage
    "border-replicate": "replicate",  # OpenCV
    "border_replicate": "replicate",
    "wrap": "circular",  # NumPy, SciPy
    "grid-wrap": "circular",  # SciPy ndimage
    "border-wrap": "circular",  # OpenCV
    "border_wrap": "circular",
    "periodic": "circular",
}


def resolve_pad_mode(name: str) -> str:
    """Canonical border-mode name for ``name`` (case-insensitive, aliases accepted).

    >>> resolve_pad_mode("mirror"), resolve_pad_mode("edge"), resolve_pad_mode("wrap")
    ('reflect', 'replicate', 'circular')
    """
    key = name.strip().lower()
    if key in PAD_MODES:
        return key
    if key in PAD_MODE_ALIASES:
        return PAD_MODE_ALIASES[key]
    choices = ", ".join(PAD_MODES)
    raise ParameterError(f"unknown pad mode {name!r}; use one of {choices} (or an alias listed in the README)")


def pad2d(
    image: np.ndarray, padding: tuple[tuple[int, int], tuple[int, int]], mode: str = "zeros", value: float = 0.0
) -> np.ndarray:
    """Pad a 2-D array; ``mode`` is a canonical or alias border name (see :mod:`convcli.engine`).

    ``reflect``, ``symmetric`` and ``circular`` padding wider than the image
    repeat the pattern as ``numpy.pad`` does.
    """
    canonical = resolve_pad_mode(mode)
    if padding == ((0, 0), (0, 0)):
        return image
    if canonical == "zeros":
        return np.pad(image, padding, mode="constant", constant_values=0)
    if canonical == "constant":
        return np.pad(image, padding, mode="constant", constant_values=value)
    return np.pad(image, padding, mode=PAD_MODES[canonical])  # type: ignore[call-overload]


def border_map(index: np.ndarray, length: int, mode: str) -> np.ndarray:
    """Map indices of the padded axis (relative to the image start) into ``[0, length)``; -1 means 'fill'.

    Same rules as ``numpy.pad`` (patterns repeat when the padding is wider than the image).

    >>> border_map(np.arange(-2, 5), 3, "reflect").tolist()
    [2, 1, 0, 1, 2, 1, 0]
    >>> border_map(np.arange(-2, 5), 3, "symmetric").tolist()
    [1, 0, 0, 1, 2, 2, 1]
    """
    index = np.asarray(index, dtype=np.int64)
    if mode in ("zeros", "constant"):
        return np.where((index >= 0) & (index < length), index, -1)
    if mode == "replicate":
        return np.clip(index, 0, length - 1)
    if mode == "circular":
        return np.mod(index, length)
    if mode == "reflect":
        if length == 1:
            return np.zeros_like(index)
        period = 2 * (length - 1)
        folded = np.mod(index, period)
        return np.where(folded < length, folded, period - folded)
    if mode == "symmetric":
        period = 2 * length
        folded = np.mod(index, period)
        return np.where(folded < length, folded, period - 1 - folded)
    raise ParameterError(f"unknown pad mode {mode!r}")


def _inside(start: int, step: int, count: int, length: int) -> tuple[int, int]:
    """The run ``[first, stop)`` of positions ``n`` with ``0 <= start + step*n < length``."""
    first = (-start + step - 1) // step if start < 0 else 0
    stop = min(count, (length - 1 - start) // step + 1) if start < length else 0
    first = min(first, count)
    if stop <= first:
        return (0, 0)
    return (first, stop)


def gather(
    image: np.ndarray,
    rows: tuple[int, int, int],
    cols: tuple[int, int, int],
    mode: str,
    value: float,
    out: np.ndarray,
) -> np.ndarray:
    """Fill ``out`` with ``P[r0 + rs*i, c0 + cs*j]`` where ``P`` is the image padded by ``mode``.

    ``rows`` and ``cols`` are ``(start, step, count)`` in image coordinates
    (negative starts reach into the top/left padding). The inside block is one
    strided copy; only border rows/columns go through index maps.
    """
    r0, rs, rn = rows
    c0, cs, cn = cols
    height, width = image.shape
    fill = 0.0 if mode == "zeros" else value
    ri0, ri1 = _inside(r0, rs, rn, height)
    ci0, ci1 = _inside(c0, cs, cn, width)
    # The inside block: one strided copy.
    if ri1 > ri0 and ci1 > ci0:
        out[ri0:ri1, ci0:ci1] = image[
            r0 + rs * ri0 : r0 + rs * (ri1 - 1) + 1 : rs, c0 + cs * ci0 : c0 + cs * (ci1 - 1) + 1 : cs
        ]
    constant = mode in ("zeros", "constant")
    if (ci0 > 0 or ci1 < cn) and ri1 > ri0:
        if constant:  # plain slices: no index arrays
            out[ri0:ri1, :ci0] = fill
            out[ri0:ri1, ci1:] = fill
        else:
            border_cols = np.concatenate((np.arange(ci0), np.arange(ci1, cn)))
            col_map = border_map(c0 + cs * border_cols, width, mode)
            row_slice = slice(r0 + rs * ri0, r0 + rs * (ri1 - 1) + 1, rs)
            out[ri0:ri1, border_cols] = image[row_slice][:, col_map]
    if ri0 > 0 or ri1 < rn:
        if constant:
            out[:ri0] = fill
            out[ri1:] = fill
        else:
            border_rows = np.concatenate((np.arange(ri0), np.arange(ri1, rn)))
            row_map = border_map(r0 + rs * border_rows, height, mode)
            col_map = border_map(c0 + cs * np.arange(cn), width, mode)
            out[border_rows, :] = image[np.ix_(row_map, col_map)]
    return out
