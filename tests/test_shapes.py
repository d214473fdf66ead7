"""Output-size formulas against brute force and PyTorch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import ParameterError, ShapeError
from convcli.shapes import (
    conv_geometry,
    conv_output_length,
    parse_pair,
    pool_output_length,
    resolve_padding,
    same_padding,
    transpose_output_length,
)


def brute_force_windows(length, kernel, stride, before, after, dilation):
    """Count window start positions whose every tap lies inside the padded input."""
    padded = length + before + after
    return sum(1 for start in range(0, padded, stride) if start + dilation * (kernel - 1) < padded)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(0, 5), st.integers(0, 5), st.integers(1, 4)
)
def test_conv_length_counts_windows(length, kernel, stride, before, after, dilation):
    count = brute_force_windows(length, kernel, stride, before, after, dilation)
    if count == 0:
        with pytest.raises(ShapeError):
            conv_output_length(length, kernel, stride, before, after, dilation)
    else:
        assert conv_output_length(length, kernel, stride, before, after, dilation) == count


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4), st.integers(0, 4), st.integers(1, 3))
def test_uncovered_rows_by_brute_force(length, kernel, stride, pad, dilation):
    try:
        geometry = conv_geometry((length, 1), (kernel, 1), (stride, 1), (pad, 0), (dilation, 1))
    except ShapeError:
        return
    # Rows after the last one any window reads (gaps between windows are another matter).
    last_read = max(o * stride + u * dilation - pad for o in range(geometry.output[0]) for u in range(kernel))
    trailing = sum(1 for row in range(length) if row > last_read)
    assert geometry.uncovered()[0] == trailing
    cover = geometry.covering_padding()[0]
    covered = conv_geometry((length, 1), (kernel, 1), (stride, 1), (cover, 0), (dilation, 1))
    assert covered.uncovered()[0] == 0
    if cover > pad:  # and it is the smallest such padding
        smaller = conv_geometry((length, 1), (kernel, 1), (stride, 1), (cover - 1, 0), (dilation, 1))
        assert smaller.uncovered()[0] > 0


def test_stride_three_on_five_pixels():
    geometry = conv_geometry((5, 5), (3, 3), stride=(3, 3))
    assert geometry.output == (1, 1)
    assert geometry.uncovered() == (2, 2)  # rows 3 and 4 are never read
    # padding 1: 7 padded rows, windows at 0..2 and 3..5 reach real rows 0..4 (padded 1..5)
    assert geometry.covering_padding() == (1, 1)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4), st.integers(0, 4), st.integers(1, 3))
def test_conv_length_matches_torch(length, kernel, stride, pad, dilation):
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=pad, dilation=dilation, bias=False)
    try:
        expected = conv(torch.zeros(1, 1, length, 3 + 2 * 0 + dilation * (kernel - 1))).shape[2]
    except RuntimeError:
        with pytest.raises(ShapeError):
            conv_output_length(length, kernel, stride, pad, pad, dilation)
        return
    assert conv_output_length(length, kernel, stride, pad, pad, dilation) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3), st.booleans())
def test_pool_length_matches_torch(length, kernel, stride, pad, dilation, ceil_mode):
    torch = pytest.importorskip("torch")
    try:
        expected = torch.nn.functional.max_pool2d(
            torch.zeros(1, 1, length, kernel * dilation + 2), kernel, stride, pad, dilation, ceil_mode
        ).shape[2]
    except RuntimeError:
        with pytest.raises(ShapeError):
            pool_output_length(length, kernel, stride, pad, dilation, ceil_mode)
        return
    assert pool_output_length(length, kernel, stride, pad, dilation, ceil_mode) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 20), st.integers(1, 5), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3), st.integers(0, 3)
)
def test_transpose_length_matches_torch(length, kernel, stride, pad, dilation, output_padding):
    torch = pytest.importorskip("torch")
    try:
        expected = torch.nn.functional.conv_transpose2d(
            torch.zeros(1, 1, length, 1),
            torch.zeros(1, 1, kernel, 1),
            stride=(stride, 1),
            padding=(pad, 0),
            output_padding=(output_padding, 0),
            dilation=(dilation, 1),
        ).shape[2]
    except RuntimeError:
        with pytest.raises(ShapeError):
            transpose_output_length(length, kernel, stride, pad, dilation, output_padding)
        return
    assert transpose_output_length(length, kernel, stride, pad, dilation, output_padding) == expected


def test_pool_ceil_mode_drops_windows_starting_in_right_padding():
    # n=5, k=2, s=2, p=1: floor gives 3, ceil gives 4 but window 4 would start at 6 >= 5 + 1: dropped.
    assert pool_output_length(5, 2, 2, padding=1, ceil_mode=True) == 3
    assert pool_output_length(5, 3, 3, ceil_mode=True) == 2
    with pytest.raises(ShapeError, match="more than half the kernel"):
        pool_output_length(5, 3, 3, padding=2)


def test_parse_pair_and_padding():
    assert parse_pair("7") == (7, 7)
    assert parse_pair("612x530") == (612, 530)
    assert parse_pair(" 3 X 4 ") == (3, 4)
    with pytest.raises(ParameterError, match="'3x' is not N or HxW"):
        parse_pair("3x", "stride")
    with pytest.raises(ParameterError, match="stride 0x0 must be at least 1"):
        parse_pair("0", "stride")
    with pytest.raises(ParameterError, match="padding -1x-1 must be at least 0"):
        parse_pair("-1", "padding", minimum=0)
    assert same_padding(4, 1) == (1, 2)
    assert same_padding(3, 2) == (2, 2)
    assert resolve_padding("same", (4, 3)) == ((1, 2), (1, 1))
    assert resolve_padding("valid", (4, 3)) == ((0, 0), (0, 0))
    assert resolve_padding("2x1", (4, 3)) == ((2, 2), (1, 1))


def test_huge_numbers_do_not_overflow():
    assert conv_output_length(10**30, 3, 10**9) == (10**30 - 3) // 10**9 + 1
