"""``convcli learn``: recover a kernel from an input and its filtered output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..api.settings import Geometry, ReadSettings
from ..errors import OutputError, OutputUsageError, ParameterError
from ..shapes import Pair, format_pair
from .option_records import geometry_settings, read_settings
from .options import geometry_options, source_options
from .params import FiniteFloatRange, PairType
from .reports import emit_json, message
from .sections import SectionedCommand
from .streams import check_outputs, load

KERNEL_SUFFIXES = (".txt", ".csv", ".npy", ".mat")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")

#: Options that only gradient descent uses, and the ones --demo fixes itself.
GD_ONLY = ("epochs", "lr", "optimizer", "seed", "every", "plot", "log_scale")
DEMO_FIXED = (
    "size",
    "stride",
    "padding",
    "dilation",
    "pad_mode",
    "pad_value",
    "convolve",
    "learn_bias",
    "solver",
    "gray",
    "normalize_method",
    "color",
    "frame",
    "timeout",
    "max_download",
)


def _flag(name: str) -> str:
    return "--" + {"learn_bias": "bias", "normalize_method": "normalize", "as_json": "json"}.get(name, name).replace(
        "_", "-"
    )


def _explicit(ctx: click.Context, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` that the user typed (not left at their default)."""
    return [name for name in names if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)]


def _kernel_bytes(result: Any, destination: str) -> bytes:
    """The kernel in the format of the file name (``convcli.kernels.kernel_file_bytes``): .txt carries a comment
    header that --kernel skips; a learned bias goes into a .mat file as its offset, which filter adds."""
    from ..kernels.files import kernel_file_bytes

    suffix = Path(destination).suffix.lower()
    comments = [f"convcli learn: {result.summary()}"]
    offset = None
    if result.learn_bias:
        if suffix == ".mat":
            offset = float(result.bias)
        else:
            comments.append(f"learned bias {result.bias!r} (not part of the kernel: pass it to filter --bias)")
    return kernel_file_bytes(result.kernel, suffix, offset=offset, comments=tuple(comments) if suffix == ".txt" else ())


def _save_plot(result: Any, destination: str, log_scale: bool, title: str) -> None:
    from ..teach.figures import loss_figure, save_figure

    save_figure(loss_figure(result.losses, log_scale=log_scale, title=title), destination)


def _progress(every: int, quiet: bool) -> Any:
    def on_epoch(epoch: int, loss: float) -> None:
        if every and epoch % every == 0:
            message(f"epoch {epoch}, loss {loss:.6g}", quiet)

    return on_epoch


def _check_files(output: str | None, plot: str | None, sources: list[str]) -> None:
    if sources.count("-") > 1:
        raise OutputUsageError("INPUT and TARGET cannot both be - (standard input holds one source)")
    if output == "-":  # the kernel as a text matrix on stdout
        output = None
    if output is not None and Path(output).suffix.lower() not in KERNEL_SUFFIXES:
        raise OutputUsageError(
            f"-o {output!r}: a kernel file must end in {', '.join(KERNEL_SUFFIXES)} so that --kernel can read it back"
        )
    if plot is not None:
        if Path(plot).suffix.lower() not in PLOT_SUFFIXES:
            raise OutputUsageError(f"--plot {plot!r}: the loss curve is written as {', '.join(PLOT_SUFFIXES)}")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise OutputError(
                "--plot needs matplotlib, which is not installed; pip install matplotlib (or drop --plot)"
            ) from None
    check_outputs([p for p in (output, plot) if p is not None], sources)


