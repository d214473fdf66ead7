"""The engine against hand-computed cases, the naive double loop, SciPy and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from convcli.engine import (
    PAD_MODE_ALIASES,
    PAD_MODES,
    convolve2d,
    correlate2d,
    pad2d,
    plan_correlation,
    rank1_factors,
    resolve_pad_mode,
)
from convcli.errors import ParameterError, ShapeError
from reference import naive_correlate

MODES = list(PAD_MODES)


def test_classic_three_by_three():
    x = np.arange(9.0).reshape(3, 3)
    k = np.array([[0.0, 1.0], [2.0, 3.0]])
    # 0*0 + 1*1 + 3*2 + 4*3 = 19, and so on: written out by hand.
    assert correlate2d(x, k).tolist() == [[19.0, 25.0], [37.0, 43.0]]


def test_classic_edges_and_their_transpose():
    image = np.ones((6, 8))
    image[:, 2:6] = 0
    edges = correlate2d(image, np.array([[1.0, -1.0]]))
    expected_row = [0, 1, 0, 0, 0, -1, 0]
    assert edges.tolist() == [expected_row] * 6
    assert np.array_equal(correlate2d(image.T, np.array([[1.0, -1.0]])), np.zeros((8, 5)))


def test_convolve_flips():
    x = np.arange(9.0).reshape(3, 3)
    # flipped kernel [[3, 2], [1, 0]]: 0*3 + 1*2 + 3*1 + 4*0 = 5... at (0,0): 3*0+2*1+1*3+0*4 = 5
    assert convolve2d(x, np.array([[0.0, 1.0], [2.0, 3.0]]))[0, 0] == 3 * 0 + 2 * 1 + 1 * 3 + 0 * 4


pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@st.composite
def conv_cases(draw, modes=MODES):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = draw(pairs)
    stride = draw(pairs)
    pad = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    rows = draw(st.integers(max(1, span[0] - 2 * pad[0]), 12))
    cols = draw(st.integers(max(1, span[1] - 2 * pad[1]), 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mode = draw(st.sampled_from(modes))
    return rng.normal(size=(rows, cols)), rng.normal(size=(kh, kw)), stride, pad, dilation, mode


@settings(max_examples=150, deadline=None)
@given(conv_cases(), st.sampled_from(["direct", "fft"]), st.floats(-2, 2))
def test_matches_naive_double_loop(case, method, bias):
    x, k, stride, pad, dilation, mode = case
    got = correlate2d(
        x, k, stride=stride, padding=pad, dilation=dilation, pad_mode=mode, pad_value=0.5, bias=bias, method=method
    )
    want = naive_correlate(x, k, stride, ((pad[0], pad[0]), (pad[1], pad[1])), dilation, mode, 0.5, bias)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(conv_cases(), st.integers(0, 2**32 - 1))
def test_separable_method_matches_naive(case, seed):
    x, _, stride, pad, dilation, mode = case
    rng = np.random.default_rng(seed)
    k = np.outer(rng.normal(size=3), rng.normal(size=2))
    if (x.shape[0] + 2 * pad[0] < dilation[0] * 2 + 1) or (x.shape[1] + 2 * pad[1] < dilation[1] + 1):
        return
    got = correlate2d(x, k, stride=stride, padding=pad, dilation=dilation, pad_mode=mode, method="separable")
    want = naive_correlate(x, k, stride, ((pad[0], pad[0]), (pad[1], pad[1])), dilation, mode)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(conv_cases(modes=["zeros", "reflect", "replicate", "circular"]))
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, k, stride, pad, dilation, mode = case
    if mode in ("reflect", "circular") and (pad[0] >= x.shape[0] or pad[1] >= x.shape[1]):
        return  # PyTorch refuses these paddings
    tx = torch.tensor(x)[None, None]
    if mode != "zeros":
        tx = functional.pad(tx, (pad[1], pad[1], pad[0], pad[0]), mode=mode)
        torch_pad = 0
    else:
        torch_pad = pad
    want = functional.conv2d(tx, torch.tensor(k)[None, None], stride=stride, padding=torch_pad, dilation=dilation)
    got = correlate2d(x, k, stride=stride, padding=pad, dilation=dilation, pad_mode=mode)
    np.testing.assert_allclose(got, want[0, 0].numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(6, 12))
def test_same_padding_matches_torch(kh, kw, dh, dw, size):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(kh * 100 + kw * 10 + dh)
    x, k = rng.normal(size=(size, size + 1)), rng.normal(size=(kh, kw))
    want = torch.nn.functional.conv2d(
        torch.tensor(x)[None, None], torch.tensor(k)[None, None], padding="same", dilation=(dh, dw)
    )
    got = correlate2d(x, k, padding="same", dilation=(dh, dw))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want[0, 0].numpy(), rtol=1e-10, atol=1e-10)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 6), st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_convolve_equals_scipy_valid(kh, kw, extra_rows, extra_cols, seed):
    rng = np.random.default_rng(seed)
    x, k = rng.normal(size=(kh + extra_rows, kw + extra_cols)), rng.normal(size=(kh, kw))
    np.testing.assert_allclose(convolve2d(x, k), signal.convolve2d(x, k, mode="valid"), rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_convolve_is_correlate_with_flipped_kernel(case):
    x, k, stride, pad, dilation, mode = case
    options = dict(stride=stride, padding=pad, dilation=dilation, pad_mode=mode)
    np.testing.assert_array_equal(convolve2d(x, k, **options), correlate2d(x, k[::-1, ::-1].copy(), **options))


@settings(max_examples=60, deadline=None)
@given(conv_cases(modes=MODES), st.floats(-3, 3), st.floats(-3, 3))
def test_linear_in_image_and_kernel(case, a, b):
    x, k, stride, pad, dilation, mode = case
    rng = np.random.default_rng(1)
    y, k2 = rng.normal(size=x.shape), rng.normal(size=k.shape)
    options = dict(stride=stride, padding=pad, dilation=dilation, pad_mode=mode)
    np.testing.assert_allclose(
        correlate2d(a * x + b * y, k, **options),
        a * correlate2d(x, k, **options) + b * correlate2d(y, k, **options),
        rtol=1e-9,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        correlate2d(x, a * k + b * k2, **options),
        a * correlate2d(x, k, **options) + b * correlate2d(x, k2, **options),
        rtol=1e-9,
        atol=1e-9,
    )


def test_float32_stays_float32_and_agrees():
    rng = np.random.default_rng(3)
    x = rng.random((40, 50)).astype(np.float32)
    k = rng.normal(size=(5, 5))
    got = correlate2d(x, k)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, naive_correlate(x, k), rtol=1e-5, atol=1e-5)


def test_pad_modes_and_aliases_agree_with_numpy_and_scipy_names():
    x = np.arange(12.0).reshape(3, 4)
    pads = ((2, 2), (2, 2))
    assert np.array_equal(pad2d(x, pads, "reflect"), np.pad(x, pads, mode="reflect"))
    assert np.array_equal(pad2d(x, pads, "symmetric"), np.pad(x, pads, mode="symmetric"))
    assert np.array_equal(pad2d(x, pads, "replicate"), np.pad(x, pads, mode="edge"))
    assert np.array_equal(pad2d(x, pads, "circular"), np.pad(x, pads, mode="wrap"))
    assert np.array_equal(pad2d(x, pads, "constant", 7.0), np.pad(x, pads, constant_values=7.0))
    # SciPy's names: its 'mirror' is our reflect, its 'reflect' is our symmetric (so 'reflect' is NOT a SciPy alias).
    from scipy import ndimage

    k = np.zeros((5, 5))
    k[0, 0] = 1.0  # picks the padded value two up and two left of each pixel
    for ours, scipy_mode in (
        ("reflect", "mirror"),
        ("symmetric", "reflect"),
        ("replicate", "nearest"),
        ("circular", "wrap"),
    ):
        got = correlate2d(x, k, padding=2, pad_mode=ours)
        want = ndimage.correlate(x, k, mode=scipy_mode)
        np.testing.assert_array_equal(got, want)
    for alias, canonical in PAD_MODE_ALIASES.items():
        assert resolve_pad_mode(alias.upper()) == canonical


def test_unknown_pad_mode_lists_choices():
    with pytest.raises(ParameterError, match="unknown pad mode 'mirrored'; use one of zeros, constant"):
        resolve_pad_mode("mirrored")


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "circular"])
def test_padding_wider_than_the_image_repeats_the_pattern(mode):
    x = np.arange(6.0).reshape(2, 3)
    got = correlate2d(x, np.ones((1, 1)), padding=5, pad_mode=mode)
    want = naive_correlate(x, np.ones((1, 1)), padding=((5, 5), (5, 5)), mode=mode)
    np.testing.assert_array_equal(got, want)


def test_rank1_factors_exact_for_integer_kernels():
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    column, row = rank1_factors(sobel)
    assert np.array_equal(np.outer(column, row), sobel)
    assert rank1_factors(np.array([[1.0, 2], [3, 4]])) is None
    assert rank1_factors(np.zeros((3, 3))) is None


def test_auto_method_choice_and_reasons():
    rng = np.random.default_rng(0)
    assert plan_correlation((100, 100), rng.normal(size=(3, 3))).method == "direct"  # rank 3: no cheaper form
    assert plan_correlation((100, 100), np.ones((9, 9))).method == "separable"
    assert plan_correlation((100, 100), rng.normal(size=(15, 15))).method == "fft"
    with pytest.raises(ParameterError, match="rank-1"):
        plan_correlation((100, 100), rng.normal(size=(3, 3)), method="separable")


def test_errors_name_the_problem():
    x = np.zeros((5, 5))
    with pytest.raises(ShapeError, match="kernel 7 is larger than the padded input 5"):
        correlate2d(x, np.ones((7, 7)))
    with pytest.raises(ShapeError, match="with dilation 3 spans 7"):
        correlate2d(x, np.ones((3, 3)), dilation=3)
    with pytest.raises(ShapeError, match="'same' needs stride 1"):
        correlate2d(x, np.ones((3, 3)), padding="same", stride=2)
    with pytest.raises(ParameterError, match="stride 0x0 must be at least 1"):
        correlate2d(x, np.ones((3, 3)), stride=0)


def test_inputs_are_not_mutated():
    x = np.arange(20.0).reshape(4, 5)
    before = x.copy()
    correlate2d(x, np.ones((2, 2)), padding=1, pad_mode="reflect")
    assert np.array_equal(x, before)
