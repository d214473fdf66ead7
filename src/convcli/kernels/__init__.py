"""Kernels: the built-in catalogue, kernel files and kernel specs.

* :mod:`.weights`: the :class:`Kernel` record and the checks on weights;
* :mod:`.catalogue`: named kernels (``gaussian:7``, ``vertical``, ``bilinear:2``);
* :mod:`.files`: ``.txt``/``.csv``/``.npy``/``.mat`` files (read and written), ImageMagick
  strings, kernel folders;
* :mod:`.magick`: ImageMagick's named kernels (``im:Sobel:90``, ``im:Gaussian:0x2``), built with
  :mod:`.magick_build` (the record, scaling, rotation, widths) from the arguments parsed by
  :mod:`.magick_geometry`;
* :mod:`.vips`: libvips ``.mat`` matrix files (scale and offset);
* :mod:`.normalize`: normalisation by the sum, the absolute sum, or ImageMagick's ``!`` and ``^``;
* :mod:`.specs`: resolving a ``-k SPEC`` into a :class:`Kernel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .catalogue import MAX_UPSAMPLE_FACTOR, CatalogueEntry, bilinear_kernel, catalogue, nearest_kernel
from .files import (
    KERNEL_WRITE_SUFFIXES,
    kernel_dirs,
    kernel_file_bytes,
    kernel_files,
    load_kernel_file,
    parse_imagemagick,
    read_kernel_file,
    write_kernel_file,
)
from .normalize import NORMALIZATIONS, normalize_kernel, normalize_weights
from .specs import parse_kernel_spec, resolve_kernel
from .weights import KERNEL_FILE_SUFFIXES, MAX_KERNEL_SIDE, Kernel, as_kernel_array, rank1_factors

if TYPE_CHECKING:
    from .magick import MAGICK_KERNEL_NAMES, magick_catalogue, magick_kernel
    from .magick_build import MagickKernel
    from .vips import VipsMatrix, format_vips_matrix, load_vips_matrix, parse_vips_matrix

#: names imported on first use: ImageMagick's kernels (``im:``) and libvips ``.mat`` files are rare, and
#: their modules are the largest of the package (kept off the start-up of ``convcli filter``, issue 19)
_LAZY = {
    "MAGICK_KERNEL_NAMES": "magick",
    "MagickKernel": "magick_build",
    "magick_catalogue": "magick",
    "magick_kernel": "magick",
    "VipsMatrix": "vips",
    "format_vips_matrix": "vips",
    "load_vips_matrix": "vips",
    "parse_vips_matrix": "vips",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "KERNEL_FILE_SUFFIXES",
    "KERNEL_WRITE_SUFFIXES",
    "MAGICK_KERNEL_NAMES",
    "MAX_KERNEL_SIDE",
    "MAX_UPSAMPLE_FACTOR",
    "NORMALIZATIONS",
    "CatalogueEntry",
    "Kernel",
    "MagickKernel",
    "VipsMatrix",
    "as_kernel_array",
    "bilinear_kernel",
    "catalogue",
    "format_vips_matrix",
    "kernel_dirs",
    "kernel_file_bytes",
    "kernel_files",
    "load_kernel_file",
    "load_vips_matrix",
    "magick_catalogue",
    "magick_kernel",
    "nearest_kernel",
    "normalize_kernel",
    "normalize_weights",
    "parse_imagemagick",
    "parse_kernel_spec",
    "parse_vips_matrix",
    "rank1_factors",
    "read_kernel_file",
    "resolve_kernel",
    "write_kernel_file",
]
