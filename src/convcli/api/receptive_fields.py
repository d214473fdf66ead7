"""Receptive fields: :func:`receptive_field` of a layer stack, :func:`describe_layer`, :func:`effective_receptive_field`.

``convcli shape`` prints ``str(receptive_field(...))`` for a stack and
``describe_layer`` for one layer; pure Python (the effective field imports
NumPy when it is computed), so ``convcli shape`` starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from ..shapes import as_pair
from ..teach.fields import ReceptiveField
from ..teach.layers import Layer, parse_layer, parse_layer_file
from ..teach.stacks import run_stack
from .teaching_checks import IntOrPair, _kernel

if TYPE_CHECKING:
    from ..teach.describe import LayerDescription


def _layers(layers: str | Layer | Sequence[str | Layer]) -> list[Layer]:
    if isinstance(layers, Layer):
        return [layers]
    if isinstance(layers, str):
        if "\n" in layers or "#" in layers:
            return parse_layer_file(layers, "layers")
        return [parse_layer(layers)]
    found = []
    for item in layers:
        if isinstance(item, Layer):
            found.append(item)
        elif isinstance(item, str):
            found.append(parse_layer(item))
        else:
            raise ParameterError(f"layer {item!r} is not a spec such as 'conv:k=3,p=1' or a Layer")
    if not found:
        raise ParameterError("layers is empty; give at least one spec, e.g. 'conv:k=3,p=1'")
    return found


def receptive_field(layers: str | Layer | Sequence[str | Layer], input_size: IntOrPair | None = None) -> ReceptiveField:
    """Sizes, jumps and receptive fields through a stack of conv, pool and transpose layers.

    Parameters
    ----------
    layers : str, Layer or a sequence of them
        Layer specs as ``convcli shape`` takes them: ``TYPE:key=value,...``
        with TYPE ``conv``, ``pool`` or ``transpose`` and keys ``k`` (kernel,
        required), ``s`` (stride), ``p`` (padding), ``d`` (dilation), ``op``
        (output padding, transpose), ``ceil`` (pool); ``conv:k=7,s=2,p=3``. A
        string with several lines is read like a ``--layers`` file (one spec a
        line, ``#`` comments).
    input_size : int, (H, W) or None
        The input size; without it only fields and jumps are computed (they do
        not depend on it).

    Returns
    -------
    ReceptiveField
        ``.rows`` (per layer: ``output``, ``field``, ``jump``, ``start``,
        ``centre`` as ``(H, W)``), ``.field`` and ``.jump`` of the last layer;
        ``str()`` is the table ``convcli shape`` prints, ``to_dict()`` its JSON.

    Notes
    -----
    The field of output (0, 0) is the exact span of input coordinates it can
    depend on (padding included, so ``start`` may be negative). For conv and
    pool it is the textbook recurrence ``rf_l = rf_(l-1) + d*(k-1)*jump_(l-1)``,
    ``jump_l = jump_(l-1)*s``; transposed layers divide the jump by their
    stride. Sizes are PyTorch's (:func:`convcli.output_size`). The cost is
    linear in the number of layers.

    Raises
    ------
    ParameterError
        A malformed spec (the message quotes it).
    ShapeError
        A layer that cannot take its input, naming the layer.

    Examples
    --------
    >>> rf = receptive_field(["conv:k=3", "conv:k=3", "pool:k=2"], 32)
    >>> rf.output, rf.field, rf.jump[0]
    ((14, 14), (6, 6), Fraction(2, 1))
    """
    stack = _layers(layers)
    size = None if input_size is None else as_pair(input_size, "input size", 1)
    return ReceptiveField(size, tuple(run_stack(stack, size)))


def describe_layer(layer: str | Layer, input_size: IntOrPair) -> LayerDescription:
    """One layer on one input size explained, as ``convcli shape --kernel ...`` prints it.

    ``layer`` is a spec (``"conv:k=3,s=3"``) or a :class:`~convcli.teach.layers.Layer`;
    the record's ``str()`` holds the formula per axis with the numbers put in, the
    input rows/columns no window reaches, windows lying in the padding and, for
    transpose, the valid output paddings; ``.output`` is :func:`convcli.output_size`.

    >>> describe_layer("conv:k=3,s=3", 5).output
    (1, 1)
    """
    from ..teach.describe import describe_layer as describe

    found = _layers(layer) if isinstance(layer, (str, Layer)) else []
    if len(found) != 1:
        raise ParameterError(
            f"layer {layer!r} is not one spec such as 'conv:k=3,s=3' or a Layer (a stack: receptive_field)"
        )
    return describe(found[0], as_pair(input_size, "input size", 1))


def effective_receptive_field(
    layers: str | Layer | Sequence[str | Layer],
    input_size: IntOrPair,
    *,
    pixel: IntOrPair | None = None,
    kernels: Sequence[Any] | None = None,
) -> Any:
    """With what weight each input pixel reaches one output pixel of a stack: ``d output[pixel] / d input``.

    The theoretical receptive field (:func:`receptive_field`) says which input
    pixels an output can see; this says how much each counts. It is computed
    exactly by running the stack's adjoint operations backwards from a one-hot
    output: conv layers by transposed convolution, transposed layers by strided
    correlation, pool layers as average pooling (PyTorch's ``avg_pool2d``,
    ``count_include_pad=True``). It equals PyTorch autograd's input gradient.

    Parameters
    ----------
    layers : str, Layer or a sequence of them
        As :func:`receptive_field`.
    input_size : int or (H, W)
    pixel : int or (row, col), optional
        An output pixel of the last layer; default the middle one.
    kernels : sequence, optional
        One kernel per conv/transpose layer, in order (anything
        :func:`convcli.kernel` takes, of the layer's size); default ones.

    Returns
    -------
    EffectiveField
        ``.weights`` (an ``(H, W)`` array), ``.centre``, ``.radius_50`` and
        ``.radius_90`` (the smallest radii around the centre holding 50% and
        90% of the absolute weight), ``.theoretical`` (rows and columns of the
        theoretical field); ``str()`` is the line ``convcli shape --effective``
        prints.

    Examples
    --------
    Two 3x3 layers of ones: the weights are the 3x3 box convolved with itself.

    >>> field = effective_receptive_field(["conv:k=3", "conv:k=3"], 5)
    >>> field.weights.astype(int).tolist()[2]
    [3, 6, 9, 6, 3]
    >>> round(field.radius_50, 3), field.theoretical  # 9 + 4*6 + 4*4 = 49 of 81 within sqrt(2)
    (1.414, ((0, 4), (0, 4)))
    """
    from ..teach.effective import effective_receptive_field as compute

    stack = _layers(layers)
    size = as_pair(input_size, "input size", 1)
    chosen = None if pixel is None else as_pair(pixel, "pixel", 0)
    weights = None if kernels is None else [_kernel(kernel).weights for kernel in kernels]
    return compute(stack, size, pixel=chosen, kernels=weights)
