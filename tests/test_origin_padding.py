"""Origins, the side of padding 'same''s extra row, and padding per side (issue 16), against independent references.

References: ``scipy.ndimage.correlate``/``convolve`` with ``origin=`` (every border mode), PyTorch's
``F.pad`` with per-side amounts followed by ``conv2d`` / ``max_pool2d`` / ``avg_pool2d``, and
``conv_transpose2d`` followed by a slice (skipped cleanly without torch), a naive loop kept here
(hypothesis over the whole geometry), and the real ``convert`` / ``vips`` programs for the even-kernel
placement they document.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

import convcli
from conftest import assert_error, run_cli
from convcli.errors import ParameterError, ShapeError
from convcli.shapes import output_size, parse_padding, resolve_padding
from reference import border_index

# convcli's border names and SciPy ndimage's modes for the same border (SciPy's 'reflect' is convcli's 'symmetric').
NDIMAGE_MODES = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "mirror",
    "symmetric": "reflect",
    "replicate": "nearest",
    "circular": "wrap",
}
KERNEL_SHAPES = [(3, 3), (2, 4), (4, 1), (1, 2), (3, 2)]


def _image(shape=(7, 9), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape)


def _kernel(shape, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape)


def _origins(shape):
    """Every origin SciPy accepts for this kernel: -(k//2) .. (k-1)//2 per axis."""
    return [
        (oy, ox)
        for oy in range(-(shape[0] // 2), (shape[0] - 1) // 2 + 1)
        for ox in range(-(shape[1] // 2), (shape[1] - 1) // 2 + 1)
    ]


# ---------------------------------------------------------------------------
# SciPy ndimage: correlate with origin= is padding 'same', the top-left extra, the same origin


@pytest.mark.parametrize("mode", list(NDIMAGE_MODES))
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_same_top_left_with_origin_equals_ndimage_correlate(mode, shape):
    image, kernel = _image(), _kernel(shape)
    cval = 0.7 if mode == "constant" else 0.0
    for origin in _origins(shape):
        ours = convcli.filter(
            image, kernel, padding="same", same_extra="top-left", origin=origin, pad_mode=mode, pad_value=cval
        )
        theirs = ndi.correlate(image, kernel, mode=NDIMAGE_MODES[mode], cval=cval, origin=origin)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, err_msg=f"origin {origin}")


@pytest.mark.parametrize("mode", list(NDIMAGE_MODES))
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_convolve_with_origin_equals_ndimage_convolve_with_the_origin_negated(mode, shape):
    """The origin moves the window (whatever is in it): ndimage.convolve's origin names a tap of the unflipped
    kernel, so its ``origin=o`` is convcli's ``convolve=True, origin=-o`` with PyTorch's bottom-right extra."""
    image, kernel = _image(seed=3), _kernel(shape, seed=4)
    cval = -0.3 if mode == "constant" else 0.0
    for origin in _origins(shape):
        ours = convcli.filter(
            image, kernel, convolve=True, padding="same", origin=(-origin[0], -origin[1]), pad_mode=mode, pad_value=cval
        )
        theirs = ndi.convolve(image, kernel, mode=NDIMAGE_MODES[mode], cval=cval, origin=origin)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, err_msg=f"origin {origin}")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("shape", [(2, 2), (4, 4), (2, 3)])
def test_even_kernels_top_left_is_ndimage_and_opencv_bottom_right_is_torch(shape):
    image, kernel = _image(seed=5), _kernel(shape, seed=6)
    np.testing.assert_allclose(
        convcli.filter(image, kernel, padding="same", same_extra="top-left"),
        ndi.correlate(image, kernel, mode="constant"),
        atol=1e-12,
    )
    cv2 = pytest.importorskip("cv2")
    opencv = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT)  # anchor (-1, -1): the centre, k // 2
    np.testing.assert_allclose(convcli.filter(image, kernel, padding="same", same_extra="top-left"), opencv, atol=1e-12)
    torch = pytest.importorskip("torch")
    theirs = torch.nn.functional.conv2d(
        torch.tensor(image)[None, None], torch.tensor(kernel)[None, None], padding="same"
    )[0, 0].numpy()
    np.testing.assert_allclose(convcli.filter(image, kernel, padding="same"), theirs, atol=1e-12)
    np.testing.assert_allclose(
        convcli.filter(image, kernel, padding="same", same_extra="bottom-right"), theirs, atol=1e-12
    )


def test_same_extra_with_dilation_splits_the_dilated_span():
    # A 2-tap kernel with dilation 3 spans 4: 'same' pads 3 in all, 1 before and 2 after (PyTorch) or 2 and 1.
    assert resolve_padding("same", (2, 2), (3, 3)) == ((1, 2), (1, 2))
    assert resolve_padding("same", (2, 2), (3, 3), same_extra="top-left") == ((2, 1), (2, 1))
    image = _image((6, 6))
    ours = convcli.filter(image, [[1.0, 0.0]], padding="same", same_extra="top-left", dilation=3)
    # out[i, j] = x[i, j - 2] (the tap 0 of the window starting two columns left), zeros beyond the edge.
    expected = np.zeros_like(image)
    expected[:, 2:] = image[:, :-2]
    np.testing.assert_array_equal(ours, expected)


# ---------------------------------------------------------------------------
# Origins with explicit padding, strides and dilations: a naive loop in which the origin moves the window


def _naive(image, kernel, stride, sides, dilation, origin, mode, value):
    """out[i, j] = sum K[u, v] X[i*sh + u*dh - top - oy, j*sw + v*dw - left - ox]; the size from the padding."""
    (top, bottom), (left, right) = sides
    rows, cols = image.shape
    kh, kw = kernel.shape
    out_rows = (rows + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_cols = (cols + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((out_rows, out_cols))
    for i in range(out_rows):
        for j in range(out_cols):
            total = 0.0
            for u in range(kh):
                for v in range(kw):
                    r = border_index(i * stride[0] + u * dilation[0] - top - origin[0], rows, mode)
                    c = border_index(j * stride[1] + v * dilation[1] - left - origin[1], cols, mode)
                    inside = r is not None and c is not None
                    total += kernel[u, v] * (image[r, c] if inside else (value if mode == "constant" else 0.0))
            out[i, j] = total
    return out


@st.composite
def _geometries(draw):
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sides = tuple(draw(st.integers(0, 4)) for _ in range(4))
    top, bottom, left, right = sides
    if rows + top + bottom < dh * (kh - 1) + 1 or cols + left + right < dw * (kw - 1) + 1:
        top, left = top + dh * (kh - 1) + 1, left + dw * (kw - 1) + 1
    oy = draw(st.integers(-top, bottom))
    ox = draw(st.integers(-left, right))
    mode = draw(st.sampled_from(list(NDIMAGE_MODES)))
    method = draw(st.sampled_from(["auto", "direct", "fft"]))
    seed = draw(st.integers(0, 2**16))
    return (rows, cols), (kh, kw), (sh, sw), (dh, dw), ((top, bottom), (left, right)), (oy, ox), mode, method, seed


@settings(max_examples=150, deadline=None)
@given(_geometries())
def test_geometry_with_origin_and_sides_equals_a_naive_loop(case):
    size, shape, stride, dilation, sides, origin, mode, method, seed = case
    image, kernel = _image(size, seed), _kernel(shape, seed + 1)
    (top, bottom), (left, right) = sides
    ours = convcli.filter(
        image,
        kernel,
        stride=stride,
        dilation=dilation,
        padding=f"{top},{bottom},{left},{right}",
        origin=origin,
        pad_mode=mode,
        pad_value=0.25,
        method=method,
    )
    expected = _naive(image, kernel, stride, sides, dilation, origin, mode, 0.25)
    assert ours.shape == expected.shape == output_size(size, shape, stride=stride, padding=sides, dilation=dilation)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------
# Padding per side against PyTorch: F.pad, then the operation with no padding


def _torch():
    return pytest.importorskip("torch")


TORCH_MODES = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}


@pytest.mark.parametrize("mode", list(TORCH_MODES))
@pytest.mark.parametrize(
    ("sides", "stride", "dilation", "shape"),
    [
        ((0, 1, 0, 1), (1, 1), (1, 1), (2, 2)),
        ((2, 0, 1, 3), (2, 2), (1, 1), (3, 3)),
        ((1, 2, 3, 0), (2, 3), (2, 1), (3, 2)),
        ((3, 1, 0, 2), (3, 2), (1, 2), (1, 5)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sides_equal_torch_pad_then_conv2d(mode, sides, stride, dilation, shape, dtype):
    torch = _torch()
    image, kernel = _image((8, 10), 9).astype(dtype), _kernel(shape, 10)
    top, bottom, left, right = sides
    value = 0.5 if mode == "constant" else 0.0
    x = torch.tensor(image.astype(np.float64))[None, None]
    padded = (
        torch.nn.functional.pad(x, (left, right, top, bottom), mode=TORCH_MODES[mode], value=value)
        if mode
        in (
            "zeros",
            "constant",
        )
        else torch.nn.functional.pad(x, (left, right, top, bottom), mode=TORCH_MODES[mode])
    )
    theirs = torch.nn.functional.conv2d(padded, torch.tensor(kernel)[None, None], stride=stride, dilation=dilation)
    for method in ("auto", "direct", "fft"):
        ours = convcli.filter(
            image,
            kernel,
            padding=f"{top},{bottom},{left},{right}",
            stride=stride,
            dilation=dilation,
            pad_mode=mode,
            pad_value=value,
            method=method,
        )
        tolerance = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(ours, theirs[0, 0].numpy(), rtol=tolerance, atol=tolerance, err_msg=method)
    # The same amounts in F.pad's own order.
    same = convcli.filter(
        image,
        kernel,
        padding=f"torch:{left},{right},{top},{bottom}",
        stride=stride,
        dilation=dilation,
        pad_mode=mode,
        pad_value=value,
    )
    np.testing.assert_allclose(same, theirs[0, 0].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["separable", "box"])
def test_sides_with_separable_and_box_methods_equal_the_naive_loop(method):
    image = _image((9, 11), 12)
    kernel = np.full((3, 4), 0.5) if method == "box" else np.outer([1.0, -2.0, 0.5], [0.25, 1.0, -1.0, 2.0])
    for stride in ((1, 1), (2, 3)):
        ours = convcli.filter(image, kernel, padding="3,0,1,2", stride=stride, pad_mode="symmetric", method=method)
        expected = _naive(image, kernel, stride, ((3, 0), (1, 2)), (1, 1), (0, 0), "symmetric", 0.0)
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("op", ["max", "mean", "min"])
@pytest.mark.parametrize(
    ("sides", "size", "stride"), [((0, 1, 0, 1), 2, 2), ((1, 0, 1, 1), 3, 2), ((1, 1, 0, 1), (3, 2), 1)]
)
def test_pool_sides_equal_torch_pad_then_pool(op, sides, size, stride):
    torch = _torch()
    image = _image((7, 8), 13)
    top, bottom, left, right = sides
    x = torch.tensor(image)[None, None]
    fill = {"max": -np.inf, "min": np.inf, "mean": 0.0}[op]
    padded = torch.nn.functional.pad(x, (left, right, top, bottom), value=fill)
    if op == "max":
        theirs = torch.nn.functional.max_pool2d(padded, size, stride)
    elif op == "min":
        theirs = -torch.nn.functional.max_pool2d(-padded, size, stride)
    else:  # zeros padding counted: the divisor is the whole window, as avg_pool2d of the padded input
        theirs = torch.nn.functional.avg_pool2d(padded, size, stride)
    ours = convcli.pool(image, size, stride=stride, padding=f"{top},{bottom},{left},{right}", op=op)
    np.testing.assert_allclose(ours, theirs[0, 0].numpy(), atol=1e-12)
    assert ours.shape == output_size((7, 8), size, stride=stride, padding=sides, op="pool")


def test_pool_sides_in_ceil_mode_and_without_counting_padding_equal_a_naive_loop():
    image = _image((5, 7), 14)
    top, left = 0, 1  # padding 0,1,1,0: rows 0 above and 1 below, columns 1 left and 0 right
    ours = convcli.pool(image, 3, stride=2, padding="0,1,1,0", op="mean", ceil_mode=True, count_include_pad=False)
    # Rows: ceil((5 + 0 + 1 - 3) / 2) + 1 = 3 (the last start, 4, is inside the input); columns:
    # ceil((7 + 1 + 0 - 3) / 2) + 1 = 4 (the last start, 6 - 1 = 5, is inside).
    assert ours.shape == output_size((5, 7), 3, stride=2, padding=((0, 1), (1, 0)), op="pool", ceil_mode=True) == (3, 4)
    expected = np.empty((3, 4))
    for i in range(3):
        for j in range(4):
            r0, c0 = 2 * i - top, 2 * j - left
            expected[i, j] = image[max(r0, 0) : min(r0 + 3, 5), max(c0, 0) : min(c0 + 3, 7)].mean()
    np.testing.assert_allclose(ours, expected, atol=1e-12)


@pytest.mark.parametrize(
    ("sides", "stride", "dilation", "shape"),
    [
        ((1, 0, 0, 1), (2, 2), (1, 1), (4, 4)),
        ((2, 1, 1, 3), (3, 2), (1, 2), (3, 3)),
        ((0, 2, 1, 0), (1, 1), (1, 1), (2, 3)),
    ],
)
def test_transpose_sides_equal_torch_conv_transpose_then_slice(sides, stride, dilation, shape):
    torch = _torch()
    image, kernel = _image((4, 5), 15), _kernel(shape, 16)
    top, bottom, left, right = sides
    full = torch.nn.functional.conv_transpose2d(
        torch.tensor(image)[None, None], torch.tensor(kernel)[None, None], stride=stride, dilation=dilation
    )[0, 0].numpy()
    theirs = full[top : full.shape[0] - bottom, left : full.shape[1] - right]
    ours = convcli.upsample(image, kernel, stride=stride, dilation=dilation, padding=f"{top},{bottom},{left},{right}")
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert ours.shape == output_size((4, 5), shape, stride=stride, padding=sides, dilation=dilation, op="transpose")


def test_transpose_with_sides_is_the_adjoint_of_the_conv_with_those_sides():
    rng = np.random.default_rng(17)
    kernel = rng.normal(size=(3, 4))
    x = rng.normal(size=(9, 8))
    sides = "2,0,1,3"
    y_shape = convcli.filter(x, kernel, stride=2, padding=sides).shape
    y = rng.normal(size=y_shape)
    back = convcli.upsample(y, kernel, stride=2, padding=sides)
    # the transposed size may fall short of x by what the stride drops; pad with output padding to match
    extra = (x.shape[0] - back.shape[0], x.shape[1] - back.shape[1])
    back = convcli.upsample(y, kernel, stride=2, padding=sides, output_padding=extra)
    assert back.shape == x.shape
    assert np.isclose(np.vdot(convcli.filter(x, kernel, stride=2, padding=sides), y), np.vdot(x, back))


# ---------------------------------------------------------------------------
# convcli shape: the report and its JSON for padding per side, against PyTorch's output shapes


@pytest.mark.parametrize(
    ("op", "args", "sides", "stride", "kernel"),
    [
        ("conv", ["--stride", "2"], (0, 1, 2, 0), 2, 3),
        ("conv", ["--stride", "3", "--dilation", "2"], (3, 1, 0, 2), 3, 2),
        ("pool", ["--stride", "2"], (1, 0, 0, 1), 2, 3),
        ("transpose", ["--stride", "2"], (1, 2, 0, 1), 2, 4),
    ],
)
def test_shape_reports_torch_output_shapes_for_sides(op, args, sides, stride, kernel):
    torch = _torch()
    top, bottom, left, right = sides
    run = run_cli(
        [
            "shape",
            "--op",
            op,
            "--input",
            "9x11",
            "--kernel",
            kernel,
            "--padding",
            ",".join(map(str, sides)),
            *args,
            "--json",
        ]
    )
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert record["padding"] == [[top, bottom], [left, right]]
    x = torch.zeros(1, 1, 9, 11)
    dilation = 2 if "--dilation" in args else 1
    if op == "conv":
        out = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, (left, right, top, bottom)),
            torch.zeros(1, 1, kernel, kernel),
            stride=stride,
            dilation=dilation,
        )
    elif op == "pool":
        out = torch.nn.functional.max_pool2d(torch.nn.functional.pad(x, (left, right, top, bottom)), kernel, stride)
    else:
        full = torch.nn.functional.conv_transpose2d(x, torch.zeros(1, 1, kernel, kernel), stride=stride)
        out = full[..., top : full.shape[2] - bottom, left : full.shape[3] - right]
    assert record["output"] == {"height": out.shape[2], "width": out.shape[3]}
    text = run_cli(
        ["shape", "--op", op, "--input", "9x11", "--kernel", kernel, "--padding", ",".join(map(str, sides)), *args]
    )
    assert f"padding {top},{bottom}x{left},{right}" in text.stdout
    assert f"{top} + {bottom}" in text.stdout and f"{left} + {right}" in text.stdout


def test_shape_stack_takes_sides_in_layer_specs_and_the_receptive_field_follows():
    run = run_cli(["shape", "--input", "8", "conv:k=3,p=2,0,0,2", "--json"])
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    (layer,) = record["layers"]
    assert layer["padding"] == [[2, 0], [0, 2]] and record["output"] == {"height": 8, "width": 8}
    # Output (0, 0) reads rows -2..0 (two padding rows above) and columns 0..2: centre (-1, 1).
    assert layer["field_start"] == [-2, 0] and layer["centre"] == [-1, 1]
    text = run_cli(["shape", "--input", "8", "conv:k=3,p=2,0,0,2"]).stdout
    assert "conv:k=3,p=2,0,0,2" in text and "(-1, 1)" in text


# ---------------------------------------------------------------------------
# The command line: the same numbers as the library, and one-line errors (exit 2) for bad values


def test_filter_cli_origin_same_extra_and_sides_equal_the_library(tmp_path):
    image = _image((6, 7), 18).round(3)
    source = tmp_path / "in.npy"
    np.save(source, image)
    kernel = "1 2; 3 4"
    for args, options in [
        (["--padding", "same", "--same-extra", "top-left"], dict(padding="same", same_extra="top-left")),
        (["--padding", "same", "--origin", "1,1"], dict(padding="same", origin=(1, 1))),
        (
            ["--padding", "same", "--same-extra", "top-left", "--origin", "-1,0"],
            dict(padding="same", same_extra="top-left", origin=(-1, 0)),
        ),
        (
            ["--padding", "0,2,1,1", "--stride", "2", "--pad-mode", "mirror"],
            dict(padding=((0, 2), (1, 1)), stride=2, pad_mode="reflect"),
        ),
        (["--padding", "torch:1,1,0,2", "--origin", "1,0"], dict(padding=((0, 2), (1, 1)), origin=(1, 0))),
    ]:
        out = tmp_path / "out.npy"
        run = run_cli(["filter", source, "-k", kernel, *args, "-o", out])
        assert run.exit_code == 0, run
        np.testing.assert_allclose(np.load(out), convcli.filter(image, kernel, **options), atol=1e-12)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--padding", "1,2,3"], ["padding '1,2,3' has 3 values", "TOP,BOTTOM,LEFT,RIGHT"]),
        (["--padding", "1,2,3,4,5"], ["has 5 values"]),
        (["--padding", "0,-1,0,0"], ["padding 0,-1,0,0 (top,bottom,left,right) must be at least 0 on each side"]),
        (["--padding", "-1"], ["padding -1x-1 must be at least 0"]),
        (["--padding", "torch:1,2"], ["torch: takes four, LEFT,RIGHT,TOP,BOTTOM"]),
        (["--padding", "same", "--origin", "2,0"], ["origin 2,0 is out of range", "rows take -1..1"]),
        (["--padding", "same", "--origin", "0,-2"], ["columns -1..1"]),
        (["--padding", "1,0,0,0", "--origin", "0,1"], ["origin 0,1 is out of range", "columns 0..0"]),
        (["--origin", "1,0"], ["rows take 0..0"]),
        (["--origin", "1,2,3"], ["origin '1,2,3' has 3 values"]),
        (["--origin", "up"], ["origin 'up' is not Y,X"]),
        (["--same-extra", "top-left"], ["--same-extra top-left places the extra row/column of --padding same"]),
        (["--padding", "1", "--same-extra", "bottom-right"], ["add --padding same or drop --same-extra"]),
        (["--same-extra", "middle"], ["'middle' is not one of"]),
        (["--padding", "same", "--stride", "2"], ["padding 'same' needs stride 1"]),
    ],
)
def test_filter_geometry_errors_are_one_line_exit_2(tmp_path, args, fragments):
    source = tmp_path / "in.txt"
    source.write_text("1 2 3\n4 5 6\n7 8 9\n")
    assert_error(
        run_cli(["filter", source, "-k", "0 1 0; 1 1 1; 0 1 0", *args, "-o", tmp_path / "o.txt"]), 2, *fragments
    )
    assert not (tmp_path / "o.txt").exists()


@pytest.mark.parametrize(
    ("command", "args", "fragments"),
    [
        ("pool", ["--size", "2", "--padding", "2,0,0,0"], ["pooling padding 2,0 is more than half the kernel size 2"]),
        ("pool", ["--padding", "0,1,2"], ["has 3 values"]),
        ("pool", ["--padding", "same"], ["'same' is only for convolution"]),
        ("upsample", ["-k", "bilinear", "--padding", "1,1"], None),
        ("upsample", ["-k", "bilinear", "--output-padding", "1"], ["output padding 1x1 goes with an explicit padding"]),
        ("upsample", ["-k", "bilinear", "--padding", "valid"], ["'valid' is only for convolution"]),
        ("shape", ["--input", "5", "--kernel", "3", "--padding", "1,2,3"], ["has 3 values"]),
        ("shape", ["--input", "5", "conv:k=3,p=1,2,3"], ["has 3 values"]),
    ],
)
def test_other_commands_padding_errors(tmp_path, command, args, fragments):
    source = tmp_path / "in.txt"
    source.write_text("1 2 3 4\n5 6 7 8\n9 10 11 12\n")
    full = [command, *([] if command == "shape" else [source, "-o", tmp_path / "o.txt"]), *args]
    run = run_cli(full)
    if fragments is None:  # a valid spelling, for contrast
        assert run.exit_code == 0, run
        return
    assert_error(run, 2, *fragments)


def test_library_errors_name_the_parameter():
    with pytest.raises(ShapeError, match=r"origin 0,2 is out of range for the 3x3 kernel"):
        convcli.filter(np.ones((4, 4)), np.ones((3, 3)), padding="same", origin=(0, 2))
    with pytest.raises(ParameterError, match="places the extra row/column of padding 'same'"):
        convcli.filter(np.ones((4, 4)), np.ones((2, 2)), padding=1, same_extra="top-left")
    with pytest.raises(ParameterError, match="same_extra 'left' is not one of bottom-right, top-left"):
        convcli.filter(np.ones((4, 4)), np.ones((2, 2)), padding="same", same_extra="left")
    with pytest.raises(ParameterError, match="origin"):
        convcli.filter(np.ones((4, 4)), np.ones((2, 2)), padding="same", origin=(1, 2, 3))
    with pytest.raises(ParameterError, match="give 1, 2 or 4 whole numbers"):
        convcli.filter(np.ones((4, 4)), np.ones((2, 2)), padding=(1, 2, 3))
    assert parse_padding((1, 2, 3, 4)) == ((1, 2), (3, 4)) == parse_padding(((1, 2), (3, 4)))
    assert parse_padding("1/1/2/2") == (1, 2)


def test_real_imagemagick_and_vips_place_an_even_kernel_as_documented(tmp_path):
    """The docs' placement table: ImageMagick's origin of a 2-wide kernel is column 0 (the extra column right, as
    PyTorch); libvips centres it on column 1 (the extra column left, as SciPy and OpenCV)."""
    row = np.array([[0.0, 0.0, 100.0, 0.0, 0.0]])
    kernel = [[1.0, 0.0]]
    if shutil.which("convert"):
        (tmp_path / "d.pgm").write_text("P2\n5 1\n255\n0 0 100 0 0\n")
        done = subprocess.run(
            ["convert", str(tmp_path / "d.pgm"), "-morphology", "Correlate", "2x1: 1,0", "-compress", "none", "pgm:-"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        magick = np.array([[float(v) for v in done.stdout.split()[4:]]])
        np.testing.assert_array_equal(magick, convcli.filter(row, kernel, padding="same", same_extra="bottom-right"))
    if shutil.which("vips"):
        (tmp_path / "img.mat").write_text("5 1 1 0\n0 0 100 0 0\n")
        (tmp_path / "k.mat").write_text("2 1 1 0\n1 0\n")
        for args in (
            ["matrixload", "img.mat", "img.v"],
            ["conv", "img.v", "o.v", "k.mat", "--precision", "float"],
            ["csvsave", "o.v", "o.csv"],
        ):
            subprocess.run(["vips", *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)
        vips = np.array([[float(v) for v in (tmp_path / "o.csv").read_text().split()]])
        # vips replicates the edge; the single bright pixel is away from it.
        np.testing.assert_array_equal(vips, convcli.filter(row, kernel, padding="same", same_extra="top-left"))
    if not (shutil.which("convert") or shutil.which("vips")):
        pytest.skip("neither ImageMagick's convert nor libvips' vips is installed")


# ---------------------------------------------------------------------------
# upsample: a named kernel with no padding gives exactly factor x the size (issue 18)


@pytest.mark.parametrize("name", ["bilinear", "nearest"])
@pytest.mark.parametrize("stride", [(2, 2), (3, 3), (4, 4), (2, 3), (1, 1)])
def test_named_kernels_with_no_padding_give_exactly_stride_times_the_size_as_torch(name, stride):
    from convcli.api.checks import upsample_settings
    from convcli.api.upsampling import upsample_padding, upsampling_kernel

    torch = _torch()
    image = _image((5, 6), 19)
    kernel = upsampling_kernel(name, stride)
    settings = upsample_settings(stride=stride, padding="auto")
    padding, extra = upsample_padding(kernel, settings)
    ours = convcli.upsample(image, name, stride=stride)
    assert ours.shape == (5 * stride[0], 6 * stride[1])
    pads = resolve_padding(padding, kernel.shape)
    if pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]:  # PyTorch can say it: padding and output_padding
        theirs = torch.nn.functional.conv_transpose2d(
            torch.tensor(image)[None, None],
            torch.tensor(np.asarray(kernel.weights))[None, None],
            stride=stride,
            padding=(pads[0][0], pads[1][0]),
            output_padding=extra,
        )[0, 0].numpy()
    else:
        full = torch.nn.functional.conv_transpose2d(
            torch.tensor(image)[None, None], torch.tensor(np.asarray(kernel.weights))[None, None], stride=stride
        )[0, 0].numpy()
        theirs = full[pads[0][0] : full.shape[0] - pads[0][1], pads[1][0] : full.shape[1] - pads[1][1]]
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_named_kernels_at_a_stride_of_their_own_choose_padding_and_output_padding():
    for spec, stride in (("bilinear:3", 2), ("bilinear:2", 3), ("nearest:2", 3), ("nearest:3", 2)):
        assert convcli.upsample(np.ones((4, 5)), spec, stride=stride).shape == (4 * stride, 5 * stride), spec


def test_upsample_cli_chooses_the_padding_says_so_and_keeps_explicit_padding(tmp_path):
    source = tmp_path / "big.npy"
    np.save(source, np.zeros((512, 512), dtype=np.float32))
    run = run_cli(["upsample", source, "-k", "bilinear", "--stride", "2", "-o", tmp_path / "up.npy"])
    assert run.exit_code == 0, run
    assert np.load(tmp_path / "up.npy").shape == (1024, 1024)
    assert (
        "-k bilinear:2 at stride 2 with no --padding: padding 1x1 chosen, making exactly 2 times the input size"
        in run.stderr
    )
    run = run_cli(["upsample", source, "-k", "bilinear", "--stride", "2", "--padding", "0", "-o", tmp_path / "pt.npy"])
    assert run.exit_code == 0, run
    assert np.load(tmp_path / "pt.npy").shape == (1026, 1026) and "chosen" not in run.stderr
    quiet = run_cli(["upsample", source, "-k", "bilinear", "-q", "-o", tmp_path / "q.npy"])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet
    own = run_cli(["upsample", source, "-k", "1 1; 1 1", "--stride", "2", "-o", tmp_path / "own.npy"])
    assert own.exit_code == 0 and "chosen" not in own.stderr, own
    assert np.load(tmp_path / "own.npy").shape == (1024, 1024)  # a 2x2 kernel at stride 2: PyTorch's 2n


def test_upsample_cli_output_size_uses_the_chosen_padding(tmp_path):
    source = tmp_path / "x.txt"
    source.write_text("1 2 3\n4 5 6\n7 8 9\n")
    run = run_cli(["upsample", source, "-k", "bilinear", "--output-size", "7x6", "--json", "-o", tmp_path / "o.txt"])
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert (
        record["output"] == {"height": 7, "width": 6}
        and record["padding"] == [1, 1]
        and record["output_padding"] == [1, 0]
    )


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("filter", ["-k", "gaussian:5", "--padding", "same", "--origin", "1,-1"]),
        ("filter", ["-k", "vertical", "--padding", "0,3,2,1", "--stride", "2"]),
        ("filter", ["-k", "1 2; 3 4", "--padding", "same", "--same-extra", "top-left"]),
        ("pool", ["--op", "mean", "--size", "3", "--padding", "1,0,0,1", "--ceil-mode"]),
        ("pool", ["--op", "max", "--size", "2", "--padding", "0,1,1,0"]),
    ],
)
def test_streamed_runs_place_the_window_as_in_memory(tmp_path, command, args):
    source = tmp_path / "in.npy"
    np.save(source, np.random.default_rng(20).uniform(size=(90, 40)).astype(np.float32))
    whole = run_cli([command, source, *args, "-o", tmp_path / "whole.npy"])
    streamed = run_cli([command, source, *args, "--stream", "--strip-rows", "8", "-o", tmp_path / "strips.npy"])
    assert whole.exit_code == 0 and streamed.exit_code == 0, (whole, streamed)
    np.testing.assert_array_equal(np.load(tmp_path / "strips.npy"), np.load(tmp_path / "whole.npy"))
