"""Kernel files (.txt/.csv grids, .npy arrays, ImageMagick strings) and the folders searched for them by name."""

from __future__ import annotations

import errno
import io
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KernelError
from ..limits import check_npy_file, format_bytes
from ..matrices import format_matrix, format_number, parse_matrix
from .catalogue import _CATALOGUE
from .weights import KERNEL_FILE_SUFFIXES, MAX_KERNEL_SIDE, Kernel, as_kernel_array

# ---------------------------------------------------------------------------
# Files and directories


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # too long a name, a loop of links
        return False


def kernel_dirs() -> list[Path]:
    """Directories searched for kernel files by name: ``$CONVCLI_KERNEL_PATH``, then the shipped ``kernels/``.

    Entries of ``$CONVCLI_KERNEL_PATH`` that are not folders (missing, a file) are skipped.
    """
    dirs = [Path(p) for p in os.environ.get("CONVCLI_KERNEL_PATH", "").split(os.pathsep) if p and _is_dir(Path(p))]
    package_dir = Path(__file__).resolve().parent.parent  # convcli/
    for candidate in (package_dir / "_kernels", package_dir.parent.parent / "kernels"):
        if candidate.is_dir():
            dirs.append(candidate)
            break
    return dirs


def kernel_files() -> Iterator[Path]:
    """Kernel files found in the kernel directories (first one wins per stem)."""
    seen: set[str] = set()
    for directory in kernel_dirs():
        try:
            paths = sorted(directory.iterdir())
        except OSError:
            continue  # unreadable folder: nothing found there
        for path in paths:
            if path.suffix.lower() not in KERNEL_FILE_SUFFIXES or path.stem in seen or path.stem in _CATALOGUE:
                continue
            if not _is_regular(path):
                continue  # a folder, a FIFO (opening it would wait for a writer), a device
            seen.add(path.stem)
            yield path


def _is_regular(path: Path) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


_MAGICK_RE = re.compile(r"^\s*(\d+)(?:x(\d+))?(\+\d+\+\d+)?\s*:(.*)$", re.DOTALL)


def parse_imagemagick(text: str, what: str = "ImageMagick kernel") -> np.ndarray | None:
    """Parse an ImageMagick kernel string ``"WxH: v, v, ..."``; ``None`` if it is not one.

    ImageMagick writes the width first and lists the values row by row.

    >>> parse_imagemagick("3x2: 1,0,-1, 2,0,-2")
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.]])
    """
    match = _MAGICK_RE.match(text)
    if not match:
        return None
    if len(match.group(1)) > 9 or len(match.group(2) or "") > 9:
        raise KernelError(f"{what}: the size {text.split(':', 1)[0].strip()[:20]!r} is absurdly large")
    width = int(match.group(1))
    height = int(match.group(2) or match.group(1))
    if match.group(3):
        raise KernelError(f"{what}: origin offsets like {match.group(3)!r} are not supported; the origin is the centre")
    tokens = [t for t in re.split(r"[\s,]+", match.group(4).strip()) if t]
    if len(tokens) != width * height:
        raise KernelError(f"{what} declares {width}x{height} (WxH) = {width * height} values but has {len(tokens)}")
    values = []
    for token in tokens:
        try:
            values.append(float(token))
        except ValueError:
            raise KernelError(f"{what}: {token!r} is not a number") from None
    return np.array(values, dtype=np.float64).reshape(height, width)


#: Most bytes read from a text kernel file: a 4096x4096 grid of 40-character numbers (``/dev/zero`` never ends).
MAX_KERNEL_TEXT = MAX_KERNEL_SIDE * MAX_KERNEL_SIDE * 40


