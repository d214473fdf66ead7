"""``convcli learn``: recover a kernel from an input and its filtered output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import OutputError, OutputUsageError, ParameterError
from ..shapes import format_pair
from .options import geometry_options, read_settings, source_options
from .params import PairType
from .reports import emit_json, message
from .streams import check_outputs, load

KERNEL_SUFFIXES = (".txt", ".csv", ".npy")
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


def matrix_text(array: Any, indent: str = "  ") -> str:
    """A kernel for people: 6 significant digits, right-aligned columns."""
    cells = [[f"{float(v) + 0.0:.6g}" for v in row] for row in array]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + "  ".join(c.rjust(width) for c in row) for row in cells)


def inline_text(array: Any) -> str:
    """A small kernel on one line: ``[1, -1]``, or rows separated by ``;``."""
    rows = [", ".join(f"{float(v) + 0.0:.6g}" for v in row) for row in array]
    return "[" + "; ".join(rows) + "]"


def _kernel_bytes(result: Any, destination: str) -> bytes:
    """The kernel in the format of the file name; .txt carries a comment header that --kernel skips."""
    import io

    import numpy as np

    from ..matrices import format_matrix

    suffix = Path(destination).suffix.lower()
    if suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, result.kernel, allow_pickle=False)
        return buffer.getvalue()
    if suffix == ".csv":
        return (format_matrix(result.kernel, ",") + "\n").encode()
    header = [f"# convcli learn: {_summary(result)}"]
    if result.learn_bias:
        header.append(f"# learned bias {result.bias!r} (not part of the kernel: pass it to filter --bias)")
    return ("\n".join(header) + "\n" + format_matrix(result.kernel) + "\n").encode()


def _save_plot(history: tuple[float, ...], destination: str, log_scale: bool, title: str) -> None:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..io import write_atomic

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = list(range(len(history)))
    values = list(history)
    if log_scale:
        # A log axis cannot show 0: keep the positive losses only.
        pairs = [(e, v) for e, v in zip(epochs, values, strict=True) if v > 0]
        epochs, values = [e for e, _ in pairs], [v for _, v in pairs]
        axes.set_yscale("log")
    axes.plot(epochs, values, marker="o", markersize=3)
    axes.set_xlabel("epoch")
    axes.set_ylabel("summed squared error")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(destination).suffix.lower().lstrip("."))
    write_atomic(destination, buffer.getvalue())


def _record(result: Any) -> dict[str, Any]:
    geometry = result.geometry
    return {
        "kernel": result.kernel.tolist(),
        "bias": result.bias,
        "learned_bias": result.learn_bias,
        "loss": result.loss,
        "history": list(result.history),
        "solver": result.solver,
        "optimizer": result.optimizer,
        "epochs": result.epochs,
        "lr": result.lr,
        "seed": result.seed,
        "rank": result.rank,
        "unknowns": result.unknowns,
        "identifiable": result.identifiable,
        "size": list(geometry.kernel),
        "input": list(geometry.input),
        "target": list(geometry.output),
        "stride": list(geometry.stride),
        "padding": [list(p) for p in geometry.padding],
        "dilation": list(geometry.dilation),
        "convolve": result.convolve,
        "warnings": list(result.warnings),
    }


def _summary(result: Any) -> str:
    how = "convolution, flipped" if result.convolve else "correlation"
    size = format_pair(result.kernel.shape)
    if result.solver == "lstsq":
        return (
            f"least-squares {size} kernel ({how}; rank {result.rank} of {result.unknowns} unknowns): "
            f"loss {result.loss:.6g}"
        )
    return (
        f"learned {size} kernel ({how}; {result.optimizer}, {result.epochs} epochs, lr {result.lr:g}, "
        f"seed {result.seed}): loss {result.history[0]:.6g} -> {result.loss:.6g}"
    )


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


@click.command("learn", context_settings={"show_default": True})
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
    help="Also learn a bias added to every output value (use it with filter --bias B).",
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
    type=click.FloatRange(min=0, min_open=True),
    default=0.03,
    help="Learning rate. The loss is a sum over pixels, so big images need a small rate "
    "(the error message says how small).",
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
    if options["solver"] == "lstsq":
        extra = [_flag(n) for n in _explicit(ctx, GD_ONLY)]
        if extra:
            raise ParameterError(f"{', '.join(extra)} only apply to --solver gd; lstsq solves in one step, drop them")
    if options["log_scale"] and options["plot"] is None:
        raise ParameterError("--log-scale sets the axis of the --plot loss curve; add --plot FILE.png")
    if options["color"]:
        raise ParameterError("learn fits one kernel to gray values; drop --color")
    if options["output"] == "-" and options["as_json"]:
        raise OutputUsageError("-o - and --json both write to stdout; choose one")
    sources = [s for s in (input_source, target_source) if s is not None]
    _check_files(options["output"], options["plot"], sources)
    if demo:
        _run_demo(ctx, options)
        return
    _run(ctx, input_source, target_source, options)  # type: ignore[arg-type]


def _every(options: dict[str, Any]) -> int:
    return options["every"] if options["every"] is not None else max(1, options["epochs"] // 5)


def _fresh_seed(options: dict[str, Any], default: int | None = None) -> int:
    if options["seed"] is not None:
        return int(options["seed"])
    if default is not None:
        return default
    import secrets

    return secrets.randbelow(2**32)


def _finish(ctx: click.Context, result: Any, options: dict[str, Any], quiet: bool, title: str) -> None:
    """Warnings, -o and --plot, shared by the normal run and the demo."""
    for warning in result.warnings:
        message(warning, quiet)
    if options["output"] == "-":
        from .streams import binary_stream

        stream = binary_stream("stdout")
        stream.write(_kernel_bytes(result, "stdout.txt"))
        stream.flush()
    elif options["output"] is not None:
        from ..io import write_atomic

        write_atomic(options["output"], _kernel_bytes(result, options["output"]))
        bias = f" --bias {result.bias:.6g}" if result.learn_bias else ""
        flip = " --convolve" if result.convolve else ""
        message(
            f"kernel saved to {options['output']} (apply it with: convcli filter INPUT -k {options['output']}"
            f"{flip}{bias})",
            quiet,
        )
    if options["plot"] is not None:
        _save_plot(result.history, options["plot"], options["log_scale"], title)
        message(f"loss curve saved to {options['plot']}", quiet)


def _run(ctx: click.Context, input_source: str, target_source: str, options: dict[str, Any]) -> None:
    from ..teach.learn import fit, infer_kernel_size

    quiet = options["quiet"] or options["as_json"]
    read = read_settings(options)
    image = load(input_source, read, quiet=quiet).array
    target = load(target_source, read, quiet=quiet).array
    geometry_options = dict(stride=options["stride"], padding=options["padding"], dilation=options["dilation"])
    size = options["size"]
    if size is None:
        if image.ndim == 2 and target.ndim == 2:
            size = infer_kernel_size(image.shape, target.shape, **geometry_options)
            message(
                f"kernel size {format_pair(size)} (from the input {format_pair(image.shape)} and target "
                f"{format_pair(target.shape)}; --size to choose another)",
                quiet,
            )
        else:
            size = (1, 1)  # the fit rejects the colour array with its own message
    settings: dict[str, Any] = dict(
        **geometry_options,
        pad_mode=options["pad_mode"],
        pad_value=options["pad_value"],
        convolve=options["convolve"],
        learn_bias=options["learn_bias"],
    )
    if options["solver"] == "gd":
        settings.update(
            epochs=options["epochs"],
            lr=options["lr"],
            optimizer=options["optimizer"],
            seed=_fresh_seed(options),
            on_epoch=_progress(_every(options), quiet),
        )
    result = fit(image, target, size, solver=options["solver"], **settings)
    if options["as_json"]:
        record = _record(result)
        record.update(input_source=input_source, target_source=target_source, output=options["output"])
        emit_json(record)
    message(_summary(result), quiet)
    message(matrix_text(result.kernel), quiet)
    if result.learn_bias:
        message(f"bias {result.bias:.6g}", quiet)
    _finish(ctx, result, options, quiet, f"convcli learn {Path(input_source).name} -> {Path(target_source).name}")


def _run_demo(ctx: click.Context, options: dict[str, Any]) -> None:
    import numpy as np

    from ..teach.learn import LESSON_KERNEL, fit_gd, fit_lstsq, initial_kernel, lesson_image, lesson_target, stable_lr

    quiet = options["quiet"] or options["as_json"]
    image, target = lesson_image(), lesson_target()
    seed = _fresh_seed(options, default=0)
    epochs, lr, optimizer = options["epochs"], options["lr"], options["optimizer"]
    message("the classic lesson: a 6x8 image of ones with the middle four columns 0 (samples/edges.txt),", quiet)
    message("filtered with [1, -1] (diff-x) gives the 6x7 target: 1 where white turns black, -1 where black", quiet)
    message("turns white. Learn a 1x2 kernel back from a random start by gradient descent on the summed", quiet)
    message("squared error (one epoch = one full-batch step with its exact gradient).", quiet)
    start, _ = initial_kernel((1, 2), seed)
    message(f"start (seed {seed}): {inline_text(start)}", quiet)
    result = fit_gd(
        image,
        target,
        (1, 2),
        epochs=epochs,
        lr=lr,
        optimizer=optimizer,
        seed=seed,
        on_epoch=_progress(_every(options), quiet),
    )
    error = float(np.abs(result.kernel - LESSON_KERNEL).max())
    message(
        f"gradient descent, {epochs} epochs ({optimizer}, lr {lr:g}): {inline_text(result.kernel)}; "
        f"largest error vs [1, -1]: {error:.3g}",
        quiet,
    )
    hessian = sorted((2.0 * s * s for s in result.singular_values), reverse=True)
    if optimizer == "sgd" and len(hessian) == 2:
        factors = " and ".join(f"|1 - {lr:g}*{h:.4g}| = {abs(1 - lr * h):.3g}" for h in hessian)
        best = 2.0 / (hessian[0] + hessian[1])
        message(
            f"why not exact: the loss is a quadratic bowl; its Hessian 2 A^T A has eigenvalues {hessian[0]:.4g} "
            f"and {hessian[1]:.4g},",
            quiet,
        )
        message(f"  so each epoch multiplies the error along their directions by {factors}.", quiet)
        message(
            f"  Gradient descent converges only for lr < {stable_lr(result.singular_values, 'sgd'):.4g}; the best "
            f"fixed lr, 2/({hessian[0]:.4g} + {hessian[1]:.4g}) = {best:.4g}, gives "
            f"{abs(1 - best * hessian[0]):.3g}.",
            quiet,
        )
    exact = fit_lstsq(image, target, (1, 2))
    exact_error = float(np.abs(exact.kernel - LESSON_KERNEL).max())
    message(
        "do better: the filter is linear in its weights, so least squares (--solver lstsq) solves it in one step:",
        quiet,
    )
    message(
        f"  {inline_text(exact.kernel)}, largest error {exact_error:.3g}, rank {exact.rank} of {exact.unknowns} "
        f"unknowns ({'identifiable' if exact.identifiable else 'not identifiable'})",
        quiet,
    )
    if options["as_json"]:
        emit_json({"demo": True, "gd": _record(result), "lstsq": _record(exact)})
    _finish(ctx, result, options, quiet, "convcli learn --demo")
