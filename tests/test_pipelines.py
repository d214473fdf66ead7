"""Pipelines through real processes: stdin sniffing, --format on stdout, Ctrl-C in a batch, shell completion."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import ROOT, SAMPLES

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
CONVCLI = [sys.executable, "-m", "convcli"]


def chain(*commands: list[str], data: bytes | None = None, cwd: Path | None = None) -> tuple[bytes, list[str]]:
    """Run commands joined by pipes (real processes); return the last stdout and every stderr."""
    processes: list[subprocess.Popen] = []
    previous = None
    for number, command in enumerate(commands):
        process = subprocess.Popen(
            [*CONVCLI, *command],
            stdin=previous.stdout if previous else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            cwd=cwd,
        )
        if previous is not None:
            previous.stdout.close()  # the next process owns the pipe now
        elif data is not None:
            process.stdin.write(data)
            process.stdin.close()
        else:
            process.stdin.close()
        processes.append(process)
        previous = process
        del number
    out = processes[-1].stdout.read()
    errors = []
    for process in processes:
        process.wait(timeout=60)
        errors.append(process.stderr.read().decode())
        process.stderr.close()
        assert process.returncode == 0, errors
    processes[-1].stdout.close()
    return out, errors


def test_filter_pool_upsample_on_numbers():
    """x = 0..8; k = [[0, 1], [2, 3]] gives [[19, 25], [37, 43]]; max pool 2, stride 1 gives 43; upsampled by the kernel."""
    kernel = [[1.0, 2.0], [3.0, 4.0]]
    out, errors = chain(
        ["filter", str(SAMPLES / "x.txt"), "-k", str(SAMPLES / "k.txt"), "-o", "-"],
        ["pool", "-", "--size", "2", "--stride", "1", "-o", "-", "--format", "npy"],
        ["upsample", "-", "-k", "1 2; 3 4", "--stride", "2", "-o", "-"],
    )
    assert (
        "3x3 (HxW, text matrix)" in errors[0] and "2x2 (HxW, text matrix)" in errors[1] and "1x1 (HxW, NPY" in errors[2]
    )
    # an .npy source stays .npy on stdout without --format
    np.testing.assert_array_equal(np.load(io.BytesIO(out)), 43 * np.array(kernel))


def test_filter_pool_upsample_on_an_image(tmp_path):
    out, errors = chain(
        ["filter", "-", "-k", "gaussian:3", "-o", "-"],
        ["pool", "-", "--op", "max", "--size", "2", "-o", "-"],
        ["upsample", "-", "-k", "nearest", "--stride", "2", "-o", "-", "--format", "jpeg"],
        data=(SAMPLES / "camera.png").read_bytes(),
    )
    assert "stdin 512x512 (HxW, PNG L 8-bit)" in errors[0] and "-> 510x510 -> stdout" in errors[0]
    assert "stdin 510x510 (HxW, PNG L 8-bit)" in errors[1] and "-> 255x255 -> stdout" in errors[1]
    assert out.startswith(b"\xff\xd8\xff")  # --format jpeg on stdout
    with Image.open(io.BytesIO(out)) as image:
        assert image.size == (510, 510)


def test_format_on_stdout_and_sniffed_stdin():
    for fmt, magic in (("png", b"\x89PNG"), ("npy", b"\x93NUMPY"), ("tiff", b"II*\x00"), ("bmp", b"BM")):
        out, _ = chain(["filter", "-", "-k", "1", "-o", "-", "--format", fmt], data=(SAMPLES / "x.txt").read_bytes())
        assert out.startswith(magic), fmt
        back, errors = chain(["pool", "-", "--size", "1", "-o", "-", "--format", "txt"], data=out)
        assert len(back.decode().split()) == 9, (fmt, errors)


def test_learn_reads_stdin_and_prints_the_kernel():
    target, _ = chain(["filter", str(SAMPLES / "edges.txt"), "-k", "diff-x", "-o", "-", "--format", "npy"])
    out, errors = chain(["learn", str(SAMPLES / "edges.txt"), "-", "--solver", "lstsq", "-o", "-"], data=target)
    values = np.loadtxt(io.StringIO(out.decode()), ndmin=2)  # the '#' header is a comment
    np.testing.assert_allclose(values, [[1.0, -1.0]], atol=1e-9)
    assert "least-squares 1x2 kernel" in errors[0]


def test_ctrl_c_mid_batch_leaves_only_complete_outputs(tmp_path):
    sources = tmp_path / "in"
    sources.mkdir()
    data = (SAMPLES / "camera.png").read_bytes()
    for number in range(60):
        (sources / f"img{number:02d}.png").write_bytes(data)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*CONVCLI, "filter", f"{sources}/*.png", "-k", "gaussian:15", "-k", "blur:9", "--outdir", out, "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches the whole group
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or len(os.listdir(out)) < 4):
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    text = stderr.decode()
    assert process.returncode == 130, text
    assert "convcli: interrupted" in text and "Traceback" not in text
    names = os.listdir(out)
    assert 4 <= len(names) < 120, names  # interrupted part-way
    assert not [n for n in names if n.startswith(".") or n.endswith(".part")], names
    for name in names:
        with Image.open(out / name) as image:
            image.load()  # decodes completely: no half-written file
            assert image.size == (498, 498) or image.size == (504, 504)


def complete(words: str, index: int) -> list[str]:
    result = subprocess.run(
        CONVCLI,
        env={**ENV, "_CONVCLI_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(index)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_shell_completion_of_commands_options_and_kernels():
    assert complete("convcli fil", 1) == ["filter"]
    assert set(complete("convcli ", 1)) >= {"filter", "kernels", "learn", "pool", "upsample"}
    assert {"--outdir", "--output", "--op"} <= set(complete("convcli pool --o", 2))
    assert complete("convcli filter a.png -k sob", 4) == ["sobel-x", "sobel-y"]
    assert "gaussian" in complete("convcli kernels show g", 3)
    script = subprocess.run(CONVCLI, env={**ENV, "_CONVCLI_COMPLETE": "bash_source"}, capture_output=True, text=True)
    assert "complete " in script.stdout and "_CONVCLI_COMPLETE=bash_complete" in script.stdout
