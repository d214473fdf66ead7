"""The engine's imports of SciPy's FFT and of OpenCV: what a one-shot run pays for them, and the same numbers.

``convcli.engine.pocketfft`` calls SciPy's transforms without importing ``scipy.fft`` (400-450 ms),
the same to the last bit; ``convcli.engine.opencv.cv2_module`` imports OpenCV without the worker
threads of its bundled OpenBLAS.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import fft as scipy_fft

from convcli.engine import pocketfft
from test_startup import CHELSEA, modules_after

shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))
dtypes = st.sampled_from([np.float32, np.float64])


def _real(shape: tuple[int, int], dtype: type, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_the_compiled_module_is_scipys_own() -> None:
    # Loaded from SciPy's folder first, in a fresh process, it is the very module scipy.fft then calls.
    script = (
        "import sys; from convcli.engine import pocketfft; m = pocketfft.module(); "
        "assert 'scipy.fft' not in sys.modules, 'loaded through scipy.fft'; "
        "from scipy.fft._pocketfft import basic; print(basic.pfft is m)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr


@settings(max_examples=60, deadline=None)
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 9), workers=st.sampled_from([1, 2]))
def test_rfft2_and_irfft2_equal_scipy_fft_bit_for_bit(shape, dtype, seed, workers) -> None:
    x = _real(shape, dtype, seed)
    ours = pocketfft.rfft2(x, workers)
    theirs = scipy_fft.rfft2(x, workers=workers)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    back = pocketfft.irfft2(ours.copy(), shape, workers)
    assert np.array_equal(back, scipy_fft.irfft2(theirs, s=shape, workers=workers))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, extra=st.tuples(st.integers(0, 9), st.integers(0, 9)), dtype=dtypes, seed=st.integers(0, 9))
def test_padded_transforms_equal_scipy_fft_bit_for_bit(shape, extra, dtype, seed) -> None:
    x = _real(shape, dtype, seed)
    size = (shape[0] + extra[0], shape[1] + extra[1])
    assert np.array_equal(pocketfft.rfft2(x, 1, size), scipy_fft.rfft2(x, s=size))
    rows = pocketfft.rfft(x, size[1], axis=1)
    assert np.array_equal(rows, scipy_fft.rfft(x, n=size[1], axis=1))
    # the kernel's spectrum in fft.py: rows first, then the columns in place
    assert np.array_equal(
        pocketfft.fft(rows.copy(), size[0], axis=0, workers=2),
        scipy_fft.fft(rows.copy(), n=size[0], axis=0, workers=2, overwrite_x=True),
    )


def test_shapes_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="half spectrum"):
        pocketfft.irfft2(np.zeros((4, 4), np.complex64), (4, 8), 1)
    with pytest.raises(ValueError, match="cannot pad"):
        pocketfft.rfft(np.zeros((2, 9)), 4, axis=1)


def test_an_fft_job_does_not_import_scipy_fft(tmp_path) -> None:
    # import scipy.fft costs 400-450 ms (scipy.special, numpy.f2py, numpy.testing); the transforms need none of it
    modules, done = modules_after(
        tmp_path, "filter", str(CHELSEA), "-k", "gaussian:15", "--method", "fft", "-o", "f.png"
    )
    assert done.returncode == 0, done.stderr
    assert "convcli.engine.fft" in modules and "scipy.fft._pocketfft.pypocketfft" in modules
    assert not {"scipy.fft", "scipy.special", "numpy.f2py", "numpy.testing"} & modules


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through Linux's /proc")
@pytest.mark.parametrize("through_convcli", [True, False])
def test_opencv_is_imported_without_its_blas_threads(through_convcli) -> None:
    # opencv-python's own OpenBLAS starts worker threads at load that spin ~120 ms of CPU; convcli's import keeps it
    # to one thread (none started) and restores the environment. The plain import is the control: it starts one.
    pytest.importorskip("cv2")
    if not through_convcli and (os.cpu_count() or 1) < 2:
        pytest.skip("OpenBLAS starts no worker thread on one core: the control would not see one")
    load = "from convcli.engine.opencv import cv2_module; cv2_module()" if through_convcli else "import cv2"
    script = (
        "import os, sys, numpy; before = len(os.listdir('/proc/self/task')); "
        f"{load}; assert 'cv2' in sys.modules; "
        "print(len(os.listdir('/proc/self/task')) - before, os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    started, variable = done.stdout.split()
    assert variable == "None", "the environment was not restored"
    assert (int(started) == 0) == through_convcli, done.stdout
