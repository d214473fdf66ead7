"""The teaching half of the public API: :func:`explain`, :func:`learn`, :func:`receptive_field`, :func:`figure`.

Each ``convcli`` command of the same name is a thin client of these functions
(``convcli explain`` prints ``str(explain(...))``, ``convcli learn`` prints
``str(learn(...))``, ``convcli shape`` prints ``str(receptive_field(...))`` for a
stack), so a notebook and the command line give the same numbers and the same
text. The results are small frozen records that show themselves in Jupyter
(``_repr_html_``, ``_repr_png_``).

NumPy and matplotlib are imported inside the functions: ``convcli shape``
imports this module and must stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from ..shapes import PaddingSpec, Pair, Sides, as_pair, parse_padding
from ..teach.fields import ReceptiveField
from ..teach.layers import Layer, parse_layer, parse_layer_file
from ..teach.stacks import run_stack

if TYPE_CHECKING:
    from ..kernels import Kernel
    from ..teach.describe import LayerDescription
    from ..teach.explain import Explanation
    from ..teach.fits import FitResult

IntOrPair = int | Pair


# ---------------------------------------------------------------------------
# Argument checks shared by the functions


def _padding(padding: IntOrPair | str | Sides) -> PaddingSpec:
    if isinstance(padding, str) and padding.strip().lower() in ("same", "valid"):
        return padding.strip().lower()
    if isinstance(padding, tuple) and len(padding) == 2 and isinstance(padding[0], tuple):
        return parse_padding(padding)  # per side, ((top, bottom), (left, right)), as the command line gives it
    return as_pair(padding, "padding", 0)


def _pad_mode(pad_mode: str) -> str:
    from ..engine import resolve_pad_mode

    return resolve_pad_mode(str(pad_mode))


def _kernel(kernel: Any) -> Kernel:
    """A :class:`~convcli.kernels.Kernel` from a spec string, a ``Kernel``, a path or an array-like (``convcli.kernel``)."""
    from ..kernels import resolve_kernel

    return resolve_kernel(kernel)


def _plane(image: Any, what: str) -> Any:
    import numpy as np

    try:
        array = np.asarray(image)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} is not an array of numbers") from None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ParameterError(f"{what} has dtype {array.dtype}; give an array of numbers")
    return array


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
        stride=as_pair(stride, "stride", 1),
        padding=_padding(padding),
        dilation=as_pair(dilation, "dilation", 1),
        convolve=bool(convolve),
        pad_mode=_pad_mode(pad_mode),
        pad_value=float(pad_value),
        matrix=bool(matrix),
        name=name,
    )


# ---------------------------------------------------------------------------
# learn


SOLVERS = ("gd", "lstsq")
#: gradient descent's defaults (the classic lesson's).
DEFAULT_EPOCHS = 10
DEFAULT_LR = 0.03
DEFAULT_OPTIMIZER = "sgd"


def kernel_size_for(
    input: Any,
    target: Any,
    *,
    stride: IntOrPair = 1,
    padding: IntOrPair | str | Sides = 0,
    dilation: IntOrPair = 1,
) -> Pair:
    """The one kernel size that turns ``input`` into ``target``'s size with this geometry.

    Per axis (stride 1, numeric padding) it is ``(M + 2p - T)/d + 1``; with
    ``padding='same'`` every size fits and none is chosen.

    Raises
    ------
    ParameterError
        An input or target that is not a 2-D array of finite numbers.
    ShapeError
        No size, or several sizes, fit.

    Examples
    --------
    >>> import numpy as np
    >>> kernel_size_for(np.zeros((6, 8)), np.zeros((6, 7)))
    (1, 2)
    """
    from ..teach.learn_model import as_plane
    from ..teach.targets import infer_kernel_size

    image = as_plane(_plane(input, "input"), "input")
    goal = as_plane(_plane(target, "target"), "target")
    return infer_kernel_size(
        image.shape,  # type: ignore[arg-type]
        goal.shape,  # type: ignore[arg-type]
        as_pair(stride, "stride", 1),
        _padding(padding),
        as_pair(dilation, "dilation", 1),
    )


def learn(
    input: Any,
    target: Any,
    kernel_size: IntOrPair | None = None,
    *,
    solver: str = "gd",
    epochs: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    seed: int | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair | str | Sides = 0,
    dilation: IntOrPair = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
    learn_bias: bool = False,
    start: Any = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Learn a kernel back from an input and its filtered output.

    The filter is linear in its weights, so this is least squares on the
    summed squared error ``L = sum((filter(input, K) + b - target)**2)``.

    Parameters
    ----------
    input, target : array-like, 2-D
        ``target`` is the filtered ``input``: it must have the output size of
        the geometry, ``floor((M + 2p - d*(k-1) - 1)/s) + 1`` per axis.
    kernel_size : int, (kh, kw) or None
        ``None``: the one size that turns the input into the target's size
        (:func:`kernel_size_for`; ``result.size_inferred`` is then true).
    solver : {'gd', 'lstsq'}
        ``gd``: full-batch gradient descent, one exact-gradient step per epoch;
        ``lstsq``: the exact least-squares kernel (``numpy.linalg.lstsq`` on
        the im2col design matrix), with its rank.
    epochs, lr, optimizer, seed : gd only
        Steps (default 10), learning rate (0.03, lowered to the fastest stable
        rate, with a note in ``result.warnings``, when it would diverge on
        this input: the loss is a sum over pixels), ``'sgd'``, ``'momentum'``
        (0.9) or ``'adam'`` (0.9, 0.999) as PyTorch, and the seed of the random
        start (uniform in ``±1/sqrt(kh*kw)`` as PyTorch's ``Conv2d``); ``None``
        draws a fresh seed, recorded in ``result.seed``.
    stride, padding, dilation, pad_mode, pad_value
        The geometry and border, as :func:`explain`.
    convolve : bool
        Learn the kernel a true convolution applies (flipped), instead of the
        cross-correlation kernel.
    learn_bias : bool
        Also learn a bias added to every output.
    start : array-like, optional
        gd only: the starting kernel instead of the random one.
    on_epoch : callable, optional
        gd only: called as ``on_epoch(n, loss)`` after each epoch.

    Returns
    -------
    FitResult
        ``.kernel``, ``.bias``, ``.loss``, ``.losses`` (after 0, 1, ... epochs),
        ``.rank``, ``.warnings``; ``str()`` is the summary ``convcli learn``
        prints, where a loss at rounding level (``.loss_floor``) shows as 0.

    Raises
    ------
    ParameterError
        A bad solver or optimizer, gd-only options with ``solver='lstsq'``, a
        given learning rate above the stable limit (the message suggests one).
    ShapeError
        The target does not have the geometry's output size.

    Examples
    --------
    >>> from convcli.teach.learn_lesson import lesson_image, lesson_target
    >>> fit = learn(lesson_image(), lesson_target(), solver="lstsq")
    >>> fit.kernel.round(6) + 0.0, fit.rank, fit.size_inferred
    (array([[ 1., -1.]]), 2, True)
    >>> print(fit)
    least-squares 1x2 kernel (correlation; rank 2 of 2 unknowns): loss 0 (at rounding level)
       1  -1
    """
    from ..teach.learn import fit_gd, fit_lstsq

    if solver not in SOLVERS:
        raise ParameterError(f"solver {solver!r} is not one of {', '.join(SOLVERS)}")
    if solver == "lstsq":
        given = [
            name
            for name, value in (
                ("epochs", epochs),
                ("lr", lr),
                ("optimizer", optimizer),
                ("seed", seed),
                ("start", start),
                ("on_epoch", on_epoch),
            )
            if value is not None
        ]
        if given:
            raise ParameterError(f"{', '.join(given)} only apply to solver 'gd'; lstsq solves in one step, drop them")
    geometry = dict(
        stride=as_pair(stride, "stride", 1), padding=_padding(padding), dilation=as_pair(dilation, "dilation", 1)
    )
    image, goal = _plane(input, "input"), _plane(target, "target")
    inferred = kernel_size is None
    size = (
        kernel_size_for(image, goal, **geometry)  # type: ignore[arg-type]
        if kernel_size is None
        else as_pair(kernel_size, "kernel size", 1)
    )
    common: dict[str, Any] = dict(
        **geometry, pad_mode=_pad_mode(pad_mode), pad_value=float(pad_value), convolve=bool(convolve)
    )
    if solver == "lstsq":
        result = fit_lstsq(image, goal, size, learn_bias=bool(learn_bias), **common)
    else:
        if seed is None:
            import secrets

            seed = secrets.randbelow(2**32)
        result = fit_gd(
            image,
            goal,
            size,
            epochs=DEFAULT_EPOCHS if epochs is None else epochs,
            lr=DEFAULT_LR if lr is None else lr,
            lower_lr=lr is None,
            optimizer=DEFAULT_OPTIMIZER if optimizer is None else optimizer,
            seed=seed,
            learn_bias=bool(learn_bias),
            start=start,
            on_epoch=on_epoch,
            **common,
        )
    return replace(result, size_inferred=inferred)


