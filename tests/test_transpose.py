"""convcli.transpose: hand cases, a naive scatter loop, PyTorch, the adjoint property, upsampling kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.engine import correlate2d
from convcli.errors import KernelError, ParameterError, ShapeError
from convcli.kernels import bilinear_kernel, nearest_kernel, parse_kernel_spec
from convcli.shapes import transpose_output_length
from convcli.transpose import (
    conv_transpose2d,
    output_padding_for,
    reachable_lengths,
    transpose_geometry,
)


def naive_transpose(x, w, s, p, op, d, bias=0.0):
    """Every input pixel scatters the kernel; then crop padding and add output padding, one element at a time."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = s, p, op, d
    kh, kw = w.shape
    height = (x.shape[0] - 1) * sh + dh * (kh - 1) + 1
    width = (x.shape[1] - 1) * sw + dw * (kw - 1) + 1
    full = {}
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for u in range(kh):
                for v in range(kw):
                    key = (i * sh + u * dh, j * sw + v * dw)
                    full[key] = full.get(key, 0.0) + x[i, j] * w[u, v]
    out_h, out_w = height - 2 * ph + oph, width - 2 * pw + opw
    if out_h < 1 or out_w < 1:
        raise ShapeError("empty")
    out = np.full((out_h, out_w), bias)
    for r in range(out_h):
        for c in range(out_w):
            out[r, c] += full.get((r + ph, c + pw), 0.0)
    return out


# ---------------------------------------------------------------------------
# Hand-computed cases


def test_each_pixel_scatters_the_kernel():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    ones = np.ones((2, 2))
    np.testing.assert_array_equal(conv_transpose2d(x, ones), [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    # stride = kernel size: the blocks do not overlap (a Kronecker product); the kernel is not flipped
    k = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(conv_transpose2d(x, k, stride=2), np.kron(x, k))


def test_padding_crops_and_output_padding_extends():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    full = conv_transpose2d(x, np.ones((2, 2)))
    np.testing.assert_array_equal(conv_transpose2d(x, np.ones((2, 2)), padding=1), full[1:-1, 1:-1])
    extended = conv_transpose2d(x, np.ones((2, 2)), stride=2, output_padding=(1, 0), bias=0.5)
    assert extended.shape == (5, 4)
    np.testing.assert_array_equal(extended[:4], np.kron(x, np.ones((2, 2))) + 0.5)
    np.testing.assert_array_equal(extended[4], [0.5] * 4)  # the added row gets only the bias


def test_dilation_spreads_the_taps():
    out = conv_transpose2d(np.array([[1.0]]), np.array([[1.0, 2.0]]), dilation=3)
    np.testing.assert_array_equal(out, [[1, 0, 0, 2]])


def test_dtypes_and_input_untouched():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    before = x.copy()
    assert conv_transpose2d(x, np.ones((2, 2)), stride=2).dtype == np.float32
    assert conv_transpose2d(x.astype(np.int64), np.ones((2, 2))).dtype == np.float64
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        (dict(output_padding=2, stride=2), ShapeError, "output padding 2 must be smaller than the stride"),
        (dict(padding=3), ShapeError, "gives output size -3; reduce the padding"),
        (dict(stride=0), ParameterError, "stride 0x0 must be at least 1"),
        (dict(padding=-1), ParameterError, "padding -1x-1 must be at least 0"),
    ],
)
def test_errors(kwargs, error, text):
    with pytest.raises(error, match=text):
        conv_transpose2d(np.ones((2, 2)), np.ones((2, 2)), **kwargs)


def test_bad_arrays():
    with pytest.raises(ParameterError, match="2-D"):
        conv_transpose2d(np.ones((2, 2, 3)), np.ones((2, 2)))
    with pytest.raises(KernelError, match="non-empty 2-D"):
        conv_transpose2d(np.ones((2, 2)), np.ones((0, 2)))


# ---------------------------------------------------------------------------
# Output size from --output-size


def test_output_padding_for_a_requested_size():
    assert output_padding_for((300, 200), (4, 4), (600, 400), stride=2, padding=1) == (0, 0)
    assert output_padding_for((300, 200), (4, 4), (601, 400), stride=2, padding=1) == (1, 0)
    # dilation also allows output padding (PyTorch: smaller than the stride OR the dilation)
    # base size (3-1)*1 + 3*(2-1) + 1 = 6
    assert output_padding_for((3, 3), (2, 2), (8, 7), stride=1, dilation=3) == (2, 1)


def test_unreachable_size_lists_the_reachable_ones():
    with pytest.raises(ShapeError) as info:
        output_padding_for((300, 200), (4, 4), (600, 400), stride=2)
    text = str(info.value)
    assert "output size 600x400 cannot be reached from 300x200" in text
    assert "reachable heights 602..603, widths 402..403" in text
    assert "\n" not in text


def test_reachable_lengths_match_torch():
    torch = pytest.importorskip("torch")
    for n in range(1, 5):
        for k in range(1, 4):
            for s in range(1, 4):
                for p in range(0, 3):
                    for d in range(1, 3):
                        accepted = {}
                        for op in range(4):
                            try:
                                out = torch.nn.functional.conv_transpose2d(
                                    torch.zeros(1, 1, n, 1),
                                    torch.zeros(1, 1, k, 1),
                                    stride=(s, 1),
                                    padding=(p, 0),
                                    output_padding=(op, 0),
                                    dilation=(d, 1),
                                )
                            except RuntimeError:
                                continue
                            accepted[out.shape[2]] = op
                        assert reachable_lengths(n, k, s, p, d) == accepted, (n, k, s, p, d)


