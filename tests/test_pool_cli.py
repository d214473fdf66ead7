"""``convcli pool`` through click's CliRunner (and one real subprocess)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from convcli.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def run(args, input=None, code=0):
    """Invoke convcli; on an unexpected exit code show stdout and stderr."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, prog_name="convcli")
    assert result.exit_code == code, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    )
    return result


def gray(name):
    return np.asarray(Image.open(SAMPLES / name).convert("L"), dtype=np.int64)


def blocks(array, bh, bw):
    """(H//bh, W//bw, bh*bw) view of non-overlapping blocks: an independent reference for stride = size."""
    h, w = array.shape[0] // bh * bh, array.shape[1] // bw * bw
    return array[:h, :w].reshape(h // bh, bh, w // bw, bw).swapaxes(1, 2).reshape(h // bh, w // bw, bh * bw)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------
# Results


@pytest.mark.parametrize(("op", "reduce"), [("max", np.max), ("min", np.min)])
def test_max_and_min_pool_a_photo_with_default_names(workdir, op, reduce):
    result = run(["pool", SAMPLES / "camera.png", "--op", op, "--size", "2"])
    out = workdir / f"camera-{op}2.png"
    assert sorted(p.name for p in workdir.iterdir()) == [out.name]
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (256, 256)
    # 8-bit values scaled to [0, 1] and back: max/min of the original pixels, exactly
    np.testing.assert_array_equal(pixels, reduce(blocks(gray("camera.png"), 2, 2), axis=2))
    assert (
        f"512x512 (HxW, PNG L 8-bit) -> {op} pool 2x2 (stride 2x2, padding 0x0, dilation 1x1) -> 256x256 -> {out.name}"
        in result.stderr
    )
    assert result.stdout == ""


def test_mean_pool_text_to_stdout():
    result = run(["pool", SAMPLES / "x.txt", "--op", "mean", "--size", "2", "--stride", "1", "-o", "-"])
    # 0..8 in a 3x3 grid: window means (0+1+3+4)/4 = 2, ...
    assert np.loadtxt(io.StringIO(result.stdout)).tolist() == [[2, 3], [5, 6]]
    assert "3x3 (HxW, text matrix) -> mean pool 2x2 (stride 1x1, padding 0x0) -> 2x2 -> stdout" in result.stderr


def test_rectangular_min_pool_from_stdin_to_stdout():
    data = (SAMPLES / "coffee.png").read_bytes()
    result = run(["pool", "-", "--op", "min", "--size", "4x2", "-o", "-"], input=data)
    pixels = np.asarray(Image.open(io.BytesIO(result.stdout_bytes)))
    assert pixels.shape == (100, 300)
    luma = np.asarray(Image.open(SAMPLES / "coffee.png").convert("RGB"), dtype=np.float64) @ [0.299, 0.587, 0.114]
    expected = np.round(np.min(blocks(luma, 4, 2), axis=2))
    assert np.max(np.abs(pixels - expected)) <= 1  # PIL's integer luma vs the float luma: off by one at most
    assert "stdin 400x600 (HxW, PNG RGB 8-bit) -> min pool 4x2 (stride 4x2" in result.stderr


def test_color_keeps_channels(workdir):
    run(["pool", SAMPLES / "chelsea.png", "--size", "3", "--color", "-o", "cat.png"])
    pixels = np.asarray(Image.open(workdir / "cat.png"))
    assert pixels.shape == (100, 150, 3)
    rgb = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("RGB"), dtype=np.int64)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[:, :, channel], blocks(rgb[:, :, channel], 3, 3).max(axis=2))


def test_issue_example_with_npy_matches_torch(workdir):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).normal(size=(9, 11))
    np.save(workdir / "in.npy", x)
    args = ["--op", "mean", "--size", "3", "--stride", "2", "--padding", "1", "--ceil-mode", "--no-count-include-pad"]
    run(["pool", "in.npy", *args, "-o", "out.npy"])
    expected = torch.nn.functional.avg_pool2d(
        torch.from_numpy(x)[None, None], 3, 2, 1, ceil_mode=True, count_include_pad=False
    ).numpy()[0, 0]
    np.testing.assert_allclose(np.load(workdir / "out.npy"), expected, rtol=1e-12)


def test_npy_source_keeps_its_extension_and_dilation(workdir):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).normal(size=(10, 10))
    np.save(workdir / "grid.npy", x)
    run(["pool", "grid.npy", "--op", "max", "--size", "2", "--stride", "1", "--dilation", "3", "--padding", "1"])
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(x)[None, None], 2, 1, 1, 3).numpy()[0, 0]
    np.testing.assert_array_equal(np.load(workdir / "grid-max2.npy"), expected)


