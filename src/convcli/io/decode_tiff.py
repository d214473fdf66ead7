"""Decoding TIFF with tifffile: one page, exact 16-bit and float samples, upright by its Orientation tag.

Min-is-white, palette and 8-bit CMYK pages become gray or RGB as Pillow
would show them; Deflate and LZMA strips or tiles that inflate past the size
their header gives them are refused before tifffile inflates them whole.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..errors import ConvcliError, DecodeError
from ..limits import SizeCheck, check_pixels, format_bytes
from .decode_common import ORIENTATIONS, _check_size, _frame_note, _orient
from .sources import one_line


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