# ---------------------------------------------------------------------------
# Properties


@st.composite
def transpose_cases(draw):
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    op = (draw(st.integers(0, max(s[0], d[0]) - 1)), draw(st.integers(0, max(s[1], d[1]) - 1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.normal(size=shape), rng.normal(size=kernel), s, p, op, d


def _run(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except (ShapeError, RuntimeError) as exc:
        return type(exc)


@settings(max_examples=100, deadline=None)
@given(transpose_cases(), st.floats(-2, 2))
def test_matches_naive_scatter(case, bias):
    x, w, s, p, op, d = case
    expected = _run(naive_transpose, x, w, s, p, op, d, bias)
    got = _run(conv_transpose2d, x, w, stride=s, padding=p, output_padding=op, dilation=d, bias=bias)
    if isinstance(expected, type):
        assert got is ShapeError
        return
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    expected_shape = tuple(transpose_output_length(x.shape[a], w.shape[a], s[a], p[a], d[a], op[a]) for a in range(2))
    assert got.shape == expected_shape


@settings(max_examples=100, deadline=None)
@given(transpose_cases())
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, w, s, p, op, d = case
    expected = _run(
        lambda: torch.nn.functional.conv_transpose2d(
            torch.from_numpy(x)[None, None],
            torch.from_numpy(w)[None, None],
            stride=s,
            padding=p,
            output_padding=op,
            dilation=d,
        ).numpy()[0, 0]
    )
    got = _run(conv_transpose2d, x, w, stride=s, padding=p, output_padding=op, dilation=d)
    if isinstance(expected, type):
        assert got is ShapeError
        return
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(transpose_cases(), st.integers(0, 2**32 - 1))
def test_adjoint_of_correlate(case, seed):
    """<correlate2d(x, w), y> == <conv_transpose2d(y, w), x> with the same stride, padding and dilation."""
    x, w, s, p, _, d = case
    try:
        forward = correlate2d(x, w, stride=s, padding=p, dilation=d)
    except ShapeError:
        return
    y = np.random.default_rng(seed).normal(size=forward.shape)
    extra = output_padding_for(y.shape, w.shape, x.shape, stride=s, padding=p, dilation=d)
    backward = conv_transpose2d(y, w, stride=s, padding=p, output_padding=extra, dilation=d)
    assert backward.shape == x.shape
    left = float(np.sum(forward * y))
    right = float(np.sum(backward * x))
    assert left == pytest.approx(right, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------------------
# Upsampling kernels


def fcn_upsample_filter(size):
    """The bilinear filter as written for FCN initialisation (shelhamer/fcn.berkeleyvision.org surgery.py)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 5, 8])
def test_bilinear_kernel_is_the_fcn_filter(factor):
    kernel = bilinear_kernel(factor)
    assert kernel.shape == (2 * factor - factor % 2,) * 2
    np.testing.assert_allclose(kernel, fcn_upsample_filter(2 * factor - factor % 2), rtol=0, atol=1e-15)


def test_bilinear_kernel_by_hand():
    np.testing.assert_allclose(bilinear_kernel(2), np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))
    np.testing.assert_allclose(bilinear_kernel((3, 1)), np.array([[1 / 3], [2 / 3], [1], [2 / 3], [1 / 3]]))


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bilinear_upsampling_equals_interpolation_inside(factor):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(factor).random((7, 9))
    up = conv_transpose2d(x, bilinear_kernel(factor), stride=factor, padding=factor // 2)
    assert up.shape == (7 * factor, 9 * factor)
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(x)[None, None], scale_factor=factor, mode="bilinear", align_corners=False
    ).numpy()[0, 0]
    inner = slice(factor, -factor)
    np.testing.assert_allclose(up[inner, inner], reference[inner, inner], rtol=0, atol=1e-12)


def test_nearest_upsampling_repeats_pixels():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(
        conv_transpose2d(x, nearest_kernel((2, 3)), stride=(2, 3)), np.repeat(np.repeat(x, 2, axis=0), 3, axis=1)
    )


def test_upsampling_kernel_specs():
    assert parse_kernel_spec("bilinear").shape == (4, 4)
    assert parse_kernel_spec("bilinear:3x2").shape == (5, 4)
    np.testing.assert_array_equal(parse_kernel_spec("nearest").weights, np.ones((2, 2)))
    assert parse_kernel_spec("nearest:4x1").shape == (4, 1)
    assert parse_kernel_spec("bilinear:3").name == "bilinear-3"


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("bilinear:0", "bilinear factor '0' is out of range; use 1 to 256"),
        ("nearest:300", "nearest factor '300' is out of range; use 1 to 256"),
        ("bilinear:two", "bilinear factor 'two' is not N or HxW"),
        ("nearest:2:3", "too many parameters"),
    ],
)
def test_upsampling_kernel_spec_errors(spec, text):
    with pytest.raises(KernelError, match=text):
        parse_kernel_spec(spec)


def test_geometry_record():
    geometry = transpose_geometry((4, 3), (3, 3), stride=2, padding=1, output_padding=(1, 0))
    assert geometry.output == (8, 5)
    assert geometry.output_padding == (1, 0)
