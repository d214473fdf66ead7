"""``convcli explain``: a small convolution written out step by step, for learners."""

from __future__ import annotations

import codecs
import sys
from dataclasses import asdict, dataclass
from typing import Any

import click

from ..api.settings import Geometry, ReadSettings
from .option_records import geometry_settings
from .options import geometry_options
from .params import KernelSpecType
from .sections import SectionedCommand
from .streams import load


def _times_sign() -> str:
    """The multiplication sign ×, or * when stdout's encoding has no × (cp437, say).

    click.echo already writes UTF-8 to a stream that claims ASCII (a misconfigured
    locale), so ASCII counts as UTF-8 here.
    """
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        if codecs.lookup(encoding).name == "ascii":
            return "×"
        "×".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "*"
    return "×"


@dataclass(frozen=True)
class ExplainOptions:
    """Everything ``convcli explain`` takes besides SOURCE and the kernel, built once from click's arguments."""

    geometry: Geometry
    read: ReadSettings
    matrix: bool

    @classmethod
    def from_click(cls, options: dict[str, Any]) -> ExplainOptions:
        """Number grids are never scaled; images by ``--normalize`` (default none); URLs up to 16 MiB."""
        return cls(
            geometry=geometry_settings(options),
            read=ReadSettings(normalize=options["normalize_method"], max_download=16 * 1024 * 1024),
            matrix=options["matrix"],
        )


@click.command("explain", cls=SectionedCommand, context_settings={"show_default": True})
@click.argument("source", metavar="SOURCE")
@click.option(
    "-k",
    "--kernel",
    type=KernelSpecType(),
    required=True,
    help="Kernel: a name (convcli kernels), an inline matrix '0 1; 2 3', or a file (.txt/.csv/.npy).",
)
@geometry_options(
    convolve_help="Flip the kernel 180 degrees (true convolution, shown flipped) or not (cross-correlation, as torch conv2d)."
)
@click.option(
    "--matrix",
    is_flag=True,
    help="Also show the result as matrix products: the im2col matrix times the kernel, and the "
    "Toeplitz-style weight matrix times the flattened padded input.",
)
@click.option(
    "--normalize",
    "normalize_method",
    type=click.Choice(["none", "dtype", "max"]),
    default="none",
    help="Image sources: none = raw pixel values (0..255), dtype = divide by white to get [0, 1], "
    "max = divide by the image's maximum. Number grids are never scaled.",
)
def explain_command(source: str, kernel: Any, **options: Any) -> None:
    """Write out a small convolution step by step: padded input, every sum of products, the output.

    Each output element is printed as textbooks write it, input value times
    kernel weight over its window (0×0 + 1×1 + 3×2 + 4×3 = 19), and the sums
    are checked against convcli's engine. SOURCE is a number grid (.txt, .csv,
    .npy), a small image (read as gray) or - for stdin. Examples too large to
    read (padded input over 16 per side, over 64 outputs, kernels over 25 taps)
    are refused.

    \b
    Examples:
      convcli explain samples/x.txt -k "0 1; 2 3"
      convcli explain samples/x.txt -k "0 1; 2 3" --padding 1 --stride 2
      convcli explain samples/x.txt -k "0 1; 2 3" --convolve --matrix
      printf '1 2 3 4\\n5 6 7 8\\n' | convcli explain - -k "1 -1"
    """
    from ..api.teaching import explain

    settings = ExplainOptions.from_click(options)
    loaded = load(source, settings.read)
    explanation = explain(
        loaded.array,
        kernel,
        **{key: value for key, value in asdict(settings.geometry).items() if key not in ("origin", "same_extra")},
        matrix=settings.matrix,
        name="stdin" if source == "-" else source,
    )
    click.echo(explanation.text(times=_times_sign()))
