"""Learning a kernel back from an (input, target) pair.

The filter is linear in its weights, so recovering the kernel from an image
and its filtered version is a least-squares problem. Two solvers:

* ``gd``: gradient descent on the **summed** squared error
  ``L(K, b) = sum_{i,j} (correlate2d(X, K)[i, j] + b - Y[i, j])**2``.
  One *epoch* is one full-batch step with the true gradient of ``L``.
  With the residual ``R = correlate2d(X, K) + b - Y`` the gradient is itself a
  cross-correlation of the padded input with the residual, stride and
  dilation swapping roles::

      dL/dK[u, v] = 2 * sum_{i,j} R[i, j] * Xpad[i*sh + u*dh, j*sw + v*dw]
                  = 2 * correlate2d(Xpad, R, stride=(dh, dw), dilation=(sh, sw))[u, v]
      dL/db       = 2 * sum_{i,j} R[i, j]

  so the forward pass and the gradient both run on :func:`convcli.engine.correlate2d`.
* ``lstsq``: the exact least-squares kernel from the design matrix whose rows
  are the input patches (im2col with the engine's geometry); it reports the
  rank of that matrix, and the kernel is identifiable only when the rank
  equals the number of unknowns (``kh*kw``, plus one with a bias).

Conventions are the engine's: cross-correlation (the kernel is not flipped)
unless ``convolve=True``, in which case the returned kernel is the one a true
convolution applies (the correlation kernel flipped by 180 degrees). Padding,
stride and dilation follow PyTorch ``conv2d``; the geometry comes from
:func:`convcli.shapes.conv_geometry`. The target must have the output size
``floor((M + p_before + p_after - d*(k-1) - 1)/s) + 1`` per axis.

The model (forward pass, gradient, design matrix) is in
:mod:`convcli.teach.learn_model`; the classic lesson of ``--demo`` in
:mod:`convcli.teach.learn_lesson`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..engine import pad2d
from ..errors import ParameterError, ShapeError
from ..shapes import ConvGeometry, PaddingSpec, format_pair
from .fits import FitResult, rounding_floor, unit_roundoff
from .learn_model import _forward, _identifiability, _rank_from, _weight_gradient, as_plane, design_matrix
from .targets import check_target, padding_spec, size_pair

Pair = tuple[int, int]

SOLVERS = ("gd", "lstsq")
OPTIMIZERS = ("sgd", "momentum", "adam")

#: Heavy-ball momentum (PyTorch ``SGD(momentum=0.9)``, no dampening).
MOMENTUM = 0.9
#: Adam's constants (PyTorch defaults).
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
#: Largest design matrix (rows x unknowns) built; above it ``lstsq`` refuses and ``gd`` skips the rank.
MAX_DESIGN_ENTRIES = 50_000_000


# ---------------------------------------------------------------------------
# Solvers


def _prepare(
    image: np.ndarray,
    target: np.ndarray,
    size: Pair | int,
    stride: Pair | int,
    padding: PaddingSpec | int,
    dilation: Pair | int,
    pad_mode: str,
    pad_value: float,
) -> tuple[np.ndarray, np.ndarray, ConvGeometry, np.ndarray, float]:
    unit = unit_roundoff(np.asarray(image), np.asarray(target))
    image = as_plane(image, "input")
    target = as_plane(target, "target")
    geometry = check_target(
        image.shape, target.shape, size_pair(size), size_pair(stride), padding_spec(padding), size_pair(dilation)
    )
    padded = pad2d(image, geometry.padding, pad_mode, pad_value)
    return image, target, geometry, padded, unit


def _floor(
    padded: np.ndarray, weights: np.ndarray, bias: float, geometry: ConvGeometry, unknowns: int, unit: float
) -> float:
    """:func:`~convcli.teach.fits.rounding_floor` of this kernel on this input: ``c_i = sum |w||x| + |b|``."""
    terms = _forward(np.abs(padded), np.abs(weights), abs(bias), geometry)
    return rounding_floor(float(np.sum(terms**2)), unknowns, terms.size, unit)


def fit_lstsq(
    image: np.ndarray,
    target: np.ndarray,
    size: Pair | int,
    *,
    stride: Pair | int = 1,
    padding: PaddingSpec | int = 0,
    dilation: Pair | int = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
    learn_bias: bool = False,
) -> FitResult:
    """The least-squares kernel: ``argmin ||A w - y||`` over the input patches (``numpy.linalg.lstsq``).

    When the patches do not determine the kernel (rank below the number of
    unknowns) the minimum-norm solution is returned with a warning.

    >>> from convcli.engine import correlate2d
    >>> x = np.ones((6, 8)); x[:, 2:6] = 0
    >>> y = correlate2d(x, np.array([[1., -1.]]))
    >>> fit = fit_lstsq(x, y, (1, 2))
    >>> np.round(fit.kernel, 12), fit.rank, fit.unknowns
    (array([[ 1., -1.]]), 2, 2)
    """
    image, target, geometry, padded, unit = _prepare(
        image, target, size, stride, padding, dilation, pad_mode, pad_value
    )
    unknowns = geometry.kernel[0] * geometry.kernel[1] + (1 if learn_bias else 0)
    rows = geometry.output[0] * geometry.output[1]
    if rows * unknowns > MAX_DESIGN_ENTRIES:
        raise ParameterError(
            f"the least-squares system would be {rows}x{unknowns} (over {MAX_DESIGN_ENTRIES:,} entries); "
            f"crop or shrink the images, or use --solver gd"
        )
    matrix = design_matrix(padded, geometry, learn_bias)
    solution, _, rank, singular = np.linalg.lstsq(matrix, target.ravel(), rcond=None)
    weights = solution[: unknowns - (1 if learn_bias else 0)].reshape(geometry.kernel)
    bias = float(solution[-1]) if learn_bias else 0.0
    residual = _forward(padded, weights, bias, geometry) - target
    loss = float(np.sum(residual**2))
    return FitResult(
        kernel=np.ascontiguousarray(weights[::-1, ::-1] if convolve else weights),
        bias=bias,
        loss=loss,
        losses=(loss,),
        solver="lstsq",
        optimizer=None,
        epochs=0,
        lr=None,
        seed=None,
        initial_kernel=None,
        rank=int(rank),
        unknowns=unknowns,
        singular_values=tuple(float(s) for s in singular),
        geometry=geometry,
        convolve=convolve,
        learn_bias=learn_bias,
        warnings=tuple(_identifiability(int(rank), unknowns, learn_bias)),
        loss_floor=_floor(padded, weights, bias, geometry, unknowns, unit),
    )


def initial_kernel(size: Pair | int, seed: int | None, learn_bias: bool = False) -> tuple[np.ndarray, float]:
    """The random starting point: PyTorch's default ``Conv2d`` initialisation.

    Every weight (and the bias) is drawn uniformly from ``[-1/sqrt(kh*kw), 1/sqrt(kh*kw)]``
    (``kaiming_uniform_(a=sqrt(5))``) with ``numpy.random.default_rng(seed)``.

    >>> w, b = initial_kernel((1, 2), seed=0)
    >>> w.shape, bool(np.all(np.abs(w) <= 2 ** -0.5)), b
    ((1, 2), True, 0.0)
    """
    kh, kw = size_pair(size)
    bound = 1.0 / np.sqrt(kh * kw)
    rng = np.random.default_rng(seed)
    weights = rng.uniform(-bound, bound, size=(kh, kw))
    bias = float(rng.uniform(-bound, bound)) if learn_bias else 0.0
    return weights, bias


def _optimizer(name: str, lr: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A step function ``(params, grad) -> new params`` with PyTorch's update rule for ``name``."""
    if name == "sgd":
        return lambda params, grad: params - lr * grad
    if name == "momentum":
        state: dict[str, np.ndarray | None] = {"velocity": None}

        def momentum_step(params: np.ndarray, grad: np.ndarray) -> np.ndarray:
            velocity = grad if state["velocity"] is None else MOMENTUM * state["velocity"] + grad
            state["velocity"] = velocity
            return params - lr * velocity

        return momentum_step
    if name == "adam":
        beta1, beta2 = ADAM_BETAS
        adam: dict[str, np.ndarray | int] = {"m": 0.0, "v": 0.0, "t": 0}  # type: ignore[dict-item]

        def adam_step(params: np.ndarray, grad: np.ndarray) -> np.ndarray:
            adam["t"] = int(adam["t"]) + 1
            t = int(adam["t"])
            adam["m"] = beta1 * adam["m"] + (1 - beta1) * grad
            adam["v"] = beta2 * adam["v"] + (1 - beta2) * grad * grad
            m_hat = adam["m"] / (1 - beta1**t)
            v_hat = adam["v"] / (1 - beta2**t)
            return params - lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)

        return adam_step
    raise ParameterError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


