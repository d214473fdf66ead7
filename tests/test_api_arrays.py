"""The public API for arrays and files: convcli.filter/pool/upsample/load/save/kernel.

Each command and its API function give identical arrays on the samples (the command is a
thin client of the function); the functions agree with independent references (a naive
loop, SciPy, PyTorch where installed); bad arguments raise the ConvcliError family with a
one-line message naming the parameter.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

import convcli
from conftest import run_cli
from convcli.errors import ConvcliError, KernelError, ParameterError, ShapeError, UnknownKernelError
from convcli.io import to_pixels
from reference import naive_correlate

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
PHOTOS = ["camera.png", "chelsea.png", "coffee.png"]


def cli_array(args: list[str], tmp_path: Path) -> np.ndarray:
    out = tmp_path / "out.npy"
    run = run_cli([*args, "-o", out])
    assert run.exit_code == 0, run
    return np.load(out)


# ---------------------------------------------------------------------------
# The command and the function give the same arrays


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize(
    ("options", "kwargs"),
    [
        (["-k", "vertical"], {"kernel": "vertical"}),
        (
            ["-k", "gaussian:7", "-p", "same", "--pad-mode", "replicate"],
            {"kernel": "gaussian:7", "padding": "same", "pad_mode": "replicate"},
        ),
        (
            ["-k", "0 1; 2 3", "-s", "2", "-d", "2", "--bias", "0.5", "--convolve"],
            {"kernel": "0 1; 2 3", "stride": 2, "dilation": 2, "bias": 0.5, "convolve": True},
        ),
        (["-k", "gaussian:5", "-k", "laplacian", "--chain"], {"kernel": ["gaussian:5", "laplacian"]}),
    ],
)
def test_filter_command_equals_the_function(photo, options, kwargs, tmp_path):
    kwargs = dict(kwargs)
    kernel = kwargs.pop("kernel")
    got = convcli.filter(convcli.load(SAMPLES / photo), kernel, **kwargs)
    want = cli_array(["filter", SAMPLES / photo, *options], tmp_path)
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_filter_colour_equals_the_function(tmp_path):
    image = convcli.load(SAMPLES / "coffee.png", color=True)
    assert image.shape == (400, 600, 3)
    got = convcli.filter(image, "blur:3", stride=2)
    want = cli_array(["filter", SAMPLES / "coffee.png", "--color", "-k", "blur:3", "-s", "2"], tmp_path)
    np.testing.assert_array_equal(got, want)
    assert got.shape == (199, 299, 3)


def test_filter_text_grid_equals_the_function(tmp_path):
    got = convcli.filter(convcli.load(SAMPLES / "x.txt"), "0 1; 2 3", padding=1)
    want = cli_array(["filter", SAMPLES / "x.txt", "-k", "0 1; 2 3", "-p", "1"], tmp_path)
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize(
    ("options", "kwargs"),
    [
        (["--op", "max", "--size", "2"], {"size": 2}),
        (
            ["--op", "mean", "--size", "3", "-s", "2", "-p", "1", "--ceil-mode", "--no-count-include-pad"],
            {"size": 3, "op": "mean", "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
        ),
        (["--op", "min", "--size", "4x2", "-d", "2"], {"size": (4, 2), "op": "min", "dilation": 2}),
    ],
)
def test_pool_command_equals_the_function(photo, options, kwargs, tmp_path):
    got = convcli.pool(convcli.load(SAMPLES / photo), **kwargs)
    want = cli_array(["pool", SAMPLES / photo, *options], tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize(
    ("options", "kwargs"),
    [
        (["-k", "bilinear", "-s", "2", "-p", "1"], {"kernel": "bilinear", "stride": 2, "padding": 1}),
        (["-k", "nearest:3", "-s", "3"], {"kernel": "nearest:3", "stride": 3}),
        (["-k", "0 1; 2 3", "-s", "2", "--output-size", "601x401"], None),
    ],
)
def test_upsample_command_equals_the_function(photo, options, kwargs, tmp_path):
    image = convcli.load(SAMPLES / photo)
    if kwargs is None:  # output size relative to the photo
        size = (2 * image.shape[0] + 1, 2 * image.shape[1] + 1)
        options = [*options[:-1], f"{size[0]}x{size[1]}"]
        kwargs = {"kernel": "0 1; 2 3", "stride": 2, "output_size": size}
    kwargs = dict(kwargs)
    kernel = kwargs.pop("kernel")
    got = convcli.upsample(image, kernel, **kwargs)
    want = cli_array(["upsample", SAMPLES / photo, *options], tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("suffix", [".png", ".npy", ".tif", ".txt"])
def test_save_writes_the_bytes_the_command_writes(suffix, tmp_path):
    image = convcli.load(SAMPLES / "camera.png")
    result = convcli.filter(image, "vertical")[:40, :50]
    np.save(tmp_path / "small.npy", result)
    run = run_cli(["filter", tmp_path / "small.npy", "-k", "1", "-o", tmp_path / f"cli{suffix}"])
    assert run.exit_code == 0, run
    saved = convcli.save(result, tmp_path / f"api{suffix}")
    assert saved.path == str(tmp_path / f"api{suffix}")
    assert (tmp_path / f"api{suffix}").read_bytes() == (tmp_path / f"cli{suffix}").read_bytes()
    if suffix == ".png":
        assert saved.format == "png" and saved.mapping.scale == "percentile:99.5"
        magnitudes = np.sort(np.abs(result.astype(np.float32)).ravel())  # the 99.5th percentile, nearest rank
        bound = float(magnitudes[-(-995 * magnitudes.size // 1000) - 1])
        assert (saved.mapping.low, saved.mapping.high) == (-bound, bound)
    else:
        assert saved.mapping is None


def test_load_takes_paths_bytes_and_file_objects():
    path = SAMPLES / "chelsea.png"
    from_path = convcli.load(path)
    assert from_path.dtype == np.float32 and from_path.shape == (300, 451)
    np.testing.assert_array_equal(convcli.load(str(path)), from_path)
    np.testing.assert_array_equal(convcli.load(path.read_bytes()), from_path)
    with open(path, "rb") as stream:
        np.testing.assert_array_equal(convcli.load(stream), from_path)
    np.testing.assert_array_equal(convcli.load(io.BytesIO(path.read_bytes())), from_path)
    assert convcli.load(path, color=True).shape == (300, 451, 3)
    # the documented gray: BT.601 luma of the 8-bit RGB, over 255
    from PIL import Image

    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    luma = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255
    assert np.max(np.abs(from_path - luma)) < 1e-6
    assert convcli.load(path, normalize="none").max() > 1


def test_load_reads_a_url_from_a_local_server(http_server):
    base, routes = http_server
    routes["/camera.png"] = (200, "image/png", (SAMPLES / "camera.png").read_bytes(), 0)
    np.testing.assert_array_equal(convcli.load(f"{base}/camera.png"), convcli.load(SAMPLES / "camera.png"))


# ---------------------------------------------------------------------------
# Against independent references


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(1, 9), st.integers(1, 9)),
    st.tuples(st.integers(1, 4), st.integers(1, 4)),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_filter_equals_the_naive_loop(size, ksize, stride, padding, dilation, convolve, seed):
    rng = np.random.default_rng(seed)
    image = rng.standard_normal(size)
    kernel = rng.standard_normal(ksize)
    span = [dilation * (k - 1) + 1 for k in ksize]
    if any(n + 2 * padding < s for n, s in zip(size, span)):
        with pytest.raises(ShapeError):
            convcli.filter(image, kernel, stride=stride, padding=padding, dilation=dilation, convolve=convolve)
        return
    got = convcli.filter(image, kernel, stride=stride, padding=padding, dilation=dilation, convolve=convolve)
    applied = kernel[::-1, ::-1] if convolve else kernel
    want = naive_correlate(image, applied, (stride, stride), ((padding, padding),) * 2, (dilation, dilation))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_convolve_equals_scipy_convolve2d():
    rng = np.random.default_rng(1)
    image, kernel = rng.standard_normal((20, 17)), rng.standard_normal((4, 3))
    np.testing.assert_allclose(
        convcli.filter(image, kernel, convolve=True), signal.convolve2d(image, kernel, mode="valid"), atol=1e-12
    )


def test_functions_equal_torch():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    rng = np.random.default_rng(2)
    image, kernel = rng.standard_normal((13, 11)), rng.standard_normal((3, 2))
    x, w = torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None]
    np.testing.assert_allclose(
        convcli.filter(image, kernel, stride=2, padding=1, dilation=2, bias=0.25),
        functional.conv2d(x, w, torch.tensor([0.25], dtype=torch.float64), stride=2, padding=1, dilation=2)[0, 0],
        atol=1e-12,
    )
    odd = torch.from_numpy(kernel[:, :1].T.copy())[None, None]  # 1x3: torch warns about 'same' with even kernels
    np.testing.assert_allclose(
        convcli.filter(image, kernel[:, :1].T, padding="same"),
        functional.conv2d(x, odd, padding="same")[0, 0],
        atol=1e-12,
    )
    np.testing.assert_array_equal(
        convcli.pool(image, 3, stride=2, padding=1, ceil_mode=True),
        functional.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)[0, 0].numpy(),
    )
    np.testing.assert_allclose(
        convcli.pool(image, 2, op="mean", padding=1, count_include_pad=False),
        functional.avg_pool2d(x, 2, padding=1, count_include_pad=False)[0, 0],
        atol=1e-12,
    )
    np.testing.assert_allclose(
        convcli.upsample(image, kernel, stride=3, padding=1, output_padding=2, dilation=2),
        functional.conv_transpose2d(x, w, stride=3, padding=1, output_padding=2, dilation=2)[0, 0],
        atol=1e-12,
    )


def test_the_classic_examples_by_hand():
    x = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(convcli.filter(x, "0 1; 2 3"), [[19, 25], [37, 43]])
    np.testing.assert_array_equal(convcli.filter(x, [[0, 1], [2, 3]], convolve=True), [[5, 11], [23, 29]])
    edges = np.ones((6, 8))
    edges[:, 2:6] = 0
    response = convcli.filter(edges, [1, -1])
    assert response.shape == (6, 7)
    np.testing.assert_array_equal(response, np.tile([0, 1, 0, 0, 0, -1, 0], (6, 1)))
    two = np.array([[0.0, 1.0], [2.0, 3.0]])
    # each input pixel spreads a copy of the kernel: 0*K + 1*K shifted right + 2*K down + 3*K down-right
    np.testing.assert_array_equal(convcli.upsample(two, two, stride=1), [[0, 0, 1], [0, 4, 6], [4, 12, 9]])


def test_inputs_are_never_modified():
    image = np.arange(20.0).reshape(4, 5)
    kept = image.copy()
    kernel = np.array([[1.0, -1.0]])
    convcli.filter(image, kernel, bias=1)
    convcli.pool(image, 2)
    convcli.upsample(image, kernel, stride=2)
    np.testing.assert_array_equal(image, kept)
    np.testing.assert_array_equal(kernel, [[1.0, -1.0]])


def test_precision_and_dtypes():
    ints = np.arange(16).reshape(4, 4)
    assert convcli.filter(ints, "1").dtype == np.float64
    assert convcli.filter(ints.astype(np.float32), "1").dtype == np.float32
    assert convcli.filter(ints.astype(np.float32), "1", precision="float64").dtype == np.float64
    assert convcli.filter(np.eye(3, dtype=bool), "1").tolist() == np.eye(3).tolist()


# ---------------------------------------------------------------------------
# Kernels


def test_kernel_from_every_kind_of_spec(tmp_path):
    by_name = convcli.kernel("gaussian:5")
    assert isinstance(by_name, convcli.Kernel) and by_name.shape == (5, 5)
    assert convcli.kernel(by_name) is by_name
    assert np.asarray(by_name).tolist() == by_name.weights.tolist()
    np.testing.assert_array_equal(np.array(convcli.kernel([[0, 1], [2, 3]])), [[0, 1], [2, 3]])
    assert convcli.kernel([1, -1]).shape == (1, 2)
    (tmp_path / "k.txt").write_text("1 2\n3 4\n")
    assert convcli.kernel(tmp_path / "k.txt").weights.tolist() == [[1, 2], [3, 4]]
    assert convcli.kernel(str(tmp_path / "k.txt")).name == "k"
    column, row = convcli.kernel("gaussian:5").separable
    np.testing.assert_allclose(np.outer(column, row), by_name.weights, atol=1e-15)
    assert convcli.kernel("laplacian").separable is None
    # a Kernel goes wherever an array does
    np.testing.assert_array_equal(convcli.filter(np.eye(6), by_name.weights), convcli.filter(np.eye(6), by_name))


def test_a_list_of_kernels_is_a_chain_equal_to_the_command(tmp_path):
    image = convcli.load(SAMPLES / "camera.png")
    chained = convcli.filter(image, ["gaussian:3", convcli.kernel("vertical")])
    np.testing.assert_array_equal(chained, convcli.filter(convcli.filter(image, "gaussian:3"), "vertical"))


# ---------------------------------------------------------------------------
# Errors: the ConvcliError family, one line, naming the parameter


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: convcli.filter(np.ones((4, 4)), "1", stride=0), ParameterError, "stride"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", dilation=(1, 0)), ParameterError, "dilation"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", padding=-1), ParameterError, "padding"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", padding="full"), ParameterError, "padding"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", stride=2.5), ParameterError, "stride"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", stride=(1, 2, 3)), ParameterError, "stride"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", stride=2, padding="same"), ShapeError, "same"),
        (
            lambda: convcli.filter(np.ones((2, 2)), "gaussian:5"),
            ShapeError,
            "kernel 5 is larger than the padded input 2",
        ),
        (lambda: convcli.filter(np.ones((4, 4)), "1", bias=float("nan")), ParameterError, "bias"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", pad_mode="sideways"), ParameterError, "sideways"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", method="magic"), ParameterError, "magic"),
        (lambda: convcli.filter(np.ones((4, 4)), "1", precision="half"), ParameterError, "precision"),
        (lambda: convcli.filter(np.ones(4), "1"), ParameterError, "shape (4,)"),
        (lambda: convcli.filter(np.ones((2, 2, 2, 2)), "1"), ParameterError, "shape (2, 2, 2, 2)"),
        (lambda: convcli.filter([["a"]], "1"), ParameterError, "image"),
        (lambda: convcli.filter(np.ones((0, 3)), "1"), ParameterError, "no values"),
        (lambda: convcli.filter(np.ones((4, 4)), "gausian"), UnknownKernelError, "did you mean 'gaussian'"),
        (lambda: convcli.filter(np.ones((4, 4)), [[1, np.inf]]), KernelError, "NaN or infinity"),
        (
            lambda: convcli.filter(np.ones((4, 4)), [["x"]]),
            KernelError,
            "is not a spec, a Kernel or an array of numbers",
        ),
        (lambda: convcli.pool(np.ones((4, 4)), 2, op="median"), ParameterError, "median"),
        (lambda: convcli.pool(np.ones((4, 4)), 2, op="mean", dilation=2), ParameterError, "dilation"),
        (lambda: convcli.pool(np.ones((4, 4)), 4, padding=3), ShapeError, "padding"),
        (
            lambda: convcli.upsample(np.ones((4, 4)), "1", stride=2, output_size=(9, 9), output_padding=1),
            ParameterError,
            "output padding",
        ),
        (lambda: convcli.upsample(np.ones((4, 4)), "1", stride=2, output_size=(20, 20)), ShapeError, "reachable"),
        (lambda: convcli.load(12), ParameterError, "source 12"),
        (lambda: convcli.load("samples/missing.png"), ConvcliError, "missing.png"),
        (lambda: convcli.load(b"not an image"), ConvcliError, "the bytes given"),
        (lambda: convcli.load(SAMPLES / "camera.png", gray="green"), ParameterError, "gray"),
        (lambda: convcli.save(np.ones((2, 2)), "/nonexistent-dir/x.png"), ConvcliError, "does not exist"),
        (lambda: convcli.save(np.ones((2, 2)), "x.png", depth=12), ParameterError, "depth"),
        (lambda: convcli.save(np.ones((2, 2)), "x.unknown"), ConvcliError, "x.unknown"),
    ],
)
def test_bad_arguments_raise_one_line_convcli_errors(call, error, fragment):
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, ConvcliError)
    message = str(caught.value)
    assert fragment in message and "\n" not in message, message


def test_the_api_and_the_cli_say_the_same_thing(tmp_path):
    with pytest.raises(ShapeError) as caught:
        convcli.filter(np.ones((2, 2)), "gaussian:5")
    np.save(tmp_path / "two.npy", np.ones((2, 2)))
    run = run_cli(["filter", tmp_path / "two.npy", "-k", "gaussian:5", "-o", tmp_path / "o.npy"])
    assert run.exit_code == 2 and str(caught.value) in run.stderr, run


# ---------------------------------------------------------------------------
# Floats to pixels: rounding noise at an end is not clipping


def test_values_within_rounding_of_an_end_are_not_counted_as_clipped():
    values = np.array([[-1e-9, 0.5, 1.0 + 1e-9, 2.0, -0.1]], dtype=np.float32)
    pixels, mapping = to_pixels(values, vmin=0.0, vmax=1.0)
    assert pixels.tolist() == [[0, 128, 255, 255, 0]]
    assert mapping.clipped == 2  # 2.0 and -0.1 changed pixel; the others are within half a step of an end


# ---------------------------------------------------------------------------
# import convcli stays light


def test_import_convcli_loads_no_numpy_until_used():
    code = (
        "import sys, convcli; assert 'numpy' not in sys.modules, 'numpy'; convcli.filter; assert 'numpy' in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert set(convcli.__all__) <= set(dir(convcli))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        convcli.nothing  # noqa: B018
