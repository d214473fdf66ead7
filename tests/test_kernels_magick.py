"""ImageMagick's named kernels (im:...) against the real program's showKernel output, and on an image."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import convcli
from conftest import assert_error
from convcli.errors import KernelError, UnknownKernelError
from convcli.kernels import magick_kernel, parse_kernel_spec
from convcli.kernels.magick_geometry import parse_geometry


def _find_magick() -> str | None:
    """The real ImageMagick ``convert``, or None (a stand-in that only converts PNGs does not count)."""
    for candidate in ("/usr/bin/convert", shutil.which("convert")):
        if candidate and Path(candidate).exists():
            try:
                version = subprocess.run([candidate, "-version"], capture_output=True, text=True, timeout=30).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if version.startswith("Version: ImageMagick"):
                return candidate
    return None


CONVERT = _find_magick()
needs_magick = pytest.mark.skipif(CONVERT is None, reason="ImageMagick's convert is not installed (apt: imagemagick)")

_HEADER = re.compile(r'^Kernel(?: #\d+)? "([^"]+)" of size (\d+)x(\d+)\+(\d+)\+(\d+) with values')
_RANGE = re.compile(r"^Forming a output range from (\S+) to (\S+) \((Zero-Summing|Normalized|Sum (\S+))\)")


def show_kernel(spec: str, *defines: str) -> dict:
    """Run ``convert xc: -define morphology:showKernel=1 -morphology Convolve SPEC null:`` and parse its table."""
    assert CONVERT is not None
    args = [CONVERT, "xc:"]
    for define in defines:
        args += ["-define", define]
    args += ["-define", "morphology:showKernel=1", "-morphology", "Convolve", spec, "null:"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("Unable to rotate")]
    header = _HEADER.match(lines[0]) if lines else None
    assert header, f"{spec}: {result.stderr}"
    summary = _RANGE.match(lines[1])
    assert summary, lines[1]
    rows = []
    for line in lines[2:]:
        if _HEADER.match(line):
            break  # a list of kernels: the first one only
        label, _, values = line.partition(":")
        assert label.strip().isdigit(), line
        rows.append([float(v) for v in values.split()])
    width, height = int(header.group(2)), int(header.group(3))
    values = np.array(rows)
    assert values.shape == (height, width), (spec, values.shape)
    return {
        "label": header.group(1),
        "origin": (int(header.group(5)), int(header.group(4))),  # printed +X+Y: column, then row
        "values": values,
        "kind": summary.group(3).split()[0],
        "sum": float(summary.group(4)) if summary.group(4) else None,
    }


def assert_same_as_printed(ours: np.ndarray, printed: np.ndarray) -> None:
    """Equal at ImageMagick's printed precision (%.6g): half a unit in the 6th significant digit; 0 is 0."""
    assert ours.shape == printed.shape
    tolerance = 5.000001e-6 * np.abs(printed)
    assert np.all(np.abs(ours - printed) <= tolerance), np.max(np.abs(ours - printed) - tolerance)


