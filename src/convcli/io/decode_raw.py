"""Decoding raw arrays: ``.npy`` files and text matrices (``.txt``, ``.csv``, a grid on stdin), taken as they are.

Their size is checked from the header (or the text's length) before the
values are read, and NaN or infinity in a source is refused with where the
first one is (:func:`_check_finite`, also applied to decoded images).
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import DecodeError
from ..limits import TEXT_BYTES_FACTOR, Estimate, SizeCheck, check_memory, check_npy_shape, check_pixels, npy_header
from ..matrices import parse_matrix
from .sources import one_line


def _decode_npy(data: bytes, what: str, max_pixels: int | None, on_size: SizeCheck | None) -> np.ndarray:
    stream = io.BytesIO(data)
    try:
        shape, dtype = npy_header(stream)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
        raise DecodeError(
            f"{what} is not a readable .npy array ({one_line(exc)}); save it again with numpy.save"
        ) from None
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise DecodeError(f"{what} holds {dtype} values; a source array needs real numbers")
    if len(shape) not in (1, 2) or any(n < 0 for n in shape):
        raise DecodeError(f"{what} has shape {shape}; a raw source must be a non-empty 2-D array")
    height, width = (1, shape[0]) if len(shape) == 1 else shape
    if height == 0 or width == 0:
        raise DecodeError(f"{what} has shape {shape}; a raw source must be a non-empty 2-D array")
    check_pixels(height, width, max_pixels, what)
    check_npy_shape(shape, dtype.itemsize, len(data) - stream.tell(), what, DecodeError)
    if on_size is not None:
        on_size(height, width, 1, 0)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise DecodeError(
            f"{what} is not a readable .npy array ({one_line(exc)}); save it again with numpy.save"
        ) from None
    return _check_finite(_check_raw_array(array, what), what)


def _looks_like_text(data: bytes) -> bool:
    """UTF-8 with digits and no control characters other than whitespace: meant as a text matrix."""
    try:
        text = data[:4096].decode("utf-8", errors="ignore" if len(data) > 4096 else "strict").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return False
    return any(c.isdigit() for c in text) and all(c.isprintable() or c in "\t\n\r\f\v" for c in text)


def _check_raw_array(array: np.ndarray, what: str) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DecodeError(f"{what} holds {array.dtype} values; a source array needs real numbers")
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.size == 0:
        raise DecodeError(f"{what} has shape {array.shape}; a raw source must be a non-empty 2-D array")
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float64)


def _check_finite(values: np.ndarray, what: str) -> np.ndarray:
    """Refuse NaN and infinity in a source (the documented policy): count them and say where the first is."""
    if not np.issubdtype(values.dtype, np.floating):
        return values
    finite = np.isfinite(values)
    if finite.all():
        return values
    count = int(finite.size - np.count_nonzero(finite))
    first = np.unravel_index(int(np.argmin(finite)), finite.shape)
    where = f"row {first[0] + 1}, column {first[1] + 1}" + (f", channel {first[2] + 1}" if len(first) > 2 else "")
    value = values[first]
    raise DecodeError(
        f"{what} holds {count:,} NaN or infinite value{'s' if count > 1 else ''} (the first, {value}, at {where}); "
        "replace them with numbers first (e.g. numpy.nan_to_num)"
    )


def _decode_text(
    data: bytes, what: str, max_pixels: int | None, on_size: SizeCheck | None, csv: bool = False
) -> np.ndarray:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DecodeError(f"{what} is UTF-16 text; save it as UTF-8 (or plain ASCII) text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is neither an image nor a text matrix") from None
    check_memory(Estimate(f"reading {what} as a text matrix", {"parsed values": len(data) * TEXT_BYTES_FACTOR}))
    array = parse_matrix(text, what, csv=csv)
    check_pixels(array.shape[0], array.shape[1], max_pixels, what)
    if on_size is not None:
        on_size(array.shape[0], array.shape[1], 1, 0)
    return array
