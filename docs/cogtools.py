"""Generated parts of the README and the docs pages: command help, example runs, the API page.

Every ``[[[cog ... ]]]`` block in ``README.md`` and ``docs/**/*.md`` is written by running it::

    python docs/cogtools.py          # regenerate every block, in place
    python docs/cogtools.py --check  # exit 1 when any block differs from what convcli prints now

``tests/test_docs_and_layout.py`` runs the check, so the docs can never drift from the tool.

The output must be the same on every machine, whichever optional backend is installed: every
example runs with ``CONVCLI_NO_OPENCV=1`` (the NumPy path, never OpenCV even when it is
installed), ``CONVCLI_NO_CALIBRATION=1`` (the fixed cost model), ``CONVCLI_DEFLATE=zlib`` (zlib's PNG bytes
even with ISA-L installed), ``CONVCLI_THREADS=1`` and single-threaded BLAS (the same order of every sum), in the
C locale (``ls`` and ``sort`` order), with any other ``CONVCLI_*`` setting of the caller removed.
Examples are chosen so that the numbers they print are not rounding noise; the one kind that
cannot be avoided, the loss (or error) of an exact least-squares fit, is around 1e-10 to 1e-30 and
differs with the BLAS build and the CPU, so ``console`` shows any number printed in e-notation
below 1e-9 as ``<1e-9`` (the pages that show one say so).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the environment every example runs in, on top of the caller's (minus its CONVCLI_* settings)
FIXED_ENV = {
    "CONVCLI_NO_OPENCV": "1",
    "CONVCLI_NO_CALIBRATION": "1",
    "CONVCLI_DEFLATE": "zlib",
    "CONVCLI_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "LC_ALL": "C",
    "PYTHONIOENCODING": "utf-8",
    "COLUMNS": "100",
}

#: sections of docs/api.md: heading -> public names of convcli (each name of convcli._LAZY exactly once)
API_SECTIONS: dict[str, list[str]] = {
    "Arrays": ["filter", "pool", "upsample"],
    "Files": ["load", "save", "Saved", "filter_file", "pool_file", "upsample_file", "Streamed"],
    "Kernels": ["kernel", "Kernel", "frequency_response"],
    "Shapes": ["output_size", "receptive_field", "effective_receptive_field"],
    "Teaching": ["explain", "learn", "figure", "animate"],
    "Errors": [
        "ConvcliError",
        "ParameterError",
        "ShapeError",
        "KernelError",
        "UnknownKernelError",
        "SourceError",
        "DecodeError",
        "OutputError",
        "OutputUsageError",
    ],
}

#: a number in e-notation below 1e-9 (e-10 and smaller): rounding noise, different on every machine
ROUNDING_NOISE = re.compile(r"(?<![\w.])-?[0-9](?:\.[0-9]+)?e-(?:1[0-9]|[2-9][0-9]|[1-9][0-9]{2,})(?!\w|\.\d)")
NOISE_TEXT = "<1e-9"

#: The gallery's figures (docs/gallery.md): image in docs/img -> the convcli command that draws it ({out} is the
#: figure's path). docs/gallery.md runs each for real (its text is checked like every example); make_figures.py
#: draws the images the page shows with the same commands.
GALLERY: dict[str, str] = {
    "gallery-random-gaussian.png": "convcli filter samples/random.npy -k gaussian:5 -p same -o smooth.npy --figure {out}",
    "gallery-edges-photo.png": "convcli filter samples/chelsea.png -k vertical -k horizontal --vmin 0 --vmax 0.01 --figure {out}",
    "gallery-classic.png": 'convcli filter samples/x.txt -k "0 1; 2 3" -o out.txt --figure {out}',
    "gallery-padding.png": 'convcli filter samples/x.txt -k "0 1; 2 3" -p 1 -o out.txt --figure {out}',
    "gallery-stride.png": "convcli filter samples/random.npy -k blur:3 -s 2 -o strided.npy --figure {out}",
    "gallery-flip.png": 'convcli filter samples/x.txt -k "0 1; 2 3" --convolve -o flipped.txt --figure {out}',
    "gallery-lesson.png": 'convcli filter samples/edges.txt -k "1 -1" -o response.txt --figure {out}',
    "gallery-transposed-zeros.png": 'convcli filter edges-transposed.txt -k "1 -1" -o zeros.txt --figure {out}',
    "gallery-upsample.png": 'convcli upsample two.txt -k "0 1; 2 3" -s 1 -o spread.txt --figure {out}',
    "gallery-max-pool.png": "convcli pool samples/camera.png --op max --size 2 -o pooled.png --figure {out}",
    "gallery-receptive-field.png": "convcli shape --input 8 conv:k=3,p=1 conv:k=3,p=1 --figure {out}",
    "gallery-learning.png": "convcli learn --demo --seed 0 --plot {out}",
    "gallery-filter-bank.png": (
        "convcli filter samples/camera.png -k edge:1,0 -k edge:0,1 -k edge:1,1 -k edge:1,-1 -k laplacian "
        "-k gaussian:9 -p same --pad-mode replicate --outdir bank --figure {out}"
    ),
}


#: Files the gallery's commands read besides samples/ (made in the scratch folder first).
GALLERY_SETUP = (
    r"printf '0 1\n2 3\n' > two.txt",
    r"printf '1 1 1 1 1 1\n1 1 1 1 1 1\n0 0 0 0 0 0\n0 0 0 0 0 0\n0 0 0 0 0 0\n0 0 0 0 0 0\n1 1 1 1 1 1\n1 1 1 1 1 1\n' > edges-transposed.txt",
)


def gallery(name: str) -> str:
    """The console block of one gallery figure: its command run in the page's scratch folder."""
    return console(GALLERY[name].format(out=name))


