"""``convcli explain``: sums of products against a naive loop, SciPy and the matrix forms; refusal; encoding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import signal

from convcli.cli import main
from convcli.errors import ParameterError, ShapeError
from convcli.teach.explain import explain, format_sum, im2col, render, weight_matrix

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def run(args, code=0):
    result = CliRunner().invoke(main, args, prog_name="convcli")
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return result


def naive_correlate(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """A deliberately plain loop: zero padding, no flip."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.zeros((x.shape[0] + 2 * ph, x.shape[1] + 2 * pw))
    xp[ph : ph + x.shape[0], pw : pw + x.shape[1]] = x
    kh, kw = w.shape
    oh = (xp.shape[0] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[1] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            for u in range(kh):
                for v in range(kw):
                    out[i, j] += xp[i * sh + u * dh, j * sw + v * dw] * w[u, v]
    return out


def test_the_textbook_example():
    out = run(["explain", str(SAMPLES / "x.txt"), "-k", "0 1; 2 3"]).stdout
    lines = out.splitlines()
    # worked by hand: window [[0 1] [3 4]] times [[0 1] [2 3]]
    assert "out[0,0] = 0×0 + 1×1 + 3×2 + 4×3 = 19" in lines
    assert "out[0,1] = 1×0 + 2×1 + 4×2 + 5×3 = 25" in lines
    assert "out[1,0] = 3×0 + 4×1 + 6×2 + 7×3 = 37" in lines
    assert "out[1,1] = 4×0 + 5×1 + 7×2 + 8×3 = 43" in lines
    assert out.split("output (2x2):\n")[1].startswith("19 25\n37 43\n")
    assert "check: the sums equal the result of convcli's engine (correlate2d)" in out


def test_padding_and_stride_by_hand():
    out = run(["explain", str(SAMPLES / "x.txt"), "-k", "0 1; 2 3", "--padding", "1", "--stride", "2"]).stdout
    assert "padded input (5x5" in out
    assert "0 0 0 0 0\n0 0 1 2 0\n0 3 4 5 0\n0 6 7 8 0\n0 0 0 0 0" in out
    assert "out[0,1] = 0×0 + 0×1 + 1×2 + 2×3 = 8" in out
    assert "out[1,0] = 0×0 + 3×1 + 0×2 + 6×3 = 21" in out
    assert " 0  8\n21 43" in out


def test_convolve_shows_the_flipped_kernel():
    out = run(["explain", str(SAMPLES / "x.txt"), "-k", "0 1; 2 3", "--convolve"]).stdout
    assert "flipped 180 degrees" in out and "3 2\n1 0" in out
    assert "out[0,0] = 0×3 + 1×2 + 3×1 + 4×0 = 5" in out
    # scipy.signal.convolve2d flips too
    expected = signal.convolve2d(np.arange(9.0).reshape(3, 3), [[0, 1], [2, 3]], mode="valid")
    assert out.split("output (2x2):\n")[1].startswith(" 5 11\n23 29\n")
    assert expected.tolist() == [[5, 11], [23, 29]]


def test_matrix_forms():
    out = run(["explain", str(SAMPLES / "x.txt"), "-k", "0 1; 2 3", "--matrix"]).stdout
    # each row holds the kernel where its window reads, in the 9 columns of the flattened 3x3 input
    assert "0 1 0 2 3 0 0 0 0\n0 0 1 0 2 3 0 0 0\n0 0 0 0 1 0 2 3 0\n0 0 0 0 0 1 0 2 3" in out
    assert "= 19 25 37 43 -> 2x2, the output above" in out
    assert "check: the sums, im2col and the weight matrix all equal" in out


def test_negative_numbers_in_parentheses_and_stdin():
    result = CliRunner().invoke(main, ["explain", "-", "-k", "1 -1"], input="1 2 3 4\n5 6 7 8\n", prog_name="convcli")
    assert result.exit_code == 0, result.stderr
    assert "out[0,0] = 1×1 + 2×(-1) = -1" in result.stdout
    assert format_sum([(-0.5, 2.0), (0.1, 0.2)], -0.98, times="*") == "(-0.5)*2 + 0.1*0.2 = -0.98"


def test_refuses_big_inputs_politely():
    result = run(["explain", str(SAMPLES / "camera.png"), "-k", "0 1; 2 3"], code=2)
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("convcli explain: error: explain is for small examples")
    assert "512x512 (limit 16 per side)" in line and "convcli filter" in line
    assert result.stdout == ""


def test_other_errors():
    result = run(["explain", str(SAMPLES / "x.txt"), "-k", "1 1 1 1"], code=2)
    assert "kernel 4 is larger than the padded input 3" in result.stderr
    result = run(["explain", str(SAMPLES / "x.txt"), "-k", "nope"], code=2)
    assert result.stderr.count("\n") == 1
    result = run(["explain", "missing.txt", "-k", "1"], code=1)
    assert result.stderr.count("\n") == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
        lambda shape: st.lists(st.integers(-9, 9), min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]).map(
            lambda v: np.array(v, dtype=float).reshape(shape)
        )
    ),
    w=st.tuples(st.integers(1, 3), st.integers(1, 3)).flatmap(
        lambda shape: st.lists(st.integers(-3, 3), min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]).map(
            lambda v: np.array(v, dtype=float).reshape(shape)
        )
    ),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    convolve=st.booleans(),
)
def test_sums_and_matrices_equal_a_naive_loop(x, w, stride, padding, dilation, convolve):
    applied = w[::-1, ::-1] if convolve else w
    try:
        expected = naive_correlate(x, applied, stride, padding, dilation)
        e = explain(x, w, stride=stride, padding=padding, dilation=dilation, convolve=convolve, matrix=True)
    except (ShapeError, ValueError):
        assume(False)
    assert np.array_equal(e.output, expected)
    assert np.array_equal(e.engine, expected)
    assert np.array_equal((im2col(e) @ applied.ravel()).reshape(expected.shape), expected)
    assert np.array_equal((weight_matrix(e) @ e.padded.ravel()).reshape(expected.shape), expected)
    # every printed sum evaluates to its output value
    text = render(e, matrix=True, times="*")
    for line in text.splitlines():
        if line.startswith("out[") and " = " in line:
            label, expression, total = line.split(" = ")
            i, j = map(int, label.strip()[4:-1].split(","))
            assert eval(expression, {"__builtins__": {}}) == expected[i, j] == float(total)  # noqa: S307
    assert "check: " in text and "FAILED" not in text
    if padding == (0, 0) and stride == (1, 1) and dilation == (1, 1):
        reference = signal.convolve2d(x, w, mode="valid") if convolve else signal.correlate2d(x, w, mode="valid")
        assert np.allclose(e.output, reference)


def test_limit_is_checked_before_work():
    with pytest.raises(ParameterError, match="too big to read"):
        explain(np.zeros((40, 40)), np.ones((3, 3)))
    with pytest.raises(ParameterError, match="weight matrix with 121 columns"):
        explain(np.zeros((11, 11)), np.ones((5, 5)), stride=(2, 2), matrix=True)


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("cp437", b"out[0,0] = 0*0 + 1*1 + 3*2 + 4*3 = 19"),  # no multiplication sign in cp437: a star
        ("ascii", "out[0,0] = 0×0 + 1×1 + 3×2 + 4×3 = 19".encode()),  # click writes UTF-8 to an ASCII stdout
        ("utf-8", "out[0,0] = 0×0 + 1×1 + 3×2 + 4×3 = 19".encode()),
    ],
)
def test_stdout_encodings(encoding, expected):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONIOENCODING": encoding}
    result = subprocess.run(
        [sys.executable, "-m", "convcli", "explain", str(SAMPLES / "x.txt"), "-k", "0 1; 2 3"],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_help():
    out = run(["explain", "--help"]).stdout
    assert out.splitlines()[2].startswith("  Write out a small convolution step by step")
    assert 'convcli explain samples/x.txt -k "0 1; 2 3"' in out
