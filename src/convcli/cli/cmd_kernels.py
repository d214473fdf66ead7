"""``convcli kernels``: the catalogue, and one kernel shown in full."""

from __future__ import annotations

from typing import Any

import click

from ..shapes import format_pair
from .params import KernelSpecType, remembered_inputs
from .reports import emit_json, size_record
from .sections import SectionedGroup


def _default_shape(entry: Any) -> tuple[int, int]:
    try:
        weights = entry.build([])
    except Exception:  # entries that need a parameter (edge) have no default
        weights = entry.build(["1,0"])
    return weights.shape


def _magick_order(text: str) -> str:
    """For an ImageMagick string (``3x1: 1,0,-1``), a reminder that its size is written the other way round."""
    import re

    found = re.match(r"\s*(\d+)x(\d+)\s*:", text)
    if found is None or found.group(1) == found.group(2):
        return ""
    return f"; ImageMagick's {found.group(1)}x{found.group(2)} is WxH"


def _file_description(path: Any) -> str:
    """The file's first comment line (within its first 64 KiB), else its name."""
    if path.suffix.lower() != ".npy":
        with open(path, "rb") as stream:
            head = stream.read(1 << 16).decode("utf-8", errors="replace").removeprefix("\ufeff")
        for line in head.splitlines():
            if line.strip().startswith("#"):
                return f"{line.strip().lstrip('#').strip()[:200]} [{path.name}]"
    return f"kernel file {path.name}"


@click.group("kernels", cls=SectionedGroup, invoke_without_command=True, context_settings={"show_default": True})
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON on stdout.")
@click.pass_context
def kernels_group(ctx: click.Context, as_json: bool) -> None:
    """List the kernel catalogue (name, default size, description), or show one kernel.

    Names take parameters after colons (gaussian:7:1.5). Files in the shipped
    kernels/ folder and in $CONVCLI_KERNEL_PATH are listed too and can be used
    by name.

    \b
    Examples:
      convcli kernels
      convcli kernels show gaussian:7
      convcli kernels show "0 1; 2 3" --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..errors import ConvcliError
    from ..kernels import catalogue, kernel_files, load_kernel_file, magick_catalogue, parse_kernel_spec
    from .reports import message

    rows = [(entry.usage, _default_shape(entry), entry.description) for entry in catalogue()]
    for usage, default, description in magick_catalogue():  # ImageMagick's names, behind im:
        rows.append((usage, parse_kernel_spec(default).shape, description))
    for path in kernel_files():
        try:
            rows.append((path.stem, load_kernel_file(path).shape, _file_description(path)))
        except (ConvcliError, OSError) as exc:  # one broken file in a kernel folder does not hide the others
            reason = str(exc) if isinstance(exc, ConvcliError) else f"cannot read {path.name}: {exc.strerror or exc}"
            message(f"note: skipping {path.stem}: {reason}")
    if as_json:
        emit_json({"kernels": [{"name": n, "size": size_record(s), "description": d} for n, s, d in rows]})
        return
    width = max(len(n) for n, _, _ in rows)
    click.echo(f"{'NAME':<{width}}  {'HxW':<5}  DESCRIPTION")
    for name, size, description in rows:
        click.echo(f"{name:<{width}}  {format_pair(size):<5}  {description}")


@kernels_group.command("show", context_settings={"show_default": True})
@click.argument("spec", type=KernelSpecType())
@click.option("--json", "as_json", is_flag=True, help="Print the kernel as JSON on stdout.")
@click.option("--flip", is_flag=True, help="Show the kernel flipped 180 degrees (as --convolve applies it).")
@click.option(
    "--freq",
    is_flag=True,
    help="Also the kernel's frequency response: its gain at 0, pi/4, pi/2, 3pi/4 and pi (Nyquist) down the rows and "
    "across the columns (stderr, and in --json); with --figure, |H| over the frequency plane and its cuts.",
)
@click.option(
    "--figure",
    metavar="FILE",
    help="Also draw the kernel as a heatmap centred on 0, values in the cells up to 9x9 (.png, .svg or .pdf; "
    "needs matplotlib).",
)
def show_command(spec: Any, as_json: bool, flip: bool, freq: bool, figure: str | None) -> None:
    """Print a kernel's matrix, its sum and whether it is separable.

    SPEC is anything -k accepts. Values are printed in their shortest exact
    form; the matrix goes to stdout, so it can be saved as a kernel file.

    \b
    Examples:
      convcli kernels show sobel-x
      convcli kernels show gaussian:5 > k.txt && convcli filter samples/camera.png -k k.txt
      convcli kernels show diff-x:2 --json
      convcli kernels show sobel-x --figure sobel-x.png
      convcli kernels show gaussian:5 --freq --figure gaussian-5-freq.png
    """
    if figure is not None:
        from ..teach.figures import check_figure_path, require_matplotlib
        from .streams import check_outputs

        check_figure_path(figure)
        require_matplotlib()
        check_outputs([figure], remembered_inputs())
    from ..engine import rank1_factors
    from ..matrices import format_matrix, format_number

    weights = spec.weights[::-1, ::-1] if flip else spec.weights
    factors = rank1_factors(weights)
    total = float(weights.sum())
    response = None
    if freq:
        from ..teach.frequency import frequency_response, gains_at

        response = frequency_response(weights)
        down, across = gains_at(weights)
    if figure is not None:
        title = f"{spec.name} {format_pair(spec.shape)}{' flipped' if flip else ''}"
        if response is not None:
            from ..teach.frequency import frequency_figure

            frequency_figure(figure, response, f"frequency response of {title}")
        else:
            from ..teach.figures import kernel_figure

            kernel_figure(figure, weights, title)
    if as_json:
        emit_json(
            {
                "spec": spec.spec,
                "name": spec.name,
                "shape": size_record(spec.shape),
                "weights": weights.tolist(),
                "sum": total,
                "separable": factors is not None,
                "factors": None if factors is None else {"column": factors[0].tolist(), "row": factors[1].tolist()},
                "flipped": flip,
                "description": spec.description,
                **(
                    {
                        "frequency": {
                            **response.record(),
                            "at": ["0", "pi/4", "pi/2", "3pi/4", "pi"],
                            "rows": down,
                            "columns": across,
                        }
                    }
                    if response is not None
                    else {}
                ),
            }
        )
        return
    click.echo(format_matrix(weights, align=True))
    separable = "no (rank > 1)"
    if factors is not None:
        separable = (
            f"yes: column [{' '.join(format_number(v) for v in factors[0])}] x "
            f"row [{' '.join(format_number(v) for v in factors[1])}]"
        )
    click.echo(
        f"{spec.spec}: {format_pair(spec.shape)} (HxW{_magick_order(spec.spec)}){', flipped' if flip else ''}, sum {format_number(float(f'{total:.12g}'))}, "
        f"separable {separable}; {spec.description}",
        err=True,
    )
    if response is not None:
        shown = " ".join
        click.echo(
            f"gain at 0, pi/4, pi/2, 3pi/4, pi: down the rows {shown(f'{g:.4g}' for g in down)}; across the columns "
            f"{shown(f'{g:.4g}' for g in across)}",
            err=True,
        )
