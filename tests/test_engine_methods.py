"""Every method on every backend against the naive double loop (and SciPy on large inputs).

Float32 results must agree with the float64 double loop to 1e-5 relative to the
size of the terms summed (``sum|K| * max|X|``), which is what float32 rounding
can promise; float64 results on the NumPy path to 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.engine import METHODS, PAD_MODES, correlate2d, opencv_available, plan_correlation
from convcli.engine.borders import border_map, gather
from convcli.engine.fft import axis_terms
from convcli.errors import ParameterError
from reference import border_index, naive_correlate

MODES = list(PAD_MODES)
COMPUTING = [m for m in METHODS if m != "auto"]


def backends() -> list:
    """NumPy always; OpenCV when importable (CI installs it)."""
    return ["numpy", "opencv"]


def _need(backend: str) -> None:
    if backend == "opencv":
        pytest.importorskip("cv2")
        if not opencv_available():
            pytest.skip("CONVCLI_NO_OPENCV is set")


def kernel_for(method: str, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A kernel the method accepts: rank <= 2 for separable, constant for box, anything otherwise."""
    kh, kw = shape
    if method == "separable":
        terms = 2 if 2 * (kh + kw) < kh * kw and rng.random() < 0.5 else 1
        return sum(np.outer(rng.normal(size=kh), rng.normal(size=kw)) for _ in range(terms))
    if method == "box":
        return np.full(shape, rng.uniform(0.1, 2.0))
    return rng.normal(size=shape)


