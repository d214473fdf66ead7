"""Row-strip readers and writers: images and arrays read and written a band of rows at a time.

Readers give the rows ``[start, stop)`` of an image as float32 (or the raw
array's own float type), converted exactly as :func:`convcli.io.decode`
converts the whole image (gray by :func:`~convcli.io.decode.to_gray`, scaled
by :func:`~convcli.io.decode.normalize`), so a streamed run sees the same
numbers as an in-memory one:

* TIFF / BigTIFF, tiled or striped, any compression tifffile decodes: only the
  strips or tiles under the rows asked for are read and decoded, once each,
  into one reused window: the band of segments under the rows, and the rows a
  read carries over from the band above (uncompressed contiguous pages: rows
  read by offset);
* ``.npy``: a read-only memory map;
* Zarr stores (:mod:`convcli.io.zarrs`, the optional extra): by rows of chunks;
* PNG, JPEG, WebP, GIF, BMP files: decoded whole by the same decoders as
  :func:`convcli.io.decode`, keeping only the stored 8/16-bit samples;
* anything else (stdin, URLs, text, float images): decoded whole by the
  caller's loader, then handed out by rows.

Image readers convert into a float buffer they reuse: a read's rows are
valid until the next read.

The writers are in :mod:`convcli.io.rowwriters` (re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DecodeError
from ..limits import check_pixels
from .decode import _pixel_range, luma, normalize, to_gray
from .rowwriters import (  # noqa: F401 - the writers, re-exported: convcli.io.strips is where callers find them
    STREAM_FORMATS,
    TIFF_TILE,
    NpyRows,
    PngRows,
    RowWriter,
    TiffRowsWriter,
    TiledTiffRowsWriter,
    check_stream_format,
    check_tile,
    row_writer,
)

# ---------------------------------------------------------------------------
# Readers


class RowReader:
    """Rows of an image on demand: ``read(start, stop)`` gives ``(stop - start, W)`` or ``(…, W, C)`` values."""

    height: int
    width: int
    channels: int  # 1 for a 2-D result
    dtype: np.dtype
    detail: str
    kind: str  # "image" or "array"
    #: Bytes the reader itself holds (decoded pixels kept whole, a band of segments).
    held_bytes: int = 0
    #: Bytes the reader's modules add to the interpreter (zarr's), counted beside it, not in the strips' share.
    runtime_bytes: int = 0

    def read(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file (readers are also context managers)."""

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class ArrayRows(RowReader):
    """Rows of an array already in memory (or memory-mapped)."""

    def __init__(self, array: np.ndarray, detail: str = "array", kind: str = "array", held: int | None = None):
        self.array = array
        self.height, self.width = array.shape[0], array.shape[1]
        self.channels = array.shape[2] if array.ndim == 3 else 1
        self.dtype = array.dtype
        self.detail = detail
        self.kind = kind
        self.held_bytes = array.nbytes if held is None else held

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.array[start:stop])


