"""Kernels: the built-in catalogue, kernel files and kernel specs.

A kernel is a 2-D array of weights applied by **cross-correlation** (the
kernel is *not* flipped): output ``(i, j)`` is the sum over ``(u, v)`` of
``K[u, v] * X[i + u, j + v]``, rows ``u`` going down and columns ``v`` going
right. ``--convolve`` flips the kernel by 180 degrees. Every orientation and
sign stated below assumes correlation.

Spec syntax (``-k SPEC``), tried in this order:

* inline matrix: ``"0 1; 2 3"`` (rows by ``;``, values by spaces or commas);
* ImageMagick kernel string: ``"3x3: 1,0,-1, 2,0,-2, 1,0,-1"`` (``WxH``,
  columns first as ImageMagick writes it, or ``N:`` for square);
* a file path: ``.txt``/``.csv`` grid, ``.npy`` array, or a text file holding
  an ImageMagick string;
* a catalogue name with parameters: ``gaussian:7``, ``gaussian:7:1.5``,
  ``blur:5``, ``diff-x:2``, ``edge:1,1``;
* the stem of a file in a kernel directory: the ``kernels/`` folder shipped
  with convcli and the folders in ``$CONVCLI_KERNEL_PATH``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import KernelError, UnknownKernelError
from .limits import check_npy_file
from .matrices import parse_matrix

KERNEL_FILE_SUFFIXES = (".txt", ".csv", ".npy", ".kernel")
MAX_KERNEL_SIDE = 4096


@dataclass(frozen=True)
class Kernel:
    """A named kernel.

    Attributes
    ----------
    name : str
        Short name used in output file names (``gaussian-7``, ``vertical``).
    weights : ndarray
        2-D float64 weights, read-only, applied by cross-correlation.
    spec : str
        The spec the user wrote.
    description : str
        One line: what it does, its orientation and sign.
    """

    name: str
    weights: np.ndarray = field(repr=False)
    spec: str = ""
    description: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))


def _as_kernel_array(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise KernelError(f"{what} has {array.ndim} dimensions; a kernel is a 2-D grid")
    if array.size == 0:
        raise KernelError(f"{what} is empty")
    if max(array.shape) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{what} is {array.shape[0]}x{array.shape[1]}; kernels are limited to {MAX_KERNEL_SIDE} per side"
        )
    if not np.all(np.isfinite(array)):
        raise KernelError(f"{what} contains NaN or infinity; every weight must be a finite number")
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


# ---------------------------------------------------------------------------
# Catalogue


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    usage: str
    description: str
    build: Callable[[list[str]], np.ndarray]
    max_params: int


_CATALOGUE: dict[str, CatalogueEntry] = {}


def _register(name: str, usage: str, description: str, max_params: int = 0):
    def decorator(build: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
        _CATALOGUE[name] = CatalogueEntry(name, usage, description, build, max_params)
        return build

    return decorator


def _int_param(params: list[str], index: int, default: int, what: str, minimum: int = 1, maximum: int = 1023) -> int:
    if index >= len(params) or params[index] == "":
        return default
    text = params[index]
    try:
        value = int(text)
    except ValueError:
        raise KernelError(f"{what} {text!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise KernelError(f"{what} {value} is out of range; use {minimum} to {maximum}")
    return value


def _float_param(params: list[str], index: int, what: str) -> float | None:
    if index >= len(params) or params[index] == "":
        return None
    try:
        value = float(params[index])
    except ValueError:
        raise KernelError(f"{what} {params[index]!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise KernelError(f"{what} {params[index]!r} must be a positive number")
    return value


def _fixed(matrix: Sequence[Sequence[float]]) -> Callable[[list[str]], np.ndarray]:
    return lambda params: np.array(matrix, dtype=np.float64)


_SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
_PREWITT_X = [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]
_SCHARR_X = [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]

_register("vertical", "vertical", "vertical edges: rows [1, 0, -1]; positive where the left side is brighter")(
    _fixed([[1, 0, -1]] * 3)
)
_register("horizontal", "horizontal", "horizontal edges: 1s on top, -1s below; positive where the top is brighter")(
    _fixed([[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
)
for _name, _base, _label in (
    ("sobel", _SOBEL_X, "Sobel"),
    ("prewitt", _PREWITT_X, "Prewitt"),
    ("scharr", _SCHARR_X, "Scharr"),
):
    _register(f"{_name}-x", f"{_name}-x", f"{_label} d/dx: positive where brightness increases to the right")(
        _fixed(_base)
    )
    _register(f"{_name}-y", f"{_name}-y", f"{_label} d/dy: positive where brightness increases downwards")(
        _fixed([list(row) for row in zip(*_base)])
    )
_register("sharpen", "sharpen", "sharpen: 5 at the centre, -1 at the four neighbours (sum 1)")(
    _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
)
_register("emboss", "emboss", "emboss: relief lit from the bottom right (sum 1)")(
    _fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
)


@_register("laplacian", "laplacian[:4|8]", "Laplacian, 4-neighbour ([0 1 0; 1 -4 1; 0 1 0]) or 8-neighbour", 1)
def _laplacian(params: list[str]) -> np.ndarray:
    neighbours = _int_param(params, 0, 4, "laplacian neighbours", 4, 8)
    if neighbours == 4:
        return np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    if neighbours == 8:
        return np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], dtype=np.float64)
    raise KernelError(f"laplacian neighbours {neighbours} must be 4 or 8")


def _size_param(params: list[str], index: int, default: int, what: str) -> tuple[int, int]:
    if index >= len(params) or params[index] == "":
        return (default, default)
    match = re.fullmatch(r"(\d{1,9})(?:x(\d{1,9}))?", params[index])
    if not match:
        raise KernelError(f"{what} {params[index]!r} is not N or HxW")
    size = (int(match.group(1)), int(match.group(2) or match.group(1)))
    if min(size) < 1 or max(size) > MAX_KERNEL_SIDE:
        raise KernelError(f"{what} {params[index]!r} is out of range; use 1 to {MAX_KERNEL_SIDE}")
    return size


@_register("identity", "identity[:SIZE]", "identity: 1 at the centre (row and column (k-1)//2), default 3x3", 1)
def _identity(params: list[str]) -> np.ndarray:
    rows, cols = _size_param(params, 0, 3, "identity size")
    kernel = np.zeros((rows, cols))
    kernel[(rows - 1) // 2, (cols - 1) // 2] = 1.0
    return kernel


@_register("blur", "blur[:SIZE|HxW]", "box blur: the mean of a SIZE x SIZE window, default 3x3 (sum 1)", 1)
def _blur(params: list[str]) -> np.ndarray:
    rows, cols = _size_param(params, 0, 3, "blur size")
    return np.full((rows, cols), 1.0 / (rows * cols))


@_register(
    "gaussian",
    "gaussian[:SIZE[:SIGMA]]",
    "Gaussian blur exp(-(x^2+y^2)/(2 sigma^2)) on a SIZE-point grid, sum 1; default 7x7, sigma sqrt(SIZE/2); "
    "gaussian::SIGMA sizes it to 2*ceil(3 sigma)+1",
    2,
)
def _gaussian(params: list[str]) -> np.ndarray:
    sigma = _float_param(params, 1, "gaussian sigma")
    default_size = 7 if sigma is None else 2 * math.ceil(3 * sigma) + 1
    size = _int_param(params, 0, default_size, "gaussian size", 1, MAX_KERNEL_SIDE)
    # sigma^2 = SIZE/2 makes the default exp(-(x^2 + y^2)/SIZE): for 7 the classic tutorial kernel.
    two_sigma_squared = float(size) if sigma is None else 2.0 * sigma * sigma
    grid = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    profile = np.exp(-(grid * grid) / two_sigma_squared)
    # Built as an outer product so that it is exactly separable.
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def _difference(order: int) -> np.ndarray:
    return np.array([(-1) ** i * math.comb(order, i) for i in range(order + 1)], dtype=np.float64)


@_register(
    "diff-x",
    "diff-x[:ORDER]",
    "finite difference along x (a row): order 1 is [1, -1] (x[j] - x[j+1]), order d has d+1 taps (-1)^i C(d,i)",
    1,
)
def _diff_x(params: list[str]) -> np.ndarray:
    return _difference(_int_param(params, 0, 1, "difference order", 1, 64))[np.newaxis, :]


@_register("diff-y", "diff-y[:ORDER]", "finite difference along y (a column): order 1 is [1; -1] (x[i] - x[i+1])", 1)
def _diff_y(params: list[str]) -> np.ndarray:
    return _difference(_int_param(params, 0, 1, "difference order", 1, 64))[:, np.newaxis]


@_register(
    "edge",
    "edge:V1,V2",
    "directional derivative along (v1, v2), x right and y down: (v1*sobel-x + v2*sobel-y)/|v|",
    1,
)
def _edge(params: list[str]) -> np.ndarray:
    if not params or not params[0]:
        raise KernelError("edge needs a direction, e.g. edge:1,0 (x right) or edge:1,1 (diagonal down-right)")
    parts = [p for p in re.split(r"[,\s]+", params[0]) if p]
    try:
        v1, v2 = (float(p) for p in parts)
    except ValueError:
        raise KernelError(f"edge direction {params[0]!r} must be two numbers V1,V2") from None
    norm = math.hypot(v1, v2)
    if not math.isfinite(norm) or norm == 0:
        raise KernelError(f"edge direction {params[0]!r} must be a non-zero finite vector")
    sobel_x = np.array(_SOBEL_X, dtype=np.float64)
    return (v1 * sobel_x + v2 * sobel_x.T) / norm


def catalogue() -> list[CatalogueEntry]:
    """The built-in kernels, in catalogue order."""
    return list(_CATALOGUE.values())


# ---------------------------------------------------------------------------
# Files and directories


def kernel_dirs() -> list[Path]:
    """Directories searched for kernel files by name: ``$CONVCLI_KERNEL_PATH``, then the shipped ``kernels/``."""
    dirs = [Path(p) for p in os.environ.get("CONVCLI_KERNEL_PATH", "").split(os.pathsep) if p]
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "_kernels", package_dir.parent.parent / "kernels"):
        if candidate.is_dir():
            dirs.append(candidate)
            break
    return dirs


def kernel_files() -> Iterator[Path]:
    """Kernel files found in the kernel directories (first one wins per stem)."""
    seen: set[str] = set()
    for directory in kernel_dirs():
        for path in sorted(directory.iterdir()):
            if path.suffix.lower() in KERNEL_FILE_SUFFIXES and path.stem not in seen and path.stem not in _CATALOGUE:
                seen.add(path.stem)
                yield path


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


def load_kernel_file(path: Path) -> np.ndarray:
    """Read a kernel file: ``.npy``, or a text grid / ImageMagick string (any other suffix)."""
    what = f"kernel file {str(path)!r}"
    try:
        if path.suffix.lower() == ".npy":
            check_npy_file(path, what, KernelError, max_side=MAX_KERNEL_SIDE)
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as exc:
                raise KernelError(f"{what} is not a valid .npy array ({exc})") from None
            if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
                raise KernelError(f"{what} holds {array.dtype} values; a kernel needs real numbers")
            return _as_kernel_array(array, what)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KernelError(f"{what} is not a text file; use a .txt/.csv grid or a .npy array") from None
    except OSError as exc:
        raise KernelError(f"cannot read {what}: {exc.strerror or exc}") from None
    stripped = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    magick = parse_imagemagick(stripped, what)
    if magick is not None:
        return _as_kernel_array(magick, what)
    return _as_kernel_array(parse_matrix(text, what, error=KernelError), what)


# ---------------------------------------------------------------------------
# Specs


_INLINE_RE = re.compile(r"^[\s\d.eE+\-,;]+$")


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-.")
    return slug or "kernel"


def parse_kernel_spec(spec: str) -> Kernel:
    """Resolve a ``-k`` spec into a :class:`Kernel` (see the module docstring for the order).

    Raises
    ------
    UnknownKernelError
        When the spec names nothing; the message suggests the closest names.
    KernelError
        When the spec, its parameters or the file are malformed.

    Examples
    --------
    >>> parse_kernel_spec("0 1; 2 3").weights
    array([[0., 1.],
           [2., 3.]])
    >>> parse_kernel_spec("diff-x").weights
    array([[ 1., -1.]])
    """
    text = spec.strip()
    if not text:
        raise KernelError(
            "the kernel spec is empty; give a name (convcli kernels lists them) or a matrix like '0 1; 2 3'"
        )
    if _INLINE_RE.match(text) and re.search(r"\d", text):
        weights = _as_kernel_array(parse_matrix(text, f"kernel {text!r}", error=KernelError), f"kernel {text!r}")
        return Kernel("custom", weights, spec, "inline matrix")
    magick = parse_imagemagick(text, f"kernel {text!r}")
    if magick is not None:
        return Kernel("custom", _as_kernel_array(magick, f"kernel {text!r}"), spec, "ImageMagick kernel string")
    path = Path(text)
    if path.suffix.lower() in KERNEL_FILE_SUFFIXES or os.sep in text or (os.altsep and os.altsep in text):
        if path.is_file():
            return Kernel(_slug(path.stem), load_kernel_file(path), spec, f"kernel file {text}")
        if os.sep in text or path.suffix.lower() in KERNEL_FILE_SUFFIXES:
            raise KernelError(
                f"kernel file {text!r} does not exist; check the path (or use a name from 'convcli kernels')"
            )
    name, _, rest = text.partition(":")
    name = name.lower()
    if name in _CATALOGUE:
        entry = _CATALOGUE[name]
        params = rest.split(":") if rest else []
        if len(params) > entry.max_params:
            raise KernelError(f"kernel {text!r} has too many parameters; usage: {entry.usage}")
        weights = _as_kernel_array(entry.build(params), f"kernel {text!r}")
        return Kernel(_slug(text.replace(":", "-")), weights, spec, entry.description)
    for path in kernel_files():
        if path.stem == text:
            return Kernel(_slug(path.stem), load_kernel_file(path), spec, f"kernel file {path.name}")
    names = [entry.name for entry in catalogue()] + [p.stem for p in kernel_files()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "run 'convcli kernels' to list them"
    raise UnknownKernelError(f"unknown kernel {text!r}: not a name, a matrix or a file; {hint}")


# ---------------------------------------------------------------------------
# Upsampling kernels (convcli upsample, issue 4). Registered last so that the
# catalogue's earlier entries keep their order; the weights come from
# convcli.transpose, which depends only on errors and shapes.


def _factor_param(params: list[str], what: str) -> tuple[int, int]:
    from .transpose import MAX_UPSAMPLE_FACTOR

    if not params or params[0] == "":
        return (2, 2)
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", params[0])
    if not match:
        raise KernelError(f"{what} {params[0]!r} is not N or HxW")
    factor = (int(match.group(1)), int(match.group(2) or match.group(1)))
    if not 1 <= min(factor) <= max(factor) <= MAX_UPSAMPLE_FACTOR:
        raise KernelError(f"{what} {params[0]!r} is out of range; use 1 to {MAX_UPSAMPLE_FACTOR}")
    return factor


@_register(
    "bilinear",
    "bilinear[:FACTOR|HxW]",
    "bilinear upsampling for stride FACTOR (default 2; upsample takes a bare 'bilinear' from --stride): "
    "size 2f - f%2, weights (1 - |x - c|/f) per axis (FCN); stride f, padding f//2 gives f times the size",
    1,
)
def _bilinear(params: list[str]) -> np.ndarray:
    from .transpose import bilinear_kernel

    return bilinear_kernel(_factor_param(params, "bilinear factor"))


@_register(
    "nearest",
    "nearest[:FACTOR|HxW]",
    "nearest-neighbour upsampling for stride FACTOR (default 2; upsample takes a bare 'nearest' from --stride): "
    "ones, f x f",
    1,
)
def _nearest(params: list[str]) -> np.ndarray:
    from .transpose import nearest_kernel

    return nearest_kernel(_factor_param(params, "nearest factor"))
