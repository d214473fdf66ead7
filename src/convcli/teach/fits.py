"""The record of a learned kernel (:class:`FitResult`), how its loss is shown, and its notebook views.

The rounding level of a loss
----------------------------
A least-squares fit of exact data ends with a loss that is only rounding
noise (``2.01181e-10`` on one machine, ``1.56695e-10`` on another for the same
command: the target was computed in float32 by a different backend). Printing
that number says nothing and makes generated docs depend on the machine, so the
summary and ``--json`` show such a loss as ``0`` with the note "(at rounding
level)". The level, :attr:`FitResult.loss_floor`, is a worst-case bound on the
rounding error of data that the fitted kernel reproduces exactly:

* each target value ``y_i = sum_j w_j x_ij + b`` computed in the data's float
  type (unit roundoff ``u``: 2**-24 for float32, 2**-53 for float64; the
  coarsest of input and target) is off by at most ``(k + 1) * u * c_i`` with
  ``k`` the number of unknowns and ``c_i = sum_j |w_j| |x_ij| + |b|`` (the
  standard bound for a ``k``-term dot product, Higham, *Accuracy and Stability
  of Numerical Algorithms*, §3.1, plus the final rounding to storage);
* the float64 solve adds at most ``m * k * u64`` relative to the same terms
  (``m`` outputs; the backward-error bound of a least-squares solve, ibid.
  §20), negligible for float32 data.

So ``loss_floor = ((k + 1) u + m k u64)**2 * sum_i c_i**2``. A loss at or below
it cannot be told from a perfect fit computed in finite precision; a loss above
it is printed with 6 significant digits. The bound is generous (the measured
noise of the float32 example above is 1/1000 of it) so that the display does
not flip between machines, and tight enough that any real misfit (8-bit
rounding of a PNG target, noise, a wrong size) shows. The raw numbers stay in
:attr:`FitResult.loss` and :attr:`FitResult.losses`. The rule uses the fitted
kernel, so it applies to what is reported once the fit is done (the summary,
``--json``'s ``loss`` and ``history``); the live progress lines of gradient
descent (``epoch N, loss L``) print the loss as computed.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..shapes import ConvGeometry, format_pair

#: How a loss at or below :attr:`FitResult.loss_floor` is printed.
ROUNDING_LEVEL = "0 (at rounding level)"


def unit_roundoff(*arrays: Any) -> float:
    """Unit roundoff of the coarsest float type among ``arrays`` (float64's for integers and float64).

    >>> unit_roundoff(np.zeros(2, np.float32), np.zeros(2)) == 2.0**-24
    True
    """
    units = [float(np.finfo(a.dtype).eps) / 2 for a in arrays if np.issubdtype(a.dtype, np.floating)]
    return max([2.0**-53, *units])


def rounding_floor(scale_squares: float, unknowns: int, outputs: int, unit: float) -> float:
    """``((k + 1) u + m k u64)**2 * sum_i c_i**2`` (see the module docstring).

    >>> rounding_floor(4.0, 1, 1, 0.5)  # (2 * 0.5 + tiny)**2 * 4
    4.0
    """
    tolerance = (unknowns + 1) * unit + outputs * unknowns * 2.0**-53
    return float(tolerance**2 * scale_squares)


def format_loss(loss: float, floor: float = 0.0) -> str:
    """``0 (at rounding level)`` at or below ``floor``, else 6 significant digits.

    >>> format_loss(2.01181e-10, 1e-7), format_loss(0.326297, 1e-7), format_loss(0.0)
    ('0 (at rounding level)', '0.326297', '0')
    """
    if loss <= floor and loss != 0.0:
        return ROUNDING_LEVEL
    return f"{loss:.6g}"


def shown_loss(loss: float, floor: float) -> float:
    """The loss as ``--json`` reports it: 0.0 at rounding level, else the value."""
    return 0.0 if loss <= floor else loss


def matrix_text(array: Any, indent: str = "  ") -> str:
    """A kernel for people: 6 significant digits, right-aligned columns.

    >>> print(matrix_text(np.array([[1.0, -1.0]])))
       1  -1
    """
    cells = [[f"{float(v) + 0.0:.6g}" for v in row] for row in array]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + "  ".join(c.rjust(width) for c in row) for row in cells)


def inline_text(array: Any) -> str:
    """A small kernel on one line: ``[1, -1]``, or rows separated by ``;``.

    >>> inline_text(np.array([[1.0, -1.0], [0.5, 2.0]]))
    '[1, -1; 0.5, 2]'
    """
    rows = [", ".join(f"{float(v) + 0.0:.6g}" for v in row) for row in array]
    return "[" + "; ".join(rows) + "]"


@dataclass(frozen=True)
class FitResult:
    """A learned kernel and how it was found.

    ``str()`` is the summary ``convcli learn`` prints (the summary line, the
    kernel, the bias when learned); in a notebook ``_repr_html_`` shows the loss
    curve (a table when matplotlib is missing) and ``_repr_png_`` the curve.

    Attributes
    ----------
    kernel : ndarray, shape (kh, kw)
        The learned kernel, in the orientation it is applied: by correlation,
        or by convolution (flipped) when ``convolve`` is true.
    bias : float
        The learned bias (0.0 when the bias was not learned).
    loss : float
        Summed squared error of ``kernel`` and ``bias`` on the target, as computed.
    losses : tuple of float
        ``losses[n]`` is the loss after ``n`` epochs (``losses[0]`` is the
        starting point); ``(loss,)`` for ``lstsq``. ``history`` is the same.
    solver, optimizer : str
        ``optimizer`` is ``None`` for ``lstsq``.
    epochs : int
    lr : float or None
    seed : int or None
        The seed of the starting kernel (``gd``).
    initial_kernel : ndarray or None
        The random starting kernel (``gd``).
    rank : int or None
        Rank of the design matrix; ``None`` when it was too large to build.
    unknowns : int
        ``kh*kw`` (+1 with a bias).
    singular_values : tuple of float
        Of the design matrix, largest first (empty when not computed). The
        Hessian of the loss is ``2 A^T A``: its eigenvalues are ``2 s**2``.
    geometry : ConvGeometry
    convolve, learn_bias : bool
    warnings : tuple of str
        One-line warnings (kernel not identifiable, learning rate too large...).
    loss_floor : float
        The rounding level of the loss (see the module docstring): a loss at or
        below it is shown as 0.
    size_inferred : bool
        The kernel size was inferred from the input and target sizes.
    """

    kernel: np.ndarray = field(repr=False)
    bias: float
    loss: float
    losses: tuple[float, ...]
    solver: str
    optimizer: str | None
    epochs: int
    lr: float | None
    seed: int | None
    initial_kernel: np.ndarray | None = field(repr=False)
    rank: int | None
    unknowns: int
    singular_values: tuple[float, ...]
    geometry: ConvGeometry
    convolve: bool
    learn_bias: bool
    warnings: tuple[str, ...]
    loss_floor: float = 0.0
    size_inferred: bool = False

    @property
    def history(self) -> tuple[float, ...]:
        """The loss history, :attr:`losses` (the name ``--json`` uses)."""
        return self.losses

    @property
    def identifiable(self) -> bool | None:
        """True when the data determine the kernel uniquely (``None`` if the rank is unknown)."""
        return None if self.rank is None else self.rank == self.unknowns

    @property
    def at_rounding_level(self) -> bool:
        """The final loss is rounding noise: the kernel reproduces the target to the data's precision."""
        return self.loss <= self.loss_floor

    def summary(self) -> str:
        """The one summary line (solver, size, rank or optimizer, the loss)."""
        how = "convolution, flipped" if self.convolve else "correlation"
        size = format_pair(self.kernel.shape)
        loss = format_loss(self.loss, self.loss_floor)
        if self.solver == "lstsq":
            return f"least-squares {size} kernel ({how}; rank {self.rank} of {self.unknowns} unknowns): loss {loss}"
        return (
            f"learned {size} kernel ({how}; {self.optimizer}, {self.epochs} epochs, lr {self.lr:g}, "
            f"seed {self.seed}): loss {format_loss(self.losses[0], self.loss_floor)} -> {loss}"
        )

    def __str__(self) -> str:
        lines = [self.summary(), matrix_text(self.kernel)]
        if self.learn_bias:
            lines.append(f"bias {self.bias:.6g}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The ``convcli learn --json`` record (losses at rounding level as 0.0, flagged)."""
        geometry = self.geometry
        return {
            "kernel": self.kernel.tolist(),
            "bias": self.bias,
            "learned_bias": self.learn_bias,
            "loss": shown_loss(self.loss, self.loss_floor),
            "loss_at_rounding_level": self.at_rounding_level,
            "history": [shown_loss(value, self.loss_floor) for value in self.losses],
            "solver": self.solver,
            "optimizer": self.optimizer,
            "epochs": self.epochs,
            "lr": self.lr,
            "seed": self.seed,
            "rank": self.rank,
            "unknowns": self.unknowns,
            "identifiable": self.identifiable,
            "size": {"height": geometry.kernel[0], "width": geometry.kernel[1]},
            "input": {"height": geometry.input[0], "width": geometry.input[1]},
            "target": {"height": geometry.output[0], "width": geometry.output[1]},
            "stride": list(geometry.stride),
            "padding": [list(p) for p in geometry.padding],
            "dilation": list(geometry.dilation),
            "convolve": self.convolve,
            "warnings": list(self.warnings),
        }

    def loss_figure(self, *, log_scale: bool = False, title: str = "") -> Any:
        """The loss curve as a matplotlib ``Figure`` (needs matplotlib)."""
        from .figures import loss_figure, require_matplotlib

        require_matplotlib("FitResult.loss_figure")
        return loss_figure(self.losses, log_scale=log_scale, title=title or self.summary().split(":")[0])

    def _repr_png_(self) -> bytes | None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return None
        from .figures import png_bytes

        return png_bytes(self.loss_figure())

    def _repr_html_(self) -> str:
        png = self._repr_png_()
        kernel = "".join(
            "<tr>" + "".join(f'<td style="text-align:right">{float(v) + 0.0:.6g}</td>' for v in row) + "</tr>"
            for row in self.kernel
        )
        parts = [f"<p>{html.escape(self.summary())}</p>", f"<table><caption>kernel</caption>{kernel}</table>"]
        if self.learn_bias:
            parts.append(f"<p>bias {self.bias:.6g}</p>")
        if png is not None:
            parts.append(f'<img alt="loss per epoch" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>')
        else:
            rows = "".join(
                f"<tr><td>{epoch}</td><td>{html.escape(format_loss(value, self.loss_floor))}</td></tr>"
                for epoch, value in enumerate(self.losses)
            )
            parts.append(f"<table><thead><tr><th>epoch</th><th>loss</th></tr></thead><tbody>{rows}</tbody></table>")
        parts += [f"<p>{html.escape(w)}</p>" for w in self.warnings]
        return "".join(parts)
