"""Figures: input | kernel | output panels, a kernel heatmap, a receptive field over the input grid.

matplotlib is imported inside the functions (with the non-interactive Agg
canvas), so commands that draw nothing never load it. Figures are written
atomically, as PNG, SVG or PDF by the file's extension.

Colours
-------
Images (values of one sign) are drawn in gray; signed responses (an edge
kernel's output, most kernels) in a diverging map (``RdBu_r``) centred on
0, so that white is 0, red positive and blue negative. ``vmin``/``vmax`` fix
the ends, as they do for the output image (see :func:`convcli.io.to_pixels`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError, OutputUsageError

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
DIVERGING = "RdBu_r"
#: Kernels up to this many rows and columns get their values written in the cells.
VALUE_LIMIT = 9


def require_matplotlib(option: str = "--figure") -> None:
    """Fail early, in one line with the fix, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise OutputError(
            f"{option} needs matplotlib, which is not installed; pip install 'convcli[plot]' (in a source "
            f"checkout: pip install -e '.[plot]'; or just pip install matplotlib), or drop {option}"
        ) from None


def check_figure_path(path: str, option: str = "--figure") -> None:
    """Refuse a figure name whose extension matplotlib should not guess."""
    if path == "-" or Path(path).suffix.lower() not in FIGURE_SUFFIXES:
        raise OutputUsageError(f"{option} {path!r}: a figure is written as {', '.join(FIGURE_SUFFIXES)}")


@dataclass(frozen=True)
class Row:
    """One row of a comparison figure: a kernel (or pooling window) and the output it gives.

    ``cell_text`` replaces the values written in the kernel cells (``"max"``
    for a max-pooling window, whose cells carry no weight).
    """

    kernel: Any
    kernel_title: str
    output: Any
    output_title: str
    cell_text: str | None = None


def _figure(width: float, height: float, dpi: int) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | Path) -> None:
    from ..io import write_atomic

    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise OutputUsageError(f"figure {str(path)!r}: a figure is written as {', '.join(FIGURE_SUFFIXES)}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=suffix.lstrip("."), metadata={"Software": "convcli"} if suffix == ".png" else None)
    write_atomic(path, buffer.getvalue())


def _limits(
    values: Any, cmap: str | None, vmin: float | None, vmax: float | None, scale: str
) -> tuple[str, float, float]:
    """Colour map and value range of an output panel (see the module docstring)."""
    import numpy as np

    from ..io import to_pixels

    finite = values[np.isfinite(values)]
    signed = finite.size > 0 and float(finite.min()) < 0
    _, mapping = to_pixels(values, scale=scale, vmin=vmin, vmax=vmax)
    free = cmap is None and signed and vmin is None and vmax is None
    if free and mapping.scale.startswith("percentile") and mapping.low == -mapping.high:
        return DIVERGING, mapping.low, mapping.high  # the ends of the written image, 0 in the middle
    if cmap is None and signed and vmin is None and vmax is None and scale in ("auto", "minmax"):
        bound = float(np.abs(finite).max()) or 1.0
        return DIVERGING, -bound, bound
    chosen = cmap or (DIVERGING if signed and scale != "abs" else "gray")
    low, high = mapping.low, mapping.high
    if high <= low:
        high = low + 1.0
    return chosen, low, high


def _colorbar(figure: Any, axes: Any, image: Any) -> None:
    """A colour bar as tall as the panel."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    bar = make_axes_locatable(axes).append_axes("right", size="5%", pad=0.06)
    figure.colorbar(image, cax=bar)
    bar.tick_params(labelsize=7)


def _show_image(axes: Any, values: Any, title: str) -> None:
    """An input panel: gray values (their own range, or [0, 1] when inside it), RGB as is."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        axes.imshow(np.clip(values, 0.0, 1.0) if values.max() <= 1 else values / max(values.max(), 1e-12))
    else:
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        if low >= 0 and high <= 1:
            low, high = 0.0, 1.0
        axes.imshow(values, cmap="gray", vmin=low, vmax=high if high > low else low + 1, interpolation="nearest")
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])


