"""Reading sources and writing outputs: paths, URLs, stdin; images and raw arrays.

The only package that imports the image codecs (Pillow, tifffile, pypng).

Sources
-------
A source is classified first (:mod:`.sources`), then decoded by content
(:mod:`.decode`, which hands each format family to its own module):

* ``-``: standard input (image bytes, ``.npy`` bytes or a text matrix);
* ``http://`` / ``https://`` URLs, downloaded by :mod:`.fetch` (timeout, size
  cap, at most 5 redirects and never to another scheme); every other scheme is
  refused;
* anything else is a path. ``.npy``, ``.txt`` and ``.csv`` paths are raw 2-D
  arrays; every other file is decoded by its content, not its name.

Images become float arrays (see :func:`to_gray` and :func:`normalize`):
grayscale by BT.601 luma (default; a colour JPEG's own Y channel) or the
channel mean, alpha dropped, and scaled to [0, 1] by the range of their pixel
type (255 for 8-bit, 65535 for 16-bit; float images are kept as they are).
Raw arrays are used as they are.

Outputs
-------
``.npy``, ``.tif``/``.tiff`` (float32), ``.txt`` and ``.csv`` keep the raw
values. ``.png``, ``.jpg``, ``.bmp``, ``.webp``, ``.gif`` are pixels: floats
are mapped to 8 or 16 bits by :func:`to_pixels` (:mod:`.pixels`), encoded by
:mod:`.encode` (PNG by the project's own writer, :mod:`.png`) and written
atomically by :mod:`.atomic` (a temporary file in the same folder, then a
rename).
"""

from __future__ import annotations

from .atomic import check_output_path, same_file, write_atomic
from .decode import GRAY_METHODS, LUMA_WEIGHTS, NORMALIZE_METHODS, Loaded, decode, normalize, to_gray
from .decode_common import sniff
from .encode import DEFAULT_PNG_COMPRESSION, OUTPUT_FORMATS, encode, output_format
from .fetch import fetch_url
from .load import load_source
from .pixels import SCALE_METHODS, PixelMapping, to_pixels
from .sources import Source, classify_source, read_path_bytes, read_stdin_bytes

__all__ = [
    "DEFAULT_PNG_COMPRESSION",
    "GRAY_METHODS",
    "LUMA_WEIGHTS",
    "NORMALIZE_METHODS",
    "OUTPUT_FORMATS",
    "SCALE_METHODS",
    "Loaded",
    "PixelMapping",
    "Source",
    "check_output_path",
    "classify_source",
    "decode",
    "encode",
    "fetch_url",
    "load_source",
    "normalize",
    "output_format",
    "read_path_bytes",
    "read_stdin_bytes",
    "same_file",
    "sniff",
    "to_gray",
    "to_pixels",
    "write_atomic",
]