def expand(padding, kernel, dilation):
    """Padding spec -> ((top, bottom), (left, right)) as the naive reference wants it (PyTorch's 'same')."""
    if padding == "same":
        result = []
        for k, d in zip(kernel.shape, dilation):
            total = d * (k - 1)
            result.append((total // 2, total - total // 2))
        return tuple(result)
    return ((padding[0], padding[0]), (padding[1], padding[1]))


def check(got, x, k, want, dtype):
    assert got.shape == want.shape
    assert got.dtype == dtype
    if dtype == np.float32:
        scale = np.abs(k).sum() * max(1.0, np.abs(x).max())
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@st.composite
def cases(draw):
    kh, kw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    same = stride == (1, 1) and draw(st.booleans())
    pad = (draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    low = (1, 1) if same else (max(1, span[0] - 2 * pad[0]), max(1, span[1] - 2 * pad[1]))
    rows, cols = draw(st.integers(low[0], low[0] + 14)), draw(st.integers(low[1], low[1] + 14))
    mode = draw(st.sampled_from(MODES))
    seed = draw(st.integers(0, 2**32 - 1))
    bias = draw(st.sampled_from([0.0, 0.75]))
    return (rows, cols), (kh, kw), stride, ("same" if same else pad), dilation, mode, seed, bias


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("method", COMPUTING)
@settings(max_examples=60, deadline=None)
@given(case=cases())
def test_float32_matches_naive_double_loop(method, backend, case):
    _need(backend)
    size, kshape, stride, padding, dilation, mode, seed, bias = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=size).astype(np.float32)
    k = kernel_for(method, rng, kshape)
    got = correlate2d(
        x,
        k,
        stride=stride,
        padding=padding,
        dilation=dilation,
        pad_mode=mode,
        pad_value=0.5,
        bias=bias,
        method=method,
        backend=backend,
    )
    want = naive_correlate(x, k, stride, expand(padding, k, dilation), dilation, mode, 0.5, bias)
    check(got, x, k, want, np.float32)


@pytest.mark.parametrize("method", COMPUTING)
@settings(max_examples=40, deadline=None)
@given(case=cases())
def test_float64_matches_naive_double_loop(method, case):
    size, kshape, stride, padding, dilation, mode, seed, bias = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=size)
    k = kernel_for(method, rng, kshape)
    got = correlate2d(
        x, k, stride=stride, padding=padding, dilation=dilation, pad_mode=mode, pad_value=0.5, bias=bias, method=method
    )
    want = naive_correlate(x, k, stride, expand(padding, k, dilation), dilation, mode, 0.5, bias)
    check(got, x, k, want, np.float64)


EDGE_CASES = {
    # name: (image shape, kernel shape, options)
    "kernel as large as the padded input": ((5, 7), (7, 9), dict(padding=(1, 1))),
    "kernel as large as the input, valid": ((6, 6), (6, 6), dict()),
    "1xN kernel": ((9, 12), (1, 7), dict(padding="same")),
    "Nx1 kernel": ((12, 9), (7, 1), dict(padding="same")),
    "1x1 kernel with stride": ((9, 9), (1, 1), dict(stride=(2, 3))),
    "even kernel with same": ((8, 9), (4, 2), dict(padding="same")),
    "even kernel with same and dilation": ((10, 11), (2, 4), dict(padding="same", dilation=(3, 2))),
    "stride larger than the kernel": ((17, 19), (3, 2), dict(stride=(5, 4), padding=(1, 1))),
    "padding wider than the image": ((3, 4), (3, 3), dict(padding=(5, 6))),
    "one-row image": ((1, 9), (1, 3), dict(padding=(2, 1))),
}


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", COMPUTING)
@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases(name, method, mode, backend):
    _need(backend)
    size, kshape, options = EDGE_CASES[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    x = rng.uniform(-1, 1, size=size).astype(np.float32)
    k = kernel_for(method, rng, kshape)
    dilation = options.get("dilation", (1, 1))
    padding = options.get("padding", (0, 0))
    stride = options.get("stride", (1, 1))
    got = correlate2d(x, k, pad_mode=mode, pad_value=-0.25, method=method, backend=backend, **options)
    want = naive_correlate(x, k, stride, expand(padding, k, dilation), dilation, mode, -0.25)
    check(got, x, k, want, np.float32)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize(
    ("method", "kernel"),
    [
        ("direct", np.arange(1.0, 10.0).reshape(3, 3) - 5),
        # Medium kernels: one banded BLAS product per kernel row at stride 1 (polyphase taps when strided).
        ("direct", np.random.default_rng(5).normal(size=(5, 5))),
        ("separable", np.outer([1.0, 4, 6, 4, 1], [1.0, 2, 1])),
        # Long 1-D factors go through BLAS banded products at stride 1 (tap by tap when strided).
        ("separable", np.outer(np.hanning(17)[1:-1], np.linspace(-1.0, 2.0, 21))),
        ("box", np.ones((9, 9)) / 81),
        ("fft", np.arange(1.0, 50.0).reshape(7, 7) % 5 - 2),
    ],
)
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_large_inputs_in_parallel_strips_match_scipy(method, kernel, stride, backend):
    """Inputs big enough for strips, threads and FFT tiles, against scipy.ndimage (an independent library)."""
    _need(backend)
    from scipy import ndimage

    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, size=(601, 1283))
    kh, kw = kernel.shape
    for dtype in (np.float32, np.float64) if backend == "numpy" else (np.float32,):
        got = correlate2d(
            x.astype(dtype),
            kernel,
            padding=(kh // 2, kw // 2),
            pad_mode="reflect",
            stride=stride,
            method=method,
            backend=backend,
        )
        # ndimage 'mirror' is our reflect; for odd kernels its centre is our 'same' anchor.
        want = ndimage.correlate(x, kernel, mode="mirror")[::stride, ::stride]
        check(got, x, kernel, want, dtype)


def test_medium_kernels_take_the_banded_path():
    from convcli.engine.strips import direct_cost
    from convcli.shapes import conv_geometry

    assert direct_cost(
        np.random.default_rng(5).normal(size=(13, 13)), conv_geometry((601, 1283), (13, 13), (1, 1), "same", (1, 1))
    )[1]
    assert not direct_cost(np.ones((3, 3)), conv_geometry((601, 1283), (3, 3), (1, 1), "same", (1, 1)))[1]


def test_blas_threads_are_restored_after_the_banded_path():
    from convcli.engine.strips import separable_cost
    from convcli.parallel import _blas_control
    from convcli.shapes import conv_geometry

    geometry = conv_geometry((256, 256), (21, 21), (1, 1), "same", (1, 1))
    terms = [(np.hanning(23)[1:-1], np.hanning(23)[1:-1])]
    assert separable_cost(terms, geometry)[1], "a 21-tap Gaussian should take the BLAS path"
    control = _blas_control()
    if control is None:
        pytest.skip("NumPy's OpenBLAS not found (another BLAS): the banded path runs unpinned")
    before = control[0]()
    x = np.random.default_rng(2).random((256, 256)).astype(np.float32)
    correlate2d(x, np.outer(*terms[0]), padding="same", method="separable", backend="numpy")
    assert control[0]() == before


def test_backends_agree_on_every_border_for_a_photo_sized_image():
    _need("opencv")
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 1, size=(480, 640)).astype(np.float32)
    for k in (rng.normal(size=(5, 5)), np.outer(rng.normal(size=15), rng.normal(size=15)), rng.normal(size=(13, 13))):
        for mode in MODES:
            a = correlate2d(x, k, padding="same", pad_mode=mode, pad_value=0.3, backend="numpy")
            b = correlate2d(x, k, padding="same", pad_mode=mode, pad_value=0.3, backend="opencv")
            scale = np.abs(k).sum()
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale)