def stable_lr(singular_values: tuple[float, ...], optimizer: str) -> float | None:
    """Largest learning rate for which ``sgd``/``momentum`` converge on this data (``None`` for adam or unknown).

    The Hessian of the summed squared error is ``2 A^T A`` with largest
    eigenvalue ``L = 2 s_max**2``; plain gradient descent converges for
    ``lr < 2/L``, heavy-ball momentum ``mu`` for ``lr < 2(1 + mu)/L``.

    >>> round(stable_lr((30.0 ** 0.5, 6.0 ** 0.5), "sgd"), 6)  # the classic lesson: L = 60
    0.033333
    """
    if optimizer == "adam" or not singular_values or singular_values[0] == 0:
        return None
    top = 2.0 * singular_values[0] ** 2
    return float(2.0 / top if optimizer == "sgd" else 2.0 * (1.0 + MOMENTUM) / top)


def fit_gd(
    image: np.ndarray,
    target: np.ndarray,
    size: Pair | int,
    *,
    epochs: int = 10,
    lr: float = 0.03,
    optimizer: str = "sgd",
    seed: int | None = None,
    stride: Pair | int = 1,
    padding: PaddingSpec | int = 0,
    dilation: Pair | int = 1,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    convolve: bool = False,
    learn_bias: bool = False,
    start: np.ndarray | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    lower_lr: bool = False,
) -> FitResult:
    """Learn the kernel by gradient descent on the summed squared error.

    Parameters
    ----------
    image, target : ndarray, 2-D
        The target must have the output size of the geometry.
    size : int or (kh, kw)
    epochs : int
        Full-batch steps: each epoch computes the loss and its exact gradient
        on the whole image and takes one optimizer step.
    lr : float
        Learning rate. The loss is a *sum* over output pixels, so the stable
        range shrinks as the image grows (see :func:`stable_lr`).
    optimizer : {'sgd', 'momentum', 'adam'}
        PyTorch's rules: ``SGD``, ``SGD(momentum=0.9)``, ``Adam`` (0.9, 0.999, 1e-8).
    seed : int or None
        Seed of the random start (:func:`initial_kernel`).
    start : ndarray, optional
        A starting kernel instead of the random one (the bias then starts at 0).
    on_epoch : callable, optional
        Called as ``on_epoch(n, loss)`` after each epoch (for progress).
    lower_lr : bool
        When ``lr`` (a default, not the user's choice) is above the stable
        limit, use the fastest stable rate instead of refusing, and say so in
        the first warning.

    Raises
    ------
    ParameterError
        When ``lr`` is above the stable limit of ``sgd``/``momentum`` on this
        data (:func:`stable_lr`; checked before the first step), or the loss
        becomes infinite or NaN.

    Examples
    --------
    >>> from convcli.engine import correlate2d
    >>> x = np.ones((6, 8)); x[:, 2:6] = 0
    >>> y = correlate2d(x, np.array([[1., -1.]]))
    >>> fit = fit_gd(x, y, (1, 2), epochs=10, lr=0.03, seed=0)
    >>> len(fit.history), fit.history[-1] < fit.history[0], bool(np.abs(fit.kernel - [1, -1]).max() < 0.1)
    (11, True, True)
    """
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    if epochs < 0:
        raise ParameterError(f"epochs {epochs} must be at least 0")
    if not (np.isfinite(lr) and lr > 0):
        raise ParameterError(f"learning rate {lr!r} must be a positive number")
    image, target, geometry, padded, unit = _prepare(
        image, target, size, stride, padding, dilation, pad_mode, pad_value
    )
    if start is None:
        kernel0, bias = initial_kernel(geometry.kernel, seed, learn_bias)
    else:
        kernel0 = np.asarray(start, dtype=np.float64)
        if kernel0.shape != geometry.kernel:
            raise ShapeError(
                f"starting kernel is {format_pair(kernel0.shape)} but --size is {format_pair(geometry.kernel)}"
            )
        bias = 0.0
    unknowns = geometry.kernel[0] * geometry.kernel[1] + (1 if learn_bias else 0)
    rank: int | None = None
    singular: tuple[float, ...] = ()
    if geometry.output[0] * geometry.output[1] * unknowns <= MAX_DESIGN_ENTRIES:
        matrix = design_matrix(padded, geometry, learn_bias)
        values = np.linalg.svd(matrix, compute_uv=False)
        rank = _rank_from(values, matrix.shape)
        singular = tuple(float(s) for s in values)

    bound = stable_lr(singular, optimizer)
    lowered = None
    if bound is not None and lr > bound * (1 + 1e-9):
        top, low = 2.0 * singular[0] ** 2, 2.0 * singular[-1] ** 2
        suggestion = 2.0 / (top + low) if optimizer == "sgd" else bound / 2
        step = 10.0 ** (np.floor(np.log10(suggestion)) - 1)
        suggestion = float(np.floor(suggestion * 0.999 / step) * step)  # two digits, rounded down
        if lower_lr:
            lowered = (
                f"note: the default --lr {lr:g} would diverge on this input (the loss is a sum over "
                f"{geometry.output[0] * geometry.output[1]:,} outputs; stable below {bound:.3g}); using --lr "
                f"{suggestion:.2g}. Give --lr to choose, or --solver lstsq for the exact kernel in one step"
            )
            lr = suggestion
    if lowered is None and bound is not None and lr > bound * (1 + 1e-9):
        raise ParameterError(
            f"--lr {lr:g} is above the stable limit {bound:.4g} for {optimizer} on this input (the largest eigenvalue "
            f"of the loss's Hessian 2 A^T A is {top:.4g}): gradient descent would diverge; use --lr {suggestion:.2g} "
            f"or less, or --solver lstsq"
        )

    # Optimise the correlation weights; with convolve the user's kernel is their flip.
    weights = kernel0[::-1, ::-1].copy() if convolve else kernel0.copy()
    params = np.append(weights.ravel(), bias)
    step = _optimizer(optimizer, lr)
    kh, kw = geometry.kernel

    residual = _forward(padded, weights, bias, geometry) - target
    history = [float(np.sum(residual**2))]
    for epoch in range(1, epochs + 1):
        bias_grad = 2.0 * residual.sum() if learn_bias else 0.0
        grad = np.append(_weight_gradient(padded, residual, geometry).ravel(), bias_grad)
        params = step(params, grad)
        weights = params[:-1].reshape(kh, kw)
        bias = float(params[-1])
        with np.errstate(over="ignore", invalid="ignore"):
            residual = _forward(padded, weights, bias, geometry) - target
            loss = float(np.sum(residual**2))
        if not np.isfinite(loss) or not np.all(np.isfinite(params)):
            bound = stable_lr(singular, optimizer)
            hint = f"it is stable below {bound:.4g} for this input" if bound else "try a smaller one"
            raise ParameterError(
                f"gradient descent diverged at epoch {epoch} (the loss overflowed): --lr {lr:g} is too large; "
                f"{hint}, or use --solver lstsq"
            )
        history.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, loss)

    warnings = _identifiability(rank, unknowns, learn_bias)
    if lowered is not None:
        warnings.insert(0, lowered)
    if bound is not None and lr >= bound * (1 - 1e-9):
        warnings.append(
            f"warning: --lr {lr:g} is at the stable limit {bound:.4g} for {optimizer} on this input; "
            f"the loss oscillates instead of converging"
        )
    elif epochs and history[-1] > history[0]:
        warnings.append(f"warning: the loss grew from {history[0]:.4g} to {history[-1]:.4g}; use a smaller --lr")
    return FitResult(
        kernel=np.ascontiguousarray(weights[::-1, ::-1] if convolve else weights.copy()),
        bias=bias if learn_bias else 0.0,
        loss=history[-1],
        losses=tuple(history),
        solver="gd",
        optimizer=optimizer,
        epochs=epochs,
        lr=lr,
        seed=seed,
        initial_kernel=kernel0,
        rank=rank,
        unknowns=unknowns,
        singular_values=singular,
        geometry=geometry,
        convolve=convolve,
        learn_bias=learn_bias,
        warnings=tuple(warnings),
        loss_floor=_floor(padded, weights, bias if learn_bias else 0.0, geometry, unknowns, unit),
    )


def fit(image: np.ndarray, target: np.ndarray, size: Pair | int, *, solver: str = "gd", **options) -> FitResult:
    """Dispatch to :func:`fit_gd` or :func:`fit_lstsq` (``epochs``, ``lr``, ``optimizer``, ``seed`` are for gd)."""
    if solver == "gd":
        return fit_gd(image, target, size, **options)
    if solver == "lstsq":
        for name in ("epochs", "lr", "optimizer", "seed", "start", "on_epoch"):
            options.pop(name, None)
        return fit_lstsq(image, target, size, **options)
    raise ParameterError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
