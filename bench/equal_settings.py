"""Issue 19, targets 1-3: whole processes at equal settings against vips and a SciPy loop.

    python bench/equal_settings.py                 # all three sections
    python bench/equal_settings.py --only e2e      # 12 MP JPEG -> PNG / TIFF against vips
    python bench/equal_settings.py --only small    # a 451x300 PNG, 3x3, against vips' two steps; --help, shape
    python bench/equal_settings.py --only batch    # 200 PNGs 640x480, two kernels: --jobs 2, --jobs 1, SciPy loop

Every contender is a whole process (start-up, decode, gray, filter, encode), run once to warm up
and then --runs times in a new random order each round (bench/run.py's ``measure``); medians in
ms and ratios within one run. vips gets the same PNG level (``out.png[compression=1]``) as
convcli's default, and each tool is also timed at its own default (vips 6, convcli 1). The load
average is printed before and after: on a shared 2-core machine it decides how far to trust a
number. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from run import load, measure  # noqa: E402

PYTHON = sys.executable
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH", "")])])


def runner(command: str):  # type: ignore[no-untyped-def]
    def run() -> None:
        done = subprocess.run(command, shell=True, env=ENV, capture_output=True)
        if done.returncode:
            raise RuntimeError(f"{command}: {done.stderr.decode()[-400:]}")

    return run


def timed(commands: dict[str, str], runs: int) -> dict[str, float]:
    return {
        name: value[0] * 1e3 for name, value in measure({n: runner(c) for n, c in commands.items()}, runs, 120).items()
    }


def mask(work: Path, spec: str) -> tuple[Path, str]:
    """A vips matrix for the kernel, and the vips operation: ``conv`` (3x3) or ``convsep`` (a Gaussian's 1-D factor)."""
    sys.path.insert(0, str(ROOT / "src"))
    from convcli.kernels import parse_kernel_spec

    kernel = parse_kernel_spec(spec).weights
    k = kernel.shape[0]
    path = work / f"{spec.replace(':', '')}.mat"
    if spec == "vertical":
        path.write_text(f"{k} {k} 1 0\n" + "\n".join(" ".join(f"{v:g}" for v in row) for row in kernel) + "\n")
        return path, "conv"
    line = kernel[:, k // 2] / np.sqrt(kernel[k // 2, k // 2])
    path.write_text(f"{k} 1 1 0\n" + " ".join(f"{v:.9g}" for v in line) + "\n")
    return path, "convsep"


def section_e2e(work: Path, runs: int) -> None:
    from PIL import Image

    photo = work / "photo-12mp.jpg"
    Image.open(ROOT / "samples" / "chelsea.png").convert("RGB").resize((4000, 3000), Image.BICUBIC).save(
        photo, quality=90
    )
    print("## 12 MP JPEG (4000x3000) -> PNG / TIFF, whole processes, ms (median)\n")
    print("| kernel | output | convcli | vips, same level | vips, its default | convcli / vips (same) | (defaults) |")
    print("|---|---|---|---|---|---|---|")
    for spec in ("vertical", "gaussian:15"):
        matrix, operation = mask(work, spec)
        vips = f"vips colourspace {photo} {work / 'g.v'} b-w && vips {operation} {work / 'g.v'} "
        for output in ("png", "tif"):
            commands = {"convcli": f"{PYTHON} -m convcli filter {photo} -k {spec} -o {work / ('c.' + output)} -q"}
            if output == "png":
                commands["vips same"] = vips + f"'{work / 'v.png'}[compression=1]' {matrix} --precision float"
                commands["vips default"] = vips + f"{work / 'v.png'} {matrix} --precision float"
            else:
                commands["vips same"] = vips + f"{work / 'v.tif'} {matrix} --precision float"
            result = timed(commands, runs)
            default = result.get("vips default", result["vips same"])
            print(
                f"| {spec} | {output} | {result['convcli']:.0f} | {result['vips same']:.0f} | {default:.0f} "
                f"| **{result['convcli'] / result['vips same']:.2f}** | {result['convcli'] / default:.2f} |",
                flush=True,
            )
    print()


def section_small(work: Path, runs: int) -> None:
    small = ROOT / "samples" / "chelsea.png"
    matrix, _ = mask(work, "vertical")
    commands = {
        "floor: python -c 'import numpy, click, PIL.Image'": f"{PYTHON} -c 'import numpy, click, PIL.Image'",
        "convcli filter (3x3, PNG out)": f"{PYTHON} -m convcli filter {small} -k vertical -o {work / 's.png'} -q",
        "vips colourspace + vips conv": f"vips colourspace {small} {work / 's.v'} b-w && "
        f"vips conv {work / 's.v'} {work / 'sv.png'} {matrix} --precision float",
        "convcli --help": f"{PYTHON} -m convcli --help",
        "convcli shape": f"{PYTHON} -m convcli shape -i 224x224 -k 3 -s 2",
    }
    result = timed(commands, runs)
    print("## A small file (451x300 PNG, 3x3, PNG out) and start-up, whole processes, ms (median)\n")
    print("| command | ms |")
    print("|---|---|")
    for name, value in result.items():
        print(f"| {name} | {value:.0f} |")
    ratio = result["convcli filter (3x3, PNG out)"] / result["vips colourspace + vips conv"]
    print(f"\nconvcli / vips' two steps: **{ratio:.2f}** (target <= 1.25)\n", flush=True)


BATCH_LOOP = """
import glob, sys
import numpy as np
from PIL import Image
from scipy import ndimage
vertical = np.array([[1.0, 0.0, -1.0]] * 3, dtype=np.float32)
line = np.exp(-((np.arange(15) - 7) ** 2) / 15.0).astype(np.float32)
line /= line.sum()
for path in sorted(glob.glob(sys.argv[1] + "/*.png")):
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    results = [
        ndimage.correlate(gray, vertical, mode="constant"),
        # the Gaussian as two 1-D passes, as a careful hand-written loop would
        ndimage.correlate1d(ndimage.correlate1d(gray, line, axis=0, mode="constant"), line, axis=1, mode="constant"),
    ]
    for index, out in enumerate(results):
        low, high = float(out.min()), float(out.max())
        pixels = np.rint((out - low) * (255 / (high - low or 1))).astype(np.uint8)
        Image.fromarray(pixels).save(f"{sys.argv[2]}/{index}-{path.rsplit('/', 1)[1]}", compress_level=1)
"""


def section_batch(work: Path, runs: int, count: int) -> None:
    from PIL import Image

    sources = work / "batch"
    sources.mkdir()
    base = Image.open(ROOT / "samples" / "chelsea.png").convert("RGB").resize((640, 480), Image.BICUBIC)
    rng = np.random.default_rng(0)
    for index in range(count):
        noisy = np.clip(np.asarray(base, dtype=np.int16) + rng.integers(-8, 9, (480, 640, 3)), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(sources / f"img{index:03d}.png", compress_level=1)
    outs = {name: work / name for name in ("j1", "j2", "loop")}
    for folder in outs.values():
        folder.mkdir()
    script = work / "loop.py"
    script.write_text(BATCH_LOOP)
    convcli = (
        f"{PYTHON} -m convcli filter '{sources}/*.png' -k vertical -k gaussian:15 -q --name '{{stem}}-{{kernel}}.png'"
    )
    commands = {
        "convcli --jobs 2": f"cd {outs['j2']} && {convcli} --jobs 2",
        "convcli --jobs 1": f"cd {outs['j1']} && {convcli} --jobs 1",
        "SciPy loop (one process)": f"{PYTHON} {script} {sources} {outs['loop']}",
    }
    result = timed(commands, runs)
    print(f"## Batch: {count} PNGs 640x480, `vertical` and `gaussian:15`, whole processes, ms (median)\n")
    print("| command | ms |")
    print("|---|---|")
    for name, value in result.items():
        print(f"| {name} | {value:.0f} |")
    loop, one, two = result["SciPy loop (one process)"], result["convcli --jobs 1"], result["convcli --jobs 2"]
    print(f"\nSciPy loop / --jobs 2: **{loop / two:.2f}** (target >= 2); --jobs 1 / --jobs 2: **{one / two:.2f}** "
          f"(target >= 1.7)\n", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="e2e,small,batch")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--count", type=int, default=200, help="images in the batch")
    args = parser.parse_args()
    if not shutil.which("vips"):
        sys.exit("needs the vips command: apt-get install -y libvips-tools")
    work = Path(tempfile.mkdtemp(prefix="convcli-equal-"))
    print(f"load before: {load()} (2 cores); isal: {'yes' if _has('isal') else 'no'}; cv2: {_has('cv2')}\n")
    try:
        sections = args.only.split(",")
        if "e2e" in sections:
            section_e2e(work, args.runs)
        if "small" in sections:
            section_small(work, args.runs)
        if "batch" in sections:
            section_batch(work, max(3, args.runs // 2), args.count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load after: {load()}")


def _has(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


if __name__ == "__main__":
    main()
