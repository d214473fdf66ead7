"""Decoding: bytes to float arrays (images to gray or colour in [0, 1], raw .npy/.txt/.csv arrays as they are).

:func:`decode` classifies the bytes by content and hands them to the decoder
of their format family: raw arrays (:mod:`~convcli.io.decode_raw`), 16-bit
colour PNG (:mod:`~convcli.io.decode_png`), TIFF
(:mod:`~convcli.io.decode_tiff`) or Pillow (:mod:`~convcli.io.decode_pillow`);
the pixels they return become floats here (:func:`to_gray`, :func:`normalize`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import DecodeError, ParameterError
from ..limits import DEFAULT_MAX_PIXELS, SizeCheck, check_pixels
from .decode_common import ORIENTATIONS, _check_size, _exif_orientation, _orient, sniff
from .decode_pillow import _decode_pillow
from .decode_png import _decode_png16_color, _png_header
from .decode_raw import _check_finite, _decode_npy, _decode_text, _looks_like_text
from .decode_tiff import _decode_tiff
from .sources import Source

GRAY_METHODS = ("luma", "mean")
NORMALIZE_METHODS = ("dtype", "max", "none")
#: ITU-R BT.601 luma weights, the ones Pillow's ``convert("L")`` uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Loaded:
    """A decoded source.

    Attributes
    ----------
    array : ndarray
        ``(H, W)`` float array, or ``(H, W, C)`` when colour is kept.
    kind : str
        ``image`` (pixels, converted and scaled) or ``array`` (raw numbers).
    detail : str
        What was read, for messages: ``"PNG RGB 8-bit"`` (the size is the array's shape, height first).
    notes : tuple of str
        Things the user should know, one line each (``note: ... has 3 frames;
        using frame 0``); the command line prints them on stderr.
    """

    source: Source
    array: np.ndarray
    kind: str
    detail: str
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Decoding


def _pixel_range(dtype: np.dtype) -> float | None:
    """The value of full white for a pixel type; ``None`` for floats (kept as they are)."""
    if dtype == np.bool_:
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return None


def to_gray(pixels: np.ndarray, method: str = "luma") -> np.ndarray:
    """Grayscale float32 array from ``(H, W)``, ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)`` pixels.

    ``luma`` weighs R, G, B by ITU-R BT.601 (0.299, 0.587, 0.114), as Pillow's
    ``convert("L")`` does but without rounding to 8 bits; ``mean`` is the
    plain channel mean. Alpha is dropped (not composited). Values keep their
    pixel scale; :func:`normalize` scales them.

    Colour JPEGs read with ``luma`` (and without ``color``) never reach this
    function in colour: :func:`decode` asks libjpeg for the file's own Y
    channel, the BT.601 luma the encoder computed and stored, which decodes
    about five times faster. Converting YCbCr to RGB leaves the luma unchanged
    up to the rounding of R, G and B to integers, so Y lies within 1/255 of the
    luma of the decoded RGB, except at pixels where a decoded channel is
    clipped at 0 or 255 (saturated colours the quantized chroma pushed out of
    range): there Y keeps the luma of the colour the file encodes, the RGB
    route that of the clipped colour (up to 20/255 apart measured on
    samples/coffee.png saved at JPEG quality 90). CMYK and gray JPEGs,
    ``mean`` and ``color`` take the RGB route.
    """
    if method not in GRAY_METHODS:
        raise ParameterError(f"unknown gray method {method!r}; use luma or mean")
    if pixels.ndim == 2:
        return pixels.astype(np.float32)
    channels = pixels.shape[2]
    if channels <= 2:  # gray, gray + alpha
        return pixels[:, :, 0].astype(np.float32)
    rgb = pixels[:, :, :3].astype(np.float32)
    if method == "mean":
        return rgb.mean(axis=2, dtype=np.float32)
    return luma(rgb)


def luma(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """BT.601 luma of float32 ``(H, W, 3)`` values: ``(0.299 R + 0.587 G) + 0.114 B``, each product and sum
    rounded to float32 in this order, so every CPU gives the same bits (a BLAS product, ``rgb @ weights``, fuses
    and groups them as the CPU's kernel does: one clipped value in 134k of a generated doc differed between two
    machines). ``out``: a float32 ``(H, W)`` buffer to write into.

    >>> luma(np.array([[[255.0, 255.0, 255.0], [1.0, 0.0, 0.0]]], dtype=np.float32)).tolist()
    [[255.0, 0.29899999499320984]]
    """
    red, green, blue = (np.float32(w) for w in LUMA_WEIGHTS)
    out = np.multiply(rgb[..., 0], red, out=out)
    scratch = np.multiply(rgb[..., 1], green)
    out += scratch
    np.multiply(rgb[..., 2], blue, out=scratch)
    out += scratch
    return out


def normalize(
    values: np.ndarray, pixel_range: float | None, method: str = "dtype", *, overwrite: bool = False
) -> np.ndarray:
    """Scale pixel values: ``dtype`` divides by the pixel type's white (255, 65535), ``max`` by the image's maximum, ``none`` keeps them.

    ``overwrite`` lets a float32 ``values`` that the caller owns be divided in place (one pass and one
    large allocation fewer); the numbers are the same either way.
    """
    if method not in NORMALIZE_METHODS:
        raise ParameterError(f"unknown normalize method {method!r}; use dtype, max or none")
    divisor = None
    if method == "dtype" and pixel_range:
        divisor = np.float32(pixel_range)
    elif method == "max":
        peak = float(np.max(values)) if values.size else 0.0
        if peak > 0:
            divisor = np.float32(peak)
    if divisor is not None:
        in_place = overwrite and values.dtype == np.float32 and values.flags.writeable
        values = np.divide(values, divisor, out=values) if in_place else values / divisor
    return values.astype(np.float32, copy=False)


def decode(
    data: bytes,
    source: Source,
    *,
    gray: str = "luma",
    normalize_method: str = "dtype",
    color: bool = False,
    frame: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_size: SizeCheck | None = None,
    orient: bool = True,
) -> Loaded:
    """Decode bytes by content into a :class:`Loaded` (see the module docstring).

    Gray comes from :func:`to_gray`, except for a colour (RGB/YCbCr) JPEG read
    with ``gray="luma"``, no ``color`` and frame 0: its Y channel is decoded
    directly (within 1/255 of the luma of the decoded RGB where no decoded
    channel is clipped; see :func:`to_gray`).

    Parameters
    ----------
    max_pixels : int or None
        Refuse images and arrays with more pixels, read from the header before
        decoding (``None``: no limit).
    on_size : callable, optional
        Called as ``on_size(height, width, channels, decoded_bytes_per_pixel)``
        once the size is known and before the pixels are decoded, so a command
        can refuse an operation that would not fit in memory.
    orient : bool
        Turn photos upright by their EXIF orientation (TIFF: the Orientation
        tag), as image viewers show them; ``False`` keeps the stored pixels.
        The detail says what was done (``rotated 90° clockwise by its EXIF
        orientation``).

    Raises
    ------
    DecodeError
        Not an image or array, damaged, truncated, NaN/infinity in the values,
        or a frame that does not exist.
    LimitError
        Above ``max_pixels``.
    """
    what = source.what
    if not data:
        raise DecodeError(f"{what} is empty (0 bytes)")
    with warnings.catch_warnings():
        # Decoders warn about oddities (bad EXIF, odd palettes) on stderr; convcli either reads the file or says why not.
        warnings.simplefilter("ignore")
        return _decode(data, source, what, gray, normalize_method, color, frame, max_pixels, on_size, orient)


def _decode(
    data: bytes,
    source: Source,
    what: str,
    gray: str,
    normalize_method: str,
    color: bool,
    frame: int,
    max_pixels: int | None,
    on_size: SizeCheck | None,
    orient: bool = True,
) -> Loaded:
    suffix = source.suffix
    kind = sniff(data)
    if kind == "NPY" or (kind is None and suffix == ".npy"):
        array = _decode_npy(data, what, max_pixels, on_size)
        return Loaded(source, array, "array", f"NPY {array.dtype}")
    text_error: DecodeError | None = None
    if kind is None and (suffix in (".txt", ".csv") or source.kind != "path" or not suffix):
        try:
            array = _decode_text(data, what, max_pixels, on_size, csv=suffix == ".csv")
            return Loaded(source, array, "array", "text matrix")
        except DecodeError as exc:
            if suffix in (".txt", ".csv"):
                raise
            if _looks_like_text(data):
                text_error = exc
    header = _png_header(data)
    notes: list[str] = []
    if header and header[2] == 16 and header[3] in (2, 4, 6):
        check_pixels(header[0], header[1], max_pixels, what)
        _check_size(header[0], header[1], what)
        if on_size is not None:
            on_size(header[0], header[1], 4, 24)
        pixels, mode = _decode_png16_color(data, what)
        fmt = "PNG"
        if orient:
            from PIL import Image

            try:
                orientation = _exif_orientation(Image.open(io.BytesIO(data)))
            except Exception:  # noqa: BLE001 - pypng read the pixels; unreadable EXIF is ignored, as viewers do
                orientation = 1
            if orientation in ORIENTATIONS:
                pixels = _orient(pixels, orientation)
                mode += f"|{ORIENTATIONS[orientation]} by its EXIF orientation"
    elif kind == "TIFF":
        pixels, fmt, mode, notes = _decode_tiff(data, what, frame, max_pixels, on_size, orient)
    else:
        try:
            luma = gray == "luma" and not color
            pixels, fmt, mode, notes = _decode_pillow(
                data, what, frame, max_pixels, on_size, jpeg_luma=luma, orient=orient
            )
        except DecodeError:
            if text_error is not None:  # text that is not a matrix: say which line is wrong
                raise text_error from None
            if kind is None and source.kind != "path":
                raise DecodeError(f"{what} is not an image, a .npy array or a text matrix") from None
            raise
    if pixels.ndim == 3 and pixels.shape[2] > 4:  # a volume
        raise DecodeError(f"{what} has {pixels.shape[2]} channels; convcli reads gray, RGB and RGBA images")
    if pixels.ndim not in (2, 3) or pixels.size == 0:
        raise DecodeError(f"{what} decodes to shape {pixels.shape}; convcli reads non-empty 2-D images")
    check_pixels(pixels.shape[0], pixels.shape[1], max_pixels, what)
    if pixels.dtype.kind not in "buif":
        raise DecodeError(f"{what} holds {pixels.dtype} pixels; convcli reads integer and float images")
    _check_finite(pixels, what)
    pixel_range = _pixel_range(pixels.dtype)
    bits = f"{pixels.dtype.itemsize * 8}-bit" if pixel_range else f"{pixels.dtype}"
    mode, _, turned = mode.partition("|")  # the orientation applied (or kept), after the mode
    detail = f"{fmt} {mode} {bits}"
    if notes:
        detail += f", {'page' if fmt == 'TIFF' else 'frame'} {frame}"
    if turned:
        detail += f", {turned}"
    if color and pixels.ndim == 3 and pixels.shape[2] >= 3:
        values = pixels[:, :, :3].astype(np.float32)
    else:
        values = to_gray(pixels, gray)
    # values is a new float32 array (astype or matmul above), so it may be scaled in place.
    return Loaded(
        source, normalize(values, pixel_range, normalize_method, overwrite=True), "image", detail, tuple(notes)
    )
