"""``convcli shape`` through the command line: output, JSON, errors, import weight, consistency with filter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcli.cli import main
from convcli.engine import correlate2d
from convcli.errors import ShapeError

SRC = Path(__file__).resolve().parents[1] / "src"


def run(args, code=0):
    result = CliRunner().invoke(main, args, prog_name="convcli")
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return result


def fails(args, fragment, code=2):
    result = run(args, code)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("convcli shape: error: ")
    assert fragment in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def test_stride_three_on_five_pixels():
    out = run(["shape", "--input", "5", "--kernel", "3", "--stride", "3"]).stdout
    assert "conv 5x5 (HxW) -> 1x1" in out
    assert "out = floor((5 + 2*0 - 3) / 3) + 1 = 1" in out
    assert "rows/columns 3, 4 (the last 2 of 5) are never reached by a window; padding 1 would reach them" in out


def test_rows_and_columns_differ():
    out = run(["shape", "--input", "612x530", "--kernel", "7", "--padding", "3", "--stride", "2", "--dilation", "2"])
    lines = out.stdout.splitlines()
    # (612 + 6 - 13) // 2 + 1 = 303 and (530 + 6 - 13) // 2 + 1 = 262
    assert lines[0].startswith("conv 612x530 (HxW) -> 303x262")
    assert "rows: out = floor((612 + 2*3 - 2*(7 - 1) - 1) / 2) + 1 = 303" in lines
    assert "columns: out = floor((530 + 2*3 - 2*(7 - 1) - 1) / 2) + 1 = 262" in lines
    # taps at 2j - 3 + 2t are all odd: every even row is stepped over
    assert any("306 rows of 612 are never read (0, 2, 4, ..., 610)" in line for line in lines)


def test_pool_ceil_mode_and_dropped_window():
    out = run(["shape", "--op", "pool", "--input", "5", "--kernel", "3", "--stride", "3", "--ceil-mode"]).stdout
    assert "out = ceil((5 + 2*0 - 3) / 3) + 1 = 2" in out
    out = run(["shape", "--op", "pool", "--input", "5", "--kernel", "2", "--padding", "1", "--ceil-mode"]).stdout
    assert "out = ceil((5 + 2*1 - 2) / 2) + 1 - 1 = 3" in out  # stride defaults to the kernel size, as PyTorch
    assert "would start at input index 5, in the right padding" in out


def test_transpose_explains_output_padding():
    out = run(
        [
            "shape",
            "--op",
            "transpose",
            "--input",
            "4",
            "--kernel",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
            "--output-padding",
            "1",
        ]
    ).stdout
    assert "out = (4 - 1)*2 - 2*1 + 3 + 1 = 8" in out
    assert "maps input sizes 7..8 to 4; --output-padding picks which one (0 -> 7, 1 -> 8)" in out
    assert "valid --output-padding: 0, 1" in out


def test_padding_windows_note():
    out = run(["shape", "--input", "2", "--kernel", "1", "--padding", "2"]).stdout
    assert "outputs 0, 1, 4, 5 (4 of 6) read only padding: no input reaches them (zeros padding gives 0)" in out


def test_json_single_and_stack(tmp_path):
    record = json.loads(
        run(["shape", "--input", "612x530", "--kernel", "7", "--padding", "3", "--stride", "2", "--json"]).stdout
    )
    assert record["output"] == {"height": 306, "width": 265}  # (612 + 6 - 7)//2 + 1, (530 + 6 - 7)//2 + 1
    assert record["padding"] == [[3, 3], [3, 3]]
    net = tmp_path / "net.txt"
    net.write_text("# stem\nconv:k=7,s=2,p=3  # 7x7/2\n\npool:k=3,s=2,p=1\n", encoding="utf-8")
    record = json.loads(run(["shape", "--input", "224", "--layers", str(net), "--json"]).stdout)
    assert record["output"] == {"height": 56, "width": 56}
    assert [layer["receptive_field"] for layer in record["layers"]] == [
        {"height": 7, "width": 7},
        {"height": 11, "width": 11},
    ]
    assert [layer["jump"] for layer in record["layers"]] == [[2, 2], [4, 4]]
    assert [layer["centre"] for layer in record["layers"]] == [[0, 0], [0, 0]]


def test_stack_table():
    out = run(
        ["shape", "--input", "224", "conv:k=7,s=2,p=3", "pool:k=3,s=2,p=1", "conv:k=3,p=1", "conv:k=3,s=2,p=1"]
    ).stdout
    rows = [line.split() for line in out.splitlines()[1:6]]
    assert [r[0] for r in rows] == ["0", "1", "2", "3", "4"]
    # output, field, jump, centre (row, column): the recurrence worked by hand
    assert [r[-5:] for r in rows[1:]] == [
        ["112x112", "7", "2", "(0,", "0)"],
        ["56x56", "11", "4", "(0,", "0)"],
        ["56x56", "19", "4", "(0,", "0)"],
        ["28x28", "27", "8", "(0,", "0)"],
    ]


def test_stack_per_axis_and_transpose_note():
    out = run(["shape", "--input", "9x16", "conv:k=3x5,s=1x2", "transpose:k=2,s=2"]).stdout
    assert "3x5" in out and "7x6" in out  # conv: 7x6 output
    line = next(line for line in out.splitlines() if line.startswith("1 "))
    assert line.split()[-4:] == ["3x5", "1x2", "(1,", "2)"]  # field, jump, centre
    assert "transpose layers: the jump divides by the stride" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--input", "5", "--kernel", "3", "--stride", "2", "--padding", "same"], "padding 'same' needs stride 1"),
        (["--input", "3", "--kernel", "5"], "kernel 5 is larger than the padded input 3"),
        (["--op", "pool", "--input", "8", "--kernel", "3", "--padding", "2"], "more than half the kernel"),
        (
            ["--op", "transpose", "--input", "4", "--kernel", "3", "--stride", "2", "--output-padding", "2"],
            "must be smaller than the stride (2) or the dilation (1)",
        ),
        (["--op", "transpose", "--input", "1", "--kernel", "1", "--padding", "1"], "reduce the padding"),
        (["--op", "pool", "--input", "8", "--kernel", "3", "--padding", "same"], "only for conv layers"),
        (["--input", "8", "--kernel", "3", "--ceil-mode"], "only for pool"),
        (["--input", "8", "--kernel", "3", "--output-padding", "1"], "only for transpose"),
        (["--input", "8"], "give --kernel"),
        (["--input", "8", "--kernel", "3", "conv:k=3"], "--kernel describe one layer"),
        (["--input", "8", "cnv:k=3"], "did you mean 'conv'"),
        (["--input", "8", "conv:k=3", "conv:k=9"], "layer 2 (conv:k=9) on 6x6"),
        (["--input", "0", "--kernel", "3"], "input size 0x0 must be at least 1"),
        (["--input", "5x", "--kernel", "3"], "is not N or HxW"),
    ],
)
def test_errors_say_why_and_exit_2(args, fragment):
    fails(["shape", *args], fragment)


def test_layer_file_errors(tmp_path):
    net = tmp_path / "net.txt"
    net.write_text("conv:k=3\nconv:k=3,z=1\n", encoding="utf-8")
    fails(["shape", "--input", "8", "--layers", str(net)], "net.txt, line 2: ")
    fails(["shape", "--input", "8", "--layers", str(tmp_path / "missing.txt")], "cannot read layer file", code=1)
    fails(["shape", "--input", "8", "--layers", str(net), "conv:k=3"], "not both")


def test_help_opens_with_a_sentence_and_shows_examples():
    out = run(["shape", "--help"]).stdout
    assert "Compute output sizes exactly as PyTorch does" in out
    assert "convcli shape --input 5 --kernel 3 --stride 3" in out


def test_shape_does_not_import_numpy():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "convcli", "shape", "--input", "5", "--kernel", "3"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "= 3" in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "convcli" in imported  # the log is real
    assert not imported & {"numpy", "scipy", "PIL"}, sorted(imported & {"numpy", "scipy", "PIL"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    p=st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3)), st.just("same")),
    d=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_shape_predicts_the_engine_array_size(n, k, s, p, d):
    if p == "same":
        s = (1, 1)
    text = lambda pair: f"{pair[0]}x{pair[1]}"  # noqa: E731
    padding = p if p == "same" else text(p)
    args = [
        "shape",
        "--input",
        text(n),
        "--kernel",
        text(k),
        "--stride",
        text(s),
        "--padding",
        padding,
        "--dilation",
        text(d),
        "--json",
    ]
    result = CliRunner().invoke(main, args)
    try:
        actual = correlate2d(np.ones(n), np.ones(k), stride=s, padding=p, dilation=d).shape
    except ShapeError:
        assert result.exit_code == 2, result.stdout
        return
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output"] == {"height": actual[0], "width": actual[1]}


@settings(max_examples=8, deadline=None)
@given(n=st.tuples(st.integers(2, 9), st.integers(2, 9)), k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 2))
def test_shape_predicts_what_filter_writes(tmp_path_factory, n, k, s, p):
    folder = tmp_path_factory.mktemp("filter")
    source, target = folder / "in.npy", folder / "out.npy"
    np.save(source, np.arange(n[0] * n[1], dtype=np.float64).reshape(n))
    predicted = CliRunner().invoke(
        main,
        ["shape", "--input", f"{n[0]}x{n[1]}", "--kernel", str(k), "--stride", str(s), "--padding", str(p), "--json"],
    )
    assume(predicted.exit_code == 0)
    kernel = "; ".join([" ".join(["1"] * k)] * k)  # k x k ones: "1 1; 1 1"
    result = CliRunner().invoke(
        main, ["filter", str(source), "-k", kernel, "--stride", str(s), "--padding", str(p), "-o", str(target), "-q"]
    )
    assert result.exit_code == 0, result.stderr
    assert list(np.load(target).shape) == list(json.loads(predicted.stdout)["output"].values())
