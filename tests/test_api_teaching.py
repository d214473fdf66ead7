"""The teaching half of the public API (explain, learn, receptive_field, figure, output_size) and its commands.

Each command must print exactly ``str()`` of its API record and give the same
arrays; the sizes are checked against the one-axis formulas, hand-computed
cases and PyTorch; the notebook reprs must be real HTML and PNG.
"""

from __future__ import annotations

import html.parser
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convcli
from conftest import SAMPLES, run_cli
from convcli.api.files import load_settings
from convcli.api.learning import kernel_size_for
from convcli.api.receptive_fields import describe_layer
from convcli.api.settings import ReadSettings
from convcli.engine import correlate2d
from convcli.errors import KernelError, OutputError, ParameterError, ShapeError, UnknownKernelError
from convcli.kernels import parse_kernel_spec
from convcli.shapes import conv_output_length, pool_output_length, transpose_output_length
from convcli.teach.fits import ROUNDING_LEVEL, format_loss, rounding_floor, unit_roundoff
from convcli.teach.layers import parse_layer
from convcli.teach.learn_lesson import lesson_image, lesson_target
from convcli.teach.stacks import dependency_set, run_stack

X = str(SAMPLES / "x.txt")
EDGES = str(SAMPLES / "edges.txt")
CHELSEA = str(SAMPLES / "chelsea.png")
CAMERA = str(SAMPLES / "camera.png")


def ok(args: list, input: bytes | None = None):
    result = run_cli(args, input=input)
    assert result.exit_code == 0, result
    return result


def cli_error(args: list) -> str:
    """The one error line of a failing command, without its ``convcli CMD: error: `` prefix."""
    result = run_cli(args)
    assert result.exit_code != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result
    return lines[0].split(": error: ", 1)[1]


def loaded(path: str, **read) -> np.ndarray:
    return load_settings(path, ReadSettings(**read)).array


class _Cells(html.parser.HTMLParser):
    """Collects the text of every <td>, the tags seen and their style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.styles: list[str] = []
        self.tags: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "td":
            self._in_cell = True
            self.cells.append("")
            self.styles.append(dict(attrs).get("style", ""))

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def parse_html(text: str) -> _Cells:
    parser = _Cells()
    parser.feed(text)
    parser.close()
    return parser


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# ---------------------------------------------------------------------------
# output_size


def test_output_size_by_hand():
    assert convcli.output_size(5, 3, stride=3) == 1  # windows start at 0 only: 3 would end at 5
    assert convcli.output_size((5, 7), 3) == (3, 5)
    assert convcli.output_size((224, 224), (7, 7), stride=2, padding=3) == (112, 112)
    assert convcli.output_size(6, 2, padding="same") == 6
    assert convcli.output_size(6, 3, padding="valid") == 4
    assert convcli.output_size(7, 3, dilation=2) == 3  # span 5: starts 0, 1, 2
    # pool: stride defaults to the kernel; ceil mode adds the window at 3 (3 < 5 + 0)
    assert convcli.output_size(5, 3, stride=None, op="pool") == 1
    assert convcli.output_size(5, 3, stride=3, op="pool", ceil_mode=True) == 2
    # ceil mode, padding 1 on 4: ceil((4 + 2 - 2)/2) + 1 = 3; the last window starts at 2*2 = 4 < 4 + 1: kept
    assert convcli.output_size(4, 2, stride=2, padding=1, op="pool", ceil_mode=True) == 3
    # and on 5: ceil((5 + 2 - 2)/2) + 1 = 4; the last starts at 3*2 = 6 >= 5 + 1: dropped -> 3
    assert convcli.output_size(5, 2, stride=2, padding=1, op="pool", ceil_mode=True) == 3
    # transpose: (4 - 1)*2 - 2*1 + (3 - 1) + 1 + 1 = 8
    assert convcli.output_size(4, 3, stride=2, padding=1, output_padding=1, op="transpose") == 8
    assert convcli.output_size((2, 3), (2, 1), stride=(2, 3), op="transpose") == (4, 7)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(0, 3),
    st.integers(1, 3),
    st.booleans(),
    st.integers(0, 3),
)
def test_output_size_is_the_one_axis_formulas(n, k, s, p, d, ceil, op_pad):
    def outcome(function, *args):
        try:
            return function(*args)
        except ShapeError as exc:
            return type(exc)

    assert outcome(lambda: convcli.output_size(n, k, stride=s, padding=p, dilation=d)) == outcome(
        conv_output_length, n, k, s, p, p, d
    )
    assert outcome(
        lambda: convcli.output_size(n, k, stride=s, padding=p, dilation=d, op="pool", ceil_mode=ceil)
    ) == outcome(pool_output_length, n, k, s, p, d, ceil)
    assert outcome(
        lambda: convcli.output_size(n, k, stride=s, padding=p, dilation=d, op="transpose", output_padding=op_pad)
    ) == outcome(transpose_output_length, n, k, s, p, d, op_pad)


def _torch_size(torch, op, n, k, s, p, d, ceil, op_pad):
    """PyTorch's output length on a (1, 1, n, n) input, or None when PyTorch refuses."""
    x = torch.zeros(1, 1, n, n)
    try:
        if op == "conv":
            out = torch.nn.functional.conv2d(x, torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
        elif op == "pool":
            out = torch.nn.functional.max_pool2d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        else:
            out = torch.nn.functional.conv_transpose2d(
                x, torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d, output_padding=op_pad
            )
    except RuntimeError:
        return None
    return int(out.shape[-1])


@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(["conv", "pool", "transpose"]),
    st.integers(1, 20),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(0, 3),
    st.integers(1, 3),
    st.booleans(),
    st.integers(0, 3),
)
def test_output_size_matches_pytorch(op, n, k, s, p, d, ceil, op_pad):
    torch = pytest.importorskip("torch")
    ceil = ceil and op == "pool"
    op_pad = op_pad if op == "transpose" else 0
    expected = _torch_size(torch, op, n, k, s, p, d, ceil, op_pad)
    options = dict(stride=s, padding=p, dilation=d, op=op, ceil_mode=ceil, output_padding=op_pad)
    if expected is None or expected < 1:
        with pytest.raises(ShapeError):
            convcli.output_size(n, k, **options)
    else:
        assert convcli.output_size(n, k, **options) == expected
        assert convcli.output_size((n, n), (k, k), **options) == (expected, expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(4, 20), st.integers(4, 20), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2))
