"""Animations of the sliding window: the frames, pure numbers (their pictures: :mod:`convcli.teach.animate_render`).

One frame per output element for ``filter`` and ``pool`` (row by row, as the
output is written), one per input pixel for ``upsample`` (each pixel spreads
a copy of the kernel times its value). A frame records the positions read or
written, the values, the weights and the result, and a caption written as
``convcli explain`` writes a sum (``0×0 + 1×1 + 3×2 + 4×3 = 19``).

The numbers shown come from the output array the caller computed with the
same function as the command (``convcli.filter``...), so an animation never
shows a number the command would not write; the products in each caption are
the window's own values and weights, and their sum equals the result to
rounding (the tests check it).

Conventions
-----------
* Positions are ``(row, column)`` in the *canvas*: the padded input for
  ``filter`` and ``pool`` (the input starts at ``(top, left)`` padding), the
  full, uncropped result for ``upsample`` (the output is the canvas with
  ``padding`` rows and columns cut from each side).
* ``filter`` shows the kernel as applied: flipped when ``convolve``.
* ``pool`` pads with ``-inf`` (max), ``+inf`` (min) or 0 (mean), as PyTorch;
  a ``ceil_mode`` window may hang past the padded input, and the taps outside
  read nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import pad2d
from ..matrices import format_number
from ..shapes import ConvGeometry, Pair, transpose_output_length
from .explain import format_sum


@dataclass(frozen=True)
class Frame:
    """One step of an animation.

    Attributes
    ----------
    index : int
        Position of the step in the full sequence (from 0).
    cell : (int, int)
        The output element computed (``filter``, ``pool``) or the input pixel
        spread (``upsample``).
    taps : tuple of (int, int)
        Canvas positions read (``filter``, ``pool``) or written (``upsample``).
    values : tuple of float
        Values read at the taps (``filter``, ``pool``); the input pixel's
        value at every tap (``upsample``).
    weights : tuple of float or None
        Kernel weights at the taps (``None`` for ``pool``).
    result : float or None
        The output element (``filter``, ``pool``); ``None`` for ``upsample``.
    caption : str
        The step written out.
    """

    index: int
    cell: Pair
    taps: tuple[Pair, ...]
    values: tuple[float, ...]
    weights: tuple[float, ...] | None
    result: float | None
    caption: str
    missed: bool = False
    """True for the jump the stride cannot make: the window past the input, where no output is computed."""

    def record(self) -> dict[str, Any]:
        """The frame as a JSON-ready dict (``convcli animate --json``)."""
        return {
            "frame": self.index,
            "cell": list(self.cell),
            "taps": [list(t) for t in self.taps],
            "values": [_plain(v) for v in self.values],
            "weights": None if self.weights is None else list(self.weights),
            "result": None if self.result is None else _plain(self.result),
            "caption": self.caption,
            **({"missed": True} if self.missed else {}),
        }


def _plain(value: float) -> float | str:
    """JSON has no infinity: ``"-inf"``/``"inf"`` as text (a max-pooling pad)."""
    return value if np.isfinite(value) else ("inf" if value > 0 else "-inf")


@dataclass(frozen=True)
class Animation:
    """All the frames of one operation, and what they are drawn on.

    Attributes
    ----------
    op : {'filter', 'pool', 'upsample'}
    title : str
        The operation and its output-size formula (shown on the first frame).
    image : ndarray
        The input as given.
    canvas : ndarray
        What the frames point into: the padded input (``filter``, ``pool``;
        pooling pads drawn with their fill), or the full uncropped result of
        ``upsample`` (zeros, filled in by the frames).
    offset : (int, int)
        Where ``image`` (``filter``, ``pool``) or the output (``upsample``)
        starts in the canvas.
    output : ndarray
        The result, as the command computes it.
    kernel : ndarray or None
        The kernel as applied (``None`` for ``pool``).
    frames : tuple of Frame
        The frames drawn (all steps, or a sample of them: see :func:`sample_frames`).
    count : int
        How many steps the operation has (frames of the full sequence).
    label : str
        A short name for files: ``filter``, ``max-pool``, ``upsample``.
    """

    op: str
    title: str
    image: np.ndarray = field(repr=False)
    canvas: np.ndarray = field(repr=False)
    offset: Pair
    output: np.ndarray = field(repr=False)
    kernel: np.ndarray | None = field(repr=False)
    frames: tuple[Frame, ...] = field(repr=False)
    count: int = 0
    label: str = ""
    geometry: Any = field(default=None, repr=False)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per frame (what ``convcli animate --json`` prints, a line each)."""
        return [frame.record() for frame in self.frames]

    def durations(self, fps: float = 2.0, hold: float = 0.0) -> list[float]:
        """Milliseconds each frame is shown: ``1000/fps``, the last one ``hold`` seconds longer."""
        each = 1000.0 / fps
        return [each] * (len(self.frames) - 1) + [each + 1000.0 * hold]

    def save(
        self,
        path: str,
        *,
        fps: float = 2.0,
        hold: float = 0.0,
        grid: bool | None = None,
        dpi: int = 100,
        cmap: str | None = None,
        format: str | None = None,  # noqa: A002 (the command line's --format)
    ) -> int:
        """Draw the frames and write them as GIF, APNG (``.png``) or MP4, atomically; returns the bytes written."""
        from ..io.animation import animation_format, write_animation
        from .animate_render import render  # the pictures depend on the frames, not the other way

        fmt = animation_format(str(path), format)
        pictures = render(self, grid=grid, dpi=dpi, cmap=cmap)
        return write_animation(path, pictures, fmt, self.durations(fps, hold), fps)

    def _repr_html_(self) -> str:
        """The animation as an inline GIF in a notebook."""
        import base64

        from ..io.animation import encode_animation
        from .animate_render import render

        pictures = render(self, dpi=72)
        data = encode_animation(pictures, "gif", self.durations(2.0, 2.0), 2.0)
        return f'<img alt="{self.label}" src="data:image/gif;base64,{base64.b64encode(data).decode()}"/>'

    def partial_canvas(self, upto: int) -> np.ndarray:
        """``upsample``: the full, uncropped sums after step ``upto`` (the transposed convolution, with no
        padding cut, of the input with the later pixels set to 0)."""
        from ..transpose import conv_transpose2d

        spread = np.asarray(self.image, dtype=np.float64).copy()
        spread.reshape(-1)[upto + 1 :] = 0.0
        g = self.geometry
        kernel = np.asarray(self.kernel, dtype=np.float64)
        return conv_transpose2d(spread, kernel, stride=g.stride, output_padding=g.output_padding, dilation=g.dilation)

    def partial_output(self, upto: int) -> np.ndarray:
        """The output as it stands after step ``upto``: NaN where not yet computed (``filter``, ``pool``), or
        the sums of the pixels spread so far (``upsample``: :meth:`partial_canvas` with the padding cut)."""
        if self.op == "upsample":
            (top, left), (height, width) = self.offset, self.output.shape
            return self.partial_canvas(upto)[top : top + height, left : left + width]
        partial = np.full(self.output.shape, np.nan)
        flat = partial.reshape(-1)
        flat[: upto + 1] = self.output.reshape(-1)[: upto + 1]
        return partial


