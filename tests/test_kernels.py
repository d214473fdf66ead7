"""Kernel catalogue, specs and files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convcli.engine import correlate2d, rank1_factors
from convcli.errors import KernelError, UnknownKernelError
from convcli.kernels import catalogue, kernel_files, load_kernel_file, parse_imagemagick, parse_kernel_spec


def weights(spec):
    return parse_kernel_spec(spec).weights


def test_vertical_and_horizontal_are_the_classic_ones():
    assert weights("vertical").tolist() == [[1, 0, -1]] * 3
    assert weights("horizontal").tolist() == [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]
    assert np.array_equal(weights("horizontal"), weights("vertical").T)


def ramp(axis):
    grid = np.arange(8.0)
    return np.tile(grid, (8, 1)) if axis == "x" else np.tile(grid[:, None], (1, 8))


@pytest.mark.parametrize("family", ["sobel", "prewitt", "scharr"])
def test_derivative_signs(family):
    # Brightness increasing to the right / downwards gives positive x / y responses (correlation).
    assert np.all(correlate2d(ramp("x"), weights(f"{family}-x")) > 0)
    assert np.all(correlate2d(ramp("y"), weights(f"{family}-y")) > 0)
    assert np.all(correlate2d(ramp("y"), weights(f"{family}-x")) == 0)
    # vertical responds positively where the left is brighter, i.e. to a ramp decreasing rightwards.
    assert np.all(correlate2d(ramp("x")[:, ::-1], weights("vertical")) > 0)


def test_gaussian_reproduces_the_tutorial_kernel_up_to_normalisation():
    grid = np.arange(-3, 4)
    tutorial = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / 7)
    ours = weights("gaussian")
    assert ours.shape == (7, 7)
    np.testing.assert_allclose(ours * tutorial.sum(), tutorial, rtol=1e-14)
    assert weights("gaussian:7").tolist() == ours.tolist()
    assert math.isclose(ours.sum(), 1.0, rel_tol=1e-14)


def test_gaussian_sigma_and_size_from_sigma():
    k = weights("gaussian:5:1.5")
    grid = np.arange(-2, 3)
    want = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(k, want / want.sum(), rtol=1e-14)
    assert weights("gaussian::2").shape == (13, 13)  # 2*ceil(3*2)+1
    assert rank1_factors(k) is not None


def test_blur_identity_laplacian_sharpen():
    assert np.allclose(weights("blur:5"), 1 / 25)
    assert weights("blur:2x4").shape == (2, 4)
    assert weights("identity").tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert weights("laplacian").tolist() == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    assert weights("laplacian:8").sum() == 0 and weights("laplacian:8")[1, 1] == -8
    assert weights("sharpen").sum() == 1 and weights("emboss").sum() == 1


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_finite_differences_have_order_plus_one_taps(order):
    k = weights(f"diff-x:{order}")
    assert k.shape == (1, order + 1)
    assert weights(f"diff-y:{order}").shape == (order + 1, 1)
    # A polynomial of degree < order is annihilated; degree == order gives the constant (-1)^order * order!.
    x = np.arange(10.0)
    for degree in range(order):
        assert np.allclose(correlate2d((x**degree)[None, :], k), 0)
    assert np.allclose(correlate2d((x**order)[None, :], k), (-1) ** order * math.factorial(order))
    assert weights("diff-x").tolist() == [[1, -1]]


def test_directional_edge_kernel():
    np.testing.assert_allclose(weights("edge:1,0"), weights("sobel-x"))
    np.testing.assert_allclose(weights("edge:0,2"), weights("sobel-y"))
    diagonal = weights("edge:1,1")
    np.testing.assert_allclose(diagonal, (weights("sobel-x") + weights("sobel-y")) / math.sqrt(2))
    with pytest.raises(KernelError, match="non-zero"):
        parse_kernel_spec("edge:0,0")
    with pytest.raises(KernelError, match="needs a direction"):
        parse_kernel_spec("edge")


def test_inline_matrices():
    assert weights("0 1; 2 3").tolist() == [[0, 1], [2, 3]]
    assert weights("1,-1").tolist() == [[1, -1]]
    assert weights("1e-1 2.5E1").tolist() == [[0.1, 25.0]]
    with pytest.raises(KernelError, match="row 2 has 1 values but row 1 has 2"):
        parse_kernel_spec("1 2; 3")


def test_imagemagick_strings():
    assert parse_imagemagick("3x2: 1,0,-1, 2,0,-2").tolist() == [[1, 0, -1], [2, 0, -2]]
    assert weights("3: 1,1,1, 1,1,1, 1,1,1").shape == (3, 3)
    with pytest.raises(KernelError, match="declares 3x3"):
        parse_kernel_spec("3x3: 1,2,3")
    with pytest.raises(KernelError, match="origin offsets"):
        parse_kernel_spec("3x3+0+0: 1,1,1,1,1,1,1,1,1")
    with pytest.raises(KernelError, match="not a number"):
        parse_kernel_spec("2x1: 1,x")


def test_kernel_files(tmp_path):
    text = tmp_path / "k.txt"
    text.write_text("# a comment\n1 2 3  # trailing\n\n4 5 6\n")
    assert weights(str(text)).tolist() == [[1, 2, 3], [4, 5, 6]]
    csv = tmp_path / "k.csv"
    csv.write_text("1,2\n3,4\n")
    assert weights(str(csv)).tolist() == [[1, 2], [3, 4]]
    npy = tmp_path / "k.npy"
    np.save(npy, np.array([[1.5, -2.0]]))
    assert weights(str(npy)).tolist() == [[1.5, -2.0]]
    magick = tmp_path / "k.kernel"
    magick.write_text("# ImageMagick\n2x2: 1,2,3,4\n")
    assert weights(str(magick)).tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1 2 3\n4 5\n", r"row 2 \(line 2\) has 2 values but row 1 \(line 1\) has 3"),
        ("# only a comment\n", "has no numbers"),
        ("1 nan\n", "line 1: 'nan' is not a finite number"),
        ("1 inf\n", "'inf' is not a finite number"),
        ("1 two\n", "line 1: 'two' is not a number"),
    ],
)
def test_bad_kernel_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(KernelError, match=message):
        load_kernel_file(path)


def test_npy_kernel_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.npy"
    np.save(path, np.array([[1.0, np.nan]]))
    with pytest.raises(KernelError, match="NaN or infinity"):
        parse_kernel_spec(str(path))


def test_missing_kernel_file():
    with pytest.raises(KernelError, match="kernel file 'nope/k.txt' does not exist"):
        parse_kernel_spec("nope/k.txt")


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownKernelError, match="did you mean 'gaussian'"):
        parse_kernel_spec("gausian")
    with pytest.raises(UnknownKernelError, match="convcli kernels"):
        parse_kernel_spec("zzzzzz")
    with pytest.raises(KernelError, match="too many parameters"):
        parse_kernel_spec("vertical:3")
    with pytest.raises(KernelError, match="'x' is not a whole number"):
        parse_kernel_spec("gaussian:x")


def test_shipped_kernel_files_load_by_name():
    names = {path.stem for path in kernel_files()}
    assert {"outline", "kirsch-n", "unsharp-5x5", "motion-blur-9"} <= names
    assert weights("outline")[1, 1] == 8
    assert weights("kirsch-n").tolist()[0] == [5, 5, 5]
    assert math.isclose(weights("unsharp-5x5").sum(), 1.0)


def test_kernel_path_environment(tmp_path, monkeypatch):
    (tmp_path / "mine.txt").write_text("1 2\n")
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", str(tmp_path))
    assert weights("mine").tolist() == [[1, 2]]


def test_every_catalogue_entry_builds_finite_weights():
    for entry in catalogue():
        params = ["1,1"] if entry.name == "edge" else []
        kernel = entry.build(params)
        assert kernel.ndim == 2 and np.all(np.isfinite(kernel)), entry.name