def test_environment_variable_forces_numpy(monkeypatch):
    monkeypatch.setenv("CONVCLI_NO_OPENCV", "1")
    assert not opencv_available()
    assert plan_correlation((64, 64), np.ones((3, 3))).backend == "numpy"
    monkeypatch.delenv("CONVCLI_NO_OPENCV")
    try:
        import cv2  # noqa: F401
    except ImportError:
        assert plan_correlation((64, 64), np.ones((3, 3))).backend == "numpy"
    else:
        big = (1024, 1024)  # auto leaves OpenCV out of small work, imported or not (CV_MIN_OUTPUTS)
        assert plan_correlation(big, np.ones((3, 3))).backend == "opencv"
        assert plan_correlation((64, 64), np.ones((3, 3))).backend == "numpy"
        # float64 work never goes through OpenCV.
        assert plan_correlation(big, np.ones((3, 3)), dtype=np.float64).backend == "numpy"


def test_auto_picks_by_cost_and_says_why(monkeypatch):
    monkeypatch.setenv("CONVCLI_NO_OPENCV", "1")
    rng = np.random.default_rng(0)
    gaussian = np.outer(np.hanning(9)[1:-1], np.hanning(9)[1:-1])
    plan = plan_correlation((1024, 1024), gaussian)
    assert plan.method == "separable"
    assert plan.reason.startswith("separable on numpy: rank-1 7x7 kernel, estimated") and "direct" in plan.reason
    assert plan_correlation((1024, 1024), rng.normal(size=(31, 31))).method == "fft"
    assert plan_correlation((1024, 1024), rng.normal(size=(3, 3))).method == "direct"
    # A difference of two Gaussians is rank 2: on OpenCV two sepFilter2D beat 81 filter2D taps.
    wide = np.outer(np.hanning(11)[1:-1], np.hanning(11)[1:-1])
    narrow = np.zeros((9, 9))
    narrow[2:7, 2:7] = np.outer(np.hanning(7)[1:-1], np.hanning(7)[1:-1])
    assert len(plan_correlation((1024, 1024), wide - narrow).terms) == 2
    monkeypatch.delenv("CONVCLI_NO_OPENCV")
    if opencv_available():
        dog = plan_correlation((1024, 1024), wide - narrow)
        assert (dog.method, dog.backend, len(dog.terms)) == ("separable", "opencv", 2)


def test_method_errors_name_the_kernel():
    with pytest.raises(ParameterError, match="method 'box' needs a kernel whose taps are all equal"):
        plan_correlation((10, 10), np.eye(3), method="box")
    with pytest.raises(ParameterError, match="this 5x5 kernel has rank 5"):
        plan_correlation((10, 10), np.random.default_rng(1).normal(size=(5, 5)), method="separable")
    with pytest.raises(ParameterError, match="unknown backend 'cuda'"):
        plan_correlation((10, 10), np.eye(3), backend="cuda")


