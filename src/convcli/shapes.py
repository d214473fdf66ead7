"""Sizes and output-size arithmetic: the single source of truth.

Pure Python (no NumPy), so ``convcli shape`` starts fast. The engine allocates
its outputs with these functions, ``convcli shape`` prints them and the tests
check the engine against them.

Conventions
-----------
* A 2-D size is ``(H, W)``: rows first, as NumPy and PyTorch index. On the
  command line it is written ``N`` (both axes) or ``HxW``.
* Padding is given per axis as ``(before, after)`` after resolution; the user
  gives ``N``, ``HxW``, ``same``, ``valid``, four sides ``TOP,BOTTOM,LEFT,RIGHT``
  or PyTorch ``F.pad``'s order ``torch:LEFT,RIGHT,TOP,BOTTOM``
  (:func:`parse_padding`). Resolved, it is ``((top, bottom), (left, right))``
  (:func:`resolve_padding`), which also applies an ``origin`` (SciPy
  ndimage's: the window moves up/left by ``origin``, one row of padding moving
  from the bottom to the top per step) and, for ``same`` with an even total,
  which side takes the extra row/column (``same_extra``).
* Every formula is PyTorch's (``torch.nn.Conv2d``, ``ConvTranspose2d``,
  ``MaxPool2d``/``AvgPool2d``), written with explicit integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ParameterError, ShapeError

# Sizes and padding specs as written (parsing, canonical forms, formatting) live one layer down, in
# convcli.pairs; they are re-exported here, where every caller has always found them.
from .pairs import (  # noqa: F401
    PADDING_FORMS,
    SAME_EXTRA,
    PaddingSpec,
    Pair,
    Sides,
    as_pair,
    format_padding,
    format_pair,
    padding_sides,
    parse_padding,
    parse_pair,
    sides_of,
)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``d*(k-1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_length(
    length: int, kernel: int, stride: int = 1, pad_before: int = 0, pad_after: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution (or cross-correlation) along one axis.

    ``out = floor((n + p_before + p_after - d*(k-1) - 1) / s) + 1``, which is
    PyTorch's ``floor((n + 2p - d(k-1) - 1)/s) + 1`` when the padding is
    symmetric.

    Raises
    ------
    ShapeError
        When the dilated kernel is larger than the padded input.

    Examples
    --------
    >>> conv_output_length(5, 3, stride=3)
    1
    >>> conv_output_length(3, 2)
    2
    """
    span = effective_kernel(kernel, dilation)
    padded = length + pad_before + pad_after
    if span > padded:
        dil = f" with dilation {dilation} spans {span}" if dilation > 1 else ""
        raise ShapeError(
            f"kernel {kernel}{dil} is larger than the padded input {padded} "
            f"({length} + padding {pad_before}+{pad_after}); use a smaller kernel or more padding"
        )
    return (padded - span) // stride + 1


def trailing_unread(length: int, kernel: int, stride: int, pad_before: int, output: int, dilation: int = 1) -> int:
    """Real input rows after the last one a window reads (convolution and pooling alike).

    The last of ``output`` windows ends at padded index ``s*(out-1) + d*(k-1)``.

    >>> trailing_unread(5, 3, 3, 0, 1)
    2
    """
    last_read = stride * (output - 1) + dilation * (kernel - 1)
    return max(0, pad_before + length - 1 - last_read)


def same_padding(kernel: int, dilation: int = 1, extra: str = "bottom-right") -> tuple[int, int]:
    """Padding ``'same'`` along one axis: total ``d*(k-1)``; an odd total puts the extra row at ``extra``.

    ``bottom-right`` is PyTorch's split; ``top-left`` is SciPy ndimage's,
    ImageMagick's and libvips' placement of an even kernel (its centre is at
    index ``k // 2``).

    >>> same_padding(3)
    (1, 1)
    >>> same_padding(2), same_padding(2, extra="top-left")
    ((0, 1), (1, 0))
    """
    total = dilation * (kernel - 1)
    if extra not in SAME_EXTRA:
        raise ParameterError(f"same extra {extra!r} is not one of {', '.join(SAME_EXTRA)}")
    small = total // 2
    return (small, total - small) if extra == "bottom-right" else (total - small, small)


