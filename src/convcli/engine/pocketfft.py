"""SciPy's pocketfft transforms, called without importing :mod:`scipy.fft`.

``import scipy.fft`` costs 400-450 ms on a 2-core machine (its array-API layer imports
``numpy.testing``, ``numpy.f2py`` and ``scipy.special``), more than the whole FFT of a
12-megapixel image: a one-shot ``convcli filter`` paid it on every run that chose the
FFT. The transforms themselves live in one compiled module, ``pypocketfft``, which
loads in about 2 ms. This module loads it from SciPy's folder and calls it with the
arguments ``scipy.fft.rfft``, ``fft``, ``rfft2`` and ``irfft2`` would pass, so the
numbers are the same to the last bit (``tests/test_fft.py`` compares the two). When
the module cannot be loaded that way (another SciPy layout), ``scipy.fft``'s own copy
is used: the same function, only slower to import.

The normalisation is pocketfft's ``inorm``: 0 for none (forward transforms), 2 for
1/n (the inverse), as ``scipy.fft``'s default ``norm="backward"``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

_NAME = "scipy.fft._pocketfft.pypocketfft"


@lru_cache(maxsize=1)
def module() -> Any:
    """The compiled ``pypocketfft`` module: loaded from its file, else through ``scipy.fft``."""
    import sys

    if _NAME in sys.modules:
        return sys.modules[_NAME]
    try:
        import importlib.machinery
        import importlib.util
        import os

        found = importlib.util.find_spec("scipy")
        if found is None or found.origin is None:
            raise ImportError("scipy not found")
        folder = os.path.join(os.path.dirname(found.origin), "fft", "_pocketfft")
        path = next(
            candidate
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if os.path.exists(candidate := os.path.join(folder, "pypocketfft" + suffix))
        )
        spec = importlib.util.spec_from_file_location(_NAME, path)
        if spec is None or spec.loader is None:
            raise ImportError(path)
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        # scipy.fft, imported later, finds the same module here instead of loading it again.
        sys.modules[_NAME] = loaded
        return loaded
    except (ImportError, OSError, StopIteration, AttributeError):
        from scipy.fft._pocketfft import basic

        return basic.pfft


def _padded(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``x`` with zeros appended along ``axis`` up to length ``n`` (``scipy.fft``'s ``n=``; never shorter here)."""
    if x.shape[axis] == n:
        return x
    if x.shape[axis] > n:
        raise ValueError(f"cannot pad an axis of {x.shape[axis]} to {n}")
    shape = list(x.shape)
    shape[axis] = n
    out = np.zeros(shape, dtype=x.dtype)
    out[tuple(slice(0, size) for size in x.shape)] = x
    return out


def rfft(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``scipy.fft.rfft(x, n=n, axis=axis)`` on one thread."""
    return module().r2c(_padded(x, n, axis), (axis,), True, 0, None, 1)


def fft(x: np.ndarray, n: int, axis: int, workers: int) -> np.ndarray:
    """``scipy.fft.fft(x, n=n, axis=axis, workers=workers, overwrite_x=True)`` on a complex ``x``."""
    padded = _padded(x, n, axis)
    # scipy.fft transforms in place when it may overwrite the (complex) input: so does this.
    return module().c2c(padded, (axis,), True, 0, padded, workers)


def rfft2(x: np.ndarray, workers: int, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``scipy.fft.rfft2(x, s=shape, workers=workers)`` of a real 2-D ``x`` (zero-padded to ``shape``)."""
    if shape is not None:
        x = _padded(_padded(x, shape[0], 0), shape[1], 1)
    return module().r2c(x, (0, 1), True, 0, None, workers)


def irfft2(x: np.ndarray, shape: tuple[int, int], workers: int) -> np.ndarray:
    """``scipy.fft.irfft2(x, s=shape, workers=workers)`` of a half spectrum ``x`` of shape ``(h, w // 2 + 1)``."""
    if x.shape != (shape[0], shape[1] // 2 + 1):
        raise ValueError(f"a half spectrum of shape {x.shape} does not fit an output of {shape}")
    return module().c2r(x, (0, 1), shape[1], False, 2, None, workers)
