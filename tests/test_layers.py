"""Layer specs, output sizes (against PyTorch), per-axis facts and receptive fields (against brute force)."""

from __future__ import annotations

import math
import re
import warnings
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcli.errors import ParameterError, ShapeError
from convcli.teach.layer_axes import axis_report
from convcli.teach.layers import layer_output, make_layer, parse_layer, parse_layer_file
from convcli.teach.stacks import dependency_set, jump, run_stack

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------
# Specs and files


def test_parse_layer_keys_and_defaults():
    layer = parse_layer("conv:k=7,s=2,p=3")
    assert (layer.op, layer.kernel, layer.stride) == ("conv", (7, 7), (2, 2))
    assert (layer.padding, layer.dilation) == ((3, 3), (1, 1))
    pool = parse_layer("pool:k=3")
    assert pool.stride == (3, 3)  # PyTorch: pooling stride defaults to the kernel size
    assert parse_layer("pool:k=3,s=2,p=1,ceil").ceil_mode is True
    assert parse_layer("transpose:k=4x3,s=2,op=1x0").output_padding == (1, 0)
    assert parse_layer("conv:kernel=3,padding=same,dilation=2").padding == "same"
    assert parse_layer(" conv : k=3x1 , p=1x0 ").kernel == (3, 1)


def test_spec_round_trips():
    for text in ["conv:k=7,s=2,p=3", "pool:k=3,s=2,p=1,ceil", "transpose:k=4,s=2,p=1,op=1", "conv:k=3x5,p=same,d=2"]:
        assert parse_layer(text).spec == text
        assert parse_layer(parse_layer(text).spec) == parse_layer(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("conv", "not TYPE:k=N"),
        ("cnv:k=3", "did you mean 'conv'"),
        ("conv:s=2", "no kernel size"),
        ("conv:k=3,x=1", "unknown key 'x'"),
        ("conv:k=3,k=5", "given twice"),
        ("conv:k=0", "at least 1"),
        ("conv:k=3,s=", "needs a value"),
        ("pool:k=3,p=same", "only for conv"),
        ("conv:k=3,ceil", "only for pool"),
        ("conv:k=3,op=1", "only for transpose"),
        ("conv:k=3,s=two", "not N or HxW"),
    ],
)
def test_parse_layer_errors(text, fragment):
    with pytest.raises(ParameterError) as info:
        parse_layer(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_layer_file_comments_blank_lines_and_line_numbers():
    text = "# a small net\nconv:k=7,s=2,p=3   # stem\n\n   pool:k=3,s=2,p=1\n"
    assert [layer.spec for layer in parse_layer_file(text)] == ["conv:k=7,s=2,p=3", "pool:k=3,s=2,p=1"]
    with pytest.raises(ParameterError, match=r"net.txt, line 3: .*unknown key 'q'"):
        parse_layer_file("conv:k=3\n# ok\nconv:k=3,q=1\n", "net.txt")
    with pytest.raises(ParameterError, match="has no layers"):
        parse_layer_file("# nothing\n\n")


# ---------------------------------------------------------------------------
# Output sizes: hand-computed cases, then PyTorch


def test_hand_computed_sizes():
    assert layer_output(parse_layer("conv:k=3,s=3"), (5, 5)) == (1, 1)  # floor((5 - 3)/3) + 1
    assert layer_output(parse_layer("conv:k=7,s=2,p=3,d=2"), (612, 530)) == (303, 262)  # floor((618-13)/2)+1
    assert layer_output(parse_layer("pool:k=3,s=3,ceil"), (5, 5)) == (2, 2)  # ceil(2/3) + 1
    assert layer_output(parse_layer("pool:k=2,s=2,p=1,ceil"), (5, 5)) == (3, 3)  # last window starts in the padding
    assert layer_output(parse_layer("transpose:k=3,s=2,p=1,op=1"), (4, 4)) == (8, 8)  # 3*2 - 2 + 2 + 1 + 1
    assert layer_output(parse_layer("conv:k=4x3,p=same"), (5, 7)) == (5, 7)


def _evaluate(formula: str) -> int:
    """Evaluate the printed formula independently: 'out = floor((5 + 2*0 - 3) / 3) + 1 = 1' -> the middle part."""
    expression = formula.split("=")[1].strip()
    assert re.fullmatch(r"[0-9a-z+\-*/() ]+", expression), expression
    return eval(expression, {"__builtins__": {}}, {"floor": math.floor, "ceil": math.ceil})  # noqa: S307


def _torch_size(torch, op, n, k, s, p, d, op_pad, ceil, avg=False):
    x = torch.zeros(1, 1, n[0], n[1])
    f = torch.nn.functional
    if op == "conv":
        return tuple(f.conv2d(x, torch.zeros(1, 1, k[0], k[1]), stride=s, padding=p, dilation=d).shape[2:])
    if op == "transpose":
        w = torch.zeros(1, 1, k[0], k[1])
        return tuple(f.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op_pad, dilation=d).shape[2:])
    if avg:
        return tuple(f.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=ceil).shape[2:])
    return tuple(f.max_pool2d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil).shape[2:])


