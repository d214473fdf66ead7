"""A small PNG writer: 8- and 16-bit gray, gray + alpha, RGB and RGBA, compressed on several threads.

The file is the minimum the PNG specification asks for: the signature, ``IHDR``,
``IDAT`` chunks and ``IEND`` (no gamma, colour profile or text chunks).

Every row uses filter type 2, *Up*: each byte minus the byte above it, modulo
256 (the first row is kept as it is, the row above it counting as zeros). On
filtered 8-bit photographs at zlib level 1 it gives the smallest file, or one
within 3% of it, among None, Sub, Average, Paeth and Pillow's per-row choice,
for the cost of one NumPy subtraction (measured on 12 filtered outputs of the
bundled photos and a 12-MP photo; the README's PNG paragraph sums it up).

Images of at least twice :data:`PART_BYTES` filtered bytes are compressed in
parts on the engine's threads (zlib releases the GIL): each part is raw deflate data; every part but the last ends with a
``Z_SYNC_FLUSH``, which ends on a byte boundary, so the parts concatenate into
one valid deflate stream. The zlib header and the Adler-32 checksum of the
whole filtered data frame them into the single zlib stream the ``IDAT`` chunks
carry. A part starts without the previous part's window, which costs a few
bytes per part; the output is still one ordinary PNG.
"""

from __future__ import annotations

import os
import struct
import zlib
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import ParameterError

#: PNG colour type per number of channels: gray, gray + alpha, RGB, RGBA.
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
#: Filtered bytes per compressed part: below twice this an image is compressed on one thread.
PART_BYTES = 1 << 20
#: Largest IDAT chunk written.
IDAT_BYTES = 1 << 20

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IDAT_CRC = zlib.crc32(b"IDAT")


