"""Decoding: bytes to float arrays (images to gray or colour in [0, 1], raw .npy/.txt/.csv arrays as they are)."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConvcliError, DecodeError, ParameterError
from ..limits import (
    DEFAULT_MAX_PIXELS,
    TEXT_BYTES_FACTOR,
    Estimate,
    SizeCheck,
    check_memory,
    check_npy_shape,
    check_pixels,
    format_bytes,
    npy_header,
)
from ..matrices import parse_matrix
from .sources import (
    Source,
    one_line,
)

#: EXIF orientation (tag 274) -> what viewers do to the stored pixels to show the photo upright.
ORIENTATIONS = {
    2: "mirrored left-right",
    3: "rotated 180°",
    4: "mirrored top-bottom",
    5: "transposed",
    6: "rotated 90° clockwise",
    7: "transversed",
    8: "rotated 90° counter-clockwise",
}

GRAY_METHODS = ("luma", "mean")
NORMALIZE_METHODS = ("dtype", "max", "none")
#: ITU-R BT.601 luma weights, the ones Pillow's ``convert("L")`` uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


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


def sniff(data: bytes) -> str | None:
    """Format name from the first bytes (``PNG``, ``JPEG``, ``NPY``...) or ``None``."""
    if data.startswith(b"\x93NUMPY"):
        return "NPY"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _IMAGE_MAGIC:
        if data.startswith(magic):
            return name
    return None


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


def _png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(height, width, bit depth, colour type) of a PNG, from its IHDR chunk."""
    if len(data) >= 26 and data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        return height, width, data[24], data[25]
    return None