pairs = st.tuples(st.integers(1, 5), st.integers(1, 5))


@FAST
@given(
    op=st.sampled_from(["conv", "pool", "transpose", "avgpool"]),
    n=st.tuples(st.integers(1, 14), st.integers(1, 14)),
    k=pairs,
    s=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    p=st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3)), st.just("same")),
    d=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    op_pad=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    ceil=st.booleans(),
)
def test_sizes_and_errors_match_pytorch(op, n, k, s, p, d, op_pad, ceil):
    torch = pytest.importorskip("torch")
    avg = op == "avgpool"
    kind = "pool" if avg else op
    if avg:
        d = (1, 1)  # avg_pool2d has no dilation
    if p == "same" and kind != "conv":
        p = (1, 1)
    if kind != "pool":
        ceil = False
    if kind != "transpose":
        op_pad = (0, 0)
    try:
        with warnings.catch_warnings():  # 'same' with an even kernel: a performance warning only
            warnings.simplefilter("ignore", UserWarning)
            expected = _torch_size(torch, kind, n, k, s, p, d, op_pad, ceil, avg)
    except (RuntimeError, ValueError):
        expected = None
    if expected is not None and min(expected) < 1:
        expected = None
    layer = make_layer(kind, k, stride=s, padding=p, dilation=d, ceil_mode=ceil, output_padding=op_pad)
    if expected is None:
        with pytest.raises(ShapeError):
            layer_output(layer, n)
        return
    assert layer_output(layer, n) == expected
    for axis in range(2):
        report = axis_report(layer, n, axis)
        assert report.output == expected[axis]
        assert report.formula.endswith(f"= {expected[axis]}")
        assert _evaluate(report.formula) == expected[axis]


# ---------------------------------------------------------------------------
# Per-axis facts against naive loops


def _naive_reads(n, k, s, p, d, out):
    read = set()
    empty = []
    for j in range(out):
        taps = [j * s - p + t * d for t in range(k)]
        real = [x for x in taps if 0 <= x < n]
        read.update(real)
        if not real:
            empty.append(j)
    return tuple(i for i in range(n) if i not in read), tuple(empty)


