"""Which kernel sizes and paddings turn an input into a target of a given size (for learning a kernel back).

Pure Python (no NumPy). Every size comes from :func:`convcli.shapes.conv_geometry`
/ ``conv_output_length`` (PyTorch ``conv2d``'s ``floor((M + 2p - d*(k-1) - 1)/s) + 1``
per axis); the messages say which ``--padding`` or ``--size`` would match.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..shapes import ConvGeometry, PaddingSpec, Pair, conv_geometry, conv_output_length, format_pair


def size_pair(value: Pair | int) -> Pair:
    """``3`` -> ``(3, 3)``; a pair as ints."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def padding_spec(padding: PaddingSpec | int) -> PaddingSpec:
    """``1`` -> ``(1, 1)``; pairs, ``'same'`` and ``'valid'`` as they are."""
    return (padding, padding) if isinstance(padding, int) else padding


def matching_padding(
    input_size: Pair, kernel: Pair, target: Pair, stride: Pair = (1, 1), dilation: Pair = (1, 1)
) -> str | None:
    """The ``--padding`` that makes this kernel give the ``target`` size, or ``None``.

    ``same`` is preferred when it fits (stride 1, same-size target); otherwise
    the smallest symmetric padding per axis. Sizes come from
    :func:`convcli.shapes.conv_geometry` / ``conv_output_length``.

    >>> matching_padding((6, 8), (1, 2), (6, 8))
    'same'
    >>> matching_padding((6, 8), (3, 3), (6, 8))
    'same'
    >>> matching_padding((8, 8), (3, 3), (4, 4), stride=(2, 2))
    '1x1'
    """
    if (
        stride == (1, 1)
        and tuple(target) == tuple(input_size)
        and conv_geometry(input_size, kernel, stride, "same", dilation).output == tuple(target)
    ):
        return "same"
    pads = []
    for axis in range(2):
        found = None
        for pad in range(0, dilation[axis] * (kernel[axis] - 1) + stride[axis] * (target[axis] + 1) + 1):
            try:
                out = conv_output_length(input_size[axis], kernel[axis], stride[axis], pad, pad, dilation[axis])
            except ShapeError:
                continue
            if out == target[axis]:
                found = pad
                break
            if out > target[axis]:
                break
        if found is None:
            return None
        pads.append(found)
    return format_pair((pads[0], pads[1]))


def matching_sizes(
    input_size: Pair, target: Pair, stride: Pair = (1, 1), padding: PaddingSpec = (0, 0), dilation: Pair = (1, 1)
) -> list[Pair]:
    """Every kernel size that turns ``input_size`` into ``target`` with this geometry (smallest first).

    >>> matching_sizes((6, 8), (6, 7))
    [(1, 2)]
    >>> matching_sizes((6, 8), (6, 8), padding="same")[:3]
    [(1, 1), (1, 2), (1, 3)]
    """
    spec = padding_spec(padding)
    numeric = not isinstance(spec, str)
    limit = [input_size[a] + (2 * size_pair(spec)[a] if numeric else 0) for a in range(2)]  # type: ignore[arg-type]
    per_axis: list[list[int]] = [[], []]
    for axis in range(2):
        for k in range(1, max(limit[axis], 1) + 1):
            kernel = (k, 1) if axis == 0 else (1, k)
            try:
                out = conv_geometry(input_size, kernel, stride, spec, dilation).output[axis]
            except ShapeError:
                continue
            if out == target[axis]:
                per_axis[axis].append(k)
    return [(h, w) for h in per_axis[0] for w in per_axis[1]]


def infer_kernel_size(
    input_size: Pair, target: Pair, stride: Pair = (1, 1), padding: PaddingSpec = (0, 0), dilation: Pair = (1, 1)
) -> Pair:
    """The kernel size implied by the input and target sizes, when only one fits.

    With stride 1 and a numeric padding it is ``(M + 2p - T)/d + 1`` per axis.

    Raises
    ------
    ShapeError
        When no size or several sizes fit (then ``--size`` must be given).

    >>> infer_kernel_size((6, 8), (6, 7))
    (1, 2)
    """
    sizes = matching_sizes(input_size, target, stride, padding, dilation)
    if len(sizes) == 1:
        return sizes[0]
    if not sizes:
        raise ShapeError(
            f"no kernel size turns the {format_pair(input_size)} input into the {format_pair(target)} target "
            f"with this stride, padding and dilation; check the target or give --padding/--stride"
        )
    shown = ", ".join(format_pair(s) for s in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
    raise ShapeError(
        f"the {format_pair(input_size)} input and {format_pair(target)} target fit several kernel sizes ({shown}); "
        f"give --size"
    )


def check_target(
    input_size: Pair,
    target: Pair,
    kernel: Pair,
    stride: Pair = (1, 1),
    padding: PaddingSpec = (0, 0),
    dilation: Pair = (1, 1),
) -> ConvGeometry:
    """Resolve the geometry and check that the target has its output size.

    Raises
    ------
    ShapeError
        Naming the expected size and the ``--padding`` (or ``--size``) that
        would match the target.

    >>> check_target((6, 8), (6, 7), (1, 2)).output
    (6, 7)
    """
    geometry = conv_geometry(input_size, kernel, stride, padding_spec(padding), dilation)
    if geometry.output == tuple(target):
        return geometry
    fix = matching_padding(input_size, kernel, target, stride, dilation)
    if fix is not None:
        hint = f"--padding {fix} would give {format_pair(target)}"
    else:
        sizes = matching_sizes(input_size, target, stride, padding, dilation)
        hint = (
            f"no padding gives {format_pair(target)} with this kernel; --size {format_pair(sizes[0])} would"
            if sizes
            else f"no padding or kernel size gives {format_pair(target)}; "
            "check that the target was made from this input"
        )
    raise ShapeError(
        f"target is {format_pair(target)} but a {format_pair(kernel)} kernel on the {format_pair(input_size)} input "
        f"({geometry.describe()}) gives {format_pair(geometry.output)}; {hint}"
    )
