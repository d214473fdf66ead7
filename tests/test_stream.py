"""Streamed filtering (``--stream``, :func:`convcli.run.stream.filter_file`) against the in-memory result.

The reference is the in-memory path itself (``convcli filter --no-stream``, :func:`convcli.filter`), which
the rest of the suite checks against SciPy and a naive loop: a streamed run must write the same file byte
for byte, over every pad mode, strides, dilations, even and odd kernels, strip heights that do not divide
the image and halos taller than a strip. Images are small; tiny strip heights exercise the halos.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcli
from conftest import assert_error
from convcli.api.arrays import filter_array
from convcli.api.arrays import pool as pool_array_api
from convcli.api.checks import as_kernels
from convcli.api.checks import geometry as make_geometry
from convcli.api.settings import FilterSettings
from convcli.io.png import PngRowWriter, png_bytes
from convcli.io.strips import ArrayRows
from convcli.run.stream import build_steps, plan_stream
from convcli.run.streamed import filter_file

MODES = ["zeros", "constant", "reflect", "symmetric", "replicate", "circular"]
RNG = np.random.default_rng(13)
IMAGE = RNG.integers(0, 256, (61, 47), dtype=np.uint8)
SRC = Path(__file__).resolve().parent.parent / "src"


def _streamed_rows(array: np.ndarray, kernels, settings: FilterSettings, rows: int) -> np.ndarray:
    plan = plan_stream(array.shape[:2], 1, array.dtype, kernels, settings, strip_rows=rows)
    steps = build_steps(ArrayRows(array), plan, settings)
    return np.concatenate([steps.read(a, min(steps.height, a + rows)) for a in range(0, steps.height, rows)])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "padding"),
    [
        ("gaussian:5", 1, 1, "same"),  # separable, odd
        ("0 1; 2 3", 1, 1, "same"),  # even: the extra padding at the bottom/right
        ("3x3: 1,2,3,4,5,6,7,8,9", 2, 1, 3),  # strided, full rank
        ("1 1 1; 1 1 1", (2, 1), (1, 2), (2, 3)),  # a box, strided and dilated
        ("laplacian", 3, 2, 4),  # halo of 5 rows against strips of 1 to 4
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strips_equal_the_in_memory_array(mode, kernel, stride, dilation, padding, dtype):
    image = (IMAGE / 255).astype(dtype)
    settings = FilterSettings(
        make_geometry(stride=stride, dilation=dilation, padding=padding, pad_mode=mode, pad_value=0.25), bias=0.5
    )
    kernels = as_kernels(kernel)
    expected = filter_array(image, kernels, settings).array
    for rows in (1, 4, 7, 1000):  # 4 and 7 do not divide the output; 1000 is more than the image
        np.testing.assert_array_equal(_streamed_rows(image, kernels, settings, rows), expected)


def test_large_random_kernel_fft_and_chain():
    # A 15x15 random kernel (FFT or OpenCV's DFT) and a chain of two steps, each with its own halo.
    image = (RNG.random((150, 90))).astype(np.float32)
    for kernel in ([RNG.random((15, 15))], ["gaussian:7", "laplacian"]):
        for mode in ("reflect", "circular"):
            settings = FilterSettings(make_geometry(padding="same", pad_mode=mode))
            kernels = as_kernels(kernel)
            expected = filter_array(image, kernels, settings).array
            np.testing.assert_array_equal(_streamed_rows(image, kernels, settings, 9), expected)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(3, 40),
    width=st.integers(3, 30),
    kh=st.integers(1, 6),
    kw=st.integers(1, 6),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pad=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    mode=st.sampled_from(MODES),
    rows=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["random", "box", "rank-1"]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_hypothesis_geometry(height, width, kh, kw, stride, dilation, pad, mode, rows, seed, kind, dtype):
    rng = np.random.default_rng(seed)
    image = rng.random((height, width)).astype(dtype)
    weights = {
        "random": lambda: rng.standard_normal((kh, kw)),
        "box": lambda: np.full((kh, kw), 1 / (kh * kw)),
        "rank-1": lambda: np.outer(rng.random(kh), rng.random(kw)),
    }[kind]()
    if (height + 2 * pad[0] - dilation[0] * (kh - 1) - 1) < 0 or (width + 2 * pad[1] - dilation[1] * (kw - 1) - 1) < 0:
        return
    settings = FilterSettings(
        make_geometry(stride=stride, dilation=dilation, padding=pad, pad_mode=mode, pad_value=0.7), bias=0.25
    )
    kernels = as_kernels(weights)
    expected = filter_array(image, kernels, settings).array
    np.testing.assert_array_equal(_streamed_rows(image, kernels, settings, rows), expected)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    height=st.integers(20, 90),
    width=st.integers(10, 60),
    kh=st.integers(2, 9),
    kw=st.integers(1, 9),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    band=st.sampled_from([1 << 9, 1 << 11, 1 << 13]),
    rows=st.integers(1, 40),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_hypothesis_fft_row_tiles(monkeypatch, height, width, kh, kw, stride, dilation, band, rows, mode, seed, dtype):
    # NumPy's FFT with short row tiles (a small band stands for a wide image): the streamed run computes whole
    # row tiles of the whole image's tiling, so any strip height gives the in-memory numbers bit for bit.
    import convcli.engine.fft as fft

    monkeypatch.setattr(fft, "BAND_ELEMENTS", band)
    rng = np.random.default_rng(seed)
    image = rng.random((height, width)).astype(dtype)
    if height + 2 * 3 < dilation[0] * (kh - 1) + 1 or width + 2 * 3 < dilation[1] * (kw - 1) + 1:
        return
    settings = FilterSettings(
        make_geometry(stride=stride, dilation=dilation, padding=3, pad_mode=mode, pad_value=0.5), method="fft"
    )
    kernels = as_kernels(rng.standard_normal((kh, kw)))
    expected = filter_array(image, kernels, settings).array
    np.testing.assert_array_equal(_streamed_rows(image, kernels, settings, rows), expected)


def test_fft_row_tiles_shorten_as_the_image_widens():
    # The row transform is capped at BAND_ELEMENTS over the padded width (never below twice the kernel), so a
    # streamed run's unit of whole row tiles holds about the same elements at any width; the columns are not.
    from convcli.engine.fft import BAND_ELEMENTS, fast_floor, fast_length, tiling
    from convcli.shapes import conv_geometry

    lengths = {}
    for width in (1000, 3600, 16000, 40000, 100000):
        g = conv_geometry((50000, width), (15, 15), padding=7)
        ((tile_h, length_h, tile_w, length_w),) = tiling(g, {}).tiles.values()
        assert length_h <= max(fast_floor(BAND_ELEMENTS // g.padded[1]), fast_length(30)) and tile_h == length_h - 14
        lengths[width] = length_h
    assert lengths[1000] == lengths[3600] == 1152 > lengths[16000] > lengths[40000] > lengths[100000] >= 30
    assert lengths[40000] * 40014 <= BAND_ELEMENTS


@pytest.mark.parametrize("rows", [7, 333])
@pytest.mark.parametrize(
    ("method", "shape"),
    [("direct", (15, 15)), ("separable", (31, 31)), ("fft", (15, 15))],
)
def test_blas_and_fft_plans_stream_bit_for_bit(tmp_path, method, shape, rows):
    # The BLAS variants (a 15x15 direct, a 31x31 rank-1 separable: banded products over strips of 64 rows,
    # whose last bits follow the strip height) compute whole banded strips; strip heights 7 and 333 are not
    # multiples of 64. Before, 1e-14-sized differences in about 2,000 (333) to 100,000 (7) of the 1.8 M values.
    source = tmp_path / "a.npy"
    np.save(source, RNG.random((2600, 700)))
    kernel = RNG.random(shape) if method != "separable" else np.outer(RNG.random(shape[0]), RNG.random(shape[1]))
    expected = convcli.filter(np.load(source), kernel, method=method, padding="same")
    filter_file(str(source), str(tmp_path / "s.npy"), kernel, method=method, padding="same", strip_rows=rows)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), expected)


# ---------------------------------------------------------------------------
# Files: the bytes the in-memory run writes


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stream-sources")
    paths = {
        "tiled": folder / "tiled.tif",
        "striped": folder / "striped.tif",
        "plain": folder / "plain.tif",
        "npy": folder / "array.npy",
        "png": folder / "image.png",
        "rgb": folder / "rgb.tif",
        "u16": folder / "u16.tif",
    }
    tifffile.imwrite(paths["tiled"], IMAGE, tile=(16, 16), compression="zlib")
    tifffile.imwrite(paths["striped"], IMAGE, rowsperstrip=5, compression="zlib")
    tifffile.imwrite(paths["plain"], IMAGE)
    tifffile.imwrite(paths["rgb"], RNG.integers(0, 256, (33, 29, 3), dtype=np.uint8), photometric="rgb", tile=(16, 16))
    tifffile.imwrite(paths["u16"], RNG.integers(0, 65536, (40, 21), dtype=np.uint16), rowsperstrip=3)
    np.save(paths["npy"], RNG.standard_normal((45, 38)))
    paths["png"].write_bytes(png_bytes(IMAGE))
    return paths


def _both(cli, tmp_path: Path, source: Path, suffix: str, *options: str) -> tuple[bytes, bytes]:
    memory = tmp_path / f"memory{suffix}"
    streamed = tmp_path / f"streamed{suffix}"
    run = cli(["filter", source, *options, "-o", memory, "-q", "--no-stream"])
    assert run.exit_code == 0, run
    strips = ("--tile", "0") if suffix == ".tif" else ()  # TIFF in strips: the in-memory layout, byte for byte
    run = cli(["filter", source, *options, "-o", streamed, "-q", "--stream", "--strip-rows", "3", *strips])
    assert run.exit_code == 0, run
    return memory.read_bytes(), streamed.read_bytes()


@pytest.mark.parametrize("source", ["tiled", "striped", "plain", "npy", "png", "u16"])
@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy"])
@pytest.mark.parametrize(
    "options",
    [
        ("-k", "gaussian:7", "-p", "same", "--pad-mode", "reflect"),
        ("-k", "sobel-x", "-s", "2", "-d", "2", "-p", "3", "--pad-mode", "circular", "--scale", "abs"),
        ("-k", "0 1; 2 3", "-p", "same", "--pad-mode", "symmetric", "--scale", "minmax", "--depth", "16"),
    ],
)
def test_files_are_byte_identical(cli, tmp_path, sources, source, suffix, options):
    if suffix != ".png" and "--depth" in options:
        options = options[: options.index("--depth")]
    memory, streamed = _both(cli, tmp_path, sources[source], suffix, *options)
    assert memory == streamed


@pytest.mark.parametrize(
    "options",
    [
        ("--color", "-k", "gaussian:5", "-p", "same", "--pad-mode", "replicate"),
        ("--normalize", "max", "-k", "emboss", "--vmin", "-0.5", "--vmax", "0.5"),
        ("--chain", "-k", "gaussian:5", "-k", "laplacian", "--pad-mode", "constant", "--pad-value", "0.5", "-p", "2"),
    ],
)
def test_color_normalize_and_chains(cli, tmp_path, sources, options):
    source = sources["rgb"] if "--color" in options else sources["tiled"]
    for suffix in (".png", ".tif"):
        memory, streamed = _both(cli, tmp_path, source, suffix, *options)
        assert memory == streamed


def test_python_api_filter_file(tmp_path, sources):
    done = filter_file(str(sources["striped"]), str(tmp_path / "out.npy"), "gaussian:9", padding="same", strip_rows=2)
    expected = convcli.filter(convcli.load(str(sources["striped"])), "gaussian:9", padding="same")
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert done.shape == expected.shape and done.passes == 1
    assert done.estimate.total > 0


def test_png_row_writer_is_png_bytes():
    pixels = RNG.integers(0, 65536, (300, 211, 3), dtype=np.uint16)
    chunks: list[bytes] = []
    writer = PngRowWriter(chunks.append, pixels.shape, pixels.dtype, parts=3)
    for start in range(0, 300, 7):
        writer.write(pixels[start : start + 7])
    writer.close()
    assert b"".join(chunks) == png_bytes(pixels, parts=3)


def test_auto_streams_what_memory_refuses(cli, tmp_path):
    # 90 MiB is below the in-memory estimate of a 2000x2000 run (about 110 MiB) but above the streamed one:
    # the run streams instead of being refused, and writes the same bytes.
    source = tmp_path / "big.tif"
    tifffile.imwrite(source, RNG.integers(0, 256, (2000, 2000), dtype=np.uint8), tile=(256, 256), compression="zlib")
    memory, streamed = tmp_path / "m.png", tmp_path / "s.png"
    assert cli(["filter", source, "-k", "gaussian:5", "-o", memory, "-q"]).exit_code == 0
    run = cli(["filter", source, "-k", "gaussian:5", "-o", streamed, "--max-memory", "90"])
    assert run.exit_code == 0, run
    assert "streamed in strips" in run.stderr
    assert memory.read_bytes() == streamed.read_bytes()
    refused = cli(["filter", source, "-k", "gaussian:5", "-o", tmp_path / "n.png", "--max-memory", "90", "--no-stream"])
    assert_error(refused, 1, "needs about", "--max-memory", "drop --no-stream")  # a streamed run would fit
    refused = cli(["pool", source, "-s", "1", "-o", tmp_path / "n.png", "--max-memory", "90", "--no-stream"])
    assert_error(refused, 1, "needs about", "drop --no-stream")
    # Below the interpreter's own footprint nothing fits, streamed or not: one line, exit 1, no file.
    tiny = cli(["filter", source, "-k", "gaussian:5", "-o", tmp_path / "t.png", "--max-memory", "1"])
    assert_error(tiny, 1, "even streamed, needs about")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif", "m.png", "s.png"]


def test_stream_errors(cli, tmp_path, sources):
    assert_error(
        cli(["filter", sources["tiled"], "-k", "gaussian:5", "-o", tmp_path / "x.jpg", "--stream"]),
        2,
        "streamed run writes",
    )
    assert_error(cli(["filter", sources["tiled"], "-k", "gaussian:5", "-o", "-", "--stream"]), 2, "stdout")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


# ---------------------------------------------------------------------------
# Interrupted streamed writes


def _start_streamed(source: Path, target: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convcli",
            "filter",
            str(source),
            "-k",
            "gaussian:15",
            "-p",
            "same",
            "--pad-mode",
            "reflect",
            "--method",
            "direct",
            "--precision",
            "float64",
            "--stream",
            "--strip-rows",
            "8",
            "-o",
            str(target),
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "big.tif"
    tifffile.imwrite(path, RNG.integers(0, 256, (1500, 900), dtype=np.uint8), tile=(64, 64))
    return path


def _wait_for_part(folder: Path, process: subprocess.Popen, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not any(p.name.endswith(".part") for p in folder.iterdir()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_during_a_streamed_write_leaves_nothing(tmp_path, slow_source):
    process = _start_streamed(slow_source, tmp_path / "out.png")
    _wait_for_part(tmp_path, process)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkill_during_a_streamed_write_leaves_only_a_hidden_part(tmp_path, slow_source):
    process = _start_streamed(slow_source, tmp_path / "out.png")
    _wait_for_part(tmp_path, process)
    process.kill()
    process.communicate(timeout=60)
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and names[0].startswith(".out.png.") and names[0].endswith(".part"), names
    assert not (tmp_path / "out.png").exists()


# ---------------------------------------------------------------------------
# Pooling


@pytest.mark.parametrize(
    "options",
    [
        ("--op", "max", "--size", "2"),
        ("--op", "min", "--size", "3", "-s", "2", "-p", "1", "-d", "2", "--ceil-mode"),
        ("--op", "mean", "--size", "3x2", "-s", "2x1", "-p", "1", "--ceil-mode", "--no-count-include-pad"),
        ("--op", "mean", "--size", "5", "-s", "3", "-p", "2"),
    ],
)
@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy"])
@pytest.mark.parametrize("source", ["tiled", "npy", "rgb"])
def test_pool_files_are_byte_identical(cli, tmp_path, sources, options, suffix, source):
    extra = ("--color",) if source == "rgb" else ()
    memory, streamed = tmp_path / f"m{suffix}", tmp_path / f"s{suffix}"
    run = cli(["pool", sources[source], *options, *extra, "-o", memory, "-q", "--no-stream"])
    assert run.exit_code == 0, run
    extra += ("--tile", "0") if suffix == ".tif" else ()
    run = cli(["pool", sources[source], *options, *extra, "-o", streamed, "--stream", "--strip-rows", "2"])
    assert run.exit_code == 0, run
    assert "streamed in strips of 2 rows" in run.stderr
    assert memory.read_bytes() == streamed.read_bytes()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(2, 30),
    width=st.integers(2, 20),
    size=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    op=st.sampled_from(["max", "min", "mean"]),
    ceil_mode=st.booleans(),
    include=st.booleans(),
    rows=st.integers(1, 5),
)
def test_hypothesis_pooling(height, width, size, stride, padding, dilation, op, ceil_mode, include, rows):
    from convcli.api.checks import pool_settings
    from convcli.errors import ConvcliError
    from convcli.run.stream import PooledRows

    image = np.random.default_rng(height * width).random((height, width))
    if op == "mean":
        dilation = (1, 1)
    try:
        record = pool_settings(
            size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            op=op,
            ceil_mode=ceil_mode,
            count_include_pad=include,
        )
        expected = pool_array_api(
            image,
            size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            op=op,
            ceil_mode=ceil_mode,
            count_include_pad=include,
        )
    except ConvcliError:
        return
    steps = PooledRows(ArrayRows(image), record, np.float64)
    out = np.concatenate([steps.read(a, min(steps.height, a + rows)) for a in range(0, steps.height, rows)])
    np.testing.assert_array_equal(out, expected)


def test_python_api_pool_file(tmp_path, sources):
    from convcli.run.streamed import pool_file

    done = pool_file(str(sources["npy"]), str(tmp_path / "p.npy"), 3, stride=2, padding=1, op="mean", strip_rows=1)
    expected = pool_array_api(np.load(sources["npy"]), 3, stride=2, padding=1, op="mean")
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)
    assert done.shape == expected.shape


def test_streamed_json_record_and_report(cli, tmp_path, sources):
    import json

    run = cli(["filter", sources["tiled"], "-k", "gaussian:5", "-o", tmp_path / "o.tif", "--stream", "--json"])
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert (
        record["input"] == {"height": 61, "width": 47}
        and record["output"] == {"height": 57, "width": 43}
        and record["format"] == "tiff"
    )
    assert record["streamed"]["passes"] == 1 and record["streamed"]["estimate"] > 0
    assert run.stderr == ""


def test_free_space_is_checked_before_starting(tmp_path, sources, monkeypatch):
    import shutil as shutil_module

    from convcli.limits import LimitError

    usage = shutil_module.disk_usage(tmp_path)
    monkeypatch.setattr("convcli.run.streamed.shutil.disk_usage", lambda _path: usage._replace(free=100))
    with pytest.raises(LimitError, match="only 100 B is free"):
        filter_file(str(sources["tiled"]), str(tmp_path / "o.tif"), "gaussian:5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name", ["rgb.png", "gray16.png", "rgb16.png", "photo.jpg", "palette.gif", "rgba.webp", "bw.bmp"]
)
@pytest.mark.parametrize("options", [(), ("--gray", "mean"), ("--color",), ("--normalize", "max")])
def test_images_decoded_whole_keep_their_stored_pixels_and_the_numbers(cli, tmp_path, name, options):
    # PNG, JPEG, GIF, WebP, BMP: the stored pixels are kept (not a float copy), converted strip by strip.
    from PIL import Image

    from convcli.io.strips import open_rows

    rng = np.random.default_rng(3)
    path = tmp_path / name
    rgb = rng.integers(0, 256, (37, 23, 3), dtype=np.uint8)
    if name == "gray16.png":
        Image.fromarray(rng.integers(0, 65536, (37, 23), dtype=np.uint16)).save(path)
    elif name == "rgb16.png":
        import png

        png.from_array(rng.integers(0, 65536, (37, 23 * 3), dtype=np.uint16).tolist(), "RGB;16").save(str(path))
    elif name == "palette.gif":
        Image.fromarray(rgb).convert("P").save(path)
    elif name == "rgba.webp":
        Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])).save(path, lossless=True)
    elif name == "bw.bmp":
        Image.fromarray(rgb[:, :, 0] > 128).save(path)
    else:
        Image.fromarray(rgb).save(path)
    with open_rows(str(path)) as reader:
        assert not isinstance(reader, ArrayRows)  # not the float array of a whole decode
        assert reader.held_bytes in (37 * 23 * n * b for n in (1, 3, 4) for b in (1, 2))  # the stored samples
    memory, streamed = tmp_path / "m.npy", tmp_path / "s.npy"
    assert cli(["filter", path, *options, "-k", "gaussian:3", "-o", memory, "-q", "--no-stream"]).exit_code == 0
    run = cli(["filter", path, *options, "-k", "gaussian:3", "-o", streamed, "-q", "--stream", "--strip-rows", "4"])
    assert run.exit_code == 0, run
    assert memory.read_bytes() == streamed.read_bytes()


@pytest.mark.parametrize("level", [0, 1, 9])
@pytest.mark.parametrize(("shape", "dtype"), [((65535, 1), np.uint8), ((131, 250), np.uint8), ((40, 33, 4), np.uint16)])
@pytest.mark.parametrize("parts", [1, 3])
def test_png_row_writer_matches_at_every_level(level, shape, dtype, parts):
    # zlib's stored blocks (level 0) follow its input calls, so convcli writes level 0 itself: the same either way.
    import zlib

    pixels = RNG.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    chunks: list[bytes] = []
    writer = PngRowWriter(chunks.append, pixels.shape, pixels.dtype, compression=level, parts=parts)
    for start in range(0, shape[0], 11):
        writer.write(pixels[start : start + 11])
    writer.close()
    whole = png_bytes(pixels, compression=level, parts=parts)
    assert b"".join(chunks) == whole
    from PIL import Image

    with Image.open(io.BytesIO(whole)) as image:
        decoded = np.asarray(image)
    if dtype == np.uint8:
        np.testing.assert_array_equal(decoded.reshape(shape), pixels)
    assert zlib.crc32(whole) == zlib.crc32(b"".join(chunks))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")
def test_progress_bar_on_a_terminal_only(tmp_path, slow_source):
    import pty

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [
        sys.executable,
        "-m",
        "convcli",
        "filter",
        str(slow_source),
        "-k",
        "gaussian:5",
        "--stream",
        "--strip-rows",
        "16",
        "--scale",
        "minmax",
    ]
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [*command, "-o", str(tmp_path / "tty.png")], env=env, stdout=subprocess.DEVNULL, stderr=secondary
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
    process.wait(timeout=60)
    os.close(main)
    assert process.returncode == 0
    assert b"\r[" in shown and b"/2992" in shown  # rows done of both passes (1496 output rows, minmax: two)
    piped = subprocess.run([*command, "-o", str(tmp_path / "pipe.png")], env=env, capture_output=True, check=True)
    assert b"\r" not in piped.stderr and b"streamed in strips" in piped.stderr


def test_a_png_too_big_for_memory_streams_only_when_its_pixels_fit(cli, tmp_path):
    # A PNG is decoded whole: refused by the memory estimate, it streams when its stored pixels and a
    # streamed run fit the budget (3000x3000: 9 MB of pixels, about 180 MiB in memory, 140 allowed) ...
    import struct
    import zlib

    from PIL import Image

    source = tmp_path / "big.png"
    Image.fromarray(RNG.integers(0, 256, (3000, 3000), dtype=np.uint8)).save(source, compress_level=1)
    memory, streamed = tmp_path / "m.png", tmp_path / "s.png"
    assert cli(["filter", source, "-k", "gaussian:5", "-o", memory, "-q"]).exit_code == 0
    run = cli(["filter", source, "-k", "gaussian:5", "-o", streamed, "--max-memory", "140"])
    assert run.exit_code == 0, run
    assert "streamed in strips" in run.stderr
    assert memory.read_bytes() == streamed.read_bytes()
    # ... and never when they do not: a header claiming 100000x100000 is refused before any decoding.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + b"\0\0\0\0IEND\xaeB`\x82")
    refused = cli(
        ["filter", bomb, "-k", "gaussian:5", "-o", tmp_path / "b.png", "--max-pixels", "0", "--max-memory", "140"]
    )
    assert_error(refused, 1, "needs about", "GiB of memory")
    assert not (tmp_path / "b.png").exists()


# ---------------------------------------------------------------------------
# Bounded by the budget, not by the width


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reads=st.lists(st.tuples(st.integers(0, 99), st.integers(1, 70)), min_size=1, max_size=12),
    layout=st.sampled_from(["tiled", "striped", "rgb"]),
)
def test_tiff_window_reads_any_rows_in_any_order(reads, layout):
    # Reads going on, jumping back (circular borders), spanning several bands or taller than one: tifffile's rows.
    from convcli.io.strips import TiffRows

    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    path = folder / f"window-{os.getpid()}-{layout}.tif"
    image = np.random.default_rng(7).integers(0, 256, (100, 37, 3) if layout == "rgb" else (100, 37), dtype=np.uint8)
    layout_options = {"rowsperstrip": 9} if layout == "striped" else {"tile": (16, 16)}
    tifffile.imwrite(path, image, compression="zlib", photometric="rgb" if layout == "rgb" else None, **layout_options)
    try:
        with TiffRows(str(path), color=layout == "rgb") as reader:
            for start, count in reads:
                stop = min(100, start + count)
                np.testing.assert_array_equal(reader.read(start, stop), image[start:stop].astype(np.float32) / 255)
    finally:
        path.unlink()


@pytest.mark.parametrize("kernel", ["gaussian:3", "gaussian:15", "random"])
def test_strip_height_shrinks_as_the_image_widens(kernel):
    # The working set the estimate counts (a tiled TIFF's band of segments included) stays within STRIP_BYTES
    # from 1,000 to 40,000 pixels wide: the strips get shorter, the peak does not grow with the width. At
    # 100,000 the band alone (25.6 MB) leaves too little: the strips are the shortest, 8 rows.
    from convcli.limits import RUNTIME_BYTES
    from convcli.run.stream import STRIP_BYTES

    kernels = as_kernels(RNG.random((15, 15)) if kernel == "random" else kernel)
    settings = FilterSettings(make_geometry(padding="same", pad_mode="replicate"))
    heights, fft_work = [], []
    for width in (1000, 16000, 40000, 100000):
        band = 256 * width  # an 8-bit image tiled 256x256
        plan = plan_stream((50000, width), 1, np.float32, kernels, settings, held=band)
        if plan.plans[0].method == "fft" and plan.plans[0].backend == "numpy":
            # NumPy's FFT (no OpenCV) computes whole row tiles, at least one: a band of about BAND_ELEMENTS at
            # any width (engine.fft), above STRIP_BYTES but not growing with the width.
            work = plan.estimate.total - RUNTIME_BYTES - band
            assert work <= 2 * STRIP_BYTES, (width, plan.estimate.parts)
            fft_work.append(work)
            continue
        assert plan.estimate.total - RUNTIME_BYTES <= STRIP_BYTES or (width == 100000 and plan.unit_rows == 8)
        heights.append(plan.unit_rows)
    if fft_work:
        assert not heights and max(fft_work) <= 1.25 * fft_work[0], fft_work  # no growth with the width
        return
    assert heights == sorted(heights, reverse=True) and heights[0] > heights[-1]
    # Under a budget, the strips shrink further (and the estimate with them).
    small = plan_stream((50000, 16000), 1, np.float32, kernels, settings, budget=80 << 20, held=256 * 16000)
    assert small.unit_rows < heights[1] and small.estimate.total <= 80 << 20


# ---------------------------------------------------------------------------
# Tiled TIFF output


@pytest.mark.parametrize("tile", [16, 32, 256])
@pytest.mark.parametrize("source", ["tiled", "rgb", "npy"])
def test_streamed_tiff_is_tiled_with_the_in_memory_numbers(cli, tmp_path, sources, tile, source):
    import shutil

    extra = ["--color"] if source == "rgb" else []
    options = [*extra, "-k", "gaussian:5", "-p", "same", "--pad-mode", "reflect"]
    memory, streamed = tmp_path / "m.tif", tmp_path / "s.tif"
    assert cli(["filter", sources[source], *options, "-o", memory, "-q", "--no-stream"]).exit_code == 0
    run = cli(
        ["filter", sources[source], *options, "-o", streamed, "-q", "--stream", "--strip-rows", "5"]
        + ["--tile", str(tile)]
    )
    assert run.exit_code == 0, run
    expected = tifffile.imread(memory)
    with tifffile.TiffFile(streamed) as written:
        page = written.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (tile, tile)
        assert not written.is_bigtiff and page.dtype == np.float32
        np.testing.assert_array_equal(page.asarray(), expected)
    vips = shutil.which("vips")
    if vips is None:
        pytest.skip("vips is not installed")
    subprocess.run([vips, "copy", str(streamed), str(tmp_path / "v.v")], check=True, capture_output=True)
    subprocess.run([vips, "copy", str(tmp_path / "v.v"), str(tmp_path / "v.tif")], check=True, capture_output=True)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "v.tif"), expected)  # vips decoded the same floats


def test_tiled_pooling_and_bigtiff(tmp_path, sources, monkeypatch):
    from convcli.run.streamed import pool_file

    pool_file(str(sources["tiled"]), str(tmp_path / "p.tif"), 3, stride=2, op="mean", strip_rows=3, tile=16)
    with tifffile.TiffFile(tmp_path / "p.tif") as written:
        assert written.pages[0].is_tiled
        np.testing.assert_array_equal(
            written.pages[0].asarray(), convcli.pool(convcli.load(str(sources["tiled"])), 3, stride=2, op="mean")
        )
    # Above tifffile's 4 GiB switch (lowered here), BigTIFF, as tifffile.imwrite would write it.
    monkeypatch.setattr("convcli.io.rowwriters._BIGTIFF_BYTES", 1000)
    filter_file(str(sources["tiled"]), str(tmp_path / "b.tif"), "gaussian:3", tile=32)
    with tifffile.TiffFile(tmp_path / "b.tif") as written:
        assert written.is_bigtiff and written.pages[0].is_tiled
        np.testing.assert_array_equal(
            written.pages[0].asarray(), convcli.filter(convcli.load(str(sources["tiled"])), "gaussian:3")
        )


def test_tile_must_be_a_multiple_of_16(cli, tmp_path, sources):
    from convcli.errors import ParameterError

    run = cli(["filter", sources["tiled"], "-k", "gaussian:3", "-o", tmp_path / "o.tif", "--stream", "--tile", "100"])
    assert_error(run, 2, "--tile", "multiple of 16")
    with pytest.raises(ParameterError, match="tile 8 is not a positive multiple of 16"):
        filter_file(str(sources["tiled"]), str(tmp_path / "o.tif"), "gaussian:3", tile=8)
    assert list(tmp_path.iterdir()) == []


def test_a_zarr_source_without_zarr_names_the_extra(cli, tmp_path, monkeypatch):
    store = tmp_path / "x.zarr"
    store.mkdir()
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if it were not installed
    run = cli(["filter", store, "-k", "gaussian:3", "-o", tmp_path / "o.png"])
    assert_error(run, 1, "need the zarr package", "pip install 'convcli[zarr]'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr"]


# ---------------------------------------------------------------------------
# Upsampling (transposed convolution) by strips


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(1, 25),
    width=st.integers(1, 12),
    kh=st.integers(1, 5),
    kw=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 4), st.integers(0, 3)),
    extra=st.tuples(st.integers(0, 3), st.integers(0, 2)),
    rows=st.integers(1, 9),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_upsampling(height, width, kh, kw, stride, dilation, padding, extra, rows, dtype, seed):
    # Output rows from a window of input rows (gaps where the stride outruns the kernel included), bit for bit.
    from convcli.api.arrays import upsample_array
    from convcli.api.checks import upsample_settings
    from convcli.errors import ConvcliError
    from convcli.kernels import Kernel
    from convcli.run.stream_upsample import UpsampledRows

    rng = np.random.default_rng(seed)
    image = rng.standard_normal((height, width)).astype(dtype)
    kernel = Kernel("k", rng.standard_normal((kh, kw)))
    output_padding = (extra[0] % max(stride[0], dilation[0]), extra[1] % max(stride[1], dilation[1]))
    try:
        record = upsample_settings(
            stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, bias=0.5
        )
        expected, geometry = upsample_array(image, kernel, record)
    except ConvcliError:
        return
    steps = UpsampledRows(ArrayRows(image), kernel, geometry, record.bias, dtype)
    out = np.concatenate([steps.read(a, min(steps.height, a + rows)) for a in range(0, steps.height, rows)])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("source", ["tiled", "npy", "rgb"])
@pytest.mark.parametrize("suffix", [".png", ".npy", ".tif"])
@pytest.mark.parametrize(
    "options",
    [
        {"kernel": "bilinear", "stride": 2, "padding": 1},
        {"kernel": "0 1 2; 3 4 5", "stride": 3, "dilation": 2, "output_padding": 1, "bias": 0.25},
    ],
)
def test_upsample_file_is_the_in_memory_file(tmp_path, sources, source, suffix, options):
    from convcli.run.stream_upsample import upsample_file

    color = source == "rgb"
    options = dict(options)
    kernel = options.pop("kernel")
    loaded = convcli.load(str(sources[source]), color=color)
    expected = convcli.upsample(loaded, kernel, **options)
    memory = tmp_path / f"m{suffix}"
    convcli.save(expected, str(memory))
    streamed = tmp_path / f"s{suffix}"
    done = upsample_file(str(sources[source]), str(streamed), kernel, color=color, strip_rows=4, tile=None, **options)
    assert done.shape == expected.shape
    assert memory.read_bytes() == streamed.read_bytes()


@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f4"])
def test_npy_rows_are_read_by_offset_not_mapped(cli, tmp_path, dtype):
    # A memory map's pages stay resident (the whole file counted by the end): rows are read into one buffer.
    from convcli.io.strips import NpyFileRows, open_rows

    values = RNG.standard_normal((23, 17)).astype(dtype)
    np.save(tmp_path / "a.npy", values)
    with open_rows(str(tmp_path / "a.npy")) as reader:
        assert isinstance(reader, NpyFileRows) and reader.held_bytes == 0
        for start, stop in [(0, 23), (5, 9), (20, 23), (0, 1), (3, 17)]:
            np.testing.assert_array_equal(reader.read(start, stop), values[start:stop])
    memory, streamed = tmp_path / "m.npy", tmp_path / "s.npy"
    assert cli(["filter", tmp_path / "a.npy", "-k", "gaussian:3", "-o", memory, "--no-stream"]).exit_code == 0
    run = cli(["filter", tmp_path / "a.npy", "-k", "gaussian:3", "-o", streamed, "--stream", "--strip-rows", "4"])
    assert run.exit_code == 0, run
    assert memory.read_bytes() == streamed.read_bytes()


def test_a_numpy_fft_plan_streams_within_the_budget_and_a_dilated_one_names_direct(tmp_path):
    # float64 work never goes through OpenCV: a large full-rank kernel is NumPy's FFT, whose row tiles are
    # short on a wide image, so it streams within a budget, bit for bit. Dilated down the rows, its output
    # classes interleave the rows: one block; the refusal says so and names --method direct.
    from convcli.limits import MemoryLimitError

    source = tmp_path / "wide.npy"
    np.save(source, RNG.random((1200, 6000)))
    kernel = RNG.random((15, 15))
    done = filter_file(str(source), str(tmp_path / "fft.npy"), kernel, method="fft", max_memory=256 << 20)
    assert done.estimate.total <= 256 << 20 and done.plan.unit_rows < 1200
    np.testing.assert_array_equal(np.load(tmp_path / "fft.npy"), convcli.filter(np.load(source), kernel, method="fft"))
    with pytest.raises(MemoryLimitError) as refused:
        filter_file(str(source), str(tmp_path / "d.npy"), kernel, method="fft", dilation=(2, 1), max_memory=150 << 20)
    message = str(refused.value)
    assert "\n" not in message and "dilation down the rows" in message and "--method direct" in message
    assert not (tmp_path / "d.npy").exists()
    done = filter_file(str(source), str(tmp_path / "direct.npy"), kernel, method="direct", max_memory=150 << 20)
    assert done.estimate.total <= 150 << 20
    expected = convcli.filter(np.load(source), kernel, method="direct")
    np.testing.assert_array_equal(np.load(tmp_path / "direct.npy"), expected)


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize(
    ("shape", "dtype", "layout"),
    [
        ((301, 77), np.uint8, {}),
        ((130, 64, 3), np.uint16, {"rowsperstrip": 7}),
        ((96, 48), np.float32, {"tile": (16, 48)}),
    ],
)
def test_uncompressed_contiguous_tiffs_are_read_by_offset(tmp_path, shape, dtype, layout, byteorder):
    # tifffile (2025 on) says is_contiguous with a bool and the data at dataoffsets[0]: such files (what convcli and
    # most tools write uncompressed, full-width tiles included) are read row by row from the file, nothing held.
    from convcli.io.strips import TiffRows, open_rows

    values = (RNG.random(shape) * (255 if dtype == np.uint8 else 60000)).astype(dtype)
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, values, byteorder=byteorder, photometric="rgb" if len(shape) == 3 else None, **layout)
    with open_rows(str(path), normalize="none", color=len(shape) == 3) as reader:
        assert isinstance(reader, TiffRows) and reader._contiguous is not None and reader.held_bytes == 0
        for start, stop in [(0, shape[0]), (5, 9), (shape[0] - 3, shape[0]), (17, 60)]:
            np.testing.assert_array_equal(reader.read(start, stop), values[start:stop].astype(np.float32))


@pytest.mark.parametrize("kernel", ["bilinear", "nearest", "bilinear:3", "0 1; 2 3"])
def test_upsample_file_chooses_the_padding_as_upsample_does(tmp_path, kernel):
    # No padding given: a named upsampling kernel gets the padding that makes exactly stride times the size, as
    # convcli.upsample does (upsample_file defaulted to 0, PyTorch's 2n + 2, against its docstring); 0 when asked.
    from convcli.run.stream_upsample import upsample_file

    values = RNG.random((7, 9))
    np.save(tmp_path / "x.npy", values)
    upsample_file(str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), kernel, stride=2, strip_rows=3)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), convcli.upsample(values, kernel, stride=2))
    upsample_file(str(tmp_path / "x.npy"), str(tmp_path / "z.npy"), kernel, stride=2, padding=0, strip_rows=3)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), convcli.upsample(values, kernel, stride=2, padding=0))
