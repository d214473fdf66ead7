"""The float -> pixel mapping done in chunks on threads (issue 19, item 4) gives the whole-array result exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcli.io import pixels


def reference(values: np.ndarray, low: float, high: float, depth: int) -> tuple[np.ndarray, int]:
    """The mapping as one whole-array float32 expression: rint(clip((v - low) * white / span)), and the clip count."""
    white = (1 << depth) - 1
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(white / (high - low))
    changed = int(np.count_nonzero((scaled < -0.5) | (scaled >= white + 0.5)))
    return np.rint(np.clip(scaled, 0, white)).astype(np.uint8 if depth == 8 else np.uint16), changed


@pytest.fixture(params=[5, 64, 1 << 18])
def chunk(request, monkeypatch):
    """Chunks of 5 and 64 elements (many chunks, on threads) and the real size."""
    monkeypatch.setattr(pixels, "_CHUNK", request.param)
    return request.param


@settings(max_examples=40, deadline=None)
@given(
    values=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=40),
        elements=st.floats(-3, 3, width=32),
    ),
    window=st.sampled_from([(None, None), (0.0, 1.0), (-0.5, 0.25)]),
    depth=st.sampled_from([8, 16]),
)
def test_chunked_mapping_equals_the_whole_array_expression(values, window, depth):
    for size in (5, 64):
        pixels._CHUNK = size
        try:
            got, mapping = pixels.to_pixels(values, scale="minmax", vmin=window[0], vmax=window[1], depth=depth)
        finally:
            pixels._CHUNK = 1 << 18
        low = float(values.min()) if window[0] is None else window[0]
        high = float(values.max()) if window[1] is None else window[1]
        assert (mapping.low, mapping.high) == (low, high)
        if high > low and (1 << depth) - 1 <= (high - low) * float(np.finfo(np.float32).max):
            # (a span below float32's range, where the factor overflows: test_e2e_fastpaths covers it)
            want, changed = reference(values, low, high, depth)
            np.testing.assert_array_equal(got, want)
            assert mapping.clipped == changed


def test_extremes_across_chunks_and_nan(chunk):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(301, 257)).astype(np.float32)
    assert pixels.extremes(values) == (float(values.min()), float(values.max()), None)
    signs = (int(np.count_nonzero(values < 0)), int(np.count_nonzero(values > 0)))
    assert pixels.extremes(values, signs=True) == (float(values.min()), float(values.max()), signs)
    values[150, 3] = np.nan
    low, high, _ = pixels.extremes(values)
    assert np.isnan(low) and np.isnan(high)  # as NumPy's own min and max: to_pixels then takes the finite ones


@pytest.mark.parametrize("zeros", [0, 5000])
def test_the_sign_counts_of_the_extremes_read_are_the_statistics_counts(chunk, zeros):
    # The centred test of auto and percentile reads these counts; counted in the chunks, they must be the same.
    values = np.random.default_rng(4).normal(size=(301, 257)).astype(np.float32)
    values.reshape(-1)[:zeros] = 0
    fused = pixels._ArrayStats(values, signs=True)
    lazy = pixels._ArrayStats(values)
    assert (fused.negative, fused.positive) == (lazy.negative, lazy.positive)
    assert lazy.negative == int(np.count_nonzero(values < 0)) and lazy.positive == int(np.count_nonzero(values > 0))
    values[7, 7] = np.inf  # not all finite: the counts are of the finite values, as before
    with_inf = pixels._ArrayStats(values, signs=True)
    assert with_inf.positive == int(np.count_nonzero(np.isfinite(values) & (values > 0)))


def test_a_photo_sized_result_is_the_same_in_chunks(chunk):
    values = np.random.default_rng(2).normal(0.5, 0.3, (300, 451, 3)).astype(np.float32)
    got, mapping = pixels.to_pixels(values)  # auto: minmax here (values outside [0, 1])
    want, changed = reference(values, float(values.min()), float(values.max()), 8)
    np.testing.assert_array_equal(got, want)
    assert dataclasses.astuple(mapping)[2] == changed == 0
    clipped, record = pixels.to_pixels(values, vmin=0.0, vmax=1.0)
    want, changed = reference(values, 0.0, 1.0, 8)
    np.testing.assert_array_equal(clipped, want)
    assert record.clipped == changed > 0


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 700_000),
    kind=st.sampled_from(["normal", "ties", "constant", "signed-skew", "tiny-tail"]),
    which=st.sampled_from(["high", "low", "abs"]),
    percentile=st.sampled_from([0.0, 0.5, 50.0, 97.5, 99.5, 99.9, 100.0]),
    seed=st.integers(0, 2**16),
)
def test_tail_value_is_the_partitioned_value(size, kind, which, percentile, seed):
    # The sampled bound is only a shortcut: the value is np.partition's, whatever the data (ties at the bound,
    # a constant image, a tail the sample misses, ranks at the very ends).
    from convcli.io.pixels import nearest_rank, tail_value

    rng = np.random.default_rng(seed)
    values = {
        "normal": lambda: rng.standard_normal(size),
        "ties": lambda: rng.integers(-3, 4, size).astype(float),
        "constant": lambda: np.full(size, 0.25),
        "signed-skew": lambda: rng.exponential(size=size) - 0.2,
        "tiny-tail": lambda: np.where(rng.random(size) < 1e-4, 1e6, rng.random(size)),
    }[kind]().astype(np.float32)
    rank = nearest_rank(size, 100 - percentile if which == "low" else percentile)
    reference = np.abs(values) if which == "abs" else values
    assert tail_value(values, rank, which) == np.partition(reference, rank - 1)[rank - 1]


def test_extremes_of_a_view_with_gaps_between_rows_are_numpys(chunk):
    # OpenCV's results are cropped views: read by blocks of rows, without a copy, the same ends and counts.
    whole = np.random.default_rng(5).normal(size=(120, 90)).astype(np.float32)
    view = whole[3:110, 2:80]
    assert not view.flags.c_contiguous
    signs = (int(np.count_nonzero(view < 0)), int(np.count_nonzero(view > 0)))
    assert pixels.extremes(view, signs=True) == (float(view.min()), float(view.max()), signs)
    whole[50, 40] = np.inf
    assert pixels.extremes(view)[1] == np.inf
    whole[60, 41] = np.nan
    assert all(np.isnan(end) for end in pixels.extremes(view)[:2])


def test_a_non_finite_result_is_refused_from_its_extremes(chunk):
    from convcli.api.checks import check_finite_result
    from convcli.limits import LimitError

    result = np.zeros((40, 30), np.float32)
    assert check_finite_result(result[:, 1:], "filtering", "fix") is not None
    for bad in (np.inf, -np.inf, np.nan):
        result[17, 9] = bad
        with pytest.raises(LimitError, match="1 output value is beyond"):
            check_finite_result(result[:, 1:], "filtering", "fix")
