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
grayscale by BT.601 luma (default) or the channel mean, alpha dropped, and
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

import io
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .errors import DecodeError, OutputError, OutputUsageError, ParameterError, SourceError
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
    """

    source: Source
    array: np.ndarray
    kind: str
    detail: str


# ---------------------------------------------------------------------------
# Reading bytes


class _SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
        target = urllib.parse.urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
        scheme = urllib.parse.urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise SourceError(f"{req.full_url}: redirected to a {scheme}: URL, which is refused (http and https only)")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_DOWNLOAD) -> tuple[bytes, str]:
    """Download ``url``; returns the body and its content type.

    The size cap is enforced while streaming and ``timeout`` bounds both each
    network wait and the whole download.
    """
    opener = urllib.request.build_opener(_SameSchemeRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": f"convcli/{__version__}"})
    deadline = time.monotonic() + timeout
    try:
        with opener.open(request, timeout=timeout) as response:
            content_type = response.headers.get_content_type()
            chunks = []
            total = 0
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise SourceError(
                        f"{url}: download is larger than {max_bytes // (1024 * 1024)} MiB; raise --max-download if you trust it"
                    )
                if time.monotonic() > deadline:
                    raise SourceError(f"{url}: download took longer than {timeout:g} s; raise --timeout or try again")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}; check the address") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise SourceError(f"{url}: no answer within {timeout:g} s; raise --timeout or try again") from None
        if isinstance(reason, ConnectionRefusedError):
            raise SourceError(f"{url}: connection refused; is the server running?") from None
        raise SourceError(f"{url}: cannot connect ({reason})") from None
    except TimeoutError:
        raise SourceError(f"{url}: no answer within {timeout:g} s; raise --timeout or try again") from None
    except (ConnectionError, OSError) as exc:
        if isinstance(exc, SourceError):
            raise
        raise SourceError(f"{url}: connection failed ({exc})") from None
    return b"".join(chunks), content_type


def read_stdin_bytes(stream) -> bytes:  # type: ignore[no-untyped-def]
    """Read all of a binary stream (stdin); refuse an empty one."""
    data = stream.read()
    if not data:
        raise SourceError("standard input is empty; pipe an image, a .npy array or a text matrix into '-'")
    return data


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


def _decode_npy(data: bytes, what: str) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise DecodeError(f"{what} is not a readable .npy array ({exc})") from None
    return _check_raw_array(array, what)


def _check_raw_array(array: np.ndarray, what: str) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DecodeError(f"{what} holds {array.dtype} values; a source array needs real numbers")
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.size == 0:
        raise DecodeError(f"{what} has shape {array.shape}; a raw source must be a non-empty 2-D array")
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float64)


def _decode_text(data: bytes, what: str) -> np.ndarray:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is neither an image nor a text matrix") from None
    return parse_matrix(text, what)


def _png_header(data: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG, from its IHDR chunk."""
    if len(data) >= 26 and data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
        return data[24], data[25]
    return None


def _decode_png16_color(data: bytes, what: str) -> tuple[np.ndarray, str]:
    # Pillow reduces 16-bit colour PNGs to 8 bits; pypng keeps all 16.
    import png

    try:
        width, height, rows, info = png.Reader(bytes=data).asDirect()
        pixels = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except Exception as exc:  # pypng raises its own family and ValueError alike
        raise DecodeError(f"{what} is a damaged PNG ({exc})") from None
    planes = info["planes"]
    return pixels.reshape(height, width, planes), {2: "LA", 3: "RGB", 4: "RGBA"}.get(planes, "L")


def _decode_tiff(data: bytes, what: str, frame: int) -> tuple[np.ndarray, str]:
    import imageio.v3 as iio

    try:
        pixels = iio.imread(data, plugin="tifffile", index=frame)
    except IndexError:
        raise DecodeError(f"{what} has no frame {frame}") from None
    except Exception as exc:  # tifffile raises many types for damaged files
        raise DecodeError(f"{what} is not a readable TIFF ({exc})") from None
    return pixels, "TIFF"


