"""Sizes and paddings as people write them: ``N``, ``HxW``, four sides, PyTorch's ``F.pad`` order.

Pure Python (no NumPy), below :mod:`convcli.shapes`, which re-exports every name here. A 2-D size is
``(H, W)``, rows first. A padding spec is ``'same'``/``'valid'``, ``(H, W)`` (the same amount on both
sides of each axis) or :data:`Sides`, ``((top, bottom), (left, right))``; :func:`parse_padding` reads
every spelling and returns the canonical one (a pair whenever each axis is even).
"""

from __future__ import annotations

import operator
import re

from .errors import ParameterError

Pair = tuple[int, int]
#: Padding per side, resolved: ``((top, bottom), (left, right))``.
Sides = tuple[tuple[int, int], tuple[int, int]]
#: What a padding can be before resolution: ``'same'``/``'valid'``, ``(H, W)`` (each side) or :data:`Sides`.
PaddingSpec = str | Pair | Sides
#: Where padding ``'same'`` puts the extra row/column of an even total: PyTorch's side first (the default).
SAME_EXTRA = ("bottom-right", "top-left")

_PAIR_RE = re.compile(r"^\s*(-?\d+)\s*(?:[xX×,]\s*(-?\d+)\s*)?$")


def parse_pair(text: str | int | tuple[int, int] | list[int], what: str = "size", minimum: int = 1) -> Pair:
    """Parse ``N`` or ``HxW`` into ``(H, W)``.

    Parameters
    ----------
    text : str, int or pair
        ``"5"``, ``"612x530"`` (rows x columns), an int or a 2-tuple.
    what : str
        Name used in the error message (``"stride"``, ``"padding"``...).
    minimum : int
        Smallest accepted value for each axis.

    Examples
    --------
    >>> parse_pair("5")
    (5, 5)
    >>> parse_pair("612x530")
    (612, 530)
    """
    if isinstance(text, (tuple, list)):
        pair = (int(text[0]), int(text[1]))
    elif isinstance(text, int):
        pair = (text, text)
    else:
        match = _PAIR_RE.match(str(text))
        if not match:
            raise ParameterError(f"{what} {text!r} is not N or HxW (e.g. 3 or 5x3)")
        try:
            first = int(match.group(1))
            second = int(match.group(2)) if match.group(2) is not None else first
        except ValueError:  # more digits than Python converts (4300): no size is that large
            raise ParameterError(
                f"{what} {str(text)[:20]!r}... has too many digits; use N or HxW (e.g. 3 or 5x3)"
            ) from None
        pair = (first, second)
    if min(pair) < minimum:
        raise ParameterError(f"{what} {format_pair(pair)} must be at least {minimum} on each axis")
    return pair


def format_pair(pair: Pair) -> str:
    """Write ``(H, W)`` as ``HxW`` (``N`` when both are equal is not used: always explicit)."""
    return f"{pair[0]}x{pair[1]}"


_SIDES_RE = re.compile(r"^\s*(-?\d+)\s*[,/]\s*(-?\d+)\s*[,/]\s*(-?\d+)\s*[,/]\s*(-?\d+)\s*$")
PADDING_FORMS = "N, HxW, TOP,BOTTOM,LEFT,RIGHT or torch:LEFT,RIGHT,TOP,BOTTOM"


def sides_of(top: int, bottom: int, left: int, right: int) -> Pair | Sides:
    """Four sides as the canonical spec: ``(H, W)`` when each axis is even, else ``((top, bottom), (left, right))``.

    >>> sides_of(1, 1, 2, 2), sides_of(0, 1, 2, 2)
    ((1, 2), ((0, 1), (2, 2)))
    """
    if top == bottom and left == right:
        return (top, left)
    return ((top, bottom), (left, right))