def test_output_size_pairs_are_two_axes(h, w, kh, kw, s):
    assert convcli.output_size((h, w), (kh, kw), stride=(s, 1), padding=(1, 0)) == (
        convcli.output_size(h, kh, stride=s, padding=1),
        convcli.output_size(w, kw, stride=1, padding=0),
    )


@pytest.mark.parametrize("n", [5, 8, 13])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
def test_same_padding_matches_pytorch(n, k, d):
    torch = pytest.importorskip("torch")
    out = torch.nn.functional.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), padding="same", dilation=d)
    assert convcli.output_size(n, k, padding="same", dilation=d) == out.shape[-1] == n


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (dict(input=5, kernel=0), ParameterError, "kernel size 0x0 must be at least 1 on each axis"),
        (dict(input=5, kernel=3, stride=0), ParameterError, "stride 0x0 must be at least 1 on each axis"),
        (dict(input=5, kernel=3, stride=1.5), ParameterError, "stride 1.5 must be an int or a pair of ints (H, W)"),
        (dict(input=5, kernel=3, padding=-1), ParameterError, "padding -1x-1 must be at least 0 on each axis"),
        (dict(input=0, kernel=3), ParameterError, "input size 0x0 must be at least 1 on each axis"),
        (dict(input=5, kernel=3, op="dense"), ParameterError, "op 'dense' is not one of conv, pool, transpose"),
        (dict(input=5, kernel=3, ceil_mode=True), ParameterError, "ceil_mode is only for op='pool', not 'conv'"),
        (
            dict(input=5, kernel=3, output_padding=1),
            ParameterError,
            "output_padding is only for op='transpose', not 'conv'",
        ),
        (
            dict(input=5, kernel=(3, 1)),
            ParameterError,
            "kernel (3, 1) is a pair but input 5 is one length; give input as (H, W)",
        ),
        (
            dict(input=5, kernel=3, padding="same", op="pool"),
            ParameterError,
            "padding 'same' is only for op='conv'; give pool padding as N or HxW",
        ),
        (
            dict(input=2, kernel=5),
            ShapeError,
            "kernel 5 is larger than the padded input 2 (2 + padding 0+0); use a smaller kernel or more padding",
        ),
        (
            dict(input=5, kernel=3, stride=2, padding="same"),
            ShapeError,
            "padding 'same' needs stride 1 (got 2x2), as in PyTorch; give the padding as N or HxW",
        ),
        (
            dict(input=5, kernel=3, padding=2, op="pool"),
            ShapeError,
            "pooling padding 2 is more than half the kernel size 3; use padding <= 1",
        ),
        (
            dict(input=4, kernel=3, stride=2, output_padding=2, op="transpose"),
            ShapeError,
            "output padding 2 must be smaller than the stride (2) or the dilation (1)",
        ),
    ],
)
def test_output_size_errors_name_the_parameter(call, error, message):
    with pytest.raises(error) as info:
        convcli.output_size(**call)
    assert type(info.value) is error
    assert str(info.value) == message


