"""Helpers for the cog blocks in README.md: generated --help and a tour run for real.

``python -m cogapp -r README.md`` regenerates; ``tests/test_docs.py`` runs ``cog --check`` so the
README can never drift from what convcli prints.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
from click.testing import CliRunner

from convcli.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
_WORKDIR: Path | None = None


def _commands() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    context = click.Context(main)
    for name in sorted(COMMANDS):
        paths.append([name])
        command = main.get_command(context, name)
        if isinstance(command, click.Group):
            paths.extend([name, sub] for sub in sorted(command.commands))
    return paths


def render_help_markdown() -> str:
    """One ``### convcli ...`` section per command with its help in a code block."""
    runner = CliRunner()
    sections = []
    for path in _commands():
        result = runner.invoke(main, [*path, "--help"], prog_name="convcli", terminal_width=100)
        title = " ".join(["convcli", *path])
        sections.append(f"### `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(sections)


def _workdir() -> Path:
    """A scratch folder holding a copy of samples/, shared by every tour block of one cog run."""
    global _WORKDIR
    if _WORKDIR is None:
        _WORKDIR = Path(tempfile.mkdtemp(prefix="convcli-tour-"))
        shutil.copytree(ROOT / "samples", _WORKDIR / "samples")
        atexit.register(shutil.rmtree, _WORKDIR, True)
    return _WORKDIR


def console(*commands: str) -> str:
    """Run shell commands in the scratch folder and return a ```console block with their output (stderr merged)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "100",
    }
    lines = ["```console"]
    for command in commands:
        result = subprocess.run(
            f"{command} 2>&1", shell=True, cwd=_workdir(), env=env, capture_output=True, text=True, check=False
        )
        lines.append(f"$ {command}")
        if result.stdout.strip():
            lines.append(result.stdout.rstrip("\n"))
    lines.append("```")
    return "\n".join(lines) + "\n"
