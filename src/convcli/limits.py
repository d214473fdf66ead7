"""Limits that keep convcli from exhausting the machine: pixels, memory, absurd sizes.

Everything here works on sizes (Python ints), never on arrays, so every check
runs *before* the allocation it guards. Pure Python: NumPy is imported only to read a ``.npy`` header.

* **Pixels**: an image or array larger than ``max_pixels`` (default
  :data:`DEFAULT_MAX_PIXELS`, twice Pillow's ``MAX_IMAGE_PIXELS``, which is
  where Pillow itself raises ``DecompressionBombError``) is refused from its
  header, before any pixel is decoded.
* **Memory**: :func:`estimate_filter` adds up what one filter run allocates
  (decoded pixels, the float input, the padded copy, the output, the scratch or
  FFT buffers of the chosen method and the encoding buffers) and
  :func:`check_memory` compares it with the memory available
  (:func:`available_memory`: ``MemAvailable`` from ``/proc/meminfo``, capped
  by a cgroup limit, else ``os.sysconf``) or with ``--max-memory``.
* **Geometry**: stride, padding and dilation above :data:`MAX_GEOMETRY` are
  refused outright (NumPy cannot even index with some of them); kernels are
  limited to ``convcli.kernels.MAX_KERNEL_SIDE`` per side by the kernel parser.

Python integers do not overflow, so the arithmetic here is exact whatever the
sizes; sizes only meet NumPy after these checks have passed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConvcliError, ShapeError
from .shapes import PaddingSpec, conv_geometry

#: Pillow warns above 89,478,485 pixels and refuses above twice that; convcli's default is the refusal point.
DEFAULT_MAX_PIXELS = 2 * 89_478_485
#: A --layers file: at most this many bytes, and a stack at most this many layers (time is linear in them).
MAX_LAYER_FILE_BYTES = 16 << 20
MAX_LAYERS = 100_000
#: Seconds a URL may take, and the bytes it may send, unless told otherwise.
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_DOWNLOAD = 256 * 1024 * 1024
#: Largest stride, padding or dilation accepted per axis.
MAX_GEOMETRY = 1 << 24
#: Bytes per value a text matrix costs while it is parsed (Python floats in lists), per byte of text.
TEXT_BYTES_FACTOR = 12


class LimitError(ConvcliError):
    """An input or an operation is larger than a limit (pixels, memory, download): exit 1."""


class MemoryLimitError(LimitError):
    """An operation's memory estimate is above the budget: exit 1.

    ``streamable`` is set by the command line's guard when a streamed run of the same source could
    still fit (it then streams instead of failing).
    """

    streamable: bool = False


def format_bytes(count: int | float) -> str:
    """Bytes in binary units, one decimal when below 10.

    >>> format_bytes(512), format_bytes(3 * 2**20), format_bytes(2.5 * 2**20), format_bytes(75 * 2**30 + 2**28)
    ('512 B', '3 MiB', '2.5 MiB', '75 GiB')
    """
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            if unit == "B":
                return f"{int(value)} B"
            shown = f"{value:.1f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"
            return f"{shown} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# Pixels


def check_pixels(height: int, width: int, max_pixels: int | None, what: str) -> None:
    """Refuse an image whose header claims more than ``max_pixels`` pixels (``None``: no limit).

    >>> check_pixels(100, 100, 10_000, "x")
    >>> check_pixels(100_000, 100_000, DEFAULT_MAX_PIXELS, "'bomb.png'")
    Traceback (most recent call last):
    ...
    convcli.limits.LimitError: 'bomb.png' is 100000x100000 = 10,000,000,000 pixels, above the limit of 178,956,970 (a decompression bomb?); raise --max-pixels if you trust it
    """
    pixels = int(height) * int(width)
    if max_pixels is not None and pixels > max_pixels:
        raise LimitError(
            f"{what} is {height}x{width} = {pixels:,} pixels, above the limit of {max_pixels:,} "
            "(a decompression bomb?); raise --max-pixels if you trust it"
        )


# ---------------------------------------------------------------------------
# Memory


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as stream:
            text = stream.read().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, then v1), or ``None``."""
    for limit_path, usage_path in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_path)
        usage = _read_int(usage_path)
        if limit is not None and usage is not None and limit < (1 << 60):
            return max(0, limit - usage)
    return None


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping, or ``None`` when unknown.

    ``MemAvailable`` from ``/proc/meminfo`` (Linux), lowered to the room left
    under a cgroup limit (containers); elsewhere ``os.sysconf``'s available
    physical pages.
    """
    found: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        found = None
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            found = None
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


@dataclass(frozen=True)
class Estimate:
    """Bytes an operation needs, with the parts that make it up (for messages and tests)."""

    what: str
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        """The largest parts, e.g. ``padded copy 2.0 GiB, FFT buffers 9.1 GiB``."""
        largest = sorted(self.parts.items(), key=lambda item: -item[1])[:3]
        return ", ".join(f"{name} {format_bytes(size)}" for name, size in largest if size)


def memory_budget(max_memory: int | None = None) -> tuple[int | None, str]:
    """The bytes an operation may use and where that number comes from (for the message)."""
    if max_memory is not None:
        return max_memory, "allowed by --max-memory"
    return available_memory(), "available"


def check_memory(estimate: Estimate, max_memory: int | None = None) -> None:
    """Refuse an operation whose estimate exceeds the budget (``--max-memory`` or the available memory)."""
    budget, source = memory_budget(max_memory)
    if budget is None or estimate.total <= budget:
        return
    fft = estimate.parts.get("FFT buffers", 0) == max(estimate.parts.values())
    raise MemoryLimitError(
        f"{estimate.what} needs about {format_bytes(estimate.total)} of memory ({estimate.describe()}) but only "
        f"{format_bytes(budget)} is {source}; use a smaller input, padding or kernel{', --method direct' if fft else ''}"
        ", or raise --max-memory (MiB) if you know better"
    )


def _fft_length(n: int) -> int:
    """An upper bound on SciPy's ``next_fast_len(n)`` (5-smooth numbers are never more than 25% apart)."""
    return n + (n + 3) // 4


