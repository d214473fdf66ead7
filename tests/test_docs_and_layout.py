"""The README and the docs stay in sync with the tool, every command is documented, the site builds, CI runs the
README's test command first, and start-up stays light."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from convcli.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "convcli"
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

sys.path.insert(0, str(DOCS))
import cogtools  # noqa: E402  (docs/cogtools.py: the generator of the docs' examples)


def env_with_bin() -> dict[str, str]:
    """This Python's bin first on PATH, and this checkout's src first on PYTHONPATH (absolute: the commands run in
    other folders, where a relative ``PYTHONPATH=src`` would find another checkout's convcli)."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": path}


def convcli_executable() -> str:
    """The installed entry point next to this Python; a test that needs it fails (never passes) without it."""
    executable = shutil.which("convcli", path=str(BIN))
    if executable is None:
        pytest.fail(f"the convcli entry point is not installed in {BIN} (pip install -e .)")
    return executable


def all_commands() -> list[tuple[str, click.Command]]:
    context = click.Context(main)
    found = []
    for name in sorted(COMMANDS):
        command = main.get_command(context, name)
        found.append((name, command))
        if isinstance(command, click.Group):
            found.extend((f"{name} {sub}", cmd) for sub, cmd in sorted(command.commands.items()))
    return found


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.S | re.M)


# --- generated content ---------------------------------------------------------------------------------------------