@dataclass(frozen=True)
class LearnOptions:
    """Everything ``convcli learn`` takes besides INPUT, TARGET and --demo, built once from click's arguments."""

    geometry: Geometry
    read: ReadSettings
    size: Pair | None
    learn_bias: bool
    solver: str
    optimizer: str
    epochs: int
    lr: float | None
    seed: int | None
    every: int | None
    output: str | None
    as_json: bool
    plot: str | None
    log_scale: bool
    quiet: bool

    @classmethod
    def from_click(cls, options: dict[str, Any]) -> LearnOptions:
        own = {name: options[name] for name in cls.__dataclass_fields__ if name not in ("geometry", "read")}
        return cls(geometry=geometry_settings(options), read=read_settings(options), **own)

    @property
    def silent(self) -> bool:
        """No progress or summary on stderr: --quiet, or --json (stdout carries the record)."""
        return self.quiet or self.as_json

    def gd(self, seed: int | None) -> dict[str, Any]:
        """The gradient-descent arguments of :func:`convcli.learn`: the options and the progress lines."""
        every = self.every if self.every is not None else max(1, self.epochs // 5)
        return dict(
            epochs=self.epochs, lr=self.lr, optimizer=self.optimizer, seed=seed, on_epoch=_progress(every, self.silent)
        )


@click.command("learn", cls=SectionedCommand, context_settings={"show_default": True})
@click.argument("input_source", metavar="INPUT", required=False)
@click.argument("target_source", metavar="TARGET", required=False)
@click.option(
    "--demo",
    is_flag=True,
    help="Run the classic lesson end to end (a 6x8 image, the kernel [1, -1], a random 1x2 start), then "
    "solve it exactly; honours --epochs, --lr, --seed (default 0), --every, --optimizer, -o, --plot.",
)
@click.option(
    "--size",
    type=PairType("kernel size"),
    help="Kernel size N or HxW. Default: the one size that turns INPUT into TARGET's size (stride 1, numeric padding).",
)
@geometry_options(
    convolve_help="Learn the kernel that a true convolution applies (filter --convolve), or the correlation kernel."
)
@click.option(
    "--bias/--no-bias",
    "learn_bias",
    default=False,
    help="Also learn a bias added to every output value (use it with filter --bias B; an -o .mat file carries it as its offset).",
)
@click.option(
    "--solver",
    type=click.Choice(["gd", "lstsq"]),
    default="gd",
    help="gd = gradient descent on the summed squared error; lstsq = the exact least-squares kernel, "
    "with the rank of the system.",
)
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "momentum", "adam"]),
    default="sgd",
    help="Update rule (PyTorch's): sgd; momentum = SGD with momentum 0.9; adam = Adam (0.9, 0.999).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=0),
    default=10,
    help="Gradient steps; one epoch = one step with the exact full-image gradient.",
)
@click.option(
    "--lr",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    show_default="0.03, lowered (with a note) when it would diverge on this input",
    help="Learning rate. The loss is a sum over pixels, so big images need a small rate; a --lr you give that "
    "would diverge is refused with the stable limit.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of the random start (uniform in +-1/sqrt(kh*kw), as PyTorch). Default: a fresh seed, "
    "printed so the run can be repeated (--demo: 0).",
)
@click.option(
    "--every",
    type=click.IntRange(min=0),
    default=None,
    help="Print 'epoch N, loss L' on stderr every N epochs; 0 for never. Default: epochs/5 (at least 1).",
)
@click.option(
    "-o", "--output", metavar="FILE", help="Save the kernel as .txt, .csv or .npy, readable by filter --kernel FILE."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print kernel, bias, final loss and loss history as JSON on stdout (no summary on stderr).",
)
@click.option("--plot", metavar="FILE", help="Save the loss curve (.png, .svg or .pdf; needs matplotlib).")
@click.option("--log-scale", is_flag=True, help="Plot the loss on a logarithmic axis.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr (errors still show).")
@source_options
@click.pass_context
def learn_command(
    ctx: click.Context, input_source: str | None, target_source: str | None, demo: bool, **options: Any
) -> None:
    """Learn a kernel back from an input and its filtered output (gradient descent or least squares).

    INPUT and TARGET are any sources filter reads (images, .npy/.txt/.csv
    arrays, URLs, -). TARGET is the filtered INPUT: smaller ('valid') or, with
    the matching --padding, the same size. The loss is the summed squared
    error; the learned kernel is printed on stderr. Use a raw .npy/.txt target
    when you can: a PNG target holds 8-bit rounded, possibly rescaled values.

    \b
    Examples:
      convcli learn --demo
      convcli filter samples/edges.txt -k diff-x -o target.npy
      convcli learn samples/edges.txt target.npy --size 1x2 --epochs 10 --lr 0.03 --seed 0
      convcli filter samples/camera.png -k gaussian:5 -o blurred.npy
      convcli learn samples/camera.png blurred.npy --size 5 --solver lstsq -o learned.txt
    """
    if demo:
        extra = [_flag(n) for n in _explicit(ctx, DEMO_FIXED)]
        if input_source is not None or extra:
            given = ", ".join(([repr(input_source)] if input_source else []) + extra)
            raise click.UsageError(f"--demo runs the fixed classic lesson; drop {given}")
    elif input_source is None or target_source is None:
        raise click.UsageError("give INPUT and TARGET (the filtered input), or --demo for the classic lesson")
    settings = LearnOptions.from_click(options)
    if settings.solver == "lstsq":
        extra = [_flag(n) for n in _explicit(ctx, GD_ONLY)]
        if extra:
            raise ParameterError(f"{', '.join(extra)} only apply to --solver gd; lstsq solves in one step, drop them")
    if settings.log_scale and settings.plot is None:
        raise ParameterError("--log-scale sets the axis of the --plot loss curve; add --plot FILE.png")
    if settings.read.color:
        raise ParameterError("learn fits one kernel to gray values; drop --color")
    if settings.output == "-" and settings.as_json:
        raise OutputUsageError("-o - and --json both write to stdout; choose one")
    sources = [s for s in (input_source, target_source) if s is not None]
    _check_files(settings.output, settings.plot, sources)
    if demo:
        _run_demo(settings)
        return
    _run(input_source, target_source, settings)  # type: ignore[arg-type]


