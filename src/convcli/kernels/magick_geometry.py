"""ImageMagick's geometry arguments (``0x2``, ``0x1,90``, ``0,1,2``, ``5x3+1+1``), parsed as ``ParseGeometry`` does.

The arguments of an ``im:NAME:ARGS`` kernel (:mod:`convcli.kernels.magick`)
are such a geometry; unlike ImageMagick, anything that is not part of one is
refused instead of read as 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import KernelError


@dataclass(frozen=True)
class Geometry:
    """An ImageMagick geometry argument: ``rho x sigma + xi + psi`` and which were given.

    ``given`` holds ``"rho"``, ``"sigma"``, ``"xi"``, ``"psi"`` for the
    numbers present; ``flags`` the meta characters (``!``, ``^``, ``%``,
    ``@``, ``<``, ``>``, ``#``).
    """

    rho: float = 0.0
    sigma: float = 0.0
    xi: float = 0.0
    psi: float = 0.0
    given: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FOUR = re.compile(rf"^\s*({_NUMBER.pattern})[ ,]+({_NUMBER.pattern})[ ,]+({_NUMBER.pattern})[ ,]+({_NUMBER.pattern})")


def parse_geometry(text: str, what: str = "geometry") -> Geometry:
    """Parse an ImageMagick geometry as ``ParseGeometry`` does (``0x2``, ``0x1,90``, ``0,1,2``, ``5x3+1+1``).

    Numbers are separated by ``x``, ``,`` or ``/`` (and ``+``/``-`` before
    the offsets); four numbers separated by spaces or commas are taken as
    they stand. Unlike ImageMagick, anything that is not part of a geometry
    is an error instead of a silent 0.

    >>> g = parse_geometry("0x1,90")
    >>> g.rho, g.sigma, g.xi, sorted(g.given)
    (0.0, 1.0, 90.0, ['rho', 'sigma', 'xi'])
    """
    four = _FOUR.match(text)
    if four:
        rho, sigma, xi, psi = (float(four.group(i)) for i in range(1, 5))
        return Geometry(rho, sigma, xi, psi, frozenset({"rho", "sigma", "xi", "psi"}))
    flags = set()
    chars = []
    for c in text:
        if c.isspace() or c in "()":
            continue
        if c in "%!<>#^@":
            flags.add(c)
        elif c in "+-,./:xXeE0123456789":
            chars.append(c)
        else:
            raise KernelError(f"{what}: {text!r} is not an ImageMagick geometry such as 90, 0x2 or 0x1,90")
    p = "".join(chars)
    values: dict[str, float] = {}
    pos = 0

    def number() -> float | None:
        nonlocal pos
        match = _NUMBER.match(p, pos)
        if not match:
            return None
        pos = match.end()
        return float(match.group())

    match = _NUMBER.match(p, 0)
    if match and (match.end() == len(p) or p[match.end()] in "xX:,/"):
        values["rho"] = float(match.group())
        pos = match.end()
    if pos < len(p) and p[pos] in "xX:,/":
        separator = p[pos]
        pos += 1
        if separator in ",/" or pos >= len(p) or p[pos] not in "+-":
            value = number()
            if value is not None:
                values["sigma"] = value
    negative = {"xi": False, "psi": False}
    for key in ("xi", "psi"):
        if pos < len(p) and p[pos] in "+-,/:":
            if p[pos] in ",/:":
                pos += 1
            while pos < len(p) and p[pos] in "+-":
                negative[key] ^= p[pos] == "-"
                pos += 1
            value = number()
            if value is not None:
                values[key] = -value if negative[key] else value
        else:
            break
    if pos != len(p):
        raise KernelError(f"{what}: {text!r} is not an ImageMagick geometry such as 90, 0x2 or 0x1,90")
    if "rho" in values and "sigma" not in values and "xi" in values and negative["xi"] and "psi" not in values:
        values["sigma"] = values.pop("xi")  # ImageMagick's negative height: 30x-20 is 30 and -20
    for value in values.values():
        if not math.isfinite(value):
            raise KernelError(f"{what}: {text!r} holds a number that is not finite")
    return Geometry(
        values.get("rho", 0.0),
        values.get("sigma", 0.0),
        values.get("xi", 0.0),
        values.get("psi", 0.0),
        frozenset(values),
        frozenset(flags),
    )