def test_output_size_and_the_shape_command_say_the_same():
    # convcli shape prints the same one-line message for the same mistake
    with pytest.raises(ShapeError) as info:
        convcli.output_size(2, 5)
    assert str(info.value) in cli_error(["shape", "--input", 2, "--kernel", 5])
    assert ok(["shape", "--input", 5, "--kernel", 3, "--stride", 3, "--json"]).stdout
    record = json.loads(ok(["shape", "--input", "9x7", "--kernel", 3, "--op", "pool", "--ceil-mode", "--json"]).stdout)
    assert (record["output"]["height"], record["output"]["width"]) == convcli.output_size(
        (9, 7), 3, stride=None, op="pool", ceil_mode=True
    )


# ---------------------------------------------------------------------------
# receptive_field


STACKS = [
    ["conv:k=7,s=2,p=3", "pool:k=3,s=2,p=1", "conv:k=3,p=1", "conv:k=3,s=2,p=1"],
    ["conv:k=3,p=1", "conv:k=3,s=2"],
    ["conv:k=3,s=2,p=1", "transpose:k=3,s=2,p=1,op=1", "transpose:k=1,s=3"],
    ["pool:k=3,s=2,ceil", "conv:k=3x1,p=1x0,d=2", "conv:k=2,p=same"],
]


@pytest.mark.parametrize("stack", STACKS)
def test_receptive_field_is_what_shape_prints(stack):
    field = convcli.receptive_field(stack, (32, 30))
    assert ok(["shape", "--input", "32x30", *stack]).stdout == str(field) + "\n"
    assert json.loads(ok(["shape", "--input", "32x30", *stack, "--json"]).stdout) == field.to_dict()


def test_receptive_field_takes_specs_layers_and_files(tmp_path):
    by_strings = convcli.receptive_field(STACKS[0], 224)
    by_layers = convcli.receptive_field([parse_layer(spec) for spec in STACKS[0]], (224, 224))
    by_text = convcli.receptive_field("# resnet stem\n" + "\n".join(STACKS[0]) + "\n", 224)
    assert str(by_strings) == str(by_layers) == str(by_text)
    (tmp_path / "stem.txt").write_text("\n".join(STACKS[0]))
    assert ok(["shape", "--input", 224, "--layers", tmp_path / "stem.txt"]).stdout == str(by_strings) + "\n"
    one = convcli.receptive_field("conv:k=3", 5)
    assert one.output == (3, 3) and one.field == (3, 3)
    # ResNet stem by the textbook recurrence: rf 7, then 7 + 2*2 = 11, 11 + 2*4 = 19, 19 + 2*4 = 27
    assert [row.field[0] for row in by_strings.rows] == [7, 11, 19, 27]
    assert [int(row.jump[0]) for row in by_strings.rows] == [2, 4, 4, 8]
    assert by_strings.output == (28, 28)


def test_receptive_field_without_an_input_size():
    field = convcli.receptive_field(STACKS[0])
    sized = convcli.receptive_field(STACKS[0], 224)
    assert field.output is None and all(row.output is None for row in field.rows)
    assert [(r.field, r.jump, r.start) for r in field.rows] == [(r.field, r.jump, r.start) for r in sized.rows]
    assert field.to_dict()["input"] is None


def test_receptive_field_errors():
    with pytest.raises(ParameterError, match=r"^layer 'dense:k=3': unknown layer type 'dense'"):
        convcli.receptive_field("dense:k=3", 8)
    with pytest.raises(ShapeError) as info:
        convcli.receptive_field(["conv:k=3", "conv:k=5"], 6)
    assert str(info.value) == cli_error(["shape", "--input", 6, "conv:k=3", "conv:k=5"])
    assert str(info.value).startswith("layer 2 (conv:k=5) on 4x4: kernel 5")
    with pytest.raises(ParameterError, match="layers is empty"):
        convcli.receptive_field([], 8)
    with pytest.raises(ParameterError, match="is not a spec"):
        convcli.receptive_field([3], 8)


layer_strategy = st.builds(
    lambda op, k, s, p, d, extra: parse_layer(
        f"{op}:k={k},s={s},p={min(p, k // 2) if op == 'pool' else p},d={d}"
        + (f",op={extra % max(s, d)}" if op == "transpose" else "")
    ),
    st.sampled_from(["conv", "pool", "transpose"]),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
    st.integers(0, 2),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(layer_strategy, min_size=1, max_size=5))
