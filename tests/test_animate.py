"""convcli animate: the frames' numbers are the commands' numbers; the files are real GIF/APNG/MP4 animations."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import convcli
from conftest import assert_error, run_cli
from convcli.api.animation import animate
from convcli.errors import ParameterError
from convcli.teach.animate import sample_frames
from convcli.teach.animate_render import render

pytest.importorskip("matplotlib")
pytest.importorskip("imageio")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def gif_frames(data: bytes) -> tuple[int, list[int]]:
    """(frames, durations in ms) of a GIF or APNG, read back by Pillow."""
    with Image.open(io.BytesIO(data)) as image:
        durations = []
        for index in range(image.n_frames):
            image.seek(index)
            durations.append(int(image.info["duration"]))
        return image.n_frames, durations


# ---------------------------------------------------------------------------
# The numbers


def test_the_classic_example_frame_by_frame():
    steps = animate(np.arange(9.0).reshape(3, 3), "0 1; 2 3")
    assert [f.caption for f in steps.frames] == [
        "0×0 + 1×1 + 3×2 + 4×3 = 19",
        "1×0 + 2×1 + 4×2 + 5×3 = 25",
        "3×0 + 4×1 + 6×2 + 7×3 = 37",
        "4×0 + 5×1 + 7×2 + 8×3 = 43",
    ]
    assert [f.cell for f in steps.frames] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert steps.frames[3].taps == ((1, 1), (1, 2), (2, 1), (2, 2))
    np.testing.assert_array_equal(steps.output, [[19, 25], [37, 43]])


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(st.integers(2, 7), st.integers(2, 7)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.integers(1, 2),
    st.integers(0, 2),
    st.integers(1, 2),
    st.booleans(),
    st.sampled_from(["zeros", "reflect", "replicate", "circular", "constant"]),
    st.integers(0, 2**32 - 1),
)
def test_filter_frames_hold_the_windows_and_the_command_numbers(
    size, ksize, stride, padding, dilation, flip, mode, seed
):
    rng = np.random.default_rng(seed)
    image, kernel = rng.integers(-5, 6, size).astype(float), rng.integers(-3, 4, ksize).astype(float)
    options = dict(stride=stride, padding=padding, dilation=dilation, convolve=flip, pad_mode=mode, pad_value=2.0)
    try:
        want = convcli.filter(image, kernel, bias=0.5, **options)
    except ParameterError:
        return  # the window does not fit: animate refuses too
    steps = animate(image, kernel, bias=0.5, **options)
    real = [f for f in steps.frames if not f.missed]
    assert len(real) == want.size == steps.count
    for frame in real:
        assert frame.result == want[frame.cell]
        # the products of the window read from the padded input add up to the result
        assert abs(sum(v * w for v, w in zip(frame.values, frame.weights)) + 0.5 - frame.result) < 1e-9
        for (row, col), value in zip(frame.taps, frame.values):
            assert steps.canvas[row, col] == value
    applied = kernel[::-1, ::-1] if flip else kernel
    assert list(real[0].weights) == applied.ravel().tolist()


def test_pool_frames_equal_the_command(tmp_path):
    grid = np.loadtxt(SAMPLES / "edges.txt") * np.arange(1, 9)
    for op, options in [
        ("max", dict(size=2, stride=2, ceil_mode=True, padding=1)),
        ("mean", dict(size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
        ("mean", dict(size=3, stride=2, padding=1)),
        ("min", dict(size=(2, 3), dilation=2)),
    ]:
        want = convcli.pool(grid, op=op, **options)
        steps = animate(grid, op="pool", pool_op=op, **options)
        real = [f for f in steps.frames if not f.missed]
        assert [f.result for f in real] == want.ravel().tolist()
        for frame in real:
            finite = [v for v in frame.values if np.isfinite(v)]
            if op == "max":
                assert frame.result == max(finite)
            elif op == "min":
                assert frame.result == min(finite)


def test_mean_pool_caption_counts_as_pytorch():
    # 3x3 window at stride 2 with padding 1 on 4x4: the first window holds 4 real values and 5 pads
    x = np.arange(16.0).reshape(4, 4)
    counted = animate(x, op="pool", pool_op="mean", size=3, stride=2, padding=1).frames[0].caption
    real = animate(x, op="pool", pool_op="mean", size=3, stride=2, padding=1, count_include_pad=False).frames[0].caption
    assert counted == "(0 + 0 + 0 + 0 + 0 + 1 + 0 + 4 + 5) / 9 = 1.11111111111"
    assert real == "(0 + 0 + 0 + 0 + 0 + 1 + 0 + 4 + 5) / 4 = 2.5"


def test_upsample_frames_spread_each_pixel_and_end_at_the_command_result():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    steps = animate(x, x, op="upsample", stride=2, padding=1, output_padding=1)
    want = convcli.upsample(x, x, stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(steps.output, want)
    np.testing.assert_array_equal(steps.partial_output(steps.count - 1), want)
    # by hand: after each pixel the full canvas holds the copies spread so far
    canvas = np.zeros(steps.canvas.shape)
    for frame in steps.frames:
        for (row, col), value, weight in zip(frame.taps, frame.values, frame.weights):
            canvas[row, col] += value * weight
        np.testing.assert_array_equal(steps.partial_canvas(frame.index), canvas)
    assert steps.frames[3].caption == "x[1, 1] = 3 adds 3 × kernel at rows 2-3, columns 2-3 of the full result"


def test_the_jump_the_stride_cannot_make():
    steps = animate(np.arange(25.0).reshape(5, 5), "blur:3", stride=3)
    real, missed = steps.frames[:1], steps.frames[1:]
    assert steps.count == 1 and len(missed) == 2 and all(f.missed for f in missed)
    assert missed[0].taps[0] == (0, 3) and missed[0].taps[-1] == (2, 5)
    assert "the last 2 input columns stay unread (--padding 1x1 would reach them)" in missed[0].caption
    assert "the last 2 input rows stay unread" in missed[1].caption
    assert real[0].result == pytest.approx(6.0)


def test_sampling_keeps_the_first_and_the_last_step():
    assert sample_frames(10, None) == list(range(10))
    assert sample_frames(10, 3) == [0, 4, 9]  # 4.5 rounds half to even
    image = convcli.load(SAMPLES / "camera.png")
    steps = animate(image, "vertical", stride=8, frames=5)
    indices = [f.index for f in steps.frames if not f.missed]
    assert (
        len(indices) == 5 and indices[0] == 0 and indices[-1] == steps.count - 1 == 64 * 64 - 1
    )  # floor((512 - 3) / 8) + 1 = 64 a side
    want = convcli.filter(image, "vertical", stride=8)
    assert all(f.result == want[f.cell] for f in steps.frames if not f.missed)
    partial = steps.partial_output(indices[2])
    assert np.isnan(partial.reshape(-1)[indices[2] + 1 :]).all()
    assert (partial.reshape(-1)[: indices[2] + 1] == want.reshape(-1)[: indices[2] + 1]).all()


# ---------------------------------------------------------------------------
# The pictures and the files


def test_frames_are_pictures_of_one_size_that_change_as_the_window_moves():
    steps = animate(np.arange(16.0).reshape(4, 4) - 8, "1 -1; 2 0", padding=1)
    pictures = render(steps, dpi=50)
    assert len(pictures) == len(steps.frames) and len({p.shape for p in pictures}) == 1
    assert pictures[0].dtype == np.uint8 and pictures[0].shape[2] == 3
    assert all(not np.array_equal(a, b) for a, b in zip(pictures, pictures[1:]))


def test_cli_writes_a_gif_with_the_frames_and_the_hold(tmp_path):
    out = tmp_path / "classic.gif"
    run = run_cli(
        [
            "animate",
            "filter",
            SAMPLES / "x.txt",
            "-k",
            "0 1; 2 3",
            "-o",
            out,
            "--fps",
            "4",
            "--hold",
            "2",
            "--dpi",
            "40",
        ]
    )
    assert run.exit_code == 0, run
    assert run.stdout == ""
    assert "4 frames" in run.stderr and str(out) in run.stderr, run
    assert gif_frames(out.read_bytes()) == (4, [250, 250, 250, 2250])


def test_cli_apng_and_stdout(tmp_path):
    out = tmp_path / "pool.png"
    run = run_cli(["animate", "pool", SAMPLES / "x.txt", "--size", "2", "-s", "1", "-o", out, "--dpi", "40"])
    assert run.exit_code == 0, run
    with Image.open(out) as image:
        assert image.format == "PNG" and image.n_frames == 4
    piped = run_cli(["animate", "upsample", "0 1; 2 3", "-k", "0 1; 2 3", "-s", "1", "-o", "-", "--dpi", "40", "-q"])
    assert piped.exit_code == 0 and piped.stderr == "", piped
    assert piped.stdout_bytes.startswith(b"GIF89a") and gif_frames(piped.stdout_bytes)[0] == 4


def test_cli_json_lines_equal_what_filter_writes(tmp_path):
    run = run_cli(["animate", "filter", SAMPLES / "x.txt", "-k", "0 1; 2 3", "-p", "1", "-s", "2", "--json"])
    assert run.exit_code == 0, run
    records = [json.loads(line) for line in run.stdout.splitlines()]
    filtered = run_cli(["filter", SAMPLES / "x.txt", "-k", "0 1; 2 3", "-p", "1", "-s", "2", "-o", "-"])
    want = [float(v) for line in filtered.stdout.split("\n") if line for v in line.split()]
    assert [r["result"] for r in records] == want
    assert records[0]["taps"] == [[0, 0], [0, 1], [1, 0], [1, 1]] and records[0]["weights"] == [0, 1, 2, 3]
    assert not list(tmp_path.iterdir()) and run.stderr == ""


def test_cli_mp4_or_a_clear_error(tmp_path, monkeypatch):
    from convcli.io import animation

    monkeypatch.setattr(animation, "mp4_plugin", lambda: None)
    run = run_cli(["animate", "filter", SAMPLES / "x.txt", "-k", "1", "-o", tmp_path / "x.mp4"])
    assert_error(run, 1, "MP4 needs imageio's ffmpeg plugin", "pip install imageio-ffmpeg")
    assert not (tmp_path / "x.mp4").exists()
    monkeypatch.undo()
    if animation.mp4_plugin() is None:
        pytest.skip("no MP4 plugin installed (imageio-ffmpeg or av)")
    run = run_cli(["animate", "filter", SAMPLES / "x.txt", "-k", "1", "-o", tmp_path / "x.mp4", "--dpi", "40"])
    assert run.exit_code == 0, run
    assert (tmp_path / "x.mp4").read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["animate", "filter", "samples/x.txt"], 2, "Missing option '-k'"),
        (["animate", "filter", "samples/x.txt", "-k", "gausian"], 2, "did you mean"),
        (["animate", "filter", "samples/x.txt", "-k", "1", "-o", "-", "--json"], 2, "choose one"),
        (["animate", "filter", "samples/x.txt", "-k", "1", "-o", "x.avi"], 2, "cannot tell the animation format"),
        (["animate", "filter", "samples/missing.txt", "-k", "1"], 1, "missing.txt"),
        (["animate", "filter", "samples/coffee.png", "--color", "-k", "1", "-o", "c.gif"], 2, "drop --color"),
        (["animate", "filter", "samples/x.txt", "-k", "gaussian:5"], 2, "kernel 5 is larger"),
        (["animate", "pool", "samples/x.txt", "--op", "mean", "-d", "2"], 2, "dilation"),
        (["animate", "filter", "samples/x.txt", "-k", "1", "--frames", "0"], 2, "--frames"),
        (["animate", "filter", "samples/x.txt", "-k", "1", "-o", "nowhere/x.gif"], 2, "does not exist"),
    ],
)
def test_cli_errors(args, code, fragment, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert_error(run_cli(args), code, fragment)


def test_cli_refuses_gif_bytes_on_a_terminal(monkeypatch):
    monkeypatch.setattr("convcli.cli.cmd_animate.stdout_is_terminal", lambda: True)
    assert_error(run_cli(["animate", "filter", str(SAMPLES / "x.txt"), "-k", "1", "-o", "-"]), 2, "terminal")


def test_help_shares_the_options_of_the_commands():
    for sub, borrowed in (("filter", "--pad-mode"), ("pool", "--ceil-mode"), ("upsample", "--output-padding")):
        run = run_cli(["animate", sub, "--help"])
        assert run.exit_code == 0 and borrowed in run.stdout and "Examples:" in run.stdout, run
