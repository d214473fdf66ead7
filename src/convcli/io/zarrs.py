"""Zarr stores (the optional ``convcli[zarr]`` extra): a ``.zarr`` directory read and written by chunk rows.

A source is a Zarr array (``scene.zarr``, or an array inside a group, ``scene.zarr/0``): 2-D
``(H, W)`` or 3-D ``(H, W, C)``. Integer arrays are images, converted as a TIFF of the
same samples is (gray by the ``--gray`` weights, ``--color``, divided by the type's range); 2-D
float arrays are raw values, as a ``.npy`` is. Each row of chunks is read once into a
:class:`~convcli.io.strips.BandWindow` (a band of chunk rows and the halo a read carries over).

An output (``-o out.zarr``) is a float array of the run's precision in chunks of ``tile`` x ``tile``
(Zarr's default compression), written into a hidden ``.out.zarr.*.part`` folder beside the
destination, a band of chunk rows at a time, and renamed into place at the end (an existing Zarr
store at the destination is replaced only then). The API used (``open_array``, slices) is common to
zarr 2.18 and zarr 3 (what pip installs on Python 3.11 and later); the tests run zarr 3.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DecodeError, OutputError, SourceError
from .atomic import _signals_held
from .strips import BandWindow, RowReader, _Converted
from .zarrpaths import is_zarr, is_zarr_output  # noqa: F401  (re-exported)

#: Bytes zarr and its codecs add to the interpreter once imported (zarr 3.1, numcodecs 0.16: measured).
ZARR_RUNTIME = 20 << 20
#: Files that mark a folder as a Zarr array or group (v3, then v2).


def _zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise SourceError("Zarr stores need the zarr package; install it with: pip install 'convcli[zarr]'") from None
    return zarr


def _open(path: str) -> Any:
    zarr = _zarr()
    try:
        found = zarr.open(store=path, mode="r")
    except Exception as exc:  # noqa: BLE001 - zarr's errors vary by version and store; one line says which
        raise DecodeError(f"{path!r} cannot be read as a Zarr store: {exc}") from None
    if not hasattr(found, "shape"):  # a group: name the arrays it holds
        names = sorted(name for name, _ in found.arrays())
        inside = ", ".join(f"{path.rstrip('/')}/{name}" for name in names[:5]) or "none"
        raise DecodeError(f"{path!r} is a Zarr group; give one of its arrays ({inside})")
    return found


class ZarrRows(_Converted):
    """An integer Zarr array's rows as floats, each row of chunks decoded once (as :class:`TiffRows`)."""

    def __init__(self, array: Any, path: str, *, gray: str = "luma", normalize: str = "dtype", color: bool = False):
        self._array = array
        shape = tuple(int(n) for n in array.shape)
        stored = np.dtype(array.dtype)
        self._samples = shape[2] if len(shape) == 3 else 1
        band = min(int(array.chunks[0]), shape[0])
        self._window = BandWindow(band, shape[0], shape[1], self._samples, stored, self._decode_band)
        chunks = "x".join(str(int(c)) for c in array.chunks[:2])
        detail = f"Zarr {self._samples}-channel {stored.itemsize * 8}-bit, chunks {chunks}"
        super().__init__(self._stored_rows, shape, stored, gray=gray, normalize=normalize, color=color, detail=detail)
        # One band of chunk rows in the window, zarr's own copy of it while it is decoded.
        self.held_bytes = 2 * band * shape[1] * self._samples * stored.itemsize
        self.runtime_bytes = ZARR_RUNTIME  # zarr's modules: beside the interpreter

    def _decode_band(self, band: int, out: np.ndarray) -> None:
        top = band * self._window.band
        values = np.asarray(self._array[top : top + out.shape[0]])
        out[...] = values.reshape(out.shape)

    def _stored_rows(self, start: int, stop: int) -> np.ndarray:
        pixels = self._window.rows(start, stop)
        return pixels[:, :, 0] if self._samples == 1 else pixels


