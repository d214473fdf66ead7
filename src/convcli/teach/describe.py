"""One layer's output size explained: the formula per axis with the numbers, and what its windows reach.

The text ``convcli shape --kernel ...`` prints and its ``--json`` record, as a
record (:class:`LayerDescription`). Pure Python (no NumPy), so ``convcli
shape`` starts fast; the facts come from :func:`convcli.teach.layer_axes.layer_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..shapes import Pair, format_pair, size_record
from .fields import padding_text
from .layer_axes import AxisReport, layer_report
from .layers import Layer, resolved_padding

_AXIS_NAMES = (("row", "rows"), ("column", "columns"))


def _indices(values: tuple[int, ...]) -> str:
    """``3, 4`` or ``3..7`` or ``1, 3, 5, ..., 223``."""
    if len(values) == 1:
        return str(values[0])
    if values == tuple(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}" if len(values) > 2 else f"{values[0]}, {values[1]}"
    if len(values) <= 6:
        return ", ".join(map(str, values))
    return f"{values[0]}, {values[1]}, {values[2]}, ..., {values[-1]}"


def _cover(report: AxisReport, single: bool) -> str:
    pronoun = "it" if single else "them"
    if report.covering:
        return f"{report.covering} would reach {pronoun}"
    return f"no pooling padding up to half the kernel ({report.kernel // 2}) reaches {pronoun}"


def _axis_notes(layer: Layer, report: AxisReport, axis_label: tuple[str, str]) -> list[str]:
    one, many = axis_label
    notes = []
    if report.dropped_window is not None:
        notes.append(
            f"ceil mode adds a last window, but it would start at input index {report.dropped_window}, in the right "
            f"padding (the input is 0..{report.size - 1}), so PyTorch drops it (the - 1)"
        )
    if report.unread:
        count = len(report.unread)
        if report.unread_tail == count:
            if count == 1:
                what = f"{one} {report.unread[0]} (the last"
            else:
                what = f"{many} {_indices(report.unread)} (the last {count}"
            verb = "is" if count == 1 else "are"
            notes.append(f"{what} of {report.size}) {verb} never reached by a window; {_cover(report, count == 1)}")
        else:
            tail = ""
            if report.unread_tail:
                tail = f"; for the last {report.unread_tail}: {_cover(report, report.unread_tail == 1)}"
            which = (
                f"{one} {report.unread[0]} of {report.size} is"
                if count == 1
                else (f"{count} {many} of {report.size} are")
            )
            listed = "" if count == 1 else f" ({_indices(report.unread)})"
            notes.append(
                f"{which} never read{listed}: the windows (span "
                f"{report.dilation * (report.kernel - 1) + 1}, dilation {report.dilation}) step over them with "
                f"stride {report.stride}{tail}"
            )
    if report.padding_windows:
        count = len(report.padding_windows)
        outputs = "output" if count == 1 else "outputs"
        notes.append(
            f"{outputs} {_indices(report.padding_windows)} ({count} of {report.output}) "
            + ("reads" if count == 1 else "read")
            + " only padding: no input reaches "
            + ("it" if count == 1 else "them")
            + (" (max pooling gives -inf there, as PyTorch)" if layer.op == "pool" else " (zeros padding gives 0)")
        )
    if layer.op == "transpose":
        if report.conv_sizes is not None:
            low, high = report.conv_sizes
            sizes = str(low) if low == high else f"{low}..{high}"
            picks = ", ".join(f"{op} -> {m}" for op, m in sorted(report.matching_output_paddings.items()))
            notes.append(
                f"a conv with this kernel, stride, padding and dilation maps input sizes {sizes} to {report.size}; "
                f"--output-padding picks which one ({picks})"
            )
        accepted = report.output_paddings
        if accepted:
            values = f"0..{accepted[-1]}" if len(accepted) > 2 else ", ".join(map(str, accepted))
            extra = sorted(set(accepted) - set(report.matching_output_paddings))
            notes.append(
                f"valid --output-padding: {values} (smaller than the stride {report.stride} or the dilation "
                f"{report.dilation})"
                + (
                    f"; {', '.join(map(str, extra))} also accepted, but a conv would not map that size back to "
                    f"{report.size}"
                    if extra
                    else ""
                )
            )
    return notes


def _describe_layer(layer: Layer, padding: Any) -> str:
    parts = [
        f"kernel {format_pair(layer.kernel)}",
        f"stride {format_pair(layer.stride)}",
        f"padding {padding_text(padding)}",
    ]
    if isinstance(layer.padding, str):
        parts[-1] += f" ({layer.padding})"
    parts.append(f"dilation {format_pair(layer.dilation)}")
    if layer.op == "pool":
        parts.append("ceil mode" if layer.ceil_mode else "floor mode")
    if layer.op == "transpose":
        parts.append(f"output padding {format_pair(layer.output_padding)}")
    return ", ".join(parts)


@dataclass(frozen=True)
class LayerDescription:
    """One layer on one input size, explained: ``str()`` is what ``convcli shape --kernel ...`` prints.

    Attributes
    ----------
    layer : Layer
    input : (H, W)
    reports : (AxisReport, AxisReport)
        Rows and columns: the formula with the numbers, unread rows, windows
        in the padding, transpose's output paddings.
    """

    layer: Layer
    input: Pair
    reports: tuple[AxisReport, AxisReport]

    @property
    def output(self) -> Pair:
        return (self.reports[0].output, self.reports[1].output)

    def lines(self) -> list[str]:
        layer, size, reports = self.layer, self.input, self.reports
        padding = resolved_padding(layer)
        lines = [
            f"{layer.op} {format_pair(size)} (HxW) -> {format_pair(self.output)} ({_describe_layer(layer, padding)})"
        ]
        same_axes = (
            size[0] == size[1]
            and layer.kernel[0] == layer.kernel[1]
            and layer.stride[0] == layer.stride[1]
            and padding[0] == padding[1]
            and layer.dilation[0] == layer.dilation[1]
            and layer.output_padding[0] == layer.output_padding[1]
        )
        if same_axes:
            axes = [(reports[0], ("row or column", "rows and columns"))]
        else:
            axes = list(zip(reports, _AXIS_NAMES, strict=True))
        for report, label in axes:
            lines.append(f"{label[1]}: {report.formula}")
            for note in _axis_notes(layer, report, label if not same_axes else ("row/column", "rows/columns")):
                lines.append(f"  {note}")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict[str, Any]:
        """The ``convcli shape --json`` record of one layer."""
        layer, reports = self.layer, self.reports
        record: dict[str, Any] = {
            "op": layer.op,
            "input": size_record(self.input),
            "kernel": size_record(layer.kernel),
            "stride": list(layer.stride),
            "padding": [list(p) for p in resolved_padding(layer)],
            "dilation": list(layer.dilation),
            "ceil_mode": layer.ceil_mode,
            "output_padding": list(layer.output_padding),
            "output": size_record(self.output),
            "formula": [r.formula for r in reports],
            "unread": [list(r.unread) for r in reports],
            "padding_windows": [list(r.padding_windows) for r in reports],
        }
        if layer.op == "transpose":
            record["conv_sizes"] = [list(r.conv_sizes) if r.conv_sizes else None for r in reports]
            record["valid_output_padding"] = [list(r.output_paddings) for r in reports]
        return record


def describe_layer(layer: Layer, size: Pair) -> LayerDescription:
    """Explain ``layer`` on an input of ``size`` (see :class:`LayerDescription`).

    >>> from convcli.teach.layers import parse_layer
    >>> print(describe_layer(parse_layer("conv:k=3,s=3"), (5, 5)))  # doctest: +NORMALIZE_WHITESPACE
    conv 5x5 (HxW) -> 1x1 (kernel 3x3, stride 3x3, padding 0x0, dilation 1x1)
    rows and columns: out = floor((5 + 2*0 - 3) / 3) + 1 = 1
      rows/columns 3, 4 (the last 2 of 5) are never reached by a window; padding 1 would reach them
    """
    return LayerDescription(layer, size, layer_report(layer, size))