def test_linear_fields_equal_the_backward_dependency_sets(layers):
    rows = run_stack(layers, None)
    for number, row in enumerate(rows, start=1):
        for axis in range(2):
            positions = dependency_set(layers[:number], axis, 0)
            if positions:
                assert row.start[axis] == min(positions)
                assert row.field[axis] == max(positions) - min(positions) + 1
            else:
                assert row.field[axis] is None and row.start[axis] is None


def test_receptive_field_is_linear_in_the_layers():
    # 1000 3x3 convs, padding 1: each adds 2 to the field (hand computed: 2*1000 + 1). The old
    # per-prefix backward walk was cubic here (minutes); the period walk takes milliseconds.
    start = time.perf_counter()
    field = convcli.receptive_field(["conv:k=3,p=1"] * 1000, 64)
    assert time.perf_counter() - start < 5.0
    assert field.field == (2001, 2001) and field.start == (-1000, -1000) and field.output == (64, 64)


def test_receptive_field_html():
    field = convcli.receptive_field(STACKS[0], 224)
    parsed = parse_html(field._repr_html_())
    assert parsed.tags.count("tr") == 1 + 1 + len(STACKS[0])  # header, input, layers
    assert "conv:k=7,s=2,p=3" in parsed.cells and "112x112" in parsed.cells and "27" in parsed.cells


def test_describe_layer_is_what_shape_prints():
    for args, layer, size in [
        (["--kernel", 3, "--stride", 3], "conv:k=3,s=3", 5),
        (
            ["--op", "transpose", "--kernel", 3, "--stride", 2, "--padding", 1, "--output-padding", 1],
            "transpose:k=3,s=2,p=1,op=1",
            4,
        ),
        (["--op", "pool", "--kernel", 3, "--stride", 2, "--ceil-mode"], "pool:k=3,s=2,ceil", 8),
    ]:
        description = describe_layer(layer, size)
        assert ok(["shape", "--input", size, *args]).stdout == str(description) + "\n"
        assert json.loads(ok(["shape", "--input", size, *args, "--json"]).stdout) == description.to_dict()
    with pytest.raises(ParameterError, match="is not one spec"):
        describe_layer("conv:k=3\nconv:k=3", 5)


# ---------------------------------------------------------------------------
# explain


@pytest.mark.parametrize(
    ("path", "spec", "args", "options"),
    [
        (X, "0 1; 2 3", [], {}),
        (X, "0 1; 2 3", ["--padding", 1, "--stride", 2], dict(padding=1, stride=2)),
        (X, "0 1; 2 3", ["--convolve", "--matrix"], dict(convolve=True, matrix=True)),
        (
            X,
            "1 -1",
            ["--pad-mode", "mirror", "-p", "1x0", "-d", "2"],
            dict(pad_mode="mirror", padding=(1, 0), dilation=2),
        ),
        (EDGES, "diff-x", [], {}),
        (
            EDGES,
            "1 0; 0 -1",
            ["--padding", "same", "--pad-mode", "constant", "--pad-value", "-2"],
            dict(padding="same", pad_mode="constant", pad_value=-2.0),
        ),
    ],
)
def test_explain_api_and_cli_agree(path, spec, args, options):
    image = loaded(path, normalize="none")
    explanation = convcli.explain(image, spec, name=path, **options)
    assert ok(["explain", path, "-k", spec, *args]).stdout == str(explanation) + "\n"
    kernel = parse_kernel_spec(spec).weights
    flipped = kernel[::-1, ::-1] if options.get("convolve") else kernel
    expected = correlate2d(
        image.astype(np.float64),
        flipped,
        stride=options.get("stride", 1),
        padding=options.get("padding", 0),
        dilation=options.get("dilation", 1),
        pad_mode=options.get("pad_mode", "zeros"),
        pad_value=options.get("pad_value", 0.0),
        method="direct",
    )
    np.testing.assert_allclose(explanation.output, expected, rtol=1e-12, atol=1e-12)


def test_explain_by_hand_and_kernel_forms():
    image = np.arange(9).reshape(3, 3)
    by_spec = convcli.explain(image, "0 1; 2 3")
    by_list = convcli.explain(image.tolist(), [[0, 1], [2, 3]])
    by_kernel = convcli.explain(image, parse_kernel_spec("0 1; 2 3"))
    for e in (by_spec, by_list, by_kernel):
        # 0*0 + 1*1 + 3*2 + 4*3 = 19, 1*0 + 2*1 + 4*2 + 5*3 = 25, 3*0 + 4*1 + 6*2 + 7*3 = 37, 4*0 + 5*1 + 7*2 + 8*3 = 43
        assert e.output.tolist() == [[19, 25], [37, 43]]
        assert "out[0,0] = 0×0 + 1×1 + 3×2 + 4×3 = 19" in str(e)
    assert str(by_spec) == str(by_list) == str(by_kernel)
    assert "of input 3x3" in str(by_spec)
    assert by_spec.text(times="*").count("0*0 + 1*1 + 3*2 + 4*3 = 19") == 1