def test_docs_are_in_sync_with_the_tool():
    """Every cog block (README and docs/: --help, example runs, the API list) is what the tool prints now."""
    result = subprocess.run(
        [sys.executable, str(DOCS / "cogtools.py"), "--check"],
        cwd=ROOT,
        env=env_with_bin(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr + "\nrun: python docs/cogtools.py"
    checked = re.findall(r"Checking (\S+)", result.stdout)
    assert {"README.md", "docs/cli.md", "docs/api.md", "docs/guide/learn.md"} <= set(checked), result.stdout


def test_examples_run_in_a_fixed_environment(monkeypatch):
    """The caller's CONVCLI_* settings never reach an example; OpenCV is off and one thread sums in a fixed order."""
    monkeypatch.setenv("CONVCLI_NO_OPENCV", "0")
    monkeypatch.setenv("CONVCLI_THREADS", "2")
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", "/somewhere/else")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    env = cogtools.example_env()
    assert env["CONVCLI_NO_OPENCV"] == "1" and env["CONVCLI_THREADS"] == "1"
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["LC_ALL"] == "C"
    assert "CONVCLI_KERNEL_PATH" not in env
    assert env["PATH"].split(os.pathsep)[0] == str(BIN)


def test_only_rounding_noise_is_masked():
    mask = cogtools.ROUNDING_NOISE.sub
    assert mask("<1e-9", "loss 1.56695e-10") == "loss <1e-9"
    assert mask("<1e-9", "largest error 4.44e-16, rank 2") == "largest error <1e-9, rank 2"
    assert mask("<1e-9", "loss -7.09975e-30.") == "loss <1e-9."
    for kept in ["limit 4.631e-07", "loss 0.00388202", "4.319e+06", "x1e-12", "1e-9"]:
        assert mask("<1e-9", kept) == kept


def test_api_page_lists_every_public_name():
    import convcli

    api = (DOCS / "api.md").read_text(encoding="utf-8")
    for name, target in convcli._LAZY.items():
        module, attribute = target.split(":")
        assert f"::: {module}.{attribute}\n" in api, name
        assert f'heading: "convcli.{name}"' in api, name


# --- every command documented --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_with_examples_and_documented_options(name, command):
    assert command.help and command.help.strip().split("\n")[0].endswith("."), name
    if not isinstance(command, click.Group) or name == "kernels":
        assert "Examples:" in command.help, name
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name}: option {param.opts} has no help"
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"\n## `convcli {name}`\n" in reference, f"docs/cli.md has no section for convcli {name}"
    guide = DOCS / "guide" / f"{name.split()[0]}.md"
    assert guide.is_file(), f"no guide page {guide.relative_to(ROOT)}"
    assert f"convcli {name}" in guide.read_text(encoding="utf-8")
    assert f"guide/{name.split()[0]}.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs tools are not installed (pip install -e '.[docs]'); CI installs them and builds the site",
)
def test_docs_site_builds_in_strict_mode(tmp_path):
    """Broken links, missing anchors, pages left out of the nav and unresolved API entries fail the build."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "index.html").is_file()


# --- the README's promises -----------------------------------------------------------------------------------------


def test_readme_is_short_and_links_to_existing_pages():
    assert len(README.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (ROOT / target).exists(), f"README links to a missing file: {target}"


def python_examples() -> list[tuple[str, str]]:
    pages = {"README.md": README, "docs/getting-started.md": (DOCS / "getting-started.md").read_text(encoding="utf-8")}
    return [(page, block) for page, text in pages.items() for block in fenced_blocks(text, "python")]


@pytest.mark.parametrize(("page", "block"), python_examples(), ids=lambda v: v if v.endswith(".md") else "")
def test_python_examples_print_what_they_show(page, block, samples, monkeypatch):
    """Each line `expression  # value` of a Python block evaluates to that value (same shape, same numbers)."""
    monkeypatch.chdir(samples.parent)
    namespace: dict[str, object] = {}
    checked = 0
    for number, line in enumerate(block.splitlines(), 1):
        code, _, comment = line.partition("  # ")
        if not code.strip():
            continue
        statement = ast.parse(code.strip()).body[0]
        where = f"{page}, line {number} of the block: {line.strip()}"
        if not (isinstance(statement, ast.Expr) and comment):
            exec(compile(code.strip(), page, "exec"), namespace)
            continue
        actual = eval(code.strip(), namespace)
        expected = eval(comment.strip(), {"array": np.array})
        if isinstance(expected, np.ndarray):
            assert isinstance(actual, np.ndarray), where
        assert np.shape(actual) == np.shape(expected), f"{where}: got {actual!r}"
        assert np.array_equal(actual, expected), f"{where}: got {actual!r}"
        checked += 1
    assert checked >= 3, f"{page}: a Python example shows fewer than 3 results"


def readme_recipes() -> list[str]:
    section = README.split("## Recipes", 1)[1]
    return [line for line in fenced_blocks(section, "sh")[0].splitlines() if line and not line.startswith("#")]


@pytest.mark.network
@pytest.mark.parametrize("command", readme_recipes())
def test_readme_recipes_work(command, samples, http_server):
    """Each recipe runs as written (the URL is served from 127.0.0.1) and writes the outputs it names."""
    convcli_executable()
    base, routes = http_server
    for url in re.findall(r"https?://\S+", command):
        path = "/" + url.split("/", 3)[3]
        routes[path] = (200, "image/png", (samples / "camera.png").read_bytes(), 0)
        command = command.replace(url, base + path)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=samples.parent,
        env=env_with_bin(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    words = shlex.split(command.replace("|", " | "))
    outputs = [words[i + 1] for i, word in enumerate(words) if word in ("-o", "--figure") and words[i + 1] != "-"]
    if "--outdir" in words:
        outdir = samples.parent / words[words.index("--outdir") + 1]
        assert sorted(path.name for path in outdir.iterdir()) == [
            "camera-sobel-x.png",
            "chelsea-sobel-x.png",
            "coffee-sobel-x.png",
        ]
    else:
        assert outputs, command
    for output in outputs:
        assert (samples.parent / output).read_bytes().startswith(b"\x89PNG"), output


def test_first_readme_command_leaves_no_untracked_file():
    """`convcli filter samples/chelsea.png --kernel vertical` writes chelsea-vertical.png into the checkout: ignored."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "-q", "chelsea-vertical.png"], cwd=ROOT)
    assert result.returncode == 0, "chelsea-vertical.png is not ignored by .gitignore"


