"""convcli filter and convcli kernels through the command line."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import assert_error, run_cli
from convcli.kernels import parse_kernel_spec
from reference import naive_correlate


def gray_of(path):
    with Image.open(path) as image:
        return np.asarray(image)


def test_classic_example_to_text(samples, tmp_path):
    out = tmp_path / "y.txt"
    run = run_cli(["filter", samples / "x.txt", "-k", "0 1; 2 3", "-o", out])
    assert run.exit_code == 0, run
    assert out.read_text() == "19 25\n37 43\n"
    assert "3x3" in run.stderr and "-> 2x2" in run.stderr and str(out) in run.stderr
    assert run.stdout == ""


def test_classic_example_to_stdout_stays_text(samples):
    run = run_cli(["filter", samples / "x.txt", "-k", samples / "k.txt", "-o", "-"])
    assert run.exit_code == 0, run
    assert run.stdout == "19 25\n37 43\n"


def test_edges_lesson(samples):
    run = run_cli(["filter", samples / "edges.txt", "-k", "diff-x", "-o", "-"])
    assert run.stdout.splitlines() == ["0 1 0 0 0 -1 0"] * 6, run


def test_default_output_name_in_current_folder(samples, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = run_cli(["filter", samples / "chelsea.png", "--kernel", "vertical"])
    assert run.exit_code == 0, run
    written = tmp_path / "chelsea-vertical.png"
    assert written.exists()
    assert gray_of(written).shape == (298, 449)
    assert "300x451" in run.stderr and "298x449" in run.stderr and "chelsea-vertical.png" in run.stderr


def test_png_output_matches_reference_pixels(samples, tmp_path):
    out = tmp_path / "o.png"
    run = run_cli(["filter", samples / "camera.png", "-k", "blur:3", "-o", out])
    assert run.exit_code == 0, run
    image = np.asarray(Image.open(samples / "camera.png"), dtype=np.float64) / 255
    want = np.rint(np.clip(naive_correlate(image[:40, :40], np.full((3, 3), 1 / 9)), 0, 1) * 255)
    assert np.abs(gray_of(out)[:38, :38].astype(int) - want[:38, :38]).max() <= 1


def test_several_kernels_give_one_output_each(samples, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = run_cli(["filter", samples / "x.txt", "-k", "vertical", "-k", "blur:2", "-k", "1 1", "-k", "2 2", "-p", "1"])
    assert run.exit_code == 0, run
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["x-blur-2.txt", "x-custom1.txt", "x-custom2.txt", "x-vertical.txt"]


def test_chain_applies_in_sequence(samples, tmp_path):
    out = tmp_path / "c.npy"
    run = run_cli(["filter", samples / "edges.txt", "-k", "blur:2", "-k", "diff-x", "--chain", "-o", out])
    assert run.exit_code == 0, run
    edges = np.loadtxt(samples / "edges.txt")
    want = naive_correlate(naive_correlate(edges, np.full((2, 2), 0.25)), np.array([[1.0, -1.0]]))
    np.testing.assert_allclose(np.load(out), want)


@pytest.mark.parametrize(
    "options",
    [
        ["-s", "2"],
        ["-s", "2x3", "-p", "1x2"],
        ["-d", "2", "-p", "same"],
        ["-p", "2", "--pad-mode", "reflect"],
        ["-p", "2", "--pad-mode", "mirror"],
        ["-p", "1", "--pad-mode", "constant", "--pad-value", "0.5", "--bias", "-1"],
        ["--convolve"],
    ],
)
def test_options_reach_the_engine(samples, tmp_path, options):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 11))
    np.save(tmp_path / "in.npy", x)
    kernel = "1 2 0; -1 3 0.5"
    run = run_cli(["filter", tmp_path / "in.npy", "-k", kernel, "-o", tmp_path / "out.npy", *options])
    assert run.exit_code == 0, run
    k = parse_kernel_spec(kernel).weights
    stride, padding, dilation, mode, value, bias = (1, 1), ((0, 0), (0, 0)), (1, 1), "zeros", 0.0, 0.0
    if "-s" in options:
        text = options[options.index("-s") + 1]
        stride = tuple(int(v) for v in text.split("x")) if "x" in text else (int(text),) * 2
    if "-d" in options:
        dilation = (2, 2)
    if "-p" in options:
        text = options[options.index("-p") + 1]
        if text == "same":
            padding = ((1, 1), (2, 2))  # span 3x5 with dilation 2
        else:
            h, w = (int(v) for v in text.split("x")) if "x" in text else (int(text),) * 2
            padding = ((h, h), (w, w))
    if "--pad-mode" in options:
        mode = {"mirror": "reflect"}.get(
            options[options.index("--pad-mode") + 1], options[options.index("--pad-mode") + 1]
        )
    if "--pad-value" in options:
        value = 0.5
    if "--bias" in options:
        bias = -1.0
    if "--convolve" in options:
        k = k[::-1, ::-1]
    want = naive_correlate(x, k, stride, padding, dilation, mode, value, bias)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), want, rtol=1e-12)


def test_stdin_pipeline_png(samples):
    first = run_cli(["filter", "-", "-k", "gaussian:7", "-o", "-"], input=(samples / "camera.png").read_bytes())
    assert first.exit_code == 0, first
    assert first.stdout_bytes.startswith(b"\x89PNG")
    second = run_cli(["filter", "-", "-k", "vertical", "-o", "-", "--format", "npy"], input=first.stdout_bytes)
    assert second.exit_code == 0, second
    assert np.load(io.BytesIO(second.stdout_bytes)).shape == (504, 504)


def test_json_report(samples, tmp_path):
    run = run_cli(
        ["filter", samples / "x.txt", "-k", "0 1; 2 3", "-s", "2", "-p", "1", "-o", tmp_path / "y.txt", "--json"]
    )
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert record["input"] == {"height": 3, "width": 3} and record["output"] == {"height": 2, "width": 2}
    assert record["stride"] == [2, 2] and record["padding"] == [[1, 1], [1, 1]]
    assert record["kernels"][0]["shape"] == {"height": 2, "width": 2}
    assert run.stderr == ""


def test_uncovered_rows_are_reported(tmp_path):
    np.save(tmp_path / "five.npy", np.ones((5, 5)))
    run = run_cli(["filter", tmp_path / "five.npy", "-k", "blur:3", "-s", "3", "-o", tmp_path / "o.npy"])
    assert run.exit_code == 0, run
    assert "leaves the last 2 rows and 2 columns of the input unread; --padding 1x1 would reach them" in run.stderr


def test_clipping_is_reported(samples, tmp_path):
    run = run_cli(
        ["filter", samples / "camera.png", "-k", "vertical", "--vmin", "0", "--vmax", "0.01", "-o", tmp_path / "e.png"]
    )
    assert run.exit_code == 0, run
    # Independent count: SciPy's valid correlation of the 8-bit gray pixels / 255 with the vertical kernel
    # (three rows of 1 0 -1). Its sums are multiples of 1/255, so none lies within rounding of 0 or 0.01.
    from scipy.signal import correlate2d

    with Image.open(samples / "camera.png") as image:
        gray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    response = correlate2d(gray, np.array([[1.0, 0.0, -1.0]] * 3), mode="valid")
    steps = np.round(response * 255.0)
    outside = int(np.count_nonzero((steps < 0) | (steps > 0.01 * 255)))
    share = 100.0 * outside / response.size
    assert f"note: {outside} values ({share:.2g}%) fell outside [0, 0.01] and were clipped" in run.stderr, run


def test_color_keeps_rgb(samples, tmp_path):
    run = run_cli(["filter", samples / "coffee.png", "-k", "blur:3", "--color", "-o", tmp_path / "c.png"])
    assert run.exit_code == 0, run
    with Image.open(tmp_path / "c.png") as image:
        assert image.mode == "RGB" and image.size == (598, 398)


def test_depth_16(samples, tmp_path):
    run = run_cli(["filter", samples / "camera.png", "-k", "gaussian:5", "--depth", "16", "-o", tmp_path / "g.png"])
    assert run.exit_code == 0, run
    assert gray_of(tmp_path / "g.png").dtype == np.uint16


def test_url_source(samples, tmp_path, http_server):
    base, routes = http_server
    routes["/duck.jpg"] = (200, "image/png", (samples / "camera.png").read_bytes(), 0)
    run = run_cli(["filter", f"{base}/duck.jpg", "-k", "horizontal", "-o", tmp_path / "edges.png"])
    assert run.exit_code == 0, run
    assert gray_of(tmp_path / "edges.png").shape == (510, 510)


def test_binary_to_terminal_is_refused(samples, monkeypatch):
    monkeypatch.setattr("convcli.cli.streams.stdout_is_terminal", lambda: True)
    run = run_cli(["filter", samples / "camera.png", "-k", "vertical", "-o", "-"])
    assert_error(run, 2, "refusing to write PNG bytes to a terminal")
    text = run_cli(["filter", samples / "x.txt", "-k", "1", "-o", "-"])
    assert text.exit_code == 0 and text.stdout == "0 1 2\n3 4 5\n6 7 8\n"


# --- bad input: message, exit code, no traceback, nothing written --------------------------------


def error_cases(samples, tmp_path, base):
    out = str(tmp_path / "out.png")
    (tmp_path / "notimage.png").write_text("just text")
    data = (samples / "camera.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    (tmp_path / "ragged.txt").write_text("1 2\n3\n")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    (tmp_path / "nan.txt").write_text("1 nan\n")
    (tmp_path / "words.txt").write_text("a b\n")
    cam = str(samples / "camera.png")
    return [
        (["filter", str(tmp_path / "missing.png"), "-k", "vertical", "-o", out], 1, "does not exist"),
        (["filter", str(tmp_path / "notimage.png"), "-k", "vertical", "-o", out], 1, "not an image"),
        (["filter", str(tmp_path / "cut.png"), "-k", "vertical", "-o", out], 1, "damaged or truncated"),
        (["filter", f"{base}/missing.png", "-k", "vertical", "-o", out], 1, "HTTP 404"),
        (["filter", f"{base}/page", "-k", "vertical", "-o", out], 1, "HTML page, not an image"),
        (["filter", f"{base}/slow.png", "-k", "vertical", "-o", out, "--timeout", "0.3"], 1, "no answer within 0.3 s"),
        (["filter", "ftp://example.invalid/x.png", "-k", "vertical", "-o", out], 1, "scheme is not supported"),
        (["filter", "-", "-k", "vertical", "-o", out], 1, "standard input is empty"),
        (
            ["filter", cam, "-k", str(tmp_path / "ragged.txt"), "-o", out],
            2,
            "row 2 (line 2) has 1 values but row 1 (line 1) has 2",
        ),
        (["filter", cam, "-k", str(tmp_path / "empty.txt"), "-o", out], 2, "has no numbers"),
        (["filter", cam, "-k", str(tmp_path / "nan.txt"), "-o", out], 2, "'nan' is not a finite number"),
        (["filter", cam, "-k", str(tmp_path / "words.txt"), "-o", out], 2, "'a' is not a number"),
        (["filter", cam, "-k", "1 2; 3", "-o", out], 2, "row 2 has 1 values"),
        (["filter", cam, "-k", "vertical", "-s", "0", "-o", out], 2, "stride 0x0 must be at least 1"),
        (["filter", cam, "-k", "vertical", "-d", "0", "-o", out], 2, "dilation 0x0 must be at least 1"),
        (["filter", cam, "-k", "vertical", "-p", "-1", "-o", out], 2, "padding -1x-1 must be at least 0"),
        (["filter", cam, "-k", "vertical", "-p", "same", "-s", "2", "-o", out], 2, "'same' needs stride 1"),
        (
            ["filter", str(samples / "x.txt"), "-k", "blur:5", "-o", out],
            2,
            "kernel 5 is larger than the padded input 3",
        ),
        (["filter", cam, "-k", "gausian", "-o", out], 2, "did you mean 'gaussian'"),
        (["filter", cam, "-k", "vertical", "--pad-mode", "mirrored", "-o", out], 2, "unknown pad mode 'mirrored'"),
        (
            ["filter", cam, "-k", "vertical", "-o", str(tmp_path / "no" / "dir" / "o.png")],
            2,
            "does not exist; create it",
        ),
        (["filter", cam, "-k", "vertical", "-o", cam], 2, "never overwrites its input"),
        (["filter", cam, cam, "-k", "vertical", "-o", out], 2, "-o names one output but this run makes 2"),
        (["filter", cam, "-k", "vertical", "-o", str(tmp_path / "o.xyz")], 2, "cannot tell the format"),
        (["filter", cam, "-k", "vertical", "-o", "-", "--json"], 2, "both write to stdout"),
        (["filter", cam], 2, "Missing option '-k'"),
        (["filter", cam, "-k", "vertical", "--bogus"], 2, "no such option '--bogus'"),
        (["filtr", cam], 2, "did you mean 'filter'"),
    ]


def test_every_error_is_one_line_with_the_right_code(samples, tmp_path, http_server):
    base, routes = http_server
    routes["/page"] = (200, "text/html", b"<html>no</html>", 0)
    routes["/slow.png"] = (200, "image/png", b"x", 1.5)
    for args, code, fragment in error_cases(samples, tmp_path, base):
        before = sorted(os.listdir(tmp_path))
        run = run_cli(args)
        assert_error(run, code, fragment)
        assert sorted(os.listdir(tmp_path)) == before, args  # nothing written
        assert not (tmp_path / "out.png").exists()


def test_kernels_catalogue_and_show():
    run = run_cli(["kernels"])
    assert run.exit_code == 0, run
    for name in ("vertical", "horizontal", "gaussian", "blur", "sobel-x", "laplacian", "diff-x", "edge", "outline"):
        assert name in run.stdout
    listing = json.loads(run_cli(["kernels", "--json"]).stdout)
    assert {"name", "size", "description"} <= set(listing["kernels"][0])
    show = run_cli(["kernels", "show", "gaussian:7"])
    assert show.exit_code == 0, show
    rows = show.stdout.strip().splitlines()
    assert len(rows) == 7 and len(rows[0].split()) == 7
    assert "separable yes" in show.stderr and "sum 1" in show.stderr
    shown = json.loads(run_cli(["kernels", "show", "vertical", "--json"]).stdout)
    assert shown["weights"] == [[1, 0, -1]] * 3 and shown["separable"] is True and shown["sum"] == 0
    flipped = json.loads(run_cli(["kernels", "show", "0 1; 2 3", "--flip", "--json"]).stdout)
    assert flipped["weights"] == [[3, 2], [1, 0]]
    assert_error(run_cli(["kernels", "show", "sobelx"]), 2, "did you mean 'sobel-x'")


def test_kernels_show_output_reads_back(tmp_path):
    run = run_cli(["kernels", "show", "gaussian:5"])
    (tmp_path / "g.txt").write_text(run.stdout)
    np.testing.assert_array_equal(
        parse_kernel_spec(str(tmp_path / "g.txt")).weights, parse_kernel_spec("gaussian:5").weights
    )


def test_png_compression_levels_change_size_not_pixels(samples, tmp_path):
    sizes = {}
    pixels = {}
    for level in ("0", "1", "9"):
        out = tmp_path / f"c{level}.png"
        run = run_cli(["filter", samples / "camera.png", "-k", "vertical", "--compression", level, "-o", out])
        assert run.exit_code == 0, run
        sizes[level] = out.stat().st_size
        pixels[level] = gray_of(out)
    assert np.array_equal(pixels["0"], pixels["1"]) and np.array_equal(pixels["1"], pixels["9"])
    assert sizes["0"] > sizes["1"] >= sizes["9"]
    assert_error(run_cli(["filter", samples / "camera.png", "-k", "vertical", "--compression", "10"]), 2, "0<=x<=9")


def test_the_command_line_shares_opencvs_import_among_its_images(tmp_path):
    # Each image's OpenCV plans carry its share of one import (the job's count of images, whatever --jobs is).
    from convcli.engine import opencv_available

    if not opencv_available():
        pytest.skip("needs OpenCV")
    from PIL import Image

    rng = np.random.default_rng(9)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(rng.integers(0, 256, (1200, 1600), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    one = run_cli(["filter", tmp_path / "a.png", "-k", "gaussian:15", "-o", tmp_path / "one.png", "-v"])
    assert one.exit_code == 0, one.output
    assert "40 ms for importing it (this image's share)" in one.stderr
    four = run_cli(
        ["filter", *(tmp_path / f"{n}.png" for n in "abcd"), "-k", "gaussian:15", "--outdir", tmp_path / "o", "-v"]
    )
    assert four.exit_code == 0, four.output
    assert four.stderr.count("10 ms for importing it (this image's share)") == 4