def test_explain_html_holds_the_sums_and_the_kernel():
    e = convcli.explain(np.arange(9).reshape(3, 3), "0 1; 2 3")
    parsed = parse_html(e._repr_html_())
    assert "table" in parsed.tags
    assert "out[0,0] = 0×0 + 1×1 + 3×2 + 4×3 = 19" in parsed.cells
    assert "out[1,1] = 4×0 + 5×1 + 7×2 + 8×3 = 43" in parsed.cells
    assert parsed.cells[:13] == [str(v) for v in range(9)] + ["0", "1", "2", "3"]  # the input, then the kernel


def test_explain_errors_are_the_cli_messages():
    # a photo is too big to explain: the same one-line message from both
    with pytest.raises(ParameterError) as info:
        convcli.explain(loaded(CAMERA, normalize="none"), "diff-x")
    assert str(info.value) == cli_error(["explain", CAMERA, "-k", "diff-x"])
    assert str(info.value).startswith("explain is for small examples and this one is too big to read")
    with pytest.raises(UnknownKernelError) as unknown:
        convcli.explain(np.ones((3, 3)), "nope")
    assert str(unknown.value) in cli_error(["explain", X, "-k", "nope"])
    with pytest.raises(ShapeError) as same:
        convcli.explain(np.ones((3, 3)), "1 1", padding="same", stride=2)
    assert str(same.value) == cli_error(["explain", X, "-k", "1 1", "--padding", "same", "--stride", "2"])
    with pytest.raises(ParameterError, match=r"^stride 0x0 must be at least 1 on each axis$"):
        convcli.explain(np.ones((3, 3)), "1 1", stride=0)
    with pytest.raises(ParameterError, match=r"^explain works on one 2-D grid; got shape \(2, 2, 2\)$"):
        convcli.explain(np.ones((2, 2, 2)), "1")
    with pytest.raises(KernelError, match="is not a spec, a Kernel or an array of numbers"):
        convcli.explain(np.ones((3, 3)), [[1, 2], [3]])
    with pytest.raises(ParameterError) as mode:
        convcli.explain(np.ones((3, 3)), "1", pad_mode="bogus")
    assert str(mode.value).startswith("unknown pad mode 'bogus'; use one of zeros, constant, reflect")
    assert str(mode.value) in cli_error(["explain", X, "-k", "1", "--pad-mode", "bogus"])
    with pytest.raises(ParameterError, match=r"^image has dtype <U3; give an array of numbers$"):
        convcli.explain("abc", "1")


# ---------------------------------------------------------------------------
# learn


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("targets")
    edges, chelsea = folder / "edges-diff.npy", folder / "chelsea-blur.npy"
    ok(["filter", EDGES, "-k", "diff-x", "-o", edges])
    ok(["filter", CHELSEA, "-k", "gaussian:3", "-o", chelsea])
    return {"edges": str(edges), "chelsea": str(chelsea)}


def test_learn_doctest_case_by_hand():
    fit = convcli.learn(lesson_image(), lesson_target(), solver="lstsq")
    assert np.allclose(fit.kernel, [[1, -1]], atol=1e-12) and fit.rank == 2 and fit.size_inferred
    assert str(fit) == (
        "least-squares 1x2 kernel (correlation; rank 2 of 2 unknowns): loss 0 (at rounding level)\n   1  -1"
    )
    assert fit.losses == fit.history == (fit.loss,) and fit.at_rounding_level