def parse_padding(text: object, what: str = "padding", named: bool = True) -> PaddingSpec:
    """A padding as the user writes it, checked and in canonical form (:func:`sides_of`).

    Accepts ``N``, ``HxW`` (each side of the axis), ``same``/``valid`` (when
    ``named``), four sides ``TOP,BOTTOM,LEFT,RIGHT`` (``/`` also separates), PyTorch
    ``F.pad``'s order ``torch:LEFT,RIGHT,TOP,BOTTOM``, an int, a pair, four ints
    ``(top, bottom, left, right)`` or ``((top, bottom), (left, right))``.

    Examples
    --------
    >>> parse_padding("2"), parse_padding("1x0"), parse_padding("same")
    ((2, 2), (1, 0), 'same')
    >>> parse_padding("0,1,2,3")
    ((0, 1), (2, 3))
    >>> parse_padding("torch:2,3,0,1")
    ((0, 1), (2, 3))
    >>> parse_padding("1,1,0,0")
    (1, 0)
    """
    forms = ("same, valid, " if named else "") + PADDING_FORMS
    if isinstance(text, (tuple, list)):
        items = list(text)
        if len(items) == 2 and all(isinstance(v, (tuple, list)) for v in items):
            items = [*items[0], *items[1]]
            if len(items) != 4:
                raise ParameterError(f"{what} {text!r} must be ((top, bottom), (left, right))")
        values = [_integer(v) for v in items]
        if None in values or len(values) not in (2, 4):
            raise ParameterError(f"{what} {text!r} is not {forms}: give 1, 2 or 4 whole numbers")
        numbers = [int(v) for v in values]  # type: ignore[arg-type]
        if len(numbers) == 2:
            numbers = [numbers[0], numbers[0], numbers[1], numbers[1]]
    elif _integer(text) is not None:
        numbers = [int(text)] * 4  # type: ignore[call-overload]
    else:
        raw = str(text).strip()
        lowered = raw.lower()
        if lowered in ("same", "valid"):
            if not named:
                raise ParameterError(f"{what} {lowered!r} is only for convolution; give {PADDING_FORMS}")
            return lowered
        torch_order = lowered.startswith("torch:")
        body = raw[len("torch:") :] if torch_order else raw
        match = _SIDES_RE.match(body)
        if match:
            numbers = [int(group) for group in match.groups()]
            if torch_order:  # F.pad's (left, right, top, bottom)
                numbers = [numbers[2], numbers[3], numbers[0], numbers[1]]
        elif torch_order:
            count = len([part for part in re.split(r"[,/]", body) if part.strip()])
            raise ParameterError(
                f"{what} {raw!r} has {count} value{'s' if count != 1 else ''}; torch: takes four, "
                "LEFT,RIGHT,TOP,BOTTOM as torch.nn.functional.pad"
            )
        else:
            count = len([part for part in re.split(r"[,/xX×]", raw) if part.strip()])
            if count not in (1, 2):
                raise ParameterError(
                    f"{what} {raw!r} has {count} values; give {forms} (four values are top, bottom, left, right)"
                )
            if not _PAIR_RE.match(raw):
                raise ParameterError(f"{what} {raw!r} is not {forms} (e.g. 1, 1x2 or 0,1,0,1)")
            pair = parse_pair(raw, what, minimum=-(1 << 62))
            numbers = [pair[0], pair[0], pair[1], pair[1]]
    if min(numbers) < 0:
        if numbers[0] == numbers[1] and numbers[2] == numbers[3]:
            raise ParameterError(f"{what} {format_pair((numbers[0], numbers[2]))} must be at least 0 on each axis")
        shown = ",".join(map(str, numbers))
        raise ParameterError(f"{what} {shown} (top,bottom,left,right) must be at least 0 on each side")
    return sides_of(*numbers)


def padding_sides(padding: Pair | Sides) -> Sides:
    """A numeric padding spec as ``((top, bottom), (left, right))``.

    >>> padding_sides((1, 2)), padding_sides(((0, 1), (2, 2)))
    (((1, 1), (2, 2)), ((0, 1), (2, 2)))
    """
    first, second = padding
    if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)):
        return ((int(first[0]), int(first[1])), (int(second[0]), int(second[1])))
    return ((int(first), int(first)), (int(second), int(second)))  # type: ignore[arg-type]


def format_padding(padding: PaddingSpec) -> str:
    """``1x1`` when each axis is even, else ``top,bottom x left,right``: ``0,1x0,1``; names as they are.

    >>> format_padding((1, 2)), format_padding(((0, 1), (2, 2))), format_padding("same")
    ('1x2', '0,1x2,2', 'same')
    """
    if isinstance(padding, str):
        return padding
    (t, b), (left, r) = padding_sides(padding)
    return f"{t}x{left}" if (t, left) == (b, r) else f"{t},{b}x{left},{r}"


def _integer(value: object) -> int | None:
    """``value`` as an int when it is one (Python or NumPy integers, not bools), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def as_pair(value: object, name: str, minimum: int) -> Pair:
    """An int, a pair ``(H, W)`` or the text ``N``/``HxW`` as ``(H, W)``, checked against ``minimum``.

    NumPy integers count as ints; bools and floats do not.

    >>> as_pair(3, "stride", 1), as_pair((2, 1), "stride", 1), as_pair("3x5", "kernel size", 1)
    ((3, 3), (2, 1), (3, 5))
    """
    if isinstance(value, str):
        return parse_pair(value, name, minimum)
    if isinstance(value, (tuple, list)):
        items = [_integer(v) for v in value]
        if len(items) != 2 or None in items:
            raise ParameterError(f"{name} {value!r} must be an int or a pair of ints (H, W)")
        return parse_pair((items[0], items[1]), name, minimum)  # type: ignore[arg-type]
    number = _integer(value)
    if number is None:
        raise ParameterError(f"{name} {value!r} must be an int or a pair of ints (H, W)")
    return parse_pair(number, name, minimum)
