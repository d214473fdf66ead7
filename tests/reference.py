"""Independent references for the tests: deliberately naive, loop by loop.

Nothing here calls convcli or numpy.pad: border indices are mapped by hand.
"""

from __future__ import annotations

import numpy as np


def border_index(index: int, length: int, mode: str) -> int | None:
    """Map an out-of-range index into ``[0, length)``; ``None`` means 'outside' (constant modes)."""
    if 0 <= index < length:
        return index
    if mode in ("zeros", "constant"):
        return None
    if mode == "replicate":
        return min(max(index, 0), length - 1)
    if mode == "circular":
        return index % length
    if mode == "reflect":  # edge not repeated: period 2(n-1)
        if length == 1:
            return 0
        period = 2 * (length - 1)
        index %= period
        return index if index < length else period - index
    if mode == "symmetric":  # edge repeated: period 2n
        period = 2 * length
        index %= period
        return index if index < length else period - 1 - index
    raise ValueError(mode)


def naive_correlate(
    image, kernel, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), mode="zeros", value=0.0, bias=0.0
):
    """out[i, j] = bias + sum K[u, v] * X[i*sh + u*dh - top, j*sw + v*dw - left], borders by ``mode``."""
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    (top, bottom), (left, right) = padding
    rows, cols = image.shape
    kh, kw = kernel.shape
    out_rows = (rows + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_cols = (cols + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((out_rows, out_cols))
    for i in range(out_rows):
        for j in range(out_cols):
            total = bias
            for u in range(kh):
                for v in range(kw):
                    r = border_index(i * stride[0] + u * dilation[0] - top, rows, mode)
                    c = border_index(j * stride[1] + v * dilation[1] - left, cols, mode)
                    pixel = value if (r is None or c is None) else image[r, c]
                    if mode == "zeros" and (r is None or c is None):
                        pixel = 0.0
                    total += kernel[u, v] * pixel
            out[i, j] = total
    return out