@pytest.mark.parametrize(
    ("source", "target", "args", "options"),
    [
        (EDGES, "edges", ["--size", "1x2", "--solver", "lstsq"], dict(kernel_size=(1, 2), solver="lstsq")),
        (EDGES, "edges", ["--size", "1x2", "--seed", "0"], dict(kernel_size=(1, 2), seed=0)),
        (
            EDGES,
            "edges",
            ["--size", "1x2", "--seed", "4", "--optimizer", "adam", "--epochs", "7", "--lr", "0.1", "--bias"],
            dict(kernel_size=(1, 2), seed=4, optimizer="adam", epochs=7, lr=0.1, learn_bias=True),
        ),
        (EDGES, "edges", ["--size", "1x2", "--padding", "0x1", "--solver", "lstsq", "--convolve"], None),
        (CHELSEA, "chelsea", ["--size", "3", "--solver", "lstsq"], dict(kernel_size=3, solver="lstsq")),
    ],
)
def test_learn_api_and_cli_agree(targets, source, target, args, options):
    target_path = targets[target]
    if options is None:  # a target that does not fit: the same message from both
        with pytest.raises(ShapeError) as info:
            convcli.learn(loaded(EDGES), np.load(target_path), (1, 2), solver="lstsq", padding=(0, 1), convolve=True)
        assert str(info.value) == cli_error(["learn", source, target_path, *args])
        return
    image, goal = loaded(source), loaded(target_path)
    fit = convcli.learn(image, goal, **options)
    record = json.loads(ok(["learn", source, target_path, *args, "--json"]).stdout)
    np.testing.assert_array_equal(np.array(record["kernel"]), fit.kernel)
    assert record["bias"] == fit.bias and record["rank"] == fit.rank
    assert {k: v for k, v in record.items() if k not in ("input_source", "target_source", "output")} == fit.to_dict()
    quiet_progress = [] if "lstsq" in args else ["--every", "0"]
    assert ok(["learn", source, target_path, *args, *quiet_progress]).stderr == str(fit) + "\n"


def test_learn_infers_the_size_and_says_so(targets):
    result = ok(["learn", EDGES, targets["edges"], "--solver", "lstsq"])
    fit = convcli.learn(loaded(EDGES), loaded(targets["edges"]), solver="lstsq")
    assert result.stderr == (
        "kernel size 1x2 (from the input 6x8 (HxW) and target 6x7; --size to choose another)\n" + str(fit) + "\n"
    )
    assert kernel_size_for(loaded(EDGES), loaded(targets["edges"])) == (1, 2)


def test_learn_demo_prints_the_api_results():
    record = json.loads(ok(["learn", "--demo", "--json"]).stdout)
    gd = convcli.learn(lesson_image(), lesson_target(), (1, 2), seed=0)
    exact = convcli.learn(lesson_image(), lesson_target(), (1, 2), solver="lstsq")
    assert record == {"demo": True, "gd": gd.to_dict(), "lstsq": exact.to_dict()}
    assert record["lstsq"]["loss"] == 0.0 and record["lstsq"]["loss_at_rounding_level"] is True


def test_learn_fresh_seed_is_recorded_and_repeats():
    fit = convcli.learn(lesson_image(), lesson_target(), (1, 2), epochs=3)
    again = convcli.learn(lesson_image(), lesson_target(), (1, 2), epochs=3, seed=fit.seed)
    assert isinstance(fit.seed, int) and fit.losses == again.losses and len(fit.losses) == 4


def test_learn_errors():
    x, y = lesson_image(), lesson_target()
    with pytest.raises(ParameterError, match=r"^solver 'newton' is not one of gd, lstsq$"):
        convcli.learn(x, y, solver="newton")
    with pytest.raises(ParameterError) as info:
        convcli.learn(x, y, solver="lstsq", epochs=5, lr=0.1)
    assert str(info.value) == "epochs, lr only apply to solver 'gd'; lstsq solves in one step, drop them"
    with pytest.raises(ShapeError) as size:
        convcli.learn(x, y, padding="same", solver="lstsq")
    assert "no kernel size turns the 6x8 input into the 6x7 target" in str(size.value)
    with pytest.raises(ParameterError, match=r"^the target must be a 2-D \(gray\) array; got shape \(6, 7, 3\)"):
        convcli.learn(x, np.stack([y] * 3, axis=2), (1, 2), solver="lstsq")
    with pytest.raises(ParameterError) as lr:
        convcli.learn(x, y, (1, 2), lr=0.05, seed=0)
    assert str(lr.value).startswith("--lr 0.05 is above the stable limit 0.03333 for sgd on this input")
    with pytest.raises(ParameterError, match=r"^kernel size 0x0 must be at least 1 on each axis$"):
        convcli.learn(x, y, 0)


# The rounding level of a loss


