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
* PNG, JPEG, WebP, GIF, BMP files: decoded whole by the same decoders as
  :func:`convcli.io.decode`, keeping only the stored 8/16-bit samples;
* anything else (stdin, URLs, text, float images): decoded whole by the
  caller's loader, then handed out by rows.

Image readers convert into a float buffer they reuse: a read's rows are
valid until the next read.

Writers take float rows (or, for pixel formats, the rows after the
:func:`~convcli.io.pixels.to_pixels` mapping) in order and write a temporary
file beside the destination, renamed into place by :meth:`RowWriter.commit`
(SIGINT and SIGTERM held for the rename, as :func:`~convcli.io.write_atomic`):

* TIFF: float32, uncompressed, in square tiles written in place
  (:class:`TiledTiffRowsWriter`, :data:`TIFF_TILE` a side, BigTIFF above
  4 GiB), or in the layout ``tifffile.imwrite`` gives the whole array (strips:
  byte for byte the in-memory file);
* PNG: the project's writer, row by row (:class:`convcli.io.png.PngRowWriter`),
  byte for byte the file :func:`~convcli.io.png.png_bytes` writes;
* ``.npy``: the header, then the rows (byte for byte ``numpy.save``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DecodeError, OutputError, OutputUsageError, ParameterError
from ..limits import check_pixels
from .atomic import _signals_held
from .decode import LUMA_WEIGHTS, _pixel_range, normalize, to_gray

#: Formats a streamed run writes by rows.
STREAM_FORMATS = ("tiff", "png", "npy")


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
            np.matmul(rgb, np.asarray(LUMA_WEIGHTS, dtype=np.float32), out=out)
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
            contiguous: Any = page.is_contiguous if int(page.compression) == 1 else None
            self._contiguous = (contiguous[0], self._stored.newbyteorder(self._file.byteorder)) if contiguous else None
        except Exception:
            self._file.close()
            raise
        # One window of decoded rows: the rows a read carries over from the band before, then whole bands.
        self._window = np.empty((self._band, shape[1], self._samples), dtype=self._stored)
        self._first = 0  # the image row of the window's first row
        self._held = 0  # rows the window holds (it ends at a band's end, or at the image's)
        bits = f"{self._stored.itemsize * 8}-bit" if self._stored.kind in "ui" else str(self._stored)
        layout = f"tiled {page.tilelength}x{page.tilewidth}" if page.is_tiled else f"striped {self._band} rows"
        detail = f"TIFF {shape[0]}x{shape[1]} {self._samples}-channel {bits}, {layout}"
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
        first, held = self._first, self._held
        if not (first <= start and stop <= first + held):
            if first <= start < first + held:
                # Reading on: keep the rows from ``start`` (the halo of this read), drop the ones above.
                keep = first + held - start
                self._window[:keep] = self._window[start - first : held]
                first, held = start, keep
            else:  # a jump (the first read, or a circular border reading the other end): start at start's band
                first, held = start // self._band * self._band, 0
            while first + held < stop:
                band = (first + held) // self._band
                rows = min(self._band, self.height - band * self._band)
                if held + rows > self._window.shape[0]:  # grown once, to the tallest read plus a band
                    grown = np.empty((held + rows,) + self._window.shape[1:], dtype=self._stored)
                    grown[:held] = self._window[:held]
                    self._window = grown
                self._decode_band(band, self._window[held : held + rows])
                held += rows
            self._first, self._held = first, held
        pixels = self._window[start - first : stop - first]
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
    """A :class:`RowReader` for ``path``: TIFF and ``.npy`` by rows, anything else decoded whole by ``load_whole``.

    ``load_whole()`` returns a :class:`~convcli.io.decode.Loaded` (the caller's
    own loader, so URLs, stdin and the pixel limit behave as in memory);
    ``max_pixels`` applies only there: a streamed input is bounded by the
    memory budget and the free space at the destination instead.
    """
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
            return ArrayRows(array, f"NPY {array.shape[0]}x{array.shape[1]} {array.dtype}", "array", held=0)
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

    from .decode import _decode_pillow, _decode_png16_color, _png_header, sniff
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
    detail = f"{fmt} {pixels.shape[0]}x{pixels.shape[1]} {mode} {bits}"
    if notes:
        detail += f", frame {frame}"
    return pixels, detail


# ---------------------------------------------------------------------------
# Writers


@dataclass
class _Temporary:
    path: Path
    temporary: str
    handle: Any


def _open_temporary(destination: str) -> _Temporary:
    path = Path(destination)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {destination!r}: {exc.strerror or exc}") from None
    return _Temporary(path, temporary, os.fdopen(fd, "wb"))


class RowWriter:
    """Rows in order into a temporary file; :meth:`commit` renames it into place, :meth:`abort` removes it."""

    def __init__(self, destination: str):
        self._target = _open_temporary(destination)
        self.destination = destination
        self.rows_written = 0

    def write(self, rows: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Write what follows the last row (trailers, the TIFF's last segments)."""

    def commit(self) -> None:
        target = self._target
        try:
            with _signals_held():
                self._finish()
                target.handle.close()
                if target.path.exists():
                    os.chmod(target.temporary, target.path.stat().st_mode & 0o777)
                else:
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(target.temporary, 0o666 & ~umask)
                os.replace(target.temporary, target.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write {self.destination!r}: {exc.strerror or exc}") from None

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._target.handle.close()
        if os.path.exists(self._target.temporary):
            os.unlink(self._target.temporary)


class NpyRows(RowWriter):
    """A ``.npy`` file written by rows: the header ``numpy.save`` writes, then the C-order values."""

    def __init__(self, destination: str, shape: tuple[int, ...], dtype: Any):
        super().__init__(destination)
        from numpy.lib import format as npy_format

        self.dtype = np.dtype(dtype)
        header = {"descr": npy_format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": tuple(shape)}
        try:  # numpy.save's choice: version 1.0 unless the header does not fit its 2-byte length
            npy_format.write_array_header_1_0(self._target.handle, header)
        except ValueError:
            npy_format.write_array_header_2_0(self._target.handle, header)

    def write(self, rows: np.ndarray) -> None:
        self._target.handle.write(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self.rows_written += rows.shape[0]


#: tifffile's own switch to BigTIFF in ``imwrite`` (the in-memory writer), so both paths write the same file.
_BIGTIFF_BYTES = 2**32 - 2**25


class TiffRowsWriter(RowWriter):
    """A float32 TIFF whose tags tifffile writes first, then the rows at the data offset it reserved.

    The layout is the one ``tifffile.imwrite`` gives the whole array (uncompressed, contiguous,
    BigTIFF above 4 GiB), so the file is byte for byte the in-memory one; tifffile's own readers,
    and :class:`TiffRows`, read it back by rows.
    """

    def __init__(self, destination: str, shape: tuple[int, ...]):
        super().__init__(destination)
        import tifffile

        self.dtype = np.dtype(np.float32)
        size = int(np.prod(shape)) * 4
        self._target.handle.close()
        with tifffile.TiffWriter(self._target.temporary, bigtiff=size > _BIGTIFF_BYTES) as writer:
            written: Any = writer.write(
                shape=tuple(shape),
                dtype=self.dtype,
                photometric="rgb" if len(shape) == 3 else "minisblack",
                returnoffset=True,
            )
            offset = written[0]
        handle = open(self._target.temporary, "r+b")  # noqa: SIM115 - closed by commit or abort
        self._target.handle = handle
        self._end = handle.seek(0, os.SEEK_END)
        handle.seek(offset)

    def write(self, rows: np.ndarray) -> None:
        self._target.handle.write(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self.rows_written += rows.shape[0]

    def _finish(self) -> None:
        self._target.handle.seek(self._end)


#: The tile side of a streamed TIFF output (``--tile``): 256 x 256 float32 samples, 256 KiB a tile.
TIFF_TILE = 256


def check_tile(tile: int | None) -> int | None:
    """``tile`` (pixels a side) for a tiled TIFF, ``None`` for strips (``0`` too); a ParameterError otherwise."""
    if tile is None or tile == 0:
        return None
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 16 or tile % 16:
        raise ParameterError(
            f"tile {tile!r} is not a positive multiple of 16 (TIFF tiles); use 256 or 512, or 0 for strips"
        )
    return tile


class TiledTiffRowsWriter(RowWriter):
    """A float32 TIFF in square uncompressed tiles, written in place as the rows come (BigTIFF above 4 GiB).

    tifffile writes the tags and reserves the tiles (the file is sparse until written); each strip
    of rows then goes into the tiles under it, one write per tile column, so nothing beyond the
    strip is held, whatever the width. The edge tiles are padded with zeros, as tifffile pads them.
    """

    def __init__(self, destination: str, shape: tuple[int, ...], tile: int = TIFF_TILE):
        super().__init__(destination)
        import tifffile

        self.dtype = np.dtype(np.float32)
        self.tile = tile
        self._samples = shape[2] if len(shape) == 3 else 1
        self._height, self._width = shape[0], shape[1]
        self._across = -(-shape[1] // tile)
        self._tile_bytes = tile * tile * self._samples * 4
        size = -(-shape[0] // tile) * self._across * self._tile_bytes
        self._target.handle.close()
        with tifffile.TiffWriter(self._target.temporary, bigtiff=size > _BIGTIFF_BYTES) as writer:
            writer.write(
                shape=tuple(shape),
                dtype=self.dtype,
                photometric="rgb" if len(shape) == 3 else "minisblack",
                tile=(tile, tile),
            )
        with tifffile.TiffFile(self._target.temporary) as written:
            self._offsets = np.asarray(written.pages[0].dataoffsets, dtype=np.int64)  # type: ignore[union-attr]
        self._target.handle = open(self._target.temporary, "r+b", buffering=0)  # noqa: SIM115 - commit or abort
        self._row = np.zeros((tile, tile, self._samples), dtype=self.dtype)  # one tile's worth, padded at the edge

    def write(self, rows: np.ndarray) -> None:
        values = np.asarray(rows, dtype=self.dtype).reshape(rows.shape[0], self._width, self._samples)
        tile, fd = self.tile, self._target.handle.fileno()
        done = 0
        while done < values.shape[0]:
            top = self.rows_written + done
            band, within = divmod(top, tile)
            count = min(values.shape[0] - done, tile - within)
            part = self._row[:count]
            for column in range(self._across):
                left = column * tile
                right = min(self._width, left + tile)
                part[:, : right - left] = values[done : done + count, left:right]
                if right - left < tile:
                    part[:, right - left :] = 0
                offset = int(self._offsets[band * self._across + column]) + within * tile * self._samples * 4
                os.pwrite(fd, part.data, offset)
            done += count
        self.rows_written += values.shape[0]


class PngRows(RowWriter):
    """A PNG written by rows (:class:`convcli.io.png.PngRowWriter`): the bytes :func:`png_bytes` writes."""

    def __init__(self, destination: str, shape: tuple[int, ...], depth: int, compression: int):
        super().__init__(destination)
        from .png import PngRowWriter

        self.dtype = np.dtype(np.uint8 if depth == 8 else np.uint16)
        self._png = PngRowWriter(self._target.handle.write, shape, self.dtype, compression=compression)

    def write(self, rows: np.ndarray) -> None:
        self._png.write(np.asarray(rows, dtype=self.dtype))
        self.rows_written += rows.shape[0]

    def _finish(self) -> None:
        self._png.close()


def row_writer(
    destination: str,
    fmt: str,
    shape: tuple[int, ...],
    *,
    depth: int = 8,
    compression: int = 1,
    dtype: Any = np.float32,
    tile: int | None = None,
) -> RowWriter:
    """The :class:`RowWriter` of ``fmt`` (``tiff``, ``png`` or ``npy``) for a result of ``shape``.

    ``tile``: a TIFF in square tiles of that side (:class:`TiledTiffRowsWriter`); ``None`` or 0, in
    strips (:class:`TiffRowsWriter`, the in-memory layout).
    """
    check_stream_format(fmt)
    if fmt == "npy":
        return NpyRows(destination, shape, dtype)
    if fmt == "tiff":
        side = check_tile(tile)
        return TiffRowsWriter(destination, shape) if side is None else TiledTiffRowsWriter(destination, shape, side)
    return PngRows(destination, shape, depth, compression)


def check_stream_format(fmt: str) -> None:
    if fmt not in STREAM_FORMATS:
        raise OutputUsageError(
            f"a streamed run writes {', '.join('.' + f for f in ('tif', 'png', 'npy'))}; {fmt.upper()} needs the "
            "whole image in memory (use --no-stream, or one of those formats)"
        )


def streams_by_rows(path: str) -> bool:
    """Whether ``path`` is a file :func:`open_rows` reads by rows (TIFF, ``.npy``) rather than whole."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(8)
    except OSError:
        return False
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+") or head.startswith(b"\x93NUMPY")
