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
    low_data, high_data = (float(values.min()), float(values.max())) if values.size else (np.nan, np.nan)
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
        scaled = np.subtract(values, np.float32(low), dtype=np.float32)
        scaled *= factor
        if (
            not inside
        ):  # the pixels the clip changes (rint is half to even: -0.5 gives black, white + 0.5 gives white + 1)
            clipped = int(np.count_nonzero((scaled < -0.5) | (scaled >= white + 0.5)))
        inside = inside and bool(np.isfinite(factor))
    else:
        scaled = np.where(values > low, np.float32(white), np.float32(0))
        if not inside:
            clipped = int(np.count_nonzero((values < low) | (values > high)))
    if not inside:  # inside [low, high] the values land in [0, white] give or take rounding, which rint absorbs
        np.clip(scaled, 0, white, out=scaled)
    np.rint(scaled, out=scaled)
    pixels = scaled.astype(np.uint8 if depth == 8 else np.uint16)
    return pixels, PixelMapping(low, high, clipped, chosen)
