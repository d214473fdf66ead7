"""Kernels: the built-in catalogue, kernel files and kernel specs.

* :mod:`.weights`: the :class:`Kernel` record and the checks on weights;
* :mod:`.catalogue`: named kernels (``gaussian:7``, ``vertical``, ``bilinear:2``);
* :mod:`.files`: ``.txt``/``.csv``/``.npy`` files, ImageMagick strings, kernel folders;
* :mod:`.specs`: resolving a ``-k SPEC`` into a :class:`Kernel`.
"""

from __future__ import annotations

from .catalogue import MAX_UPSAMPLE_FACTOR, CatalogueEntry, bilinear_kernel, catalogue, nearest_kernel
from .files import kernel_dirs, kernel_files, load_kernel_file, parse_imagemagick
from .specs import parse_kernel_spec, resolve_kernel
from .weights import KERNEL_FILE_SUFFIXES, MAX_KERNEL_SIDE, Kernel, as_kernel_array, rank1_factors

__all__ = [
    "KERNEL_FILE_SUFFIXES",
    "MAX_KERNEL_SIDE",
    "MAX_UPSAMPLE_FACTOR",
    "CatalogueEntry",
    "Kernel",
    "as_kernel_array",
    "bilinear_kernel",
    "catalogue",
    "kernel_dirs",
    "kernel_files",
    "load_kernel_file",
    "nearest_kernel",
    "parse_imagemagick",
    "parse_kernel_spec",
    "rank1_factors",
    "resolve_kernel",
]