def test_rounding_floor_by_hand():
    assert unit_roundoff(np.zeros(1, np.float32)) == 2.0**-24
    assert unit_roundoff(np.zeros(1), np.zeros(1, np.int64)) == 2.0**-53
    # one unknown, one output, u = 2**-10: ((1 + 1) * 2**-10 + 1 * 1 * 2**-53)**2 * 9
    assert rounding_floor(9.0, 1, 1, 2.0**-10) == pytest.approx((2 * 2.0**-10 + 2.0**-53) ** 2 * 9, rel=1e-15)
    assert format_loss(1e-12, 1e-11) == ROUNDING_LEVEL
    assert format_loss(2e-11, 1e-11) == "2e-11"
    assert format_loss(0.0, 1.0) == "0"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_exact_float32_targets_are_at_rounding_level_and_noise_is_not(seed, kh, kw, signed):
    rng = np.random.default_rng(seed)
    image = rng.random((24, 20)).astype(np.float32)
    kernel = rng.standard_normal((kh, kw)) if signed else rng.random((kh, kw))
    target = correlate2d(image, kernel)  # computed in float32, as filter does for images
    assert target.dtype == np.float32
    exact = convcli.learn(image, target, (kh, kw), solver="lstsq")
    assert exact.at_rounding_level, (exact.loss, exact.loss_floor)
    assert ROUNDING_LEVEL in str(exact)
    # noise a thousand times the float32 rounding of the outputs is a real misfit: it shows
    scale = float(np.abs(target).max())
    noisy = (target + rng.standard_normal(target.shape) * scale * 1e-3).astype(np.float32)
    misfit = convcli.learn(image, noisy, (kh, kw), solver="lstsq")
    assert not misfit.at_rounding_level and ROUNDING_LEVEL not in str(misfit)


