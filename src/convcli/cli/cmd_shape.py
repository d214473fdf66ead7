"""``convcli shape``: output sizes of one layer or a stack, with formulas and receptive fields.

Pure arithmetic: this module never imports NumPy (``convcli shape`` starts fast).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from ..errors import ParameterError, SourceError
from ..shapes import PaddingSpec, Pair, format_pair
from ..teach.layers import Layer
from .params import PaddingType, PairType
from .reports import emit_json, message
from .sections import SectionedCommand


@dataclass(frozen=True)
class ShapeOptions:
    """Everything ``convcli shape`` takes, built once from click's arguments."""

    layer_specs: tuple[str, ...]
    layer_file: str | None
    input_size: Pair
    op: str
    kernel: Pair | None
    stride: Pair | None
    padding: PaddingSpec
    dilation: Pair
    ceil_mode: bool
    output_padding: Pair
    as_json: bool
    figure: str | None
    pixel: Pair | None
    effective: bool
    layer_kernels: tuple[str, ...]

    @classmethod
    def from_click(cls, options: dict[str, Any]) -> ShapeOptions:
        return cls(**{name: options[name] for name in cls.__dataclass_fields__})

    @property
    def stack(self) -> bool:
        """Layer specs (arguments or --layers) describe a stack."""
        return bool(self.layer_specs or self.layer_file)

    def single_options(self) -> list[str]:
        """The one-layer options given (not at their defaults)."""
        given = (
            ("--kernel", self.kernel is not None),
            ("--stride", self.stride is not None),
            ("--padding", self.padding != (0, 0)),
            ("--dilation", self.dilation != (1, 1)),
            ("--ceil-mode", self.ceil_mode),
            ("--output-padding", self.output_padding != (0, 0)),
            ("--op", self.op != "conv"),
        )
        return [name for name, present in given if present]


@click.command("shape", cls=SectionedCommand, context_settings={"show_default": True})
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
    help="One layer: rows/columns added on each side: N, HxW, or four sides TOP,BOTTOM,LEFT,RIGHT "
    "(torch:LEFT,RIGHT,TOP,BOTTOM in F.pad's order; pool: as if padded so, then pooled; transpose: cut from "
    "each side); 'same' (conv, stride 1: keeps the size, odd extra bottom/right as PyTorch), 'valid' = 0.",
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print JSON on stdout; sizes are {"height", "width"} objects (stride, padding, dilation stay [rows, columns]).',
)
@click.option(
    "--figure",
    metavar="FIG",
    help="Also draw the receptive field of output --pixel over the input grid (.png, .svg or .pdf; needs matplotlib).",
)
@click.option(
    "--pixel",
    type=PairType("output pixel", minimum=0),
    default=None,
    show_default="0x0, or the middle pixel with --effective",
    help="Output pixel ROWxCOL whose receptive field --figure draws (and --effective weighs).",
)
@click.option(
    "--effective",
    is_flag=True,
    help="Also weigh the receptive field: with what weight each input pixel reaches --pixel (the gradient through "
    "the stack, pool layers as average pooling), with the radii holding 50% and 90% of the weight; --figure draws it.",
)
@click.option(
    "--layer-kernel",
    "layer_kernels",
    metavar="SPEC",
    multiple=True,
    help="With --effective: the kernel of each conv/transpose layer in turn (any spec 'convcli filter' takes, of the "
    "layer's size). Default: ones.",
)
def shape_command(**options: Any) -> None:
    """Compute output sizes exactly as PyTorch does, with the formulas and what each window reaches.

    With --kernel: one layer (--op conv, pool or transpose), the formula per axis
    with the numbers put in, the input rows/columns windows never reach, windows
    lying wholly in padding and, for transpose, the valid --output-padding values.

    With LAYER specs or --layers: a stack, one table row per layer with its
    output size, receptive field, jump and the centre of output (0, 0). A LAYER
    is TYPE:key=value,... with TYPE conv, pool or transpose and keys k (kernel,
    required), s (stride), p (padding), d (dilation), op (output padding,
    transpose), ceil (pool), e.g. conv:k=7,s=2,p=3 or pool:k=3,s=2,ceil.
    Sizes are N or HxW (rows x columns); a padding may give four sides,
    TOP,BOTTOM,LEFT,RIGHT: --padding 0,1,0,1, or in a LAYER p=0,1,0,1.

    \b
    Examples:
      convcli shape --input 5 --kernel 3 --stride 3
      convcli shape --input 612x530 --kernel 7 --padding 3 --stride 2 --dilation 2
      convcli shape --op transpose --input 4 --kernel 3 --stride 2 --padding 1 --output-padding 1
      convcli shape --input 7 --kernel 4 --stride 2 --padding 1,2,1,2
      convcli shape --input 224 conv:k=7,s=2,p=3 pool:k=3,s=2,p=1 conv:k=3,p=1 conv:k=3,s=2,p=1
      convcli shape --input 16 conv:k=3,p=1 conv:k=3,s=2 --figure rf.png --pixel 3x3
      convcli shape --input 33 conv:k=3 conv:k=3 conv:k=3 conv:k=3 --effective --figure erf.png
    """
    from ..api.receptive_fields import describe_layer, receptive_field

    settings = ShapeOptions.from_click(options)
    if settings.figure is not None:
        from ..teach.figures import check_figure_path, require_matplotlib

        check_figure_path(settings.figure)
        require_matplotlib()
    if settings.layer_kernels and not settings.effective:
        raise ParameterError("--layer-kernel weighs the layers of --effective; add --effective or drop it")
    if settings.stack:
        layers = _stack_layers(settings)
        field = receptive_field(layers, settings.input_size)
        effective = _effective(settings, layers)
        if settings.as_json:
            emit_json({**field.to_dict(), **({"effective": _effective_record(effective)} if effective else {})})
        else:
            click.echo(str(field))
            if effective is not None:
                click.echo(str(effective))
        if settings.figure is not None:
            _any_figure(settings, layers, effective)
        return
    if settings.kernel is None:
        raise ParameterError("give --kernel for one layer, or layer specs such as conv:k=3,p=1 for a stack")
    description = describe_layer(
        _single_layer(settings),
        settings.input_size,
    )
    effective = _effective(settings, [description.layer])
    if settings.as_json:
        emit_json({**description.to_dict(), **({"effective": _effective_record(effective)} if effective else {})})
    else:
        click.echo(str(description))
        if effective is not None:
            click.echo(str(effective))
    if settings.figure is not None:
        _any_figure(settings, [description.layer], effective)


