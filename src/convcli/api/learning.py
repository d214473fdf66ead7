""":func:`learn` (``convcli learn``): a kernel learned back from an input and its filtered output.

The checks and defaults of the public function; the solvers are
:mod:`convcli.teach.learn`'s. NumPy is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from ..shapes import Pair, Sides, as_pair
from .teaching_checks import IntOrPair, _plane, border_arguments, geometry_arguments

if TYPE_CHECKING:
    from ..teach.fits import FitResult

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
        **geometry_arguments(stride, padding, dilation),
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
    geometry = geometry_arguments(stride, padding, dilation)
    image, goal = _plane(input, "input"), _plane(target, "target")
    inferred = kernel_size is None
    size = (
        kernel_size_for(image, goal, **geometry)  # type: ignore[arg-type]
        if kernel_size is None
        else as_pair(kernel_size, "kernel size", 1)
    )
    common: dict[str, Any] = dict(**geometry, **border_arguments(pad_mode, pad_value), convolve=bool(convolve))
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
