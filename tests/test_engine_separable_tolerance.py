"""Separability at the precision the work runs at (issue 19, item 1).

A kernel read from a file carries the digits the file had: a 15x15 Gaussian written with 12
significant digits is rank 1 to about 1e-12, not exactly. At float32 the plan must take the
separable path as it does for the named kernel; the result must stay within float32 accuracy of the
exact correlation (SciPy in float64), with a bound derived from the float32 unit roundoff, for
kernels just inside and just outside the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from convcli.engine import correlate2d, plan_correlation, separable_terms
from convcli.engine.plan import SEPARABLE_RTOL, separable_rtol
from convcli.kernels import parse_kernel_spec

U32 = 2.0**-24  # float32 unit roundoff
RTOL32 = SEPARABLE_RTOL["float32"]


def written(kernel: np.ndarray, digits: int = 12) -> np.ndarray:
    """The kernel as a text file with ``digits`` significant digits gives it back."""
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"))(kernel)


def near_rank1(k: int, relative: float, seed: int) -> np.ndarray:
    """``outer(a, b) + relative * outer(c, d)``, unit vectors with c orthogonal to a and d to b.

    Singular values 1 and ``relative``: the rank-1 residual is ``relative / sqrt(1 + relative**2)`` of the norm.
    """
    rng = np.random.default_rng(seed)
    q1, _ = np.linalg.qr(rng.standard_normal((k, 2)))
    q2, _ = np.linalg.qr(rng.standard_normal((k, 2)))
    return np.outer(q1[:, 0], q2[:, 0]) + relative * np.outer(q1[:, 1], q2[:, 1])


def float32_bound(x: np.ndarray, kernel: np.ndarray, truncated: float) -> np.ndarray:
    """Per-output bound on |float32 result - exact|: the dropped residual plus float32 rounding.

    Truncation: ``|<K - K_r, P>| <= ||K - K_r||_F ||P||_F`` (Cauchy-Schwarz over the window P).
    Rounding: the weights cast to float32 (u each) and two 1-D passes of kh and kw taps
    (gamma_n ~ n u each) bound the error by ``(kh + kw + 1) u sum |K| |P|``, doubled for the
    intermediate's own rounding.
    """
    kh, kw = kernel.shape
    window_norm = np.sqrt(ndimage.correlate(x * x, np.ones(kernel.shape), mode="constant"))
    magnitude = ndimage.correlate(np.abs(x), np.abs(kernel), mode="constant")
    return truncated * window_norm + 2 * (kh + kw + 1) * U32 * magnitude


def test_the_float32_tolerance_is_sixteen_units_of_roundoff():
    assert RTOL32 == 16 * U32
    assert separable_rtol(np.float32) == RTOL32 and separable_rtol(np.float64) == SEPARABLE_RTOL["float64"]


def test_a_gaussian_from_a_text_file_takes_the_separable_path_at_float32():
    named = parse_kernel_spec("gaussian:15").weights
    from_file = written(named)
    assert not np.array_equal(from_file, named)  # the file really lost digits
    plan_named = plan_correlation((4000, 3000), named, padding=7, backend="numpy")
    plan_file = plan_correlation((4000, 3000), from_file, padding=7, backend="numpy")
    assert plan_named.method == "separable" and "rank-1" in plan_named.reason
    assert plan_file.method == plan_named.method and "rank-1" in plan_file.reason
    # float64 work keeps its own, tighter tolerance: 12 digits are not rank 1 there.
    assert len(separable_terms(from_file, SEPARABLE_RTOL["float64"])) > 1


def test_a_kernel_file_on_disk_is_planned_like_the_named_kernel(tmp_path):
    named = parse_kernel_spec("gaussian:15")
    path = tmp_path / "g15.txt"
    np.savetxt(path, named.weights, fmt="%.12g")
    loaded = parse_kernel_spec(str(path)).weights
    assert np.abs(loaded - named.weights).max() > 0
    plan = plan_correlation((1000, 1000), loaded, padding=7, backend="numpy")
    assert "rank-1" in plan.reason
    x = np.random.default_rng(3).random((120, 90), dtype=np.float32)
    got = correlate2d(x, loaded, padding=7, backend="numpy").astype(np.float64)
    want = ndimage.correlate(x.astype(np.float64), loaded, mode="constant")
    assert np.all(np.abs(got - want) <= float32_bound(x.astype(np.float64), loaded, RTOL32))


@pytest.mark.parametrize(("share", "rank"), [(0.9, 1), (1.1, 2)])
@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_kernels_either_side_of_the_tolerance_stay_within_float32_accuracy(share, rank, backend):
    kernel = near_rank1(15, share * RTOL32, seed=int(share * 10))
    terms = separable_terms(kernel, RTOL32)
    assert len(terms) == rank
    plan = plan_correlation((200, 160), kernel, padding=7, backend=backend)
    assert plan.method == "separable" and f"rank-{rank}" in plan.reason
    x = np.random.default_rng(5).uniform(-1, 1, (200, 160)).astype(np.float32)
    x64 = x.astype(np.float64)
    got = correlate2d(x, kernel, padding=7, backend=backend).astype(np.float64)
    want = ndimage.correlate(x64, kernel, mode="constant")
    residual = np.linalg.norm(kernel - sum(np.outer(c, r) for c, r in terms)) / np.linalg.norm(kernel)
    assert residual <= RTOL32
    assert np.all(np.abs(got - want) <= float32_bound(x64, kernel, residual))


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(2, 12),
    relative=st.floats(0.0, 1e-4),
    seed=st.integers(0, 1000),
    rtol=st.sampled_from(sorted(SEPARABLE_RTOL.values())),
)
def test_the_split_is_the_fewest_terms_within_the_tolerance(k, relative, seed, rtol):
    kernel = near_rank1(k, relative, seed) + 1e-3 * relative * np.random.default_rng(seed).standard_normal((k, k))
    terms = separable_terms(kernel, rtol)
    norm = np.linalg.norm(kernel)

    def residual(count: int) -> float:
        return float(np.linalg.norm(kernel - sum((np.outer(c, r) for c, r in terms[:count]), np.zeros((k, k)))))

    assert residual(len(terms)) <= rtol * norm * (1 + 1e-9) + 1e-15
    if len(terms) > 1:  # one term fewer would leave more than the tolerance
        assert residual(len(terms) - 1) > rtol * norm * (1 - 1e-9)
    assert len(terms) == 1 or relative > rtol * 0.5
