"""The effective receptive field against closed forms (stacked boxes are binomial-like) and PyTorch autograd."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from convcli.errors import ParameterError
from convcli.teach.effective import effective_receptive_field
from convcli.teach.layers import parse_layer


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_stacked_ones_are_the_self_convolution_of_the_box(count):
    size = 4 * count + 5
    field = effective_receptive_field([parse_layer("conv:k=3")] * count, (size, size))
    box = np.ones((3, 3))
    expected = box
    for _ in range(count - 1):
        expected = signal.convolve2d(expected, box)
    span = 2 * count + 1
    centre = field.pixel[0]  # stride 1, no padding: output pixel i reads input i .. i + 2n
    window = field.weights[centre : centre + span, centre : centre + span]
    np.testing.assert_array_equal(window, expected)
    assert field.weights.sum() == 9**count
    assert field.theoretical == ((centre, centre + span - 1),) * 2
    one_axis = expected[count]
    assert one_axis.tolist() == sorted(one_axis.tolist()[: count + 1]) + sorted(
        one_axis.tolist()[count + 1 :], reverse=True
    )


def test_radii_grow_with_depth_slower_than_the_theoretical_field():
    radii = [effective_receptive_field([parse_layer("conv:k=3")] * n, (41, 41)).radius_50 for n in (2, 4, 8, 16)]
    assert radii == sorted(radii)
    # the effective radius grows like sqrt(n) while the theoretical field grows like n
    assert radii[3] / radii[1] < 2.9


STACKS = [
    ["conv:k=3,p=1", "conv:k=3,s=2,p=1", "conv:k=3,d=2"],
    ["conv:k=7,s=2,p=3", "pool:k=3,s=2,p=1", "conv:k=3,p=1"],
    ["conv:k=4,p=same", "conv:k=2,s=2"],  # even 'same': the extra row and column at the bottom/right
    ["pool:k=2", "transpose:k=3,s=2,p=1,op=1", "conv:k=3"],
    ["conv:k=3x1,s=1x2,p=1x0", "pool:k=3,s=2,ceil", "transpose:k=2,s=2"],
]


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: " ".join(s))
def test_equals_pytorch_autograd(stack):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    layers = [parse_layer(spec) for spec in stack]
    size = (23, 21)
    rng = np.random.default_rng(0)
    kernels = [rng.standard_normal(layer.kernel) for layer in layers if layer.op != "pool"]
    field = effective_receptive_field(layers, size, kernels=kernels)
    x = torch.zeros((1, 1, *size), dtype=torch.float64, requires_grad=True)
    y = x
    supplied = iter(kernels)
    for layer in layers:
        if layer.op == "pool":
            (top, _), (left, _) = ((layer.padding[0],) * 2, (layer.padding[1],) * 2)
            y = functional.avg_pool2d(
                y, layer.kernel, layer.stride, (top, left), ceil_mode=layer.ceil_mode, count_include_pad=True
            )
            continue
        weight = torch.from_numpy(next(supplied))[None, None]
        if layer.op == "conv":
            padding = layer.padding if isinstance(layer.padding, str) else tuple(layer.padding)
            with warnings.catch_warnings():  # torch notes that even 'same' kernels pad a copy
                warnings.simplefilter("ignore", UserWarning)
                y = functional.conv2d(y, weight, stride=layer.stride, padding=padding, dilation=layer.dilation)
        else:
            y = functional.conv_transpose2d(
                y,
                weight,
                stride=layer.stride,
                padding=layer.padding,
                output_padding=layer.output_padding,
                dilation=layer.dilation,
            )
    y[0, 0, field.pixel[0], field.pixel[1]].backward()
    np.testing.assert_allclose(field.weights, x.grad[0, 0].numpy(), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.integers(8, 20))
def test_one_conv_layer_is_its_kernel_where_it_fits(k, s, p, d, n):
    layer = parse_layer(f"conv:k={k},s={s},p={p},d={d}")
    try:
        field = effective_receptive_field([layer], (n, n), pixel=(1, 1))
    except Exception as exc:  # the layer does not fit the input, or the pixel is outside
        assert type(exc).__name__ in ("ShapeError", "ParameterError")
        return
    origin = s - p  # output 1 reads input rows s - p + t*d
    taps = [origin + t * d for t in range(k)]
    inside = [t for t in taps if 0 <= t < n]
    assert field.weights.sum() == len(inside) ** 2
    for row in inside:
        for col in inside:
            assert field.weights[row, col] == 1


def test_errors_name_the_problem():
    with pytest.raises(ParameterError, match="outside the output"):
        effective_receptive_field([parse_layer("conv:k=3")], (5, 5), pixel=(3, 0))
    with pytest.raises(ParameterError, match="1 kernels for 2"):
        effective_receptive_field([parse_layer("conv:k=3")] * 2, (9, 9), kernels=[np.ones((3, 3))])
    with pytest.raises(ParameterError, match="is 2x2 but layer 1"):
        effective_receptive_field([parse_layer("conv:k=3")], (9, 9), kernels=[np.ones((2, 2))])


def test_shape_effective_through_the_cli(tmp_path):
    import json

    from conftest import assert_error, run_cli

    run = run_cli(["shape", "--input", "9", "conv:k=3", "conv:k=3", "--effective", "--json"])
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)["effective"]
    # the middle output (2, 2) of 5x5 reads input rows and columns 2..6 with 1 2 3 2 1 per axis: 81 in all
    assert record["pixel"] == [2, 2] and record["centre"] == [4.0, 4.0] and record["total_weight"] == 81.0
    assert record["theoretical"] == {"rows": [2, 6], "columns": [2, 6]}
    text = run_cli(["shape", "--input", "9", "conv:k=3", "conv:k=3", "--effective", "--pixel", "0x0"])
    assert "effective receptive field of output (0, 0): centre (2.00, 2.00)" in text.stdout, text
    weighted = run_cli(
        ["shape", "--input", "9", "conv:k=3", "--effective", "--layer-kernel", "0 0 0; 0 1 0; 0 0 0", "--json"]
    )
    assert json.loads(weighted.stdout)["effective"]["total_weight"] == 1.0, weighted
    figure = tmp_path / "erf.png"
    drawn = run_cli(["shape", "--input", "17", "conv:k=3", "conv:k=3", "--effective", "--figure", figure])
    assert drawn.exit_code == 0 and figure.read_bytes().startswith(b"\x89PNG"), drawn
    assert_error(run_cli(["shape", "--input", "9", "conv:k=3", "--layer-kernel", "1"]), 2, "--effective")
    assert_error(
        run_cli(["shape", "--input", "9", "conv:k=3", "--effective", "--layer-kernel", "1 1"]), 2, "is 1x2 but layer 1"
    )
    assert_error(
        run_cli(["shape", "--input", "9", "conv:k=3", "--effective", "--pixel", "7x0"]), 2, "outside the output"
    )
