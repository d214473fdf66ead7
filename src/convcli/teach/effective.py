"""The effective receptive field: with what weight each input pixel reaches one output pixel of a layer stack.

The theoretical receptive field (:mod:`convcli.teach.stacks`) says *which*
input pixels an output can see; the effective one (Luo et al., 2016) says how
much each of them counts: the gradient of the chosen output with respect to
the input, here computed exactly by running the stack's adjoint operations
backwards from a one-hot output (no autograd needed):

* a ``conv`` layer's adjoint is a transposed convolution with the same kernel,
  stride and dilation, cropped by its padding;
* a ``pool`` layer counts as average pooling (PyTorch's ``avg_pool2d`` with
  ``count_include_pad=True``: a ceil-mode window past the padded input divides
  by its part inside); a max pool's gradient depends on the data, and over
  random inputs it averages to this;
* a ``transpose`` layer's adjoint is a strided correlation with its kernel.

Kernels default to ones (every tap counts the same: ``n`` stacked 3x3 layers
give the ``n``-fold self-convolution of a 3x3 box, binomial-like weights), or
are given per conv/transpose layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import correlate2d
from ..errors import ParameterError
from ..shapes import Pair, format_pair, transpose_output_length
from ..transpose import conv_transpose2d
from .layers import Layer, layer_output, resolved_padding
from .stacks import run_stack


@dataclass(frozen=True)
class EffectiveField:
    """The effective receptive field of one output pixel.

    Attributes
    ----------
    weights : ndarray, shape (H, W)
        ``d output[pixel] / d input``; summing to the stack's gain.
    pixel : (int, int)
        The output pixel.
    centre : (float, float)
        Weighted centre of the absolute weights, in input coordinates.
    radius_50, radius_90 : float
        Smallest distance from ``centre`` holding 50% and 90% of the absolute weight.
    theoretical : ((int, int), (int, int))
        Rows and columns (first, last) of the theoretical field, clipped to the input.
    """

    weights: np.ndarray = field(repr=False)
    pixel: Pair
    centre: tuple[float, float]
    radius_50: float
    radius_90: float
    theoretical: tuple[Pair, Pair]

    def __str__(self) -> str:
        (top, bottom), (left, right) = self.theoretical
        return (
            f"effective receptive field of output {self.pixel}: centre ({self.centre[0]:.2f}, {self.centre[1]:.2f}), "
            f"50% of the weight within radius {self.radius_50:.2f}, 90% within {self.radius_90:.2f}; "
            f"theoretical field rows {top}-{bottom}, columns {left}-{right} "
            f"({bottom - top + 1}x{right - left + 1})"
        )


def _conv_adjoint(gradient: np.ndarray, layer: Layer, kernel: np.ndarray, size: Pair) -> np.ndarray:
    """The gradient at a conv (or average pool) layer's input from the gradient at its output."""
    (top, _), (left, _) = resolved_padding(layer)
    full = conv_transpose2d(gradient, kernel, stride=layer.stride, dilation=layer.dilation)
    rows = max(top + size[0], full.shape[0])
    cols = max(left + size[1], full.shape[1])
    canvas = np.zeros((rows, cols))
    canvas[: full.shape[0], : full.shape[1]] = full
    return canvas[top : top + size[0], left : left + size[1]]


def _pool_divisors(layer: Layer, size: Pair, output: Pair) -> np.ndarray:
    """Window sizes of an average pool with padding counted, a ceil-mode window clipped to the padded input."""
    (top, bottom), (left, right) = resolved_padding(layer)
    counts = []
    for axis, (before, after) in enumerate(((top, bottom), (left, right))):
        limit = size[axis] + before + after
        starts = np.arange(output[axis]) * layer.stride[axis]
        ends = np.minimum(starts + layer.dilation[axis] * (layer.kernel[axis] - 1) + 1, limit)
        counts.append(np.ceil((ends - starts) / layer.dilation[axis]))
    return np.outer(counts[0], counts[1])


def _transpose_adjoint(gradient: np.ndarray, layer: Layer, kernel: np.ndarray, size: Pair) -> np.ndarray:
    """The gradient at a transposed layer's input: a strided correlation over the uncropped result."""
    (top, _), (left, _) = resolved_padding(layer)
    # the uncropped result: the transposed size with no padding cut
    full = np.zeros(
        tuple(
            transpose_output_length(
                size[a], layer.kernel[a], layer.stride[a], 0, layer.dilation[a], layer.output_padding[a]
            )
            for a in range(2)
        )
    )
    full[top : top + gradient.shape[0], left : left + gradient.shape[1]] = gradient
    result = correlate2d(full, kernel, stride=layer.stride, dilation=layer.dilation, method="direct")
    return result[: size[0], : size[1]]


def _radius(weights: np.ndarray, centre: tuple[float, float], share: float) -> float:
    rows, cols = np.indices(weights.shape)
    distance = np.hypot(rows - centre[0], cols - centre[1]).ravel()
    order = np.argsort(distance, kind="stable")
    cumulative = np.cumsum(np.abs(weights).ravel()[order])
    total = cumulative[-1]
    return float(distance[order][np.searchsorted(cumulative, share * total - 1e-12 * total)])


