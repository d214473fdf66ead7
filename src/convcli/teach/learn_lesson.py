"""The classic lesson of ``convcli learn --demo``, and what ``learn`` says about the data it is given.

The 6x8 edge image filtered with ``[1, -1]`` (``samples/edges.txt`` and
``diff-x``), learned back from a random start: the lines printed before and
after the fit (why gradient descent is not exact, and least squares is), and
the note on a TARGET read from an image file (rounded, maybe stretched).
"""

from __future__ import annotations

import numpy as np

from ..engine import correlate2d
from .fits import FitResult, inline_text
from .learn import initial_kernel, stable_lr

#: The kernel of the classic lesson: ``diff-x``, ``x[j] - x[j+1]``.
LESSON_KERNEL = np.array([[1.0, -1.0]])


def lesson_image() -> np.ndarray:
    """The 6x8 image of the classic lesson: ones with the middle four columns 0 (``samples/edges.txt``).

    >>> lesson_image()[0]
    array([1., 1., 0., 0., 0., 0., 1., 1.])
    """
    image = np.ones((6, 8))
    image[:, 2:6] = 0.0
    return image


def lesson_target() -> np.ndarray:
    """``lesson_image()`` filtered with ``[1, -1]``: 6x7, 1 where white turns black, -1 where black turns white."""
    return correlate2d(lesson_image(), LESSON_KERNEL)


def image_target_note(name: str, detail: str, target: np.ndarray) -> str:
    """What a TARGET read from an image file costs the fit, and how to avoid it (``convcli learn`` prints it).

    A saved image holds rounded pixels, read back as [0, 1]; a result that ``filter`` stretched to fill
    0..255 (minmax, percentile, or auto on signed values) comes back as ``a * result + b``, so the kernel learned
    is ``a`` times the filter's, plus an offset: ``1.03 -0.31`` for ``1 -1``.

    >>> print(image_target_note("t.png", "PNG L 8-bit", np.array([[0.0, 0.5, 1.0]])))  # doctest: +ELLIPSIS
    note: TARGET t.png is an image (PNG L 8-bit), read as values in [0, 1] (here 0..1): ...stretched a result to 0..255...
    """
    low, high = float(np.nanmin(target)), float(np.nanmax(target))
    text = f"note: TARGET {name} is an image ({detail}), read as values in [0, 1] (here {low:.4g}..{high:.4g}): "
    if low == 0 and high == 1:
        text += (
            "its pixels span exactly 0..255, as when filter stretched a result to 0..255 (--scale minmax, "
            "percentile, or auto on signed values), so the kernel learned is the stretched one, not the filter's"
        )
    else:
        text += "its values are rounded to the pixel steps, so the fit is only as exact as the rounding"
    return (
        text + "; save the target raw (convcli filter ... -o target.npy), or for results in [0, 1] (blurs) "
        "with --scale clip"
    )


def lesson_intro(seed: int) -> list[str]:
    """What ``convcli learn --demo`` says before it learns: the lesson and the random start."""
    start, _ = initial_kernel((1, 2), seed)
    return [
        "the classic lesson: a 6x8 image of ones with the middle four columns 0 (samples/edges.txt),",
        "filtered with [1, -1] (diff-x) gives the 6x7 target: 1 where white turns black, -1 where black",
        "turns white. Learn a 1x2 kernel back from a random start by gradient descent on the summed",
        "squared error (one epoch = one full-batch step with its exact gradient).",
        f"start (seed {seed}): {inline_text(start)}",
    ]


def lesson_lines(result: FitResult, exact: FitResult) -> list[str]:
    """What ``convcli learn --demo`` says after learning: the result, why it is not exact, and least squares.

    ``result`` is the gradient-descent fit of the lesson, ``exact`` the least-squares one.
    """
    epochs, lr, optimizer = result.epochs, float(result.lr or 0.0), result.optimizer
    error = float(np.abs(result.kernel - LESSON_KERNEL).max())
    lines = [
        f"gradient descent, {epochs} epochs ({optimizer}, lr {lr:g}): {inline_text(result.kernel)}; "
        f"largest error vs [1, -1]: {error:.3g}"
    ]
    hessian = sorted((2.0 * s * s for s in result.singular_values), reverse=True)
    if optimizer == "sgd" and len(hessian) == 2:
        factors = " and ".join(f"|1 - {lr:g}*{h:.4g}| = {abs(1 - lr * h):.3g}" for h in hessian)
        best = 2.0 / (hessian[0] + hessian[1])
        lines += [
            f"why not exact: the loss is a quadratic bowl; its Hessian 2 A^T A has eigenvalues {hessian[0]:.4g} "
            f"and {hessian[1]:.4g},",
            f"  so each epoch multiplies the error along their directions by {factors}.",
            f"  Gradient descent converges only for lr < {stable_lr(result.singular_values, 'sgd'):.4g}; the best "
            f"fixed lr, 2/({hessian[0]:.4g} + {hessian[1]:.4g}) = {best:.4g}, gives "
            f"{abs(1 - best * hessian[0]):.3g}.",
        ]
    exact_error = float(np.abs(exact.kernel - LESSON_KERNEL).max())
    lines += [
        "do better: the filter is linear in its weights, so least squares (--solver lstsq) solves it in one step:",
        f"  {inline_text(exact.kernel)}, largest error {exact_error:.3g}, rank {exact.rank} of {exact.unknowns} "
        f"unknowns ({'identifiable' if exact.identifiable else 'not identifiable'})",
    ]
    return lines
