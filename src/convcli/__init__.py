"""convcli: see what a convolution does to an image, and get CNN arithmetic exactly right.

The public API, one implementation shared with the command line (each
``convcli``                           command is a thin client of these functions)::

    >>> import numpy as np, convcli
    >>> convcli.filter(np.arange(9.0).reshape(3, 3), "0 1; 2 3")
    array([[19., 25.],
           [37., 43.]])

Names are imported lazily, on first use, so ``import convcli`` stays light
(no NumPy until an array function is called).

===================================== ========================================================
``load(source)``                      an image or array (path, URL, bytes, file object) as floats
``save(array, destination)``          write atomically; the format from the suffix
``kernel(spec)``                      a :class:`Kernel` from a name, a matrix, a file or an array
``filter(image, kernel)``             cross-correlation (or convolution) with stride, padding...
``pool(image, size)``                 max / mean / min pooling, as ``torch.nn.functional``
``upsample(image, kernel)``           transposed convolution, as ``conv_transpose2d``
``output_size(input, kernel)``        the output-size formulas of conv, pool and transpose
``receptive_field(layers)``           sizes, jumps and receptive fields through a layer stack
``explain(image, kernel)``            every output written out as its sum of products
``learn(input, target, size)``        recover a kernel by gradient descent or least squares
``figure(image, kernel)``             the matplotlib figure ``--figure`` saves
``animate(image, kernel)``            the sliding window frame by frame (GIF, APNG, MP4)
``effective_receptive_field(...)``    the weight with which each input pixel reaches an output
``frequency_response(kernel)``        the kernel's gain at each spatial frequency
``filter_file(src, dst, kernel)``      filter a huge image file in row strips, in bounded memory
``pool_file(src, dst, size)``          pool a huge image file the same way
``upsample_file(src, dst, kernel)``    upsample a huge image file the same way
===================================== ========================================================
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

#: public name -> "module:attribute"
_LAZY: dict[str, str] = {
    "load": "convcli.api.files:load",
    "save": "convcli.api.files:save",
    "Saved": "convcli.api.files:Saved",
    "kernel": "convcli.kernels.specs:resolve_kernel",
    "Kernel": "convcli.kernels.weights:Kernel",
    "filter": "convcli.api.arrays:filter",
    "pool": "convcli.api.arrays:pool",
    "upsample": "convcli.api.arrays:upsample",
    "output_size": "convcli.shapes:output_size",
    "receptive_field": "convcli.api.receptive_fields:receptive_field",
    "explain": "convcli.api.teaching:explain",
    "learn": "convcli.api.learning:learn",
    "figure": "convcli.api.teaching:figure",
    "animate": "convcli.api.animation:animate",
    "effective_receptive_field": "convcli.api.receptive_fields:effective_receptive_field",
    "filter_file": "convcli.run.streamed:filter_file",
    "pool_file": "convcli.run.streamed:pool_file",
    "upsample_file": "convcli.run.stream_upsample:upsample_file",
    "Streamed": "convcli.run.streamed:Streamed",
    "frequency_response": "convcli.api.teaching:frequency_response",
    "ConvcliError": "convcli.errors:ConvcliError",
    "ParameterError": "convcli.errors:ParameterError",
    "ShapeError": "convcli.errors:ShapeError",
    "KernelError": "convcli.errors:KernelError",
    "UnknownKernelError": "convcli.errors:UnknownKernelError",
    "SourceError": "convcli.errors:SourceError",
    "DecodeError": "convcli.errors:DecodeError",
    "OutputError": "convcli.errors:OutputError",
    "OutputUsageError": "convcli.errors:OutputUsageError",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'convcli' has no attribute {name!r}")
    module_name, attribute = target.split(":")
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