#: Bytes of gathered rows and scratch the engine's row chunks hold at once, at most (chunks of about 4 MiB of
#: buffers, two per thread in flight; measured on 2 cores: 9 to 30 MiB whatever the image size).
CHUNK_BUFFERS = 48 << 20
#: The engine's largest FFT transform per axis (engine.fft._MAX_TILE) and tiles in flight per thread.
FFT_TILE = 1152
#: The interpreter with NumPy, SciPy, OpenCV and the codecs loaded (measured 55 to 62 MiB).
RUNTIME_BYTES = 60 << 20
#: The interpreter with NumPy and the codecs, no OpenCV (``pool``: measured 36 to 50 MiB).
POOL_RUNTIME_BYTES = 44 << 20


def correlation_work(
    input_size: tuple[int, int],
    kernel_size: tuple[int, int],
    method: str,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: PaddingSpec = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    itemsize: int = 8,
    workers: int | None = None,
    backend: str = "numpy",
) -> dict[str, int]:
    """Bytes one 2-D correlation allocates besides its input, for ``method`` (direct, separable, box, fft).

    Follows :mod:`convcli.engine`: the output; the padded rows each chunk
    gathers and its scratch (direct, separable, box), which for a small
    image are the whole padded input and an output's worth, and for a large
    one at most :data:`CHUNK_BUFFERS`; the FFT's tiles (a window, its
    spectrum and the product, complex, at most :data:`FFT_TILE` per axis) per
    thread. ``auto`` is costed as ``fft`` (the largest). ``backend='opencv'``:
    the output, a cropped copy of it when OpenCV's full-size result is cut,
    and with a stride or dilation the polyphase components and their results.

    >>> parts = correlation_work((100, 100), (3, 3), "direct", itemsize=4)
    >>> parts["output"], parts["scratch"], parts["padded copy"], parts["temporaries"]
    (38416, 38416, 0, 1048576)
    """
    threads = workers or os.cpu_count() or 1
    geometry = conv_geometry(input_size, kernel_size, stride, padding, dilation)
    padded_h, padded_w = geometry.padded
    out_h, out_w = geometry.output
    output = out_h * out_w * itemsize
    padded_bytes = 0 if geometry.padded == geometry.input else padded_h * padded_w * itemsize
    # NumPy's ufunc buffers and small copies (kernels, views made contiguous): a fixed allowance.
    if backend == "opencv":
        plain = geometry.stride == (1, 1) and geometry.dilation == (1, 1)
        cropped = output if geometry.output != geometry.input else 0
        phases = 0 if plain else 2 * padded_h * padded_w * itemsize // (geometry.stride[0] * geometry.stride[1])
        return {"output": output, "cropped copy": cropped, "phases": phases, "temporaries": 1 << 20}
    parts = {"padded copy": min(padded_bytes, CHUNK_BUFFERS // 2), "output": output, "temporaries": 1 << 20}
    if method in ("direct", "box"):
        parts["scratch"] = min(output, CHUNK_BUFFERS // 2)
    elif method == "separable":
        parts["scratch"] = min(2 * out_h * padded_w * itemsize + output, CHUNK_BUFFERS)
    else:
        span_h, span_w = geometry.span
        grid_h = min(_fft_length(padded_h + span_h - 1), max(FFT_TILE, 2 * span_h))
        grid_w = min(_fft_length(padded_w + span_w - 1), max(FFT_TILE, 2 * span_w))
        half = grid_h * (grid_w // 2 + 1) * 2 * itemsize
        full = grid_h * grid_w * itemsize
        tiles = (
            1
            if (grid_h, grid_w) == (_fft_length(padded_h + span_h - 1), _fft_length(padded_w + span_w - 1))
            else threads
        )
        valid = (padded_h - span_h + 1) * (padded_w - span_w + 1) * itemsize
        # Per tile in flight: the window, its spectrum, the product and the result (engine.fft's tile()).
        parts["FFT buffers"] = tiles * (2 * full + 2 * half) + (valid if tiles == 1 else 0)
    return parts


def encode_work(values: int, fmt: str, itemsize: int, depth: int = 8) -> dict[str, int]:
    """Bytes the encoding of ``values`` result values allocates (:func:`convcli.io.encode`), by format.

    Image formats: a float32 copy when the result is float64, the scaled
    float32 values, and the pixels; then PNG's filtered rows and its zlib
    stream, joined twice (counted at the filtered size: noise does not
    compress). TIFF: a float32 copy when needed, the file built in memory and
    its copy as bytes. npy: the file in memory and its copy.
    """
    float32 = values * 4 if itemsize != 4 else 0
    if fmt == "tiff":
        # tifffile's file in a BytesIO (grown by copies) and getvalue()'s bytes: about three files (measured).
        return {"float32 copy": float32, "encoded file": 3 * values * 4}
    if fmt == "npy":  # numpy.save into a BytesIO, whose getvalue() hands over its buffer (measured: one file)
        return {"encoded file": values * itemsize + (1 << 16)}
    if fmt in ("txt", "csv"):
        return {"encoded file": values * 48}
    pixel = depth // 8
    scaled = values * 4 + values * pixel
    if fmt != "png":
        return {"float32 copy": float32, "scaled values": scaled + 2 * values * 3}  # Pillow's RGB/L copies
    filtered = values * pixel + values // 64
    big_endian = values * pixel if depth == 16 else 0  # 16-bit samples are copied big-endian first
    return {"float32 copy": float32, "scaled values": max(scaled, values * pixel + big_endian + 4 * filtered)}


def estimate_filter(
    input_size: tuple[int, int],
    channels: int,
    steps: Sequence[tuple[tuple[int, int], str]],
    *,
    stride: tuple[int, int] = (1, 1),
    padding: PaddingSpec = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    itemsize: int = 4,
    decoded_bytes_per_pixel: int = 0,
    what: str = "this filter run",
    fmt: str = "png",
    depth: int = 8,
    padded_copy: bool = False,
    backends: Sequence[str] | None = None,
    subsampled: Sequence[bool] | None = None,
) -> Estimate:
    """Peak memory of filtering an ``input_size`` image with kernels applied one after another.

    Parameters
    ----------
    input_size : (H, W)
    channels : int
        1 for gray, 3 with ``--color`` (each channel is filtered separately and
        the results stacked).
    steps : sequence of (kernel (kh, kw), method)
        One entry per kernel of a chain (a single entry without ``--chain``).
    itemsize : int
        Bytes per computed value: 4 for float32, 8 for float64.
    decoded_bytes_per_pixel : int
        Bytes per pixel of the file and its decoded pixels while it is decoded
        (0 for a raw array: its file and the array, twice ``itemsize``).
    fmt, depth : str, int
        The output format and bits per pixel (:func:`encode_work`).
    padded_copy : bool
        The OpenCV backend pads a whole copy first (circular borders, a non-zero
        constant, padding wider than the kernel).
    backends : sequence of str, optional
        Each step's backend (``numpy`` or ``opencv``, :class:`convcli.engine.Plan`).
    subsampled : sequence of bool, optional
        Whether each step computes every output at stride 1 and keeps every
        s-th (``Plan.full``): its work is that of the stride-1 correlation plus
        the kept outputs.

    The peak is the runtime plus the largest of three moments: decoding (the
    file, its pixels and the float input), filtering (the float input, each
    step's input and output and its work, per channel, plus the stacked
    outputs) and encoding (the float input, the result and
    :func:`encode_work`). Measured against ``/usr/bin/time`` peaks with
    ``bench/huge.py --estimates``: within 1.25x.
    """
    pixels = input_size[0] * input_size[1]
    float_input = pixels * channels * itemsize
    # Decoding: the file and its pixels (a raw array: its file), and the colour conversion's float32 copies.
    decoding = {
        "decoded image": pixels * (decoded_bytes_per_pixel or itemsize) + (pixels * channels * 4 if channels > 1 else 0)
    }
    size = input_size
    filtering: dict[str, int] = {}
    previous = 0
    for index, (kernel_size, method) in enumerate(steps):
        backend = backends[index] if backends is not None else "numpy"
        geometry = conv_geometry(size, kernel_size, stride, padding, dilation)
        out_bytes = geometry.output[0] * geometry.output[1] * itemsize
        full = subsampled is not None and subsampled[index]
        work = correlation_work(
            size,
            kernel_size,
            method,
            stride=(1, 1) if full else stride,
            padding=geometry.padding if full else padding,  # per side: uneven padding keeps its sides
            dilation=dilation,
            itemsize=itemsize,
            backend=backend,
        )
        if full:  # every output at stride 1, then the kept ones copied out
            work["all outputs"] = work.pop("output")
        # Every channel's output is kept, then np.stack copies them.
        work["output"] = out_bytes * (2 * channels if channels > 1 else 1)
        if padded_copy:
            work["padded copy"] = geometry.padded[0] * geometry.padded[1] * itemsize
        work["step input"] = previous
        if sum(work.values()) > sum(filtering.values()):
            filtering = work
        previous = out_bytes * channels
        size = geometry.output
    values = size[0] * size[1] * channels
    encoding = {"result": previous, "encoding": sum(encode_work(values, fmt, itemsize, depth).values())}
    largest = max((decoding, filtering, encoding), key=lambda moment: sum(moment.values()))
    return Estimate(what, {"runtime": RUNTIME_BYTES, "input": float_input, **largest})


def estimate_pool(
    input_size: tuple[int, int],
    output_size: tuple[int, int],
    channels: int = 1,
    *,
    itemsize: int = 4,
    decoded_bytes_per_pixel: int = 0,
    padded: int = 0,
    divided: bool = False,
    fmt: str = "png",
    depth: int = 8,
    what: str = "this pooling",
) -> Estimate:
    """Peak memory of pooling: the runtime and the float input, plus the largest of three moments.

    Decoding (the file and its pixels), pooling (the padded copy :func:`convcli.pooling.pool2d` makes when
    the windows reach past the input, ``padded`` elements per channel, 0 when none; the output; and
    with ``divided`` the divisor matrix and the divided copy of a mean with uneven window counts) and
    encoding (the output and :func:`encode_work`). Checked by ``bench/huge.py --estimates``.
    """
    pixels = input_size[0] * input_size[1]
    values = output_size[0] * output_size[1] * channels
    moments = {
        "decoded image": pixels * (decoded_bytes_per_pixel or itemsize),
        "pooling": (padded * channels + values * (3 if divided else 1)) * itemsize + (1 << 20),
        "encoding": values * itemsize + sum(encode_work(values, fmt, itemsize, depth).values()),
    }
    name = max(moments, key=lambda key: moments[key])
    parts = {"runtime": POOL_RUNTIME_BYTES, "input": pixels * channels * itemsize, name: moments[name]}
    return Estimate(what, parts)


# ---------------------------------------------------------------------------
# Absurd sizes


def check_geometry(**values: object) -> None:
    """Refuse a stride, padding or dilation above :data:`MAX_GEOMETRY` (given as pairs or ``same``/``valid``).

    >>> check_geometry(stride=(1, 2), padding="same", dilation=(1, 1))
    >>> check_geometry(stride=(10**9, 1))
    Traceback (most recent call last):
    ...
    convcli.errors.ShapeError: stride 1000000000x1 is absurdly large; convcli accepts at most 16777216 per axis
    """
    for name, value in values.items():
        if isinstance(value, tuple) and any(isinstance(v, int) and v > MAX_GEOMETRY for v in value):
            shown = "x".join(str(v) for v in value)
            raise ShapeError(f"{name} {shown} is absurdly large; convcli accepts at most {MAX_GEOMETRY} per axis")


def check_npy_shape(shape: Sequence[int], itemsize: int, available: int, what: str, error: type[Exception]) -> None:
    """Refuse a ``.npy`` whose header claims more values than its bytes hold (checked before ``numpy.load``)."""
    count = math.prod(int(n) for n in shape)
    needed = count * itemsize
    if needed > available:
        shown = "x".join(str(n) for n in shape) or "scalar"
        raise error(
            f"{what} claims shape {shown} ({format_bytes(needed)}) but holds only {format_bytes(available)}; "
            "the file is damaged or truncated; write it again (numpy.save)"
        )


def npy_header(stream: Any) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of a ``.npy`` stream from its header, leaving the stream at the data (nothing allocated).

    Raises ``ValueError`` for anything unreadable (NumPy's header parser can
    also raise ``SyntaxError`` or ``tokenize.TokenError`` on damaged headers).
    """
    import numpy as np
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, _fortran, dtype = npy_format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):  # version 3 differs only by allowing UTF-8 field names
            shape, _fortran, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy format version {version[0]}.{version[1]}")
        return tuple(int(n) for n in shape), np.dtype(dtype)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - every way a damaged header can fail
        raise ValueError(f"damaged header ({type(exc).__name__})") from None


def check_npy_file(path: Any, what: str, error: type[Exception], max_side: int | None = None) -> None:
    """Check a ``.npy`` file's header before ``numpy.load``: the data must be as long as the shape says.

    ``numpy.load`` allocates the whole claimed shape first, so a 100-byte file
    claiming 100000x100000 float64 would ask for 75 GiB.
    """
    try:
        with open(path, "rb") as stream:
            shape, dtype = npy_header(stream)
            remaining = os.fstat(stream.fileno()).st_size - stream.tell()
    except OSError:
        return  # numpy.load reports it
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise error(f"{what} is not a valid .npy array ({' '.join(str(exc).split())[:200]})") from None
    if max_side is not None and any(n > max_side for n in shape):
        shown = "x".join(str(n) for n in shape)
        raise error(f"{what} is {shown}; kernels are limited to {max_side} per side")
    check_npy_shape(shape, dtype.itemsize, remaining, what, error)


SizeCheck = Callable[[int, int, int, int], None]
"""A callback ``(height, width, channels, bytes_per_pixel)`` run from a source's header before decoding."""


def estimate_transpose(
    input_size: tuple[int, int],
    output_size: tuple[int, int],
    padding: tuple[int, int],
    channels: int = 1,
    itemsize: int = 8,
    what: str = "this upsampling",
) -> Estimate:
    """Peak memory of a transposed convolution: the full (uncropped) result, the output and its encoding.

    ``conv_transpose2d`` scatters into an array of the output size plus the padding it crops; the
    encoding of the result costs about 18 bytes per output value (as in :func:`estimate_filter`).

    >>> estimate_transpose((3, 3), (8, 8), (1, 1), itemsize=8).parts["full result"]
    800
    """
    full = (output_size[0] + 2 * padding[0]) * (output_size[1] + 2 * padding[1])
    outputs = output_size[0] * output_size[1] * channels
    parts = {
        "input": input_size[0] * input_size[1] * channels * itemsize,
        "full result": full * itemsize,
        "output": outputs * itemsize,
        "encoding": 18 * outputs,
    }
    return Estimate(what, parts)