def origin_range(padding: tuple[int, int]) -> tuple[int, int]:
    """The origins one axis takes with this ``(before, after)`` padding: ``-before .. after``.

    An origin ``o`` moves the window ``o`` rows up (left): the padding becomes
    ``(before + o, after - o)``, so both must stay at least 0. With padding
    ``'same'`` and the top-left placement this is SciPy's rule
    ``-(k // 2) <= o <= (k - 1) // 2``.

    >>> origin_range((1, 1)), origin_range((2, 1))
    ((-1, 1), (-2, 1))
    """
    return (-padding[0], padding[1])


def _apply_origin(pads: Sides, origin: Pair, padding: PaddingSpec, kernel: Pair, dilation: Pair) -> Sides:
    if origin == (0, 0):
        return pads
    ranges = [origin_range(pads[a]) for a in range(2)]
    if all(ranges[a][0] <= origin[a] <= ranges[a][1] for a in range(2)):
        return tuple((pads[a][0] + origin[a], pads[a][1] - origin[a]) for a in range(2))  # type: ignore[return-value]
    span = format_pair((effective_kernel(kernel[0], dilation[0]), effective_kernel(kernel[1], dilation[1])))
    named = f"padding {padding!r}" if isinstance(padding, str) else "padding"
    raise ShapeError(
        f"origin {origin[0]},{origin[1]} is out of range for the {span} kernel with {named} {format_padding(pads)}: "
        f"rows take {ranges[0][0]}..{ranges[0][1]}, columns {ranges[1][0]}..{ranges[1][1]} (an origin moves the "
        "window within the padding; pad more to move it further)"
    )