def _shown(text: str, limit: int = 160) -> str:
    """A path cut in the middle when very long (messages stay one readable line)."""
    return text if len(text) <= limit else text[: limit // 2] + "…" + text[-(limit // 2) :]


def _read_kernel_text(path: Path, what: str) -> str:
    """The text of a kernel file, at most :data:`MAX_KERNEL_TEXT` bytes; UTF-8 (a byte-order mark is skipped)."""
    if os.path.exists(path) and not _is_regular(path):
        raise KernelError(f"{what} is not a regular file (a FIFO, a device or a folder); give a kernel file")
    with open(path, "rb") as stream:
        data = stream.read(MAX_KERNEL_TEXT + 1)
    if len(data) > MAX_KERNEL_TEXT:
        raise KernelError(
            f"{what} is larger than {format_bytes(MAX_KERNEL_TEXT)}, more than a {MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE} "
            "kernel needs; give a kernel file"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise KernelError(f"{what} is UTF-16 text; save it as UTF-8 (or plain ASCII) text")
    return data.decode("utf-8").removeprefix("\ufeff")


def load_kernel_file(path: Path) -> np.ndarray:
    """Read a kernel file: ``.npy``, or a text grid / ImageMagick string (any other suffix).

    ``.csv`` files may be European spreadsheet exports (values separated by ``;``); see
    :func:`convcli.matrices.parse_matrix`.
    """
    if path.suffix.lower() == ".mat":  # a libvips matrix: rows / scale (its offset: read_kernel_file)
        from .vips import load_vips_matrix

        return load_vips_matrix(path).weights
    what = f"kernel file {_shown(str(path))!r}"
    try:
        if path.suffix.lower() == ".npy":
            check_npy_file(path, what, KernelError, max_side=MAX_KERNEL_SIDE)
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as exc:
                raise KernelError(f"{what} is not a valid .npy array ({exc})") from None
            if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
                raise KernelError(f"{what} holds {array.dtype} values; a kernel needs real numbers")
            return as_kernel_array(array, what)
        text = _read_kernel_text(path, what)
    except UnicodeDecodeError:
        raise KernelError(f"{what} is not a text file; use a .txt/.csv grid or a .npy array") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise KernelError(f"{what} is too long a name for the file system; use a shorter path") from None
        raise KernelError(f"cannot read {what}: {exc.strerror or exc}") from None
    stripped = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    magick = parse_imagemagick(stripped, what)
    if magick is not None:
        return as_kernel_array(magick, what)
    return as_kernel_array(parse_matrix(text, what, error=KernelError, csv=path.suffix.lower() == ".csv"), what)


def read_kernel_file(path: Path) -> tuple[np.ndarray, float]:
    """``(weights, offset)`` of a kernel file: the offset of a libvips ``.mat`` file, 0 for the other formats."""
    if path.suffix.lower() == ".mat":
        from .vips import load_vips_matrix

        matrix = load_vips_matrix(path)
        return matrix.weights, matrix.offset
    return load_kernel_file(path), 0.0


# ---------------------------------------------------------------------------
# Writing kernel files

#: The suffixes :func:`write_kernel_file` writes.
KERNEL_WRITE_SUFFIXES = (".mat", ".txt", ".csv", ".npy", ".kernel")


def kernel_file_bytes(
    weights: Any,
    suffix: str,
    *,
    scale: float = 1.0,
    offset: float | None = None,
    comments: tuple[str, ...] = (),
) -> bytes:
    """The bytes of a kernel file in the format named by ``suffix`` (``.mat``, ``.txt``, ``.csv``, ``.npy``, ``.kernel``).

    Parameters
    ----------
    weights : array-like or Kernel
        An array is the rows as a ``.mat`` file holds them: the kernel they
        mean is ``weights / scale``, which is what the other formats get. A
        :class:`Kernel` is the kernel itself (its ``weights`` are applied), so
        a ``.mat`` file gets ``weights * scale`` as rows and reads back as the
        same kernel.
    suffix : str
        The format, as a file suffix (case-insensitive).
    scale, offset : float
        The ``.mat`` header's scale (non-zero) and offset; ``offset`` defaults
        to the Kernel's offset (0 for an array). Only ``.mat`` carries an
        offset: the other formats refuse a non-zero one.
    comments : tuple of str
        Lines written as ``# ...`` where the format has room: at the top of
        ``.txt`` and ``.kernel``, after the rows of ``.mat`` (libvips ignores
        them there); ``.csv`` and ``.npy`` have none.

    Examples
    --------
    >>> kernel_file_bytes([[1, 2, 1]], ".mat", scale=4)
    b'3 1 4 0\\n1 2 1\\n'
    >>> kernel_file_bytes([[1, 2, 1]], ".csv", scale=4)
    b'0.25,0.5,0.25\\n'
    """
    suffix = suffix.lower()
    if suffix not in KERNEL_WRITE_SUFFIXES:
        raise KernelError(
            f"cannot write a kernel as {suffix or 'a file without suffix'!r}; use {', '.join(KERNEL_WRITE_SUFFIXES)}"
        )
    if not math.isfinite(scale) or scale == 0:
        raise KernelError(f"kernel file scale {scale!r} must be a finite, non-zero number")
    if isinstance(weights, Kernel):
        applied = weights.weights
        rows = applied * scale
        offset = weights.offset if offset is None else offset
    else:
        rows = as_kernel_array(weights, "kernel")
        applied = rows / scale
    offset = 0.0 if offset is None else float(offset)
    if suffix == ".mat":
        from .vips import format_vips_matrix

        return format_vips_matrix(rows, scale=scale, offset=offset, comments=comments).encode()
    if offset != 0:
        raise KernelError(
            f"a {suffix} kernel file has no offset (got {offset!r}); write a .mat file or pass the offset to --bias"
        )
    if suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(applied, dtype=np.float64), allow_pickle=False)
        return buffer.getvalue()
    if suffix == ".csv":
        return (format_matrix(applied, ",") + "\n").encode()
    header = "".join(f"# {line}\n" for line in comments)
    if suffix == ".kernel":
        h, w = applied.shape
        values = ", ".join(", ".join(format_number(v) for v in row) for row in applied)
        return f"{header}{w}x{h}: {values}\n".encode()
    return (header + format_matrix(applied) + "\n").encode()


def write_kernel_file(
    path: Path | str,
    weights: Any,
    *,
    scale: float = 1.0,
    offset: float | None = None,
    comments: tuple[str, ...] = (),
) -> Path:
    """Write a kernel file, the format chosen by the suffix (see :func:`kernel_file_bytes`); returns the path.

    Written to a temporary file in the same folder and renamed, so a reader
    never sees half a file.
    """
    path = Path(path)
    data = kernel_file_bytes(weights, path.suffix, scale=scale, offset=offset, comments=comments)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise KernelError(f"cannot write kernel file {str(path)!r}: {exc.strerror or exc}") from None
    return path
