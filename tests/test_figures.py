"""Figures: each PNG is opened with Pillow and checked for its size and that it is not blank."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SAMPLES, assert_error, run_cli

pytest.importorskip("matplotlib")

from convcli.teach import figures  # noqa: E402


def picture(path: Path) -> np.ndarray:
    assert path.read_bytes().startswith(b"\x89PNG"), path
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.float64)


def assert_not_blank(pixels: np.ndarray, threshold: float = 20.0) -> None:
    assert pixels.std() > threshold, f"figure looks blank (pixel std {pixels.std():.1f})"


def reddish(pixels: np.ndarray) -> int:
    """Pixels clearly red (the highlighted field, positive values in RdBu_r)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return int(np.count_nonzero((r > 150) & (r - g > 60) & (r - b > 60)))


def test_comparison_figure_direct(tmp_path):
    image = np.zeros((20, 30))
    image[:, 10:20] = 1.0
    out = tmp_path / "fig.png"
    row = figures.Row(np.array([[1.0, -1.0]]), "kernel diff-x 1x2", image[:, :-1] - image[:, 1:], "output 20x29")
    figures.comparison_figure(out, image, [row], input_title="input 20x30", title="test", dpi=50)
    pixels = picture(out)
    assert pixels.shape[1] == 11 * 50 and pixels.shape[0] == pytest.approx((3.3 + 0.4) * 50, abs=1)
    assert_not_blank(pixels)
    assert reddish(pixels) > 0  # the signed output and the kernel use the diverging map
    two = tmp_path / "two.png"
    figures.comparison_figure(two, image, [row, row], input_title="input", dpi=50)
    assert picture(two).shape[0] == pytest.approx(2 * 3.3 * 50, abs=1)


def test_filter_figure_has_one_row_per_kernel(samples, tmp_path):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    run = run_cli(["filter", samples / "chelsea.png", "-k", "vertical", "-o", tmp_path / "v.png", "--figure", one])
    assert run.exit_code == 0, run
    assert f"figure -> {one}" in run.stderr
    run = run_cli(
        [
            "filter",
            samples / "chelsea.png",
            "-k",
            "vertical",
            "-k",
            "horizontal",
            "--figure",
            two,
            "--json",
            "--outdir",
            tmp_path,
        ]
    )
    assert run.exit_code == 0, run
    assert all(f'"figure": "{two}"' in line for line in run.stdout.splitlines())
    first, second = picture(one), picture(two)
    assert_not_blank(first)
    assert_not_blank(second)
    assert first.shape[1] == second.shape[1] == 1100
    assert second.shape[0] > 1.8 * first.shape[0]