# ---------------------------------------------------------------------------
# receptive_field


def _layers(layers: str | Layer | Sequence[str | Layer]) -> list[Layer]:
    if isinstance(layers, Layer):
        return [layers]
    if isinstance(layers, str):
        if "\n" in layers or "#" in layers:
            return parse_layer_file(layers, "layers")
        return [parse_layer(layers)]
    found = []
    for item in layers:
        if isinstance(item, Layer):
            found.append(item)
        elif isinstance(item, str):
            found.append(parse_layer(item))
        else:
            raise ParameterError(f"layer {item!r} is not a spec such as 'conv:k=3,p=1' or a Layer")
    if not found:
        raise ParameterError("layers is empty; give at least one spec, e.g. 'conv:k=3,p=1'")
    return found


def receptive_field(layers: str | Layer | Sequence[str | Layer], input_size: IntOrPair | None = None) -> ReceptiveField:
    """Sizes, jumps and receptive fields through a stack of conv, pool and transpose layers.

    Parameters
    ----------
    layers : str, Layer or a sequence of them
        Layer specs as ``convcli shape`` takes them: ``TYPE:key=value,...``
        with TYPE ``conv``, ``pool`` or ``transpose`` and keys ``k`` (kernel,
        required), ``s`` (stride), ``p`` (padding), ``d`` (dilation), ``op``
        (output padding, transpose), ``ceil`` (pool); ``conv:k=7,s=2,p=3``. A
        string with several lines is read like a ``--layers`` file (one spec a
        line, ``#`` comments).
    input_size : int, (H, W) or None
        The input size; without it only fields and jumps are computed (they do
        not depend on it).

    Returns
    -------
    ReceptiveField
        ``.rows`` (per layer: ``output``, ``field``, ``jump``, ``start``,
        ``centre`` as ``(H, W)``), ``.field`` and ``.jump`` of the last layer;
        ``str()`` is the table ``convcli shape`` prints, ``to_dict()`` its JSON.

    Notes
    -----
    The field of output (0, 0) is the exact span of input coordinates it can
    depend on (padding included, so ``start`` may be negative). For conv and
    pool it is the textbook recurrence ``rf_l = rf_(l-1) + d*(k-1)*jump_(l-1)``,
    ``jump_l = jump_(l-1)*s``; transposed layers divide the jump by their
    stride. Sizes are PyTorch's (:func:`convcli.output_size`). The cost is
    linear in the number of layers.

    Raises
    ------
    ParameterError
        A malformed spec (the message quotes it).
    ShapeError
        A layer that cannot take its input, naming the layer.

    Examples
    --------
    >>> rf = receptive_field(["conv:k=3", "conv:k=3", "pool:k=2"], 32)
    >>> rf.output, rf.field, rf.jump[0]
    ((14, 14), (6, 6), Fraction(2, 1))
    """
    stack = _layers(layers)
    size = None if input_size is None else as_pair(input_size, "input size", 1)
    return ReceptiveField(size, tuple(run_stack(stack, size)))