@dataclass(frozen=True)
class ConvGeometry:
    """Resolved geometry of one 2-D convolution: everything the engine needs.

    Attributes
    ----------
    input, kernel, stride, dilation : (H, W)
    padding : ((top, bottom), (left, right))
    output : (H, W)
    """

    input: Pair
    kernel: Pair
    stride: Pair
    padding: tuple[tuple[int, int], tuple[int, int]]
    dilation: Pair
    output: Pair

    @property
    def padded(self) -> Pair:
        """Size of the padded input."""
        (t, b), (left, r) = self.padding
        return (self.input[0] + t + b, self.input[1] + left + r)

    @property
    def span(self) -> Pair:
        """Size of the dilated kernel."""
        return (
            effective_kernel(self.kernel[0], self.dilation[0]),
            effective_kernel(self.kernel[1], self.dilation[1]),
        )

    def describe(self) -> str:
        """``stride 1x1, padding 0x0, dilation 1x1`` (uneven padding as ``top,bottom x left,right``).

        >>> conv_geometry((6, 6), (2, 2), padding="same").describe()
        'stride 1x1, padding 0,1x0,1, dilation 1x1'
        """
        (t, b), (left, r) = self.padding
        padding = f"{t}x{left}" if (t, left) == (b, r) else f"{t},{b}x{left},{r}"
        return f"stride {format_pair(self.stride)}, padding {padding}, dilation {format_pair(self.dilation)}"

    def uncovered(self) -> Pair:
        """Input rows and columns at the bottom/right that no window reaches.

        The last window ends at padded index ``s*(out-1) + d*(k-1)``; any real
        input row after it is never read. ``(0, 0)`` when everything is used.
        """
        rows, cols = (
            trailing_unread(
                self.input[a], self.kernel[a], self.stride[a], self.padding[a][0], self.output[a], self.dilation[a]
            )
            for a in range(2)
        )
        return (rows, cols)

    def covering_padding(self) -> Pair:
        """Smallest symmetric padding per axis (at least the current one) that leaves no row unused.

        With padding ``p`` the last window ends at padded index
        ``s*floor((n + 2p - span)/s) + span - 1``; it reaches the last real row
        ``p + n - 1`` exactly when ``(n - span + 2p) mod s <= p``. For one value
        of the quotient that remainder grows twice as fast as ``p``, so a miss
        jumps straight to the next quotient: a few steps whatever the stride
        (a loop over ``p`` took seconds for a stride of 10**7).
        """
        result = []
        for axis in range(2):
            size, step, span = self.input[axis], self.stride[axis], self.span[axis]
            pad = max(max(self.padding[axis]), -((size - span) // 2))
            while True:
                quotient = (size - span + 2 * pad) // step
                if size - span + 2 * pad - quotient * step <= pad:
                    break
                pad = -(-((quotient + 1) * step - (size - span)) // 2)
            result.append(pad)
        return (result[0], result[1])


def resolve_padding(
    padding: PaddingSpec,
    kernel: Pair,
    dilation: Pair = (1, 1),
    stride: Pair = (1, 1),
    *,
    origin: Pair = (0, 0),
    same_extra: str = "bottom-right",
) -> Sides:
    """Turn a padding spec into ``((top, bottom), (left, right))``, with the origin applied.

    ``same`` follows PyTorch: only with stride 1; total padding ``d*(k-1)``
    per axis with the odd extra row/column at the bottom/right, or at the
    top/left with ``same_extra='top-left'`` (SciPy ndimage, ImageMagick,
    libvips). ``origin`` ``(oy, ox)`` then moves the window ``oy`` rows up and
    ``ox`` columns left (SciPy ndimage's ``origin``): the padding becomes
    ``(top + oy, bottom - oy)``; the output size never changes, and an origin
    that would need a negative side is refused with the valid range
    (:func:`origin_range`).

    Examples
    --------
    >>> resolve_padding("same", (2, 2))
    ((0, 1), (0, 1))
    >>> resolve_padding("same", (2, 2), same_extra="top-left")
    ((1, 0), (1, 0))
    >>> resolve_padding("same", (3, 3), origin=(1, -1))
    ((2, 0), (0, 2))
    >>> resolve_padding("0,1,2,3", (3, 3))
    ((0, 1), (2, 3))
    """
    if isinstance(padding, str):
        spec = padding if padding in ("same", "valid") else parse_padding(padding)
        if spec == "valid":
            pads: Sides = ((0, 0), (0, 0))
        elif spec == "same":
            if stride != (1, 1):
                raise ShapeError(
                    f"padding 'same' needs stride 1 (got {format_pair(stride)}), as in PyTorch; give the padding as N or HxW"
                )
            pads = (
                same_padding(kernel[0], dilation[0], same_extra),
                same_padding(kernel[1], dilation[1], same_extra),
            )
        else:
            pads = padding_sides(spec)  # type: ignore[arg-type]
    elif _plain_pair(padding):  # the common case, checked without the parser (planning a small filter is hot)
        pads = ((padding[0], padding[0]), (padding[1], padding[1]))  # type: ignore[index,assignment]
    elif isinstance(padding, tuple) and len(padding) == 2 and all(map(_plain_pair, padding)):
        pads = padding  # type: ignore[assignment]
    else:
        pads = padding_sides(parse_padding(padding, named=False))  # type: ignore[arg-type]
    return _apply_origin(pads, origin, padding, kernel, dilation)


def _plain_pair(value: object) -> bool:
    """A tuple of two non-negative Python ints."""
    return (
        type(value) is tuple
        and len(value) == 2
        and type(value[0]) is int
        and type(value[1]) is int
        and value[0] >= 0
        and value[1] >= 0
    )


def conv_geometry(
    input_size: Pair,
    kernel: Pair,
    stride: Pair = (1, 1),
    padding: PaddingSpec = (0, 0),
    dilation: Pair = (1, 1),
    *,
    origin: Pair = (0, 0),
    same_extra: str = "bottom-right",
) -> ConvGeometry:
    """Resolve the geometry of a 2-D convolution (PyTorch ``conv2d`` semantics).

    ``padding`` is any :func:`resolve_padding` spec (per side included);
    ``origin`` and ``same_extra`` move the padding between the sides, never
    the output size.

    Examples
    --------
    >>> conv_geometry((3, 3), (2, 2)).output
    (2, 2)
    >>> conv_geometry((5, 5), (3, 3), stride=(3, 3)).uncovered()
    (2, 2)
    >>> conv_geometry((5, 5), (3, 3), stride=(2, 2), padding=((0, 1), (1, 0))).output
    (2, 2)
    """
    for name, pair in (("stride", stride), ("dilation", dilation), ("kernel size", kernel), ("input size", input_size)):
        if min(pair) < 1:
            raise ParameterError(f"{name} {format_pair(pair)} must be at least 1 on each axis")
    pads = resolve_padding(padding, kernel, dilation, stride, origin=origin, same_extra=same_extra)
    output = tuple(
        conv_output_length(input_size[a], kernel[a], stride[a], pads[a][0], pads[a][1], dilation[a]) for a in range(2)
    )
    return ConvGeometry(
        input=tuple(input_size),  # type: ignore[arg-type]
        kernel=tuple(kernel),  # type: ignore[arg-type]
        stride=tuple(stride),  # type: ignore[arg-type]
        padding=pads,
        dilation=tuple(dilation),  # type: ignore[arg-type]
        output=output,  # type: ignore[arg-type]
    )


def transpose_output_length(
    length: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
    pad_after: int | None = None,
) -> int:
    """Output length of a transposed convolution along one axis (PyTorch ``ConvTranspose2d``).

    ``out = (n - 1)*s - 2p + d*(k-1) + output_padding + 1``. With ``pad_after``
    (an uneven crop, which PyTorch has no argument for) ``padding`` rows are cut
    from the top and ``pad_after`` from the bottom: ``- (p_before + p_after)``
    in place of ``- 2p``, the adjoint of a convolution padded that way.

    Raises
    ------
    ShapeError
        When ``output_padding`` is not smaller than the stride or the dilation,
        or the result is below 1.

    >>> transpose_output_length(4, 3, stride=2, padding=1, output_padding=1)
    8
    >>> transpose_output_length(4, 3, stride=2, padding=1, pad_after=0)
    8
    """
    after = padding if pad_after is None else pad_after
    if output_padding < 0 or padding < 0 or after < 0:
        raise ShapeError("padding and output padding must be at least 0")
    if output_padding >= stride and output_padding >= dilation:
        raise ShapeError(
            f"output padding {output_padding} must be smaller than the stride ({stride}) or the dilation ({dilation})"
        )
    out = (length - 1) * stride - padding - after + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        cut = padding if after == padding else f"{padding},{after}"
        raise ShapeError(
            f"transposed convolution of size {length} with kernel {kernel}, stride {stride}, padding {cut} "
            f"gives output size {out}; reduce the padding"
        )
    return out


def pool_output_length(
    length: int,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    pad_after: int | None = None,
) -> int:
    """Output length of max/avg pooling along one axis (PyTorch ``MaxPool2d``/``AvgPool2d``).

    ``out = floor_or_ceil((n + 2p - d*(k-1) - 1) / s) + 1``; with ``ceil_mode``
    the last window must start inside the input or the left padding, so it is
    dropped when ``(out-1)*s >= n + p``; one ceil_mode window may then be longer
    than the padded input (as in PyTorch). The stride defaults to the kernel size.

    With ``pad_after`` (uneven padding, which PyTorch's pooling has no argument
    for) ``padding`` is the top/left side: ``p_before + p_after`` replaces
    ``2p``, each side is at most half the kernel, and a ceil-mode window must
    start inside the input or the top/left padding (``n + p_before``).

    Raises
    ------
    ShapeError
        When the padding is more than half the kernel (PyTorch's rule) or the
        output would be empty. In ceil mode PyTorch accepts a window larger than
        the padded input (one output), and so does this.

    >>> pool_output_length(5, 3, 3)
    1
    >>> pool_output_length(5, 3, 3, ceil_mode=True)
    2
    >>> pool_output_length(1, 2, 2, ceil_mode=True)
    1
    >>> pool_output_length(4, 6, 3, ceil_mode=True)  # window larger than the input: PyTorch still gives 1
    1
    >>> pool_output_length(5, 2, 2, padding=0, pad_after=1)
    3
    """
    stride = kernel if stride is None else stride
    after = padding if pad_after is None else pad_after
    if max(padding, after) > kernel // 2:
        shown, side = (padding, "") if after == padding else (f"{padding},{after}", " on each side")
        raise ShapeError(
            f"pooling padding {shown} is more than half the kernel size {kernel}; use padding <= {kernel // 2}{side}"
        )
    span = effective_kernel(kernel, dilation)
    numerator = length + padding + after - span
    # Python's // rounds towards minus infinity, like PyTorch's div_rtn.
    out = (numerator + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    if out < 1:
        raise ShapeError(
            f"pooling window {span} is larger than the padded input {length + padding + after}; use a smaller window"
            + ("" if ceil_mode else " (or --ceil-mode, which PyTorch accepts)")
        )
    return out


_OPS = ("conv", "pool", "transpose")


def output_size(
    input: int | Pair,
    kernel: int | Pair,
    *,
    stride: int | Pair | None = 1,
    padding: int | Pair | str | Sides | tuple[int, int, int, int] = 0,
    dilation: int | Pair = 1,
    op: str = "conv",
    ceil_mode: bool = False,
    output_padding: int | Pair = 0,
) -> int | Pair:
    """Output size of one conv, pooling or transposed-conv layer, exactly as PyTorch computes it.

    Parameters
    ----------
    input : int or (H, W)
        Input length (one axis) or size (rows, columns). An int gives an int,
        a pair gives a pair.
    kernel : int or (H, W)
        Kernel (or pooling window) size, at least 1.
    stride : int, (H, W) or None
        Step between windows, at least 1. ``None`` is the kernel size for
        ``op='pool'`` (PyTorch's default there) and 1 otherwise.
    padding : int, (H, W), 'same', 'valid' or per side
        Rows/columns added on *each* side. ``'same'`` (conv only, stride 1)
        pads ``d*(k-1)`` in total, the odd extra after; ``'valid'`` is 0.
        Per side: ``"TOP,BOTTOM,LEFT,RIGHT"``, ``"torch:LEFT,RIGHT,TOP,BOTTOM"``,
        four ints ``(top, bottom, left, right)`` or ``((top, bottom), (left, right))``
        (pool: each side at most half the kernel; transpose: cut from each side).
    dilation : int or (H, W)
        Spacing between kernel taps, at least 1.
    op : {'conv', 'pool', 'transpose'}
        ``conv``: ``conv2d`` (correlation or convolution alike: flipping the
        kernel does not change sizes); ``pool``: ``max_pool2d``/``avg_pool2d``;
        ``transpose``: ``conv_transpose2d``.
    ceil_mode : bool
        Pool only: round the window count up; as in PyTorch, a last window that
        would start in the right padding (at or after ``n + p``) is dropped.
    output_padding : int or (H, W)
        Transpose only: extra rows/columns at the bottom/right, smaller than the
        stride or the dilation.

    Returns
    -------
    int or (int, int)

    Notes
    -----
    Per axis, with input ``n``, kernel ``k``, stride ``s``, padding ``p``
    (``p_before + p_after`` in place of ``2p`` for uneven padding),
    dilation ``d``:

    * conv: ``floor((n + 2p - d*(k-1) - 1) / s) + 1``
    * pool: the same with ``ceil`` in ceil mode, minus 1 when the last window
      would start at or after ``n + p``; ``p`` at most ``k // 2``
    * transpose: ``(n - 1)*s - 2p + d*(k-1) + output_padding + 1``

    The one-axis formulas are :func:`conv_output_length`,
    :func:`pool_output_length` and :func:`transpose_output_length`.

    Raises
    ------
    ParameterError
        A value of the wrong type or below its minimum, an option the op does
        not take, an unknown ``op``; the message names the parameter.
    ShapeError
        The kernel does not fit the padded input, ``'same'`` with a stride,
        pooling padding over half the kernel, an output padding too large.

    Examples
    --------
    >>> output_size(5, 3, stride=3)
    1
    >>> output_size((224, 224), 7, stride=2, padding=3)
    (112, 112)
    >>> output_size(5, 3, stride=3, op="pool", ceil_mode=True)
    2
    >>> output_size(4, 3, stride=2, padding=1, output_padding=1, op="transpose")
    8
    >>> output_size(6, 2, padding="same")
    6
    >>> output_size((5, 5), 3, stride=2, padding="0,1,1,0")
    (2, 2)
    """
    if op not in _OPS:
        raise ParameterError(f"op {op!r} is not one of {', '.join(_OPS)}")
    single = not isinstance(input, (tuple, list))
    if single:
        for name, value in (
            ("kernel", kernel),
            ("stride", stride),
            ("padding", padding),
            ("dilation", dilation),
            ("output_padding", output_padding),
        ):
            if isinstance(value, (tuple, list)):
                raise ParameterError(
                    f"{name} {tuple(value)!r} is a pair but input {input!r} is one length; give input as (H, W)"
                )
    size = as_pair(input, "input size", 1)
    kernel_pair = as_pair(kernel, "kernel size", 1)
    stride_pair = (kernel_pair if op == "pool" else (1, 1)) if stride is None else as_pair(stride, "stride", 1)
    dilation_pair = as_pair(dilation, "dilation", 1)
    extra = as_pair(output_padding, "output padding", 0)
    if ceil_mode and op != "pool":
        raise ParameterError(f"ceil_mode is only for op='pool', not {op!r}")
    if extra != (0, 0) and op != "transpose":
        raise ParameterError(f"output_padding is only for op='transpose', not {op!r}")
    if isinstance(padding, str) and padding.strip().lower() in ("same", "valid"):
        if op != "conv":
            raise ParameterError(
                f"padding {padding.strip().lower()!r} is only for op='conv'; give {op} padding as N or HxW"
            )
        pad_spec: PaddingSpec = padding
    else:
        pad_spec = parse_padding(padding, named=False)
        if single and isinstance(pad_spec[0], tuple):
            raise ParameterError(
                f"padding {format_padding(pad_spec)} gives each side but input {input!r} is one length; give input as (H, W)"
            )
    if op == "conv":
        out = conv_geometry(size, kernel_pair, stride_pair, pad_spec, dilation_pair).output
    else:
        pads = resolve_padding(pad_spec, kernel_pair, dilation_pair, stride_pair)
        if op == "pool":
            rows, cols = (
                pool_output_length(
                    size[a], kernel_pair[a], stride_pair[a], pads[a][0], dilation_pair[a], ceil_mode, pads[a][1]
                )
                for a in range(2)
            )
        else:
            rows, cols = (
                transpose_output_length(
                    size[a], kernel_pair[a], stride_pair[a], pads[a][0], dilation_pair[a], extra[a], pads[a][1]
                )
                for a in range(2)
            )
        out = (rows, cols)
    return out[0] if single else out
