"""Floats to pixels: the 8- and 16-bit mapping (clip, minmax, abs, percentile, auto) shared by every image output.

The ends of the mapping are chosen by one function, :func:`choose_ends`, from
what it reads of the values (their finite extremes, how many are negative and
positive, and for ``percentile`` an order statistic). In memory those come
from the whole array (:class:`_ArrayStats`); a streamed run, which must know
the ends before its first pixel, gathers the same numbers strip by strip in a
first pass with :class:`RangeScan` (bounded memory: the extreme tails only) and
gets the very same ends, hence the same bytes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import ParameterError

SCALE_METHODS = ("auto", "minmax", "abs", "clip", "percentile")

#: ``--scale percentile`` without a value, and what ``auto`` uses for a centred signed result.
DEFAULT_PERCENTILE = 99.5

#: A signed result is *centred* (an edge map, a difference) when each sign holds at least one in this many
#: (a quarter) of the non-zero values; a sharpened or embossed photo (1 to 6% negative) is not.
CENTRED_SHARE = 4


def parse_scale(scale: str) -> tuple[str, float | None]:
    """``scale`` as (method, percentile): ``percentile:99`` -> ``('percentile', 99.0)``.

    >>> parse_scale("percentile"), parse_scale("percentile:99"), parse_scale("minmax")
    (('percentile', 99.5), ('percentile', 99.0), ('minmax', None))
    >>> parse_scale("percentile:40")
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: scale 'percentile:40': the percentile must be above 50 and at most 100 (e.g. percentile:99.5)
    """
    method, colon, value = str(scale).partition(":")
    if method not in SCALE_METHODS or (colon and method != "percentile"):
        raise ParameterError(f"unknown scale {scale!r}; use one of {', '.join(SCALE_METHODS)} (or percentile:P)")
    if method != "percentile":
        return method, None
    if not colon:
        return method, DEFAULT_PERCENTILE
    try:
        percentile = float(value)
    except ValueError:
        percentile = math.nan
    if not 50 < percentile <= 100:
        raise ParameterError(
            f"scale {scale!r}: the percentile must be above 50 and at most 100 (e.g. percentile:{DEFAULT_PERCENTILE:g})"
        )
    return method, percentile


def scale_label(method: str, percentile: float | None) -> str:
    """The name a mapping is reported under, the ``--scale`` value that reproduces it (``percentile:99.5``)."""
    return f"{method}:{percentile:g}" if method == "percentile" and percentile is not None else method


def nearest_rank(count: int, percentile: float) -> int:
    """The 1-based rank of the ``percentile``-th value of ``count`` sorted values (the nearest-rank method: an
    actual value, never an interpolation, so a streamed scan finds the same one), computed exactly.

    >>> nearest_rank(200, 99.5), nearest_rank(4, 99.5), nearest_rank(200, 0.5), nearest_rank(10, 0)
    (199, 4, 1, 1)
    """
    numerator, denominator = _decimal_ratio(float(percentile))
    rank = -(-numerator * count // (denominator * 100))  # ceil(P * count / 100), in integers
    return min(max(rank, 1), count)


def _decimal_ratio(value: float) -> tuple[int, int]:
    """The shortest decimal of ``value`` (its ``repr``) as an exact ratio of integers, as ``Fraction(repr(value))``
    gives it, without importing :mod:`fractions` (and :mod:`decimal`) at start-up (issue 19).

    >>> _decimal_ratio(99.5), _decimal_ratio(1e-05), _decimal_ratio(100.0), _decimal_ratio(-0.25)
    ((995, 10), (1, 100000), (1000, 10), (-25, 100))
    """
    if not math.isfinite(value):
        from fractions import Fraction

        exact = Fraction(repr(value))  # raises as before: a percentile is a finite number
        return exact.numerator, exact.denominator
    mantissa, _, exponent = repr(value).lower().partition("e")
    whole, _, digits = mantissa.partition(".")
    numerator, denominator = int(whole + digits), 10 ** len(digits)
    power = int(exponent or 0)
    if power >= 0:
        return numerator * 10**power, denominator
    return numerator, denominator * 10**-power


# ---------------------------------------------------------------------------
# What the choice of ends reads of the values


class ValueStats(Protocol):
    """What :func:`choose_ends` reads of the (finite) values."""

    @property
    def low(self) -> float:
        """The finite extremes (0 and 1 when no value is finite)."""
        ...

    @property
    def high(self) -> float: ...

    @property
    def negative(self) -> int:
        """How many finite values are below (:attr:`positive`: above) 0."""
        ...

    @property
    def positive(self) -> int: ...

    def order(self, which: str, percentile: float) -> float:
        """``which`` = ``low``/``high``: the (100 - P)-th / P-th percentile of the values; ``abs``: the P-th of |x|."""
        ...


def _centred(stats: ValueStats) -> bool:
    signed = stats.negative + stats.positive
    return min(stats.negative, stats.positive) > 0 and CENTRED_SHARE * min(stats.negative, stats.positive) >= signed


def choose_ends(stats: ValueStats, scale: str, vmin: float | None, vmax: float | None) -> tuple[str, float, float]:
    """The mapping's name and its ``[low, high]`` ends, from the values' statistics (see :func:`to_pixels`)."""
    method, percentile = parse_scale(scale)
    chosen = method
    if method == "auto":
        if vmin is not None or vmax is not None or (stats.low >= 0 and stats.high <= 1):
            chosen = "clip"
        elif _centred(stats):
            chosen, percentile = "percentile", DEFAULT_PERCENTILE
        else:
            chosen = "minmax"
    if chosen == "clip":
        low, high = 0.0, 1.0
    elif chosen == "abs":
        low, high = 0.0, stats.high
    elif chosen == "percentile" and not (vmin is not None and vmax is not None):
        assert percentile is not None
        if _centred(stats):  # symmetric: 0 stays mid-grey
            bound = stats.order("abs", percentile) or max(abs(stats.low), abs(stats.high))
            low, high = -bound, bound
        else:
            low, high = stats.order("low", percentile), stats.order("high", percentile)
            if high <= low:  # nearly constant values: their whole range
                low, high = stats.low, stats.high
    else:
        low, high = stats.low, stats.high
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
    if high < low:
        raise ParameterError(f"--vmax {high:g} is below --vmin {low:g}")
    return scale_label(chosen, percentile), low, high


def needs_values(scale: str, vmin: float | None, vmax: float | None) -> bool:
    """Whether the ends depend on the values (a streamed run then scans them first).

    >>> needs_values("clip", None, None), needs_values("auto", 0.0, None), needs_values("percentile:99", -1.0, None)
    (False, False, True)
    """
    method, _ = parse_scale(scale)
    if method == "clip" or (method == "auto" and (vmin is not None or vmax is not None)):
        return False
    if method == "abs":
        return vmax is None
    return vmin is None or vmax is None


class _ArrayStats:
    """:class:`ValueStats` of a whole array (order statistics computed when asked, by partitioning)."""

    def __init__(self, values: np.ndarray, signs: bool = False) -> None:
        """``signs``: count the negative and positive values in the same read as the extremes (an ``auto`` or
        ``percentile`` mapping asks for them when the values leave [0, 1])."""
        low, high, counts = extremes(values, signs) if values.size else (math.nan, math.nan, None)
        self.all_finite = bool(np.isfinite(low) and np.isfinite(high))  # NaN and infinity show in the extremes
        self.finite = values.ravel() if self.all_finite else values[np.isfinite(values)]
        if not self.all_finite:
            low = float(self.finite.min()) if self.finite.size else 0.0
            high = float(self.finite.max()) if self.finite.size else 1.0
        elif counts is not None:  # all finite: the chunks counted exactly what the properties below would
            self.negative, self.positive = counts  # set here, the cached properties below never run
        self.low, self.high = low, high

    @functools.cached_property
    def negative(self) -> int:
        return int(np.count_nonzero(self.finite < 0)) if self.low < 0 else 0

    @functools.cached_property
    def positive(self) -> int:
        return int(np.count_nonzero(self.finite > 0)) if self.high > 0 else 0

    def order(self, which: str, percentile: float) -> float:
        if not self.finite.size:
            return 0.0 if which == "low" else 1.0  # no finite value: the ends of clip
        rank = nearest_rank(self.finite.size, 100 - percentile if which == "low" else percentile)
        return tail_value(self.finite, rank, which)


def tail_value(values: np.ndarray, rank: int, which: str = "high") -> float:
    """The ``rank``-th smallest (1-based) of ``values`` (``which='abs'``: of their magnitudes), exactly as
    ``np.partition`` finds it, reading only a tail: a strided sample gives a bound the answer lies beyond, the
    values past it are counted, and when they hold the answer only they are partitioned (a 12 MP result's
    99.5th percentile: one comparison pass and 1% of the values, instead of copying and partitioning all).

    ``which='low'``: a rank near the bottom (the tail below the bound); otherwise near the top.

    >>> x = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    >>> all(tail_value(x, r, w) == np.partition(np.abs(x) if w == "abs" else x, r - 1)[r - 1]
    ...     for w, r in (("high", 99_500), ("low", 500), ("abs", 99_000), ("high", 1), ("low", 100_000)))
    True
    """
    flat = values.ravel()
    count = flat.size
    needed = rank if which == "low" else count - rank + 1  # values at or beyond the answer, from its tail's end
    step = count // 65536
    if step >= 4 and needed * 8 < count:
        sample = np.abs(flat[::step]) if which == "abs" else flat[::step]
        # Twice the sample's share of the tail, and some: the bound is verified by counting, never trusted.
        spare = min(sample.size, 2 * (needed // step) + 64)
        low = which == "low"
        bound = np.partition(sample, spare - 1 if low else sample.size - spare)[
            spare - 1 if low else sample.size - spare
        ]
        tail = _beyond(flat, bound, which)
        if tail.size >= needed:
            index = needed - 1 if which == "low" else tail.size - needed
            return float(np.partition(tail, index)[index])
    chosen = np.abs(flat) if which == "abs" else flat
    return float(np.partition(chosen, rank - 1)[rank - 1])


def _beyond(flat: np.ndarray, bound: Any, which: str, chunk: int = 1 << 16) -> np.ndarray:
    """The values at or below ``bound`` (``low``), at or above it (``high``), or the magnitudes at or above it
    (``abs``), read in cache-sized chunks (no full-size mask or copy)."""
    parts = []
    scratch = np.empty(min(chunk, flat.size), dtype=flat.dtype)
    for start in range(0, flat.size, chunk):
        piece = flat[start : start + chunk]
        if which == "abs":
            magnitudes = np.abs(piece, out=scratch[: piece.size])
            parts.append(magnitudes[magnitudes >= bound])
        else:
            parts.append(piece[piece <= bound] if which == "low" else piece[piece >= bound])
    return np.concatenate(parts) if parts else flat[:0]


class RangeScan:
    """:class:`ValueStats` gathered strip by strip (a streamed run's first pass), exactly as :func:`to_pixels` reads
    the whole array: ``choose_ends(scan, ...)`` then gives the ends the in-memory run uses.

    ``total`` is the number of values the strips will hold (height x width x channels); the scan keeps only the
    extreme tails an order statistic can land in (``(100 - P)%`` of ``total`` at each end, of the values and of
    their magnitudes), so it holds about 1.5% of the result for P = 99.5. ``absolute``: the values are magnitudes
    (``--scale abs``).

    >>> values = np.linspace(-1, 1, 1001, dtype=np.float32) ** 3
    >>> scan = RangeScan(values.size, 99.5)
    >>> for start in range(0, values.size, 100):
    ...     scan.add(values[start : start + 100])
    >>> choose_ends(scan, "auto", None, None) == choose_ends(_ArrayStats(values), "auto", None, None)
    True
    """

    def __init__(self, total: int, percentile: float = DEFAULT_PERCENTILE, absolute: bool = False) -> None:
        self.percentile = percentile
        self.absolute = absolute
        self.keep = max(1, total - nearest_rank(total, percentile) + 1) if total else 1
        self._low, self._high = math.inf, -math.inf
        self.all_finite = True
        self.negative = self.positive = self.count = 0
        self._smallest = np.empty(0, np.float32)
        self._largest = np.empty(0, np.float32)
        self._magnitudes = np.empty(0, np.float32)

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32)
        if self.absolute:
            values = np.abs(values)
        values = values.ravel()
        finite = values[np.isfinite(values)]
        if finite.size != values.size:
            self.all_finite = False
        if not finite.size:
            return
        self.count += finite.size
        self._low, self._high = min(self._low, float(finite.min())), max(self._high, float(finite.max()))
        self.negative += int(np.count_nonzero(finite < 0))
        self.positive += int(np.count_nonzero(finite > 0))
        self._smallest = -self._kept(-self._smallest, -finite)
        self._largest = self._kept(self._largest, finite)
        self._magnitudes = self._kept(self._magnitudes, np.abs(finite))

    def merge(self, other: RangeScan) -> None:
        """Fold in the scan of other strips of the same result (another worker's): as if its values were added here.

        >>> values = np.linspace(-1, 1, 1001, dtype=np.float32) ** 3
        >>> one, two = RangeScan(values.size), RangeScan(values.size)
        >>> one.add(values[:600]); two.add(values[600:]); one.merge(two)
        >>> choose_ends(one, "auto", None, None) == choose_ends(_ArrayStats(values), "auto", None, None)
        True
        """
        if (other.keep, other.percentile, other.absolute) != (self.keep, self.percentile, self.absolute):
            raise ValueError("only scans of the same result (same size, percentile and scale) merge")
        self.all_finite = self.all_finite and other.all_finite
        if not other.count:
            return
        self.count += other.count
        self._low, self._high = min(self._low, other._low), max(self._high, other._high)
        self.negative += other.negative
        self.positive += other.positive
        self._smallest = -self._kept(-self._smallest, -other._smallest)
        self._largest = self._kept(self._largest, other._largest)
        self._magnitudes = self._kept(self._magnitudes, other._magnitudes)

    def _kept(self, kept: np.ndarray, new: np.ndarray) -> np.ndarray:
        """The ``keep`` largest of ``kept`` and ``new``."""
        if kept.size >= self.keep:
            new = new[new > kept.min()]
        joined = np.concatenate([kept, new])
        if joined.size > self.keep:
            joined = np.partition(joined, joined.size - self.keep)[joined.size - self.keep :]
        return joined

    @property
    def low(self) -> float:
        """The finite extremes so far (0 and 1 while there is no finite value, as :func:`to_pixels`)."""
        return self._low if self.count else 0.0

    @property
    def high(self) -> float:
        return self._high if self.count else 1.0

    def order(self, which: str, percentile: float) -> float:
        if percentile != self.percentile:
            raise ValueError(f"this scan kept the tails of percentile {self.percentile:g}, not {percentile:g}")
        if not self.count:
            return 0.0 if which == "low" else 1.0  # no finite value: the ends of clip
        if which == "low":
            rank = nearest_rank(self.count, 100 - percentile)  # the rank-th smallest
            return float(np.sort(self._smallest)[rank - 1])
        kept = self._magnitudes if which == "abs" else self._largest
        from_top = self.count - nearest_rank(self.count, percentile)  # 0 = the largest
        return float(np.sort(kept)[::-1][from_top])


# ---------------------------------------------------------------------------
# Floats to pixels


@dataclass(frozen=True)
class PixelMapping:
    """How floats became pixels: ``[low, high]`` mapped to ``[0, 2**depth - 1]``.

    ``clipped`` counts the values whose pixel the clipping changed: those more
    than half a pixel step outside ``[low, high]``. A value within rounding of
    an end (a float32 sum that should be exactly 0 and is -1e-9) lands on the
    end's pixel anyway and is not counted. ``scale`` is the mapping used, as
    ``--scale`` names it (``auto`` says which it chose: ``percentile:99.5``).
    """

    low: float
    high: float
    clipped: int
    scale: str


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_pixels(
    values: np.ndarray, *, scale: str = "auto", vmin: float | None = None, vmax: float | None = None, depth: int = 8
) -> tuple[np.ndarray, PixelMapping]:
    """Map floats to 8- or 16-bit pixels.

    Parameters
    ----------
    scale : {'auto', 'minmax', 'abs', 'clip', 'percentile', 'percentile:P'}
        ``clip``: ``[vmin, vmax]`` (default ``[0, 1]``) to black..white, values
        outside are clipped. ``minmax``: the array's own min..max. ``abs``:
        magnitudes, 0..max|v|. ``percentile`` (P = 99.5 unless given, above
        50): robust ends that let the most extreme values saturate; for a
        *centred* signed result (each sign holding at least a quarter of the
        non-zero values: an edge map) ``[-m, m]`` with ``m`` the P-th
        percentile of ``|v|``, so 0 is mid-grey; otherwise the (100 - P)-th
        and P-th percentiles of the values (nearest rank: actual values).
        ``auto``: ``clip`` when the values lie in [0, 1] or ``vmin``/``vmax``
        is given, ``percentile:99.5`` for a centred signed result, else
        ``minmax``.
    vmin, vmax : float, optional
        Fix the black or white end in any mode.
    depth : {8, 16}

    Returns
    -------
    pixels : ndarray of uint8 or uint16
    mapping : PixelMapping

    Examples
    --------
    A signed edge map: 0 is mid-grey, the strongest 1% saturates.

    >>> edges = np.concatenate([np.linspace(-1, 1, 200), [-50.0, 50.0]])
    >>> pixels, mapping = to_pixels(edges, scale="percentile:99")
    >>> mapping.scale, mapping.low, mapping.high, int(pixels[100]), int(pixels[-1])
    ('percentile:99', -1.0, 1.0, 128, 255)
    >>> to_pixels(edges)[1].scale, to_pixels(edges, scale="minmax")[1].low
    ('percentile:99.5', -50.0)
    """
    parse_scale(scale)
    if depth not in (8, 16):
        raise ParameterError(f"depth {depth} is not 8 or 16")
    values = np.asarray(values, dtype=np.float32)
    if scale == "abs":
        values = np.abs(values)
    stats = _ArrayStats(values, signs=parse_scale(scale)[0] in ("auto", "percentile"))
    chosen, low, high = choose_ends(stats, scale, vmin, vmax)
    low_data, high_data, all_finite = stats.low, stats.high, stats.all_finite
    white = (1 << depth) - 1
    inside = all_finite and low <= low_data and high_data <= high  # nothing to count or clip
    span = high - low
    clipped = 0
    if span > 0 and white / span <= _FLOAT32_MAX:
        factor = np.float32(white / span)
        pixels, clipped = _mapped(values, np.float32(low), factor, white, inside, depth)
        return pixels, PixelMapping(low, high, clipped, chosen)
    else:  # no span, or one below float32's range (its factor would be infinite): black up to low, white above
        scaled = np.where(values > low, np.float32(white), np.float32(0))
        if not inside:
            clipped = int(np.count_nonzero((values < low) | (values > high)))
    if not inside:  # inside [low, high] the values land in [0, white] give or take rounding, which rint absorbs
        np.clip(scaled, 0, white, out=scaled)
    np.rint(scaled, out=scaled)
    pixels = scaled.astype(np.uint8 if depth == 8 else np.uint16)
    return pixels, PixelMapping(low, high, clipped, chosen)


# ---------------------------------------------------------------------------
# The mapping's speed: fused, in place, in cache-sized chunks on the worker threads

#: Elements per chunk: a float32 chunk of 1 MiB stays in the cache through its five operations.
_CHUNK = 1 << 18


def _chunks(size: int) -> list[tuple[int, int]]:
    return [(start, min(size, start + _CHUNK)) for start in range(0, size, _CHUNK)]


def extremes(values: np.ndarray, signs: bool = False) -> tuple[float, float, tuple[int, int] | None]:
    """``(values.min(), values.max())`` in one read of each chunk, chunks on the worker threads; with ``signs``,
    also the counts of negative and positive values (each chunk counted while it is in the cache), else ``None``.

    A NaN anywhere makes both ends NaN and an infinity shows as an end, as NumPy's own min and max, so the
    ends also tell whether every value is finite. A view with gaps between its rows (OpenCV's cropped
    results) is read by blocks of rows, never copied.

    >>> extremes(np.array([-1.0, 0.0, 2.0, 3.0]), signs=True)
    (-1.0, 3.0, (1, 2))
    >>> extremes(np.arange(12.0).reshape(3, 4)[:, 1:3])
    (1.0, 10.0, None)
    """
    if values.flags.c_contiguous or values.ndim < 2:
        flat = values.reshape(-1)
        pieces = _chunks(flat.size)

        def piece(start: int, stop: int) -> np.ndarray:
            return flat[start:stop]
    else:
        per_row = max(1, values[0].size)
        rows = max(1, _CHUNK // per_row)
        pieces = [(start, min(values.shape[0], start + rows)) for start in range(0, values.shape[0], rows)]

        def piece(start: int, stop: int) -> np.ndarray:
            return values[start:stop]

    def summary(part: np.ndarray) -> tuple[float, float, int, int]:
        negative = int(np.count_nonzero(part < 0)) if signs else 0
        return float(part.min()), float(part.max()), negative, int(np.count_nonzero(part > 0)) if signs else 0

    if len(pieces) == 1:
        low, high, negative, positive = summary(piece(*pieces[0]))
        return low, high, (negative, positive) if signs else None
    from ..parallel import run_parallel

    found: dict[int, tuple[float, float, int, int]] = {}

    def chunk(start: int, stop: int) -> None:
        found[start] = summary(piece(start, stop))

    run_parallel(pieces, chunk)
    # min/max of floats: a NaN anywhere makes both NaN, as NumPy's whole-array min and max do.
    lows, highs = [part[0] for part in found.values()], [part[1] for part in found.values()]
    counts = (sum(part[2] for part in found.values()), sum(part[3] for part in found.values())) if signs else None
    if any(low != low for low in lows) or any(high != high for high in highs):
        return float("nan"), float("nan"), counts
    return min(lows), max(highs), counts


def _mapped(
    values: np.ndarray, low: np.float32, factor: np.float32, white: int, inside: bool, depth: int
) -> tuple[np.ndarray, int]:
    """``rint(clip((values - low) * factor, 0, white))`` as pixels, and the count of values the clip changed.

    The same float32 operations element by element as one whole-array pass each
    (so the same pixels), done chunk by chunk in one scratch buffer per chunk
    and written straight into the output: one read of the floats and one write
    of the pixels instead of six full-size passes and temporaries.
    """
    from ..parallel import run_parallel

    flat = values.reshape(-1)
    pixels = np.empty(values.shape, dtype=np.uint8 if depth == 8 else np.uint16)
    out = pixels.reshape(-1)
    finite_factor = bool(np.isfinite(factor))
    counts: dict[int, int] = {}

    def chunk(start: int, stop: int) -> None:
        scaled = np.subtract(flat[start:stop], low, dtype=np.float32)
        scaled *= factor
        if not inside:
            # the pixels the clip changes (rint is half to even: -0.5 gives black, white + 0.5 gives white + 1)
            counts[start] = int(np.count_nonzero(scaled < -0.5)) + int(np.count_nonzero(scaled >= white + 0.5))
        if not (inside and finite_factor):
            np.clip(scaled, 0, white, out=scaled)
        np.rint(scaled, out=scaled)
        out[start:stop] = scaled

    run_parallel(_chunks(flat.size), chunk, flat.size > 2 * _CHUNK)
    return pixels, sum(counts.values())
