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

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..shapes import ConvGeometry
from .borders import gather
from .fft import axis_terms

_IMPORT_LOCK = threading.Lock()


def cv2_module() -> Any:
    """``import cv2``, its bundled OpenBLAS started on one thread.

    opencv-python's wheels carry their own OpenBLAS, whose worker threads, started as the
    library loads, spin for about 120 ms of CPU before they sleep. convcli's OpenCV calls
    (filter2D, sepFilter2D, boxFilter, dft) never use BLAS, so on a 2-core machine that was
    a core taken from the job's own threads for the first tenth of a second of every run.
    ``OPENBLAS_NUM_THREADS=1`` is set for the import only (NumPy's own OpenBLAS, loaded
    before, keeps its threads) and restored after; OpenCV's own threads are not BLAS's and
    are unchanged.
    """
    if "cv2" in sys.modules:
        return sys.modules["cv2"]
    with _IMPORT_LOCK:
        previous = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            import cv2
        finally:
            if previous is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = previous
    return cv2


def _border(mode: str, value: float) -> int | None:
    cv2 = cv2_module()

    if mode == "zeros" or (mode == "constant" and value == 0):
        return cv2.BORDER_CONSTANT
    return {
        "reflect": cv2.BORDER_REFLECT_101,
        "symmetric": cv2.BORDER_REFLECT,
        "replicate": cv2.BORDER_REPLICATE,
    }.get(mode)


def prepared_opencv(
    kernel: np.ndarray,
    terms: list[tuple[np.ndarray, np.ndarray]],
    method: str,
    geometry: ConvGeometry,
    mode: str,
    value: float,
) -> Callable[[np.ndarray], np.ndarray] | None:
    """One OpenCV call with its kernels, anchor and border flag fixed, for images of ``geometry.input``.

    ``None`` when the image cannot be handed to OpenCV as it is (a stride or
    dilation, a border OpenCV lacks, padding it would not make): then
    :func:`correlate_opencv` prepares a padded copy or the polyphase split.
    The result is a new array of the output shape.
    """

    if geometry.stride != (1, 1) or geometry.dilation != (1, 1):
        return None
    (top, bottom), (left, right) = geometry.padding
    (kh, kw), (height, width), (oh, ow) = geometry.kernel, geometry.input, geometry.output
    border = _border(mode, value)
    fits = top + bottom <= kh - 1 and left + right <= kw - 1
    small = kh <= height and kw <= width and min(height, width) >= 2
    if border is None or not fits or not small:
        return None
    return _call(kernel, terms, method, (left, top), border, (oh, ow))


def _call(
    kernel: np.ndarray,
    terms: list[tuple[np.ndarray, np.ndarray]],
    method: str,
    anchor: tuple[int, int],
    border: int,
    shape: tuple[int, int],
) -> Callable[[np.ndarray], np.ndarray]:
    cv2 = cv2_module()

    (kh, kw), (oh, ow) = kernel.shape, shape

    def crop(result: np.ndarray) -> np.ndarray:
        # A view of the kept outputs (OpenCV writes its input's size): copying 12 MP of them cost 15 ms, and
        # every consumer (bias, to_pixels, the writers) reads a row-strided view as fast.
        return result if result.shape == (oh, ow) else result[:oh, :ow]

    if method == "box":
        weight = float(kernel.flat[0])
        mean = abs(weight * kh * kw - 1.0) < 1e-12
        factor = np.float32(weight)

        def box(image: np.ndarray) -> np.ndarray:
            result = cv2.boxFilter(image, -1, (kw, kh), anchor=anchor, normalize=mean, borderType=border)
            if not mean and weight != 1.0:
                np.multiply(result, factor, out=result)
            return crop(result)

        return box
    if method == "separable":
        pairs = [(row.astype(np.float32), column.astype(np.float32)) for column, row in terms]

        def separable(image: np.ndarray) -> np.ndarray:
            result: Any = None
            for row, column in pairs:
                part = cv2.sepFilter2D(image, -1, row, column, anchor=anchor, borderType=border)
                if result is None:
                    result = part
                else:
                    result += part
            return crop(result)

        return separable
    weights = kernel.astype(np.float32)

    def direct(image: np.ndarray) -> np.ndarray:
        return crop(cv2.filter2D(image, -1, weights, anchor=anchor, borderType=border))

    return direct


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
    cv2 = cv2_module()

    if geometry.stride != (1, 1) or geometry.dilation != (1, 1):
        return _polyphase(image, kernel, geometry, mode, value)
    call = prepared_opencv(kernel, terms, method, geometry, mode, value)
    if call is not None:
        return call(np.ascontiguousarray(image))
    # A border OpenCV lacks, or padding it would not make: a padded copy, then a 'valid' call.
    rows, cols = geometry.padded
    padded = np.empty((rows, cols), dtype=image.dtype)
    gather(image, (-geometry.padding[0][0], 1, rows), (-geometry.padding[1][0], 1, cols), mode, value, padded)
    return _call(kernel, terms, method, (0, 0), cv2.BORDER_CONSTANT, geometry.output)(padded)


def _polyphase(image: np.ndarray, kernel: np.ndarray, geometry: ConvGeometry, mode: str, value: float) -> np.ndarray:
    """Stride and dilation: one valid filter2D per phase, on that phase's samples only."""
    cv2 = cv2_module()

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
