"""One image split across the workers of a real Dask LocalCluster (2 processes on 127.0.0.1, started and stopped here).

The references are independent of the split: the in-memory result (``convcli.save(convcli.filter(
convcli.load(src), ...))``, checked elsewhere against SciPy and a naive loop) and the single-machine streamed
file (:func:`convcli.run.streamed.filter_file` without a scheduler). A split file must equal both, byte for
byte. Images are small and strips tiny (``strip_rows``), so every run has many tasks and halos that cross them.
"""

from __future__ import annotations

import functools
import json
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
from PIL import Image

import convcli
from conftest import assert_error, run_cli
from convcli.api.checks import as_kernels, upsample_settings
from convcli.api.checks import geometry as make_geometry
from convcli.api.settings import FilterSettings, ReadSettings, WriteSettings
from convcli.api.upsampling import upsampling_kernel
from convcli.io.strips import ArrayRows, open_rows
from convcli.run.cluster_split import Split, split_filter, split_upsample
from convcli.run.cluster_spread import needed_runs, shared_path, task_ranges
from convcli.run.stream import build_steps, plan_stream
from convcli.run.stream_upsample import upsample_file, upsampled_rows
from convcli.run.streamed import filter_file, pool_file

distributed = pytest.importorskip("distributed")

MODES = ["zeros", "constant", "reflect", "symmetric", "replicate", "circular"]
RNG = np.random.default_rng(21)
SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture(scope="module")
def client():
    """A client of a LocalCluster of two worker processes on 127.0.0.1; both closed (no process left) after.

    The workers run the engine on one thread while this process uses its default (the CPU count): split
    results must not depend on the workers' own setting.
    """
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
        env={"CONVCLI_THREADS": "1"},
    )
    dask_client = distributed.Client(cluster, timeout=30)
    try:
        yield dask_client
    finally:
        dask_client.close()
        cluster.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same 8-bit picture as a tiled TIFF, a striped TIFF, a PNG (decoded whole: rows sent) and floats in .npy."""
    folder = tmp_path_factory.mktemp("split-sources")
    pixels = RNG.integers(0, 256, (67, 45), dtype=np.uint8)
    tifffile.imwrite(folder / "tiled.tif", pixels, tile=(16, 16), compression="zlib")
    tifffile.imwrite(folder / "striped.tif", pixels, rowsperstrip=5)
    Image.fromarray(pixels).save(folder / "gray.png")
    Image.fromarray(RNG.integers(0, 256, (40, 33, 3), dtype=np.uint8)).save(folder / "color.png")
    Image.fromarray(RNG.integers(0, 65536, (41, 29), dtype=np.uint16)).save(folder / "deep.png")  # 16-bit gray
    np.save(folder / "floats.npy", RNG.standard_normal((53, 38)))
    return folder


#: The in-memory operation and its streamed file form (``scheduler=``: split across the workers).
OPERATIONS = {"filter": (convcli.filter, filter_file), "upsample": (convcli.upsample, upsample_file)}
READ_OPTIONS, WRITE_OPTIONS = ("color", "normalize"), ("scale", "vmin", "vmax", "depth")


def computed(source: Path, kernel, operation: str = "filter", **options) -> np.ndarray:
    """The reference values: load and compute in memory."""
    read = {k: options.pop(k) for k in READ_OPTIONS if k in options}
    for k in WRITE_OPTIONS:
        options.pop(k, None)
    return OPERATIONS[operation][0](convcli.load(str(source), **read), kernel, **options)


def in_memory(source: Path, destination: Path, kernel, operation: str = "filter", **options) -> bytes:
    """The reference file: load, compute, save, all in memory."""
    write = {k: options[k] for k in WRITE_OPTIONS if k in options}
    convcli.save(computed(source, kernel, operation, **options), str(destination), **write)
    return destination.read_bytes()


def split_equals_references(
    client, source: Path, folder: Path, ext: str, kernel, operation: str = "filter", **options
) -> Split:
    """The split file against the in-memory file and the single-machine streamed one, byte for byte."""
    run_file = OPERATIONS[operation][1]
    memory = in_memory(source, folder / f"memory.{ext}", kernel, operation, **options)
    # A streamed TIFF is tiled by default; in strips (tile=None) it is the in-memory file byte for byte.
    run_file(str(source), str(folder / f"stream.{ext}"), kernel, strip_rows=3, tile=None, **options)
    done = run_file(
        str(source), str(folder / f"split.{ext}"), kernel, strip_rows=3, scheduler=client, tile=None, **options
    )
    assert isinstance(done, Split) and done.tasks > 2 and done.workers == 2, done
    assert (folder / f"stream.{ext}").read_bytes() == memory, "the single-machine streamed file differs"
    assert (folder / f"split.{ext}").read_bytes() == memory, (source.name, ext, kernel, options)
    if ext in ("tif", "tiff"):  # and in tiles, the split writes the single-machine streamed file
        run_file(str(source), str(folder / f"stream-tiled.{ext}"), kernel, strip_rows=3, tile=16, **options)
        run_file(
            str(source), str(folder / f"split-tiled.{ext}"), kernel, strip_rows=3, scheduler=client, tile=16, **options
        )
        tiled = (folder / f"split-tiled.{ext}").read_bytes()
        assert tiled == (folder / f"stream-tiled.{ext}").read_bytes(), (source.name, kernel, options)
        with tifffile.TiffFile(folder / f"split-tiled.{ext}") as tiff:
            assert tiff.pages[0].is_tiled
    return done


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "padding"),
    [
        ("gaussian:5", 1, 1, "same"),  # separable, odd
        ("0 1; 2 3", 1, 1, "same"),  # even: the extra row of padding at the bottom
        ("3x3: 1,2,3,4,5,6,7,8,9", 2, 1, 3),  # strided
        ("1 1 1; 1 1 1", (2, 1), (1, 2), (2, 3)),  # a box, strided and dilated
        ("laplacian", 3, 2, 4),  # a halo of 5 rows against strips of 3
    ],
)
def test_split_equals_in_memory_over_pad_modes_and_geometries(
    client, sources, tmp_path, mode, kernel, stride, dilation, padding
):
    options = {"stride": stride, "dilation": dilation, "padding": padding, "pad_mode": mode, "pad_value": 0.25}
    split_equals_references(client, sources / "tiled.tif", tmp_path, "png", kernel, **options)


@pytest.mark.parametrize(
    ("source", "ext", "options"),
    [
        ("striped.tif", "tif", {}),  # float32 TIFF, one pass
        ("tiled.tif", "npy", {"pad_mode": "circular", "padding": "same"}),
        ("gray.png", "png", {"scale": "abs", "padding": "same", "pad_mode": "reflect"}),  # rows sent by the client
        ("gray.png", "png", {"scale": "minmax", "depth": 16}),
        ("color.png", "png", {"color": True, "padding": "same", "pad_mode": "circular"}),  # three channels, sent
        ("deep.png", "npy", {"normalize": "max", "pad_mode": "replicate", "padding": 2}),  # 16-bit samples sent
        ("color.png", "tif", {"normalize": "max"}),  # the client's whole-image maximum, given to the workers
        ("floats.npy", "png", {"scale": "auto"}),  # chosen from the range pass (percentile for an edge map)
        ("tiled.tif", "png", {"scale": "percentile:97.5", "padding": "same"}),  # the workers' tails merged here
        ("floats.npy", "npy", {"padding": 2, "stride": 2, "pad_mode": "symmetric"}),
        ("tiled.tif", "png", {"normalize": "max", "scale": "clip", "vmin": 0.1, "vmax": 0.9}),
    ],
)
@pytest.mark.parametrize("kernel", ["sobel-x", "blur:4", ["gaussian:3", "laplacian"]])
def test_split_equals_in_memory_over_formats_and_scales(client, sources, tmp_path, source, ext, options, kernel):
    split_equals_references(client, sources / source, tmp_path, ext, kernel, **options)


def test_a_large_kernel_on_the_fft(client, tmp_path):
    # The FFT computes row tiles, shaped by the engine's thread count: the workers are given the client's.
    source = tmp_path / "fft.npy"
    np.save(source, RNG.standard_normal((90, 70)).astype(np.float32))
    kernel = RNG.random((13, 13))
    split_equals_references(client, source, tmp_path, "png", kernel, padding="same", method="fft")
    split_equals_references(client, source, tmp_path, "npy", kernel, padding="same", pad_mode="circular", method="fft")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    height=st.integers(4, 40),
    width=st.integers(3, 20),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 4)),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    padding=st.integers(0, 6),
    mode=st.sampled_from(MODES),
    strip=st.integers(1, 6),
)
def test_split_rows_equal_the_in_memory_array_hypothesis(
    client, tmp_path, height, width, kernel, stride, dilation, padding, mode, strip
):
    (kh, kw), span = kernel, dilation * (kernel[0] - 1) + 1
    if span > height + 2 * padding or dilation * (kw - 1) + 1 > width + 2 * padding:
        return
    values = np.random.default_rng(height * width).standard_normal((height, width))
    source = tmp_path / "h.npy"
    np.save(source, values)
    weights = np.random.default_rng(kh * kw).standard_normal((kh, kw))
    options = {"stride": stride, "dilation": dilation, "padding": padding, "pad_mode": mode}
    expected = convcli.filter(values, weights, **options)
    filter_file(str(source), str(tmp_path / "h-out.npy"), weights, strip_rows=strip, scheduler=client, **options)
    np.testing.assert_array_equal(np.load(tmp_path / "h-out.npy"), expected)


def test_pooling_split_equals_in_memory(client, sources, tmp_path):
    for op, size, extra in (("max", 3, {"stride": 2, "padding": 1}), ("mean", (2, 3), {"ceil_mode": True})):
        image = convcli.load(str(sources / "tiled.tif"))
        convcli.save(convcli.pool(image, size, op=op, **extra), str(tmp_path / "memory.png"))
        done = pool_file(
            str(sources / "tiled.tif"),
            str(tmp_path / "split.png"),
            size,
            op=op,
            strip_rows=2,
            scheduler=client,
            **extra,
        )
        assert done.tasks > 2
        assert (tmp_path / "split.png").read_bytes() == (tmp_path / "memory.png").read_bytes(), op


# ---------------------------------------------------------------------------
# Upsampling (a transposed convolution) split across the workers

#: Kernels and geometries: named kernels with the padding chosen for them (None) and with PyTorch's padding,
#: file-like kernels with every option (four sides, output padding, dilation, bias), strides of 1 to 4.
UP_GEOMETRIES = [
    ("bilinear", {"stride": 2, "padding": None}),  # exactly twice the size
    ("nearest:3", {"stride": 3, "padding": None}),
    ("bilinear", {"stride": 2, "padding": 0}),  # PyTorch's padding: 2n + 2
    (RNG.standard_normal((3, 2)), {"stride": (3, 2), "padding": (1, 2, 0, 1), "output_padding": 1, "dilation": 2}),
    (RNG.standard_normal((5, 5)), {"stride": 1, "padding": 2, "bias": 0.25}),  # stride 1: a full correlation
    ("0 1; 2 3", {"stride": 2, "dilation": 3, "output_padding": 2}),  # output padding below the dilation
    (RNG.standard_normal((4, 4)), {"stride": 4, "padding": 5}),  # more cut than a stride
]


@pytest.mark.parametrize(("kernel", "geometry"), UP_GEOMETRIES)
def test_upsample_split_equals_in_memory_over_kernels_and_geometries(client, sources, tmp_path, kernel, geometry):
    done = split_equals_references(client, sources / "tiled.tif", tmp_path, "png", kernel, "upsample", **geometry)
    assert done.rows_from == "workers" and done.passes == 2  # --scale auto: the range first, on the workers


@pytest.mark.parametrize(
    ("source", "ext", "options"),
    [
        ("striped.tif", "tif", {}),  # float32 TIFF, one pass
        ("tiled.tif", "npy", {}),
        ("gray.png", "png", {"scale": "abs"}),  # rows sent by the client
        ("gray.png", "png", {"scale": "minmax", "depth": 16}),
        ("color.png", "png", {"color": True}),  # three channels, sent
        ("deep.png", "npy", {"normalize": "max"}),  # 16-bit samples sent, the client's maximum
        ("color.png", "tif", {"normalize": "max"}),
        ("floats.npy", "png", {"scale": "auto"}),  # read by the workers (by file offset)
        ("tiled.tif", "png", {"scale": "percentile:97.5"}),  # the workers' tails merged here
        ("floats.npy", "npy", {}),
        ("tiled.tif", "png", {"normalize": "max", "scale": "clip", "vmin": 0.1, "vmax": 0.9}),  # one pass
    ],
)
@pytest.mark.parametrize(
    ("kernel", "geometry"), [UP_GEOMETRIES[0], (RNG.standard_normal((3, 3)), {"stride": 2, "padding": 1})]
)
def test_upsample_split_equals_in_memory_over_formats_and_scales(
    client, sources, tmp_path, source, ext, options, kernel, geometry
):
    done = split_equals_references(client, sources / source, tmp_path, ext, kernel, "upsample", **geometry, **options)
    # PNGs are decoded whole on the client, which sends the rows; a tiled TIFF and a .npy are read by the workers.
    expected = {"tiled.tif": "workers", "floats.npy": "workers"}.get(source, "client" if ".png" in source else None)
    assert expected is None or done.rows_from == expected
    ranged = ext == "png" and options.get("scale", "auto") != "clip"
    assert done.passes == (2 if ranged else 1)


@pytest.mark.parametrize("operation", ["filter", "upsample"])
def test_a_split_zarr_store_is_the_streamed_store(client, sources, tmp_path, operation):
    zarr = pytest.importorskip("zarr")
    kernel, options = ("gaussian:5", {"padding": "same"}) if operation == "filter" else UP_GEOMETRIES[0]
    run_file = OPERATIONS[operation][1]
    source = sources / "floats.npy"
    run_file(str(source), str(tmp_path / "stream.zarr"), kernel, strip_rows=3, tile=16, **options)
    done = run_file(
        str(source), str(tmp_path / "split.zarr"), kernel, strip_rows=3, tile=16, scheduler=client, **options
    )
    assert done.tasks > 2 and "zarr band" in done.estimate.parts
    np.testing.assert_array_equal(
        zarr.open(str(tmp_path / "split.zarr"), mode="r")[...], computed(source, kernel, operation, **options)
    )
    files = sorted(
        p.relative_to(tmp_path / "stream.zarr") for p in (tmp_path / "stream.zarr").rglob("*") if p.is_file()
    )
    assert files == sorted(
        p.relative_to(tmp_path / "split.zarr") for p in (tmp_path / "split.zarr").rglob("*") if p.is_file()
    )
    for name in files:  # the chunks and the metadata, byte for byte
        assert (tmp_path / "split.zarr" / name).read_bytes() == (tmp_path / "stream.zarr" / name).read_bytes(), name


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    height=st.integers(1, 30),
    width=st.integers(1, 12),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 3)),
    dilation=st.integers(1, 3),
    padding=st.integers(0, 5),
    extra=st.integers(0, 3),
    strip=st.integers(1, 6),
)
def test_upsample_split_rows_equal_the_in_memory_array_hypothesis(
    client, tmp_path, height, width, kernel, stride, dilation, padding, extra, strip
):
    output_padding = min(extra, max(stride[0], dilation) - 1, max(stride[1], dilation) - 1)
    values = np.random.default_rng(height * width).standard_normal((height, width))
    weights = np.random.default_rng(kernel[0] * kernel[1]).standard_normal(kernel)
    options = {"stride": stride, "dilation": dilation, "padding": padding, "output_padding": output_padding}
    try:
        expected = convcli.upsample(values, weights, **options)
    except convcli.ConvcliError:  # a padding that cuts the whole output away: refused alike
        return
    source = tmp_path / "h.npy"
    np.save(source, values)
    upsample_file(str(source), str(tmp_path / "h-out.npy"), weights, strip_rows=strip, scheduler=client, **options)
    np.testing.assert_array_equal(np.load(tmp_path / "h-out.npy"), expected)


def test_the_rows_sent_to_an_upsampling_task_are_those_its_kernels_reach():
    # Output rows [a, b) read the input rows ceil((a + p - d(k - 1)) / s) to floor((b - 1 + p) / s): a recording
    # reader under the worker's steps, read strip by strip, reads exactly the rows the client sends.
    image = RNG.random((90, 20)).astype(np.float32)
    for kernel, options in (
        ("bilinear", {"stride": 2, "padding": None}),
        (RNG.random((5, 3)), {"stride": 3, "padding": 4, "dilation": 2}),
        (RNG.random((2, 2)), {"stride": 1, "padding": 0}),
    ):
        settings = upsample_settings(**options)
        resolved = upsampling_kernel(kernel, settings.stride)
        build = upsampled_rows(ArrayRows(image), resolved, settings)
        steps = build(ArrayRows(image))
        (s, _), (d, _), (p, _), k = (
            steps.geometry.stride,
            steps.geometry.dilation,
            steps.geometry.padding,
            resolved.shape[0],
        )
        for start, stop in ((0, 24), (50, 80), (steps.height - 16, steps.height)):
            recording = Recording(image)
            worker_steps = build(recording)
            for first in range(start, stop, 8):
                worker_steps.read(first, min(stop, first + 8))
            needed = {row for a, b in needed_runs(steps, start, stop) for row in range(a, b)}
            low, high = max(0, -(-(start + p - d * (k - 1)) // s)), min(image.shape[0] - 1, (stop - 1 + p) // s)
            assert recording.rows == needed == set(range(low, high + 1)), (kernel, options, start)


class Recording(ArrayRows):
    """An array read by rows that remembers which rows were read."""

    def __init__(self, array):
        super().__init__(array)
        self.rows: set[int] = set()

    def read(self, start, stop):
        self.rows.update(range(start, stop))
        return super().read(start, stop)


def test_the_rows_sent_to_a_task_are_its_rows_and_halos_only():
    # The rows a task is sent (when workers cannot read the file) are exactly those its strips read:
    # a recording reader under the same chain, read strip by strip as a worker does.
    image = RNG.random((200, 30)).astype(np.float32)
    for mode, kernels, stride in (
        ("zeros", ["gaussian:5"], 1),
        ("circular", ["gaussian:7", "laplacian"], 1),
        ("reflect", ["blur:5"], 2),
    ):
        settings = FilterSettings(make_geometry(padding=3, pad_mode=mode, stride=stride))
        plan = plan_stream(image.shape, 1, np.float32, as_kernels(kernels), settings, strip_rows=8)
        for start, stop in ((0, 24), (40, 64), (plan.output_size[0] - 16, plan.output_size[0])):
            recording = Recording(image)
            steps = build_steps(recording, plan, settings)
            for first in range(start, stop, 8):
                steps.read(first, min(stop, first + 8))
            needed = {
                row
                for a, b in needed_runs(build_steps(ArrayRows(image), plan, settings), start, stop)
                for row in range(a, b)
            }
            assert recording.rows <= needed, (mode, kernels, start)
            assert len(needed) <= (stop - start) * stride + 60  # the rows and the halos, never the whole image
    assert task_ranges(100, 8, 1000, 2, None) == [(start, min(100, start + 16)) for start in range(0, 100, 16)]


class FakeClient:
    def __init__(self, seen):
        self.seen = seen

    def run(self, function, *args):
        return {"tcp://a": True, "tcp://b": self.seen}


def test_workers_read_a_tiff_they_see_and_are_sent_the_rows_otherwise(sources):
    path = str(sources / "tiled.tif")
    with open_rows(path) as reader:
        assert shared_path(FakeClient(True), path, reader) == os.path.abspath(path)
        assert shared_path(FakeClient(False), path, reader) is None  # one worker cannot see it
    with open_rows(str(sources / "gray.png")) as reader:
        assert shared_path(FakeClient(True), str(sources / "gray.png"), reader) is None  # decoded whole
    with open_rows(str(sources / "floats.npy")) as reader:  # a .npy is read by file offset: by the workers too
        assert shared_path(FakeClient(True), str(sources / "floats.npy"), reader) == str(sources / "floats.npy")


def test_rows_sent_when_a_worker_cannot_see_the_file(client, sources, tmp_path, monkeypatch):
    import convcli.run.cluster_spread as spread

    monkeypatch.setattr(spread, "shared_path", lambda *args: None)
    split_equals_references(
        client, sources / "tiled.tif", tmp_path, "png", "gaussian:5", padding="same", pad_mode="circular"
    )
    with open_rows(str(sources / "tiled.tif")) as reader:
        settings = FilterSettings(make_geometry())
        done = split_filter(
            client,
            reader,
            str(sources / "tiled.tif"),
            ReadSettings(),
            str(tmp_path / "s.tif"),
            "tiff",
            as_kernels("sobel-x"),
            settings,
            convcli.api.settings.WriteSettings(),
            strip_rows=4,
            window=1,
        )
    assert done.rows_from == "client" and done.window == 1


@pytest.mark.parametrize("operation", ["filter", "upsample"])
def test_a_worker_killed_mid_run_has_its_strips_run_again(client, tmp_path, operation):
    # Kill (SIGKILL) a worker that is computing strips, from the client as the first strips are written: the
    # scheduler runs its tasks again on the other worker and the file is still the in-memory one.
    source = tmp_path / "big.npy"
    if operation == "filter":
        np.save(source, RNG.random((600, 400)))
        memory = in_memory(source, tmp_path / "memory.png", "gaussian:15", padding="same", pad_mode="reflect")
    else:  # 300x200 -> 600x400
        np.save(source, RNG.random((300, 200)))
        memory = in_memory(source, tmp_path / "memory.png", "bilinear", "upsample", stride=2)
    pids = client.run(os.getpid)
    killed: list[str] = []

    def kill_a_busy_worker(done: int, total: int) -> None:
        if killed or done == 0:
            return
        busy = [address for address, keys in client.processing().items() if keys and address in pids]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    with open_rows(str(source)) as reader:
        common = (client, reader, str(source), ReadSettings(), str(tmp_path / "split.png"), "png")
        if operation == "filter":
            settings = FilterSettings(make_geometry(padding="same", pad_mode="reflect"))
            step = (as_kernels("gaussian:15"), settings)
            split_filter(*common, *step, WriteSettings(), strip_rows=10, task_rows=20, on_rows=kill_a_busy_worker)
        else:
            settings = upsample_settings(stride=2, padding=None)  # chosen: exactly twice the size
            step = (upsampling_kernel("bilinear", settings.stride), settings)
            split_upsample(*common, *step, WriteSettings(), strip_rows=10, task_rows=20, on_rows=kill_a_busy_worker)
    assert killed, "no worker was busy when the strips came back"
    assert (tmp_path / "split.png").read_bytes() == memory
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    client.wait_for_workers(2, timeout=60)  # the nanny brings the worker back for the next tests


# ---------------------------------------------------------------------------
# The command line


def test_one_source_with_scheduler_and_stream_is_split(client, sources, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    address = client.scheduler.address
    args = ["filter", str(sources / "tiled.tif"), "-k", "gaussian:5", "--padding", "same", "--pad-mode", "reflect"]
    reference = run_cli([*args, "-o", "memory.png"])
    split = run_cli([*args, "-o", "split.png", "--stream", "--strip-rows", "4", "--scheduler", address])
    assert reference.exit_code == split.exit_code == 0, split
    assert "split across 2 Dask workers" in split.stderr and "rows read by the workers" in split.stderr
    assert (tmp_path / "split.png").read_bytes() == (tmp_path / "memory.png").read_bytes()
    pooled = run_cli(["pool", str(sources / "gray.png"), "-k", "3", "-o", "p.png", "--stream", "--scheduler", address])
    memory = run_cli(["pool", str(sources / "gray.png"), "-k", "3", "-o", "q.png"])
    assert pooled.exit_code == memory.exit_code == 0, pooled
    assert "rows sent by the client" in pooled.stderr
    assert (tmp_path / "p.png").read_bytes() == (tmp_path / "q.png").read_bytes()


def split_run_record(client, args: list[str]) -> tuple[dict, int]:
    """A --json run of ``args`` on the test cluster: its record, and the tasks the scheduler ran (counted there)."""
    with distributed.get_task_stream(client) as stream:
        run = run_cli([*args, "--scheduler", client.scheduler.address, "--json"])
    assert run.exit_code == 0, run
    ran = {task["key"] for task in stream.data if "run_task" in str(task["key"])}
    return json.loads(run.stdout), len(ran)


@pytest.mark.parametrize(
    ("command", "source", "options", "rows_from"),
    [
        ("filter", "tiled.tif", ["-k", "gaussian:5", "--padding", "same"], "workers"),
        ("pool", "gray.png", ["-k", "3"], "client"),
        ("upsample", "tiled.tif", ["-k", "bilinear", "--stride", "2"], "workers"),
        ("upsample", "gray.png", ["-k", "nearest:3", "--stride", "3", "--scale", "minmax"], "client"),
        ("upsample", "floats.npy", ["-k", "bilinear", "--stride", "2", "--padding", "0"], "workers"),
    ],
)
def test_a_split_run_says_its_workers_and_tasks_in_json(
    client, sources, tmp_path, monkeypatch, command, source, options, rows_from
):
    # The in-memory file, and the split one with the numbers of the split in its --json record: the workers
    # and the tasks (each whole strips) the scheduler ran, pass by pass.
    monkeypatch.chdir(tmp_path)
    args = [command, str(sources / source), *options]
    memory = run_cli([*args, "-o", "memory.png", "--no-stream"])
    assert memory.exit_code == 0, memory
    record, ran = split_run_record(client, [*args, "-o", "split.png", "--stream", "--strip-rows", "4"])
    assert (tmp_path / "split.png").read_bytes() == (tmp_path / "memory.png").read_bytes()
    streamed = record["streamed"]
    split = streamed["split"]
    assert set(split) == {"workers", "tasks", "window", "rows_from"}
    assert split["workers"] == len(client.scheduler_info()["workers"]) == 2
    assert split["tasks"] * streamed["passes"] == ran  # the tasks of every pass, as the scheduler saw them
    assert streamed["strip_rows"] == 4 and split["tasks"] <= -(-record["output"]["height"] // 4)  # whole strips
    assert 1 <= split["window"] <= 4 and split["rows_from"] == rows_from
    # and in words on stderr, without --json
    said = run_cli([*args, "-o", "again.png", "--stream", "--strip-rows", "4", "--scheduler", client.scheduler.address])
    where = "read by the workers" if rows_from == "workers" else "sent by the client"
    assert f"split across 2 Dask workers: {split['tasks']} tasks, rows {where}" in said.stderr, said


def test_an_upsampling_the_memory_budget_refuses_is_split(client, tmp_path, monkeypatch):
    # 800x800 -> 1600x1600: the in-memory estimate (about 92 MiB) is above 80 MiB, the streamed one below.
    monkeypatch.chdir(tmp_path)
    np.save("big.npy", RNG.standard_normal((800, 800)))
    assert run_cli(["upsample", "big.npy", "-k", "bilinear", "-o", "memory.npy", "-q"]).exit_code == 0
    args = ["upsample", "big.npy", "-k", "bilinear", "-o", "split.npy", "--max-memory", "80"]
    record, ran = split_run_record(client, args)
    assert record["streamed"]["split"]["tasks"] == ran > 2
    assert (tmp_path / "split.npy").read_bytes() == (tmp_path / "memory.npy").read_bytes()


def test_a_streamed_upsampling_and_an_unreachable_scheduler_is_one_line_within_the_timeout(
    sources, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    args = ["upsample", str(sources / "floats.npy"), "-k", "bilinear", "-o", "out.npy", "--stream"]
    run = run_cli([*args, "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "1"])
    assert_error(run, 1, "cannot reach the scheduler tcp://127.0.0.1:9 within 1 s")
    assert time.monotonic() - start < 8
    assert list(tmp_path.iterdir()) == []


def test_upsample_rows_sent_when_a_worker_cannot_see_the_file(client, sources, tmp_path, monkeypatch):
    import convcli.run.cluster_spread as spread

    monkeypatch.setattr(spread, "shared_path", lambda *args: None)
    for source in ("tiled.tif", "floats.npy"):
        done = split_equals_references(
            client, sources / source, tmp_path, "png", "bilinear", "upsample", stride=2, padding=None
        )
        assert done.rows_from == "client"


def test_a_source_the_memory_budget_refuses_is_split(client, tmp_path, monkeypatch):
    # 90 MiB refuses the in-memory run of a 2000x2000 image (about 110 MiB) but not the streamed one: split.
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("big.tif", RNG.integers(0, 256, (2000, 2000), dtype=np.uint8), tile=(256, 256))
    assert run_cli(["filter", "big.tif", "-k", "gaussian:5", "-o", "memory.png", "-q"]).exit_code == 0
    run = run_cli(
        [
            "filter",
            "big.tif",
            "-k",
            "gaussian:5",
            "-o",
            "split.png",
            "--max-memory",
            "90",
            "--scheduler",
            client.scheduler.address,
        ]
    )
    assert run.exit_code == 0, run
    assert "split across 2 Dask workers" in run.stderr
    assert (tmp_path / "split.png").read_bytes() == (tmp_path / "memory.png").read_bytes()


# ---------------------------------------------------------------------------
# Ctrl-C on a local cluster started by the run


def _processes_of(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _interrupt(args: list[str], cwd: Path, started, whole_group: bool) -> tuple[int, str, list]:
    """Run convcli in a session of its own, send SIGINT once ``started()``; (exit code, stderr, its children)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen(
        [sys.executable, "-m", "convcli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        children: list = []
        while not started():
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.01)
        children = _processes_of(process.pid)
        assert children, "no worker processes"
        if whole_group:  # a terminal's Ctrl-C: the whole foreground group, workers included
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, stderr.decode(), children


def _assert_gone(children: list) -> None:
    deadline = time.monotonic() + 10
    while any(child.is_running() and child.status() != "zombie" for child in children):
        assert time.monotonic() < deadline, [c.pid for c in children if c.is_running()]
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("command", "whole_group"), [("filter", False), ("filter", True), ("upsample", True)])
def test_ctrl_c_on_a_split_image(tmp_path, command, whole_group):
    if command == "filter":
        tifffile.imwrite(tmp_path / "big.tif", RNG.integers(0, 256, (3000, 2000), dtype=np.uint8), tile=(256, 256))
        operation = ["filter", "big.tif", "-k", "gaussian:15"]
    else:  # 2000x1500 -> 4013x3013, a 15x15 kernel scattered: seconds of work on the workers
        tifffile.imwrite(tmp_path / "big.tif", RNG.integers(0, 256, (2000, 1500), dtype=np.uint8), tile=(256, 256))
        operation = ["upsample", "big.tif", "-k", "; ".join(["1 " * 15] * 15), "--stride", "2"]
    args = [*operation, "-o", "out.tif", "--stream", "--strip-rows", "16", "--scheduler", "local:2"]

    def writing() -> bool:
        return any(p.name.endswith(".part") for p in tmp_path.iterdir())

    code, stderr, children = _interrupt(args, tmp_path, writing, whole_group)
    assert code == 130, stderr
    assert stderr.strip().splitlines() == ["convcli: interrupted"], stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]  # no output, no temporary file
    _assert_gone(children)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("whole_group", [False, True])
