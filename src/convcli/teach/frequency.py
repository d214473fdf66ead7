"""A kernel's frequency response, and when a stride after it aliases.

The response of a kernel ``K`` at angular frequencies ``(wy, wx)`` (radians
per pixel, rows then columns) is its discrete-time Fourier transform::

    H(wy, wx) = sum_{u,v} K[u, v] * exp(-i (wy*u + wx*v))

Its magnitude ``|H|`` does not depend on where the kernel's origin is, nor on
whether it is applied by correlation or convolution (a flip conjugates ``H``).
``|H(0, 0)| = |sum K|`` is the gain on flat regions; ``pi`` is the Nyquist
frequency (a pattern alternating every pixel). Sampled here on an ``N x N``
grid by a zero-padded FFT, zero frequency in the middle (``fftshift``).

Aliasing: keeping every ``s``-th output (a stride) folds every frequency
above ``pi/s`` on that axis onto a lower one. :func:`aliasing_share` is the
share of the kernel's energy ``|H|**2`` above ``pi/s``; above
:data:`ALIASING_SHARE` the commands print a note suggesting a blur first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..shapes import Pair

#: Share of a kernel's energy above pi/s on an axis from which a stride s is said to alias.
ALIASING_SHARE = 0.1
#: Frequencies sampled per axis.
GRID = 128


@dataclass(frozen=True)
class FrequencyResponse:
    """``|H|`` of a kernel on a grid, its cuts along each axis and its gains.

    Attributes
    ----------
    frequencies : ndarray, shape (N,)
        Angular frequencies from ``-pi`` (included) to ``pi`` (excluded), zero in the middle.
    magnitude : ndarray, shape (N, N)
        ``|H(wy, wx)|``, rows ``wy``, columns ``wx``.
    across, down : ndarray, shape (N,)
        The cuts ``|H(0, wx)|`` (along the columns: horizontal frequencies) and ``|H(wy, 0)|``.
    dc : float
        ``|H(0, 0)| = |sum K|``.
    nyquist : (float, float)
        ``|H(pi, 0)|`` and ``|H(0, pi)|``: the gain on a pattern alternating every row, every column.
    """

    frequencies: np.ndarray = field(repr=False)
    magnitude: np.ndarray = field(repr=False)
    across: np.ndarray = field(repr=False)
    down: np.ndarray = field(repr=False)
    dc: float
    nyquist: tuple[float, float]

    def record(self) -> dict[str, Any]:
        """The gains, JSON-ready (``kernels show --freq --json``)."""
        return {"dc_gain": self.dc, "nyquist_gain": {"rows": self.nyquist[0], "columns": self.nyquist[1]}}


def _dtft(kernel: np.ndarray, wy: float | np.ndarray, wx: float | np.ndarray) -> Any:
    u = np.arange(kernel.shape[0])[:, None]
    v = np.arange(kernel.shape[1])[None, :]
    return np.sum(kernel * np.exp(-1j * (np.multiply.outer(wy, u) + np.multiply.outer(wx, v))), axis=(-2, -1))


def frequency_response(kernel: Any, grid: int = GRID) -> FrequencyResponse:
    """The magnitude of ``kernel``'s frequency response (see the module docstring for the convention).

    Examples
    --------
    The difference ``[1, -1]`` passes nothing at 0 and doubles the Nyquist pattern:
    ``|H(w)| = 2|sin(w/2)|``.

    >>> response = frequency_response([[1.0, -1.0]])
    >>> round(response.dc, 12), [round(g, 12) for g in response.nyquist]
    (0.0, [0.0, 2.0])
    """
    weights = np.atleast_2d(np.asarray(kernel, dtype=np.float64))
    size = max(grid, *weights.shape)
    spectrum = np.fft.fftshift(np.abs(np.fft.fft2(weights, s=(size, size))))
    frequencies = np.fft.fftshift(np.fft.fftfreq(size)) * 2 * np.pi
    middle = size // 2  # fftshift puts zero frequency at index size // 2
    dc = float(abs(weights.sum()))
    nyquist = (float(abs(_dtft(weights, np.pi, 0.0))), float(abs(_dtft(weights, 0.0, np.pi))))
    return FrequencyResponse(frequencies, spectrum, spectrum[middle, :], spectrum[:, middle], dc, nyquist)


def aliasing_share(kernel: Any, stride: Pair, grid: int = GRID) -> tuple[float, float]:
    """Per axis (rows, columns), the share of ``|H|**2`` above ``pi/s`` (0 for a stride of 1).

    >>> [round(share, 3) for share in aliasing_share([[1.0]], (2, 2))]
    [0.5, 0.5]
    """
    response = frequency_response(kernel, grid)
    energy = response.magnitude**2
    total = float(energy.sum())
    shares = []
    for axis, step in enumerate(stride):
        if step <= 1 or total == 0:
            shares.append(0.0)
            continue
        cutoff = np.pi / step
        distance = np.abs(response.frequencies)
        # frequencies above the cut count whole, those on it half (the grid is symmetric about it)
        weight = np.where(np.isclose(distance, cutoff), 0.5, (distance > cutoff).astype(float))
        along = weight[:, None] if axis == 0 else weight[None, :]
        shares.append(float((energy * along).sum() / total))
    return (shares[0], shares[1])


def aliasing_note(kernel: Any, stride: Pair, name: str = "this kernel") -> str | None:
    """A one-line note when a stride after ``kernel`` keeps a noticeable share of energy above ``pi/s``.

    >>> aliasing_note([[1.0]], (2, 2), "identity")[:60]
    'note: stride 2x2 after identity aliases: it keeps 50% of its'
    """
    shares = aliasing_share(kernel, stride)
    axes = [
        (label, share)
        for label, share in zip(("down the rows", "across the columns"), shares)
        if share > ALIASING_SHARE
    ]
    if not axes:
        return None
    worst = max(share for _, share in axes)
    where = " and ".join(label for label, _ in axes)
    step = f"{stride[0]}x{stride[1]}"
    return (
        f"note: stride {step} after {name} aliases: it keeps {100 * worst:.0f}% of its energy above the highest "
        f"frequency the stride can hold ({where}); blur first (e.g. -k gaussian:5 at stride 1, then the stride), "
        "or --quiet"
    )


#: The frequencies at which ``convcli kernels show --freq`` prints the gains: 0, pi/4, pi/2, 3pi/4, pi.
PRINTED = (0.0, 0.25, 0.5, 0.75, 1.0)


def gains_at(kernel: Any, fractions: tuple[float, ...] = PRINTED) -> tuple[list[float], list[float]]:
    """``|H|`` down the rows (``wy = f*pi, wx = 0``) and across the columns (``wx = f*pi``) at each fraction ``f``.

    >>> [round(g, 4) for g in gains_at([[1.0, -1.0]])[1]]
    [0.0, 0.7654, 1.4142, 1.8478, 2.0]
    """
    weights = np.atleast_2d(np.asarray(kernel, dtype=np.float64))
    down = [float(abs(_dtft(weights, f * np.pi, 0.0))) for f in fractions]
    across = [float(abs(_dtft(weights, 0.0, f * np.pi))) for f in fractions]
    return down, across


def build_frequency_figure(response: FrequencyResponse, title: str = "", *, dpi: int = 100) -> Any:
    """``|H|`` over the frequency plane (zero in the middle) beside its cuts along each axis: a matplotlib ``Figure``."""
    from .figures import _figure

    figure = _figure(10.5, 4.4, dpi)
    plane, cuts = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    w = response.frequencies
    image = plane.imshow(
        response.magnitude,
        extent=(float(w[0]), float(-w[0]), float(w[0]), float(-w[0])),
        origin="lower",
        cmap="magma",
        interpolation="nearest",
    )
    figure.colorbar(image, ax=plane, fraction=0.046, pad=0.04, label="|H|")
    plane.set_xlabel("across the columns: wx (rad/pixel)")
    plane.set_ylabel("down the rows: wy")
    plane.set_title("|H(wy, wx)|", fontsize=9)
    cuts.plot(w, response.across, label="|H(0, wx)|, across the columns")
    cuts.plot(w, response.down, label="|H(wy, 0)|, down the rows", linestyle="--")
    cuts.set_xticks([-np.pi, -np.pi / 2, 0, np.pi / 2, np.pi], ["-pi", "-pi/2", "0", "pi/2", "pi"])
    cuts.set_xlabel("frequency (rad/pixel); pi is Nyquist, a pattern alternating every pixel")
    cuts.grid(alpha=0.3)
    cuts.legend(fontsize=8)
    cuts.set_title(
        f"gain {response.dc:.4g} at 0, {response.nyquist[0]:.4g} / {response.nyquist[1]:.4g} at Nyquist "
        "(rows / columns)",
        fontsize=9,
    )
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def frequency_figure(path: str, response: FrequencyResponse, title: str = "") -> None:
    """Draw :func:`build_frequency_figure` and write it to ``path`` (PNG, SVG or PDF, atomically)."""
    from .figures import _save

    _save(build_frequency_figure(response, title), path)
