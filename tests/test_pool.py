"""convcli.pooling against hand-computed cases, a naive double loop and PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import ParameterError, ShapeError
from convcli.pooling import pool2d, pool_geometry
from convcli.shapes import pool_output_length

# ---------------------------------------------------------------------------
# An independent reference: one window at a time, straight from the definitions.


def _window_starts(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> list[int]:
    """Window starts in input coordinates (may be negative: inside the left padding)."""
    span = d * (k - 1) + 1
    starts = []
    i = 0
    while True:
        start = i * s  # in padded coordinates
        # floor: the window fits the padded input. ceil: the window one stride back had not reached the
        # padded end, and this one starts inside the input or the left padding.
        fits = start + span <= n + 2 * p
        keep = ((i - 1) * s + span < n + 2 * p and start < n + p) if ceil_mode else fits
        if not keep:
            break
        starts.append(start - p)
        i += 1
    if not starts:
        raise ShapeError("no window")
    return starts


def naive_pool(x, op, k, s, p, d, ceil_mode, count_include_pad):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    rows = _window_starts(x.shape[0], kh, sh, ph, dh, ceil_mode)
    cols = _window_starts(x.shape[1], kw, sw, pw, dw, ceil_mode)
    out = np.empty((len(rows), len(cols)))
    for i, r0 in enumerate(rows):
        for j, c0 in enumerate(cols):
            values = []
            for u in range(kh):
                for v in range(kw):
                    r, c = r0 + u * dh, c0 + v * dw
                    if 0 <= r < x.shape[0] and 0 <= c < x.shape[1]:
                        values.append(x[r, c])
            if op == "max":
                out[i, j] = max(values) if values else -math.inf
            elif op == "min":
                out[i, j] = min(values) if values else math.inf
            else:
                if count_include_pad:
                    # window positions inside the padded input (never the part past the right padding)
                    h = sum(1 for u in range(kh) if -ph <= r0 + u < x.shape[0] + ph)
                    w = sum(1 for v in range(kw) if -pw <= c0 + v < x.shape[1] + pw)
                    divisor = h * w
                else:
                    divisor = len(values)
                out[i, j] = sum(values) / divisor
    return out


# ---------------------------------------------------------------------------
# Hand-computed cases


def test_max_mean_min_on_a_4x4_ramp():
    x = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(pool2d(x, "max", size=2), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(pool2d(x, "min", size=2), [[0, 2], [8, 10]])
    np.testing.assert_array_equal(pool2d(x, "mean", size=2), [[2.5, 4.5], [10.5, 12.5]])
    # stride 1: 3x3 outputs; the max of each 2x2 window is its bottom-right value
    np.testing.assert_array_equal(pool2d(x, "max", size=2, stride=1), [[5, 6, 7], [9, 10, 11], [13, 14, 15]])


def test_stride_defaults_to_the_size():
    x = np.arange(36.0).reshape(6, 6)
    np.testing.assert_array_equal(pool2d(x, "max", size=3), pool2d(x, "max", size=3, stride=3))
    assert pool2d(x, "max", size=(3, 2)).shape == (2, 3)


def test_mean_divisor_at_the_edges_with_ceil_mode():
    # 1-D row [1..6], window 3, stride 2, padding 1, ceil_mode: padded [0, 1..6, 0] gives four windows,
    # the last one [6, pad, past-the-padding]: its past-the-padding element is never counted.
    x = np.arange(1.0, 7.0).reshape(1, 6)
    options = dict(size=(1, 3), stride=(1, 2), padding=(0, 1), ceil_mode=True)
    np.testing.assert_allclose(pool2d(x, "mean", **options), [[3 / 3, 9 / 3, 15 / 3, 6 / 2]])
    np.testing.assert_allclose(pool2d(x, "mean", count_include_pad=False, **options), [[3 / 2, 9 / 3, 15 / 3, 6 / 1]])
    np.testing.assert_allclose(pool2d(x, "max", **options), [[2, 4, 6, 6]])
    np.testing.assert_allclose(pool2d(x, "min", **options), [[1, 2, 4, 6]])
    # without ceil_mode only three windows fit
    assert pool2d(x, "mean", size=(1, 3), stride=(1, 2), padding=(0, 1)).shape == (1, 3)


def test_a_ceil_mode_window_longer_than_the_input():
    # PyTorch keeps one window of 2 on a 1x1 input with ceil_mode; its second cell is past the (zero) padding
    x = np.array([[5.0]])
    for op in ("max", "mean", "min"):
        np.testing.assert_array_equal(pool2d(x, op, size=2, ceil_mode=True), [[5.0]])
    with pytest.raises(ShapeError, match="pooling window 2 is larger than the padded input 1"):
        pool2d(x, "max", size=2)


def test_max_padding_never_wins_and_min_padding_never_wins():
    x = -np.ones((2, 2))
    np.testing.assert_array_equal(pool2d(x, "max", size=2, stride=1, padding=1), -np.ones((3, 3)))
    np.testing.assert_array_equal(pool2d(-x, "min", size=2, stride=1, padding=1), np.ones((3, 3)))
    # mean pads with zeros: the corner window holds one -1 and three zeros
    assert pool2d(x, "mean", size=2, stride=1, padding=1)[0, 0] == -0.25
    assert pool2d(x, "mean", size=2, stride=1, padding=1, count_include_pad=False)[0, 0] == -1


def test_dilated_max():
    x = np.arange(25.0).reshape(5, 5)
    # taps at rows/cols 0, 2, 4 with stride 1 -> one window
    np.testing.assert_array_equal(pool2d(x, "max", size=3, stride=1, dilation=2), [[24]])
    np.testing.assert_array_equal(
        pool2d(x, "min", size=2, stride=1, dilation=(1, 3)), [[0, 1], [5, 6], [10, 11], [15, 16]]
    )


def test_dtypes():
    x32 = np.arange(16, dtype=np.float32).reshape(4, 4)
    for op in ("max", "mean", "min"):
        assert pool2d(x32, op, size=2).dtype == np.float32
        assert pool2d(x32.astype(np.uint8), op, size=2).dtype == np.float64
    assert pool2d(np.arange(4).reshape(2, 2), "mean", size=2)[0, 0] == 1.5


def test_input_is_not_modified():
    x = np.arange(16.0).reshape(4, 4)
    before = x.copy()
    pool2d(x, "min", size=3, padding=1, ceil_mode=True)
    np.testing.assert_array_equal(x, before)


def test_uncovered_rows():
    geometry = pool_geometry((5, 4), 2)
    assert geometry.output == (2, 2)
    assert geometry.uncovered() == (1, 0)
    assert pool_geometry((5, 4), 2, ceil_mode=True).uncovered() == (0, 0)


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        (dict(op="median"), ParameterError, "unknown pooling op 'median'"),
        (dict(op="mean", dilation=2), ParameterError, "mean pooling has no dilation"),
        (dict(padding=2, size=3), ShapeError, "pooling padding 2 is more than half the kernel size 3"),
        (dict(size=5), ShapeError, "pooling window 5 is larger than the padded input 4"),
        (dict(size=0), ParameterError, "pool size 0x0 must be at least 1"),
        (dict(stride=0), ParameterError, "stride 0x0 must be at least 1"),
        (dict(padding=-1), ParameterError, "padding -1x-1 must be at least 0"),
    ],
)
def test_errors(kwargs, error, text):
    options = dict(op="max", size=2)
    options.update(kwargs)
    op = options.pop("op")
    with pytest.raises(error, match=text):
        pool2d(np.zeros((4, 4)), op, **options)


def test_three_dimensional_input_is_refused():
    with pytest.raises(ParameterError, match="2-D"):
        pool2d(np.zeros((4, 4, 3)), "max", size=2)


# ---------------------------------------------------------------------------
# Properties


@st.composite
def pool_cases(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    shape = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).normal(size=shape)
    return x, k, stride, padding, d, draw(st.booleans()), draw(st.booleans())


def _run(function, *args, **kwargs):
    """The result, or the exception type for a refused combination."""
    try:
        return function(*args, **kwargs)
    except (ShapeError, RuntimeError) as exc:
        return type(exc)


@settings(max_examples=100, deadline=None)
@given(pool_cases(), st.sampled_from(["max", "mean", "min"]))
def test_matches_naive_loop(case, op):
    x, k, stride, padding, d, ceil_mode, include = case
    if op == "mean":
        d = (1, 1)
    s = stride or k
    expected = _run(naive_pool, x, op, k, s, padding, d, ceil_mode, include)
    got = _run(
        pool2d,
        x,
        op,
        size=k,
        stride=stride,
        padding=padding,
        dilation=d,
        ceil_mode=ceil_mode,
        count_include_pad=include,
    )
    if isinstance(expected, type):
        assert got is ShapeError
        return
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert got.shape == tuple(pool_output_length(x.shape[a], k[a], s[a], padding[a], d[a], ceil_mode) for a in range(2))


@settings(max_examples=100, deadline=None)
@given(pool_cases())
def test_max_and_min_match_torch(case):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, k, stride, padding, d, ceil_mode, _ = case
    t = torch.from_numpy(x)[None, None]
    expected = _run(lambda: functional.max_pool2d(t, k, stride, padding, d, ceil_mode=ceil_mode).numpy()[0, 0])
    got = _run(pool2d, x, "max", size=k, stride=stride, padding=padding, dilation=d, ceil_mode=ceil_mode)
    if isinstance(expected, type):
        assert got is ShapeError
        return
    np.testing.assert_array_equal(got, expected)
    minimum = -functional.max_pool2d(-t, k, stride, padding, d, ceil_mode=ceil_mode).numpy()[0, 0]
    np.testing.assert_array_equal(
        pool2d(x, "min", size=k, stride=stride, padding=padding, dilation=d, ceil_mode=ceil_mode), minimum
    )


@settings(max_examples=100, deadline=None)
@given(pool_cases(dilation=False))
def test_mean_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, k, stride, padding, _, ceil_mode, include = case
    t = torch.from_numpy(x)[None, None]
    expected = _run(
        lambda: torch.nn.functional.avg_pool2d(
            t, k, stride, padding, ceil_mode=ceil_mode, count_include_pad=include
        ).numpy()[0, 0]
    )
    got = _run(
        pool2d, x, "mean", size=k, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=include
    )
    if isinstance(expected, type):
        assert got is ShapeError
        return
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


def test_every_small_geometry_agrees_with_torch_on_shapes():
    """Exhaustive over small 1-D geometries: same output length, and refused exactly when PyTorch refuses."""
    torch = pytest.importorskip("torch")
    for n in range(1, 8):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 2):
                    for d in range(1, 3):
                        for ceil_mode in (False, True):
                            t = torch.zeros(1, 1, n, 1, dtype=torch.float64)
                            expected = _run(
                                lambda: torch.nn.functional.max_pool2d(
                                    t, (k, 1), (s, 1), (p, 0), (d, 1), ceil_mode=ceil_mode
                                ).shape[2]
                            )
                            got = _run(pool_output_length, n, k, s, p, d, ceil_mode)
                            expected = ShapeError if expected is RuntimeError else expected
                            assert got == expected, (n, k, s, p, d, ceil_mode)


@settings(max_examples=60, deadline=None)
@given(pool_cases(dilation=False))
def test_bounds(case):
    x, k, stride, padding, _, ceil_mode, _ = case
    options = dict(size=k, stride=stride, padding=padding, ceil_mode=ceil_mode)
    try:
        high = pool2d(x, "max", **options)
    except ShapeError:
        return
    low = pool2d(x, "min", **options)
    mean = pool2d(x, "mean", count_include_pad=False, **options)
    assert np.all(low <= mean + 1e-12)
    assert np.all(mean <= high + 1e-12)
    assert x.min() <= low.min() and high.max() <= x.max()