ANGLES = [0, 45, 90, 135, 180, 225, 270, 315, -90, 405, 60, 100]
GRID = (
    ["Unity", "Unity:3", "Unity:0", "Unity:-2.5"]
    + [f"{name}:{angle}" for name in ("Sobel", "Roberts", "Prewitt", "Compass", "Kirsch") for angle in ANGLES]
    + ["Sobel", "Roberts", "Prewitt", "Compass", "Kirsch", "sobel:90", "SOBEL:90", "kIrScH"]
    + [f"Laplacian:{t}" for t in (0, 1, 2, 3, 4, 5, 6, 7, 15, 19, -2)]
    + ["Laplacian"]
    + [f"FreiChen:{t}" for t in (0, 1, 2, 3, 11, 12, 13, 14, 15, 16, 17, 18, 19, -1, 45, 90, 135)]
    + ["FreiChen", "FreiChen:1,90", "FreiChen:2,45", "FreiChen:19,45", "FreiChen:16,180"]
    + ["Gaussian", "Gaussian:0x2", "Gaussian:0x1", "Gaussian:0x0.5", "Gaussian:0x0.1", "Gaussian:2", "Gaussian:3x1.5"]
    + ["Gaussian:0.5x1", "Gaussian:-2x1", "Gaussian:0x-2", "Gaussian:0x10", "Gaussian:2.3x1", "gaussian:1x3"]
    + ["Gaussian:0,2", "Gaussian 0x2"]
    + ["DoG", "DoG:0,1,2", "DoG:0,2,1", "DoG:3,1,1.6", "DoG:2,0,1", "DoG:0,0.5,0", "DoG:0,0.1,0.2"]
    + ["LoG", "LoG:0x1", "LoG:0x2.5", "LoG:0x0.3", "LoG:4x1.4"]
    + ["Blur", "Blur:0x1", "Blur:0x1,90", "Blur:0x1,270", "Blur:3x1,180", "Blur:1.5x1", "Blur:0.5x1", "Blur:0x0"]
    + ["Blur:0x0.2", "Blur:5x2,90", "Blur:0x20", "Blur:0x1+90"]
    + ["Comet", "Comet:0x1", "Comet:0x1,90", "Comet:0x1,180", "Comet:0x1,270", "Comet:4x1", "Comet:2.5x1"]
    + ["Comet:0x2,270", "Comet:0x0.1", "Comet:5x0.1", "Comet:10x3"]
    + ["Binomial", "Binomial:1.5", "Binomial:2", "Binomial:5", "Binomial:8"]
    # Geometry spellings: commas, slashes, signs, extra numbers.
    + ["Sobel,90", "Sobel:+90", "Blur:0x1,90,5", "Blur:0x1-90", "Gaussian:1,1", "Gaussian:2/1", "Comet:3,1"]
    + ["DoG:0x1,2"]
)


@needs_magick
@pytest.mark.parametrize("spec", GRID)
def test_named_kernels_equal_what_imagemagick_prints(spec):
    printed = show_kernel(spec)
    ours = magick_kernel(spec)
    assert ours.label == printed["label"]
    assert ours.origin == printed["origin"]
    assert_same_as_printed(ours.weights, printed["values"])
    total = float(ours.weights.sum())
    if not spec.lower().startswith("unity"):  # ImageMagick leaves Unity's output range unset (prints 0 to 0)
        if printed["kind"] == "Zero-Summing":
            assert abs(total) < 1e-9
        elif printed["kind"] == "Normalized":
            assert total == pytest.approx(1.0, abs=1e-12)
        else:
            assert total == pytest.approx(printed["sum"], rel=5e-6)
    # The same kernel through -k, under the im: prefix.
    assert np.array_equal(parse_kernel_spec(f"im:{spec}").weights, ours.weights)


def test_hand_computed_kernels():
    # Sobel turned clockwise: 90 puts the positive row on top, 45 moves each ring value one step clockwise.
    assert magick_kernel("Sobel:90").weights.tolist() == [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    assert magick_kernel("Sobel:45").weights.tolist() == [[2, 1, 0], [1, 0, -1], [0, -1, -2]]
    assert magick_kernel("Sobel:180").weights.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    # Laplacian:4 is not a type ImageMagick has: it is type 0, the 8-neighbour Laplacian (unlike convcli's laplacian:4).
    assert magick_kernel("Laplacian:4").weights.tolist() == [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]
    assert magick_kernel("Laplacian:1").weights.tolist() == parse_kernel_spec("laplacian:4").weights.__neg__().tolist()
    assert magick_kernel("Binomial").weights.tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert magick_kernel("Binomial:2").weights.sum() == 4**4
    # FreiChen:2 scaled by 1.0/2.0*sqrt(2) = sqrt(2)/2, as the C expression reads.
    np.testing.assert_allclose(
        magick_kernel("FreiChen:2").weights, np.array([[0.5**0.5, 1, 0], [1, 0, -1], [0, -1, -(0.5**0.5)]]), rtol=1e-15
    )
    assert magick_kernel("Unity").weights.tolist() == [[1.0]]
    # A Gaussian of sigma 0 is a unity kernel in a 3x3 field; Blur:0x0 a centred 1 in a row of 3.
    assert magick_kernel("Gaussian").weights.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert magick_kernel("Blur:0x0").weights.tolist() == [[0, 1, 0]]
    # Gaussian:2x1 is 5x5, sums to 1 and is the normalised sampled Gaussian.
    grid = np.arange(-2, 3.0)
    want = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / 2)
    np.testing.assert_allclose(magick_kernel("Gaussian:2x1").weights, want / want.sum(), rtol=1e-13)
    # DoG and LoG: positive part sums to 1, negative to -1.
    for spec in ("DoG:0,1,2", "LoG:0x1"):
        w = magick_kernel(spec).weights
        assert w[w > 0].sum() == pytest.approx(1.0, abs=1e-12)
        assert w[w < 0].sum() == pytest.approx(-1.0, abs=1e-12)
    # Comet: origin at the first tap, or at the last after 180 degrees; the kernel's description says so.
    assert magick_kernel("Comet:0x1").origin == (0, 0)
    assert magick_kernel("Comet:0x1,180").origin == (0, 4)
    assert "origin is row 0, column 4" in parse_kernel_spec("im:Comet:0x1,180").description
    assert "origin" not in parse_kernel_spec("im:Sobel:90").description