# ---------------------------------------------------------------------------
# Frames


def _number(value: float) -> str:
    """12 significant digits at most, as ``convcli explain`` writes numbers (``1.11111111111``, not ``...1112``)."""
    return format_number(float(f"{value:.12g}")) if np.isfinite(value) else format_number(value)


def _caption_sum(products: Sequence[tuple[float, float]], total: float, bias: float) -> str:
    text = format_sum(list(products), total)
    if bias:
        head, _, tail = text.rpartition(" = ")
        text = f"{head} + {_number(bias)} = {tail}"
    return text


def _window(origin: Pair, kernel: Pair, dilation: Pair) -> list[tuple[int, int, int, int]]:
    """(u, v, row, col) of every tap of a window whose first tap is at ``origin``, row by row."""
    return [
        (u, v, origin[0] + u * dilation[0], origin[1] + v * dilation[1])
        for u in range(kernel[0])
        for v in range(kernel[1])
    ]


def filter_animation(
    image: np.ndarray,
    kernel: np.ndarray,
    geometry: ConvGeometry,
    output: np.ndarray,
    *,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    bias: float = 0.0,
    convolved: bool = False,
    limit: int | None = None,
) -> Animation:
    """The frames of a correlation of ``image`` with ``kernel`` (already flipped when ``convolved``).

    ``output`` is the result as computed by :func:`convcli.filter`; each frame
    reads the window of the padded input at one output element.

    >>> x = np.arange(9.0).reshape(3, 3)
    >>> from convcli.shapes import conv_geometry
    >>> k = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> a = filter_animation(x, k, conv_geometry((3, 3), (2, 2)), np.array([[19.0, 25.0], [37.0, 43.0]]))
    >>> [f.caption for f in a.frames][:2]
    ['0×0 + 1×1 + 3×2 + 4×3 = 19', '1×0 + 2×1 + 4×2 + 5×3 = 25']
    """
    canvas = pad2d(np.asarray(image, dtype=np.float64), geometry.padding, pad_mode, pad_value)
    frames = []
    (sh, sw), width = geometry.stride, geometry.output[1]
    count = geometry.output[0] * width
    for index in sample_frames(count, limit):
        i, j = divmod(index, width)
        taps = _window((i * sh, j * sw), geometry.kernel, geometry.dilation)
        values = tuple(float(canvas[r, c]) for _u, _v, r, c in taps)
        weights = tuple(float(kernel[u, v]) for u, v, _r, _c in taps)
        result = float(output[i, j])
        positions = tuple((r, c) for _u, _v, r, c in taps)
        caption = _caption_sum(list(zip(values, weights)), result, bias)
        frames.append(Frame(index, (i, j), positions, values, weights, result, caption))
    frames.extend(_missed_jumps(geometry, canvas.shape, count, geometry.covering_padding()))
    formula = " x ".join(
        f"floor(({geometry.input[a]} + {sum(geometry.padding[a])} - {geometry.dilation[a]}*({geometry.kernel[a]}-1) - 1)"
        f"/{geometry.stride[a]}) + 1 = {geometry.output[a]}"
        for a in range(2)
    )
    what = "convolution (kernel flipped)" if convolved else "correlation"
    title = (
        f"{what} {geometry.input[0]}x{geometry.input[1]} * {geometry.kernel[0]}x{geometry.kernel[1]}, "
        f"stride {geometry.stride[0]}x{geometry.stride[1]}: output {formula}"
    )
    offset = (geometry.padding[0][0], geometry.padding[1][0])
    return Animation("filter", title, image, canvas, offset, output, kernel, tuple(frames), count, "filter", geometry)