def test_ctrl_c_on_a_batch(tmp_path, whole_group):
    folder = tmp_path / "in"
    folder.mkdir()
    for number in range(40):
        Image.fromarray(RNG.integers(0, 256, (500, 500), dtype=np.uint8)).save(folder / f"s{number:02d}.png")
    out = tmp_path / "out"
    args = ["filter", "in/*.png", "-k", "gaussian:15", "--outdir", "out", "--scheduler", "local:2"]

    def some_written() -> bool:
        return out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())

    code, stderr, children = _interrupt(args, tmp_path, some_written, whole_group)
    assert code == 130, stderr
    assert stderr.strip().splitlines() == ["convcli: interrupted"], stderr
    names = sorted(p.name for p in out.iterdir())
    assert [name for name in names if name.startswith(".")] == []  # no temporary file
    assert 0 < len(names) < 40
    for name in names:
        with Image.open(out / name) as image:
            image.load()  # complete files only
    _assert_gone(children)


def test_one_source_that_fits_runs_on_the_client_and_fails_as_one_line(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = Path(__file__).resolve().parent.parent / "samples"
    address = client.scheduler.address
    local = run_cli(["filter", str(samples / "camera.png"), "-k", "vertical", "-o", "a.png"])
    remote = run_cli(["filter", str(samples / "camera.png"), "-k", "vertical", "-o", "b.png", "--scheduler", address])
    assert local.exit_code == remote.exit_code == 0, remote
    assert "split across" not in remote.stderr  # it fits in memory: filtered where it was decoded
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    broken = run_cli(["filter", "broken.png", "-k", "vertical", "-o", "c.png", "--stream", "--scheduler", address])
    assert broken.exit_code == 1 and "broken.png" in broken.stderr and "Traceback" not in broken.stderr, broken
    assert not (tmp_path / "c.png").exists()


def test_workers_use_the_clients_threads_where_the_numbers_depend_on_them(client, monkeypatch):
    from convcli.run.cluster_split import _job
    from convcli.run.cluster_tasks import pinned_threads as _threads

    monkeypatch.setenv("CONVCLI_THREADS", "5")
    with _threads(3):
        with _threads(3):
            assert os.environ["CONVCLI_THREADS"] == "3"
        assert os.environ["CONVCLI_THREADS"] == "3"
    assert os.environ["CONVCLI_THREADS"] == "5"
    with _threads(None):
        assert os.environ["CONVCLI_THREADS"] == "5"
    assert set(client.run(lambda: os.environ.get("CONVCLI_THREADS")).values()) == {"1"}
    reader = ArrayRows(np.zeros((50, 40)))
    for method, pinned in (("fft", True), ("box", True), ("direct", False), ("separable", False)):
        settings = FilterSettings(make_geometry(), method=method)
        kernel = "blur:3" if method in ("box", "separable") else "0 1; 2 3"
        plan = plan_stream((50, 40), 1, np.float64, as_kernels(kernel), settings, strip_rows=4)
        job = _job("filter", None, ReadSettings(), reader, 4, "npy", functools.partial(build_steps, plan=plan), plan)
        assert (job.threads == 5) is pinned, method


def test_a_scheduler_without_workers_is_one_error_not_a_wait():
    from convcli.run.cluster import ClusterError
    from convcli.run.cluster_spread import worker_count

    class NoWorkers:
        def scheduler_info(self):
            return {"workers": {}}

        def wait_for_workers(self, count, timeout):
            raise TimeoutError

    with pytest.raises(ClusterError, match="the scheduler has no workers"):
        worker_count(NoWorkers(), timeout=0.1)
