"""Reading sources and writing outputs: paths, URLs, stdin; images and raw arrays.

Sources
-------
A source is classified first, then decoded by content:

* ``-``: standard input (image bytes, ``.npy`` bytes or a text matrix);
* ``http://`` / ``https://`` URLs (timeout, size cap, at most 5 redirects and
  never to another scheme); every other scheme is refused;
* anything else is a path. ``.npy``, ``.txt`` and ``.csv`` paths are raw 2-D
  arrays; every other file is decoded by its content, not its name.

Images become float arrays (see :func:`to_gray` and :func:`normalize`):
grayscale by BT.601 luma (default; a colour JPEG's own Y channel) or the channel mean, alpha dropped, and
scaled to [0, 1] by the range of their pixel type (255 for 8-bit, 65535 for
16-bit; float images are kept as they are). Raw arrays are used as they are.

Outputs
-------
``.npy``, ``.tif``/``.tiff`` (float32), ``.txt`` and ``.csv`` keep the raw
values. ``.png``, ``.jpg``, ``.bmp``, ``.webp``, ``.gif`` are pixels: floats are
mapped to 8 or 16 bits by :func:`to_pixels`. Files are written atomically (a
temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ConvcliError, DecodeError, OutputError, OutputUsageError, ParameterError, SourceError
from .limits import (
    DEFAULT_MAX_PIXELS,
    TEXT_BYTES_FACTOR,
    Estimate,
    LimitError,
    SizeCheck,
    available_memory,
    check_memory,
    check_npy_shape,
    check_pixels,
    format_bytes,
    npy_header,
)
from .matrices import format_matrix, parse_matrix

ARRAY_SUFFIXES = {".npy": "npy", ".txt": "txt", ".csv": "csv"}
OUTPUT_FORMATS = {
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "bmp": "bmp",
    "webp": "webp",
    "gif": "gif",
    "tif": "tiff",
    "tiff": "tiff",
    "npy": "npy",
    "txt": "txt",
    "csv": "csv",
}
RAW_FORMATS = ("npy", "tiff", "txt", "csv")
GRAY_METHODS = ("luma", "mean")
NORMALIZE_METHODS = ("dtype", "max", "none")
SCALE_METHODS = ("auto", "minmax", "abs", "clip")
#: zlib level for PNG outputs: 1 is about 4x faster than Pillow's 6 on photos, files ~20% larger.
DEFAULT_PNG_COMPRESSION = 1

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_DOWNLOAD = 256 * 1024 * 1024
MAX_REDIRECTS = 5

#: ITU-R BT.601 luma weights, the ones Pillow's ``convert("L")`` uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
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
class Source:
    """A classified source: ``kind`` is ``stdin``, ``url`` or ``path``."""

    text: str
    kind: str

    @property
    def display(self) -> str:
        """How reports name the source: ``stdin`` for ``-``, else the text given."""
        return "stdin" if self.kind == "stdin" else self.text

    @property
    def stem(self) -> str:
        """Name stem for default output names (``stdin`` for ``-``)."""
        if self.kind == "stdin":
            return "stdin"
        name = self.text.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] if self.kind == "url" else Path(self.text).name
        stem = name.rsplit(".", 1)[0] if "." in name else name
        return re.sub(r"[^A-Za-z0-9_.+-]+", "-", stem).strip("-") or "image"

    @property
    def suffix(self) -> str:
        if self.kind == "path":
            return Path(self.text).suffix.lower()
        if self.kind == "url":
            path = self.text.split("?", 1)[0].rsplit("/", 1)[-1]
            return ("." + path.rsplit(".", 1)[1].lower()) if "." in path else ""
        return ""


def classify_source(text: str) -> Source:
    """Classify a source string; refuse URL schemes other than http and https.

    >>> classify_source("-").kind, classify_source("https://x/a.png").kind, classify_source("a.png").kind
    ('stdin', 'url', 'path')
    """
    if text == "-":
        return Source(text, "stdin")
    match = _SCHEME_RE.match(text)
    if match and len(match.group(1)) > 1:
        scheme = match.group(1).lower()
        if scheme in ("http", "https"):
            return Source(text, "url")
        if not os.path.exists(text):
            raise SourceError(
                f"{text!r}: the {scheme}: scheme is not supported; use a file path, an http(s) URL or - for stdin"
            )
    return Source(text, "path")


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
        What was read, for messages: ``"PNG 300x451 RGB 8-bit"``.
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
# Reading bytes


def _same_scheme_redirects(origin: str) -> Any:
    """A redirect handler that follows at most :data:`MAX_REDIRECTS` redirects, never to another scheme, never in a loop.

    Built on first use: ``urllib.request`` (with ``http.client``, ``ssl`` and
    ``email``) is imported only when a URL is read, not on every start.
    """
    import urllib.parse
    import urllib.request

    class SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def __init__(self, origin: str) -> None:
            super().__init__()
            self.origin = origin

        def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
            target = urllib.parse.urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
            scheme = urllib.parse.urlsplit(target).scheme.lower()
            visited = getattr(req, "redirect_dict", {})
            problem = scheme not in ("http", "https") or target in visited or target == self.origin
            if problem or len(visited) >= MAX_REDIRECTS:
                fp.close()
            if scheme not in ("http", "https"):
                raise SourceError(
                    f"{self.origin}: redirected to a {scheme or 'schemeless'}: URL, which is refused (http and https only)"
                )
            if target in visited or target == self.origin:
                raise SourceError(
                    f"{self.origin}: the server redirects in a loop (back to {target}); check the address"
                )
            if len(visited) >= MAX_REDIRECTS:
                raise SourceError(
                    f"{self.origin}: more than {MAX_REDIRECTS} redirects; open the final address directly"
                )
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    return SameSchemeRedirects(origin)


def _too_big(url: str, max_bytes: int) -> SourceError:
    return SourceError(
        f"{url}: download is larger than {format_bytes(max_bytes)}; raise --max-download if you trust it"
    )


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_DOWNLOAD) -> tuple[bytes, str]:
    """Download ``url``; returns the body and its content type.

    ``timeout`` bounds the connection, each network wait and the whole
    download (a server that trickles bytes is cut off too). The size cap is
    enforced while streaming, whatever ``Content-Length`` says (a declared
    length above the cap is refused before reading). At most
    :data:`MAX_REDIRECTS` redirects, only to http/https and never in a loop.
    A body shorter than its declared length is an error.
    """
    import http.client
    import socket
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(_same_scheme_redirects(url))
    deadline = time.monotonic() + timeout
    total = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"convcli/{__version__}"})
        with opener.open(request, timeout=timeout) as response:
            content_type = response.headers.get_content_type()
            declared = response.headers.get("Content-Length", "")
            if declared.strip().isdigit() and int(declared) > max_bytes:
                raise _too_big(url, max_bytes)
            chunks = []
            while True:
                # read1 returns what has arrived (one network read), so the deadline is checked often.
                chunk = response.read1(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise _too_big(url, max_bytes)
                if time.monotonic() > deadline:
                    raise SourceError(f"{url}: download took longer than {timeout:g} s; raise --timeout or try again")
                chunks.append(chunk)
            if declared.strip().isdigit() and total < int(declared):
                raise SourceError(
                    f"{url}: the download was cut short after {total} bytes (the server announced {int(declared)}); "
                    "try again"
                )
    except SourceError:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        status = str(exc.reason).splitlines()[0] if exc.reason else ""
        raise SourceError(f"{url}: HTTP {exc.code} {status}; check the address") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise SourceError(f"{url}: no answer within {timeout:g} s; raise --timeout or try again") from None
        if isinstance(reason, ConnectionRefusedError):
            raise SourceError(f"{url}: connection refused; is the server running?") from None
        raise SourceError(f"{url}: cannot connect ({_one_line(reason)})") from None
    except TimeoutError:
        raise SourceError(f"{url}: no answer within {timeout:g} s; raise --timeout or try again") from None
    except http.client.IncompleteRead as exc:
        got = total + len(exc.partial)
        raise SourceError(
            f"{url}: the download was cut short after {got} bytes (the server announced more); try again"
        ) from None
    except http.client.HTTPException as exc:
        raise SourceError(
            f"{url}: the server's answer is not valid HTTP ({_one_line(exc)}); check the address"
        ) from None
    except (ValueError, UnicodeError) as exc:
        raise SourceError(f"{url}: not a valid URL ({_one_line(exc)}); check the address") from None
    except OSError as exc:
        raise SourceError(f"{url}: connection failed ({_one_line(exc)}); try again") from None
    return b"".join(chunks), content_type


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text[:200] if text else type(value).__name__


def input_byte_limit() -> int:
    """Most bytes read from a file or stdin: the available memory (64 GiB when unknown)."""
    available = available_memory()
    return available if available is not None else 64 << 30


def read_limited(stream, limit: int, what: str) -> bytes:  # type: ignore[no-untyped-def]
    """Read a binary stream to its end, refusing more than ``limit`` bytes (``/dev/zero`` never ends)."""
    chunks = []
    total = 0
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise LimitError(f"{what} is larger than {format_bytes(limit)}, the memory available; give a smaller input")
        chunks.append(chunk)
    return b"".join(chunks)


def read_stdin_bytes(stream, limit: int | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """Read all of a binary stream (stdin) up to ``limit`` bytes; refuse an empty one."""
    data = read_limited(stream, input_byte_limit() if limit is None else limit, "standard input")
    if not data:
        raise SourceError("standard input is empty; pipe an image, a .npy array or a text matrix into '-'")
    return data


def read_path_bytes(text: str, limit: int | None = None) -> bytes:
    """Read a file, refusing one larger than ``limit`` bytes (by its size when it has one, else while reading)."""
    limit = input_byte_limit() if limit is None else limit
    try:
        with open(text, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > limit:
                raise LimitError(
                    f"{text!r} is {format_bytes(size)}, more than the {format_bytes(limit)} of memory available; "
                    "give a smaller input"
                )
            return read_limited(stream, limit, repr(text))
    except FileNotFoundError:
        raise SourceError(f"{text!r} does not exist; check the path") from None
    except IsADirectoryError:
        raise SourceError(f"{text!r} is a directory; give an image file") from None
    except OSError as exc:
        raise SourceError(f"cannot read {text!r}: {exc.strerror or exc}") from None


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
            f"{what} is not a readable .npy array ({_one_line(exc)}); save it again with numpy.save"
        ) from None
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise DecodeError(f"{what} holds {dtype} values; a source array needs real numbers")
    if len(shape) not in (1, 2) or any(n < 0 for n in shape):
        raise DecodeError(f"{what} has shape {shape}; a raw source must be a non-empty 2-D array")
    height, width = (1, shape[0]) if len(shape) == 1 else shape
    check_pixels(height, width, max_pixels, what)
    check_npy_shape(shape, dtype.itemsize, len(data) - stream.tell(), what, DecodeError)
    if on_size is not None:
        on_size(height, width, 1, 0)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise DecodeError(
            f"{what} is not a readable .npy array ({_one_line(exc)}); save it again with numpy.save"
        ) from None
    return _check_finite(_check_raw_array(array, what), what)


def _looks_like_text(data: bytes) -> bool:
    """UTF-8 with digits and no control characters other than whitespace: meant as a text matrix."""
    try:
        text = data[:4096].decode("utf-8")
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


def _decode_text(data: bytes, what: str, max_pixels: int | None, on_size: SizeCheck | None) -> np.ndarray:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is neither an image nor a text matrix") from None
    check_memory(Estimate(f"reading {what} as a text matrix", {"parsed values": len(data) * TEXT_BYTES_FACTOR}))
    array = parse_matrix(text, what)
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


def _decode_png16_color(data: bytes, what: str) -> tuple[np.ndarray, str]:
    # Pillow reduces 16-bit colour PNGs to 8 bits; pypng keeps all 16.
    import png

    try:
        width, height, rows, info = png.Reader(bytes=data).asDirect()
        pixels = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
        planes = info["planes"]
        pixels = pixels.reshape(height, width, planes)
    except Exception as exc:  # pypng raises its own family and ValueError alike
        raise DecodeError(f"{what} is a damaged PNG ({_one_line(exc)}); get a complete copy of the file") from None
    return pixels, {2: "LA", 3: "RGB", 4: "RGBA"}.get(planes, "L")


def _frame_note(what: str, frames: int, frame: int, unit: str = "frame") -> str:
    return f"note: {what} has {frames} {unit}s; using {unit} {frame} (choose another with --frame N, from 0)"


def _decode_tiff(
    data: bytes, what: str, frame: int, max_pixels: int | None, on_size: SizeCheck | None
) -> tuple[np.ndarray, str, str, list[str]]:
    """One page of a TIFF with tifffile (16-bit, float and many-sample pages stay exact)."""
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
            channels = shape[axes.index("S")] if "S" in axes else 1
            if channels > 4:
                raise DecodeError(f"{what} has {channels} samples per pixel; convcli reads gray, RGB and RGBA images")
            if on_size is not None:
                on_size(height, width, channels, 2 * channels * np.dtype(page.dtype).itemsize)
            pixels = page.asarray()
            key: Any = page.keyframe or page  # a TiffFrame shares its tags with its key page
            photometric = int(key.photometric)
            colormap = key.colormap
    except ConvcliError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise DecodeError(
            f"{what} is not a readable TIFF ({_one_line(exc)}); get a complete copy or convert it to PNG"
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
    return pixels, "TIFF", mode, notes


def _cmyk_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """8-bit CMYK to RGB as Pillow does: ``R = (255 - C) * (255 - K) / 255``."""
    cmy = pixels[:, :, :3].astype(np.uint16)
    k = pixels[:, :, 3:4].astype(np.uint16)
    return ((255 - cmy) * (255 - k) // 255).astype(np.uint8)


_BYTES_PER_BAND = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}


def _decode_pillow(
    data: bytes, what: str, frame: int, max_pixels: int | None, on_size: SizeCheck | None, jpeg_luma: bool = False
) -> tuple[np.ndarray, str, str, list[str]]:
    """Decode with Pillow; ``jpeg_luma`` returns a colour JPEG's Y (luma) channel as 2-D pixels (see :func:`to_gray`)."""
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb check raises with a long message; convcli checks the header itself (check_pixels).
    Image.MAX_IMAGE_PIXELS = None
    notes = []
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        fmt = image.format or "image"
        width, height = image.size
        check_pixels(height, width, max_pixels, what)
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
        if on_size is not None:
            on_size(height, width, bands, 2 * bands * _BYTES_PER_BAND.get(mode, 1))
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
        pixels = np.asarray(image)
        return pixels, fmt, mode, notes
    except ConvcliError:
        raise
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
        ValueError,
        EOFError,
        IndexError,
        struct.error,
        TypeError,
        KeyError,
        ZeroDivisionError,
    ) as exc:
        raise DecodeError(
            f"{what} is a damaged or truncated image ({_one_line(exc)}); get a complete copy of the file"
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

    Raises
    ------
    DecodeError
        Not an image or array, damaged, truncated, NaN/infinity in the values,
        or a frame that does not exist.
    LimitError
        Above ``max_pixels``.
    """
    what = "standard input" if source.kind == "stdin" else repr(source.text)
    if not data:
        raise DecodeError(f"{what} is empty (0 bytes)")
    with warnings.catch_warnings():
        # Decoders warn about oddities (bad EXIF, odd palettes) on stderr; convcli either reads the file or says why not.
        warnings.simplefilter("ignore")
        return _decode(data, source, what, gray, normalize_method, color, frame, max_pixels, on_size)


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
) -> Loaded:
    suffix = source.suffix
    kind = sniff(data)
    if kind == "NPY" or (kind is None and suffix == ".npy"):
        array = _decode_npy(data, what, max_pixels, on_size)
        return Loaded(source, array, "array", f"NPY {array.shape[0]}x{array.shape[1]} {array.dtype}")
    text_error: DecodeError | None = None
    if kind is None and (suffix in (".txt", ".csv") or source.kind != "path" or not suffix):
        try:
            array = _decode_text(data, what, max_pixels, on_size)
            return Loaded(source, array, "array", f"text matrix {array.shape[0]}x{array.shape[1]}")
        except DecodeError as exc:
            if suffix in (".txt", ".csv"):
                raise
            if _looks_like_text(data):
                text_error = exc
    header = _png_header(data)
    notes: list[str] = []
    if header and header[2] == 16 and header[3] in (2, 4, 6):
        check_pixels(header[0], header[1], max_pixels, what)
        if on_size is not None:
            on_size(header[0], header[1], 4, 24)
        pixels, mode = _decode_png16_color(data, what)
        fmt = "PNG"
    elif kind == "TIFF":
        pixels, fmt, mode, notes = _decode_tiff(data, what, frame, max_pixels, on_size)
    else:
        try:
            luma = gray == "luma" and not color
            pixels, fmt, mode, notes = _decode_pillow(data, what, frame, max_pixels, on_size, jpeg_luma=luma)
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
    detail = f"{fmt} {pixels.shape[0]}x{pixels.shape[1]} {mode} {bits}"
    if notes:
        detail += f", {'page' if fmt == 'TIFF' else 'frame'} {frame}"
    if color and pixels.ndim == 3 and pixels.shape[2] >= 3:
        values = pixels[:, :, :3].astype(np.float32)
    else:
        values = to_gray(pixels, gray)
    # values is a new float32 array (astype or matmul above), so it may be scaled in place.
    return Loaded(
        source, normalize(values, pixel_range, normalize_method, overwrite=True), "image", detail, tuple(notes)
    )


def load_source(
    text: str,
    *,
    gray: str = "luma",
    normalize_method: str = "dtype",
    color: bool = False,
    frame: int = 0,
    stdin=None,  # type: ignore[no-untyped-def]
    timeout: float = DEFAULT_TIMEOUT,
    max_download: int = DEFAULT_MAX_DOWNLOAD,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_size: SizeCheck | None = None,
) -> Loaded:
    """Classify, read and decode one source.

    Parameters
    ----------
    text : str
        A path, an http(s) URL or ``-`` (read from ``stdin``, a binary stream).
    gray, normalize_method, color, frame
        See :func:`to_gray`, :func:`normalize`; ``color`` keeps RGB channels;
        ``frame`` picks a frame of an animated or multi-page image.
    timeout, max_download
        URL limits: seconds, bytes (see :func:`fetch_url`).
    max_pixels, on_size
        See :func:`decode`. Files and stdin are read up to the memory
        available (a file larger than that is refused from its size).
    """
    source = classify_source(text)
    options = dict(
        gray=gray, normalize_method=normalize_method, color=color, frame=frame, max_pixels=max_pixels, on_size=on_size
    )
    if source.kind == "stdin":
        if stdin is None:
            raise SourceError("no standard input stream to read '-' from")
        data = read_stdin_bytes(stdin)
    elif source.kind == "url":
        data, content_type = fetch_url(text, timeout=timeout, max_bytes=max_download)
        try:
            return decode(data, source, **options)  # type: ignore[arg-type]
        except DecodeError:
            if content_type.startswith("text/html"):
                raise DecodeError(f"{text}: the server sent an HTML page, not an image; check the address") from None
            raise
    else:
        data = read_path_bytes(text)
    return decode(data, source, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Floats to pixels


@dataclass(frozen=True)
class PixelMapping:
    """How floats became pixels: ``[low, high]`` mapped to ``[0, 2**depth - 1]``; ``clipped`` counts values outside."""

    low: float
    high: float
    clipped: int
    scale: str


def to_pixels(
    values: np.ndarray, *, scale: str = "auto", vmin: float | None = None, vmax: float | None = None, depth: int = 8
) -> tuple[np.ndarray, PixelMapping]:
    """Map floats to 8- or 16-bit pixels.

    Parameters
    ----------
    scale : {'auto', 'minmax', 'abs', 'clip'}
        ``clip``: ``[vmin, vmax]`` (default ``[0, 1]``) to black..white, values
        outside are clipped. ``minmax``: the array's own min..max. ``abs``:
        magnitudes, 0..max|v|. ``auto``: ``clip`` when the values lie in
        [0, 1] or ``vmin``/``vmax`` is given, else ``minmax``.
    vmin, vmax : float, optional
        Fix the black or white end in any mode.
    depth : {8, 16}

    Returns
    -------
    pixels : ndarray of uint8 or uint16
    mapping : PixelMapping
    """
    if scale not in SCALE_METHODS:
        raise ParameterError(f"unknown scale {scale!r}; use one of {', '.join(SCALE_METHODS)}")
    if depth not in (8, 16):
        raise ParameterError(f"depth {depth} is not 8 or 16")
    values = np.asarray(values, dtype=np.float32)
    if scale == "abs":
        values = np.abs(values)
    low_data, high_data = (float(values.min()), float(values.max())) if values.size else (np.nan, np.nan)
    all_finite = np.isfinite(low_data) and np.isfinite(high_data)  # NaN and infinity show in the extremes
    if not all_finite:
        finite = values[np.isfinite(values)]
        low_data = float(finite.min()) if finite.size else 0.0
        high_data = float(finite.max()) if finite.size else 1.0
    chosen = scale
    if scale == "auto":
        chosen = "clip" if (vmin is not None or vmax is not None or (low_data >= 0 and high_data <= 1)) else "minmax"
    if chosen == "clip":
        low, high = 0.0, 1.0
    elif chosen == "abs":
        low, high = 0.0, high_data
    else:
        low, high = low_data, high_data
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
    if high < low:
        raise ParameterError(f"--vmax {high:g} is below --vmin {low:g}")
    white = (1 << depth) - 1
    inside = all_finite and low <= low_data and high_data <= high  # nothing to count or clip
    clipped = 0 if inside else int(np.count_nonzero((values < low) | (values > high)))
    span = high - low
    if span > 0:
        factor = np.float32(white / span)  # infinite when the span is below float32's range
        scaled = np.subtract(values, np.float32(low), dtype=np.float32)
        scaled *= factor
        inside = inside and bool(np.isfinite(factor))
    else:
        scaled = np.where(values > low, np.float32(white), np.float32(0))
    if not inside:  # inside [low, high] the values land in [0, white] give or take rounding, which rint absorbs
        np.clip(scaled, 0, white, out=scaled)
    np.rint(scaled, out=scaled)
    pixels = scaled.astype(np.uint8 if depth == 8 else np.uint16)
    return pixels, PixelMapping(low, high, clipped, chosen)


# ---------------------------------------------------------------------------
# Writing


def output_format(destination: str, requested: str | None = None) -> str:
    """Output format from ``--format`` or the extension; stdout defaults to PNG."""
    if requested:
        key = requested.lower().lstrip(".")
        if key not in OUTPUT_FORMATS:
            raise OutputUsageError(f"unknown format {requested!r}; use one of {', '.join(sorted(set(OUTPUT_FORMATS)))}")
        return OUTPUT_FORMATS[key]
    if destination == "-":
        return "png"
    suffix = Path(destination).suffix.lower().lstrip(".")
    if suffix not in OUTPUT_FORMATS:
        raise OutputUsageError(
            f"cannot tell the format of {destination!r} from its extension; use one of "
            f"{', '.join('.' + s for s in sorted(OUTPUT_FORMATS))} or --format"
        )
    return OUTPUT_FORMATS[suffix]


def encode(
    values: np.ndarray,
    fmt: str,
    *,
    scale: str = "auto",
    vmin: float | None = None,
    vmax: float | None = None,
    depth: int = 8,
    compression: int = DEFAULT_PNG_COMPRESSION,
) -> tuple[bytes, PixelMapping | None]:
    """Encode a float array (``(H, W)`` or ``(H, W, 3)``) in ``fmt``; raw formats keep the values.

    ``compression`` is the PNG zlib level, 0-9: 1 (the default) encodes about four times faster than
    level 6 for files about 20% larger; PNG is lossless at every level. PNG files are written by
    :mod:`convcli.pngwriter` (8 or 16 bits, gray or RGB, large images compressed on several threads);
    JPEG, BMP, WebP and GIF by Pillow.
    """
    values = np.asarray(values)
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        return buffer.getvalue(), None
    if fmt in ("txt", "csv"):
        if values.ndim != 2:
            raise OutputUsageError(f"{fmt} output holds 2-D arrays; colour output needs .npy, .tif or an image format")
        return (format_matrix(values, "," if fmt == "csv" else " ") + "\n").encode(), None
    if fmt == "tiff":
        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, values.astype(np.float32), photometric="rgb" if values.ndim == 3 else "minisblack")
        return buffer.getvalue(), None
    if depth == 16 and fmt != "png":
        raise OutputUsageError(
            f"{fmt.upper()} holds 8-bit pixels; use .png for --depth 16 (or .tif/.npy for raw values)"
        )
    pixels, mapping = to_pixels(values, scale=scale, vmin=vmin, vmax=vmax, depth=depth)
    if fmt == "png":
        from .pngwriter import png_bytes

        return png_bytes(pixels, compression=compression), mapping
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    options: dict[str, int] = {"quality": 95} if fmt == "jpeg" else {}
    image.save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue(), mapping


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two paths name the same file (through links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output_path(destination: str) -> None:
    """Fail before any work when the output's folder is missing or the path is a folder."""
    if destination == "-":
        return
    path = Path(destination)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputUsageError(f"output folder {str(parent)!r} does not exist; create it first (mkdir -p {parent})")
    if path.is_dir():
        raise OutputUsageError(
            f"output {destination!r} is a folder; give a file name such as {destination.rstrip('/')}/out.png"
        )


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a file is written and renamed: they take effect before or after, never in between.

    A signal that arrives meanwhile is recorded by a temporary handler and raised
    again once the previous handlers are back (so Ctrl-C still ends in
    KeyboardInterrupt and SIGTERM still ends the process). Blocking the signals
    with ``pthread_sigmask`` is not enough: NumPy's BLAS threads would take
    SIGTERM and end the process mid-write. Main thread only; elsewhere a no-op.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if signum is None:
            continue
        handler = signal.getsignal(signum)
        if handler is None or handler == signal.SIG_IGN:
            continue  # installed outside Python (cannot be restored) or ignored anyway
        previous[signum] = handler
        signal.signal(signum, lambda number, _frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])


def write_atomic(destination: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``destination`` and rename it into place.

    The temporary file is hidden and named ``.<name>.<random>.part``; it is
    removed on any error. SIGINT and SIGTERM are held during the write and the
    rename (see :func:`_signals_held`), so an interrupted run leaves either the
    old file or the new one, never a partial one; only SIGKILL (or a crash of
    the machine) can leave a ``.part`` file behind.
    """
    with _signals_held():
        _write_atomic(destination, data)


def _write_atomic(destination: str | Path, data: bytes) -> None:
    path = Path(destination)
    directory = path.parent if str(path.parent) else Path(".")
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise OutputError(f"cannot write {str(destination)!r}: {exc.strerror or exc}") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
