"""Decoding with Pillow: PNG, JPEG (its luma plane directly), GIF, BMP, WebP and the other formats Pillow reads.

Palette, CMYK and other modes become gray or RGB(A) pixels, upright by the
EXIF orientation; Pillow's own errors (damage, truncation, metadata bombs)
become one-line :class:`~convcli.errors.DecodeError` messages.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np

from ..errors import ConvcliError, DecodeError
from ..limits import SizeCheck, check_pixels, format_bytes
from .decode_common import ORIENTATIONS, _check_size, _exif_orientation, _frame_note, _orient, sniff
from .sources import one_line

_BYTES_PER_BAND = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}


def _text_chunk_limit(times: int = 1) -> str:
    """Pillow's limit on one decompressed PNG text chunk (its total text limit is 64 times that)."""
    from PIL import PngImagePlugin

    return format_bytes(times * PngImagePlugin.MAX_TEXT_CHUNK)


def _open_image(data: bytes) -> Any:
    """Pillow's ``Image.open`` of ``data``, a PNG or a JPEG opened by its own Pillow plugin alone.

    Without a file name ``Image.open`` first imports Pillow's common plugins (BMP, GIF, JPEG, PPM,
    PNG), more start-up than the rest of a small job's decoding (issue 19); a file with the PNG or
    the JPEG signature needs only that plugin, as ``Image.open`` would pick (for a JPEG its factory,
    which also tells an MPO). A file the plugin cannot identify goes through ``Image.open``, whose
    error is reported as before.
    """
    from PIL import Image

    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            from PIL import PngImagePlugin

            return PngImagePlugin.PngImageFile(io.BytesIO(data), "")
        if data.startswith(b"\xff\xd8\xff"):  # JpegImagePlugin's own test
            from PIL import JpegImagePlugin

            return JpegImagePlugin.jpeg_factory(io.BytesIO(data), "")
    except (SyntaxError, IndexError, TypeError, struct.error):  # what Image.open passes on to other plugins
        pass
    return Image.open(io.BytesIO(data))


def _decode_pillow(
    data: bytes,
    what: str,
    frame: int,
    max_pixels: int | None,
    on_size: SizeCheck | None,
    jpeg_luma: bool = False,
    orient: bool = True,
) -> tuple[np.ndarray, str, str, list[str]]:
    """Decode with Pillow; ``jpeg_luma`` returns a colour JPEG's Y (luma) channel as 2-D pixels (see :func:`~convcli.io.decode.to_gray`).

    ``orient`` turns the pixels upright by the file's EXIF orientation (JPEG, PNG, WebP), as viewers show them.
    """
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb check raises with a long message; convcli checks the header itself (check_pixels).
    Image.MAX_IMAGE_PIXELS = None
    notes = []
    try:
        image: Image.Image = _open_image(data)
        fmt = image.format or "image"
        width, height = image.size
        check_pixels(height, width, max_pixels, what)
        _check_size(height, width, what)
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
        orientation = _exif_orientation(image) if orient else 1
        if on_size is not None:
            rows, cols = (width, height) if orientation >= 5 else (height, width)
            on_size(rows, cols, bands, 2 * bands * _BYTES_PER_BAND.get(mode, 1))
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
        pixels = _orient(np.asarray(image), orientation)
        if orientation in ORIENTATIONS:
            mode += f"|{ORIENTATIONS[orientation]} by its EXIF orientation"
        elif not orient and _exif_orientation(image) in ORIENTATIONS:
            mode += f"|stored pixels, EXIF orientation {_exif_orientation(image)} not applied"
        return pixels, fmt, mode, notes
    except ConvcliError:
        raise
    except ValueError as exc:
        if "MAX_TEXT_MEMORY" in str(exc):
            raise DecodeError(
                f"{what} holds more PNG text metadata (tEXt, zTXt, iTXt chunks) than the {_text_chunk_limit(64)} "
                "Pillow reads; refused; strip its metadata (optipng -strip all) if you trust the file"
            ) from None
        if "MAX_TEXT_CHUNK" in str(exc):
            raise DecodeError(
                f"{what} holds compressed PNG metadata (a zTXt, iTXt or iCCP chunk) that expands past "
                f"{_text_chunk_limit()} (a zlib bomb?); refused; strip its metadata (optipng -strip all) if you "
                "trust the file"
            ) from None
        raise DecodeError(
            f"{what} is a damaged or truncated image ({one_line(exc)}); get a complete copy of the file"
        ) from None
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
        EOFError,
        IndexError,
        struct.error,
        TypeError,
        KeyError,
        ZeroDivisionError,
    ) as exc:
        raise DecodeError(
            f"{what} is a damaged or truncated image ({one_line(exc)}); get a complete copy of the file"
        ) from None
