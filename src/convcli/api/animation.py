"""``convcli.animate``: the sliding window of filter, pool or upsample, frame by frame."""

from __future__ import annotations

from typing import Any

from ..errors import ParameterError
from ..kernels import Kernel, resolve_kernel
from ..shapes import conv_geometry
from ..teach.animate import Animation, filter_animation, pool_animation, upsample_animation
from .arrays import filter_array, pool_array, upsample_array
from .checks import as_image, geometry, pool_settings, upsample_settings
from .settings import FilterSettings, PoolSettings, UpsampleSettings
from .upsampling import upsampling_kernel

OPERATIONS = ("filter", "pool", "upsample")


def animate_filter(image: Any, kernel: Kernel, settings: FilterSettings, *, frames: int | None = None) -> Animation:
    """The frames of ``filter`` with one kernel, its numbers those of :func:`convcli.api.arrays.filter_array`."""
    array = as_image(image)
    if array.ndim != 2:
        raise ParameterError(f"animate draws one 2-D grid; got shape {array.shape} (drop --color)")
    done = filter_array(array, [kernel], settings)
    shape = settings.geometry
    applied = kernel.weights[::-1, ::-1] if shape.convolve else kernel.weights
    resolved = conv_geometry(array.shape, applied.shape, shape.stride, shape.padding, shape.dilation)  # type: ignore[arg-type]
    return filter_animation(
        array,
        applied,
        resolved,
        done.array,
        pad_mode=shape.pad_mode,
        pad_value=shape.pad_value,
        bias=settings.bias + kernel.offset,
        convolved=shape.convolve,
        limit=frames,
    )


def animate_pool(image: Any, settings: PoolSettings, *, frames: int | None = None) -> Animation:
    """The frames of ``pool``, its numbers those of :func:`convcli.api.arrays.pool_array`."""
    array = as_image(image)
    if array.ndim != 2:
        raise ParameterError(f"animate draws one 2-D grid; got shape {array.shape} (drop --color)")
    result, resolved = pool_array(array, settings)
    return pool_animation(
        array, settings.op, resolved, result, count_include_pad=settings.count_include_pad, limit=frames
    )


def animate_upsample(image: Any, kernel: Kernel, settings: UpsampleSettings, *, frames: int | None = None) -> Animation:
    """The frames of ``upsample``, its numbers those of :func:`convcli.api.arrays.upsample_array`."""
    array = as_image(image)
    if array.ndim != 2:
        raise ParameterError(f"animate draws one 2-D grid; got shape {array.shape} (drop --color)")
    result, resolved = upsample_array(array, kernel, settings)
    return upsample_animation(array, kernel.weights, resolved, result, limit=frames)


def animate(
    image: Any, kernel: Any = None, *, op: str = "filter", frames: int | None = None, **options: Any
) -> Animation:
    """Frame by frame: the window of ``filter``/``pool`` sliding over the input, or ``upsample`` spreading each pixel.

    Parameters
    ----------
    image : array-like, shape (H, W)
        A number grid (up to 16 a side its values are drawn in the cells) or a photo.
    kernel : str, array-like or Kernel
        For ``filter`` and ``upsample``; as :func:`convcli.filter` takes it.
    op : {'filter', 'pool', 'upsample'}
    frames : int, optional
        Draw at most this many frames, spread evenly over the steps (first and
        last included); default every step.
    **options
        The keyword arguments of :func:`convcli.filter` (stride, padding,
        dilation, pad_mode, pad_value, convolve, bias), :func:`convcli.pool`
        (size, stride, padding, dilation, op is ``pool_op`` here, ceil_mode,
        count_include_pad) or :func:`convcli.upsample` (stride, padding,
        output_padding, dilation, output_size, bias), with their meanings.

    Returns
    -------
    Animation
        ``.frames`` (window position, values read, weights, result, caption),
        ``.records()`` for JSON, ``.save("steps.gif", fps=2, hold=2)``; in a
        notebook it shows itself as a GIF.

    Examples
    --------
    >>> import numpy as np
    >>> steps = animate(np.arange(9.0).reshape(3, 3), "0 1; 2 3")
    >>> [frame.caption for frame in steps.frames]
    ['0×0 + 1×1 + 3×2 + 4×3 = 19', '1×0 + 2×1 + 4×2 + 5×3 = 25', '3×0 + 4×1 + 6×2 + 7×3 = 37', '4×0 + 5×1 + 7×2 + 8×3 = 43']
    >>> animate(np.arange(16.0).reshape(4, 4), op="pool", size=2).frames[0].caption
    'max(0, 1, 4, 5) = 5'
    """
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        raise ParameterError(f"frames {frames!r} must be a whole number from 1")
    if op == "filter":
        bias = float(options.pop("bias", 0.0))
        method = options.pop("method", "auto")
        settings = FilterSettings(geometry(**options), bias=bias, method=method)
        return animate_filter(image, resolve_kernel(_need(kernel, op)), settings, frames=frames)
    if op == "pool":
        if "pool_op" in options:
            options["op"] = options.pop("pool_op")
        return animate_pool(image, pool_settings(**options), frames=frames)
    if op == "upsample":
        settings_up = upsample_settings(**options)
        return animate_upsample(
            image, upsampling_kernel(_need(kernel, op), settings_up.stride), settings_up, frames=frames
        )
    raise ParameterError(f"op {op!r} is not one of {', '.join(OPERATIONS)}")


def _need(kernel: Any, op: str) -> Any:
    if kernel is None:
        raise ParameterError(f"op {op!r} needs a kernel")
    return kernel
