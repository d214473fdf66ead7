"""The teaching functions on a kernel: :func:`explain`, :func:`figure` and :func:`frequency_response`.

The teaching half of the public API is this module,
:mod:`convcli.api.learning` (:func:`~convcli.api.learning.learn`) and
:mod:`convcli.api.receptive_fields` (``receptive_field``, ``describe_layer``,
``effective_receptive_field``). Each ``convcli`` command of the same name is a
thin client of these functions (``convcli explain`` prints
``str(explain(...))``, ``convcli learn`` prints ``str(learn(...))``,
``convcli shape`` prints ``str(receptive_field(...))`` for a stack), so a
notebook and the command line give the same numbers and the same text. The
results are small frozen records that show themselves in Jupyter
(``_repr_html_``, ``_repr_png_``).

NumPy and matplotlib are imported inside the functions, so importing them
stays light (``convcli shape`` imports the receptive fields).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .teaching_checks import IntOrPair, _kernel, _plane, border_arguments, geometry_arguments

if TYPE_CHECKING:
    from ..kernels import Kernel
    from ..shapes import Sides
    from ..teach.explain import Explanation

# ---------------------------------------------------------------------------
# explain


def explain(
    image: Any,
    kernel: Any,
    *,
    stride: IntOrPair = 1,
    padding: IntOrPair | str | Sides = 0,
    dilation: IntOrPair = 1,
    convolve: bool = False,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    matrix: bool = False,
    name: str = "input",
) -> Explanation:
    """Write out a small convolution: every output as its sum of products.

    Parameters
    ----------
    image : array-like, shape (M, N)
        A small 2-D grid (padded at most 16 per side, at most 64 outputs).
    kernel : str, Kernel or array-like, shape (kh, kw)
        A spec (``"0 1; 2 3"``, a catalogue name such as ``"diff-x"``, a file),
        a :class:`convcli.kernels.Kernel` or an array; at most 25 taps.
    stride, dilation : int or (H, W)
        At least 1.
    padding : int, (H, W), 'same' or 'valid'
        Rows/columns added on each side (``'same'``: stride 1, odd extra
        bottom/right, as PyTorch).
    convolve : bool
        False (default): cross-correlation, the kernel is **not** flipped (as
        ``torch.nn.functional.conv2d``). True: true convolution, the kernel is
        flipped by 180 degrees first and shown flipped.
    pad_mode : str
        Border values: zeros, constant (``pad_value``), reflect, symmetric,
        replicate, circular, or an alias (``mirror``, ``edge``, ``wrap``...).
    pad_value : float
        Fill value of ``constant``.
    matrix : bool
        Also write the result as the im2col product and as the Toeplitz-style
        weight matrix times the flattened padded input.
    name : str
        How the text names the input.

    Returns
    -------
    Explanation
        ``.output`` (the sums), ``.terms`` (each output's products),
        ``.padded``, ``.kernel`` (as applied), ``.geometry``; ``str()`` is what
        ``convcli explain`` prints.

    Notes
    -----
    ``out[i, j] = sum_{u,v} K[u, v] * Xpad[i*sh + u*dh, j*sw + v*dw]``; output
    size per axis ``floor((n + p_before + p_after - d*(k-1) - 1)/s) + 1``. The
    sums are computed independently and checked against the engine.

    Raises
    ------
    ParameterError
        The example is too large to read, the image is not 2-D, a bad stride,
        padding or dilation (the message names it).
    KernelError
        The kernel spec or array is unusable.

    Examples
    --------
    >>> import numpy as np
    >>> e = explain(np.arange(9).reshape(3, 3), [[0, 1], [2, 3]])
    >>> e.output
    array([[19., 25.],
           [37., 43.]])
    >>> print(str(e).splitlines()[12])
    out[0,0] = 0×0 + 1×1 + 3×2 + 4×3 = 19
    """
    from ..teach.explain import explain as explain_grid

    array = _plane(image, "image")
    weights = _kernel(kernel).weights
    return explain_grid(
        array,
        weights,
        **geometry_arguments(stride, padding, dilation),
        convolve=bool(convolve),
        **border_arguments(pad_mode, pad_value),
        matrix=bool(matrix),
        name=name,
    )


# ---------------------------------------------------------------------------
# figure


def _kernel_list(kernel: Any) -> list[Kernel]:
    """One kernel, or a list of specs / Kernels / 2-D arrays applied in turn (as :func:`convcli.filter` takes them)."""
    from .checks import as_kernels

    return as_kernels(kernel)


def figure(
    image: Any,
    kernel: Any,
    *,
    stride: IntOrPair = 1,
    padding: IntOrPair | str | Sides = 0,
    dilation: IntOrPair = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
    bias: float = 0.0,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    scale: str = "auto",
    name: str = "input",
    detail: str | None = None,
) -> Any:
    """The matplotlib figure ``convcli filter --figure`` draws: input | kernel | output.

    Parameters
    ----------
    image : array-like, (H, W) or (H, W, C)
        The input (RGB drawn as is, a colour image filtered per channel).
    kernel : str, Kernel, array-like, or a list of them
        As :func:`explain`; a list is applied in turn (``--chain``), one row.
    stride, padding, dilation, pad_mode, pad_value, convolve, bias
        As ``convcli filter``: cross-correlation (the kernel **not** flipped)
        unless ``convolve``; output size ``floor((n + 2p - d*(k-1) - 1)/s) + 1``.
    cmap, vmin, vmax, scale
        The output panel's colours: by default gray for values of one sign and
        ``RdBu_r`` centred on 0 for signed values; ``vmin``/``vmax``/``scale``
        as ``filter --vmin/--vmax/--scale``.
    name, detail : str
        The input's name in the title and how it was read (``filter`` gives
        the file's stem and e.g. ``PNG L 8-bit``; the size, height first, is added).

    Returns
    -------
    matplotlib.figure.Figure
        On the Agg canvas; ``fig.savefig("f.png")`` writes it.

    Raises
    ------
    OutputError
        matplotlib is not installed (the message says how to install it).
    """
    from ..teach.figures import build_comparison_figure, filter_row, require_matplotlib
    from .arrays import filter_array
    from .checks import as_image
    from .checks import geometry as checked_geometry
    from .settings import FilterSettings

    require_matplotlib("convcli.figure")
    array = as_image(image)
    kernels = _kernel_list(kernel)
    record = checked_geometry(
        stride=stride, padding=padding, dilation=dilation, pad_mode=pad_mode, pad_value=pad_value, convolve=convolve
    )
    done = filter_array(array, kernels, FilterSettings(record, bias=float(bias)))
    geometry = done.plans[0].geometry
    output = done.array
    settings = {"pad_mode": record.pad_mode}
    title = (
        f"{name}: {geometry.describe()}"
        + (", convolution (kernel flipped)" if convolve else ", correlation")
        + (f", pad mode {settings['pad_mode']}" if settings["pad_mode"] != "zeros" else "")
    )
    return build_comparison_figure(
        array,
        [filter_row(kernels, output, bool(convolve))],
        input_title=f"input {array.shape[0]}x{array.shape[1]} (HxW" + (f", {detail})" if detail else ")"),
        title=title,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        scale=scale,
    )


def frequency_response(kernel: Any) -> Any:
    """The magnitude of a kernel's frequency response, its cuts along each axis and its gains at 0 and Nyquist.

    ``H(wy, wx) = sum K[u, v] exp(-i (wy u + wx v))`` on a 128 x 128 grid of
    angular frequencies from -pi to pi (zero in the middle); ``|H|`` is the
    same for correlation and convolution (a flip conjugates ``H``).

    Parameters
    ----------
    kernel : str, array-like or Kernel
        Anything :func:`convcli.kernel` takes.

    Returns
    -------
    FrequencyResponse
        ``.frequencies``, ``.magnitude`` (2-D), ``.across`` (``|H(0, wx)|``),
        ``.down`` (``|H(wy, 0)|``), ``.dc`` (``|sum K|``) and ``.nyquist``
        (``|H(pi, 0)|``, ``|H(0, pi)|``).

    Examples
    --------
    >>> response = frequency_response("1 -1")
    >>> round(response.dc, 6), round(response.nyquist[1], 6)
    (0.0, 2.0)
    """
    from ..teach.frequency import frequency_response as compute

    return compute(_kernel(kernel).weights)