def _effective(settings: ShapeOptions, layers: list[Layer]) -> Any:
    """The effective receptive field of ``--pixel`` (default the middle output), or ``None`` without --effective."""
    if not settings.effective:
        return None
    from ..api.receptive_fields import effective_receptive_field

    kernels = list(settings.layer_kernels) if settings.layer_kernels else None
    return effective_receptive_field(layers, settings.input_size, pixel=settings.pixel, kernels=kernels)


def _effective_record(field: Any) -> dict[str, Any]:
    return {
        "pixel": list(field.pixel),
        "centre": [round(value, 6) for value in field.centre],
        "radius_50": round(field.radius_50, 6),
        "radius_90": round(field.radius_90, 6),
        "theoretical": {"rows": list(field.theoretical[0]), "columns": list(field.theoretical[1])},
        "total_weight": round(float(field.weights.sum()), 6),
    }


def _any_figure(settings: ShapeOptions, layers: list[Layer], effective: Any) -> None:
    assert settings.figure is not None
    if effective is None:
        _figure(settings.figure, layers, settings.input_size, settings.pixel or (0, 0), settings.as_json)
        return
    from ..teach.effective import effective_field_figure

    spec = " ".join(layer.spec for layer in layers)
    effective_field_figure(settings.figure, effective, f"{spec} on {format_pair(settings.input_size)}")
    message(f"figure -> {settings.figure}", settings.as_json)


def _stack_layers(settings: ShapeOptions) -> list[Layer]:
    """The stack's layers, from the arguments or the --layers file."""
    from ..teach.layers import parse_layer, parse_layer_file

    if settings.layer_specs and settings.layer_file:
        raise ParameterError("give layers either as arguments or with --layers, not both")
    single = settings.single_options()
    if single:
        raise ParameterError(
            f"{', '.join(single)} describe one layer; for a stack put them in the layer specs (e.g. conv:k=3,s=2,p=1)"
        )
    from ..limits import MAX_LAYER_FILE_BYTES, MAX_LAYERS, format_bytes

    if len(settings.layer_specs) > MAX_LAYERS:
        raise ParameterError(f"{len(settings.layer_specs)} layers; convcli takes at most {MAX_LAYERS} in one stack")
    if settings.layer_file:
        try:
            with open(settings.layer_file, "rb") as stream:  # bounded: a FIFO fed forever, /dev/zero
                data = stream.read(MAX_LAYER_FILE_BYTES + 1)
            text = data[:MAX_LAYER_FILE_BYTES].decode("utf-8").removeprefix("\ufeff")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise SourceError(f"cannot read layer file {settings.layer_file!r}: {reason}") from None
        if len(data) > MAX_LAYER_FILE_BYTES:
            raise SourceError(
                f"layer file {settings.layer_file!r} is larger than {format_bytes(MAX_LAYER_FILE_BYTES)}; a stack "
                f"holds at most {MAX_LAYERS} layers, one per line"
            )
        layers = parse_layer_file(text, f"layer file {settings.layer_file}")
        if len(layers) > MAX_LAYERS:
            raise ParameterError(f"layer file {settings.layer_file!r} holds {len(layers)} layers; at most {MAX_LAYERS}")
        return layers
    return [parse_layer(spec) for spec in settings.layer_specs]


def _single_layer(settings: ShapeOptions) -> Layer:
    from ..teach.layers import make_layer

    assert settings.kernel is not None
    return make_layer(
        settings.op,
        settings.kernel,
        stride=settings.stride,
        padding=settings.padding,
        dilation=settings.dilation,
        ceil_mode=settings.ceil_mode,
        output_padding=settings.output_padding,
    )


def _figure(path: str, layers: list[Layer], size: Pair, pixel: Pair, quiet: bool) -> None:
    """Draw the input positions that output ``pixel`` of the last layer depends on."""
    from ..teach.figures import receptive_field_figure
    from ..teach.layers import layer_output
    from ..teach.stacks import dependency_set

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