def pool_animation(
    image: np.ndarray,
    op: str,
    geometry: Any,
    output: np.ndarray,
    *,
    count_include_pad: bool = True,
    limit: int | None = None,
) -> Animation:
    """The frames of a max/mean/min pooling (``geometry`` a :class:`convcli.pooling.PoolGeometry`).

    >>> from convcli.pooling import pool_geometry
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> a = pool_animation(x, "max", pool_geometry((4, 4), 2), np.array([[5.0, 7.0], [13.0, 15.0]]))
    >>> a.frames[0].caption
    'max(0, 1, 4, 5) = 5'
    """
    fill = {"max": -np.inf, "min": np.inf, "mean": 0.0}[op]
    (ph, pw) = geometry.padding
    canvas = np.pad(np.asarray(image, dtype=np.float64), ((ph, ph), (pw, pw)), constant_values=fill)
    height, width = image.shape[:2]
    frames = []
    (sh, sw), columns = geometry.stride, geometry.output[1]
    count = geometry.output[0] * columns
    for index in sample_frames(count, limit):
        i, j = divmod(index, columns)
        taps = [
            (r, c)
            for _u, _v, r, c in _window((i * sh, j * sw), geometry.kernel, geometry.dilation)
            if r < canvas.shape[0] and c < canvas.shape[1]
        ]
        values = tuple(float(canvas[r, c]) for r, c in taps)
        result = float(output[i, j])
        if op == "mean":
            inside = sum(1 for r, c in taps if ph <= r < ph + height and pw <= c < pw + width)
            divisor = len(taps) if count_include_pad else inside
            caption = f"({' + '.join(_number(v) for v in values)}) / {divisor} = {_number(result)}"
        else:
            caption = f"{op}({', '.join(_number(v) for v in values)}) = {_number(result)}"
        frames.append(Frame(index, (i, j), tuple(taps), values, None, result, caption))
    frames.extend(_missed_jumps(geometry, canvas.shape, count, None))
    rounding = "ceil" if geometry.ceil_mode else "floor"
    formula = " x ".join(
        f"{rounding}(({geometry.input[a]} + {_twice(geometry.sides[a])} - {geometry.dilation[a]}*({geometry.kernel[a]}-1)"
        f" - 1)/{geometry.stride[a]}) + 1 = {geometry.output[a]}"
        for a in range(2)
    )
    title = (
        f"{op} pooling {geometry.kernel[0]}x{geometry.kernel[1]}, stride {geometry.stride[0]}x{geometry.stride[1]}"
        f"{', ceil mode' if geometry.ceil_mode else ''}: output {formula}"
    )
    return Animation("pool", title, image, canvas, (ph, pw), output, None, tuple(frames), count, f"{op}-pool", geometry)