def describe_layer(layer: str | Layer, input_size: IntOrPair) -> LayerDescription:
    """One layer on one input size explained, as ``convcli shape --kernel ...`` prints it.

    ``layer`` is a spec (``"conv:k=3,s=3"``) or a :class:`~convcli.teach.layers.Layer`;
    the record's ``str()`` holds the formula per axis with the numbers put in, the
    input rows/columns no window reaches, windows lying in the padding and, for
    transpose, the valid output paddings; ``.output`` is :func:`convcli.output_size`.

    >>> describe_layer("conv:k=3,s=3", 5).output
    (1, 1)
    """
    from ..teach.describe import describe_layer as describe

    found = _layers(layer) if isinstance(layer, (str, Layer)) else []
    if len(found) != 1:
        raise ParameterError(
            f"layer {layer!r} is not one spec such as 'conv:k=3,s=3' or a Layer (a stack: receptive_field)"
        )
    return describe(found[0], as_pair(input_size, "input size", 1))


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


def effective_receptive_field(
    layers: str | Layer | Sequence[str | Layer],
    input_size: IntOrPair,
    *,
    pixel: IntOrPair | None = None,
    kernels: Sequence[Any] | None = None,
) -> Any:
    """With what weight each input pixel reaches one output pixel of a stack: ``d output[pixel] / d input``.

    The theoretical receptive field (:func:`receptive_field`) says which input
    pixels an output can see; this says how much each counts. It is computed
    exactly by running the stack's adjoint operations backwards from a one-hot
    output: conv layers by transposed convolution, transposed layers by strided
    correlation, pool layers as average pooling (PyTorch's ``avg_pool2d``,
    ``count_include_pad=True``). It equals PyTorch autograd's input gradient.

    Parameters
    ----------
    layers : str, Layer or a sequence of them
        As :func:`receptive_field`.
    input_size : int or (H, W)
    pixel : int or (row, col), optional
        An output pixel of the last layer; default the middle one.
    kernels : sequence, optional
        One kernel per conv/transpose layer, in order (anything
        :func:`convcli.kernel` takes, of the layer's size); default ones.

    Returns
    -------
    EffectiveField
        ``.weights`` (an ``(H, W)`` array), ``.centre``, ``.radius_50`` and
        ``.radius_90`` (the smallest radii around the centre holding 50% and
        90% of the absolute weight), ``.theoretical`` (rows and columns of the
        theoretical field); ``str()`` is the line ``convcli shape --effective``
        prints.

    Examples
    --------
    Two 3x3 layers of ones: the weights are the 3x3 box convolved with itself.

    >>> field = effective_receptive_field(["conv:k=3", "conv:k=3"], 5)
    >>> field.weights.astype(int).tolist()[2]
    [3, 6, 9, 6, 3]
    >>> round(field.radius_50, 3), field.theoretical  # 9 + 4*6 + 4*4 = 49 of 81 within sqrt(2)
    (1.414, ((0, 4), (0, 4)))
    """
    from ..teach.effective import effective_receptive_field as compute

    stack = _layers(layers)
    size = as_pair(input_size, "input size", 1)
    chosen = None if pixel is None else as_pair(pixel, "pixel", 0)
    weights = None if kernels is None else [_kernel(kernel).weights for kernel in kernels]
    return compute(stack, size, pixel=chosen, kernels=weights)


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
