"""Start-up of a small job (issue 19, target 2): which modules a fresh interpreter imports.

Each case runs the real command line in a new Python process (``python -c`` running
``convcli.cli.run`` and then printing ``sys.modules`` to a file), so what is measured is the
whole process as a user starts it, not the test runner's already-imported modules. The
assertions are about behaviour (a module is or is not loaded), never about time. Each case
also checks that the command did its work, so a command that fails early cannot pass by
importing little, and a positive control shows the probe does see lazily imported modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcli.io.pixels import nearest_rank

ROOT = Path(__file__).resolve().parent.parent
CHELSEA = ROOT / "samples" / "chelsea.png"

# Runs the command line as `convcli` does, then writes the names of the loaded modules (also after a
# SystemExit, which is how the command ends) to the file named by the first argument.
PROBE = """
import atexit, sys
out, sys.argv = sys.argv[1], ["convcli", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(" ".join(sorted(sys.modules))))
from convcli.cli import run
run()
"""

#: Never needed by the small filter job (nor by --help, shape, kernels): each belongs to another feature.
HEAVY = {
    "scipy": "SciPy (FFT work, calibration)",
    "torch": "PyTorch",
    "cv2": "OpenCV",
    "matplotlib": "figures",
    "tifffile": "TIFF",
    "convcli.kernels.magick": "im: kernel names",
    "convcli.kernels.vips": ".mat kernel files",
    "convcli.io.strips": "streamed reads",
    "convcli.io.rowwriters": "streamed writes",
    "convcli.run.stream": "streamed runs",
    "convcli.run.streamed": "streamed runs",
    "convcli.run.cluster": "Dask",
    "convcli.transpose": "upsample",
    "convcli.pooling": "pool",
    "convcli.teach.figures": "--figure",
    "convcli.engine.opencv": "OpenCV backend",
    "convcli.engine.fft": "FFT work (a measured tile table only for large work)",
    "PIL.JpegImagePlugin": "Pillow's common plugins for a PNG",
    "PIL.BmpImagePlugin": "Pillow's common plugins for a PNG",
    "PIL.GifImagePlugin": "Pillow's common plugins for a PNG",
    "tempfile": "atomic writes make their own temporary name",
    "subprocess": "(pulled by Pillow's JPEG plugin)",
    "glob": "source patterns",
    "json": "--json",
    "multiprocessing": "batches",
    "concurrent.futures.process": "batches",
    "http.client": "URLs",
    "urllib.request": "URLs",
}


def run_probe(
    tmp_path: Path, probe: str, out: Path, *args: str, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """A fresh ``python -c PROBE OUT ARGS`` process in ``tmp_path``, this tree's ``src`` first on its path;
    ``env`` sets (or, with None, removes) variables beside CONVCLI_THREADS, which is always removed."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    for name, value in {"CONVCLI_THREADS": None, **(env or {})}.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, "-c", probe, str(out), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )


def modules_after(tmp_path: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules loaded by a fresh ``convcli ARGS`` process, and the finished process."""
    listing = tmp_path / "modules.txt"
    done = run_probe(tmp_path, PROBE, listing, *args)
    assert listing.exists(), done.stderr
    return set(listing.read_text().split()), done


def assert_light(modules: set[str], *allowed: str) -> None:
    loaded = {name: why for name, why in HEAVY.items() if name in modules and name not in allowed}
    assert not loaded, f"imported although the command does not need them: {loaded}"


def test_small_filter_job_imports_only_what_it_uses(tmp_path: Path) -> None:
    modules, done = modules_after(tmp_path, "filter", str(CHELSEA), "-k", "vertical", "-o", "out.png")
    assert done.returncode == 0, done.stderr
    assert "298x449" in done.stderr  # the job ran: its report line (300x451 input, 3x3 valid)
    from PIL import Image

    with Image.open(tmp_path / "out.png") as written:
        assert written.size == (449, 298) and written.mode == "L"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []  # no temporary left
    # what the job needs is there (the probe sees the modules it imports inside functions) ...
    for needed in ("numpy", "PIL.Image", "PIL.PngImagePlugin", "convcli.engine.strips", "convcli.io.png"):
        assert needed in modules, needed
    # ... and what it does not need is not (click's help pulls shutil for the terminal width; the job does not)
    assert_light(modules)
    assert "shutil" not in modules


def test_a_jpeg_job_imports_pillows_jpeg_plugin_alone(tmp_path: Path) -> None:
    # Image.open would first import the BMP, GIF, PPM and PNG plugins too (10-20 ms); the JPEG signature picks one.
    from PIL import Image

    with Image.open(CHELSEA) as image:
        image.convert("RGB").save(tmp_path / "cat.jpg", quality=90)
    modules, done = modules_after(tmp_path, "filter", "cat.jpg", "-k", "vertical", "-o", "out.png")
    assert done.returncode == 0, done.stderr
    assert "298x449" in done.stderr and "JPEG" in done.stderr
    assert "PIL.JpegImagePlugin" in modules
    assert_light(modules, "PIL.JpegImagePlugin", "subprocess")
    assert not {"PIL.PngImagePlugin", "PIL.PpmImagePlugin"} & modules


def test_help_and_shape_import_no_numerical_module(tmp_path: Path) -> None:
    for args in (["--help"], ["filter", "--help"], ["shape", "-i", "224x224", "-k", "3", "-s", "2"]):
        modules, done = modules_after(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        assert_light(modules)
        if args == ["--help"]:
            assert "filter" in done.stdout and "numpy" not in modules  # the commands' help needs no arrays
        if args[0] == "shape":
            assert "-> 111x111" in done.stdout  # floor((224 - 3) / 2) + 1 = 111
            assert "convcli.io" not in modules and "PIL" not in modules and "numpy" not in modules


def test_kernels_listing_imports_the_magick_names_only_then(tmp_path: Path) -> None:
    modules, done = modules_after(tmp_path, "kernels")
    assert done.returncode == 0, done.stderr
    assert "vertical" in done.stdout and "im:" in done.stdout  # the catalogue and ImageMagick's names
    assert "convcli.kernels.magick" in modules  # it lists them, so it imports them: the probe sees lazy imports
    assert_light(modules, "convcli.kernels.magick")


@pytest.mark.parametrize(
    ("spec", "module"),
    [("im:Sobel", "convcli.kernels.magick"), ("k.mat", "convcli.kernels.vips")],
)
def test_a_kernel_spec_imports_its_parser_when_given(tmp_path: Path, spec: str, module: str) -> None:
    (tmp_path / "k.mat").write_text("3 3 1 0\n1 0 -1\n2 0 -2\n1 0 -1\n")
    modules, done = modules_after(tmp_path, "filter", str(CHELSEA), "-k", spec, "-o", "out.png")
    assert done.returncode == 0, done.stderr
    assert module in modules
    assert (tmp_path / "out.png").stat().st_size > 0


@given(st.integers(1, 10**12), st.floats(0, 100))
def test_nearest_rank_is_the_exact_ceiling_of_the_decimal_percentile(count: int, percentile: float) -> None:
    """The rank without fractions (kept off the start-up) against Fraction's exact arithmetic, the former code."""
    import math
    from fractions import Fraction

    want = min(max(math.ceil(Fraction(repr(percentile)) * count / 100), 1), count)
    assert nearest_rank(count, percentile) == want


# Records OPENBLAS_THREAD_TIMEOUT as it is when NumPy starts to load (an audit hook on the import), then runs the
# command line as `convcli` does.
BLAS_PROBE = """
import os, sys
out, sys.argv = sys.argv[1], ["convcli", *sys.argv[2:]]
def hook(event, args):
    if event == "import" and args[0] == "numpy" and not os.path.exists(out):
        open(out, "w").write(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "unset"))
sys.addaudithook(hook)
from convcli.cli import run
run()
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "4"), ("12", "12")])
def test_the_program_lets_blas_workers_sleep_before_numpy_loads(tmp_path: Path, given, expected) -> None:
    # OpenBLAS reads the variable once, as NumPy loads it: set any later, it would change nothing. A value the user
    # set is kept.
    seen = tmp_path / "timeout.txt"
    arguments = ("filter", str(CHELSEA), "-k", "vertical", "-o", "out.png")
    done = run_probe(tmp_path, BLAS_PROBE, seen, *arguments, env={"OPENBLAS_THREAD_TIMEOUT": given})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.png").exists() and seen.read_text() == expected