def _finish(result: Any, settings: LearnOptions, title: str) -> None:
    """Warnings, -o and --plot, shared by the normal run and the demo."""
    quiet = settings.silent
    for warning in result.warnings:
        message(warning, quiet)
    if settings.output == "-":
        from .streams import binary_stream

        stream = binary_stream("stdout")
        stream.write(_kernel_bytes(result, "stdout.txt"))
        stream.flush()
    elif settings.output is not None:
        from ..io import write_atomic

        write_atomic(settings.output, _kernel_bytes(result, settings.output))
        bias = f" --bias {result.bias:.6g}" if result.learn_bias else ""
        flip = " --convolve" if result.convolve else ""
        message(
            f"kernel saved to {settings.output} (apply it with: convcli filter INPUT -k {settings.output}{flip}{bias})",
            quiet,
        )
    if settings.plot is not None:
        _save_plot(result, settings.plot, settings.log_scale, title)
        message(f"loss curve saved to {settings.plot}", quiet)


def _run(input_source: str, target_source: str, settings: LearnOptions) -> None:
    from ..api.learning import kernel_size_for, learn

    quiet = settings.silent
    image = load(input_source, settings.read, quiet=quiet).array
    loaded_target = load(target_source, settings.read, quiet=quiet)
    target = loaded_target.array
    if loaded_target.kind == "image":
        from ..teach.learn_lesson import image_target_note

        message(image_target_note(loaded_target.source.display, loaded_target.detail, target), quiet)
    geometry = settings.geometry
    size = settings.size
    if size is None:
        size = kernel_size_for(
            image, target, stride=geometry.stride, padding=geometry.padding, dilation=geometry.dilation
        )
        message(
            f"kernel size {format_pair(size)} (from the input {format_pair(image.shape)} (HxW) and target "
            f"{format_pair(target.shape)}; --size to choose another)",
            quiet,
        )
    result = learn(
        image,
        target,
        size,
        solver=settings.solver,
        stride=geometry.stride,
        padding=geometry.padding,
        dilation=geometry.dilation,
        pad_mode=geometry.pad_mode,
        pad_value=geometry.pad_value,
        convolve=geometry.convolve,
        learn_bias=settings.learn_bias,
        **(settings.gd(settings.seed) if settings.solver == "gd" else {}),
    )
    if settings.as_json:
        record = result.to_dict()
        record.update(input_source=input_source, target_source=target_source, output=settings.output)
        emit_json(record)
    for line in str(result).splitlines():  # a line at a time: message() escapes line breaks (file names)
        message(line, quiet)
    _finish(result, settings, f"convcli learn {Path(input_source).name} -> {Path(target_source).name}")


def _run_demo(settings: LearnOptions) -> None:
    from ..api.learning import learn
    from ..teach.learn_lesson import lesson_image, lesson_intro, lesson_lines, lesson_target

    quiet = settings.silent
    seed = 0 if settings.seed is None else settings.seed
    for line in lesson_intro(seed):
        message(line, quiet)
    result = learn(lesson_image(), lesson_target(), (1, 2), **settings.gd(seed))
    exact = learn(lesson_image(), lesson_target(), (1, 2), solver="lstsq")
    for line in lesson_lines(result, exact):
        message(line, quiet)
    if settings.as_json:
        emit_json({"demo": True, "gd": result.to_dict(), "lstsq": exact.to_dict()})
    _finish(result, settings, "convcli learn --demo")
