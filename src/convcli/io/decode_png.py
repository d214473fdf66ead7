"""PNG specifics of decoding: the IHDR header, the check against zlib bombs, and 16-bit colour through pypng.

Pillow reads every other PNG (:mod:`convcli.io.decode_pillow`); it reduces
16-bit colour to 8 bits, so those files are read by pypng, after
:func:`_check_png_data` has made sure the image data does not inflate past
what the header's size needs.
"""

from __future__ import annotations

import numpy as np

from ..errors import DecodeError
from .sources import one_line


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
