#!/usr/bin/env python
"""convcli's benchmark: the engine against its peers, side by side, and the issue-7 targets.

Run from the repository root (peers come from the ``bench`` extra)::

    pip install -e '.[bench]'          # pyvips, torch (CPU), opencv-python-headless
    apt-get install -y libvips-tools imagemagick   # the vips and convert commands (end-to-end)
    python bench/run.py                # everything, writes bench/RESULTS.md
    python bench/run.py --quick        # a subset in a few minutes

Method: per case every contender (convcli, each peer, and a memory pass
``np.copyto`` of the same array) runs once to warm up, then ``--runs`` times
round-robin (interleaved, so load from other processes hits all alike); the
table shows medians. A contender whose warm-up exceeds ``--budget`` seconds is
not run again: its single time is shown with ``*``, and at the larger image size it is
skipped. Not part of the test suite.
"""

from __future__ import annotations

import os

# Before NumPy/SciPy/torch load: OpenBLAS workers otherwise spin ~0.1 s after each call and steal the
# other core from whatever runs next; OpenMP (torch) waits passively for the same reason.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from convcli.engine import correlate2d, plan_correlation  # noqa: E402

CORES = os.cpu_count() or 1
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


# ---------------------------------------------------------------------------
# Timing


def measure(contenders: dict[str, Callable[[], object]], runs: int, budget: float) -> dict[str, tuple[float, int]]:
    """Median seconds and sample count per contender: one warm-up, then ``runs`` interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    slow = set()
    # Calls per sample: a call under 10 ms is repeated to fill about 20 ms (as timeit's autorange), so
    # sub-millisecond cases are not at the mercy of one scheduler tick; the same for every contender.
    number: dict[str, int] = {}
    # Let the thread pools of whatever ran before (torch, pyvips, OpenBLAS) go idle: the first contender
    # would otherwise share the cores with their spinning threads.
    time.sleep(0.3)
    for name, function in contenders.items():
        start = time.perf_counter()
        function()
        elapsed = time.perf_counter() - start
        if elapsed < 0.01:  # the calls per sample from a warm call: a first call's planning and imports (convcli's
            start = time.perf_counter()  # first call is 10-50x its next) gave it fewer calls per sample than its
            function()  # peers, and so a larger share of each sample's wake-up of the thread pools
            elapsed = time.perf_counter() - start
        number[name] = 1 if elapsed >= 0.01 else max(1, min(1000, int(0.02 / max(elapsed, 1e-6))))
        if elapsed > budget:
            slow.add(name)
            samples[name].append(elapsed)
    names = list(contenders)
    # A new random order every round (seeded, so reruns are comparable): a rotation would keep the cyclic order,
    # and one contender would always follow the same neighbour (the memory-pass copy, say, that leaves the
    # caches cold and OpenCV's workers asleep).
    order = random.Random(len(names) * 7919 + runs)
    for _ in range(runs):
        for name in order.sample(names, len(names)):
            function = contenders[name]
            if name in slow:
                continue
            calls = number[name]
            start = time.perf_counter()
            for _ in range(calls):
                function()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: (statistics.median(values), len(values)) for name, values in samples.items()}


def ms(value: tuple[float, int] | None) -> str:
    if value is None:
        return "-"
    seconds, count = value
    if count == 0:
        return "skipped"
    return f"{seconds * 1e3:.3g}" + ("*" if count == 1 else "")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Kernels and peers


def gaussian(k: int) -> np.ndarray:
    """convcli's gaussian:k (sigma^2 = k/2), normalised to sum 1."""
    grid = np.arange(k) - (k - 1) / 2
    profile = np.exp(-(grid * grid) / float(k))
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def random_kernel(k: int) -> np.ndarray:
    return np.random.default_rng(k).uniform(-1, 1, size=(k, k)) / k


