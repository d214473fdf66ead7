"""Pictures of an animation: each frame of :mod:`convcli.teach.animate` drawn with matplotlib.

Three panels (the padded input or the input, the kernel, the output as it
stands after the step); a small number grid (at most :data:`GRID_LIMIT` a
side) is drawn with every value in its cell, a photo with the window moving
over it. matplotlib is imported when the pictures are drawn.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import numpy as np

from .animate import Animation, _number

#: Number grids up to this many rows and columns (input and output) are drawn with their values.
GRID_LIMIT = 16


# ---------------------------------------------------------------------------
# Pictures


def _colour_range(values: np.ndarray) -> tuple[str, float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "Greys", 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if low < 0:  # signed: a diverging map centred on 0
        bound = max(abs(low), abs(high)) or 1.0
        return "RdBu_r", -bound, bound
    return "Blues", min(low, 0.0), high if high > min(low, 0.0) else 1.0


def _text_colour(value: float, cmap: str, low: float, high: float) -> str:
    """White on the dark end(s) of the colour map, black elsewhere."""
    if not np.isfinite(value) or high <= low:
        return "black"
    share = (value - low) / (high - low)
    dark = share > 0.6 if cmap != "RdBu_r" else (share < 0.2 or share > 0.8)
    return "white" if dark else "black"


def _cell_text(value: float) -> str:
    if not np.isfinite(value):
        return "-∞" if value < 0 else "∞"
    return _number(float(f"{value:.3g}"))


_LONG_NUMBER = re.compile(r"-?\d+\.\d{4,}(?:e[-+]?\d+)?")


def _short_numbers(text: str) -> str:
    """Numbers with many decimals (a photo's pixels) written with 3 significant digits, for the picture.

    >>> _short_numbers("0.768627464771×1 + 0.5×(-1) = 0.268627464771")
    '0.769×1 + 0.5×(-1) = 0.269'
    """
    return _LONG_NUMBER.sub(lambda match: f"{float(match.group()):.3g}", text)


def is_grid(animation: Animation) -> bool:
    """Whether the numbers fit in the cells (a small number grid) or the picture is a photo."""
    return max(*animation.canvas.shape[:2], *animation.output.shape[:2]) <= GRID_LIMIT


def render(
    animation: Animation,
    *,
    grid: bool | None = None,
    dpi: int = 100,
    cmap: str | None = None,
) -> list[np.ndarray]:
    """RGB pictures (uint8 arrays, all the same size), one per frame of ``animation``.

    ``grid`` draws every cell with its value (default: when the canvas and the
    output are at most :data:`GRID_LIMIT` a side); otherwise the window moves
    over the picture and the output image grows.
    """
    from matplotlib.patches import Rectangle

    from .figures import _figure

    grid = is_grid(animation) if grid is None else grid
    has_kernel = animation.kernel is not None
    panels = 3 if has_kernel else 2
    canvas = animation.canvas
    if grid:  # panels as wide as their cells
        widths = [
            canvas.shape[1],
            *([animation.kernel.shape[1]] if animation.kernel is not None else []),
            animation.output.shape[1],
        ]
        ratios = [max(w, 2) for w in widths]
        figure_width = max(7.5, sum(max(w * 0.42, 1.4) for w in widths) + 1.2 * panels)
        figure_height = max(3.6, max(canvas.shape[0], animation.output.shape[0]) * 0.42 + 2.0)
    else:  # a photo: input and output the same size, the kernel beside
        ratios = [1.0, 0.4, 1.0] if has_kernel else [1.0, 1.0]
        figure_width, figure_height = (10.4 if has_kernel else 8.4), 5.4
    figure = _figure(figure_width, figure_height, dpi)
    axes = figure.subplots(1, panels, gridspec_kw={"width_ratios": ratios})
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    source_axes, output_axes = axes[0], axes[-1]
    input_title = {"filter": "padded input", "pool": "padded input", "upsample": "input"}[animation.op]
    source_values = animation.image if animation.op == "upsample" else canvas
    map_in, low_in, high_in = _colour_range(np.asarray(source_values, dtype=np.float64))
    source_axes.imshow(
        np.where(np.isfinite(source_values), source_values, np.nan),
        cmap=cmap or (map_in if grid else "gray"),
        vmin=low_in,
        vmax=high_in,
        interpolation="nearest",
    )
    source_axes.set_title(input_title, fontsize=9)
    if animation.op != "upsample":
        (top, left), (height, width) = animation.offset, animation.image.shape[:2]
        if (top, left) != (0, 0) or canvas.shape[:2] != (height, width):
            source_axes.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5), width, height, fill=False, edgecolor="0.35", linewidth=1.2, linestyle="--"
                )
            )
    if grid:
        for (row, col), value in np.ndenumerate(np.asarray(source_values, dtype=np.float64)):
            padding = animation.op != "upsample" and not (
                animation.offset[0] <= row < animation.offset[0] + animation.image.shape[0]
                and animation.offset[1] <= col < animation.offset[1] + animation.image.shape[1]
            )
            source_axes.text(
                col,
                row,
                _cell_text(value),
                ha="center",
                va="center",
                fontsize=8,
                color="0.45" if padding else _text_colour(value, cmap or map_in, low_in, high_in),
                style="italic" if padding else "normal",
            )
            if padding:
                source_axes.add_patch(
                    Rectangle(
                        (col - 0.5, row - 0.5), 1, 1, facecolor="0.85", edgecolor="white", hatch="//", linewidth=0
                    )
                )
    if has_kernel:
        kernel_axes = axes[1]
        kernel = np.asarray(animation.kernel, dtype=np.float64)
        map_k, low_k, high_k = _colour_range(kernel)
        kernel_axes.imshow(kernel, cmap=map_k, vmin=low_k, vmax=high_k, interpolation="nearest")
        kernel_axes.set_title("kernel" + (" (flipped)" if "flipped" in animation.title else ""), fontsize=9)
        if kernel.size <= 81:
            for (row, col), value in np.ndenumerate(kernel):
                colour = _text_colour(value, map_k, low_k, high_k)
                kernel_axes.text(col, row, _cell_text(value), ha="center", va="center", fontsize=8, color=colour)
    upsampling = animation.op == "upsample"
    out_values = np.asarray(
        animation.partial_canvas(animation.count - 1) if upsampling else animation.output, dtype=np.float64
    )
    map_out, low_out, high_out = _colour_range(out_values)
    shown = output_axes.imshow(
        np.full(out_values.shape, np.nan),
        cmap=cmap or (map_out if grid or map_out == "RdBu_r" else "gray"),
        vmin=low_out,
        vmax=high_out,
        interpolation="nearest",
    )
    (out_h, out_w) = animation.output.shape[:2]
    if upsampling and out_values.shape[:2] != (out_h, out_w):
        (top, left) = animation.offset
        output_axes.add_patch(
            Rectangle((left - 0.5, top - 0.5), out_w, out_h, fill=False, edgecolor="0.2", linewidth=1.5, linestyle="--")
        )
        output_axes.set_title(f"output {out_h}x{out_w} (dashed)", fontsize=9)
    else:
        output_axes.set_title(f"output {out_h}x{out_w}", fontsize=9)
    output_texts = {}
    if grid:
        for (row, col), _value in np.ndenumerate(out_values):
            output_texts[(row, col)] = output_axes.text(col, row, "", ha="center", va="center", fontsize=8)
    suptitle = figure.suptitle("", fontsize=9)
    caption = figure.text(0.5, 0.02, "", ha="center", va="bottom", fontsize=9, family="monospace")
    figure.subplots_adjust(left=0.03, right=0.97, top=0.80, bottom=0.2, wspace=0.25)
    moving: list[Any] = []
    images = []
    limits = (source_axes.get_xlim(), source_axes.get_ylim())
    for position, frame in enumerate(animation.frames):
        index = min(frame.index, animation.count - 1)
        for patch in moving:
            patch.remove()
        moving = []
        source_axes.set_xlim(*limits[0])
        source_axes.set_ylim(*limits[1])
        partial = animation.partial_canvas(index) if upsampling else animation.partial_output(index)
        shown.set_data(partial)
        if grid:
            for (row, col), text in output_texts.items():
                current = float(partial[row, col])
                text.set_text("" if np.isnan(current) else _cell_text(current))
                text.set_color(_text_colour(current, cmap or map_out, low_out, high_out))
                text.set_fontweight("bold" if (row, col) == frame.cell and animation.op != "upsample" else "normal")
        tap_axes = output_axes if upsampling else source_axes
        shift = (0, 0)
        if grid:  # every tap outlined (dilated windows show their gaps)
            boxes = [(row - shift[0], col - shift[1], 1, 1) for row, col in frame.taps]
        else:  # the window's extent, thick enough to see on a photo
            rows = [row - shift[0] for row, _ in frame.taps]
            cols = [col - shift[1] for _, col in frame.taps]
            boxes = [(min(rows), min(cols), max(rows) - min(rows) + 1, max(cols) - min(cols) + 1)]
        edge = "#de2d26" if frame.missed else "#e6550d"
        for top, left, height, width in boxes:
            box = Rectangle((left - 0.5, top - 0.5), width, height, fill=False, linewidth=2, clip_on=False)
            box.set_edgecolor(edge)
            box.set_linestyle("--" if frame.missed else "-")
            moving.append(tap_axes.add_patch(box))
        if animation.op == "pool" and not frame.missed:  # a ceil-mode window may hang past the padded input
            g = animation.geometry
            top, left = frame.cell[0] * g.stride[0], frame.cell[1] * g.stride[1]
            bottom = top + g.dilation[0] * (g.kernel[0] - 1)
            right = left + g.dilation[1] * (g.kernel[1] - 1)
            if bottom >= canvas.shape[0] or right >= canvas.shape[1]:
                hanging = Rectangle(
                    (left - 0.5, top - 0.5),
                    right - left + 1,
                    bottom - top + 1,
                    fill=False,
                    linewidth=1.5,
                    clip_on=False,
                )
                hanging.set_edgecolor("#de2d26")
                hanging.set_linestyle("--")
                moving.append(source_axes.add_patch(hanging))
                source_axes.set_xlim(-0.5, max(right, canvas.shape[1] - 1) + 0.5)
                source_axes.set_ylim(max(bottom, canvas.shape[0] - 1) + 0.5, -0.5)
        if frame.missed:  # show the window hanging past the padded input
            rows = [row for row, _ in frame.taps] + [canvas.shape[0] - 1]
            cols = [col for _, col in frame.taps] + [canvas.shape[1] - 1]
            source_axes.set_xlim(-0.5, max(cols) + 0.5)
            source_axes.set_ylim(max(rows) + 0.5, -0.5)
        else:
            cell_axes = source_axes if animation.op == "upsample" else output_axes
            row, col = frame.cell
            moving.append(
                cell_axes.add_patch(
                    Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="#31a354", linewidth=2.5)
                )
            )
        heading = (
            f"{animation.op}: the jump the stride cannot make"
            if frame.missed
            else f"{animation.op}: step {index + 1} of {animation.count}"
        )
        suptitle.set_text("\n".join(textwrap.wrap(animation.title, 110)) + "\n" + heading if position == 0 else heading)
        caption.set_text("\n".join(textwrap.wrap(_short_numbers(frame.caption), 100)[:4]))
        figure.canvas.draw()
        images.append(np.asarray(figure.canvas.buffer_rgba())[..., :3].copy())
    return images
