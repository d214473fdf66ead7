"""Issue 19, targets 1-3: whole processes at equal settings against vips and a SciPy loop.

    python bench/equal_settings.py                 # all three sections
    python bench/equal_settings.py --only e2e      # 12 MP JPEG -> PNG / TIFF against vips
    python bench/equal_settings.py --only small    # a 451x300 PNG, 3x3, against vips' two steps; --help, shape
    python bench/equal_settings.py --only batch    # 200 PNGs 640x480, two kernels: --jobs 2, --jobs 1, SciPy loop
    python bench/equal_settings.py --only small,imports --base /tmp/base/src   # start-up against another tree

Every contender is a whole process (start-up, decode, gray, filter, encode), run once to warm up
and then --runs times in a new random order each round (bench/run.py's ``measure``); medians in
ms and ratios within one run. vips gets the same PNG level (``out.png[compression=1]``) as
convcli's default, and each tool is also timed at its own default (vips 6, convcli 1). The load
average is printed before and after: on a shared 2-core machine it decides how far to trust a
number. Not part of the test suite.

``--base SRC`` (a copy of another commit's ``src``, e.g. ``git worktree add /tmp/base main``) adds
that tree's convcli to the small-file section and the import profile, timed in the same rounds.
The ``imports`` section runs the small job under ``python -X importtime`` ``--runs`` times and
tables the median self time of every module it imports beyond the floor's (numpy, click,
PIL.Image). Processes run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` dropped), as an
installed convcli runs.
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


SMALL = ROOT / "samples" / "chelsea.png"
FLOOR = "import numpy, click, PIL.Image"
#: the convcli commands of the small-file section: name -> arguments
STARTUP = {
    "filter (3x3, PNG out)": f"filter {SMALL} -k vertical -o {{work}}/s.png -q",
    "--help": "--help",
    "shape": "shape -i 224x224 -k 3 -s 2",
    "kernels": "kernels",
}


def convcli(src: Path | None = None) -> str:
    """The command that starts convcli from ``src`` (this tree's when None)."""
    return f"env PYTHONPATH={src} {PYTHON} -m convcli" if src is not None else f"{PYTHON} -m convcli"


def section_small(work: Path, runs: int, base: Path | None = None) -> None:
    matrix, _ = mask(work, "vertical")
    commands = {
        f"floor: python -c '{FLOOR}'": f"{PYTHON} -c '{FLOOR}'",
        "vips colourspace + vips conv": f"vips colourspace {SMALL} {work / 's.v'} b-w && "
        f"vips conv {work / 's.v'} {work / 'sv.png'} {matrix} --precision float",
    }
    for name, arguments in STARTUP.items():
        commands[f"convcli {name}"] = f"{convcli()} {arguments.format(work=work)}"
        if base is not None:
            commands[f"base convcli {name}"] = f"{convcli(base)} {arguments.format(work=work / 'base')}"
    (work / "base").mkdir(exist_ok=True)
    result = timed(commands, runs)
    print("## A small file (451x300 PNG, 3x3, PNG out) and start-up, whole processes, ms (median)\n")
    print("| command | ms | / vips' two steps | / floor |")
    print("|---|---|---|---|")
    vips, floor = result["vips colourspace + vips conv"], result[f"floor: python -c '{FLOOR}'"]
    for name, value in result.items():
        print(f"| {name} | {value:.0f} | {value / vips:.2f} | {value / floor:.2f} |")
    ratio = result["convcli filter (3x3, PNG out)"] / vips
    print(f"\nconvcli filter / vips' two steps: **{ratio:.2f}** (target <= 1.25)", end="")
    if base is not None:
        print(f"; base: {result['base convcli filter (3x3, PNG out)'] / vips:.2f}", end="")
    print("\n", flush=True)


def import_times(command: list[str], env: dict[str, str]) -> dict[str, int]:
    """Self time in microseconds of every module a process imports (``python -X importtime``)."""
    done = subprocess.run([PYTHON, "-X", "importtime", *command], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{command}: {done.stderr[-400:]}")
    times = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line.split(":", 1)[1].split("|")
            times[name.strip()] = int(own)
    return times


def section_imports(work: Path, runs: int, base: Path | None = None, top: int = 20) -> None:
    """The small job's imports beyond the floor: module count and median self times, convcli's own and the rest."""
    arguments = ["-m", "convcli", *STARTUP["filter (3x3, PNG out)"].format(work=work).split()]
    trees = {"this tree": ROOT / "src", **({"base": base} if base is not None else {})}
    floor: list[dict[str, int]] = []
    samples: dict[str, list[dict[str, int]]] = {name: [] for name in trees}
    import_times(["-c", FLOOR], ENV)  # warm the bytecode caches
    for src in trees.values():
        import_times(arguments, {**ENV, "PYTHONPATH": str(src)})
    for _ in range(runs):  # round-robin: the floor and each tree once per round
        floor.append(import_times(["-c", FLOOR], ENV))
        for name, src in trees.items():
            samples[name].append(import_times(arguments, {**ENV, "PYTHONPATH": str(src)}))
    floor_modules = set().union(*floor)

    def median(rounds: list[dict[str, int]], module: str) -> float:
        return float(np.median([r.get(module, 0) for r in rounds])) / 1e3

    print("## Imports of the small job beyond the floor (`python -X importtime`, median self ms)\n")
    print(
        f"floor ({FLOOR}): {len(floor_modules)} modules, {np.median([sum(r.values()) for r in floor]) / 1e3:.1f} ms\n"
    )
    print("| tree | modules beyond the floor | of them convcli's | ms beyond the floor | convcli's ms |")
    print("|---|---|---|---|---|")
    extra_by_tree = {}
    for name, rounds in samples.items():
        extra = sorted(set().union(*rounds) - floor_modules)
        extra_by_tree[name] = extra
        own = [m for m in extra if m.split(".")[0] == "convcli"]
        total = np.median([sum(v for m, v in r.items() if m not in floor_modules) for r in rounds]) / 1e3
        own_ms = np.median([sum(r.get(m, 0) for m in own) for r in rounds]) / 1e3
        print(f"| {name} | {len(extra)} | {len(own)} | {total:.1f} | {own_ms:.1f} |")
    for name, rounds in samples.items():
        print(f"\n{name}: the {top} dearest modules beyond the floor\n")
        print("| module | self ms |")
        print("|---|---|")
        ranked = sorted(extra_by_tree[name], key=lambda m: -median(rounds, m))
        for module in ranked[:top]:
            print(f"| {module} | {median(rounds, module):.2f} |")
    print(flush=True)


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
    parser.add_argument("--base", type=Path, help="another tree's src, timed beside this one (small, imports)")
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
            section_small(work, args.runs, args.base)
        if "imports" in sections:
            section_imports(work, args.runs, args.base)
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