@settings(max_examples=100, deadline=None)
@given(st.integers(-30, 30), st.integers(1, 4), st.integers(1, 12), st.integers(1, 9), st.sampled_from(MODES))
def test_gather_reads_the_padded_image_like_the_reference(start, step, count, length, mode):
    image = np.arange(length * 3, dtype=np.float64).reshape(3, length) + 1
    out = np.full((3, count), np.nan)
    gather(image, (0, 1, 3), (start, step, count), mode, -7.0, out)
    for j in range(count):
        source = border_index(start + step * j, length, mode)
        want = image[:, source] if source is not None else (0.0 if mode == "zeros" else -7.0)
        np.testing.assert_array_equal(out[:, j], want)
    mapped = border_map(np.array([start]), length, mode)[0]
    expected = border_index(start, length, mode)
    assert mapped == (-1 if expected is None else expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 7), st.integers(1, 20))
def test_polyphase_terms_cover_every_tap_of_every_output_once(stride, dilation, taps, outputs):
    """Each (output i, tap u) pair appears in exactly one term, reading padded position s*i + d*u."""
    seen = {}
    for term in axis_terms(stride, dilation, taps, outputs):
        for n in range(term.out_count):
            i = term.out_start + term.out_step * n
            for q in range(term.k_count):
                u = term.k_start + term.k_step * q
                assert term.in_start + term.in_step * (n + q) == stride * i + dilation * u
                seen[(i, u)] = seen.get((i, u), 0) + 1
    assert seen == {(i, u): 1 for i in range(outputs) for u in range(taps)}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 0.25, 2.0]), min_size=1, max_size=30))
def test_pass_count_matches_the_grouped_accumulation(weights):
    from convcli.engine.strips import passes, weight_groups

    # one pass per tap after the first of each group, one multiply per group whose weight is not 1,
    # one add of each group into the total (the first group is written, not added)
    total = sum(len(members) - 1 + (weight != 1.0) + 1 for weight, members in weight_groups(weights))
    assert passes(weights) == max(1, total - 1)


# Repeated OpenCV calls: correlate2d caches a prepared call per (shape, kernel, geometry, border, ...).


@pytest.mark.parametrize("mode", MODES)
def test_repeated_opencv_calls_give_the_reference_every_time(mode):
    _need("opencv")
    rng = np.random.default_rng(11)
    x = rng.random((23, 31), dtype=np.float32)
    kernels = [rng.normal(size=(3, 3)), np.outer(rng.normal(size=5), rng.normal(size=5)), np.full((4, 4), 0.5)]
    for kernel in kernels:
        for padding, bias in (("same", 0.0), ((1, 2), 0.25), ((0, 0), 0.0)):
            want = naive_correlate(x, kernel, padding=expand(padding, kernel, (1, 1)), mode=mode, value=0.5, bias=bias)
            for _ in range(3):  # the first call plans and caches, the next ones take the cached call
                got = correlate2d(x, kernel, padding=padding, pad_mode=mode, pad_value=0.5, bias=bias)
                check(got, x, kernel, want, np.float32)


def test_the_call_cache_follows_the_kernel_the_shape_and_the_opencv_switch(monkeypatch):
    _need("opencv")
    from convcli import engine

    rng = np.random.default_rng(12)
    x = rng.random((20, 20), dtype=np.float32)
    kernel = rng.normal(size=(3, 3))
    first = correlate2d(x, kernel, padding=1)
    kernel[1, 1] += 1.0  # the same array, changed in place: a new kernel
    np.testing.assert_allclose(
        correlate2d(x, kernel, padding=1), naive_correlate(x, kernel, padding=((1, 1), (1, 1))), rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(first, correlate2d(x, kernel, padding=1))
    wide = rng.random((20, 27), dtype=np.float32)
    assert correlate2d(wide, kernel, padding=1).shape == (20, 27)
    calls = dict(engine._FAST_CALLS)
    assert calls, "OpenCV float32 calls at stride 1 are cached"
    monkeypatch.setenv("CONVCLI_NO_OPENCV", "1")
    engine._FAST_CALLS.clear()
    correlate2d(x, kernel, padding=1)
    assert not engine._FAST_CALLS, "the NumPy path caches nothing"
    # A cached OpenCV call is never used while OpenCV is switched off (the switch is part of the key).
    engine._FAST_CALLS.update(calls)
    key = engine._fast_key(x, kernel, 1, 1, 1, "zeros", 0.0, "auto", "auto")
    assert key not in engine._FAST_CALLS