class NpyFileRows(RowReader):
    """A C-order 2-D float ``.npy``'s rows, read by file offset into a reused buffer (valid until the next read)."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype: Any, offset: int, detail: str):
        self.height, self.width = int(shape[0]), int(shape[1])
        self.channels = 1
        self._stored = np.dtype(dtype)
        self.dtype = self._stored.newbyteorder("=")
        self.detail = detail
        self.kind = "array"
        self._offset = offset
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._buffer = np.empty((0, self.width), dtype=self._stored)

    def read(self, start: int, stop: int) -> np.ndarray:
        rows = stop - start
        if self._buffer.shape[0] < rows:  # grown once, to the tallest read
            self._buffer = np.empty((rows, self.width), dtype=self._stored)
        out = self._buffer[:rows]
        view = memoryview(out.data).cast("B")
        self._file.seek(self._offset + start * self.width * self._stored.itemsize)
        done = 0
        while done < len(view):
            count = self._file.readinto(view[done:])
            if not count:
                raise DecodeError(f"{self.detail}: the file ends before row {stop}")
            done += count
        return out if self._stored.isnative else out.astype(self.dtype)

    def close(self) -> None:
        self._file.close()


class _Converted(RowReader):
    """Stored pixels turned into floats band by band, as :func:`convcli.io.decode` does for the whole image."""

    def __init__(self, pixels: Callable[[int, int], np.ndarray], shape: tuple[int, ...], dtype: np.dtype, **options):
        self._pixels = pixels
        self.height, self.width = shape[0], shape[1]
        stored_channels = shape[2] if len(shape) == 3 else 1
        self._color = options["color"] and stored_channels >= 3
        self.channels = 3 if self._color else 1
        self._gray = options["gray"]
        self._method = options["normalize"]
        self._range = _pixel_range(dtype)
        self.dtype = np.dtype(np.float32)
        self.kind = "image"
        self.detail = options.get("detail", "image")
        self._divisor: float | None = self._range
        if self._method == "max":
            self._divisor = self._peak()
            self._method = "dtype"

    def _values(self, pixels: np.ndarray) -> np.ndarray:
        if self._color:
            return pixels[:, :, :3].astype(np.float32)
        return to_gray(pixels, self._gray)

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 buffer of ``shape`` reused from read to read (grown when a read asks for more rows)."""
        held = getattr(self, name, None)
        if held is None or held.shape[0] < shape[0] or held.shape[1:] != shape[1:]:
            held = np.empty(shape, dtype=np.float32)
            setattr(self, name, held)
        return held[: shape[0]]

    def _values_into(self, pixels: np.ndarray) -> np.ndarray:
        """:meth:`_values` (that is, :func:`to_gray` or the colour planes) written into a reused buffer."""
        rows, width = pixels.shape[0], pixels.shape[1]
        if self._color:
            out = self._buffer("_float", (rows, width, 3))
            np.copyto(out, pixels[:, :, :3], casting="unsafe")
            return out
        out = self._buffer("_float", (rows, width))
        if pixels.ndim == 2 or pixels.shape[2] <= 2:
            np.copyto(out, pixels if pixels.ndim == 2 else pixels[:, :, 0], casting="unsafe")
            return out
        rgb = self._buffer("_rgb", (rows, width, 3))
        np.copyto(rgb, pixels[:, :, :3], casting="unsafe")
        if self._gray == "mean":
            np.mean(rgb, axis=2, dtype=np.float32, out=out)
        else:
            luma(rgb, out=out)
        return out

    def _peak(self) -> float | None:
        """The image's maximum value (``--normalize max``): one pass over the pixels before the first row."""
        peak = 0.0
        for start in range(0, self.height, 256):
            values = self._values(self._pixels(start, min(self.height, start + 256)))
            peak = max(peak, float(np.max(values)))
        return peak if peak > 0 else None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as float32, in a buffer the next read reuses (use or copy them first)."""
        values = self._values_into(self._pixels(start, stop))
        return normalize(values, self._divisor, self._method, overwrite=True)


class BandWindow:
    """Rows of an image stored in bands (TIFF strips or rows of tiles, Zarr chunk rows), each band decoded once.

    One reused window holds the rows a read carries over from the band before (its halo) and the
    whole bands under the rest of the read: about one band and one read, whatever the order of the
    reads (a jump back, as circular borders make, starts a fresh window).
    ``decode(band, out)`` writes band ``band``'s rows into ``out`` (``(rows, width, samples)``).
    """

    def __init__(
        self,
        band: int,
        height: int,
        width: int,
        samples: int,
        dtype: Any,
        decode: Callable[[int, np.ndarray], None],
    ) -> None:
        self.band, self.height = band, height
        self._decode = decode
        self._window = np.empty((band, width, samples), dtype=dtype)  # grown once, to the tallest read plus a band
        self._first = 0  # the image row of the window's first row
        self._held = 0  # rows the window holds (it ends at a band's end, or at the image's)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)``, ``(rows, width, samples)``: a view valid until the next call."""
        first, held = self._first, self._held
        if not (first <= start and stop <= first + held):
            if first <= start < first + held:
                # Reading on: keep the rows from ``start`` (the halo of this read), drop the ones above.
                keep = first + held - start
                self._window[:keep] = self._window[start - first : held]
                first, held = start, keep
            else:  # a jump (the first read, or a circular border reading the other end): start at start's band
                first, held = start // self.band * self.band, 0
            while first + held < stop:
                band = (first + held) // self.band
                rows = min(self.band, self.height - band * self.band)
                if held + rows > self._window.shape[0]:
                    grown = np.empty((held + rows,) + self._window.shape[1:], dtype=self._window.dtype)
                    grown[:held] = self._window[:held]
                    self._window = grown
                self._decode(band, self._window[held : held + rows])
                held += rows
            self._first, self._held = first, held
        return self._window[start - first : stop - first]


