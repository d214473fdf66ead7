"""Floats to pixels: the 8- and 16-bit mapping (clip, minmax, abs, auto) shared by every image output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

SCALE_METHODS = ("auto", "minmax", "abs", "clip")


# ---------------------------------------------------------------------------
# Floats to pixels


@dataclass(frozen=True)
class PixelMapping:
    """How floats became pixels: ``[low, high]`` mapped to ``[0, 2**depth - 1]``.

    ``clipped`` counts the values whose pixel the clipping changed: those more
    than half a pixel step outside ``[low, high]``. A value within rounding of
    an end (a float32 sum that should be exactly 0 and is -1e-9) lands on the
    end's pixel anyway and is not counted.
    """

    low: float
    high: float
    clipped: int
    scale: str


def to_pixels(
    values: np.ndarray, *, scale: str = "auto", vmin: float | None = None, vmax: float | None = None, depth: int = 8
) -> tuple[np.ndarray, PixelMapping]:
    """Map floats to 8- or 16-bit pixels.

    Parameters
    ----------
    scale : {'auto', 'minmax', 'abs', 'clip'}
        ``clip``: ``[vmin, vmax]`` (default ``[0, 1]``) to black..white, values
        outside are clipped. ``minmax``: the array's own min..max. ``abs``:
        magnitudes, 0..max|v|. ``auto``: ``clip`` when the values lie in
        [0, 1] or ``vmin``/``vmax`` is given, else ``minmax``.
    vmin, vmax : float, optional
        Fix the black or white end in any mode.
    depth : {8, 16}

    Returns
    -------
    pixels : ndarray of uint8 or uint16
    mapping : PixelMapping
    """
    if scale not in SCALE_METHODS:
        raise ParameterError(f"unknown scale {scale!r}; use one of {', '.join(SCALE_METHODS)}")
    if depth not in (8, 16):
        raise ParameterError(f"depth {depth} is not 8 or 16")
    values = np.asarray(values, dtype=np.float32)
    if scale == "abs":
        values = np.abs(values)
    low_data, high_data = _extremes(values) if values.size else (np.nan, np.nan)
    all_finite = np.isfinite(low_data) and np.isfinite(high_data)  # NaN and infinity show in the extremes
    if not all_finite:
        finite = values[np.isfinite(values)]
        low_data = float(finite.min()) if finite.size else 0.0
        high_data = float(finite.max()) if finite.size else 1.0
    chosen = scale
    if scale == "auto":
        chosen = "clip" if (vmin is not None or vmax is not None or (low_data >= 0 and high_data <= 1)) else "minmax"
    if chosen == "clip":
        low, high = 0.0, 1.0
    elif chosen == "abs":
        low, high = 0.0, high_data
    else:
        low, high = low_data, high_data
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
    if high < low:
        raise ParameterError(f"--vmax {high:g} is below --vmin {low:g}")
    white = (1 << depth) - 1
    inside = all_finite and low <= low_data and high_data <= high  # nothing to count or clip
    span = high - low
    clipped = 0
    if span > 0:
        factor = np.float32(white / span)  # infinite when the span is below float32's range
        pixels, clipped = _mapped(values, np.float32(low), factor, white, inside, depth)
        return pixels, PixelMapping(low, high, clipped, chosen)
    else:
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


def _extremes(values: np.ndarray) -> tuple[float, float]:
    """``(values.min(), values.max())`` in one read of each chunk, chunks on the worker threads."""
    flat = values.reshape(-1)
    if flat.size <= _CHUNK:
        return float(flat.min()), float(flat.max())
    from ..parallel import run_parallel

    found: dict[int, tuple[float, float]] = {}

    def extremes(start: int, stop: int) -> None:
        part = flat[start:stop]
        found[start] = (float(part.min()), float(part.max()))

    run_parallel(_chunks(flat.size), extremes)
    # min/max of floats: a NaN anywhere makes both NaN, as NumPy's whole-array min and max do.
    lows, highs = [low for low, _ in found.values()], [high for _, high in found.values()]
    if any(low != low for low in lows) or any(high != high for high in highs):
        return float("nan"), float("nan")
    return min(lows), max(highs)


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
