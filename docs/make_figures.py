"""Regenerate the figures shown in docs/figures.md into docs/img/ (small PNGs).

Run from the repository root: ``python docs/make_figures.py``. Each figure is made by the
command shown in the docs (run for real in a scratch copy of samples/), then shrunk and
reduced to a 64-colour palette so the repository stays small.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"

#: output name -> command (run in a folder holding samples/)
COMMANDS = {
    "filter-edges.png": "filter samples/chelsea.png -k vertical -k horizontal --figure {out}",
    "pool-max.png": "pool samples/camera.png --op max --size 4 -o pooled.png --figure {out}",
    "upsample-bilinear.png": "upsample samples/x.txt -k bilinear --stride 2 --padding 1 -o up.txt --figure {out}",
    "kernel-sobel-x.png": "kernels show sobel-x --figure {out}",
    "kernel-gaussian-5-freq.png": "kernels show gaussian:5 --freq --figure {out}",
    "effective-field.png": "shape --input 33 conv:k=3 conv:k=3 conv:k=3 conv:k=3 --effective --figure {out}",
}

#: animations (GIFs, kept as convcli writes them) -> command
ANIMATIONS = {
    "animate-classic.gif": 'animate filter samples/x.txt -k "0 1; 2 3" --dpi 70 -o {out}',
    "animate-jump.gif": "animate filter samples/five.txt -k blur:3 -s 3 --dpi 70 -o {out}",
    "animate-padding.gif": 'animate filter samples/x.txt -k "0 1; 2 3" -p 1 -s 2 --dpi 70 -o {out}',
    "animate-pool-ceil.gif": "animate pool samples/edges.txt --size 3 -s 2 --ceil-mode --dpi 70 -o {out}",
    "animate-upsample.gif": 'animate upsample samples/x.txt -k "0 1; 2 3" -s 2 --dpi 70 -o {out}',
    "animate-camera.gif": "animate filter samples/camera.png -k vertical -s 8 --frames 12 --dpi 50 -o {out}",
}


def shrink(source: Path, target: Path, width: int = 720) -> None:
    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        image.quantize(colors=64).save(target, optimize=True)


#: --scale -> the picture's panel, left to right: the old default, the magnitudes, the new default (auto)
SCALES = ("minmax", "abs", "auto")


def scale_comparison(work: Path, env: dict[str, str]) -> None:
    """docs/img/scale-signed.png: the vertical edges of chelsea.png under --scale minmax | abs | auto
    (percentile:99.5), side by side, as convcli wrote them (each panel is the output PNG itself)."""
    panels = []
    for scale in SCALES:
        out = work / f"scale-{scale}.png"
        args = [sys.executable, "-m", "convcli", "filter", "samples/chelsea.png", "-k", "vertical", "-o", str(out)]
        subprocess.run([*args, "--scale", scale], cwd=work, env=env, check=True, capture_output=True)
        with Image.open(out) as image:
            panels.append(image.convert("L"))
    gap = 8
    width = sum(panel.width for panel in panels) + gap * (len(panels) - 1)
    sheet = Image.new("L", (width, max(panel.height for panel in panels)), 255)
    left = 0
    for panel in panels:
        sheet.paste(panel, (left, 0))
        left += panel.width + gap
    raw = work / "raw-scale-signed.png"
    sheet.save(raw)
    shrink(raw, IMG / "scale-signed.png", width=900)


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory(prefix="convcli-figures-") as scratch:
        work = Path(scratch)
        shutil.copytree(ROOT / "samples", work / "samples")
        (work / "samples" / "five.txt").write_text(
            "\n".join(" ".join(str(5 * r + c) for c in range(5)) for r in range(5))
        )
        for name, command in ANIMATIONS.items():
            args = [sys.executable, "-m", "convcli", *shlex.split(command.format(out=IMG / name))]
            subprocess.run(args, cwd=work, env=env, check=True, capture_output=True)
        for name, command in COMMANDS.items():
            raw = work / f"raw-{name}"
            args = [sys.executable, "-m", "convcli", *command.format(out=raw).split()]
            subprocess.run(args, cwd=work, env=env, check=True, capture_output=True)
            shrink(raw, IMG / name, width=420 if name.startswith("kernel") else 720)
        scale_comparison(work, env)
        sys.path.insert(0, str(ROOT / "docs"))
        from cogtools import GALLERY, GALLERY_SETUP

        for command in GALLERY_SETUP:
            subprocess.run(command, shell=True, cwd=work, check=True)
        for name, command in GALLERY.items():
            raw = work / f"raw-{name}"
            args = [sys.executable, "-m", "convcli", *shlex.split(command.format(out=raw))[1:]]
            subprocess.run(args, cwd=work, env=env, check=True, capture_output=True)
            shrink(raw, IMG / name, width=720)
        sys.path.insert(0, str(ROOT / "src"))
        from convcli.teach.figures import receptive_field_figure

        # two 3x3 convolutions, stride 1, padding 1, on an 8x8 input: output pixel (0, 0) reads rows and
        # columns -2..2 of the input (5x5, two of them in the padding)
        raw = work / "raw-rf.png"
        receptive_field_figure(
            raw, (8, 8), range(-2, 3), range(-2, 3), (0, 0), "two 3x3 layers, padding 1: pixel (0, 0)"
        )
        shrink(raw, IMG / "receptive-field.png", width=420)
    for path in sorted(IMG.iterdir()):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
