"""Zarr stores in and out of streamed runs (the optional ``convcli[zarr]`` extra).

The reference is the in-memory run on the same samples stored as a TIFF or ``.npy`` (which the rest of
the suite checks against SciPy and naive loops): a Zarr source must give byte for byte the same files,
and a Zarr output must hold the same values. Skipped when zarr is not installed (tests/test_stream.py
checks that the missing package is named with the command that installs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import convcli
from conftest import assert_error

RNG = np.random.default_rng(31)
IMAGE = RNG.integers(0, 256, (53, 41), dtype=np.uint8)


zarr = pytest.importorskip("zarr")


def _store(path: Path, values: np.ndarray, chunks: tuple[int, ...]) -> Path:
    array = zarr.open_array(str(path), mode="w", shape=values.shape, chunks=chunks, dtype=values.dtype)
    array[...] = values
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("zarr-sources")
    rgb = RNG.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    u16 = RNG.integers(0, 65536, (40, 23), dtype=np.uint16)
    floats = RNG.standard_normal((45, 38))
    paths = {
        "gray.tif": folder / "gray.tif",
        "rgb.tif": folder / "rgb.tif",
        "u16.tif": folder / "u16.tif",
        "floats.npy": folder / "floats.npy",
        # Chunk heights that do not divide the image, chunks narrower than it.
        "gray": _store(folder / "gray.zarr", IMAGE, (7, 16)),
        "rgb": _store(folder / "rgb.zarr", rgb, (10, 29, 3)),
        "u16": _store(folder / "u16.zarr", u16, (40, 23)),
        "floats": _store(folder / "floats.zarr", floats, (6, 20)),
    }
    tifffile.imwrite(paths["gray.tif"], IMAGE)
    tifffile.imwrite(paths["rgb.tif"], rgb, photometric="rgb")
    tifffile.imwrite(paths["u16.tif"], u16)
    np.save(paths["floats.npy"], floats)
    return paths


@pytest.mark.parametrize(
    ("store", "twin", "extra"),
    [("gray", "gray.tif", ()), ("rgb", "rgb.tif", ("--color",)), ("u16", "u16.tif", ()), ("floats", "floats.npy", ())],
)
@pytest.mark.parametrize("suffix", [".png", ".npy", ".tif"])
@pytest.mark.parametrize(
    "options",
    [
        ("-k", "gaussian:5", "-p", "same", "--pad-mode", "circular"),
        ("-k", "sobel-y", "-s", "2", "-d", "2", "-p", "3", "--pad-mode", "reflect", "--scale", "abs"),
    ],
)
def test_a_zarr_source_gives_the_in_memory_bytes(cli, tmp_path, stores, store, twin, extra, suffix, options):
    memory, streamed = tmp_path / f"m{suffix}", tmp_path / f"s{suffix}"
    run = cli(["filter", stores[twin], *extra, *options, "-o", memory, "-q", "--no-stream"])
    assert run.exit_code == 0, run
    # No --stream: a Zarr source always streams.
    run = cli(["filter", stores[store], *extra, *options, "-o", streamed, "--strip-rows", "3", "--tile", "0"])
    assert run.exit_code == 0, run
    assert "streamed in strips of 3 rows" in run.stderr and "Zarr" in run.stderr
    assert memory.read_bytes() == streamed.read_bytes()


@pytest.mark.parametrize("tile", [16, 256])
def test_a_zarr_output_holds_the_in_memory_values(cli, tmp_path, stores, tile):
    target = tmp_path / "out.zarr"
    options = ["-k", "gaussian:7", "-p", "same", "--pad-mode", "replicate"]
    for _ in range(2):  # the second run replaces the store the first one wrote
        run = cli(["filter", stores["gray.tif"], *options, "-o", target, "--strip-rows", "5", "--tile", str(tile)])
        assert run.exit_code == 0, run
    expected = convcli.filter(convcli.load(str(stores["gray.tif"])), "gaussian:7", padding="same", pad_mode="replicate")
    written = zarr.open_array(str(target), mode="r")
    assert written.shape == expected.shape and written.dtype == expected.dtype
    assert tuple(written.chunks) == (tile, tile)
    np.testing.assert_array_equal(written[...], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # no hidden .part or .old left


def test_zarr_to_zarr_pooling_and_colour(tmp_path, stores):
    from convcli.run.streamed import pool_file

    pool_file(str(stores["rgb"]), str(tmp_path / "p.zarr"), 3, stride=2, op="max", color=True, strip_rows=2, tile=16)
    expected = convcli.pool(convcli.load(str(stores["rgb.tif"]), color=True), 3, stride=2, op="max")
    written = zarr.open_array(str(tmp_path / "p.zarr"), mode="r")
    assert tuple(written.chunks) == (16, 16, 3)
    np.testing.assert_array_equal(written[...], expected)


def test_zarr_errors(cli, tmp_path, stores):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("level0", shape=(4, 4), dtype="uint8")
    assert_error(cli(["filter", tmp_path / "g.zarr", "-k", "gaussian:3", "-o", tmp_path / "o.png"]), 1, "Zarr group")
    _store(tmp_path / "cube.zarr", np.zeros((2, 3, 4, 5), dtype=np.uint8), (2, 3, 4, 5))
    assert_error(cli(["filter", tmp_path / "cube.zarr", "-k", "gaussian:3", "-o", tmp_path / "o.png"]), 1, "2x3x4x5")
    run = cli(["filter", stores["gray"], "-k", "gaussian:3", "-o", tmp_path / "o.png", "--no-stream"])
    assert_error(run, 2, "drop --no-stream")
    (tmp_path / "plain.zarr").mkdir()  # a folder that is not a Zarr store is never replaced
    assert_error(cli(["filter", stores["gray"], "-k", "gaussian:3", "-o", tmp_path / "plain.zarr"]), 2, "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.zarr", "g.zarr", "plain.zarr"]  # nothing written
    # upsample streams too, so a Zarr output is written (tests/test_upsample_stream_cli.py checks its values)
    run = cli(["upsample", stores["gray.tif"], "-k", "gaussian:3", "-s", "2", "-o", tmp_path / "u.zarr"])
    assert run.exit_code == 0 and "streamed in strips" in run.stderr, run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.zarr", "g.zarr", "plain.zarr", "u.zarr"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_during_a_zarr_write_leaves_nothing(tmp_path, stores):
    # The store is built in a hidden .part folder: Ctrl-C removes it, no partial store is left.
    import os
    import signal
    import subprocess
    import time

    source = tmp_path / "big.tif"
    tifffile.imwrite(source, RNG.integers(0, 256, (1500, 900), dtype=np.uint8), tile=(64, 64))
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "convcli", "filter", str(source), "-k", "gaussian:15", "-p", "same"]
    command += ["--method", "direct", "--precision", "float64", "--strip-rows", "8", "--tile", "64", "-q"]
    src = str(Path(__file__).resolve().parent.parent / "src")  # and zarr from wherever this process found it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen([*command, "-o", str(out / "o.zarr")], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not any(p.name.endswith(".part") for p in out.iterdir()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert list(out.iterdir()) == []