def test_json_record(workdir):
    result = run(
        [
            "pool",
            SAMPLES / "edges.txt",
            "--op",
            "mean",
            "--size",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
            "--ceil-mode",
            "--json",
        ]
    )
    record = json.loads(result.stdout)
    assert record["input"] == {"height": 6, "width": 8}
    assert record["output"] == {"height": 4, "width": 5}  # rows ceil((6+2-3)/2)+1 = 4, columns ceil((8+2-3)/2)+1 = 5
    assert record["op"] == "mean" and record["size"] == {"height": 3, "width": 3} and record["stride"] == [2, 2]
    assert record["padding"] == [1, 1] and record["ceil_mode"] is True and record["count_include_pad"] is True
    assert record["path"] == "edges-mean3.txt"
    assert result.stderr == ""
    assert np.loadtxt(workdir / "edges-mean3.txt").shape == (4, 5)


def test_unread_rows_note(workdir):
    result = run(["pool", SAMPLES / "edges.txt", "--size", "4", "-o", "-"])
    # 6 rows: one window of 4 (rows 0-3); 8 columns: two windows, all read
    assert "note: stride 4x4 leaves the last 2 rows of the input unread; --ceil-mode adds windows" in result.stderr


def test_help():
    result = run(["pool", "--help"])
    assert "Pool images (or number grids): max, mean or min over windows" in result.stdout
    assert "convcli pool samples/camera.png --op max --size 2" in result.stdout
    for option in (
        "--op",
        "--size",
        "--stride",
        "--padding",
        "--dilation",
        "--ceil-mode",
        "--count-include-pad",
        "--json",
        "[default: (the size)]",
    ):
        assert option in result.stdout
    assert "pool" in run(["--help"]).stdout


# ---------------------------------------------------------------------------
# Errors: one line, exit code, no traceback, nothing written


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--op", "mean", "--dilation", "2"], 2, "--dilation 2x2 does not apply to --op mean"),
        (["--op", "max", "--no-count-include-pad"], 2, "only apply to --op mean, not max"),
        (["--size", "2", "--padding", "2"], 2, "pooling padding 2 is more than half the kernel size 2"),
        (["--size", "9"], 2, "pooling window 9 is larger than the padded input 6"),
        (["--size", "0"], 2, "pool size 0x0 must be at least 1"),
        (["--size", "2y3"], 2, "pool size '2y3' is not N or HxW"),
        (["--op", "median"], 2, "'median' is not one of 'max', 'mean', 'min'"),
        (["--stride", "0"], 2, "stride 0x0 must be at least 1"),
        (["-o", "-", "--json"], 2, "-o - and --json both write to stdout"),
        (["-o", "missing/out.png"], 2, "output folder 'missing' does not exist"),
        (["-o", "out.xyz"], 2, "cannot tell the format of 'out.xyz' from its extension"),
    ],
)
def test_usage_errors(workdir, args, code, text):
    (workdir / "in.txt").write_text((SAMPLES / "edges.txt").read_text())
    result = run(["pool", "in.txt", *args], code=code)
    assert result.stderr.startswith("convcli pool: error: ")
    assert text in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in workdir.iterdir()) == ["in.txt"]


def test_one_output_for_two_sources_is_refused(workdir):
    result = run(["pool", SAMPLES / "x.txt", SAMPLES / "edges.txt", "-o", "out.txt"], code=2)
    assert "-o names one output but this run has 2 sources" in result.stderr
    assert list(workdir.iterdir()) == []


def test_never_overwrites_the_input(workdir):
    (workdir / "in.txt").write_text("1 2\n3 4\n")
    result = run(["pool", "in.txt", "-o", "in.txt"], code=2)
    assert "convcli never overwrites its input" in result.stderr
    assert (workdir / "in.txt").read_text() == "1 2\n3 4\n"


@pytest.mark.parametrize(
    ("content", "text"),
    [(None, "'nope.png' does not exist"), (b"not an image at all", "nope.png")],
)
def test_unreadable_sources_exit_1(workdir, content, text):
    if content is not None:
        (workdir / "nope.png").write_bytes(content)
    result = run(["pool", "nope.png"], code=1)
    assert result.stderr.startswith("convcli pool: error: ") and text in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == (["nope.png"] if content else [])


def test_subprocess_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcli",
            "pool",
            str(SAMPLES / "x.txt"),
            "--op",
            "max",
            "--size",
            "2",
            "--stride",
            "1",
            "-o",
            "-",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["4", "5", "7", "8"]


def test_command_modules_do_not_import_numpy():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    code = (
        "import sys, convcli.cli.cmd_pool, convcli.cli.cmd_upsample; "
        "print(sorted(m for m in ('numpy', 'scipy', 'PIL') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert completed.stdout.strip() == "[]", completed.stderr
