"""`convcli shape` predicts exactly the array sizes that filter, pool and upsample write."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import run_cli


def refused(run) -> tuple[str, int]:
    """A refusal as ("refused", exit code), after checking it is one clean line (never a crash)."""
    assert run.exception is None, run
    assert run.exit_code == 2, run
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr, run
    return ("refused", run.exit_code)


def predicted(op: str, size: tuple[int, int], options: list[str]) -> tuple[int, int] | tuple[str, int]:
    run = run_cli(["shape", "--op", op, "--input", f"{size[0]}x{size[1]}", *options, "--json"])
    if run.exit_code != 0:
        return refused(run)
    output = json.loads(run.stdout)["output"]
    return (output["height"], output["width"])


def written(command: list[str], tmp_path, size: tuple[int, int]) -> tuple[int, int] | tuple[str, int]:
    source = tmp_path / "in.npy"
    np.save(source, np.random.default_rng(0).random(size))
    out = tmp_path / "out.npy"
    run = run_cli([command[0], source, *command[1:], "-o", out])
    if run.exit_code != 0:
        return refused(run)
    return np.load(out).shape


sizes = st.tuples(st.integers(1, 12), st.integers(1, 12))


@settings(max_examples=40, deadline=None)
@given(sizes, st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2))
@example((5, 7), 3, 3, 0, 1)
def test_filter_sizes(tmp_path_factory, size, k, s, p, d):
    options = ["--stride", str(s), "--padding", str(p), "--dilation", str(d)]
    want = predicted("conv", size, ["--kernel", str(k), *options])
    got = written(["filter", "-k", f"blur:{k}", *options], tmp_path_factory.mktemp("f"), size)
    assert want == got  # the same size, or both refused with exit 2 and one line
    if want[0] != "refused":
        assert min(want) >= 1


@settings(max_examples=40, deadline=None)
@given(sizes, st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.booleans())
@example((5, 7), 2, 2, 1, 1, True)
def test_pool_sizes(tmp_path_factory, size, k, s, p, d, ceil):
    options = ["--stride", str(s), "--padding", str(p), "--dilation", str(d)] + (["--ceil-mode"] if ceil else [])
    want = predicted("pool", size, ["--kernel", str(k), *options])
    got = written(["pool", "--op", "max", "--size", str(k), *options], tmp_path_factory.mktemp("p"), size)
    assert want == got  # the same size, or both refused with exit 2 and one line
    if want[0] != "refused":
        assert min(want) >= 1


@settings(max_examples=40, deadline=None)
@given(sizes, st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.integers(0, 2))
@example((4, 3), 3, 2, 1, 1, 1)
def test_upsample_sizes(tmp_path_factory, size, k, s, p, d, output_padding):
    options = ["--stride", str(s), "--padding", str(p), "--dilation", str(d), "--output-padding", str(output_padding)]
    want = predicted("transpose", size, ["--kernel", str(k), *options])
    got = written(["upsample", "-k", f"blur:{k}", *options], tmp_path_factory.mktemp("u"), size)
    assert want == got  # the same size, or both refused with exit 2 and one line
    if want[0] != "refused":
        assert min(want) >= 1
