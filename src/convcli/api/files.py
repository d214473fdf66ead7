"""Files in and out: :func:`load` a source as a float array, :func:`save` an array atomically.

The command line reads and writes through the same functions
(:func:`load_settings`, :func:`save_settings`), so a source loads to the
same array and a result saves to the same bytes either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OutputUsageError, ParameterError
from ..io import Loaded, PixelMapping, Source, decode, encode, load_source, output_format, write_atomic
from ..io.sources import input_byte_limit, read_limited
from ..limits import DEFAULT_MAX_DOWNLOAD, DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT
from .settings import ReadSettings, WriteSettings


def load_settings(source: str, read: ReadSettings, *, stdin: Any = None, on_size: Any = None) -> Loaded:
    """Load one source (path, URL or ``-`` from ``stdin``) with ``read``; returns the :class:`~convcli.io.Loaded` record."""
    return load_source(
        source,
        gray=read.gray,
        normalize_method=read.normalize,
        color=read.color,
        frame=read.frame,
        stdin=stdin,
        timeout=read.timeout,
        max_download=read.max_download,
        max_pixels=read.max_pixels,
        on_size=on_size,
        orient=read.orient,
    )


def _decode_bytes(data: bytes, label: str, read: ReadSettings) -> Loaded:
    return decode(
        data,
        Source(label, "bytes"),
        gray=read.gray,
        normalize_method=read.normalize,
        color=read.color,
        frame=read.frame,
        max_pixels=read.max_pixels,
        orient=read.orient,
    )


def load(
    source: Any,
    *,
    gray: str = "luma",
    normalize: str = "dtype",
    color: bool = False,
    frame: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_download: int = DEFAULT_MAX_DOWNLOAD,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    orient: bool = True,
) -> np.ndarray:
    """Read an image or a number grid as a float array, exactly as the command line reads a SOURCE.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        A path, an ``http(s)://`` URL, ``"-"`` for standard input, the bytes of
        an image or array file, or an open binary file (read to its end).
        Decoded by content (PNG, JPEG, BMP, GIF, TIFF, WebP, ``.npy``), a text
        grid (``.txt``/``.csv``: rows on lines, values by spaces or commas).
    gray : {'luma', 'mean'}
        Colour to gray: ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``, as
        Pillow's ``L``; a colour JPEG's own Y channel) or the channel mean.
        Alpha is dropped.
    normalize : {'dtype', 'max', 'none'}
        Image pixels divided by their type's white (255, 65535: values in
        [0, 1]), by the image's own maximum, or kept raw. Raw arrays
        (``.npy``, text) are never scaled.
    color : bool
        Keep the colour channels: an ``(H, W, 3)`` array.
    frame : int, optional
        Frame of an animated GIF or page of a multi-page TIFF (default the first).
    timeout : float
        Seconds a URL may take.
    max_download : int
        Bytes accepted from a URL.
    max_pixels : int or None
        Refuse larger images and arrays, from the header before decoding
        (``None``: no limit).
    orient : bool
        Turn photos upright by their EXIF orientation (TIFF: its Orientation
        tag), as image viewers show them; ``False`` keeps the pixels as
        stored (a phone photo taken upright may then lie on its side).

    Returns
    -------
    ndarray
        Images: float32, ``(H, W)`` or ``(H, W, 3)``. Raw arrays keep their
        float type (text grids are float64), as the command line computes them.

    Raises
    ------
    SourceError, DecodeError, LimitError
        The source cannot be read, is not an image or array, or is too large;
        one-line messages as the command line prints them.

    Examples
    --------
    >>> load(b"0 1 2\\n3 4 5\\n")
    array([[0., 1., 2.],
           [3., 4., 5.]])
    >>> load("samples/camera.png").shape  # doctest: +SKIP
    (512, 512)
    """
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
        raise ParameterError(f"frame {frame!r} must be a whole number from 0")
    read = ReadSettings(
        gray=gray,
        normalize=normalize,
        color=bool(color),
        frame=frame or 0,
        timeout=timeout,
        max_download=max_download,
        max_pixels=max_pixels,
        orient=bool(orient),
    )
    if gray not in ("luma", "mean"):
        raise ParameterError(f"gray {gray!r} is not one of luma, mean")
    if normalize not in ("dtype", "max", "none"):
        raise ParameterError(f"normalize {normalize!r} is not one of dtype, max, none")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(source), "the bytes given", read).array
    if hasattr(source, "read"):
        data = read_limited(source, input_byte_limit(), "the file object")
        name = getattr(source, "name", None)
        return _decode_bytes(data, f"file {name!r}" if isinstance(name, str) else "the file object", read).array
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise ParameterError(f"source {source!r} is not a path, a URL, bytes or a binary file object")
    import sys

    return load_settings(source, read, stdin=getattr(sys.stdin, "buffer", None)).array


@dataclass(frozen=True)
class Saved:
    """What :func:`save` wrote: the path, the format, and how floats became pixels (``None`` for raw formats)."""

    path: str
    format: str
    mapping: PixelMapping | None


def save_settings(array: np.ndarray, destination: str, write: WriteSettings) -> tuple[bytes, str, PixelMapping | None]:
    """Encode ``array`` for ``destination`` (or ``write.format``); returns the bytes, the format and the mapping."""
    fmt = output_format(destination, write.format)
    data, mapping = encode(
        array,
        fmt,
        scale=write.scale,
        vmin=write.vmin,
        vmax=write.vmax,
        depth=write.depth,
        compression=write.compression,
    )
    return data, fmt, mapping


def save_file(array: np.ndarray, destination: str, write: WriteSettings) -> tuple[str, PixelMapping | None]:
    """Encode ``array`` for the file ``destination`` and write it atomically; returns the format and the mapping.

    A TIFF goes from the array straight into the file (:func:`convcli.io.rowwriters.write_tiff`, the bytes
    :func:`save_settings` would give); every other format is encoded in memory, then written.
    """
    fmt = output_format(destination, write.format)
    if fmt == "tiff":
        from ..io.rowwriters import write_tiff

        write_tiff(destination, np.asarray(array))
        return fmt, None
    data, fmt, mapping = save_settings(array, destination, write)
    write_atomic(destination, data)
    return fmt, mapping


def save(
    array: Any,
    destination: str | os.PathLike[str],
    *,
    scale: str = "auto",
    vmin: float | None = None,
    vmax: float | None = None,
    depth: int = 8,
    format: str | None = None,  # noqa: A002 (the command line's --format)
    compression: int = 1,
) -> Saved:
    """Write an array to a file, atomically, as ``convcli filter -o`` writes a result.

    The format comes from the suffix (or ``format``): ``.png``, ``.jpg``,
    ``.bmp``, ``.webp``, ``.gif`` hold pixels, and floats are mapped to them
    by ``scale``; ``.npy``, ``.tif``/``.tiff`` (float32), ``.txt`` and
    ``.csv`` keep the values. The file is written to a hidden temporary name
    beside the destination and renamed into place: an interrupted save leaves
    the old file or the new one, never a partial one.

    Parameters
    ----------
    array : array-like, shape (H, W) or (H, W, 3)
    destination : str or os.PathLike
        The file to write; its folder must exist.
    scale : {'auto', 'minmax', 'abs', 'clip', 'percentile', 'percentile:P'}
        Floats to pixels: ``clip`` maps [vmin, vmax] (default [0, 1]) to
        black..white; ``minmax`` the array's min..max; ``abs`` 0..max|v|;
        ``percentile`` robust ends (P = 99.5: the most extreme 0.5% saturate;
        a centred signed result, an edge map, symmetric about mid-grey);
        ``auto`` is ``clip`` when the values lie in [0, 1] or a bound is
        given, ``percentile:99.5`` for a centred signed result, else
        ``minmax``.
    vmin, vmax : float, optional
        The values shown black and white (fix either end of any scale).
    depth : {8, 16}
        Bits per pixel (16 needs PNG).
    format : str, optional
        ``png``, ``jpeg``, ``bmp``, ``webp``, ``gif``, ``tiff``, ``npy``,
        ``txt`` or ``csv``, overriding the suffix.
    compression : int
        PNG zlib level, 0 (none) to 9 (smallest); lossless at every level.

    Returns
    -------
    Saved
        The path, the format and the pixel mapping (``low``, ``high``,
        ``clipped``; ``None`` for raw formats).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> save(np.array([[0.0, 0.5], [1.0, 2.0]]), folder / "x.png").mapping
    PixelMapping(low=0.0, high=2.0, clipped=0, scale='minmax')
    >>> load(folder / "x.png")
    array([[0.       , 0.2509804],
           [0.5019608, 1.       ]], dtype=float32)
    """
    values = np.asarray(array)
    if values.ndim not in (2, 3) or not np.issubdtype(values.dtype, np.number):
        raise ParameterError(
            f"array has shape {values.shape} and type {values.dtype}; save takes (H, W) or (H, W, 3) numbers"
        )
    if depth not in (8, 16):
        raise ParameterError(f"depth {depth!r} is not 8 or 16")
    if not isinstance(compression, int) or not 0 <= compression <= 9:
        raise ParameterError(f"compression {compression!r} is not a zlib level from 0 to 9")
    path = os.fspath(destination)
    if path == "-":
        raise OutputUsageError("save writes files; for standard output encode with convcli.io.encode")
    write = WriteSettings(format=format, scale=scale, vmin=vmin, vmax=vmax, depth=depth, compression=compression)
    from ..io import check_output_path

    check_output_path(path)
    fmt, mapping = save_file(values, path, write)
    return Saved(path, fmt, mapping)


__all__ = ["Saved", "load", "load_settings", "save", "save_settings", "save_file"]
