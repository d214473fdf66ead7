"""``convcli upsample`` through click's CliRunner."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from convcli.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
X = np.arange(9.0).reshape(3, 3)  # samples/x.txt
K = np.array([[0.0, 1.0], [2.0, 3.0]])  # samples/k.txt


def run(args, input=None, code=0):
    """Invoke convcli; on an unexpected exit code show stdout and stderr."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, prog_name="convcli")
    assert result.exit_code == code, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    )
    return result


def grid(text):
    return np.loadtxt(io.StringIO(text), ndmin=2)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------
# Results


def test_stride_equal_to_the_kernel_is_a_kronecker_product():
    result = run(["upsample", SAMPLES / "x.txt", "-k", SAMPLES / "k.txt", "--stride", "2", "-o", "-"])
    np.testing.assert_array_equal(grid(result.stdout), np.kron(X, K))
    assert (
        "3x3 (HxW, text matrix) -> transposed k 2x2 (stride 2x2, padding 0x0, output padding 0x0, dilation 1x1) -> 6x6 -> stdout"
        in result.stderr
    )


def test_bilinear_doubles_a_photo(workdir):
    result = run(["upsample", SAMPLES / "camera.png", "-k", "bilinear", "--stride", "2", "--padding", "1"])
    out = workdir / "camera-up2.png"
    assert sorted(p.name for p in workdir.iterdir()) == [out.name]
    pixels = np.asarray(Image.open(out), dtype=np.int64)
    assert pixels.shape == (1024, 1024)
    # away from the border, output pixel (2i, 2j) is 9/16, 3/16, 3/16, 1/16 of its four nearest input pixels
    src = np.asarray(Image.open(SAMPLES / "camera.png"), dtype=np.float64)
    i, j = 100, 200
    expected = (9 * src[i, j] + 3 * src[i - 1, j] + 3 * src[i, j - 1] + src[i - 1, j - 1]) / 16
    assert abs(pixels[2 * i, 2 * j] - expected) <= 0.5 + 1e-9
    assert "512x512 (HxW, PNG L 8-bit) -> transposed bilinear-2 4x4 (stride 2x2, padding 1x1" in result.stderr
    assert "-> 1024x1024 -> camera-up2.png" in result.stderr


def test_bare_kernel_name_takes_the_factor_from_the_stride(workdir):
    record = json.loads(run(["upsample", SAMPLES / "x.txt", "-k", "bilinear", "--stride", "3", "--json"]).stdout)
    assert record["kernel"] == {"spec": "bilinear:3", "name": "bilinear-3", "shape": {"height": 5, "width": 5}}
    # No --padding with a named kernel: padding 1 is chosen, exactly 3 times the size (issue 18).
    assert record["output"] == {"height": 3 * 3, "width": 3 * 3}
    assert record["padding"] == [1, 1] and record["padding_chosen"]
    record = json.loads(
        run(["upsample", SAMPLES / "x.txt", "-k", "bilinear", "--stride", "3", "--padding", "0", "--json"]).stdout
    )
    assert record["output"] == {"height": (3 - 1) * 3 + 4 + 1, "width": (3 - 1) * 3 + 4 + 1}
    assert not record["padding_chosen"]
    record = json.loads(run(["upsample", SAMPLES / "x.txt", "-k", "nearest", "--stride", "2x3", "--json"]).stdout)
    assert record["kernel"]["shape"] == {"height": 2, "width": 3}
    np.testing.assert_array_equal(np.loadtxt(workdir / "x-up2x3.txt"), np.repeat(np.repeat(X, 2, 0), 3, 1))
    # an explicit factor is kept whatever the stride
    record = json.loads(run(["upsample", SAMPLES / "x.txt", "-k", "bilinear:2", "--stride", "3", "--json"]).stdout)
    assert record["kernel"]["shape"] == {"height": 4, "width": 4}


def test_nearest_with_bias_on_npy(workdir):
    x = np.random.default_rng(2).normal(size=(4, 5))
    np.save(workdir / "small.npy", x)
    run(["upsample", "small.npy", "-k", "nearest:3", "--stride", "3", "--bias", "0.5"])
    np.testing.assert_allclose(np.load(workdir / "small-up3.npy"), np.kron(x, np.ones((3, 3))) + 0.5)


def test_issue_example_matches_torch(workdir):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).normal(size=(5, 7))
    w = np.random.default_rng(4).normal(size=(3, 2))
    np.save(workdir / "in.npy", x)
    np.save(workdir / "k.npy", w)
    run(
        [
            "upsample",
            "in.npy",
            "-k",
            "k.npy",
            "--stride",
            "2",
            "--padding",
            "1",
            "--output-padding",
            "1",
            "--dilation",
            "2",
            "-o",
            "out.npy",
        ]
    )
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x)[None, None],
        torch.from_numpy(w)[None, None],
        stride=2,
        padding=1,
        output_padding=1,
        dilation=2,
    ).numpy()[0, 0]
    np.testing.assert_allclose(np.load(workdir / "out.npy"), expected, rtol=1e-12, atol=1e-12)