def _number(value: float, digits: int = 3) -> str:
    text = f"{value:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def _show_kernel(figure: Any, axes: Any, weights: Any, title: str, cell_text: str | None = None) -> None:
    """A kernel heatmap centred on 0; values written in the cells when it is small."""
    import numpy as np

    weights = np.asarray(weights, dtype=np.float64)
    rows, cols = weights.shape
    if cell_text is not None:
        axes.imshow(np.zeros_like(weights), cmap="Greys", vmin=0, vmax=4, interpolation="nearest")
    else:
        bound = float(np.abs(weights).max()) or 1.0
        image = axes.imshow(weights, cmap=DIVERGING, vmin=-bound, vmax=bound, interpolation="nearest")
        _colorbar(figure, axes, image)
    if rows <= VALUE_LIMIT and cols <= VALUE_LIMIT:
        size = 9 if max(rows, cols) <= 3 else 7 if max(rows, cols) <= 5 else 6
        bound = float(np.abs(weights).max()) or 1.0
        for r in range(rows):
            for c in range(cols):
                value = float(weights[r, c])
                text = cell_text if cell_text is not None else _number(value, 3 if max(rows, cols) <= 3 else 2)
                dark = cell_text is None and abs(value) > 0.6 * bound
                axes.text(c, r, text, ha="center", va="center", fontsize=size, color="white" if dark else "black")
        axes.set_xticks(np.arange(-0.5, cols, 1), minor=True)
        axes.set_yticks(np.arange(-0.5, rows, 1), minor=True)
        axes.grid(which="minor", color="0.4", linewidth=0.5)
        axes.tick_params(which="minor", length=0)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=9)


def _show_output(
    figure: Any,
    axes: Any,
    values: Any,
    title: str,
    cmap: str | None,
    vmin: float | None,
    vmax: float | None,
    scale: str,
) -> None:
    import numpy as np

    from ..io import to_pixels

    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        pixels, _ = to_pixels(values, scale=scale, vmin=vmin, vmax=vmax)
        axes.imshow(pixels)
    else:
        chosen, low, high = _limits(values, cmap, vmin, vmax, scale)
        image = axes.imshow(values, cmap=chosen, vmin=low, vmax=high, interpolation="nearest")
        _colorbar(figure, axes, image)
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])


def comparison_figure(path: str | Path, image: Any, rows: Sequence[Row], **options: Any) -> None:
    """Draw :func:`build_comparison_figure` and write it to ``path`` (.png, .svg or .pdf)."""
    _save(build_comparison_figure(image, rows, **options), path)


def build_comparison_figure(
    image: Any,
    rows: Sequence[Row],
    *,
    input_title: str,
    title: str = "",
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    scale: str = "auto",
    dpi: int = 100,
) -> Any:
    """Input | kernel | output side by side, one row per kernel: a matplotlib ``Figure`` (Agg canvas).

    Parameters
    ----------
    image : ndarray
        The input, ``(H, W)`` or ``(H, W, 3)``; drawn in gray (RGB as is).
    rows : sequence of Row
        One kernel and its output per row.
    cmap : str, optional
        Colour map of the outputs. Default: gray for values of one sign,
        ``RdBu_r`` centred on 0 for signed values.
    vmin, vmax, scale
        The output scaling, as for the output image (:func:`convcli.io.to_pixels`).
    """
    if not rows:
        raise ValueError("a comparison figure needs at least one row")
    count = len(rows)
    figure = _figure(11.0, 3.3 * count + (0.4 if title else 0.0), dpi)
    grid = figure.subplots(count, 3, squeeze=False, gridspec_kw={"width_ratios": [1.0, 0.6, 1.0]})
    for number, row in enumerate(rows):
        left, middle, right = grid[number]
        if number == 0:
            _show_image(left, image, input_title)
        else:
            left.axis("off")
        _show_kernel(figure, middle, row.kernel, row.kernel_title, row.cell_text)
        _show_output(figure, right, row.output, row.output_title, cmap, vmin, vmax, scale)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def kernel_figure(path: str | Path, weights: Any, title: str, *, dpi: int = 100) -> None:
    """Draw :func:`build_kernel_figure` and write it to ``path``."""
    _save(build_kernel_figure(weights, title, dpi=dpi), path)


