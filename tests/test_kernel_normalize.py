"""Kernel normalisation: by the sum, the absolute sum, ImageMagick's '!' and '^', and the @METHOD spec suffix."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import assert_error
from convcli.errors import KernelError, UnknownKernelError
from convcli.kernels import Kernel, normalize_kernel, normalize_weights, parse_kernel_spec
from convcli.kernels.normalize import split_normalization
from test_kernels_magick import CONVERT, assert_same_as_printed, needs_magick, show_kernel


def test_hand_computed():
    assert normalize_weights([[1, 2, 1]], "sum").tolist() == [[0.25, 0.5, 0.25]]
    assert normalize_weights([[1, -3]], "sum").tolist() == [[-0.5, 1.5]]  # sum -2: the sign flips, the sum is 1
    assert normalize_weights([[1, 0, -3]], "abs").tolist() == [[0.25, 0, -0.75]]
    # ImageMagick '!': by |sum| (sign kept), or for a zero-sum kernel by the positive sum.
    assert normalize_weights([[1, -3]], "!").tolist() == [[0.5, -1.5]]
    assert normalize_weights([[-1, 0, 1], [-2, 0, 2]], "!").tolist() == [[-1 / 3, 0, 1 / 3], [-2 / 3, 0, 2 / 3]]
    # ImageMagick '^': each part to 1 in size, so the kernel sums to 0; a missing part is left alone.
    assert normalize_weights([[-1, -1, 4]], "^").tolist() == [[-0.5, -0.5, 1]]
    assert normalize_weights([[2, 2]], "^").tolist() == [[0.5, 0.5]]
    assert normalize_weights([[-2, -2]], "^").tolist() == [[-0.5, -0.5]]
    assert normalize_weights([[-1, -1, 4]], "pn").tolist() == [[-0.5, -0.5, 1]]
    result = normalize_weights([[1, 2]], "sum")
    assert result.dtype == np.float64 and not result.flags.writeable


def test_zero_sum_and_all_zero_kernels_are_explicit():
    with pytest.raises(KernelError) as error:
        normalize_weights([[1, 0, -1]], "sum", "kernel 'sobel-x'")
    assert str(error.value).startswith("kernel 'sobel-x' sums to 0 (zero-sum), so @sum cannot normalise it")
    assert "@abs" in str(error.value) and "@^" in str(error.value)
    for method in ("sum", "abs", "!", "^"):
        with pytest.raises(KernelError, match=rf"all zeros; no normalisation \({re.escape(method)}\)"):
            normalize_weights([[0.0, 0.0]], method)
    with pytest.raises(KernelError, match="'max' .* is unknown; use one of sum, abs, !, \\^, pn"):
        normalize_weights([[1.0]], "max")


def test_normalize_kernel_keeps_the_record():
    kernel = Kernel("k", np.array([[1.0, 3.0]]), "k.mat", "libvips matrix", 5.0)
    result = normalize_kernel(kernel, "sum")
    assert result.weights.tolist() == [[0.25, 0.75]]
    assert (result.name, result.spec, result.offset) == ("k-sum", "k.mat@sum", 5.0)
    assert normalize_kernel(kernel, "^").name == "k-pn"
    assert normalize_kernel(kernel, "!").name == "k-magick"
    assert isinstance(normalize_kernel([[1, 3]], "sum"), np.ndarray)


def test_spec_suffix(tmp_path, monkeypatch):
    assert split_normalization("gaussian:7@sum") == ("gaussian:7", "sum")
    assert split_normalization("im:Sobel @^") == ("im:Sobel", "^")
    assert split_normalization("k@sum.txt") == ("k@sum.txt", None)
    assert split_normalization("im:Sobel@") == ("im:Sobel@", None)
    kernel = parse_kernel_spec("0 1; 1 2@sum")
    assert kernel.weights.tolist() == [[0, 0.25], [0.25, 0.5]]
    assert kernel.spec == "0 1; 1 2@sum" and kernel.name == "custom-sum"
    np.testing.assert_array_equal(parse_kernel_spec("im:Sobel@!").weights, parse_kernel_spec("im:Sobel").weights / 4)
    np.testing.assert_array_equal(parse_kernel_spec("sharpen@abs").weights, parse_kernel_spec("sharpen").weights / 9)
    # A file whose whole name ends like a suffix is the file.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k@sum").write_text("1 2 3\n")
    assert parse_kernel_spec("./k@sum").weights.tolist() == [[1, 2, 3]]
    with pytest.raises(KernelError, match="'./nothing' does not exist"):
        parse_kernel_spec("./nothing@sum")
    (tmp_path / "blur.txt").write_text("1 1\n")
    assert parse_kernel_spec("blur.txt@sum").weights.tolist() == [[0.5, 0.5]]
    # An unknown method is not a suffix: the whole spec is parsed, and the error quotes the bad part.
    with pytest.raises(KernelError, match="gaussian size '3@max' is not a whole number"):
        parse_kernel_spec("gaussian:3@max")
    with pytest.raises(UnknownKernelError, match="'blur@max'"):
        parse_kernel_spec("blur@max")


def test_cli_messages(cli):
    assert_error(cli(["kernels", "show", "im:Sobel@sum"]), 2, "kernel 'im:Sobel' sums to 0 (zero-sum)")
    run = cli(["kernels", "show", "im:Sobel:90@^"])
    assert run.exit_code == 0, run
    assert run.stdout.split() == ["0.25", "0.5", "0.25", "0", "0", "0", "-0.25", "-0.5", "-0.25"]


@needs_magick
@pytest.mark.parametrize("flag", ["!", "^"])
@pytest.mark.parametrize(
    "kernel",
    [
        "Sobel",
        "Laplacian:2",
        "3x3: 1,2,3,4,5,6,7,8,-9",
        "3x3: -1,-2,-3,-4,-5,-6,-7,-8,9",
        "3x3: 1,2,1,2,4,2,1,2,1",
        "2x2: -1,-2,-3,-4",
        "Binomial",
        "Prewitt:45",
    ],
)
def test_equals_imagemagick_convolve_scale(kernel, flag):
    """``-define convolve:scale='!'|'^'`` as printed by showKernel (the scaling is applied before it is shown)."""
    assert CONVERT is not None
    printed = show_kernel(kernel, f"convolve:scale={flag}")
    spec = f"im:{kernel}" if kernel[0].isalpha() else kernel
    ours = normalize_weights(parse_kernel_spec(spec).weights, flag)
    assert_same_as_printed(ours, printed["values"])
