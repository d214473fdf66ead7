"""The kernel record and the checks every kernel's weights pass (2-D, finite, at most 4096 per side)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import KernelError

KERNEL_FILE_SUFFIXES = (".txt", ".csv", ".npy", ".kernel")
MAX_KERNEL_SIDE = 4096


@dataclass(frozen=True)
class Kernel:
    """A named kernel.

    Attributes
    ----------
    name : str
        Short name used in output file names (``gaussian-7``, ``vertical``).
    weights : ndarray
        2-D float64 weights, read-only, applied by cross-correlation.
    spec : str
        The spec the user wrote.
    description : str
        One line: what it does, its orientation and sign.
    """

    name: str
    weights: np.ndarray = field(repr=False)
    spec: str = ""
    description: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))


def as_kernel_array(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise KernelError(f"{what} has {array.ndim} dimensions; a kernel is a 2-D grid")
    if array.size == 0:
        raise KernelError(f"{what} is empty")
    if max(array.shape) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{what} is {array.shape[0]}x{array.shape[1]}; kernels are limited to {MAX_KERNEL_SIDE} per side"
        )
    if not np.all(np.isfinite(array)):
        raise KernelError(f"{what} contains NaN or infinity; every weight must be a finite number")
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array