def build_kernel_figure(weights: Any, title: str, *, dpi: int = 100) -> Any:
    """One kernel as a heatmap centred on 0 (values in the cells up to 9x9): a matplotlib ``Figure``."""
    import numpy as np

    weights = np.asarray(weights, dtype=np.float64)
    rows, cols = weights.shape
    side = min(8.0, max(3.0, 0.55 * max(rows, cols) + 1.5))
    figure = _figure(side + 1.0, side, dpi)
    axes = figure.add_subplot()
    _show_kernel(figure, axes, weights, title)
    figure.tight_layout()
    return figure


def receptive_field_figure(path: str | Path, *args: Any, **options: Any) -> None:
    """Draw :func:`build_receptive_field_figure` and write it to ``path``."""
    _save(build_receptive_field_figure(*args, **options), path)


def build_receptive_field_figure(
    input_size: tuple[int, int],
    field_rows: Sequence[int],
    field_cols: Sequence[int],
    output_pixel: tuple[int, int],
    title: str = "",
    *,
    dpi: int = 100,
) -> Any:
    """The input grid with the cells one output pixel reads highlighted: a matplotlib ``Figure``.

    Parameters
    ----------
    input_size : (H, W)
        The input grid, rows first.
    field_rows, field_cols : sequence of int
        Input rows and columns the output pixel reads (``range(r0, r0 + span,
        dilation)`` for one layer; a contiguous range for a stack). Indices
        below 0 or past the input fall in the padding, drawn hatched around
        the grid.
    output_pixel : (row, col)
        The output pixel, named in the title.

    Examples
    --------
    A 3x3 kernel, stride 1, padding 1 on a 5x5 input: output pixel (0, 0)
    reads rows and columns -1, 0, 1 (one of them in the padding):
    ``build_receptive_field_figure((5, 5), range(-1, 2), range(-1, 2), (0, 0))``.
    """
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    height, width = int(input_size[0]), int(input_size[1])
    rows, cols = sorted({int(r) for r in field_rows}), sorted({int(c) for c in field_cols})
    if height < 1 or width < 1 or not rows or not cols:
        raise ValueError("receptive_field_figure needs a non-empty input and field")
    top, left = max(0, -rows[0]), max(0, -cols[0])
    bottom, right = max(0, rows[-1] - height + 1), max(0, cols[-1] - width + 1)
    # 0 input, 1 read input cell, 2 padding, 3 read padding cell
    grid = np.full((height + top + bottom, width + left + right), 2, dtype=np.int8)
    grid[top : top + height, left : left + width] = 0
    for r in rows:
        for c in cols:
            grid[r + top, c + left] += 1
    colours = ListedColormap(["#f2f2f2", "#d6604d", "#ffffff", "#f4a582"])
    extent = (-left - 0.5, width + right - 0.5, height + bottom - 0.5, -top - 0.5)
    side = 7.0 * max(grid.shape) / max(grid.shape[0], grid.shape[1], 1)
    figure = _figure(min(9.0, max(4.0, side * grid.shape[1] / max(grid.shape))) + 1.5, max(3.5, min(8.0, side)), dpi)
    axes = figure.add_subplot()
    axes.imshow(grid, cmap=colours, vmin=0, vmax=3, extent=extent, interpolation="nearest")
    full_width = width + left + right
    strips = [
        (-left - 0.5, -top - 0.5, full_width, top),  # above the input
        (-left - 0.5, height - 0.5, full_width, bottom),  # below
        (-left - 0.5, -0.5, left, height),  # left of it
        (width - 0.5, -0.5, right, height),  # right of it
    ]
    for x, y, w, h in strips:
        if w and h:
            axes.add_patch(_rectangle(x, y, w, h, colour="0.55", linewidth=0.0, hatch="//"))
    axes.add_patch(_rectangle(-0.5, -0.5, width, height, linewidth=1.5))
    if max(grid.shape) <= 48:
        axes.set_xticks(np.arange(-left - 0.5, width + right, 1), minor=True)
        axes.set_yticks(np.arange(-top - 0.5, height + bottom, 1), minor=True)
        axes.grid(which="minor", color="0.5", linewidth=0.5)
        axes.tick_params(which="minor", length=0)
    axes.add_patch(
        _rectangle(cols[0] - 0.5, rows[0] - 0.5, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1, colour="#b2182b")
    )
    span = f"rows {rows[0]}..{rows[-1]}, columns {cols[0]}..{cols[-1]}"
    axes.set_xlabel(f"input column (input {height}x{width}; field {span})", fontsize=8)
    axes.set_ylabel("input row", fontsize=8)
    axes.set_title(title or f"receptive field of output pixel ({output_pixel[0]}, {output_pixel[1]})", fontsize=10)
    handles = [Patch(color="#d6604d", label="read by the output pixel"), Patch(color="#f2f2f2", label="input")]
    if top or bottom or left or right:
        handles.append(Patch(facecolor="#f4a582", hatch="///", label="padding read"))
    axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7, frameon=False)
    figure.tight_layout()
    return figure