def test_geometry_parsing():
    g = parse_geometry("0x2")
    assert (g.rho, g.sigma, sorted(g.given)) == (0.0, 2.0, ["rho", "sigma"])
    g = parse_geometry("0,1,2")
    assert (g.rho, g.sigma, g.xi) == (0.0, 1.0, 2.0)
    g = parse_geometry("5x3+1-2")
    assert (g.rho, g.sigma, g.xi, g.psi) == (5.0, 3.0, 1.0, -2.0)
    g = parse_geometry("1 2 3 4")
    assert (g.rho, g.sigma, g.xi, g.psi) == (1.0, 2.0, 3.0, 4.0)
    assert parse_geometry("90!").flags == frozenset({"!"})
    assert parse_geometry("").given == frozenset()


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("FreiChen:10", ["list of nine kernels", "FreiChen:11"]),
        ("Sobel@", ["'@', '<' and '>'", "im:Sobel:45"]),
        ("Sobel:>", ["'@', '<' and '>'"]),
        ("Sobel:abc", ["'abc' is not an ImageMagick geometry"]),
        ("Sobel:1e999", ["not finite"]),
        ("Gaussian:1.5x1", ["radius 1.5 gives an even width 4", "whole radius"]),
        ("LoG:2.5x1", ["even width 6"]),
        ("Binomial:9", ["overflows", "1 to 8"]),
        ("Blur:0x3,45", ["only 3x3 kernels by 45 degrees", "25x1"]),
        ("Blur:0x100000", ["sigma 100000", "over 4096 wide"]),
        ("Gaussian:5000x1", ["10001 wide", "4096"]),
    ],
)
def test_refusals_name_the_problem(spec, fragments):
    with pytest.raises(KernelError) as error:
        magick_kernel(spec)
    message = str(error.value)
    assert message.startswith(f"kernel 'im:{spec}'")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_unknown_name_lists_the_names():
    with pytest.raises(UnknownKernelError, match=r"'im:Sharpen'.*Sobel, Roberts"):
        magick_kernel("Sharpen")


@needs_magick
def test_the_refusals_are_where_imagemagick_goes_wrong():
    # Gaussian:1.5x1: 6.9.11 makes a 4x4 kernel but fills only 3x3 of it (the rest is uninitialised memory).
    printed = show_kernel("Gaussian:1.5x1")
    assert printed["values"].shape == (4, 4)
    # Binomial:9: 64-bit factorials overflow; the sum should be 4^18.
    assert show_kernel("Binomial:9")["sum"] != pytest.approx(4.0**18, rel=1e-3)
    assert show_kernel("Binomial:8")["sum"] == pytest.approx(4.0**16, rel=1e-5)


def test_cli_lists_and_shows_im_kernels(cli):
    run = cli(["kernels"])
    assert run.exit_code == 0, run
    for usage in ("im:Sobel[:ANGLE]", "im:Gaussian:RADIUSxSIGMA", "im:FreiChen[:TYPE[,ANGLE]]", "im:Laplacian[:TYPE]"):
        assert usage in run.stdout
    run = cli(["kernels", "show", "im:Sobel:90"])
    assert run.exit_code == 0, run
    assert run.stdout.split() == ["1", "2", "1", "0", "0", "0", "-1", "-2", "-1"]
    assert "Sobel@90" in run.stderr
    assert_error(cli(["kernels", "show", "im:FreiChen:10"]), 2, "list of nine kernels")
    assert_error(cli(["kernels", "show", "im:Nope"]), 2, "not one of ImageMagick's convolution kernels")


# ---------------------------------------------------------------------------
# On an image: convert -morphology Convolve|Correlate against convcli filter


