"""Interrupted batches: SIGINT and SIGKILL in the middle of ``convcli filter`` on several large sources.

After SIGINT: exit 130, one line on stderr, no temporary files, every output present decodes.
After SIGKILL: every output present decodes; only hidden ``.<name>.<random>.part`` files may remain.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SRC = Path(__file__).resolve().parent.parent / "src"
KERNELS = ["-k", "gaussian:7:1.2", "-k", "laplacian:8", "-k", "emboss"]
SOURCES = 8
PART = re.compile(r"^\.s\d-[A-Za-z0-9.+-]+\.png\.[A-Za-z0-9_]+\.part$")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> list[Path]:
    """Eight 1200x1600 noise images (noise makes encoding slow enough to interrupt mid-batch)."""
    folder = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(0)
    paths = []
    for index in range(SOURCES):
        path = folder / f"s{index}.png"
        Image.fromarray(rng.integers(0, 256, (1200, 1600), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _start(batch: list[Path], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, "-m", "convcli", "filter", *map(str, batch), *KERNELS, "-q"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _outputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _wait_for_outputs(process: subprocess.Popen, folder: Path, count: int, limit: float = 40.0) -> None:
    deadline = time.monotonic() + limit
    while len(_outputs(folder)) < count:
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no outputs appeared"
        time.sleep(0.005)


def _assert_every_output_decodes(folder: Path) -> int:
    outputs = _outputs(folder)
    for path in outputs:
        with Image.open(path) as image:
            image.load()  # raises on a truncated file
            assert image.size == (1600 - 6, 1200 - 6) or image.size == (1600 - 2, 1200 - 2), path
    return len(outputs)


def test_sigint_mid_batch(batch, tmp_path):
    process = _start(batch, tmp_path)
    _wait_for_outputs(process, tmp_path, 4)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.decode().strip().splitlines() == ["convcli: interrupted"]
    assert b"Traceback" not in stderr and stdout == b""
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files
    written = _assert_every_output_decodes(tmp_path)
    assert 4 <= written < SOURCES * 3  # really interrupted in the middle


def test_sigint_repeatedly_at_random_moments(batch, tmp_path):
    # Interrupts at varied points (decoding, filtering, encoding, writing) never leave a temporary or partial file.
    rng = np.random.default_rng(7)
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        process = _start(batch, folder)  # all eight: the run outlasts the wait (three finish within it now)
        _wait_for_outputs(process, folder, 1)
        time.sleep(float(rng.uniform(0, 0.4)))
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=30)
        assert process.returncode in (130, 0), stderr  # 0 when the batch finished first
        if process.returncode == 130:
            assert stderr.decode().strip().splitlines() == ["convcli: interrupted"]
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
        _assert_every_output_decodes(folder)


def _wait_for_part_file(folder: Path, timeout: float = 2.0) -> None:
    """Aim a signal at the moment a temporary output file exists (go on at once after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(p.name.endswith(".part") for p in folder.iterdir()):
        time.sleep(0.0005)


def test_sigkill_mid_batch_leaves_only_hidden_part_files(batch, tmp_path):
    leftovers = []
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        process = _start(batch, folder)
        _wait_for_outputs(process, folder, 2 + attempt)
        _wait_for_part_file(folder)
        process.kill()
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert all(PART.match(name) for name in hidden), hidden
        leftovers.extend(hidden)
        _assert_every_output_decodes(folder)
    # The names say what they are: '.s3-emboss.png.k2j4_x.part' (hidden, the output's name, '.part').
    for name in leftovers:
        assert name.startswith(".s") and name.endswith(".part")


def test_sigterm_mid_batch_leaves_no_temporary_files(batch, tmp_path):
    # SIGTERM keeps its default action (the process ends at once) but is held while an output is
    # written and renamed, so it lands before or after, and never leaves a .part file.
    for attempt in range(2):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        process = _start(batch, folder)
        _wait_for_outputs(process, folder, 2 + attempt)
        _wait_for_part_file(folder)
        process.terminate()
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGTERM
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
        _assert_every_output_decodes(folder)


@pytest.mark.parametrize(("args", "code"), [(["shape", "--input", "5", "--kernel", "3"], 0), (["shape"], 2)])
def test_ctrl_c_after_the_command_returned_keeps_its_exit_code(args, code):
    # A Ctrl-C that lands once the work is done (here: at exit, from an atexit hook) neither kills Python by
    # SIGINT nor prints a KeyboardInterrupt: the process exits with the command's own code.
    script = (
        "import atexit, os, signal, sys\n"
        "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
        f"sys.argv = ['convcli', *{args!r}]\n"
        "from convcli.cli import run\n"
        "run()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stderr
    assert "KeyboardInterrupt" not in result.stderr and "Traceback" not in result.stderr