def _png_raw_size(height: int, width: int, bit_depth: int, colour_type: int, interlaced: bool) -> int:
    """Bytes of a PNG's decompressed image data: one filter byte and the packed samples per row (of each pass)."""
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type, 4)

    def rows(h: int, w: int) -> int:
        return 0 if h <= 0 or w <= 0 else h * (1 + (w * samples * bit_depth + 7) // 8)

    if not interlaced:
        return rows(height, width)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(rows((height - y + dy - 1) // dy, (width - x + dx - 1) // dx) for x, y, dx, dy in passes)


def _check_png_data(data: bytes, what: str) -> None:
    """Refuse a PNG whose image data inflates past what its header's size needs (a zlib bomb: 400 KB that
    decompress to 400 MB of 'pixels' for a 1x1 image), streaming through zlib without keeping the output.

    pypng (the 16-bit colour route) decompresses each IDAT chunk whole; Pillow stops at the image's size.
    """
    import zlib

    height, width, depth, colour = _png_header(data) or (0, 0, 8, 6)
    interlaced = len(data) > 28 and data[28] == 1
    allowed = _png_raw_size(height, width, depth, colour, interlaced)
    inflater = zlib.decompressobj()
    produced = 0
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            pending = data[position + 8 : position + 8 + length]
            while pending:
                try:
                    produced += len(inflater.decompress(pending, 1 << 20))
                except zlib.error:
                    return  # damaged: the decoder says so
                pending = inflater.unconsumed_tail
                if produced > allowed:
                    raise DecodeError(
                        f"{what} holds more compressed image data than its {height}x{width} size needs (a zlib "
                        "bomb?); refused; get a clean copy of the file"
                    )
        elif kind == b"IEND":
            return
        position += 12 + length


def _decode_png16_color(data: bytes, what: str) -> tuple[np.ndarray, str]:
    # Pillow reduces 16-bit colour PNGs to 8 bits; pypng keeps all 16.
    import png

    _check_png_data(data, what)

    try:
        width, height, rows, info = png.Reader(bytes=data).asDirect()
        pixels = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
        planes = info["planes"]
        pixels = pixels.reshape(height, width, planes)
    except Exception as exc:  # pypng raises its own family and ValueError alike
        raise DecodeError(f"{what} is a damaged PNG ({one_line(exc)}); get a complete copy of the file") from None
    return pixels, {2: "LA", 3: "RGB", 4: "RGBA"}.get(planes, "L")


def _inflated_size(decompressor: Any, segment: bytes, bound: int) -> int:
    """Bytes ``segment`` inflates to, counted in pieces and never past ``bound + 1`` (nothing is kept)."""
    produced = 0
    pending = segment
    while pending and produced <= bound:
        produced += len(decompressor.decompress(pending, 1 << 20))
        pending = decompressor.unconsumed_tail
    return produced


def _check_tiff_segments(data: bytes, page: Any, key: Any, what: str) -> None:
    """Refuse a Deflate or LZMA TIFF whose strips or tiles inflate past the size the header gives them.

    tifffile (without imagecodecs) inflates each segment whole with :func:`zlib.decompress`: 400 KB of
    zeros become 400 MB for a 1x1 image, and a larger file exhausts the memory.
    """
    import lzma
    import zlib

    compression = int(key.compression)
    if compression not in (8, 32946, 34925):
        return
    samples = int(key.samplesperpixel)
    bits = int(key.bitspersample)
    if key.is_tiled:
        bound = int(key.tilelength) * int(key.tilewidth) * max(1, int(key.tiledepth)) * samples * bits // 8 + 8
    else:
        rows = min(int(key.rowsperstrip), int(key.imagelength)) or int(key.imagelength)
        bound = rows * ((int(key.imagewidth) * samples * bits + 7) // 8) + 8
    for offset, count in zip(page.dataoffsets, page.databytecounts):
        segment = data[int(offset) : int(offset) + int(count)]
        try:
            decompressor: Any = zlib.decompressobj() if compression != 34925 else lzma.LZMADecompressor()
            if compression == 34925:
                produced = len(decompressor.decompress(segment, bound + 1))
            else:
                produced = _inflated_size(decompressor, segment, bound)
        except (zlib.error, lzma.LZMAError, EOFError):
            return  # damaged: the decoder says so
        if produced > bound:
            raise DecodeError(
                f"{what} holds a compressed strip or tile that inflates past the {format_bytes(bound)} its header "
                "gives it (a zlib bomb?); refused; get a clean copy of the file"
            )


def _frame_note(what: str, frames: int, frame: int, unit: str = "frame") -> str:
    return f"note: {what} has {frames} {unit}s; using {unit} {frame} (choose another with --frame N, from 0)"


def _decode_tiff(
    data: bytes, what: str, frame: int, max_pixels: int | None, on_size: SizeCheck | None, orient: bool = True
) -> tuple[np.ndarray, str, str, list[str]]:
    """One page of a TIFF with tifffile (16-bit, float and many-sample pages stay exact), upright by its
    Orientation tag unless ``orient`` is false."""
    import logging

    import tifffile

    logger = logging.getLogger("tifffile")
    was_disabled = logger.disabled
    logger.disabled = True  # tifffile logs damage on stderr; convcli reports it once, as an error
    notes = []
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            count = len(tif.pages)
            if count == 0:
                raise DecodeError(f"{what} is a TIFF without pages; get a complete copy of the file")
            if frame >= count:
                raise DecodeError(f"{what} has {count} page(s); --frame {frame} does not exist (use 0 to {count - 1})")
            if count > 1:
                notes.append(_frame_note(what, count, frame, "page"))
            page = tif.pages[frame]
            shape, axes = tuple(page.shape), str(page.axes)
            if "Y" not in axes or "X" not in axes or len(shape) > 3:
                raise DecodeError(f"{what} holds a {axes} array of shape {shape}; convcli reads 2-D images")
            height, width = shape[axes.index("Y")], shape[axes.index("X")]
            check_pixels(height, width, max_pixels, what)
            _check_size(height, width, what)
            channels = shape[axes.index("S")] if "S" in axes else 1
            if channels > 4:
                raise DecodeError(f"{what} has {channels} samples per pixel; convcli reads gray, RGB and RGBA images")
            key: Any = page.keyframe or page  # a TiffFrame shares its tags with its key page
            tag = key.tags.get(274)
            orientation = int(tag.value) if orient and tag is not None and int(tag.value) in ORIENTATIONS else 1
            if on_size is not None:
                rows, cols = (width, height) if orientation >= 5 else (height, width)
                on_size(rows, cols, channels, 2 * channels * np.dtype(page.dtype).itemsize)
            _check_tiff_segments(data, page, key, what)
            pixels = page.asarray()
            photometric = int(key.photometric)
            colormap = key.colormap
    except ConvcliError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise DecodeError(
            f"{what} is not a readable TIFF ({one_line(exc)}); get a complete copy or convert it to PNG"
        ) from None
    finally:
        logger.disabled = was_disabled
    if pixels.ndim == 3 and axes.startswith("S"):
        pixels = np.moveaxis(pixels, 0, -1)
    mode = f"{pixels.shape[2] if pixels.ndim == 3 else 1}-channel"
    if photometric == 0 and pixels.ndim == 2:  # MINISWHITE: 0 is white
        pixels = (
            ~pixels
            if pixels.dtype == np.bool_
            else (np.iinfo(pixels.dtype).max - pixels if pixels.dtype.kind == "u" else -pixels)
        )
        mode = "min-is-white"
    elif photometric == 3 and colormap is not None and pixels.ndim == 2:  # palette: 16-bit colour map, as Pillow, >> 8
        table = (np.asarray(colormap) >> 8).astype(np.uint8).T
        pixels = table[np.clip(pixels, 0, len(table) - 1)]
        mode = "palette"
    elif photometric == 5 and pixels.ndim == 3 and pixels.shape[2] == 4 and pixels.dtype == np.uint8:  # CMYK
        pixels = _cmyk_to_rgb(pixels)
        mode = "CMYK"
    if orientation in ORIENTATIONS:
        pixels = _orient(pixels, orientation)
        mode += f"|{ORIENTATIONS[orientation]} by its orientation tag"
    return pixels, "TIFF", mode, notes


def _cmyk_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """8-bit CMYK to RGB as Pillow does: ``R = (255 - C) * (255 - K) / 255``."""
    cmy = pixels[:, :, :3].astype(np.uint16)
    k = pixels[:, :, 3:4].astype(np.uint16)
    return ((255 - cmy) * (255 - k) // 255).astype(np.uint8)


_BYTES_PER_BAND = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}


def _check_size(height: int, width: int, what: str) -> None:
    """Refuse an image or array without pixels, from its header (every bad file exits 1, this one too)."""
    if height <= 0 or width <= 0:
        raise DecodeError(f"{what} is {height}x{width}: it holds no pixels; give a non-empty image or array")


def _text_chunk_limit(times: int = 1) -> str:
    """Pillow's limit on one decompressed PNG text chunk (its total text limit is 64 times that)."""
    from PIL import PngImagePlugin

    return format_bytes(times * PngImagePlugin.MAX_TEXT_CHUNK)


def _exif_orientation(image: Any) -> int:
    """The EXIF orientation (1 to 8) of a Pillow image; 1 when absent or unreadable."""
    try:
        value = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF is ignored, as viewers do
        return 1
    return value if value in ORIENTATIONS else 1


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright by an EXIF orientation, as Pillow's ``ImageOps.exif_transpose`` (and viewers) do.

    >>> _orient(np.array([[1, 2], [3, 4]]), 6)
    array([[3, 1],
           [4, 2]])
    """
    if orientation == 2:
        pixels = pixels[:, ::-1]
    elif orientation == 3:
        pixels = pixels[::-1, ::-1]
    elif orientation == 4:
        pixels = pixels[::-1]
    elif orientation == 5:
        pixels = pixels.swapaxes(0, 1)
    elif orientation == 6:
        pixels = pixels.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        pixels = pixels.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        pixels = pixels.swapaxes(0, 1)[::-1]
    else:
        return pixels
    return np.ascontiguousarray(pixels)


def _open_image(data: bytes) -> Any:
    """Pillow's ``Image.open`` of ``data``, a PNG opened by Pillow's PNG plugin alone.

    Without a file name ``Image.open`` first imports Pillow's common plugins (BMP, GIF, JPEG, PPM,
    PNG), more start-up than the rest of a small job's decoding (issue 19); a file with the PNG
    signature needs only the PNG plugin, as ``Image.open`` would pick. A PNG the plugin cannot
    identify goes through ``Image.open``, whose error is reported as before.
    """
    from PIL import Image

    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        from PIL import PngImagePlugin

        try:
            return PngImagePlugin.PngImageFile(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):  # what Image.open passes on to other plugins
            pass
    return Image.open(io.BytesIO(data))


def _decode_pillow(
    data: bytes,
    what: str,
    frame: int,
    max_pixels: int | None,
    on_size: SizeCheck | None,
    jpeg_luma: bool = False,
    orient: bool = True,
) -> tuple[np.ndarray, str, str, list[str]]:
    """Decode with Pillow; ``jpeg_luma`` returns a colour JPEG's Y (luma) channel as 2-D pixels (see :func:`to_gray`).

    ``orient`` turns the pixels upright by the file's EXIF orientation (JPEG, PNG, WebP), as viewers show them.
    """
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb check raises with a long message; convcli checks the header itself (check_pixels).
    Image.MAX_IMAGE_PIXELS = None
    notes = []
    try:
        image: Image.Image = _open_image(data)
        fmt = image.format or "image"
        width, height = image.size
        check_pixels(height, width, max_pixels, what)
        _check_size(height, width, what)
        frames = getattr(image, "n_frames", 1)
        if frame >= frames:
            raise DecodeError(f"{what} has {frames} frame(s); --frame {frame} does not exist (use 0 to {frames - 1})")
        if frames > 1:
            notes.append(_frame_note(what, frames, frame))
        if frame:
            image.seek(frame)
            width, height = image.size
            check_pixels(height, width, max_pixels, what)
        mode = image.mode
        bands = len(image.getbands())
        orientation = _exif_orientation(image) if orient else 1
        if on_size is not None:
            rows, cols = (width, height) if orientation >= 5 else (height, width)
            on_size(rows, cols, bands, 2 * bands * _BYTES_PER_BAND.get(mode, 1))
        if mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        elif mode in ("I;16B", "I;16L", "I;16N"):
            image = image.convert("I;16")
        elif mode in ("RGBa", "La"):
            image = image.convert(mode[:-1] + "A")
        elif jpeg_luma and fmt == "JPEG" and mode == "RGB" and not frame:
            # libjpeg hands over the Y plane it decodes anyway and skips the colour conversion: 5x faster.
            image.draft("L", None)
        pixels = _orient(np.asarray(image), orientation)
        if orientation in ORIENTATIONS:
            mode += f"|{ORIENTATIONS[orientation]} by its EXIF orientation"
        elif not orient and _exif_orientation(image) in ORIENTATIONS:
            mode += f"|stored pixels, EXIF orientation {_exif_orientation(image)} not applied"
        return pixels, fmt, mode, notes
    except ConvcliError:
        raise
    except ValueError as exc:
        if "MAX_TEXT_MEMORY" in str(exc):
            raise DecodeError(
                f"{what} holds more PNG text metadata (tEXt, zTXt, iTXt chunks) than the {_text_chunk_limit(64)} "
                "Pillow reads; refused; strip its metadata (optipng -strip all) if you trust the file"
            ) from None
        if "MAX_TEXT_CHUNK" in str(exc):
            raise DecodeError(
                f"{what} holds compressed PNG metadata (a zTXt, iTXt or iCCP chunk) that expands past "
                f"{_text_chunk_limit()} (a zlib bomb?); refused; strip its metadata (optipng -strip all) if you "
                "trust the file"
            ) from None
        raise DecodeError(
            f"{what} is a damaged or truncated image ({one_line(exc)}); get a complete copy of the file"
        ) from None
    except UnidentifiedImageError:
        kind = sniff(data)
        if kind:  # the signature is there but the header is not readable
            raise DecodeError(
                f"{what} starts like a {kind} file but is damaged or truncated; get a complete copy of the file"
            ) from None
        raise DecodeError(f"{what} is not an image convcli can read; convert it to PNG, TIFF or JPEG") from None
    except (
        OSError,
        SyntaxError,
        EOFError,
        IndexError,
        struct.error,
        TypeError,
        KeyError,
        ZeroDivisionError,
    ) as exc:
        raise DecodeError(
            f"{what} is a damaged or truncated image ({one_line(exc)}); get a complete copy of the file"
        ) from None


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
    weights = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    return rgb @ weights


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
