"""``convcli upsample --stream`` through the CLI against the in-memory run of the same command.

The reference is ``convcli upsample --no-stream`` (which tests/test_upsample_cli.py checks against
PyTorch's conv_transpose2d and hand-computed cases): a streamed run must write the same file byte for
byte (PNG 8 and 16 bit, .npy, a TIFF in strips) or the same values (a tiled TIFF), with strip heights
that do not divide the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import assert_error

RNG = np.random.default_rng(29)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("upsample-stream")
    paths = {
        "png8": folder / "gray.png",
        "png16": folder / "gray16.png",
        "rgb": folder / "rgb.png",
        "npy": folder / "array.npy",
        "tiff": folder / "tiled.tif",
        "kernel": folder / "k.txt",
    }
    Image.fromarray(RNG.integers(0, 256, (23, 17), dtype=np.uint8)).save(paths["png8"])
    Image.fromarray(RNG.integers(0, 65536, (19, 14), dtype=np.uint16)).save(paths["png16"])
    Image.fromarray(RNG.integers(0, 256, (13, 11, 3), dtype=np.uint8)).save(paths["rgb"])
    np.save(paths["npy"], RNG.standard_normal((21, 16)))
    tifffile.imwrite(paths["tiff"], RNG.integers(0, 256, (37, 29), dtype=np.uint8), tile=(16, 16))
    np.savetxt(paths["kernel"], RNG.standard_normal((3, 2)))
    return paths


def _kernel_options(name: str, sources: dict[str, Path]) -> list[str]:
    if name == "bilinear":  # named kernel, no --padding: the chosen padding (exactly 2x the size)
        return ["-k", "bilinear", "--stride", "2"]
    if name == "nearest":
        return ["-k", "nearest:3", "--stride", "3"]
    # A file kernel with every geometry option explicit (output padding below the stride and the dilation).
    return [
        "-k",
        str(sources["kernel"]),
        "--stride",
        "3x2",
        "--padding",
        "1,2,0,1",
        "--output-padding",
        "1",
        "--dilation",
        "2",
        "--bias",
        "0.25",
    ]


OUTPUTS = {
    "png8": (".png", []),
    "png16": (".png", ["--depth", "16"]),
    "npy": (".npy", []),
    "tiff-strips": (".tif", ["--tile", "0"]),
}


@pytest.mark.parametrize("kernel", ["bilinear", "nearest", "file"])
@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("source", ["png8", "png16", "rgb", "npy", "tiff"])
def test_streamed_file_is_the_in_memory_file(cli, tmp_path, sources, kernel, output, source):
    suffix, extra = OUTPUTS[output]
    options = _kernel_options(kernel, sources) + (["--color"] if source == "rgb" else [])
    memory, streamed = tmp_path / f"m{suffix}", tmp_path / f"s{suffix}"
    in_memory = cli(["upsample", sources[source], *options, *extra, "-o", memory, "--no-stream"])
    assert in_memory.exit_code == 0, in_memory
    run = cli(["upsample", sources[source], *options, *extra, "-o", streamed, "--stream", "--strip-rows", "3"])
    assert run.exit_code == 0, run
    assert "note: streamed in strips of 3 rows" in run.stderr
    assert memory.read_bytes() == streamed.read_bytes()
    # The report is the in-memory one (shapes, geometry, the chosen-padding note) plus the streamed note.
    # (The input's description may say more: a TIFF read by rows names its tiles.)
    lines = [line for line in run.stderr.splitlines() if not line.startswith("note: streamed")]
    expected = [line.replace(str(memory), str(streamed)) for line in in_memory.stderr.splitlines()]
    assert lines[0].split(" -> ", 1)[1] == expected[0].split(" -> ", 1)[1]
    assert lines[1:] == expected[1:]
    chosen = [line for line in lines if "with no --padding" in line]
    assert len(chosen) == (1 if kernel == "bilinear" else 0), run


def test_named_kernel_streamed_is_exactly_twice_the_size(cli, tmp_path, sources):
    out = tmp_path / "up.npy"
    run = cli(["upsample", sources["npy"], "-k", "bilinear", "-o", out, "--stream", "--strip-rows", "5"])
    assert run.exit_code == 0, run
    assert np.load(out).shape == (42, 32)
    assert "padding 1x1 chosen, making exactly 2 times the input size" in run.stderr


def test_tiled_tiff_holds_the_in_memory_values(cli, tmp_path, sources):
    memory, streamed = tmp_path / "m.tif", tmp_path / "s.tif"
    options = ["-k", "bilinear", "--stride", "2"]
    assert cli(["upsample", sources["tiff"], *options, "-o", memory, "--no-stream", "-q"]).exit_code == 0
    run = cli(["upsample", sources["tiff"], *options, "-o", streamed, "--stream", "--tile", "16", "--strip-rows", "7"])
    assert run.exit_code == 0, run
    with tifffile.TiffFile(streamed) as tif:
        assert tif.pages[0].is_tiled and tif.pages[0].tilewidth == 16
    expected = tifffile.imread(memory)
    assert expected.shape == (74, 58)
    np.testing.assert_array_equal(tifffile.imread(streamed), expected)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    # 800x800 -> 1600x1600: the in-memory estimate (about 92 MiB) is above 80 MiB, the streamed one below.
    path = tmp_path_factory.mktemp("upsample-big") / "big.npy"
    np.save(path, RNG.standard_normal((800, 800)))
    return path


def test_no_stream_under_a_small_budget_is_refused(cli, tmp_path, big):
    out = tmp_path / "n.npy"
    refused = cli(["upsample", big, "-k", "bilinear", "-o", out, "--max-memory", "80", "--no-stream"])
    assert_error(refused, 1, "needs about", "--max-memory", "--stream")
    assert not out.exists()


def test_auto_streams_what_memory_refuses(cli, tmp_path, big):
    memory, streamed = tmp_path / "m.npy", tmp_path / "s.npy"
    assert cli(["upsample", big, "-k", "bilinear", "-o", memory, "-q"]).exit_code == 0
    run = cli(["upsample", big, "-k", "bilinear", "-o", streamed, "--max-memory", "80"])
    assert run.exit_code == 0, run
    assert "note: streamed in strips of" in run.stderr
    assert memory.read_bytes() == streamed.read_bytes()


def test_streamed_errors(cli, tmp_path, sources):
    jpeg = cli(["upsample", sources["png8"], "-k", "bilinear", "-o", tmp_path / "x.jpg", "--stream"])
    assert_error(jpeg, 2, "streamed run writes", "--no-stream")
    assert_error(cli(["upsample", sources["png8"], "-k", "bilinear", "-o", "-", "--stream"]), 2, "stdout")
    figure = cli(
        [
            "upsample",
            sources["png8"],
            "-k",
            "bilinear",
            "-o",
            tmp_path / "f.png",
            "--stream",
            "--figure",
            tmp_path / "f.svg",
        ]
    )
    assert_error(figure, 2, "--figure", "--no-stream")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_zarr_output_streams(cli, tmp_path, sources):
    zarr = pytest.importorskip("zarr")
    memory, store = tmp_path / "m.npy", tmp_path / "s.zarr"
    options = ["-k", "bilinear", "--stride", "2"]
    assert cli(["upsample", sources["npy"], *options, "-o", memory, "-q"]).exit_code == 0
    run = cli(["upsample", sources["npy"], *options, "-o", store, "--tile", "16"])
    assert run.exit_code == 0, run
    assert "note: streamed in strips" in run.stderr
    np.testing.assert_array_equal(zarr.open(str(store), mode="r")[...], np.load(memory))
    refused = cli(["upsample", sources["npy"], *options, "-o", tmp_path / "n.zarr", "--no-stream"])
    assert_error(refused, 2, "Zarr", "drop --no-stream")


def test_the_json_record_of_a_streamed_run_says_how_it_streamed(cli, tmp_path, sources):
    # strip height, passes (two: --scale auto needs the range first) and the estimate; no "split" on one machine.
    out = tmp_path / "s.png"
    run = cli(["upsample", sources["png8"], "-k", "bilinear", "-o", out, "--stream", "--strip-rows", "5", "--json"])
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert record["output"] == {"height": 46, "width": 34} and record["path"] == str(out)
    streamed = record["streamed"]
    assert set(streamed) == {"strip_rows", "passes", "estimate"}
    assert streamed["strip_rows"] == 5 and streamed["passes"] == 2 and streamed["estimate"] > 0
