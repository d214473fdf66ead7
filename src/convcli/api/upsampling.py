"""The kernel and padding of an upsampling: named factor kernels, ``padding='auto'`` and the resulting geometry.

A bare ``bilinear`` or ``nearest`` takes the stride as its factor, and
``padding='auto'`` (the default of :func:`convcli.upsample`) chooses the
padding and output padding that give exactly ``stride`` times the size for
those kernels (0 for any other, PyTorch's default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from ..kernels import Kernel, parse_kernel_spec, resolve_kernel
from ..shapes import Pair, format_pair
from .settings import UpsampleSettings

if TYPE_CHECKING:  # transpose is imported by the functions that use it (start-up, issue 19)
    from ..transpose import TransposeGeometry

#: Catalogue kernels whose bare name takes its factor from the upsampling stride.
FACTOR_KERNELS = ("bilinear", "nearest")


def is_factor_kernel(kernel: Kernel) -> bool:
    """True for a named upsampling kernel (``bilinear``, ``bilinear:F``, ``nearest``, ``nearest:F``).

    >>> is_factor_kernel(resolve_kernel("bilinear:3")), is_factor_kernel(resolve_kernel("gaussian:3"))
    (True, False)
    """
    return kernel.spec.strip().lower().split(":", 1)[0] in FACTOR_KERNELS


def upsample_padding(kernel: Kernel, settings: UpsampleSettings) -> tuple[Any, Pair]:
    """The padding and output padding an upsampling uses: as given, or chosen when ``padding`` is ``'auto'``.

    ``'auto'`` with a named upsampling kernel (:data:`FACTOR_KERNELS`) takes
    :func:`convcli.transpose.factor_padding` (exactly ``stride`` times the
    size); with any other kernel it is 0, PyTorch's default. An
    ``output_size`` then sets the output padding from that padding.

    >>> from convcli.api.checks import upsample_settings
    >>> upsample_padding(upsampling_kernel("bilinear", (2, 2)), upsample_settings(stride=2, padding="auto"))
    ((1, 1), (0, 0))
    """
    if settings.padding != "auto":
        return settings.padding, settings.output_padding
    if not is_factor_kernel(kernel):
        return (0, 0), settings.output_padding
    if settings.output_padding != (0, 0):
        raise ParameterError(
            f"output padding {format_pair(settings.output_padding)} goes with an explicit padding for -k "
            f"{kernel.spec} (PyTorch's meaning); give the padding too (--padding), or drop the output padding and "
            "let the padding be chosen"
        )
    from ..transpose import factor_padding

    padding, extra = factor_padding(kernel.shape, settings.stride, settings.dilation)
    return padding, (extra if settings.output_size is None else (0, 0))


def upsampling_kernel(kernel: Any, stride: Pair) -> Kernel:
    """The kernel of an upsampling: a bare ``bilinear``/``nearest`` takes ``stride`` as its factor.

    >>> upsampling_kernel("bilinear", (2, 2)).shape
    (4, 4)
    >>> upsampling_kernel("bilinear:3", (2, 2)).shape
    (5, 5)
    """
    resolved = resolve_kernel(kernel)
    name = resolved.spec.strip().lower()
    if name in FACTOR_KERNELS:
        factor = str(stride[0]) if stride[0] == stride[1] else format_pair(stride)
        return parse_kernel_spec(f"{name}:{factor}")
    return resolved


def upsample_geometry(size: Pair, kernel: Kernel, settings: UpsampleSettings) -> TransposeGeometry:
    """The geometry of an upsampling of an ``(H, W)`` input (``output_size`` resolved to an output padding)."""
    from ..transpose import output_padding_for, transpose_geometry

    padding, output_padding = upsample_padding(kernel, settings)
    if settings.output_size is not None:
        output_padding = output_padding_for(
            size,
            kernel.shape,
            settings.output_size,
            stride=settings.stride,
            padding=padding,
            dilation=settings.dilation,
        )
    return transpose_geometry(
        size,
        kernel.shape,
        stride=settings.stride,
        padding=padding,
        output_padding=output_padding,
        dilation=settings.dilation,
    )