@FAST
@given(
    n=st.integers(1, 30),
    k=st.integers(1, 5),
    s=st.integers(1, 5),
    p=st.integers(0, 6),
    d=st.integers(1, 4),
    pool=st.booleans(),
    ceil=st.booleans(),
)
def test_unread_rows_and_padding_windows_match_naive_loops(n, k, s, p, d, pool, ceil):
    if pool:
        p = min(p, k // 2)
        layer = make_layer("pool", k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    else:
        layer = make_layer("conv", k, stride=s, padding=p, dilation=d)
    try:
        out = layer_output(layer, (n, n))[0]
    except ShapeError:
        assume(False)
    report = axis_report(layer, (n, n), 0)
    unread, empty = _naive_reads(n, k, s, p, d, out)
    assert report.unread == unread
    assert report.padding_windows == empty
    last_tap = (out - 1) * s - p + d * (k - 1)  # input index of the last window's last tap
    tail = tuple(i for i in range(n) if i > last_tap)
    assert report.unread_tail == len(tail)
    assert set(tail) <= set(unread)
    if tail and report.covering:  # the suggested change really reaches the last row
        change = report.covering
        new_p = int(re.search(r"padding (\d+)", change).group(1)) if "padding" in change else p
        new_ceil = ceil or "ceil mode" in change
        if pool:
            fixed = make_layer("pool", k, stride=s, padding=new_p, dilation=d, ceil_mode=new_ceil)
        else:
            fixed = make_layer("conv", k, stride=s, padding=new_p, dilation=d)
        fixed_out = layer_output(fixed, (n, n))[0]
        assert (fixed_out - 1) * s - new_p + d * (k - 1) >= n - 1  # a window now reaches the last row


def test_hand_computed_facts():
    report = axis_report(parse_layer("conv:k=3,s=3"), (5, 5), 0)
    assert report.unread == (3, 4) and report.covering == "padding 1"
    assert axis_report(parse_layer("conv:k=1,p=2"), (2, 2), 0).padding_windows == (0, 1, 4, 5)
    assert axis_report(parse_layer("pool:k=2"), (7, 7), 0).covering == "ceil mode"
    dropped = axis_report(parse_layer("pool:k=2,s=2,p=1,ceil"), (5, 5), 0)
    assert dropped.dropped_window == 5  # starts at input index 5: past the input 0..4
    t = axis_report(parse_layer("transpose:k=3,s=2,p=1,op=1"), (4, 4), 0)
    assert t.conv_sizes == (7, 8) and t.output_paddings == (0, 1) and t.matching_output_paddings == {0: 7, 1: 8}


@FAST
@given(n=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3))
def test_transpose_conv_sizes_map_back(n, k, s, p, d):
    layer = make_layer("transpose", k, stride=s, padding=p, dilation=d)
    try:
        report = axis_report(layer, (n, n), 0)
    except ShapeError:
        assume(False)

    def naive_conv_out(m):  # count the windows that fit, one by one
        return sum(1 for j in range(m + 2 * p) if j * s + d * (k - 1) <= m + 2 * p - 1)

    mapping = [m for m in range(1, 120) if naive_conv_out(m) == n]
    if report.conv_sizes is None:
        assert all(m >= 120 for m in mapping)
        return
    assert (mapping[0], mapping[-1]) == report.conv_sizes
    assert len(mapping) == len(report.matching_output_paddings) <= s
    assert report.output_paddings == tuple(range(max(s, d)))


# ---------------------------------------------------------------------------
# Receptive fields


def test_resnet_stem_by_the_textbook_recurrence():
    layers = [parse_layer(t) for t in ["conv:k=7,s=2,p=3", "pool:k=3,s=2,p=1", "conv:k=3,p=1", "conv:k=3,s=2,p=1"]]
    rows = run_stack(layers, (224, 224))
    # rf = rf + (k-1)*jump; jump *= s; start -= p*jump, worked by hand
    assert [r.output for r in rows] == [(112, 112), (56, 56), (56, 56), (28, 28)]
    assert [r.field[0] for r in rows] == [7, 11, 19, 27]
    assert [r.jump[0] for r in rows] == [2, 4, 4, 8]
    assert [r.start[0] for r in rows] == [-3, -5, -9, -13]
    assert [r.centre for r in rows] == [(0, 0)] * 4


def test_stack_error_names_the_layer():
    with pytest.raises(ShapeError, match=r"layer 2 \(conv:k=5\) on 3x3"):
        run_stack([parse_layer("conv:k=3"), parse_layer("conv:k=5")], (5, 5))


layer_strategy = st.builds(
    lambda op, k, s, p, d, o: (op, k, s, p, d, o),
    st.sampled_from(["conv", "pool", "transpose"]),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
    st.integers(0, 2),
)


def _build(raw):
    op, k, s, p, d, o = raw
    if op == "pool":
        return make_layer("pool", k, stride=s, padding=min(p, k // 2), dilation=d)
    if op == "transpose":
        return make_layer("transpose", k, stride=s, padding=p, dilation=d, output_padding=o % max(s, d))
    return make_layer("conv", k, stride=s, padding=p, dilation=d)


def _forward_reach(layers, x):
    """Positions of the last layer that input position x can affect (unbounded input), pushed forwards."""
    positions = {x}
    for layer in layers:
        k, s, d, p = layer.kernel[0], layer.stride[0], layer.dilation[0], layer.padding[0]
        nxt = set()
        for q in positions:
            for t in range(k):
                if layer.op == "transpose":
                    nxt.add(q * s - p + t * d)
                elif (q + p - t * d) % s == 0:
                    nxt.add((q + p - t * d) // s)
        positions = nxt
    return positions


@FAST
@given(raw=st.lists(layer_strategy, min_size=1, max_size=3), index=st.integers(0, 3))
def test_receptive_field_equals_forward_brute_force(raw, index):
    layers = [_build(r) for r in raw]
    strides = math.prod(layer.stride[0] for layer in layers)
    bound = strides * sum(layer.padding[0] + layer.dilation[0] * layer.kernel[0] + layer.stride[0] for layer in layers)
    brute = {x for x in range(-bound - 2, bound + 3) if index in _forward_reach(layers, x)}
    assert dependency_set(layers, 0, index) == brute
    try:
        rows = run_stack(layers, (400, 400))
    except ShapeError:
        assume(False)
    last = rows[-1]
    if index == 0:
        if brute:
            assert last.start[0] == min(brute)
            assert last.field[0] == max(brute) - min(brute) + 1
            assert last.centre[0] == Fraction(min(brute) + max(brute), 2)
        else:
            assert last.field[0] is None
    expected_jump = Fraction(1)
    for layer in layers:
        expected_jump = expected_jump / layer.stride[0] if layer.op == "transpose" else expected_jump * layer.stride[0]
    assert jump(layers, 0) == last.jump[0] == expected_jump


@FAST
@given(raw=st.lists(layer_strategy.filter(lambda r: r[0] != "transpose"), min_size=1, max_size=5))
def test_conv_pool_stacks_follow_the_textbook_recurrence(raw):
    layers = [_build(r) for r in raw]
    try:
        rows = run_stack(layers, (200, 200))
    except ShapeError:
        assume(False)
    rf, step, start = 1, 1, 0
    for layer, row in zip(layers, rows, strict=True):
        k, s, p, d = layer.kernel[0], layer.stride[0], layer.padding[0], layer.dilation[0]
        rf, start, step = rf + d * (k - 1) * step, start - p * step, step * s
        assert (row.field[0], row.start[0], row.jump[0]) == (rf, start, step)


def _finite_dependencies(layers, n, index):
    """Real input pixels (0..n-1) that output `index` depends on: padding depends on nothing."""
    deps = [{i} for i in range(n)]
    for layer in layers:
        k, s, d, p = layer.kernel[0], layer.stride[0], layer.dilation[0], layer.padding[0]
        out = layer_output(layer, (len(deps), len(deps)))[0]
        nxt = [set() for _ in range(out)]
        for o in range(out):
            for t in range(k):
                if layer.op == "transpose":
                    continue
                q = o * s - p + t * d
                if 0 <= q < len(deps):
                    nxt[o] |= deps[q]
        if layer.op == "transpose":
            for q in range(len(deps)):
                for t in range(k):
                    o = q * s - p + t * d
                    if 0 <= o < out:
                        nxt[o] |= deps[q]
        deps = nxt
    return deps[index]


@FAST
@given(raw=st.lists(layer_strategy, min_size=1, max_size=3), n=st.integers(4, 24))
def test_finite_dependencies_lie_in_the_receptive_field(raw, n):
    layers = [_build(r) for r in raw]
    try:
        rows = run_stack(layers, (n, n))
    except ShapeError:
        assume(False)
    out = rows[-1].output[0]
    for index in {0, (out - 1) // 2}:
        real = _finite_dependencies(layers, n, index)
        field = dependency_set(layers, 0, index)
        assert real <= field


@settings(max_examples=15, deadline=None)
@given(raw=st.lists(layer_strategy, min_size=1, max_size=3), n=st.integers(4, 16))
def test_finite_brute_force_matches_autograd(raw, n):
    """The finite brute force above agrees with PyTorch's gradients (positive weights: no cancellation)."""
    torch = pytest.importorskip("torch")
    layers = [_build(r) for r in raw]
    try:
        rows = run_stack(layers, (n, 1))
    except ShapeError:
        assume(False)
    x = torch.rand(1, 1, n, 1, dtype=torch.float64) + 1.0
    x.requires_grad_(True)
    y = x
    for layer in layers:
        k, s, d, p = layer.kernel[0], layer.stride[0], layer.dilation[0], layer.padding[0]
        w = torch.rand(1, 1, k, 1, dtype=torch.float64) + 1.0
        if layer.op == "conv":
            y = torch.nn.functional.conv2d(y, w, stride=(s, 1), padding=(p, 0), dilation=(d, 1))
        elif layer.op == "pool":  # a sum over the window, as avg pooling with dilation would be
            y = torch.nn.functional.conv2d(
                y, torch.ones(1, 1, k, 1, dtype=torch.float64), stride=(s, 1), padding=(p, 0), dilation=(d, 1)
            )
        else:
            op = layer.output_padding[0]
            y = torch.nn.functional.conv_transpose2d(
                y, w, stride=(s, 1), padding=(p, 0), dilation=(d, 1), output_padding=(op, 0)
            )
    assert y.shape[2] == rows[-1].output[0]
    index = (y.shape[2] - 1) // 2
    y[0, 0, index, 0].backward()
    grad = {i for i in range(n) if x.grad[0, 0, i, 0] != 0}
    assert grad == _finite_dependencies(layers, n, index)
