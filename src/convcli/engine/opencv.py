"""The accelerated path: OpenCV's filter2D, sepFilter2D and boxFilter (float32, stride 1, dilation 1).

OpenCV computes correlation (no flip), as convcli does. Its anchor is put at
``(left, top)`` padding explicitly, so even kernels and asymmetric 'same'
padding land exactly where PyTorch puts them. Border names: zeros ->
BORDER_CONSTANT (0), reflect -> BORDER_REFLECT_101, symmetric ->
BORDER_REFLECT, replicate -> BORDER_REPLICATE. Circular borders, a non-zero
constant, and padding wider than the kernel or the image are read through
:func:`convcli.engine.borders.gather` into a padded copy first. Strides and
dilations (OpenCV has neither) go through the polyphase split of
:mod:`convcli.engine.fft`, each phase a plain filter2D on a small image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..shapes import ConvGeometry
from .borders import gather
from .fft import axis_terms


def _border(mode: str, value: float) -> int | None:
    import cv2

    if mode == "zeros" or (mode == "constant" and value == 0):
        return cv2.BORDER_CONSTANT
    return {
        "reflect": cv2.BORDER_REFLECT_101,
        "symmetric": cv2.BORDER_REFLECT,
        "replicate": cv2.BORDER_REPLICATE,
    }.get(mode)


def _source(image: np.ndarray, geometry: ConvGeometry, mode: str, value: float) -> tuple[np.ndarray, int, int, int]:
    """The array OpenCV reads, the anchor ``(x, y)`` and the border flag.

    OpenCV pads ``anchor`` before and ``k - 1 - anchor`` after; when the
    requested padding fits that (and OpenCV has the border), the image is used
    as is and the output cropped; otherwise a padded copy is made.
    """
    import cv2

    (top, bottom), (left, right) = geometry.padding
    (kh, kw), (height, width) = geometry.kernel, geometry.input
    border = _border(mode, value)
    fits = top + bottom <= kh - 1 and left + right <= kw - 1
    small = kh <= height and kw <= width and min(height, width) >= 2
    if border is not None and fits and small:
        return np.ascontiguousarray(image), left, top, border
    rows, cols = geometry.padded
    padded = np.empty((rows, cols), dtype=image.dtype)
    gather(image, (-top, 1, rows), (-left, 1, cols), mode, value, padded)
    return padded, 0, 0, cv2.BORDER_CONSTANT


def correlate_opencv(
    image: np.ndarray,
    kernel: np.ndarray,
    terms: list[tuple[np.ndarray, np.ndarray]],
    method: str,
    geometry: ConvGeometry,
    mode: str,
    value: float,
) -> np.ndarray:
    """The float32 correlation by OpenCV; returns a new array of the output shape."""
    import cv2

    if geometry.stride != (1, 1) or geometry.dilation != (1, 1):
        return _polyphase(image, kernel, geometry, mode, value)
    source, ax, ay, border = _source(image, geometry, mode, value)
    anchor = (ax, ay)
    (oh, ow), (kh, kw) = geometry.output, geometry.kernel
    result: Any = None
    if method == "box":
        weight = float(kernel.flat[0])
        mean = abs(weight * kh * kw - 1.0) < 1e-12
        result = cv2.boxFilter(source, -1, (kw, kh), anchor=anchor, normalize=mean, borderType=border)
        if not mean and weight != 1.0:
            result *= np.float32(weight)
    elif method == "separable":
        for column, row in terms:
            part = cv2.sepFilter2D(
                source, -1, row.astype(np.float32), column.astype(np.float32), anchor=anchor, borderType=border
            )
            if result is None:
                result = part
            else:
                result += part
    else:
        result = cv2.filter2D(source, -1, kernel.astype(np.float32), anchor=anchor, borderType=border)
    assert result is not None
    if result.shape == (oh, ow):
        return result
    return np.ascontiguousarray(result[:oh, :ow])


def _polyphase(image: np.ndarray, kernel: np.ndarray, geometry: ConvGeometry, mode: str, value: float) -> np.ndarray:
    """Stride and dilation: one valid filter2D per phase, on that phase's samples only."""
    import cv2

    (top, _), (left, _) = geometry.padding
    out = np.zeros(geometry.output, dtype=np.float32)
    row_terms = axis_terms(geometry.stride[0], geometry.dilation[0], geometry.kernel[0], geometry.output[0])
    col_terms = axis_terms(geometry.stride[1], geometry.dilation[1], geometry.kernel[1], geometry.output[1])
    for rt in row_terms:
        for ct in col_terms:
            sub = kernel[rt.k_start :: rt.k_step, ct.k_start :: ct.k_step].astype(np.float32)
            rows, cols = rt.out_count + rt.k_count - 1, ct.out_count + ct.k_count - 1
            phase = np.empty((rows, cols), dtype=np.float32)
            gather(
                image, (rt.in_start - top, rt.in_step, rows), (ct.in_start - left, ct.in_step, cols), mode, value, phase
            )
            if sub.size == 1:
                result = phase * sub[0, 0]
            else:
                result = cv2.filter2D(phase, -1, sub, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
            target = out[rt.out_start :: rt.out_step, ct.out_start :: ct.out_step]
            target += result[: rt.out_count, : ct.out_count]
    return out
