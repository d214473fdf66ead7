"""Row writers: results written a strip of rows at a time, into a temporary name renamed into place.

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError, OutputUsageError, ParameterError
from .atomic import _signals_held

#: Formats a streamed run writes by rows.
STREAM_FORMATS = ("tiff", "png", "npy", "zarr")


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

    @contextlib.contextmanager
    def _removed_on_failure(self) -> Iterator[None]:
        """A subclass's set-up after the temporary file exists: if it fails or is interrupted, the file goes."""
        try:
            yield
        except BaseException:
            self.abort()
            raise

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
        with self._removed_on_failure():  # an interrupted set-up leaves no temporary file
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
        with self._removed_on_failure():  # an interrupted set-up leaves no temporary file
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


def write_tiff(destination: str, values: np.ndarray) -> None:
    """Write ``values`` (``(H, W)`` or ``(H, W, 3)``, as float32) as the TIFF ``tifffile.imwrite`` gives them, atomically.

    Straight from the array into the temporary file (:class:`TiffRowsWriter`, the same bytes): encoding
    into memory first copied a 12-megapixel result twice (48 MB each) before writing it. FIFOs and
    devices (``-o /dev/null``) take the encoded bytes through :func:`~convcli.io.write_atomic`.
    """
    from .atomic import _special_file

    if _special_file(destination) is not None:
        from .atomic import write_atomic
        from .encode import encode

        write_atomic(destination, encode(values, "tiff")[0])
        return
    from .atomic import _shown

    with _signals_held():  # as write_atomic: an interrupt lands before or after the file, never in between
        try:
            writer = TiffRowsWriter(destination, values.shape)
        except OSError as exc:  # tifffile's own open of the temporary file
            raise OutputError(f"cannot write {_shown(destination)!r}: {exc.strerror or exc}") from None
        try:
            writer.write(values)
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, OSError):  # a full disk, a quota
                raise OutputError(f"cannot write {_shown(destination)!r}: {exc.strerror or exc}") from None
            raise
        writer.commit()


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
        with self._removed_on_failure():  # an interrupted set-up leaves no temporary file
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
        with self._removed_on_failure():  # an interrupted set-up leaves no temporary file
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
    strips (:class:`TiffRowsWriter`, the in-memory layout). A Zarr store (``zarr``,
    :class:`convcli.io.zarrs.ZarrRowsWriter`) in chunks of that side (256 when ``None``).
    """
    check_stream_format(fmt)
    if fmt == "npy":
        return NpyRows(destination, shape, dtype)
    if fmt == "zarr":
        from .zarrs import ZarrRowsWriter

        return ZarrRowsWriter(destination, shape, dtype, check_tile(tile) or TIFF_TILE)  # type: ignore[return-value]
    if fmt == "tiff":
        side = check_tile(tile)
        return TiffRowsWriter(destination, shape) if side is None else TiledTiffRowsWriter(destination, shape, side)
    return PngRows(destination, shape, depth, compression)


def check_stream_format(fmt: str) -> None:
    if fmt not in STREAM_FORMATS:
        raise OutputUsageError(
            f"a streamed run writes {', '.join('.' + f for f in ('tif', 'png', 'npy', 'zarr'))}; {fmt.upper()} needs the "
            "whole image in memory (use --no-stream, or one of those formats)"
        )