def numpy_peers(x: np.ndarray, kernel: np.ndarray, separable: bool) -> dict[str, Callable[[], object]]:
    """The default-install peers: SciPy (one core unless told), torch conv2d (CPU), pyvips."""
    from scipy import ndimage, signal

    k = kernel.shape[0]
    k32 = kernel.astype(np.float32)
    peers: dict[str, Callable[[], object]] = {
        "ndimage.correlate": lambda: ndimage.correlate(x, k32, mode="constant"),
        "fftconvolve": lambda: signal.fftconvolve(x, k32[::-1, ::-1], mode="same"),
        "oaconvolve": lambda: signal.oaconvolve(x, k32[::-1, ::-1], mode="same"),
    }
    if separable:
        column = k32[:, k // 2] / np.sqrt(k32[k // 2, k // 2])
        peers["correlate1d x2"] = lambda: ndimage.correlate1d(
            ndimage.correlate1d(x, column, axis=0, mode="constant"), column, axis=1, mode="constant"
        )
    try:
        import torch

        torch.set_num_threads(CORES)
        tx = torch.from_numpy(x)[None, None]
        tk = torch.from_numpy(np.ascontiguousarray(k32))[None, None]

        def torch_conv() -> object:
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tk, padding=k // 2)

        peers["torch conv2d"] = torch_conv
    except ImportError:
        pass
    try:
        import pyvips

        image = pyvips.Image.new_from_memory(x.tobytes(), x.shape[1], x.shape[0], 1, "float")
        mask = pyvips.Image.new_from_array(kernel.tolist())
        peers["pyvips conv"] = lambda: image.conv(mask, precision="float").write_to_memory()
        if separable:
            line = pyvips.Image.new_from_array([(kernel[:, k // 2] / np.sqrt(kernel[k // 2, k // 2])).tolist()])
            peers["pyvips convsep"] = lambda: image.convsep(line, precision="float").write_to_memory()
    except (ImportError, OSError):
        pass
    return peers


def opencv_peers(x: np.ndarray, kernel: np.ndarray, separable: bool, box: bool) -> dict[str, Callable[[], object]]:
    import cv2

    k = kernel.shape[0]
    k32 = kernel.astype(np.float32)
    border = cv2.BORDER_CONSTANT
    peers: dict[str, Callable[[], object]] = {"cv2.filter2D": lambda: cv2.filter2D(x, -1, k32, borderType=border)}
    if separable:
        line = (k32[:, k // 2] / np.sqrt(k32[k // 2, k // 2])).copy()
        peers["cv2.sepFilter2D"] = lambda: cv2.sepFilter2D(x, -1, line, line, borderType=border)
    if box:
        peers["cv2.blur"] = lambda: cv2.blur(x, (k, k), borderType=border)
    return peers


def versions() -> list[str]:
    import scipy

    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}",
    ]
    for name in ("cv2", "torch", "pyvips"):
        try:
            module = __import__(name)
            extra = ""
            if name == "pyvips":
                extra = f" (libvips {module.version(0)}.{module.version(1)}.{module.version(2)})"
            lines.append(f"{name} {module.__version__}{extra}")
        except (ImportError, OSError):
            lines.append(f"{name}: not installed")
    for command, flag in (("vips", "--version"), ("/usr/bin/convert", "-version")):
        if shutil.which(command):
            output = subprocess.run([command, flag], capture_output=True, text=True).stdout.splitlines()
            lines.append(output[0] if output else command)
        else:
            lines.append(f"{command}: not installed")
    return lines


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {CORES} cores{memory}, {platform.system()} {platform.release()}"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ---------------------------------------------------------------------------
# Sections


def section_peers(sizes: list[int], ks: list[int], runs: int, budget: float, out: list[str], summary: dict) -> None:
    """Targets 1 and 2: convcli against the default-install peers and against OpenCV."""
    rows1: list[list[str]] = []
    rows2: list[list[str]] = []
    too_slow: set[tuple[int, str, str]] = set()
    worst1, worst2, worst_same = 0.0, 0.0, 0.0
    try:
        import cv2  # noqa: F401

        have_cv2 = True
    except ImportError:
        have_cv2 = False
    for size in sizes:
        x = np.random.default_rng(size).random((size, size), dtype=np.float32)
        buffer = np.empty_like(x)
        for k in ks:
            for kind in ("gaussian", "random", "box"):
                if kind == "box" and not have_cv2:
                    continue
                kernel = {"gaussian": gaussian, "random": random_kernel, "box": lambda n: np.full((n, n), 1 / n / n)}[
                    kind
                ](k)
                separable = kind != "random"
                contenders: dict[str, Callable[[], object]] = {
                    "copy": lambda x=x, b=buffer: np.copyto(b, x),
                    "convcli numpy": lambda x=x, kernel=kernel: correlate2d(x, kernel, padding="same", backend="numpy"),
                }
                peers1: dict[str, Callable[[], object]] = {}
                if kind != "box":
                    peers1 = numpy_peers(x, kernel, separable)
                    contenders.update(peers1)
                peers2: dict[str, Callable[[], object]] = {}
                # A peer over the budget at a smaller size is not run at a larger one (torch's 63x63 on
                # 4096x4096 would take ten minutes): it is shown as '>' the budget.
                skipped = [name for name in peers1 if (k, kind, name) in too_slow]
                for name in skipped:
                    contenders.pop(name)
                result = measure(contenders, runs, budget) if peers1 else {"copy": (1.0, 1)}
                for name in skipped:
                    result[name] = (float("inf"), 0)
                too_slow.update((k, kind, name) for name in peers1 if result[name][1] <= 1)
                if have_cv2:
                    # OpenCV's group is timed apart from the others (whose thread pools would disturb it).
                    group: dict[str, Callable[[], object]] = {
                        "copy": contenders["copy"],
                        "convcli opencv": lambda x=x, kernel=kernel: correlate2d(
                            x, kernel, padding="same", backend="auto"
                        ),
                    }
                    peers2 = opencv_peers(x, kernel, separable, kind == "box")
                    group.update(peers2)
                    grouped = measure(group, runs, budget)
                    copy2 = grouped.pop("copy")
                    result.update(grouped)
                    if not peers1:
                        result["copy"] = copy2
                plan_np = plan_correlation((size, size), kernel, padding="same", backend="numpy")
                copy = result["copy"][0]
                if peers1:
                    best = min(peers1, key=lambda name: result[name][0])
                    ratio = result["convcli numpy"][0] / result[best][0]
                    worst1 = max(worst1, ratio)
                    rows1.append(
                        [
                            f"{size}", f"{k}", kind, plan_np.method, ms(result["convcli numpy"]),
                            f"{best} {ms(result[best])}", f"{ratio:.2f}", f"{result['convcli numpy'][0] / copy:.0f}",
                            " ".join(f"{n.split()[0]}:{ms(result[n])}" for n in peers1 if n != best),
                        ]
                    )  # fmt: skip
                    print("T1", rows1[-1], flush=True)
                if peers2:
                    plan_cv = plan_correlation((size, size), kernel, padding="same")
                    best = min(peers2, key=lambda name: result[name][0])
                    ratio = result["convcli opencv"][0] / result[best][0]
                    worst2 = max(worst2, ratio)
                    # The OpenCV function convcli itself called: the ratio to it is convcli's own overhead.
                    called = {"separable": "cv2.sepFilter2D", "box": "cv2.blur"}.get(plan_cv.method, "cv2.filter2D")
                    same = result["convcli opencv"][0] / result[called][0] if called in result else float("nan")
                    worst_same = max(worst_same, same)
                    rows2.append(
                        [
                            f"{size}", f"{k}", kind, f"{plan_cv.method} ({plan_cv.backend})",
                            ms(result["convcli opencv"]), f"{best} {ms(result[best])}", f"{ratio:.2f}",
                            f"{same:.2f}", f"{result['convcli opencv'][0] / copy:.0f}",
                            " ".join(f"{n}:{ms(result[n])}" for n in peers2 if n != best),
                        ]
                    )  # fmt: skip
                    print("T2", rows2[-1], flush=True)
    out.append("## Target 1: default install (NumPy/SciPy) against SciPy, torch and pyvips\n")
    out.append(
        "convcli = `correlate2d(x, K, padding='same', backend='numpy')`, float32, zero borders; peers on the same "
        "array with the same kernel. Times in ms (median); ratio = convcli / fastest peer (< 1 means convcli is "
        "faster); copy = convcli / `np.copyto` of the same array (the memory floor).\n"
    )
    header = ["size", "k", "kernel", "method", "convcli ms", "fastest peer ms", "ratio", "x copy", "other peers ms"]
    out.append(table(header, rows1) + "\n")
    summary["1"] = worst1
    if rows2:
        out.append("## Target 2: accelerated path (OpenCV installed) against OpenCV's best function\n")
        out.append(
            "convcli = `correlate2d(x, K, padding='same')` with opencv-python-headless installed; OpenCV called "
            "directly with filter2D, sepFilter2D (separable kernels) and blur (box). Ratio = convcli / fastest; "
            "same fn = convcli / the OpenCV function convcli called (its own overhead).\n"
        )
        header2 = header[:7] + ["same fn"] + header[7:]
        out.append(table(header2, rows2) + "\n")
        summary["2"] = worst2
        summary["2same"] = worst_same


def section_strides(size: int, ks: list[int], runs: int, budget: float, out: list[str], summary: dict) -> None:
    """Target 3: stride 2 and 4 against stride 1 on both paths."""
    try:
        import cv2

        backends = ["numpy", "auto"]
    except ImportError:
        cv2 = None
        backends = ["numpy"]
    x = np.random.default_rng(3).random((size, size), dtype=np.float32)
    rows = []
    worst2, worst4 = 0.0, 0.0
    for backend in backends:
        for k in ks:
            for kind, kernel in (("gaussian", gaussian(k)), ("random", random_kernel(k))):
                contenders = {
                    f"s{s}": (
                        lambda s=s, kernel=kernel, backend=backend, k=k: correlate2d(
                            x, kernel, padding=k // 2, stride=s, backend=backend
                        )
                    )
                    for s in (1, 2, 4)
                }
                if cv2 is not None and backend == "auto":
                    k32 = kernel.astype(np.float32)
                    contenders["cv2 full then [::4, ::4]"] = lambda k32=k32: cv2.filter2D(
                        x, -1, k32, borderType=cv2.BORDER_CONSTANT
                    )[::4, ::4].copy()
                result = measure(contenders, runs, budget)
                plans = [
                    plan_correlation((size, size), kernel, padding=k // 2, stride=s, backend=backend) for s in (2, 4)
                ]
                r2 = result["s2"][0] / result["s1"][0]
                r4 = result["s4"][0] / result["s1"][0]
                worst2, worst4 = max(worst2, r2), max(worst4, r4)
                rows.append(
                    [
                        "opencv" if backend == "auto" else "numpy", f"{size}", f"{k}", kind, ms(result["s1"]),
                        f"{ms(result['s2'])} ({plans[0].method}/{plans[0].backend}{'+sub' if plans[0].full else ''})",
                        f"{ms(result['s4'])} ({plans[1].method}/{plans[1].backend}{'+sub' if plans[1].full else ''})",
                        f"{r2:.2f}", f"{r4:.2f}",
                        ms(result.get("cv2 full then [::4, ::4]")),
                    ]
                )  # fmt: skip
                print("T3", rows[-1], flush=True)
    out.append("## Target 3: strides computed natively\n")
    out.append(
        "Same call with `stride=2` and `stride=4` (padding k//2); ratio = time / stride-1 time of the same path "
        "(targets: <= 0.35 and <= 0.12); `+sub`: the plan computed every output at stride 1 and kept every s-th (cheaper there than the kept outputs alone). Last column: OpenCV computing everything, then subsampling.\n"
    )
    header = [
        "path",
        "size",
        "k",
        "kernel",
        "s1 ms",
        "s2 ms (method)",
        "s4 ms (method)",
        "s2/s1",
        "s4/s1",
        "cv2 full+[::4]",
    ]
    out.append(table(header, rows) + "\n")
    summary["3"] = (worst2, worst4)


def _timed_commands(commands: dict[str, list[str] | str], runs: int, budget: float, env: dict) -> dict:
    def runner(command: list[str] | str, env: dict = env) -> Callable[[], object]:
        def run() -> object:
            completed = subprocess.run(command, shell=isinstance(command, str), env=env, capture_output=True)
            if completed.returncode != 0:
                raise RuntimeError(f"{command} failed: {completed.stderr.decode()[-500:]}")
            return None

        return run

    return measure({name: runner(command) for name, command in commands.items()}, runs, budget)


def section_end_to_end(runs: int, budget: float, out: list[str], summary: dict) -> None:
    """Target 4: a 12-megapixel JPEG to PNG, whole processes."""
    from PIL import Image

    from convcli.io import load_source, to_pixels
    from convcli.io.png import default_parts, png_bytes
    from convcli.kernels import parse_kernel_spec

    work = Path(tempfile.mkdtemp(prefix="convcli-bench-"))
    photo = work / "photo-12mp.jpg"
    Image.open(ROOT / "samples" / "chelsea.png").convert("RGB").resize((4000, 3000), Image.BICUBIC).save(
        photo, quality=90
    )
    python = sys.executable
    # As an installed package: pip compiles convcli's bytecode at install time, so the children may cache it
    # (this sandbox's PYTHONDONTWRITEBYTECODE would otherwise recompile convcli's modules in every run, ~50 ms).
    env = {key: value for key, value in CHILD_ENV.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    rows = []
    worst = 0.0
    for spec in ("vertical", "gaussian:15"):
        kernel = parse_kernel_spec(spec).weights
        k = kernel.shape[0]
        commands: dict[str, list[str] | str] = {
            "convcli (default install)": f"CONVCLI_NO_OPENCV=1 {python} -m convcli filter {photo} -k {spec} "
            f"-o {work / 'c.png'} -q",
        }
        try:
            import cv2  # noqa: F401

            commands["convcli (with OpenCV)"] = [python, "-m", "convcli", "filter", str(photo), "-k", spec, "-o",
                                                 str(work / "o.png"), "-q"]  # fmt: skip
        except ImportError:
            pass
        if shutil.which("vips"):
            mask = work / f"{k}.mat"
            factors = None if spec == "vertical" else kernel[:, k // 2] / np.sqrt(kernel[k // 2, k // 2])
            if factors is None:
                mask.write_text(f"{k} {k} 1 0\n" + "\n".join(" ".join(f"{v:g}" for v in row) for row in kernel) + "\n")
                operation = "conv"
            else:
                mask.write_text(f"{k} 1 1 0\n" + " ".join(f"{v:.9g}" for v in factors) + "\n")
                operation = "convsep"
            commands["vips"] = (
                f"vips colourspace {photo} {work / 'g.v'} b-w && "
                f"vips {operation} {work / 'g.v'} {work / 'v.png'} {mask} --precision float"
            )
        if Path("/usr/bin/convert").exists():
            values = " ".join(",".join(f"{v:.9g}" for v in row) for row in kernel)
            commands["ImageMagick convert"] = [
                "/usr/bin/convert", str(photo), "-colorspace", "Gray", "-morphology", "Convolve",
                f"{k}x{k}: {values}", str(work / "m.png"),
            ]  # fmt: skip
        result = _timed_commands(commands, runs, budget, env)
        ours = result["convcli (default install)"][0]
        others = {name: value for name, value in result.items() if not name.startswith("convcli")}
        if others:
            best = min(others, key=lambda name: others[name][0])
            ratio = ours / others[best][0]
            worst = max(worst, ratio)
        else:
            best, ratio = "-", float("nan")
        rows.append([spec, *(f"{name} {ms(value)}" for name, value in result.items()), f"{ratio:.2f}"])
        print("T4", rows[-1], flush=True)
        # Where convcli's time goes (in this process: imports are already warm, so they are timed apart).
        array = load_source(str(photo)).array
        filtered = correlate2d(array, kernel, backend="numpy")
        pixels = to_pixels(filtered)[0]
        parts = measure(
            {
                "decode + gray (JPEG Y plane)": lambda: load_source(str(photo)),
                "filter": lambda a=array, w=kernel: correlate2d(a, w, backend="numpy"),
                "floats to 8-bit": lambda f=filtered: to_pixels(f),
                f"PNG encode (level 1, {default_parts(pixels.size)} thread(s))": lambda p=pixels: png_bytes(p),
            },
            runs,
            budget,
        )
        startup = _timed_commands(
            {
                "interpreter + imports": [python, "-c", "import convcli.cli.cmd_filter, convcli.io, "
                "convcli.engine, convcli.kernels, convcli.io.png, numpy.ma, PIL.Image; PIL.Image.preinit()"],
            },
            runs,
            budget,
            env,
        )  # fmt: skip
        parts.update(startup)
        rows.append([f"{spec}: where convcli's time goes", *(f"{n} {ms(v)}" for n, v in parts.items())])
    shutil.rmtree(work, ignore_errors=True)
    out.append("## Target 4: end to end, a 12-megapixel JPEG to PNG\n")
    out.append(
        "Whole processes (start-up, decode, gray conversion, filter, PNG encode), 4000x3000 JPEG made at run time "
        "from samples/chelsea.png; convcli's bytecode is cached, as an installed package has it. vips: "
        "`vips colourspace ... b-w` then `vips conv` (3x3) or `vips convsep` (Gaussian, separable); ImageMagick: `convert in.jpg -colorspace Gray -morphology Convolve 'KxK: ...' "
        "out.png`. Ratio = convcli default install / fastest other tool. The rows after each case split "
        "convcli's time inside one process.\n"
    )
    out.append("\n".join("- " + " | ".join(row) for row in rows) + "\n")
    summary["4"] = worst


def section_startup(runs: int, budget: float, out: list[str], summary: dict) -> None:
    """Target 5: whole-process start-up and what `--help` imports."""
    python = sys.executable
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "convcli --help": [python, "-m", "convcli", "--help"],
        "convcli filter --help": [python, "-m", "convcli", "filter", "--help"],
        "convcli kernels": [python, "-m", "convcli", "kernels"],
    }
    result = _timed_commands(commands, runs, budget, CHILD_ENV)
    trace = subprocess.run(
        [python, "-X", "importtime", "-m", "convcli", "--help"], capture_output=True, text=True, env=CHILD_ENV
    ).stderr
    heavy = sorted({m for m in ("numpy", "scipy", "PIL", "cv2", "torch") if f" {m}\n" in trace or f" {m}." in trace})
    out.append("## Target 5: start-up\n")
    out.append(table(["command", "ms (whole process)"], [[name, ms(value)] for name, value in result.items()]) + "\n")
    out.append(f"Heavy modules imported by `convcli --help`: {', '.join(heavy) or 'none'}.\n")
    summary["5"] = (result["convcli --help"][0], heavy)


PROBE = """
import os, sys, tracemalloc
import numpy as np
sys.path.insert(0, {src!r})
from convcli.engine import correlate2d
x = np.empty((4096, 4096), dtype=np.float32)
rng = np.random.default_rng(0)
for row in range(0, 4096, 256):
    x[row : row + 256] = rng.random((256, 4096), dtype=np.float32)
kernel = {kernel}
correlate2d(x[:512, :512], kernel, padding="same", method={method!r}, backend={backend!r})

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0

with open("/proc/self/clear_refs", "w") as handle:  # resets the peak resident size (VmHWM)
    handle.write("5")
before = status("VmRSS:")
tracemalloc.start()
y = correlate2d(x, kernel, padding="same", method={method!r}, backend={backend!r})
peak = tracemalloc.get_traced_memory()[1]
print(peak, status("VmHWM:") - before)
"""


def section_memory(out: list[str], summary: dict) -> None:
    """Target 6: peak memory of a 4096x4096 float32 filter, per method and backend, in a fresh process each."""
    cases = [
        ("direct", "np.random.default_rng(1).normal(size=(7, 7))"),
        ("separable", "np.outer(np.hanning(17)[1:-1], np.hanning(17)[1:-1])"),
        ("box", "np.full((15, 15), 1 / 225)"),
        ("fft", "np.random.default_rng(1).normal(size=(31, 31))"),
    ]
    try:
        import cv2  # noqa: F401

        backends = ["numpy", "opencv"]
    except ImportError:
        backends = ["numpy"]
    input_bytes = 4096 * 4096 * 4
    rows = []
    worst = 0.0
    for backend in backends:
        for method, kernel in cases:
            if backend == "opencv" and method == "fft":
                kernel = "np.random.default_rng(1).normal(size=(15, 15))"
            code = PROBE.format(src=str(ROOT / "src"), kernel=kernel, method=method, backend=backend)
            completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if completed.returncode != 0:
                rows.append([backend, method, "failed", completed.stderr.strip().splitlines()[-1], ""])
                continue
            traced, rss = (int(v) for v in completed.stdout.split())
            ratio = max(traced, rss) / input_bytes
            worst = max(worst, ratio)
            rows.append([backend, method, f"{traced / 2**20:.0f}", f"{rss / 2**20:.0f}", f"{ratio:.2f}"])
            print("T6", rows[-1], flush=True)
    out.append("## Target 6: peak memory, 4096x4096 float32 (64 MiB input)\n")
    out.append(
        "Extra memory of one call, output included, in a fresh process per row: tracemalloc's peak (NumPy "
        "buffers) and the peak resident size during the call above the resident size before it (everything, "
        "OpenCV's and BLAS's own buffers too; the peak is reset through /proc/self/clear_refs first). Ratio = "
        "the larger / the input's 64 MiB (target <= 4).\n"
    )
    out.append(table(["backend", "method", "traced MiB", "peak RSS growth MiB", "x input"], rows) + "\n")
    summary["6"] = worst


def section_pool(size: int, runs: int, budget: float, out: list[str], summary: dict) -> None:
    """Target 7: pool (max/mean/min, size 2 and 3) and upsample (stride 2, 4x4 bilinear) against torch on the CPU."""
    import torch

    from convcli.kernels import bilinear_kernel
    from convcli.pooling import pool2d
    from convcli.transpose import conv_transpose2d

    torch.set_num_threads(CORES)
    functional = torch.nn.functional
    x = np.random.default_rng(7).random((size, size), dtype=np.float32)
    tx = torch.from_numpy(x)[None, None]
    floor = np.empty_like(x)
    rows = []
    worst = 0.0
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = []
    for k in (2, 3):
        cases.append((f"max pool {k}", lambda k=k: pool2d(x, "max", size=k), lambda k=k: functional.max_pool2d(tx, k)))
        cases.append(
            (f"mean pool {k}", lambda k=k: pool2d(x, "mean", size=k), lambda k=k: functional.avg_pool2d(tx, k))
        )
        cases.append(
            (f"min pool {k}", lambda k=k: pool2d(x, "min", size=k), lambda k=k: -functional.max_pool2d(-tx, k))
        )
    kernel = bilinear_kernel(2)
    tk = torch.from_numpy(kernel.astype(np.float32))[None, None]
    cases.append(
        (
            "upsample x2 (4x4 bilinear, padding 1)",
            lambda: conv_transpose2d(x, kernel, stride=2, padding=1),
            lambda: functional.conv_transpose2d(tx, tk, stride=2, padding=1),
        )
    )
    for name, mine, theirs in cases:
        with torch.no_grad():
            result = measure(
                {"convcli": mine, "torch": theirs, "memory pass": lambda: np.copyto(floor, x)}, runs, budget
            )
        ratio = result["convcli"][0] / result["torch"][0]
        worst = max(worst, ratio)
        rows.append(
            [
                name,
                ms(result["convcli"]),
                ms(result["torch"]),
                f"{ratio:.2f}",
                ms(result["memory pass"]),
                "met" if ratio < 1 else "NOT met",
            ]  # fmt: skip
        )
        print("T7", rows[-1], flush=True)
    out.append(f"## Target 7: pool and upsample, {size}x{size} float32\n")
    out.append(
        "convcli `pool2d` (stride = size, as PyTorch's default) against `torch.nn.functional.max_pool2d`, "
        "`avg_pool2d` and `-max_pool2d(-x)` (min); `conv_transpose2d` with `bilinear:2` (4x4), stride 2, "
        f"padding 1 against torch's `conv_transpose2d`. torch on the CPU with {CORES} threads. Ratio = convcli / "
        "torch (target < 1).\n"
    )
    out.append(table(["case", "convcli ms", "torch ms", "ratio", "memory pass ms", "target 7"], rows) + "\n")
    summary["7"] = worst


def write_summary(summary: dict, out: list[str]) -> None:
    lines = ["## Targets at a glance\n"]
    if "1" in summary:
        met = "met" if summary["1"] < 1 else "NOT met"
        lines.append(
            f"1. Default install faster than every peer in every cell: worst ratio {summary['1']:.2f} ({met})."
        )
    if "2" in summary:
        met = "met" if summary["2"] <= 1.1 else "NOT met"
        lines.append(
            f"2. OpenCV path within 1.1x of OpenCV's best: worst ratio {summary['2']:.2f} ({met}); "
            f"against the OpenCV function convcli called, worst {summary.get('2same', float('nan')):.2f}."
        )
    if "3" in summary:
        r2, r4 = summary["3"]
        met = "met" if r2 <= 0.35 and r4 <= 0.12 else "NOT met"
        lines.append(
            f"3. Strides: worst stride-2 ratio {r2:.2f} (target 0.35), stride-4 {r4:.2f} (target 0.12) ({met})."
        )
    if "4" in summary:
        met = "met" if summary["4"] < 1 else "NOT met"
        lines.append(f"4. End to end vs vips/ImageMagick: worst ratio {summary['4']:.2f} ({met}).")
    if "5" in summary:
        seconds, heavy = summary["5"]
        met = "met" if not heavy else "NOT met"
        lines.append(
            f"5. `convcli --help` takes {seconds * 1e3:.0f} ms and imports {', '.join(heavy) or 'no heavy module'} ({met})."
        )
    if "6" in summary:
        met = "met" if summary["6"] <= 4 else "NOT met"
        lines.append(f"6. Peak memory at 4096x4096: worst {summary['6']:.2f}x the input ({met}).")
    if "7" in summary:
        met = "met" if summary["7"] < 1 else "NOT met"
        lines.append(f"7. Pool and upsample at 4096x4096 vs torch: worst ratio {summary['7']:.2f} ({met}).")
    out.insert(0, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1024x1024 only, k = 3, 15, 63; fewer cases")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds after the warm-up (default 5)")
    parser.add_argument("--budget", type=float, default=4.0, help="seconds: a slower warm-up is not repeated")
    parser.add_argument(
        "--only", default="1,3,4,5,6,7", help="sections to run (1 = targets 1 and 2; 7 or 'pool' = pool/upsample)"
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"), help="where to write the results")
    args = parser.parse_args()
    sections = {"7" if name == "pool" else name for name in args.only.split(",")}
    sizes = [1024] if args.quick else [1024, 4096]
    ks = [3, 15, 63] if args.quick else [3, 7, 15, 31, 63]
    started, load_before = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load()
    body: list[str] = []
    summary: dict = {}
    if "1" in sections:
        section_peers(sizes, ks, args.runs, args.budget, body, summary)
    if "3" in sections:
        section_strides(1024 if args.quick else 2048, [3, 15] if args.quick else [3, 7, 15, 31], args.runs,
                        args.budget, body, summary)  # fmt: skip
    if "4" in sections:
        section_end_to_end(args.runs, max(args.budget, 30.0), body, summary)
    if "5" in sections:
        section_startup(args.runs, args.budget, body, summary)
    if "6" in sections:
        section_memory(body, summary)
    if "7" in sections:
        section_pool(1024 if args.quick else 4096, args.runs, args.budget, body, summary)
    write_summary(summary, body)
    header = [
        "# convcli benchmark results\n",
        f"`python bench/run.py{' --quick' if args.quick else ''}` on {started}: {machine()}.",
        f"Versions: {'; '.join(versions())}.",
        f"Load average (1/5/15 min) before: {load_before}, after: {load()} (other work was running on the "
        "machine; runs are interleaved and medians shown, but expect noise of 10-30%).",
        f"{args.runs} timed rounds after one warm-up; `*` = over the {args.budget:g} s budget, timed once; 'skipped' = over it at 1024x1024, not run at 4096x4096.\n",
    ]
    text = "\n".join(header) + "\n" + "\n".join(body)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