def save_figure(figure: Any, path: str | Path) -> None:
    """Write a figure atomically, as PNG, SVG or PDF by the extension of ``path``."""
    _save(figure, path)


def png_bytes(figure: Any) -> bytes:
    """The figure as PNG bytes (for notebooks' ``_repr_png_``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": "convcli"})
    return buffer.getvalue()


def loss_figure(losses: Sequence[float], *, log_scale: bool = False, title: str = "", dpi: int = 100) -> Any:
    """The loss per epoch of a fit (``losses[n]`` after ``n`` epochs): a matplotlib ``Figure``.

    A log axis cannot show 0, so with ``log_scale`` only the positive losses are drawn.
    """
    figure = _figure(6.4, 4.0, dpi)
    axes = figure.add_subplot()
    epochs = list(range(len(losses)))
    values = [float(v) for v in losses]
    if log_scale:
        pairs = [(e, v) for e, v in zip(epochs, values, strict=True) if v > 0]
        epochs, values = [e for e, _ in pairs], [v for _, v in pairs]
        axes.set_yscale("log")
    axes.plot(epochs, values, marker="o", markersize=3)
    axes.set_xlabel("epoch")
    axes.set_ylabel("summed squared error")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


def filter_row(kernels: Sequence[Any], output: Any, convolve: bool = False) -> Row:
    """The figure row of ``filter --figure`` for kernels applied in turn (:class:`convcli.kernels.Kernel`)."""
    from ..shapes import format_pair

    kernel = kernels[-1]
    weights = kernel.weights[::-1, ::-1] if convolve else kernel.weights
    name = " then ".join(k.name for k in kernels)
    flipped = " flipped" if convolve else ""
    return Row(
        weights,
        f"kernel {name} {format_pair(kernel.shape)}{flipped}",
        output,
        f"output {format_pair(output.shape[:2])}",
    )


def _rectangle(
    x: float,
    y: float,
    width: float,
    height: float,
    *,
    colour: str = "black",
    linewidth: float = 1.0,
    hatch: str | None = None,
    fill: bool = False,
) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, fill=fill, edgecolor=colour, linewidth=linewidth, hatch=hatch)
