"""``convcli shape``: output sizes of one layer or a stack, with formulas and receptive fields.

Pure arithmetic: this module never imports NumPy (``convcli shape`` starts fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ParameterError, SourceError
from ..shapes import Pair, format_pair
from ..teach.layers import (
    AxisReport,
    Layer,
    StackRow,
    dependency_set,
    format_fraction,
    layer_output,
    layer_report,
    make_layer,
    parse_layer,
    parse_layer_file,
    resolved_padding,
    run_stack,
)
from .params import PaddingType, PairType
from .reports import emit_json, message

_AXIS_NAMES = (("row", "rows"), ("column", "columns"))


def _size(pair: Pair) -> str:
    return format_pair(pair)


def _padding_text(padding: tuple[tuple[int, int], tuple[int, int]]) -> str:
    (t, b), (left, r) = padding
    return f"{t}x{left}" if (t, left) == (b, r) else f"{t},{b}x{left},{r}"


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
    parts = [f"kernel {_size(layer.kernel)}", f"stride {_size(layer.stride)}", f"padding {_padding_text(padding)}"]
    if isinstance(layer.padding, str):
        parts[-1] += f" ({layer.padding})"
    parts.append(f"dilation {_size(layer.dilation)}")
    if layer.op == "pool":
        parts.append("ceil mode" if layer.ceil_mode else "floor mode")
    if layer.op == "transpose":
        parts.append(f"output padding {_size(layer.output_padding)}")
    return ", ".join(parts)


def _single(layer: Layer, size: Pair, as_json: bool) -> None:
    reports = layer_report(layer, size)
    padding = resolved_padding(layer)
    output = (reports[0].output, reports[1].output)
    if as_json:
        emit_json(
            {
                "op": layer.op,
                "input": list(size),
                "kernel": list(layer.kernel),
                "stride": list(layer.stride),
                "padding": [list(p) for p in padding],
                "dilation": list(layer.dilation),
                "ceil_mode": layer.ceil_mode,
                "output_padding": list(layer.output_padding),
                "output": list(output),
                "formula": [r.formula for r in reports],
                "unread": [list(r.unread) for r in reports],
                "padding_windows": [list(r.padding_windows) for r in reports],
                **(
                    {
                        "conv_sizes": [list(r.conv_sizes) if r.conv_sizes else None for r in reports],
                        "valid_output_padding": [list(r.output_paddings) for r in reports],
                    }
                    if layer.op == "transpose"
                    else {}
                ),
            }
        )
        return
    click.echo(f"{layer.op} {_size(size)} -> {_size(output)} ({_describe_layer(layer, padding)})")
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
        click.echo(f"{label[1]}: {report.formula}")
        for note in _axis_notes(layer, report, label if not same_axes else ("row/column", "rows/columns")):
            click.echo(f"  {note}")


def _pair_text(values: tuple[Any, Any], fmt: Any = str) -> str:
    first, second = fmt(values[0]), fmt(values[1])
    return first if first == second else f"{first}x{second}"


def _stack(layers: list[Layer], size: Pair, as_json: bool) -> None:
    rows = run_stack(layers, size)
    if as_json:

        def number(value: Any) -> Any:
            if value is None:
                return None
            return int(value) if value.denominator == 1 else float(value)

        emit_json(
            {
                "input": list(size),
                "output": list(rows[-1].output),
                "layers": [
                    {
                        "spec": row.layer.spec,
                        "op": row.layer.op,
                        "input": list(row.input),
                        "kernel": list(row.layer.kernel),
                        "stride": list(row.layer.stride),
                        "padding": [list(p) for p in row.padding],
                        "dilation": list(row.layer.dilation),
                        "ceil_mode": row.layer.ceil_mode,
                        "output_padding": list(row.layer.output_padding),
                        "output": list(row.output),
                        "receptive_field": list(row.field),
                        "jump": [number(j) for j in row.jump],
                        "field_start": list(row.start),
                        "centre": [number(c) for c in row.centre],
                    }
                    for row in rows
                ],
            }
        )
        return
    header = ("#", "layer", "kernel", "stride", "padding", "dilation", "output", "field", "jump", "centre of (0,0)")
    table = [("0", "input", "", "", "", "", _size(size), "1", "1", "(0, 0)")]
    for number_, row in enumerate(rows, start=1):
        table.append(
            (
                str(number_),
                row.layer.spec,
                _pair_text(row.layer.kernel),
                _pair_text(row.layer.stride),
                _padding_text(row.padding)
                if row.padding[0] != row.padding[1] or row.padding[0][0] != row.padding[0][1]
                else _pair_text((row.padding[0][0], row.padding[1][0])),
                _pair_text(row.layer.dilation),
                _size(row.output),
                _pair_text(row.field, lambda v: "-" if v is None else str(v)),
                _pair_text(row.jump, format_fraction),
                f"({format_fraction(row.centre[0])}, {format_fraction(row.centre[1])})",
            )
        )
    widths = [max(len(line[c]) for line in [header, *table]) for c in range(len(header))]
    for line in [header, *table]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    click.echo(
        "field: span of input pixels (padding included) that output (0, 0) can depend on; jump: input pixels "
        "between neighbouring outputs; centre: input coordinate (row, column) of the middle of that span"
    )
    if any(row.layer.op == "transpose" for row in rows):
        click.echo(
            "transpose layers: the jump divides by the stride (outputs are denser than inputs); the field is that "
            "of output (0, 0) exactly and changes with an output's position modulo the stride"
        )
    if any(None in row.field for row in rows):
        click.echo("-: no input pixel reaches output (0, 0) (a transposed kernel smaller than its stride leaves gaps)")


@click.command("shape", context_settings={"show_default": True})
@click.argument("layer_specs", nargs=-1, metavar="[LAYER]...")
@click.option("-i", "--input", "input_size", type=PairType("input size"), required=True, help="Input size, N or HxW.")
@click.option(
    "--op",
    type=click.Choice(["conv", "pool", "transpose"]),
    default="conv",
    help="One layer: convolution (conv2d), max/avg pooling, or transposed convolution.",
)
@click.option("-k", "--kernel", type=PairType("kernel size"), help="One layer: kernel size, N or HxW.")
@click.option(
    "-s",
    "--stride",
    type=PairType("stride"),
    help="One layer: step between windows.  [default: 1; pool: the kernel size]",
)
@click.option(
    "-p",
    "--padding",
    type=PaddingType(),
    default="0",
    help="One layer: rows/columns added on each side; 'same' (conv, stride 1: keeps the size, odd extra "
    "bottom/right as PyTorch), 'valid' = 0.",
)
@click.option(
    "-d", "--dilation", type=PairType("dilation"), default="1", help="One layer: spacing between kernel taps."
)
@click.option(
    "--ceil-mode",
    is_flag=True,
    help="Pool: round the window count up (PyTorch ceil_mode); a last window starting in the right padding is dropped.",
)
@click.option(
    "--output-padding",
    type=PairType("output padding", minimum=0),
    default="0",
    help="Transpose: extra rows/columns at the bottom/right; smaller than the stride or the dilation.",
)
@click.option(
    "--layers",
    "layer_file",
    type=click.Path(dir_okay=False),
    help="File of layer specs, one per line ('#' comments), for a stack.",
)
@click.option("--json", "as_json", is_flag=True, help='Print JSON on stdout; its key "output" is [H, W].')
@click.option(
    "--figure",
    metavar="FIG",
    help="Also draw the receptive field of output --pixel over the input grid (.png, .svg or .pdf; needs matplotlib).",
)
@click.option(
    "--pixel",
    type=PairType("output pixel", minimum=0),
    default="0",
    help="Output pixel ROWxCOL whose receptive field --figure draws.",
)
def shape_command(
    layer_specs: tuple[str, ...],
    input_size: Pair,
    layer_file: str | None,
    as_json: bool,
    figure: str | None,
    pixel: Pair,
    **options: Any,
) -> None:
    """Compute output sizes exactly as PyTorch does, with the formulas and what each window reaches.

    With --kernel: one layer (--op conv, pool or transpose), the formula per axis
    with the numbers put in, the input rows/columns windows never reach, windows
    lying wholly in padding and, for transpose, the valid --output-padding values.

    With LAYER specs or --layers: a stack, one table row per layer with its
    output size, receptive field, jump and the centre of output (0, 0). A LAYER
    is TYPE:key=value,... with TYPE conv, pool or transpose and keys k (kernel,
    required), s (stride), p (padding), d (dilation), op (output padding,
    transpose), ceil (pool), e.g. conv:k=7,s=2,p=3 or pool:k=3,s=2,ceil.
    Sizes are N or HxW (rows x columns).

    \b
    Examples:
      convcli shape --input 5 --kernel 3 --stride 3
      convcli shape --input 612x530 --kernel 7 --padding 3 --stride 2 --dilation 2
      convcli shape --op transpose --input 4 --kernel 3 --stride 2 --padding 1 --output-padding 1
      convcli shape --input 224 conv:k=7,s=2,p=3 pool:k=3,s=2,p=1 conv:k=3,p=1 conv:k=3,s=2,p=1
      convcli shape --input 16 conv:k=3,p=1 conv:k=3,s=2 --figure rf.png --pixel 3x3
    """
    if figure is not None:
        from ..teach.figures import check_figure_path, require_matplotlib

        check_figure_path(figure)
        require_matplotlib()
    single_options = [
        name
        for name, given in (
            ("--kernel", options["kernel"] is not None),
            ("--stride", options["stride"] is not None),
            ("--padding", options["padding"] != (0, 0)),
            ("--dilation", options["dilation"] != (1, 1)),
            ("--ceil-mode", options["ceil_mode"]),
            ("--output-padding", options["output_padding"] != (0, 0)),
            ("--op", options["op"] != "conv"),
        )
        if given
    ]
    if layer_specs or layer_file:
        if layer_specs and layer_file:
            raise ParameterError("give layers either as arguments or with --layers, not both")
        if single_options:
            raise ParameterError(
                f"{', '.join(single_options)} describe one layer; for a stack put them in the layer specs "
                "(e.g. conv:k=3,s=2,p=1)"
            )
        if layer_file:
            try:
                text = Path(layer_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise SourceError(f"cannot read layer file {layer_file!r}: {reason}") from None
            layers = parse_layer_file(text, f"layer file {layer_file}")
        else:
            layers = [parse_layer(spec) for spec in layer_specs]
        _stack(layers, input_size, as_json)
        if figure is not None:
            _figure(figure, layers, input_size, pixel, as_json)
        return
    if options["kernel"] is None:
        raise ParameterError("give --kernel for one layer, or layer specs such as conv:k=3,p=1 for a stack")
    layer = make_layer(
        options["op"],
        options["kernel"],
        stride=options["stride"],
        padding=options["padding"],
        dilation=options["dilation"],
        ceil_mode=options["ceil_mode"],
        output_padding=options["output_padding"],
    )
    _single(layer, input_size, as_json)
    if figure is not None:
        _figure(figure, [layer], input_size, pixel, as_json)


def _figure(path: str, layers: list[Layer], size: Pair, pixel: Pair, quiet: bool) -> None:
    """Draw the input positions that output ``pixel`` of the last layer depends on."""
    from ..teach.figures import receptive_field_figure

    output = size
    for layer in layers:
        output = layer_output(layer, output)
    if pixel[0] >= output[0] or pixel[1] >= output[1]:
        raise ParameterError(
            f"--pixel {format_pair(pixel)} is outside the {format_pair(output)} output; use rows 0..{output[0] - 1} "
            f"and columns 0..{output[1] - 1}"
        )
    rows = sorted(dependency_set(layers, 0, pixel[0]))
    cols = sorted(dependency_set(layers, 1, pixel[1]))
    spec = " ".join(layer.spec for layer in layers)
    receptive_field_figure(path, size, rows, cols, pixel, f"{spec} on {format_pair(size)}: output pixel {pixel}")
    message(f"figure -> {path}", quiet)


__all__ = ["shape_command", "StackRow"]