class ZarrFloatRows(RowReader):
    """A 2-D float Zarr array's rows, raw (as a ``.npy``), each row of chunks decoded once."""

    def __init__(self, array: Any):
        self._array = array
        height, width = (int(n) for n in array.shape)
        self._window = BandWindow(min(int(array.chunks[0]), height), height, width, 1, array.dtype, self._decode_band)
        self.height, self.width, self.channels = height, width, 1
        self.dtype = np.dtype(array.dtype)
        self.kind = "array"
        self.detail = f"Zarr {self.dtype}, chunks {'x'.join(str(int(c)) for c in array.chunks)}"
        self.held_bytes = 2 * self._window.band * width * self.dtype.itemsize
        self.runtime_bytes = ZARR_RUNTIME

    def _decode_band(self, band: int, out: np.ndarray) -> None:
        top = band * self._window.band
        out[:, :, 0] = np.asarray(self._array[top : top + out.shape[0]])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)``: a view the next read may overwrite."""
        return self._window.rows(start, stop)[:, :, 0]


def open_zarr_rows(path: str, *, gray: str = "luma", normalize: str = "dtype", color: bool = False) -> RowReader:
    """A :class:`~convcli.io.strips.RowReader` over the Zarr array at ``path``."""
    array = _open(path)
    dtype = np.dtype(array.dtype)
    shape = tuple(array.shape)
    if len(shape) == 2 and dtype.kind == "f":
        return ZarrFloatRows(array)
    if len(shape) in (2, 3) and dtype.kind in "ui" and (len(shape) == 2 or shape[2] <= 4) and 0 not in shape:
        return ZarrRows(array, path, gray=gray, normalize=normalize, color=color)
    raise DecodeError(
        f"{path!r} is a {'x'.join(map(str, shape))} {dtype} Zarr array; convcli reads 2-D float arrays and 2-D or "
        "(H, W, C) integer images"
    )


class ZarrRowsWriter:
    """Rows in order into a Zarr array in a hidden folder beside the destination; :meth:`commit` renames it."""

    def __init__(self, destination: str, shape: tuple[int, ...], dtype: Any, tile: int = 256):
        zarr = _zarr()
        self.destination = destination
        self.rows_written = 0
        self.dtype = np.dtype(dtype)
        target = Path(destination)
        folder = target.parent if str(target.parent) else Path(".")
        try:
            self._temporary = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise OutputError(f"cannot write {destination!r}: {exc.strerror or exc}") from None
        try:  # an interrupted set-up leaves no hidden folder
            chunks = (tile, tile) + tuple(shape[2:])
            with _signals_held():  # zarr writes its metadata from its own thread too (see _flush)
                self._array = zarr.open_array(
                    self._temporary, mode="w", shape=tuple(shape), chunks=chunks, dtype=self.dtype
                )
            # A band of chunk rows, written when full: zarr compresses whole chunks.
            self._band = np.empty((min(tile, shape[0]),) + tuple(shape[1:]), dtype=self.dtype)
            self._filled = 0
        except BaseException:
            self.abort()
            raise

    def _flush(self) -> None:
        if self._filled:
            top = self.rows_written - self._filled
            # zarr 3 writes chunks from its own event-loop thread: a Ctrl-C that lands while it waits would leave
            # that thread writing into the folder abort() removes; the signal waits for the band instead.
            with _signals_held():
                self._array[top : self.rows_written] = self._band[: self._filled]
            self._filled = 0

    def write(self, rows: np.ndarray) -> None:
        values = np.asarray(rows, dtype=self.dtype)
        done = 0
        while done < values.shape[0]:
            count = min(values.shape[0] - done, self._band.shape[0] - self._filled)
            self._band[self._filled : self._filled + count] = values[done : done + count]
            self._filled += count
            self.rows_written += count
            done += count
            if self._filled == self._band.shape[0]:
                self._flush()

    def commit(self) -> None:
        try:
            with _signals_held():
                self._flush()
                target = Path(self.destination)
                if target.exists() and not is_zarr(str(target)):
                    raise OutputError(f"cannot write {self.destination!r}: it exists and is not a Zarr store")
                if target.exists():  # the old store set aside, the new one renamed in, then the old one removed
                    aside = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
                    os.replace(target, os.path.join(aside, "store"))
                    os.replace(self._temporary, target)
                    shutil.rmtree(aside, ignore_errors=True)
                else:
                    os.replace(self._temporary, target)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write {self.destination!r}: {exc.strerror or exc}") from None
        except OutputError:
            self.abort()
            raise

    def abort(self) -> None:
        shutil.rmtree(self._temporary, ignore_errors=True)