def test_the_docs_example_prints_the_same_loss_with_and_without_opencv(tmp_path):
    """The README's lstsq example printed 2.01181e-10 with OpenCV and 1.56695e-10 without: now 0 on both."""
    outputs = []
    for no_opencv in (False, True):
        env = {**os.environ, "PYTHONPATH": str(Path(convcli.__file__).parent.parent)}
        env.pop("CONVCLI_NO_OPENCV", None)
        if no_opencv:
            env["CONVCLI_NO_OPENCV"] = "1"
        target = tmp_path / f"blurred{int(no_opencv)}.npy"
        commands = [
            ["filter", CAMERA, "-k", "gaussian:5", "-o", str(target), "-q"],
            ["learn", CAMERA, str(target), "--size", "5", "--solver", "lstsq"],
        ]
        for command in commands:
            done = subprocess.run([sys.executable, "-m", "convcli", *command], env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        outputs.append(done.stderr)
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith(
        "least-squares 5x5 kernel (correlation; rank 25 of 25 unknowns): loss 0 (at rounding level)\n"
    )


# Notebook views of a fit


def test_fit_png_and_html():
    pytest.importorskip("matplotlib")
    fit = convcli.learn(lesson_image(), lesson_target(), (1, 2), seed=0)
    width, height = png_size(fit._repr_png_())
    assert (width, height) == (640, 400)  # 6.4 x 4.0 inches at 100 dpi
    page = fit._repr_html_()
    parsed = parse_html(page)
    assert "img" in parsed.tags and "data:image/png;base64," in page
    assert f"{fit.kernel[0, 0]:.6g}" in parsed.cells and f"{fit.kernel[0, 1]:.6g}" in parsed.cells


def test_fit_html_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    fit = convcli.learn(lesson_image(), lesson_target(), (1, 2), epochs=3, seed=0)
    assert fit._repr_png_() is None
    parsed = parse_html(fit._repr_html_())
    assert "img" not in parsed.tags
    assert parsed.cells[-8:] == [cell for epoch, loss in enumerate(fit.losses) for cell in (str(epoch), f"{loss:.6g}")]


# ---------------------------------------------------------------------------
# figure


def test_figure_is_what_filter_figure_saves(tmp_path):
    pytest.importorskip("matplotlib")
    from convcli.teach.figures import save_figure

    saved = tmp_path / "cli.png"
    result = ok(["filter", CAMERA, "-k", "vertical", "-o", tmp_path / "out.png", "--figure", saved])
    source = load_settings(CAMERA, ReadSettings())
    figure = convcli.figure(source.array, "vertical", name="camera", detail=source.detail)
    save_figure(figure, tmp_path / "api.png")
    assert (tmp_path / "api.png").read_bytes() == saved.read_bytes(), result
    png_size(saved.read_bytes())


def test_figure_convolve_padding_and_chain(tmp_path):
    pytest.importorskip("matplotlib")
    from convcli.teach.figures import save_figure

    image = loaded(EDGES)
    args = ["--convolve", "--padding", "1", "--pad-mode", "reflect", "--chain"]
    ok(
        [
            "filter",
            EDGES,
            "-k",
            "gaussian:3",
            "-k",
            "diff-x",
            *args,
            "-o",
            tmp_path / "o.npy",
            "--figure",
            tmp_path / "cli.png",
        ]
    )
    figure = convcli.figure(
        image,
        ["gaussian:3", "diff-x"],
        convolve=True,
        padding=1,
        pad_mode="reflect",
        name="edges",
        detail="text matrix",
    )
    save_figure(figure, tmp_path / "api.png")
    assert (tmp_path / "api.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    output = figure.axes[2].images[0].get_array()
    expected = np.load(tmp_path / "o.npy")
    np.testing.assert_allclose(np.asarray(output), expected)


def test_figure_builders_are_what_the_path_functions_save(tmp_path):
    pytest.importorskip("matplotlib")
    from convcli.teach import figures

    weights = parse_kernel_spec("vertical").weights
    figures.kernel_figure(tmp_path / "k.png", weights, "vertical 3x3")
    figures.save_figure(figures.build_kernel_figure(weights, "vertical 3x3"), tmp_path / "k2.png")
    assert (tmp_path / "k.png").read_bytes() == (tmp_path / "k2.png").read_bytes()
    figures.receptive_field_figure(tmp_path / "r.png", (5, 5), range(-1, 2), range(-1, 2), (0, 0))
    built = figures.build_receptive_field_figure((5, 5), range(-1, 2), range(-1, 2), (0, 0))
    assert figures.png_bytes(built)[:8] == b"\x89PNG\r\n\x1a\n"
    figures.save_figure(built, tmp_path / "r2.png")
    assert (tmp_path / "r.png").read_bytes() == (tmp_path / "r2.png").read_bytes()
    curve = figures.loss_figure([4.0, 1.0, 0.0], log_scale=True)
    assert list(curve.axes[0].lines[0].get_ydata()) == [4.0, 1.0]  # a log axis drops the 0


def test_figure_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(OutputError) as info:
        convcli.figure(np.ones((4, 4)), "diff-x")
    assert str(info.value) == (
        "convcli.figure needs matplotlib, which is not installed; pip install 'convcli[plot]' (in a source "
        "checkout: pip install -e '.[plot]'; or just pip install matplotlib), or drop convcli.figure"
    )


# ---------------------------------------------------------------------------
# Kernel._repr_html_


def test_kernel_html_heatmap():
    kernel = parse_kernel_spec("1 0 -1; 2 0 -2; 1 0 -1")
    parsed = parse_html(kernel._repr_html_())
    assert parsed.cells == ["1", "0", "-1", "2", "0", "-2", "1", "0", "-1"]
    colours = [style.split("background:rgb")[1].split(";")[0] for style in parsed.styles]
    rgb = [tuple(int(v) for v in c.strip("()").split(",")) for c in colours]
    assert rgb[1] == (255, 255, 255)  # 0 is white: the scale is centred on 0
    assert rgb[3][0] == 255 and rgb[3][2] < 128  # +2 (the largest): red
    assert rgb[5][2] == 255 and rgb[5][0] < 128  # -2: blue
    assert rgb[0] == (rgb[6][0], rgb[6][1], rgb[6][2]) and rgb[0] != rgb[3]  # equal values, equal colours
    blur = parse_html(parse_kernel_spec("blur:3")._repr_html_())
    shades = {style.split("background:rgb")[1].split(";")[0] for style in blur.styles}
    assert len(shades) == 1 and blur.cells == ["0.1111"] * 9  # one sign, one value: one grey
    big = parse_kernel_spec("blur:65")._repr_html_()
    assert "too large" in big and "<td" not in big


# ---------------------------------------------------------------------------
# The commands take typed options


def test_commands_build_frozen_options():
    import dataclasses

    from convcli.cli.cmd_explain import ExplainOptions
    from convcli.cli.cmd_learn import LearnOptions
    from convcli.cli.cmd_shape import ShapeOptions

    for record in (ExplainOptions, LearnOptions, ShapeOptions):
        assert dataclasses.is_dataclass(record) and record.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_numpy_integers_count_as_ints():
    shape = np.zeros((6, 8)).shape
    assert convcli.output_size(np.int64(5), np.int32(3), stride=np.int64(3)) == 1
    assert convcli.output_size(shape, (np.int64(1), np.int64(2))) == (6, 7)
    fit = convcli.learn(lesson_image(), lesson_target(), (np.int64(1), np.int64(2)), solver="lstsq")
    assert fit.kernel.shape == (1, 2)
    with pytest.raises(ParameterError, match=r"^stride True must be an int or a pair of ints \(H, W\)$"):
        convcli.output_size(5, 3, stride=True)


def test_sizes_and_fields_stay_pure_python():
    code = (
        "import sys, convcli; convcli.output_size((224, 224), 7, stride=2, padding=3); "
        "print(convcli.receptive_field(['conv:k=7,s=2,p=3', 'pool:k=3,s=2,p=1'], 224).field); "
        "assert 'numpy' not in sys.modules, 'numpy was imported'"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(convcli.__file__).parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "(11, 11)\n"
