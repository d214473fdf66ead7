"""What the image decoders of every format family share: the format from the first bytes, orientation, frames.

:func:`sniff` names a format from its signature; :func:`_orient` turns stored
pixels upright by an EXIF orientation (or a TIFF Orientation tag), as viewers
show them; the size check and the note for a file of many frames are worded
the same for every format.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DecodeError

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


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


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


def _frame_note(what: str, frames: int, frame: int, unit: str = "frame") -> str:
    return f"note: {what} has {frames} {unit}s; using {unit} {frame} (choose another with --frame N, from 0)"


def _check_size(height: int, width: int, what: str) -> None:
    """Refuse an image or array without pixels, from its header (every bad file exits 1, this one too)."""
    if height <= 0 or width <= 0:
        raise DecodeError(f"{what} is {height}x{width}: it holds no pixels; give a non-empty image or array")


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