_WORKDIRS: dict[str, Path] = {}


def cog_files() -> list[Path]:
    """README.md and every docs page that holds a cog block."""
    candidates = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [path for path in candidates if "[[[cog" in path.read_text(encoding="utf-8")]


def example_env() -> dict[str, str]:
    """The caller's environment without its CONVCLI_* settings, plus FIXED_ENV and this Python's bin first on PATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVCLI_")}
    env.update(FIXED_ENV)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # the examples run in a scratch folder: this checkout's src first, every entry absolute (PYTHONPATH=src)
    entries = [str(ROOT / "src"), *(str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(entries)
    return env


def _commands() -> list[list[str]]:
    import click

    from convcli.cli import COMMANDS, main

    paths: list[list[str]] = [[]]
    context = click.Context(main)
    for name in sorted(COMMANDS):
        paths.append([name])
        command = main.get_command(context, name)
        if isinstance(command, click.Group):
            paths.extend([name, sub] for sub in sorted(command.commands))
    return paths


def render_help_markdown(level: int = 2) -> str:
    """One ``## `convcli ...` `` section per command (``level`` hashes) with its ``--help`` in a code block."""
    from click.testing import CliRunner

    from convcli.cli import main

    runner = CliRunner(env=FIXED_ENV)
    sections = []
    for path in _commands():
        result = runner.invoke(main, [*path, "--help"], prog_name="convcli", terminal_width=100)
        if result.exit_code != 0:
            raise RuntimeError(f"convcli {' '.join(path)} --help failed: {result.output}")
        title = " ".join(["convcli", *path])
        sections.append(f"{'#' * level} `{title}`\n\n```text\n{result.output.rstrip()}\n```\n")
    return "\n".join(sections)


def _workdir() -> Path:
    """A scratch folder holding a copy of samples/, one per page, shared by the blocks of that page."""
    try:
        import cog  # the module cogapp provides while it runs a block

        page = str(cog.inFile)
    except (ImportError, AttributeError):
        page = ""
    if page not in _WORKDIRS:
        folder = Path(tempfile.mkdtemp(prefix="convcli-docs-"))
        shutil.copytree(ROOT / "samples", folder / "samples")
        atexit.register(shutil.rmtree, folder, True)
        _WORKDIRS[page] = folder
    return _WORKDIRS[page]


def console(*commands: str) -> str:
    """Run shell commands in the page's scratch folder; a ```console block with their output (stderr merged)."""
    env = example_env()
    lines = ["```console"]
    for command in commands:
        result = subprocess.run(
            f"{command} 2>&1",
            shell=True,
            cwd=_workdir(),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=False,
        )
        lines.append(f"$ {command}")
        if result.stdout.strip():
            lines.append(ROUNDING_NOISE.sub(NOISE_TEXT, result.stdout.rstrip("\n")))
    lines.append("```")
    return "\n".join(lines) + "\n"


def api_reference() -> str:
    """The mkdocstrings entries of docs/api.md: one per public name, under the name users call it by."""
    import convcli

    listed = [name for names in API_SECTIONS.values() for name in names]
    public = list(convcli._LAZY)
    missing = sorted(set(public) - set(listed))
    extra = sorted(set(listed) - set(public))
    if missing or extra or len(listed) != len(set(listed)):
        raise RuntimeError(
            f"docs/cogtools.py API_SECTIONS is out of step with convcli._LAZY: missing {missing}, not public {extra}"
        )
    parts = []
    for section, names in API_SECTIONS.items():
        parts.append(f"## {section}\n")
        for name in names:
            module, attribute = convcli._LAZY[name].split(":")
            parts.append(
                f"::: {module}.{attribute}\n"
                "    options:\n"
                f'      heading: "convcli.{name}"\n'
                f'      toc_label: "{name}"\n'
                "      heading_level: 3\n"
            )
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    """Regenerate (default) or ``--check`` every cog block of the README and the docs."""
    from cogapp import Cog

    check = "--check" in argv
    os.chdir(ROOT)
    files = [str(path.relative_to(ROOT)) for path in cog_files()]
    args = ["cog", "--check", "--diff"] if check else ["cog", "-r"]
    status = Cog().main([*args, *files])
    if check and status:
        print("the generated docs are out of date; run: python docs/cogtools.py", file=sys.stderr)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