class TiffRows(_Converted):
    """A TIFF page's rows, decoding only the strips or tiles under them (one band of segments kept, each decoded once)."""

    def __init__(self, path: str, *, frame: int = 0, gray: str = "luma", normalize: str = "dtype", color: bool = False):
        import tifffile

        self._file = tifffile.TiffFile(path)
        try:
            page: Any = self._file.pages[frame]
            self._page = page
            shape, axes = tuple(page.shape), str(page.axes)
            if axes not in ("YX", "YXS") or int(page.planarconfig) != 1:
                raise DecodeError(f"{path!r} is a {axes} TIFF page; streamed reading takes YX or YXS pages")
            self._band = page.tilelength if page.is_tiled else page.rowsperstrip or shape[0]
            self._band = min(self._band, shape[0])
            self._across = -(-shape[1] // page.tilewidth) if page.is_tiled else 1
            self._samples = shape[2] if len(shape) == 3 else 1
            self._stored = np.dtype(page.dtype)
            # Uncompressed and contiguous (what convcli and most tools write by default): rows are read by offset.
            self._contiguous = None
            contiguous: Any = page.is_contiguous if int(page.compression) == 1 else None
            if contiguous:  # tifffile 2025 and later: a bool, the data at dataoffsets[0]; before: (offset, size)
                offset = page.dataoffsets[0] if contiguous is True else contiguous[0]
                self._contiguous = (int(offset), self._stored.newbyteorder(self._file.byteorder))
        except Exception:
            self._file.close()
            raise
        self._window = BandWindow(self._band, shape[0], shape[1], self._samples, self._stored, self._decode_band)
        bits = f"{self._stored.itemsize * 8}-bit" if self._stored.kind in "ui" else str(self._stored)
        layout = f"tiled {page.tilelength}x{page.tilewidth}" if page.is_tiled else f"striped {self._band} rows"
        detail = f"TIFF {self._samples}-channel {bits}, {layout}"
        super().__init__(
            self._stored_rows, shape, self._stored, gray=gray, normalize=normalize, color=color, detail=detail
        )
        #: One band of segments; the carried-over rows of a read are counted with the read (its float rows).
        self.held_bytes = 0 if self._contiguous else self._band * shape[1] * self._samples * self._stored.itemsize

    def _decode_band(self, band: int, out: np.ndarray) -> None:
        """Decode band ``band`` (a strip, or a row of tiles) into ``out`` (its rows, the image's width)."""
        page = self._page
        width = self.width
        rows = out.shape[0]
        handle = self._file.filehandle
        for column in range(self._across):
            index = band * self._across + column
            handle.seek(page.dataoffsets[index])
            data = handle.read(page.databytecounts[index])
            segment, where, _shape = page.decode(data, index, jpegtables=page.jpegtables)
            if segment is None:
                raise DecodeError(f"TIFF segment {index} could not be decoded")
            left = where[-2] if page.is_tiled else 0
            block = segment[0]  # (length, width, samples)
            stop_col = min(width, left + block.shape[1])
            out[:, left:stop_col] = block[:rows, : stop_col - left]

    def _stored_rows(self, start: int, stop: int) -> np.ndarray:
        if self._contiguous is not None:
            offset, stored = self._contiguous
            row_bytes = self.width * self._samples * stored.itemsize
            handle = self._file.filehandle
            handle.seek(offset + start * row_bytes)
            data = handle.read((stop - start) * row_bytes)
            pixels = np.frombuffer(data, dtype=stored).astype(self._stored, copy=False)
            shape = (stop - start, self.width) + ((self._samples,) if self._samples > 1 else ())
            return pixels.reshape(shape)
        pixels = self._window.rows(start, stop)
        return pixels[:, :, 0] if self._samples == 1 else pixels

    def close(self) -> None:
        self._file.close()


def open_rows(
    path: str,
    *,
    frame: int = 0,
    gray: str = "luma",
    normalize: str = "dtype",
    color: bool = False,
    max_pixels: int | None = None,
    load_whole: Callable[[], Any] | None = None,
) -> RowReader:
    """A :class:`RowReader` for ``path``: TIFF, Zarr and ``.npy`` by rows, anything else decoded whole by ``load_whole``.

    ``load_whole()`` returns a :class:`~convcli.io.decode.Loaded` (the caller's
    own loader, so URLs, stdin and the pixel limit behave as in memory);
    ``max_pixels`` applies only there: a streamed input is bounded by the
    memory budget and the free space at the destination instead.
    """
    from .zarrs import is_zarr, open_zarr_rows

    if path != "-" and is_zarr(path):
        return open_zarr_rows(path, gray=gray, normalize=normalize, color=color)
    head = b""
    if path != "-" and os.path.isfile(path):
        with open(path, "rb") as stream:
            head = stream.read(8)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        try:
            reader = TiffRows(path, frame=frame, gray=gray, normalize=normalize, color=color)
        except DecodeError:
            reader = None
        except Exception:  # noqa: BLE001 - damaged files: the whole decoder says what is wrong
            reader = None
        if reader is not None:
            pixel_type = reader._stored  # noqa: SLF001
            if pixel_type.kind in "uif" and reader._page.photometric in (1, 2):  # noqa: SLF001 - minisblack, rgb
                return reader
            reader.close()
    if head.startswith(b"\x93NUMPY"):
        from ..limits import check_npy_file

        check_npy_file(path, repr(path), DecodeError)
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.ndim == 2 and np.issubdtype(array.dtype, np.floating) and array.size:
            detail = f"NPY {array.dtype}"
            if array.flags.c_contiguous and isinstance(array, np.memmap):
                # Rows read by offset into a reused buffer: a memory map's pages would stay resident, the
                # whole file counted in the run's memory by the time the last row is read.
                rows = NpyFileRows(path, array.shape, array.dtype, int(array.offset), detail)
                del array
                return rows
            return ArrayRows(array, detail, "array", held=0)
    if head[:4] in (b"\x89PNG", b"GIF8") or head[:3] == b"\xff\xd8\xff" or head[:2] == b"BM" or head[:4] == b"RIFF":
        stored = _stored_pixels(path, frame=frame, gray=gray, color=color, max_pixels=max_pixels)
        if stored is not None:
            pixels, detail = stored
            converted = _Converted(
                lambda start, stop: pixels[start:stop],
                pixels.shape,
                pixels.dtype,
                gray=gray,
                normalize=normalize,
                color=color,
                detail=detail,
            )
            converted.held_bytes = pixels.nbytes
            return converted
    if load_whole is None:
        raise DecodeError(f"{path!r} cannot be read by rows")
    loaded = load_whole()
    array = loaded.array
    check_pixels(array.shape[0], array.shape[1], max_pixels, repr(path))
    return ArrayRows(array, loaded.detail, loaded.kind)


def _stored_pixels(
    path: str, *, frame: int, gray: str, color: bool, max_pixels: int | None
) -> tuple[np.ndarray, str] | None:
    """The stored 8/16-bit pixels of an image Pillow (or pypng) decodes whole, as :func:`convcli.io.decode` gets them.

    Only the pixels are kept (1 or 2 bytes per sample), never a float copy; :class:`_Converted` turns
    them into floats band by band. ``None`` for anything :func:`convcli.io.decode` treats otherwise.
    """
    import warnings

    from .decode_common import sniff
    from .decode_pillow import _decode_pillow
    from .decode_png import _decode_png16_color, _png_header
    from .sources import read_path_bytes

    data = read_path_bytes(path)
    what = repr(path)
    kind = sniff(data)
    if kind in (None, "NPY", "TIFF"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = _png_header(data)
        if header and header[2] == 16 and header[3] in (2, 4, 6):
            check_pixels(header[0], header[1], max_pixels, what)
            pixels, mode = _decode_png16_color(data, what)
            fmt, notes = "PNG", list[str]()
        else:
            luma = gray == "luma" and not color
            pixels, fmt, mode, notes = _decode_pillow(data, what, frame, max_pixels, None, jpeg_luma=luma)
    del data
    if pixels.ndim not in (2, 3) or pixels.size == 0 or (pixels.ndim == 3 and pixels.shape[2] > 4):
        return None
    if pixels.dtype.kind not in "bui":
        return None  # float images: decoded whole, as in memory
    bits = f"{pixels.dtype.itemsize * 8}-bit"
    detail = f"{fmt} {mode} {bits}"
    if notes:
        detail += f", frame {frame}"
    return pixels, detail


def streams_by_rows(path: str) -> bool:
    """Whether ``path`` is a file :func:`open_rows` reads by rows (TIFF, ``.npy``, Zarr) rather than whole."""
    from .zarrpaths import is_zarr

    if is_zarr(path):
        return True
    try:
        with open(path, "rb") as stream:
            head = stream.read(8)
    except OSError:
        return False
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+") or head.startswith(b"\x93NUMPY")