def _write_pgm(path: Path, array: np.ndarray) -> None:
    h, w = array.shape
    path.write_bytes(f"P5\n{w} {h}\n65535\n".encode() + array.astype(">u2").tobytes())


def _read_pgm(data: bytes) -> np.ndarray:
    match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert match, data[:40]
    w, h, maxval = (int(g) for g in match.groups())
    assert maxval == 65535
    return np.frombuffer(data[match.end() :], dtype=">u2").reshape(h, w).astype(np.float64)


@needs_magick
@pytest.mark.parametrize(
    ("kernel", "method", "bias", "peak"),
    [
        ("Gaussian:0x1", "Convolve", 0, 60000),
        ("Blur:0x1.5,90", "Convolve", 0, 60000),
        ("Binomial", "Correlate", 0, 4000),
        ("Sobel:45", "Convolve", 32768, 8000),
        ("Sobel:45", "Correlate", 32768, 8000),
        ("Kirsch:90", "Convolve", 32768, 2000),
        ("LoG:0x1", "Correlate", 32768, 30000),
        ("FreiChen:13", "Convolve", 32768, 20000),
    ],
)
def test_convert_morphology_equals_convcli_filter(tmp_path, kernel, method, bias, peak):
    """``convert -morphology Convolve K`` is ``--convolve --padding same --pad-mode replicate`` (Correlate: no flip).

    16-bit input scaled so that the Q16 (non-HDRI) result never clips; the bias keeps signed responses
    positive. ImageMagick rounds to whole quanta, so the outputs agree to within half a quantum.
    """
    rng = np.random.default_rng(16)
    image = rng.integers(0, peak, size=(11, 13))
    image[5, 6] = peak  # an impulse-like peak makes the orientation matter
    source = tmp_path / "in.pgm"
    _write_pgm(source, image)
    assert CONVERT is not None
    result = subprocess.run(
        [
            CONVERT,
            str(source),
            "-define",
            f"convolve:bias={bias}",
            "-morphology",
            method,
            kernel,
            "-depth",
            "16",
            "pgm:-",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    magick = _read_pgm(result.stdout)
    ours = convcli.filter(
        image.astype(np.float64),
        f"im:{kernel}",
        padding="same",
        pad_mode="replicate",
        convolve=method == "Convolve",
        bias=bias,
    )
    assert ours.min() >= 0 and ours.max() <= 65535, "the input must be scaled so that nothing clips"
    assert np.max(np.abs(ours - magick)) <= 0.5 + 1e-6
    # And the other orientation is really different (the comparison can fail).
    if kernel.startswith(("Sobel", "Kirsch", "FreiChen")):
        flipped = convcli.filter(
            image.astype(np.float64),
            f"im:{kernel}",
            padding="same",
            pad_mode="replicate",
            convolve=method != "Convolve",
            bias=bias,
        )
        assert np.max(np.abs(flipped - magick)) > 100


@needs_magick
def test_even_kernels_correlate_like_pytorch_same_and_convolve_like_ndimage(tmp_path):
    """Documented in kernels.magick: the origin of an even WxH kernel is ((H-1)//2, (W-1)//2).

    So ``Correlate`` spans one more tap below/right (PyTorch's 'same', convcli's default), while
    ``Convolve`` reflects the origin too: convcli's ``--convolve`` output one step down-right.
    """
    impulse = np.zeros((6, 7), dtype=np.int64)
    impulse[2, 3] = 1000
    source = tmp_path / "imp.pgm"
    _write_pgm(source, impulse)
    assert CONVERT is not None
    outputs = {}
    for method in ("Correlate", "Convolve"):
        result = subprocess.run(
            [CONVERT, str(source), "-morphology", method, "2x2: 1,2,3,4", "-depth", "16", "pgm:-"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        outputs[method] = _read_pgm(result.stdout)
    x = impulse.astype(np.float64)
    correlated = convcli.filter(x, "2x2: 1,2,3,4", padding="same", pad_mode="replicate")
    np.testing.assert_array_equal(outputs["Correlate"], correlated)
    convolved = convcli.filter(x, "2x2: 1,2,3,4", padding="same", pad_mode="replicate", convolve=True)
    assert not np.array_equal(outputs["Convolve"], convolved)
    np.testing.assert_array_equal(outputs["Convolve"][1:, 1:], convolved[:-1, :-1])
    assert outputs["Convolve"][2:4, 3:5].tolist() == [[1000, 2000], [3000, 4000]]