def effective_receptive_field(
    layers: Sequence[Layer],
    input_size: Pair,
    *,
    pixel: Pair | None = None,
    kernels: Sequence[Any] | None = None,
) -> EffectiveField:
    """The weight with which each input pixel reaches output ``pixel`` (default: the middle one) of ``layers``.

    Parameters
    ----------
    layers : sequence of Layer
    input_size : (int, int)
    pixel : (int, int), optional
        An output pixel of the last layer.
    kernels : sequence of array-like, optional
        One kernel per conv/transpose layer, in order (default ones).

    Examples
    --------
    Two 3x3 layers of ones on 9x9: the middle output (2, 2) reads input rows and columns 2 to 6 with the 3x3
    box convolved with itself, 1 2 3 2 1 per axis (row 4, the middle, is 3 times that).

    >>> from convcli.teach.layers import parse_layer
    >>> field = effective_receptive_field([parse_layer("conv:k=3")] * 2, (9, 9))
    >>> field.weights[4].astype(int).tolist()
    [0, 0, 3, 6, 9, 6, 3, 0, 0]
    """
    layers = list(layers)
    if not layers:
        raise ParameterError("give at least one layer")
    run_stack(layers, input_size)  # checks every layer, naming the one that cannot take its input
    sizes: list[Pair] = [(int(input_size[0]), int(input_size[1]))]
    for layer in layers:
        sizes.append(layer_output(layer, sizes[-1]))
    output = sizes[-1]
    if pixel is None:
        pixel = ((output[0] - 1) // 2, (output[1] - 1) // 2)
    if not (0 <= pixel[0] < output[0] and 0 <= pixel[1] < output[1]):
        raise ParameterError(f"output pixel {pixel} is outside the output {format_pair(output)}")
    weighted = [number for number, layer in enumerate(layers) if layer.op != "pool"]
    given = list(kernels) if kernels is not None else [None] * len(weighted)
    if len(given) != len(weighted):
        raise ParameterError(f"{len(given)} kernels for {len(weighted)} conv/transpose layers; give one per layer")
    kernel_of = dict(zip(weighted, given))
    gradient = np.zeros(output)
    gradient[pixel] = 1.0
    for number in range(len(layers) - 1, -1, -1):
        layer, size = layers[number], sizes[number]
        if layer.op == "pool":
            divisors = _pool_divisors(layer, size, layer_output(layer, size))
            gradient = _conv_adjoint(gradient / divisors, layer, np.ones(layer.kernel), size)
            continue
        supplied = kernel_of[number]
        kernel = np.ones(layer.kernel) if supplied is None else np.asarray(supplied, dtype=np.float64)
        if kernel.shape != layer.kernel:
            raise ParameterError(
                f"kernel {number + 1} is {format_pair(kernel.shape)} but layer {number + 1} ({layer.spec}) is "
                f"{format_pair(layer.kernel)}"
            )
        if layer.op == "conv":
            gradient = _conv_adjoint(gradient, layer, kernel, size)
        else:
            gradient = _transpose_adjoint(gradient, layer, kernel, size)
    magnitude = np.abs(gradient)
    total = float(magnitude.sum())
    if total == 0:
        raise ParameterError(f"no input pixel reaches output {pixel} (all weights are 0)")
    rows_index, cols_index = np.indices(gradient.shape)
    centre = (float((magnitude * rows_index).sum() / total), float((magnitude * cols_index).sum() / total))
    theoretical = _theoretical(layers, input_size, pixel)
    return EffectiveField(
        gradient,
        (int(pixel[0]), int(pixel[1])),
        centre,
        _radius(gradient, centre, 0.5),
        _radius(gradient, centre, 0.9),
        theoretical,
    )


def _theoretical(layers: Sequence[Layer], input_size: Pair, pixel: Pair) -> tuple[Pair, Pair]:
    """First and last input row and column the pixel depends on (padding excluded)."""
    from .stacks import dependency_set

    bounds = []
    for axis in range(2):
        positions = [p for p in dependency_set(list(layers), axis, pixel[axis]) if 0 <= p < input_size[axis]]
        bounds.append((min(positions), max(positions)) if positions else (0, -1))
    return (bounds[0], bounds[1])


def build_effective_field_figure(field: EffectiveField, title: str = "", *, dpi: int = 100) -> Any:
    """The weights over the input grid (a heatmap) with the theoretical field outlined: a matplotlib ``Figure``.

    The two radii (50% and 90% of the weight) are drawn as circles around the
    weighted centre; the output pixel is named in the title.
    """
    from matplotlib.patches import Circle, Rectangle

    from .figures import _figure

    weights = field.weights
    height, width = weights.shape
    side = 5.5
    figure = _figure(side * max(1.0, width / height) + 1.2, side * max(1.0, height / width) + 0.8, dpi)
    axes = figure.add_subplot(1, 1, 1)
    bound = float(np.abs(weights).max()) or 1.0
    signed = bool((weights < 0).any())
    image = axes.imshow(
        weights,
        cmap="RdBu_r" if signed else "magma",
        vmin=-bound if signed else 0.0,
        vmax=bound,
        interpolation="nearest",
    )
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    (top, bottom), (left, right) = field.theoretical
    axes.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False, edgecolor="#31a354", linewidth=2
        )
    )
    for radius, dashed in ((field.radius_50, False), (field.radius_90, True)):
        circle = Circle((field.centre[1], field.centre[0]), radius, fill=False, linewidth=1.5)
        circle.set_edgecolor("#e6550d")
        circle.set_linestyle("--" if dashed else "-")
        axes.add_patch(circle)
    axes.set_title(
        (title + "\n" if title else "")
        + f"effective field of output {field.pixel}\n50% of the weight within {field.radius_50:.1f} px (solid), "
        f"90% within {field.radius_90:.1f} (dashed); the theoretical field in green",
        fontsize=9,
    )
    axes.set_xlabel("input column")
    axes.set_ylabel("input row")
    return figure


def effective_field_figure(path: str, field: EffectiveField, title: str = "") -> None:
    """Draw :func:`build_effective_field_figure` and write it to ``path`` (PNG, SVG or PDF, atomically)."""
    from .figures import _save

    _save(build_effective_field_figure(field, title), path)