def test_output_size_sets_the_output_padding(workdir):
    result = run(
        [
            "upsample",
            SAMPLES / "x.txt",
            "-k",
            "bilinear",
            "--stride",
            "2",
            "--padding",
            "1",
            "--output-size",
            "7x6",
            "--json",
        ]
    )
    record = json.loads(result.stdout)
    # (3-1)*2 - 2*1 + (4-1) + 1 = 6: one extra row reaches 7
    assert record["output"] == {"height": 7, "width": 6}
    assert record["output_padding"] == [1, 0]
    assert np.loadtxt(workdir / "x-up2.txt").shape == (7, 6)


def test_color_upsampling(workdir):
    run(["upsample", SAMPLES / "chelsea.png", "-k", "nearest", "--stride", "2", "--color", "-o", "big.png"])
    pixels = np.asarray(Image.open(workdir / "big.png"))
    rgb = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("RGB"))
    np.testing.assert_array_equal(pixels, np.repeat(np.repeat(rgb, 2, 0), 2, 1))


def test_stdin_to_stdout():
    data = (SAMPLES / "x.txt").read_bytes()
    result = run(["upsample", "-", "-k", "1", "--stride", "2", "-o", "-"], input=data)
    expected = np.zeros((5, 5))
    expected[::2, ::2] = X
    np.testing.assert_array_equal(grid(result.stdout), expected)
    assert result.stderr.startswith("stdin 3x3 (HxW, text matrix) -> transposed")


def test_help():
    result = run(["upsample", "--help"])
    assert "Upsample images (or number grids) by transposed convolution" in result.stdout
    assert "convcli upsample samples/camera.png -k bilinear --stride 2" in result.stdout
    for option in (
        "--kernel",
        "--stride",
        "--padding",
        "--output-padding",
        "--dilation",
        "--output-size",
        "--bias",
        "--json",
        "from --stride",
    ):
        assert option in result.stdout
    assert "upsample" in run(["--help"]).stdout


# ---------------------------------------------------------------------------
# Errors: one line, exit code, no traceback, nothing written


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (
            ["-k", "bilinear", "--padding", "0", "--output-size", "7x6"],
            2,
            "output size 7x6 cannot be reached from 3x3 with kernel 4x4, stride 2x2, padding 0x0, dilation 1x1: "
            "reachable heights 8..9, widths 8..9",
        ),
        (
            ["-k", "bilinear", "--output-size", "8x8", "--output-padding", "1"],
            2,
            "--output-size sets the output padding itself; drop --output-padding",
        ),
        (
            ["-k", "blur:2", "--output-padding", "2"],
            2,
            "output padding 2 must be smaller than the stride (2) or the dilation (1)",
        ),
        (["-k", "blur:2", "--padding", "5"], 2, "gives output size -4; reduce the padding"),
        (["-k", "bilinear:0"], 2, "bilinear factor '0' is out of range; use 1 to 256"),
        (["-k", "bilinearr"], 2, "unknown kernel 'bilinearr'"),
        (["-k", "nope.npy"], 2, "kernel file 'nope.npy' does not exist"),
        (["-k", "1", "--stride", "0"], 2, "stride 0x0 must be at least 1"),
        (["-k", "1", "--output-size", "0x3"], 2, "output size 0x3 must be at least 1"),
        (["-k", "1", "-o", "-", "--json"], 2, "-o - and --json both write to stdout"),
        (["-k", "1", "-o", "missing/out.png"], 2, "output folder 'missing' does not exist"),
        ([], 2, "Missing option '-k' / '--kernel'"),
    ],
)
def test_usage_errors(workdir, args, code, text):
    (workdir / "in.txt").write_text((SAMPLES / "x.txt").read_text())
    result = run(["upsample", "in.txt", *args], code=code)
    assert result.stderr.startswith("convcli upsample: error: ")
    assert text in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in workdir.iterdir()) == ["in.txt"]


def test_one_output_for_two_sources_is_refused(workdir):
    result = run(["upsample", SAMPLES / "x.txt", SAMPLES / "edges.txt", "-k", "nearest", "-o", "out.txt"], code=2)
    assert "-o names one output but this run has 2 sources" in result.stderr
    assert list(workdir.iterdir()) == []


def test_missing_source_exits_1(workdir):
    result = run(["upsample", "nope.png", "-k", "nearest"], code=1)
    assert result.stderr == "convcli upsample: error: 'nope.png' does not exist; check the path\n"
    assert list(workdir.iterdir()) == []