def test_cmap_and_vmin_vmax_change_the_output_panel(samples, tmp_path):
    base = ["filter", samples / "camera.png", "-k", "gaussian:3", "-o", tmp_path / "o.png"]
    paths = {name: tmp_path / f"{name}.png" for name in ("gray", "viridis", "narrow")}
    assert run_cli([*base, "--figure", paths["gray"]]).exit_code == 0
    assert run_cli([*base, "--figure", paths["viridis"], "--cmap", "viridis"]).exit_code == 0
    assert run_cli([*base, "--figure", paths["narrow"], "--vmin", "0.4", "--vmax", "0.6"]).exit_code == 0
    gray, viridis, narrow = (picture(p) for p in paths.values())
    right = slice(gray.shape[1] * 2 // 3, None)  # the output panel
    gray_panel = gray[:, right]
    # gray map: every pixel of the panel is gray (r == g == b); viridis is coloured
    assert np.abs(gray_panel[..., 0] - gray_panel[..., 2]).max() < 30
    assert np.abs(viridis[:, right, 0] - viridis[:, right, 2]).max() > 100
    assert np.abs(narrow[:, right] - gray_panel).mean() > 5


def test_pool_upsample_and_kernel_figures(samples, tmp_path):
    pool = tmp_path / "pool.png"
    run = run_cli(["pool", samples / "camera.png", "--size", "4", "-o", tmp_path / "p.png", "--figure", pool])
    assert run.exit_code == 0, run
    up = tmp_path / "up.png"
    run = run_cli(["upsample", samples / "x.txt", "-k", "bilinear", "-o", tmp_path / "u.txt", "--figure", up])
    assert run.exit_code == 0, run
    kernel = tmp_path / "kernel.png"
    run = run_cli(["kernels", "show", "sobel-x", "--figure", kernel])
    assert run.exit_code == 0, run
    assert run.stdout.split() == ["-1", "0", "1", "-2", "0", "2", "-1", "0", "1"]
    for path in (pool, up, kernel):
        assert_not_blank(picture(path))
    side = 0.55 * 3 + 1.5  # inches for a 3x3 kernel (plus 1 inch for the colour bar), 100 dpi
    assert picture(kernel).shape[:2] == (round(100 * side), round(100 * (side + 1)))
    big = tmp_path / "big.png"
    assert run_cli(["kernels", "show", "gaussian:15", "--figure", big]).exit_code == 0
    assert picture(big).shape[0] > 300


def test_receptive_field_figure(tmp_path):
    inside, padded = tmp_path / "inside.png", tmp_path / "padded.png"
    figures.receptive_field_figure(inside, (8, 8), range(2, 5), range(3, 6), (2, 3), "3x3 kernel")
    figures.receptive_field_figure(padded, (8, 8), range(-1, 2), range(-1, 2), (0, 0))
    small = tmp_path / "one.png"
    figures.receptive_field_figure(small, (8, 8), [4], [4], (4, 4))
    for path in (inside, padded, small):
        assert_not_blank(picture(path), threshold=10)
    # 9 highlighted cells show more red than 1
    assert reddish(picture(inside)) > 4 * reddish(picture(small)) > 0
    dilated = tmp_path / "dilated.png"
    figures.receptive_field_figure(dilated, (100, 100), range(10, 60, 2), range(0, 100), (5, 5), "big input")
    assert_not_blank(picture(dilated), threshold=10)
    with pytest.raises(ValueError):
        figures.receptive_field_figure(tmp_path / "e.png", (4, 4), [], [1], (0, 0))


def test_figure_errors(samples, tmp_path, monkeypatch):
    cam = str(samples / "camera.png")
    out = str(tmp_path / "o.png")
    assert_error(run_cli(["filter", cam, "-k", "1", "-o", out, "--figure", tmp_path / "f.jpg"]), 2, "written as .png")
    assert_error(run_cli(["kernels", "show", "1", "--figure", "-"]), 2, "written as .png")
    assert_error(run_cli(["filter", cam, "-k", "1", "-o", out, "--figure", tmp_path / "no" / "f.png"]), 2, "create it")
    assert_error(run_cli(["filter", cam, "-k", "1", "-o", out, "--figure", out]), 2, "two outputs would both")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    run = run_cli(["filter", cam, "-k", "1", "-o", out, "--figure", tmp_path / "f.png"])
    assert_error(run, 1, "--figure needs matplotlib", "pip install 'convcli[plot]'")
    assert not os.path.exists(out)  # refused before any work
    assert_error(run_cli(["kernels", "show", "1", "--figure", tmp_path / "k.png"]), 1, "needs matplotlib")


@pytest.mark.parametrize(
    "args",
    [["--help"], ["filter", str(SAMPLES / "x.txt"), "-k", "1", "-o", "-"], ["pool", str(SAMPLES / "x.txt"), "-o", "-"]],
)
def test_plain_runs_do_not_import_matplotlib(args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "convcli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "matplotlib" not in imported
    assert "numpy" in imported or args == ["--help"]  # the check sees imports at all


def test_shape_figure_marks_the_receptive_field(tmp_path):
    # Output pixel 3 of conv:k=3,s=2 reads layer-1 positions 6..8, which read input rows/columns 5..9:
    # a 5x5 red block, 25 cells of the 16x16 grid; pixel 0 after one unpadded 3x3 reads 3x3 = 9 cells.
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    run = run_cli(["shape", "--input", "16", "conv:k=3,p=1", "conv:k=3,s=2", "--figure", big, "--pixel", "3x3"])
    assert run.exit_code == 0, run
    assert "figure ->" in run.stderr
    assert run_cli(["shape", "--input", "16", "--kernel", "3", "--figure", small]).exit_code == 0
    big_pixels, small_pixels = picture(big), picture(small)
    assert_not_blank(big_pixels)
    assert reddish(big_pixels) > 2 * reddish(small_pixels) > 0
    assert_error(
        run_cli(["shape", "--input", "16", "--kernel", "3", "--figure", tmp_path / "f.png", "--pixel", "14"]),
        2,
        "--pixel 14x14 is outside the 14x14 output",
    )
    assert not (tmp_path / "f.png").exists()