def _decode_pillow(data: bytes, what: str, frame: int) -> tuple[np.ndarray, str, str]:
    from PIL import Image, UnidentifiedImageError

    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        fmt = image.format or "image"
        frames = getattr(image, "n_frames", 1)
        if frame >= frames:
            raise DecodeError(f"{what} has {frames} frame(s); --frame {frame} does not exist")
        if frame:
            image.seek(frame)
        mode = image.mode
        if mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        elif mode in ("I;16B", "I;16L", "I;16N"):
            image = image.convert("I;16")
        pixels = np.asarray(image)
        return pixels, fmt, mode
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError(f"{what} is not an image convcli can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"{what} is a damaged or truncated image ({exc})") from None


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


def normalize(values: np.ndarray, pixel_range: float | None, method: str = "dtype") -> np.ndarray:
    """Scale pixel values: ``dtype`` divides by the pixel type's white (255, 65535), ``max`` by the image's maximum, ``none`` keeps them."""
    if method not in NORMALIZE_METHODS:
        raise ParameterError(f"unknown normalize method {method!r}; use dtype, max or none")
    if method == "dtype" and pixel_range:
        values = values / np.float32(pixel_range)
    elif method == "max":
        peak = float(np.max(values)) if values.size else 0.0
        if peak > 0:
            values = values / np.float32(peak)
    return values.astype(np.float32, copy=False)


def decode(
    data: bytes,
    source: Source,
    *,
    gray: str = "luma",
    normalize_method: str = "dtype",
    color: bool = False,
    frame: int = 0,
) -> Loaded:
    """Decode bytes by content into a :class:`Loaded` (see the module docstring)."""
    what = "standard input" if source.kind == "stdin" else repr(source.text)
    if not data:
        raise DecodeError(f"{what} is empty (0 bytes)")
    suffix = source.suffix
    kind = sniff(data)
    if kind == "NPY" or (kind is None and suffix == ".npy"):
        array = _decode_npy(data, what)
        return Loaded(source, array, "array", f"NPY {array.shape[0]}x{array.shape[1]} {array.dtype}")
    if kind is None and (suffix in (".txt", ".csv") or source.kind != "path" or not suffix):
        try:
            array = _decode_text(data, what)
            return Loaded(source, array, "array", f"text matrix {array.shape[0]}x{array.shape[1]}")
        except DecodeError:
            if suffix in (".txt", ".csv"):
                raise
    header = _png_header(data)
    if header and header[0] == 16 and header[1] in (2, 4, 6):
        pixels, mode = _decode_png16_color(data, what)
        fmt = "PNG"
    elif kind == "TIFF":
        pixels, fmt = _decode_tiff(data, what, frame)
        mode = f"{pixels.shape[2] if pixels.ndim == 3 else 1}-channel"
    else:
        try:
            pixels, fmt, mode = _decode_pillow(data, what, frame)
        except DecodeError:
            if kind is None and source.kind != "path":
                raise DecodeError(f"{what} is not an image, a .npy array or a text matrix") from None
            raise
    if pixels.ndim == 3 and pixels.shape[2] > 4:  # multi-page TIFF read whole, or a volume
        raise DecodeError(f"{what} has {pixels.shape[2]} channels; convcli reads gray, RGB and RGBA images")
    if pixels.ndim not in (2, 3):
        raise DecodeError(f"{what} decodes to shape {pixels.shape}; convcli reads 2-D images")
    pixel_range = _pixel_range(pixels.dtype)
    bits = f"{pixels.dtype.itemsize * 8}-bit" if pixel_range else f"{pixels.dtype}"
    detail = f"{fmt} {pixels.shape[0]}x{pixels.shape[1]} {mode} {bits}"
    if color and pixels.ndim == 3 and pixels.shape[2] >= 3:
        values = pixels[:, :, :3].astype(np.float32)
    else:
        values = to_gray(pixels, gray)
    return Loaded(source, normalize(values, pixel_range, normalize_method), "image", detail)


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
) -> Loaded:
    """Classify, read and decode one source.

    Parameters
    ----------
    text : str
        A path, an http(s) URL or ``-`` (read from ``stdin``, a binary stream).
    gray, normalize_method, color, frame
        See :func:`to_gray`, :func:`normalize`; ``color`` keeps RGB channels;
        ``frame`` picks a frame of an animated or multi-page image.
    """
    source = classify_source(text)
    if source.kind == "stdin":
        if stdin is None:
            raise SourceError("no standard input stream to read '-' from")
        data = read_stdin_bytes(stdin)
    elif source.kind == "url":
        data, content_type = fetch_url(text, timeout=timeout, max_bytes=max_download)
        try:
            return decode(data, source, gray=gray, normalize_method=normalize_method, color=color, frame=frame)
        except DecodeError:
            if content_type.startswith("text/html"):
                raise DecodeError(f"{text}: the server sent an HTML page, not an image") from None
            raise
    else:
        path = Path(text)
        if source.suffix in (".txt", ".csv", ".npy") and path.is_file():
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise SourceError(f"cannot read {text!r}: {exc.strerror or exc}") from None
            return decode(data, source, gray=gray, normalize_method=normalize_method, color=color, frame=frame)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"{text!r} does not exist; check the path") from None
        except IsADirectoryError:
            raise SourceError(f"{text!r} is a directory; give an image file") from None
        except OSError as exc:
            raise SourceError(f"cannot read {text!r}: {exc.strerror or exc}") from None
    return decode(data, source, gray=gray, normalize_method=normalize_method, color=color, frame=frame)


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
    clipped = int(np.count_nonzero((values < low) | (values > high)))
    span = high - low
    if span > 0:
        scaled = (values - np.float32(low)) * np.float32(white / span)
    else:
        scaled = np.where(values > low, np.float32(white), np.float32(0))
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
) -> tuple[bytes, PixelMapping | None]:
    """Encode a float array (``(H, W)`` or ``(H, W, 3)``) in ``fmt``; raw formats keep the values."""
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
    buffer = io.BytesIO()
    if depth == 16 and pixels.ndim == 3:
        import png

        height, width, planes = pixels.shape
        png.Writer(width, height, greyscale=False, bitdepth=16).write(buffer, pixels.reshape(height, width * planes))
        return buffer.getvalue(), mapping
    from PIL import Image

    image = Image.fromarray(pixels)
    image.save(buffer, format=fmt.upper(), **({"quality": 95} if fmt == "jpeg" else {}))
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


def write_atomic(destination: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``destination`` and rename it into place."""
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