def _chunk(kind: bytes, data: bytes | memoryview) -> bytes:
    return struct.pack(">I", len(data)) + kind + bytes(data) + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def filter_up(pixels: np.ndarray) -> np.ndarray:
    """The filtered scanlines of ``pixels``: ``(H, 1 + row bytes)`` uint8, each row filter type 2 (Up).

    Byte ``x`` of row ``r`` becomes ``raw[r, x] - raw[r - 1, x]`` modulo 256
    (row 0 is unchanged: the row above the first counts as zeros); 16-bit
    samples are split into big-endian bytes first, as PNG stores them.

    >>> filter_up(np.array([[1, 2], [4, 3], [0, 0]], dtype=np.uint8)).tolist()
    [[2, 1, 2], [2, 3, 1], [2, 252, 253]]
    """
    height = pixels.shape[0]
    raw = np.ascontiguousarray(pixels, dtype=">u2" if pixels.dtype == np.uint16 else np.uint8)
    rows = raw.view(np.uint8).reshape(height, -1)
    out = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = 2
    out[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG wants
    return out


def _zlib_header(level: int) -> bytes:
    """The two zlib header bytes: deflate, 32 KiB window, the level class, and the check bits."""
    cmf = 0x78
    flevel = 0 if level <= 1 else 1 if level <= 5 else 2 if level == 6 else 3
    flg = flevel << 6
    flg += 31 - (cmf * 256 + flg) % 31
    return bytes((cmf, flg))


#: Bytes per stored deflate block at level 0 (the format's largest).
STORED_BLOCK = 65535


def stored_blocks(data: bytes | bytearray | memoryview, final: bool) -> bytes:
    """Raw deflate of ``data`` at level 0: stored blocks of :data:`STORED_BLOCK` bytes (the last one shorter).

    Written here rather than by zlib, whose stored blocks follow the sizes of its input calls, so that
    a PNG written row by row (:class:`PngRowWriter`) is byte for byte the one written whole. ``final``
    marks the last block as the end of the stream.
    """
    view = memoryview(data)
    out = bytearray()
    for start in range(0, max(1, len(view)), STORED_BLOCK):
        block = view[start : start + STORED_BLOCK]
        last = final and start + STORED_BLOCK >= len(view)
        out += struct.pack("<BHH", 1 if last else 0, len(block), 0xFFFF ^ len(block))
        out += block
    return bytes(out)


#: Bytes per call to the compressor, counted from each part's start, in both writers.
FEED_BYTES = 1 << 18

#: ``CONVCLI_DEFLATE=zlib`` keeps the standard library's zlib even when ISA-L is installed (the docs do).
DEFLATE_ENV = "CONVCLI_DEFLATE"


def fast_deflate() -> Any:
    """ISA-L's zlib-compatible module (``pip install isal``, part of ``convcli[fast]``), or None.

    None when it is not installed or ``CONVCLI_DEFLATE=zlib``. At level 1 it
    deflates a filtered 12-megapixel photo about 4x faster than zlib's level 1,
    into a slightly smaller stream (3.97 vs 4.17 MB); the result is standard
    deflate, decoded by any PNG reader to the same pixels.
    """
    if os.environ.get(DEFLATE_ENV, "").lower() == "zlib":
        return None
    return _isal()


@lru_cache(maxsize=1)
def _isal() -> Any:
    try:
        from isal import isal_zlib
    except ImportError:
        return None
    return isal_zlib


def raw_compressor(level: int) -> Any:
    """A raw-deflate (``wbits=-15``) compressor for ``level`` 1-9: ISA-L's level 1 for level 1 when installed, else zlib's.

    Only level 1 goes to ISA-L: its own levels top out at 3, larger than zlib's 6 and up.
    """
    fast = fast_deflate() if level == 1 else None
    if fast is not None:
        return fast.compressobj(1, fast.DEFLATED, -15)
    return zlib.compressobj(level, zlib.DEFLATED, -15)


def compress_parts(data: np.ndarray, level: int, parts: int) -> bytes:
    """One zlib stream of the bytes ``data`` (1-D uint8), deflated in ``parts`` pieces on threads.

    ``zlib.decompress`` of the result gives ``data`` back for any ``parts``.
    """
    view = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1).data
    size = len(view)
    parts = max(1, min(parts, size))
    cuts = [size * index // parts for index in range(parts + 1)]
    pieces: list[bytes] = [b""] * parts
    checksum = [1]

    def deflate(index: int) -> None:
        if index == parts:
            checksum[0] = zlib.adler32(view)
            return
        if level == 0:
            pieces[index] = stored_blocks(view[cuts[index] : cuts[index + 1]], index == parts - 1)
            return
        compressor = raw_compressor(level)
        start, stop = cuts[index], cuts[index + 1]
        # Fed in FEED_BYTES pieces from the part's start, as the row writer feeds it: ISA-L's output depends on
        # how its input is cut, so both writers cut it alike and give the same bytes.
        body = b"".join(
            compressor.compress(view[at : min(stop, at + FEED_BYTES)]) for at in range(start, stop, FEED_BYTES)
        )
        pieces[index] = body + compressor.flush(zlib.Z_FINISH if index == parts - 1 else zlib.Z_SYNC_FLUSH)

    tasks = [(index,) for index in range(parts + 1)]
    if parts > 1:
        from ..parallel import run_parallel

        run_parallel(tasks, deflate)
    else:
        for task in tasks:
            deflate(*task)
    return _zlib_header(level) + b"".join(pieces) + struct.pack(">I", checksum[0])


def default_parts(size: int) -> int:
    """How many parts to compress ``size`` filtered bytes in: one per :data:`PART_BYTES`, at most one per thread."""
    from ..parallel import workers

    return max(1, min(workers(), size // PART_BYTES))


def png_bytes(pixels: np.ndarray, *, compression: int = 1, parts: int | None = None) -> bytes:
    """A PNG file holding ``pixels`` exactly.

    Parameters
    ----------
    pixels : ndarray of uint8 or uint16
        ``(H, W)`` gray, or ``(H, W, C)`` with C = 1 (gray), 2 (gray +
        alpha), 3 (RGB) or 4 (RGBA); the dtype sets the bit depth (8 or 16).
    compression : int
        zlib level, 0 (stored, no compression) to 9 (smallest, slowest).
    parts : int, optional
        Pieces compressed on separate threads; default :func:`default_parts`.

    Returns
    -------
    bytes
        Signature, IHDR, IDAT chunks of at most :data:`IDAT_BYTES`, IEND.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ParameterError(f"PNG pixels must be uint8 or uint16, not {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3 or pixels.shape[2] not in COLOR_TYPES or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ParameterError(f"PNG pixels must be (H, W) or (H, W, 1-4) with H, W >= 1, not {pixels.shape}")
    if not 0 <= compression <= 9:
        raise ParameterError(f"PNG compression {compression} is not a zlib level; use 0 (none) to 9 (smallest)")
    height, width, channels = pixels.shape
    depth = pixels.dtype.itemsize * 8
    filtered = filter_up(pixels).reshape(-1)
    stream = compress_parts(filtered, compression, default_parts(len(filtered)) if parts is None else parts)
    header = struct.pack(">IIBBBBB", width, height, depth, COLOR_TYPES[channels], 0, 0, 0)
    view = memoryview(stream)
    chunks = [_chunk(b"IHDR", header)]
    chunks += [_chunk(b"IDAT", view[start : start + IDAT_BYTES]) for start in range(0, len(stream), IDAT_BYTES)]
    chunks.append(_chunk(b"IEND", b""))
    return _SIGNATURE + b"".join(chunks)


class PngRowWriter:
    """:func:`png_bytes` by rows: the same bytes, written through ``write`` as the rows come.

    The filtered data is cut into the same :func:`default_parts` as the whole
    image would be (their sizes are known from the shape), each part deflated
    by its own compressor, so the file is byte for byte the in-memory one.
    Memory: one part's pending compressed output (IDAT chunks leave as soon as
    they fill) and the last row (for the Up filter).
    """

    def __init__(self, write, shape: tuple[int, ...], dtype, *, compression: int = 1, parts: int | None = None):  # type: ignore[no-untyped-def]
        dtype = np.dtype(dtype)
        if dtype not in (np.uint8, np.uint16):
            raise ParameterError(f"PNG pixels must be uint8 or uint16, not {dtype}")
        height, width = shape[0], shape[1]
        channels = shape[2] if len(shape) == 3 else 1
        if channels not in COLOR_TYPES or height < 1 or width < 1:
            raise ParameterError(f"PNG pixels must be (H, W) or (H, W, 1-4) with H, W >= 1, not {tuple(shape)}")
        if not 0 <= compression <= 9:
            raise ParameterError(f"PNG compression {compression} is not a zlib level; use 0 (none) to 9 (smallest)")
        self._write = write
        self._level = compression
        self._height = height
        size = height * (1 + width * channels * dtype.itemsize)
        count = default_parts(size) if parts is None else parts
        count = max(1, min(count, size))
        self._cuts = [size * index // count for index in range(count + 1)]
        self._part = 0
        self._position = 0
        self._compressor = raw_compressor(compression)
        self._stored = bytearray()
        self._carry = bytearray()  # input not yet handed to the compressor: less than FEED_BYTES
        self._adler = 1
        self._previous: np.ndarray | None = None
        self._pending = bytearray(_zlib_header(compression))
        self._rows = 0
        header = struct.pack(">IIBBBBB", width, height, dtype.itemsize * 8, COLOR_TYPES[channels], 0, 0, 0)
        write(_SIGNATURE + _chunk(b"IHDR", header))

    def _idat(self, data: memoryview) -> None:
        """One IDAT chunk, written in three pieces (one copy of the data, none joined)."""
        self._write(struct.pack(">I", len(data)) + b"IDAT")
        self._write(bytes(data))
        self._write(struct.pack(">I", zlib.crc32(data, _IDAT_CRC)))

    def _emit(self, final: bool = False) -> None:
        while len(self._pending) >= IDAT_BYTES:
            with memoryview(self._pending) as view:
                self._idat(view[:IDAT_BYTES])
            del self._pending[:IDAT_BYTES]
        if final and self._pending:
            with memoryview(self._pending) as view:
                self._idat(view)
            self._pending = bytearray()

    def _feed(self, data: memoryview) -> None:
        self._adler = zlib.adler32(data, self._adler)
        while len(data):
            end = self._cuts[self._part + 1]
            take = min(len(data), end - self._position)
            if self._level == 0:  # stored blocks from the part's start, as stored_blocks cuts them
                self._stored += data[:take]
                while len(self._stored) > STORED_BLOCK:
                    self._pending += stored_blocks(memoryview(self._stored)[:STORED_BLOCK], False)
                    del self._stored[:STORED_BLOCK]
            else:
                self._carry += data[:take]
                while len(self._carry) >= FEED_BYTES:
                    self._pending += self._compressor.compress(memoryview(self._carry)[:FEED_BYTES])
                    del self._carry[:FEED_BYTES]
            self._position += take
            data = data[take:]
            if self._position == end:
                last = self._part == len(self._cuts) - 2
                if self._level == 0:
                    self._pending += stored_blocks(self._stored, last)
                    self._stored = bytearray()
                else:
                    if self._carry:
                        self._pending += self._compressor.compress(bytes(self._carry))
                        self._carry = bytearray()
                    self._pending += self._compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
                if not last:
                    self._part += 1
                    self._compressor = raw_compressor(self._level)
            self._emit()

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows`` (``(n, W)`` or ``(n, W, C)`` of the writer's dtype)."""
        rows = np.asarray(rows)
        if rows.ndim == 2:
            rows = rows[:, :, np.newaxis]
        raw = np.ascontiguousarray(rows, dtype=">u2" if rows.dtype == np.uint16 else np.uint8)
        flat = raw.view(np.uint8).reshape(raw.shape[0], -1)
        filtered = np.empty((flat.shape[0], flat.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = 2
        if self._previous is None:
            filtered[0, 1:] = flat[0]
        else:
            np.subtract(flat[0], self._previous, out=filtered[0, 1:])
        np.subtract(flat[1:], flat[:-1], out=filtered[1:, 1:])
        self._previous = flat[-1].copy()
        self._rows += flat.shape[0]
        self._feed(filtered.reshape(-1).data)

    def close(self) -> None:
        """Finish the stream: the Adler-32 checksum, the last IDAT chunk and IEND."""
        if self._rows != self._height:
            raise ParameterError(f"PNG writer got {self._rows} rows of {self._height}")
        self._pending += struct.pack(">I", self._adler)
        self._emit(final=True)
        self._write(_chunk(b"IEND", b""))
