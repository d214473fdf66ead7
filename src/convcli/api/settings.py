"""Typed settings records: one frozen dataclass per concern, built once and handed to pure functions.

The command line builds them from its options (``convcli.cli.option_records``), the
Python API from its keyword arguments; both then call the same functions.
Records are frozen (hashable, safe to share between threads) and picklable
(a batch sends them to worker processes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..limits import DEFAULT_MAX_DOWNLOAD, DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT
from ..shapes import PaddingSpec, Pair, Sides, resolve_padding


@dataclass(frozen=True)
class Geometry:
    """How a kernel meets the input: the conv2d arguments plus the border.

    Attributes
    ----------
    stride, dilation : (int, int)
        Step between windows; spacing between taps (rows, columns), at least 1.
    padding : (int, int), ((top, bottom), (left, right)), 'same' or 'valid'
        Rows/columns added on each side of each axis (PyTorch's meaning), or
        per side.
    pad_mode : str
        Border mode after alias resolution: zeros, constant, reflect,
        symmetric, replicate, circular.
    pad_value : float
        Fill value of ``constant``.
    convolve : bool
        Flip the kernel by 180 degrees (true convolution) instead of
        cross-correlation.
    origin : (int, int)
        SciPy ndimage's ``origin`` (rows, columns): the window moves this many
        rows up and columns left, the padding moving with it from the
        bottom/right to the top/left; the output size is unchanged.
    same_extra : {'bottom-right', 'top-left'}
        Where padding ``'same'`` puts the extra row/column of an even kernel:
        PyTorch's bottom/right, or SciPy's, ImageMagick's and libvips'
        top/left.
    """

    stride: Pair = (1, 1)
    padding: PaddingSpec = (0, 0)
    dilation: Pair = (1, 1)
    pad_mode: str = "zeros"
    pad_value: float = 0.0
    convolve: bool = False
    origin: Pair = (0, 0)
    same_extra: str = "bottom-right"

    def sides(self, kernel: Pair) -> Sides:
        """The padding a kernel of this size gets, ``((top, bottom), (left, right))`` (origin and same extra applied).

        >>> Geometry(padding="same", origin=(1, 0)).sides((3, 3))
        ((2, 0), (1, 1))
        """
        return resolve_padding(
            self.padding, kernel, self.dilation, self.stride, origin=self.origin, same_extra=self.same_extra
        )


@dataclass(frozen=True)
class ReadSettings:
    """How a source becomes an array (see :func:`convcli.load`).

    Attributes
    ----------
    gray : {'luma', 'mean'}
    normalize : {'dtype', 'max', 'none'}
    color : bool
        Keep RGB, an ``(H, W, 3)`` array.
    frame : int
        Frame of an animated GIF or multi-page TIFF.
    timeout : float
        Seconds for a URL.
    max_download : int
        Bytes accepted from a URL.
    max_pixels : int or None
        Pixels accepted from a header (``None``: no limit).
    orient : bool
        Turn photos upright by their EXIF orientation, as viewers show them
        (``False``: the pixels as stored).
    """

    gray: str = "luma"
    normalize: str = "dtype"
    color: bool = False
    frame: int = 0
    timeout: float = DEFAULT_TIMEOUT
    max_download: int = DEFAULT_MAX_DOWNLOAD
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    orient: bool = True


@dataclass(frozen=True)
class WriteSettings:
    """How an array becomes a file (see :func:`convcli.save`).

    Attributes
    ----------
    format : str or None
        Output format; ``None`` takes it from the destination's suffix.
    scale : {'auto', 'minmax', 'abs', 'clip', 'percentile', 'percentile:P'}
        Floats to pixels (image formats only; see :func:`convcli.io.to_pixels`).
    vmin, vmax : float or None
        Values shown black and white.
    depth : {8, 16}
        Bits per pixel of image formats.
    compression : int
        PNG zlib level, 0 to 9.
    """

    format: str | None = None
    scale: str = "auto"
    vmin: float | None = None
    vmax: float | None = None
    depth: int = 8
    compression: int = 1


@dataclass(frozen=True)
class FilterSettings:
    """Everything :func:`filter` needs besides the image and the kernels.

    Attributes
    ----------
    geometry : Geometry
        Stride, padding, dilation, border and flip.
    bias : float
        Added to every output value of each step.
    method : {'auto', 'direct', 'separable', 'fft', 'box'}
        Algorithm; all give the same numbers to rounding.
    precision : {'auto', 'float32', 'float64'}
        ``auto`` computes float32 input in float32 and anything else in float64.
    job_images : int
        How many images the job filters; the plan then charges each OpenCV
        plan its share of importing OpenCV (a one-shot run of a mid-size image
        would spend more importing it than it saves). The command line sets it
        to its number of sources, the same in every process of the job
        (``--jobs``, Dask), so all of them pick the same plans; 0 (the default,
        the library's: a session pays the import once) charges nothing.
    """

    geometry: Geometry = field(default_factory=Geometry)
    bias: float = 0.0
    method: str = "auto"
    precision: str = "auto"
    job_images: int = 0


@dataclass(frozen=True)
class PoolSettings:
    """Everything :func:`pool` needs besides the image.

    Attributes
    ----------
    op : {'max', 'mean', 'min'}
    size : (int, int)
        Window size.
    stride : (int, int) or None
        ``None``: the window size (PyTorch's default).
    padding : (int, int) or ((top, bottom), (left, right))
        Each side at most half the window.
    dilation : (int, int)
    ceil_mode, count_include_pad : bool
    """

    op: str = "max"
    size: Pair = (2, 2)
    stride: Pair | None = None
    padding: Pair | Sides = (0, 0)
    dilation: Pair = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True


@dataclass(frozen=True)
class UpsampleSettings:
    """Everything :func:`upsample` needs besides the image and the kernel.

    Attributes
    ----------
    stride, output_padding, dilation : (int, int)
        ``torch.nn.functional.conv_transpose2d``'s arguments.
    padding : (int, int), ((top, bottom), (left, right)) or 'auto'
        Cut from each side (PyTorch's meaning), or per side. ``'auto'``: the
        padding that makes a named upsampling kernel (``bilinear``,
        ``nearest``) give exactly ``stride`` times the size
        (:func:`convcli.transpose.factor_padding`), 0 for any other kernel.
    output_size : (int, int) or None
        Wanted output size: sets ``output_padding`` (as PyTorch's
        ``output_size``); ``None`` keeps ``output_padding``.
    bias : float
    """

    stride: Pair = (2, 2)
    padding: Pair | Sides | str = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    output_size: Pair | None = None
    bias: float = 0.0
