"""Frequency responses against closed forms; the aliasing note fires where a stride folds energy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convcli
from convcli.teach.frequency import aliasing_note, aliasing_share, frequency_response


def test_difference_is_two_sine_half():
    response = frequency_response([[1.0, -1.0]])
    w = response.frequencies
    np.testing.assert_allclose(response.across, 2 * np.abs(np.sin(w / 2)), atol=1e-12)
    np.testing.assert_allclose(response.down, 0.0, atol=1e-12)  # a row kernel does not change along the rows
    assert response.dc == 0 and response.nyquist == (0.0, pytest.approx(2.0))


def test_three_tap_box():
    response = frequency_response(np.ones((1, 3)) / 3)
    w = response.frequencies
    np.testing.assert_allclose(response.across, np.abs(1 + 2 * np.cos(w)) / 3, atol=1e-12)
    assert response.dc == pytest.approx(1.0) and response.nyquist[1] == pytest.approx(1 / 3)


@pytest.mark.parametrize("sigma", [0.8, 1.5, 2.5])
def test_sampled_gaussian_matches_its_transform(sigma):
    radius = int(np.ceil(6 * sigma))  # the tail beyond 6 sigma weighs below 1e-8
    x = np.arange(-radius, radius + 1)
    taps = np.exp(-(x**2) / (2 * sigma**2))
    taps /= taps.sum()
    response = frequency_response(np.outer(taps, taps))
    w = response.frequencies
    # Sampling periodises the continuous transform exp(-sigma^2 w^2 / 2) (Poisson summation); dividing the
    # taps by their sum divides it by its value at 0.
    periodic = sum(np.exp(-(sigma**2) * (w - 2 * np.pi * n) ** 2 / 2) for n in range(-3, 4))
    at_zero = sum(np.exp(-(sigma**2) * (2 * np.pi * n) ** 2 / 2) for n in range(-3, 4))
    np.testing.assert_allclose(response.across, periodic / at_zero, atol=1e-7)
    np.testing.assert_allclose(response.magnitude, np.outer(response.down, response.across), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_magnitude_ignores_flips_and_shifts_and_gains_are_sums(rows, cols, seed):
    kernel = np.random.default_rng(seed).standard_normal((rows, cols))
    plain = frequency_response(kernel)
    np.testing.assert_allclose(frequency_response(kernel[::-1, ::-1]).magnitude, plain.magnitude, atol=1e-9)
    np.testing.assert_allclose(
        frequency_response(np.pad(kernel, ((2, 0), (0, 3)))).magnitude, plain.magnitude, atol=1e-9
    )
    assert plain.dc == pytest.approx(abs(kernel.sum()))
    rows_sign = (-1.0) ** np.arange(rows)
    cols_sign = (-1.0) ** np.arange(cols)
    assert plain.nyquist[0] == pytest.approx(abs(rows_sign @ kernel.sum(axis=1)))
    assert plain.nyquist[1] == pytest.approx(abs(kernel.sum(axis=0) @ cols_sign))
    # Parseval: the mean of |H|^2 over the grid is the sum of squares
    assert np.mean(plain.magnitude**2) == pytest.approx(float((kernel**2).sum()))


def test_aliasing_note_fires_on_the_identity_and_not_after_a_blur():
    assert aliasing_share([[1.0]], (2, 2)) == pytest.approx((0.5, 0.5))
    assert aliasing_share([[1.0]], (1, 1)) == (0.0, 0.0)
    note = aliasing_note(convcli.kernel("identity").weights, (2, 2), "identity")
    assert note is not None and "50%" in note and "(down the rows and across the columns)" in note
    assert aliasing_note(convcli.kernel("gaussian:5").weights, (2, 2)) is None
    # vertical edges are smooth down the rows and sharp across the columns
    only = aliasing_note(convcli.kernel("vertical").weights, (2, 2), "vertical")
    assert only is not None and "(across the columns)" in only and "rows" not in only


def test_kernels_show_freq_through_the_cli(tmp_path):
    import json

    from conftest import run_cli

    run = run_cli(["kernels", "show", "1 -1", "--freq", "--json"])
    assert run.exit_code == 0, run
    frequency = json.loads(run.stdout)["frequency"]
    assert frequency["dc_gain"] == 0 and frequency["nyquist_gain"] == {"rows": 0.0, "columns": pytest.approx(2.0)}
    # 2|sin(w/2)| at 0, pi/4, pi/2, 3pi/4, pi
    expected = [2 * abs(np.sin(f * np.pi / 2)) for f in (0, 0.25, 0.5, 0.75, 1)]
    np.testing.assert_allclose(frequency["columns"], expected, atol=1e-12)
    assert frequency["rows"] == [0.0] * 5
    text = run_cli(["kernels", "show", "blur:3", "--freq"])
    assert "gain at 0, pi/4, pi/2, 3pi/4, pi: down the rows 1 0.8047 0.3333 0.1381 0.3333" in text.stderr, text
    figure = tmp_path / "f.png"
    drawn = run_cli(["kernels", "show", "gaussian:5", "--freq", "--figure", figure])
    assert drawn.exit_code == 0 and figure.read_bytes().startswith(b"\x89PNG"), drawn


def test_filter_and_pool_say_when_a_stride_aliases(samples):
    from conftest import run_cli

    photo = samples / "camera.png"
    identity = run_cli(["filter", photo, "-k", "identity", "-s", "2", "-o", samples / "a.png"])
    assert identity.exit_code == 0 and "after identity aliases: it keeps 50% of its energy" in identity.stderr, identity
    blurred = run_cli(["filter", photo, "-k", "gaussian:5", "-s", "2", "-o", samples / "b.png"])
    assert blurred.exit_code == 0 and "aliases" not in blurred.stderr, blurred
    assert "aliases" not in run_cli(["filter", photo, "-k", "identity", "-o", samples / "c.png"]).stderr
    quiet = run_cli(["filter", photo, "-k", "identity", "-s", "2", "-o", samples / "d.png", "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    mean = run_cli(["pool", photo, "--op", "mean", "--size", "2", "-o", samples / "e.png"])
    assert "after a 2x2 mean aliases: it keeps 18% of its energy" in mean.stderr, mean
    assert "aliases" not in run_cli(["pool", photo, "--op", "max", "--size", "2", "-o", samples / "f.png"]).stderr
