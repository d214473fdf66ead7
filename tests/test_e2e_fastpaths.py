"""Shortcuts on the image path give the same numbers as the plain formulas: to_pixels, normalize in place, PNG outputs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import png
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from convcli.errors import ParameterError
from convcli.io import encode, normalize, to_pixels


def reference_pixels(values, scale="auto", vmin=None, vmax=None, depth=8):
    """The documented mapping, step by step: pick [low, high], scale, count the pixels the clip changes, clip, round half to even."""
    values = np.asarray(values, dtype=np.float32)
    if scale == "abs":
        values = np.abs(values)
    finite = values[np.isfinite(values)]
    low_data = float(finite.min()) if finite.size else 0.0
    high_data = float(finite.max()) if finite.size else 1.0
    negative, positive = int((finite < 0).sum()), int((finite > 0).sum())
    centred = min(negative, positive) > 0 and 4 * min(negative, positive) >= negative + positive
    chosen, tenths = scale, 995  # the percentile in tenths
    if scale.startswith("percentile:"):
        chosen, tenths = "percentile", round(float(scale.split(":")[1]) * 10)
    if scale == "auto":
        chosen = "clip" if (vmin is not None or vmax is not None or (low_data >= 0 and high_data <= 1)) else "minmax"
        chosen = "percentile" if chosen == "minmax" and centred else chosen
    low, high = {"clip": (0.0, 1.0), "abs": (0.0, high_data)}.get(chosen, (low_data, high_data))
    if chosen == "percentile":

        def nearest_rank(ordered, tenths):  # the smallest value with at least tenths/1000 of the values at or below it
            rank = min(max(-(-tenths * len(ordered) // 1000), 1), len(ordered))
            return float(ordered[rank - 1])

        if centred:
            bound = nearest_rank(np.sort(np.abs(finite)), tenths) or max(abs(low_data), abs(high_data))
            low, high = -bound, bound
        else:
            ordered = np.sort(finite)
            low, high = nearest_rank(ordered, 1000 - tenths), nearest_rank(ordered, tenths)
            if high <= low:
                low, high = low_data, high_data
        chosen = f"percentile:{tenths / 10:g}"
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
    if high < low:
        return None, (low, high, 0, chosen)
    white = (1 << depth) - 1
    if high > low:
        factor = np.float32(white / (high - low))
        scaled = (values - np.float32(low)) * factor
        unclipped = np.rint(scaled)  # half to even: -0.5 rounds to 0, the pixel of black itself
        clipped = int(np.count_nonzero((unclipped < 0) | (unclipped > white)))
        if np.isinf(factor):  # a span below float32's range: a step is 0 wide, so only values outside count
            clipped = int(np.count_nonzero((values < low) | (values > high)))
    else:
        scaled = np.where(values > low, np.float32(white), np.float32(0))
        clipped = int(np.count_nonzero((values < low) | (values > high)))
    pixels = np.rint(np.clip(scaled, 0, white)).astype(np.uint8 if depth == 8 else np.uint16)
    return pixels, (low, high, clipped, chosen)


finite_floats = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=80, deadline=None)
@given(
    values=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12), elements=finite_floats),
    scale=st.sampled_from(["auto", "minmax", "abs", "clip", "percentile", "percentile:90", "percentile:100"]),
    bounds=st.sampled_from([(None, None), (0.25, None), (None, 0.5), (-3.0, 3.0), (0.0, 0.0)]),
    depth=st.sampled_from([8, 16]),
    unit=st.booleans(),
)
def test_to_pixels_matches_the_plain_formula(values, scale, bounds, depth, unit):
    if unit:  # values inside [0, 1], where nothing is clipped and the clip is skipped
        span = float(values.max() - values.min())
        values = ((values - values.min()) / np.float32(span if span > 0 else 1)).astype(np.float32)
    vmin, vmax = bounds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a span below float32's range overflows the factor in both
        expected, (low, high, clipped, chosen) = reference_pixels(values, scale, vmin, vmax, depth)
        if high < low:
            with pytest.raises(ParameterError, match="is below --vmin"):
                to_pixels(values, scale=scale, vmin=vmin, vmax=vmax, depth=depth)
            return
        pixels, mapping = to_pixels(values, scale=scale, vmin=vmin, vmax=vmax, depth=depth)
    np.testing.assert_array_equal(pixels, expected)
    assert (mapping.low, mapping.high, mapping.clipped, mapping.scale) == (low, high, clipped, chosen)


def test_to_pixels_with_a_span_too_small_for_float32():
    # 255 / 1e-38 overflows float32: the scaled values are infinite and only the clip brings them back to 255.
    values = np.array([[-1.1754944e-38, 0.0, 0.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pixels, _ = to_pixels(values)
    assert pixels[0, 1:].tolist() == [255, 255]


def test_to_pixels_with_nan_and_infinity_counts_like_the_formula():
    values = np.array([[np.nan, 0.5, np.inf], [-np.inf, 2.0, -1.0]], np.float32)
    for scale in ("auto", "minmax", "clip", "abs", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns when casting the NaN; its pixel is undefined
            pixels, mapping = to_pixels(values, scale=scale)
            expected, (low, high, clipped, chosen) = reference_pixels(values, scale)
        finite = np.isfinite(values)
        np.testing.assert_array_equal(pixels[finite], expected[finite])
        assert (mapping.low, mapping.high, mapping.clipped, mapping.scale) == (low, high, clipped, chosen)


@pytest.mark.parametrize("method", ["dtype", "max", "none"])
def test_normalize_in_place_gives_the_same_numbers(method):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, size=(30, 40)).astype(np.float32)
    expected = normalize(values.copy(), 255.0, method)
    owned = values.copy()
    result = normalize(owned, 255.0, method, overwrite=True)
    np.testing.assert_array_equal(result, expected)
    if method != "none":
        assert result is owned  # divided in place, no second array
    untouched = values.copy()
    normalize(untouched, 255.0, method)
    np.testing.assert_array_equal(untouched, values)  # without overwrite the input is never changed


@pytest.mark.parametrize("shape", [(31, 17), (31, 17, 3)])
@pytest.mark.parametrize("depth", [8, 16])
def test_png_outputs_hold_the_mapped_pixels(shape, depth):
    rng = np.random.default_rng(depth)
    values = rng.normal(size=shape).astype(np.float32)
    data, _ = encode(values, "png", depth=depth)
    expected = to_pixels(values, depth=depth)[0]
    width, height, rows, info = png.Reader(bytes=data).read()
    decoded = np.vstack([np.asarray(row) for row in rows]).reshape(expected.shape)
    np.testing.assert_array_equal(decoded, expected)
    assert info["bitdepth"] == depth
    if depth == 8:
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), expected)