def test_ci_runs_the_readme_test_command_verbatim():
    blocks = fenced_blocks(README.split("## Set up", 1)[1], "sh")[:2]
    commands = [next(line for line in block.splitlines() if line and not line.startswith("#")) for block in blocks]
    assert commands[0] == (
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/convcli filter samples/chelsea.png --kernel vertical"
    )
    assert commands[1] == ("python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    steps = [line for line in ci if line and not line.startswith("#")]
    assert "set -euo pipefail" in steps
    assert "rm -rf .venv" in steps[: steps.index(commands[1])], "CI must start from a fresh .venv"
    commands_run = [line for line in steps if not line.startswith(("step ", "step(", "rm -rf .venv"))]
    first = next(line for line in commands_run if re.search(r"\bpip\b|pytest|venv", line))
    assert first == commands[1], f"the first install/test step of .ci/run is {first!r}, not the README's command"
    later = "\n".join(commands_run[commands_run.index(commands[1]) + 1 :])
    assert "torch==2.13.0" in later and not re.search(r"\btorch(?![=\w])", later.replace("torch==", "")), later
    assert "mkdocs build --strict" in later and "-m pytest" in later


# --- the entry point in real processes ------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["filter", "--help"], ["kernels", "show", "--help"]])
def test_start_up_does_not_import_the_heavy_stack(args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "convcli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"numpy", "scipy", "PIL", "imageio", "tifffile"}, imported & {"numpy", "scipy", "PIL"}


def test_installed_entry_point_end_to_end(tmp_path):
    executable = convcli_executable()
    shutil.copy(ROOT / "samples" / "chelsea.png", tmp_path)
    result = subprocess.run(
        [executable, "filter", "chelsea.png", "--kernel", "vertical"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "chelsea-vertical.png").read_bytes().startswith(b"\x89PNG")
    assert "298x449" in result.stderr and result.stdout == ""
    module = subprocess.run([sys.executable, "-m", "convcli", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout.startswith("convcli ")


def test_pipeline_through_real_processes(tmp_path):
    executable = convcli_executable()
    first = subprocess.run(
        [executable, "filter", "-", "-k", "gaussian:7", "-o", "-"],
        input=(ROOT / "samples" / "camera.png").read_bytes(),
        capture_output=True,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"stdin 512x512 (HxW, PNG L 8-bit)" in first.stderr and b"506x506 -> stdout" in first.stderr
    second = subprocess.run(
        [executable, "filter", "-", "-k", "vertical", "-o", str(tmp_path / "out.png")],
        input=first.stdout,
        capture_output=True,
    )
    assert second.returncode == 0, second.stderr
    assert b"stdin 506x506 (HxW, PNG L 8-bit)" in second.stderr and b"504x504" in second.stderr
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")


def test_broken_pipe_is_quiet(tmp_path):
    """A reader that stops after one line: the reader got its line exactly, the producer stops without a word.

    The producer's status is 1 when the reader was gone before the write (BrokenPipeError), or 0 when it
    left during the one large write: the kernel then reports the bytes the pipe took and CPython returns
    that short count without an error, so convcli has nothing to notice. Never a signal, never a traceback.
    """
    executable = convcli_executable()
    big = tmp_path / "big.txt"
    big.write_text("\n".join(" ".join("1" for _ in range(200)) for _ in range(2000)))  # 800 kB, beyond a pipe buffer
    producer = subprocess.Popen(
        [executable, "filter", str(big), "-k", "1", "-o", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert producer.stdout is not None and producer.stderr is not None
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.readline())"],
        stdin=producer.stdout,
        stdout=subprocess.PIPE,
        text=True,
    )
    producer.stdout.close()  # the reader holds the only read end: when it exits, the pipe is broken
    first_line, _ = reader.communicate(timeout=60)
    stderr = producer.stderr.read().decode()
    producer.stderr.close()
    status = producer.wait(timeout=60)
    assert reader.returncode == 0 and first_line == " ".join(["1"] * 200) + "\n"
    assert status in (0, 1), f"status {status} (negative: killed by a signal)\n{stderr}"
    summary = (
        f"{big} 2000x200 (HxW, text matrix) * custom 1x1 (stride 1x1, padding 0x0, dilation 1x1) -> 2000x200 -> stdout"
    )
    assert stderr.splitlines() == ([summary] if status == 0 else []), stderr