def upsample_animation(
    image: np.ndarray, kernel: np.ndarray, geometry: Any, output: np.ndarray, *, limit: int | None = None
) -> Animation:
    """The frames of a transposed convolution (``geometry`` a :class:`convcli.transpose.TransposeGeometry`).

    Each frame spreads one input pixel: it adds ``x[i, j] * K[u, v]`` at canvas
    position ``(i*s + u*d, j*s + v*d)``; the output is the canvas with
    ``padding`` cut from each side.

    >>> from convcli.transpose import transpose_geometry
    >>> x = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> a = upsample_animation(x, x, transpose_geometry((2, 2), (2, 2)), np.array([[0, 0, 1], [0, 4, 6], [4, 12, 9.0]]))
    >>> a.frames[1].caption
    'x[0, 1] = 1 adds 1 × kernel at rows 0-1, columns 1-2 of the full result'
    >>> a.partial_output(3).tolist() == a.output.tolist() and a.partial_output(0).tolist() == [[0, 0, 0]] * 3
    True
    """
    values = np.asarray(image, dtype=np.float64)
    (sh, sw), (ph, pw) = geometry.stride, geometry.padding
    kh, kw = geometry.kernel
    # the full, uncropped result: the transposed size with no padding cut
    canvas = np.zeros(
        tuple(
            transpose_output_length(
                geometry.input[a],
                geometry.kernel[a],
                geometry.stride[a],
                0,
                geometry.dilation[a],
                geometry.output_padding[a],
            )
            for a in range(2)
        )
    )
    frames = []
    columns = geometry.input[1]
    count = geometry.input[0] * columns
    for index in sample_frames(count, limit):
        i, j = divmod(index, columns)
        taps = _window((i * sh, j * sw), geometry.kernel, geometry.dilation)
        value = float(values[i, j])
        rows, cols = (taps[0][2], taps[-1][2]), (taps[0][3], taps[-1][3])
        caption = (
            f"x[{i}, {j}] = {_number(value)} adds {_number(value)} × kernel at rows "
            f"{rows[0]}-{rows[1]}, columns {cols[0]}-{cols[1]} of the full result"
        )
        positions = tuple((r, c) for _u, _v, r, c in taps)
        weights = tuple(float(kernel[u, v]) for u, v, _r, _c in taps)
        frames.append(Frame(index, (i, j), positions, tuple(value for _ in taps), weights, None, caption))
    formula = " x ".join(
        f"({geometry.input[a]}-1)*{geometry.stride[a]} - {_twice(geometry.sides[a])} + {geometry.dilation[a]}*"
        f"({geometry.kernel[a]}-1) + {geometry.output_padding[a]} + 1 = {geometry.output[a]}"
        for a in range(2)
    )
    title = (
        f"transposed convolution {geometry.input[0]}x{geometry.input[1]} with {kh}x{kw}, stride "
        f"{sh}x{sw}: output {formula}"
        + (
            f"; padding {geometry.padding_text()} is cut from the sides of the full result"
            if geometry.sides != ((0, 0), (0, 0))
            else ""
        )
    )
    return Animation(
        "upsample", title, image, canvas, (ph, pw), output, kernel, tuple(frames), count, "upsample", geometry
    )


def _missed_jumps(geometry: Any, canvas: tuple[int, ...], index: int, cover: Pair | None) -> list[Frame]:
    """The jump past the last window on each axis that leaves input unread (the classic 5 wide, 3 wide, stride 3).

    One frame per such axis, after the real ones: the window where the next
    step would put it, hanging past the padded input, and how many input
    rows or columns stay unread.
    """
    unread = geometry.uncovered()
    frames: list[Frame] = []
    for axis, name in ((1, "column"), (0, "row")):
        if not unread[axis]:
            continue
        cell = (0, geometry.output[1]) if axis == 1 else (geometry.output[0], 0)
        origin = (cell[0] * geometry.stride[0], cell[1] * geometry.stride[1])
        taps = tuple((r, c) for _u, _v, r, c in _window(origin, geometry.kernel, geometry.dilation))
        first, last = origin[axis], origin[axis] + geometry.dilation[axis] * (geometry.kernel[axis] - 1)
        plural = "s" if unread[axis] > 1 else ""
        caption = (
            f"the next jump (stride {geometry.stride[axis]}) would need {name}s {first}-{last} of the padded input, "
            f"which ends at {name} {canvas[axis] - 1}: it cannot be made, and the last {unread[axis]} input {name}{plural} "
            f"stay unread"
        )
        if cover is not None:
            caption += f" (--padding {cover[0]}x{cover[1]} would reach them)"
        frames.append(Frame(index + len(frames), cell, taps, (), None, None, caption, missed=True))
    return frames


def sample_frames(count: int, limit: int | None) -> list[int]:
    """Indices of the frames drawn: all of them, or ``limit`` spread evenly, the first and the last included.

    >>> sample_frames(5, None), sample_frames(100, 4)
    ([0, 1, 2, 3, 4], [0, 33, 66, 99])
    """
    if limit is None or count <= limit:
        return list(range(count))
    if limit == 1:
        return [count - 1]
    return sorted({round(k * (count - 1) / (limit - 1)) for k in range(limit)})


def _twice(sides: tuple[int, int]) -> str:
    """``2*p`` in a formula, or ``(before + after)`` for uneven padding."""
    return f"2*{sides[0]}" if sides[0] == sides[1] else f"({sides[0]} + {sides[1]})"
