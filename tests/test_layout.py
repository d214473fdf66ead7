"""The layering written down in docs/architecture.md holds for every import in src/convcli."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "convcli"
CODECS = {"PIL", "imageio", "tifffile", "png"}


def documented_layers() -> list[list[str]]:
    """The layer block of docs/architecture.md: one layer per line, top first."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    match = re.search(r"<!-- layers:.*?-->\s*```text\n(.*?)```", text, re.S)
    assert match, "docs/architecture.md has no layer block"
    return [line.split() for line in match.group(1).splitlines() if line.strip()]


def unit_of(module: str) -> str:
    """``convcli.io.decode`` -> ``io``; ``convcli`` -> ``__init__``."""
    parts = module.split(".")
    assert parts[0] == "convcli", module
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def convcli_imports(path: Path, src: Path = SRC) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of convcli in the file, function-level ones included."""
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "convcli"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # from . import x: each name may be a module
                    found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
                    continue
                found.append((node.lineno, target))
            elif node.module and node.module.split(".")[0] == "convcli":
                found.append((node.lineno, node.module))
    return found


def third_party(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_unit_is_in_the_documented_layers():
    layers = documented_layers()
    listed = [unit for layer in layers for unit in layer]
    assert len(listed) == len(set(listed)), "a unit is listed twice"
    present = {
        p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert present == set(listed), (
        f"missing from the doc: {present - set(listed)}; gone from src: {set(listed) - present}"
    )


def upward_imports(src: Path, layers: list[list[str]]) -> list[str]:
    """Every import in the tree under ``src`` that does not point to a lower layer (or its own unit)."""
    rank = {unit: index for index, layer in enumerate(layers) for unit in layer}
    problems = []
    for path in sorted(src.rglob("*.py")):
        here = unit_of(module_name(path, src))
        for line, target in convcli_imports(path, src):
            there = unit_of(target)
            if there == here:
                continue
            if rank.get(there, -1) <= rank[here]:
                problems.append(f"{path.relative_to(src)}:{line} ({here}) imports {target} ({there})")
    return problems


def test_imports_point_down_only():
    problems = upward_imports(SRC, documented_layers())
    assert not problems, "\n".join(problems)


def test_imports_resolve_to_real_modules():
    """The checker above only means something if it sees the imports: each resolves to a file or package."""
    seen = 0
    for path in SRC.rglob("*.py"):
        for _line, target in convcli_imports(path):
            relative = Path(*target.split(".")[1:])
            candidates = [SRC / relative.with_suffix(".py"), SRC / relative / "__init__.py"]
            parent = SRC / relative.parent
            assert any(c.exists() for c in candidates) or (parent / "__init__.py").exists() or parent == SRC, target
            seen += 1
    assert seen > 100


def test_only_cli_imports_click_and_only_io_imports_the_codecs():
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        found = third_party(path)
        if not relative.startswith("cli/"):
            assert "click" not in found, f"{relative} imports click; only convcli.cli may"
        if not relative.startswith("io/"):
            assert not found & CODECS, f"{relative} imports the image codecs; only convcli.io may"
    assert not third_party(SRC / "errors.py") & {"convcli", "numpy"}
    assert "numpy" not in third_party(SRC / "shapes.py")


def test_the_checker_catches_upward_and_sideways_imports(tmp_path):
    fake = tmp_path / "convcli"
    (fake / "engine").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "shapes.py").write_text("import numpy\n")
    (fake / "pool.py").write_text("def f():\n    from .engine import plan\n")
    (fake / "engine" / "__init__.py").write_text("from . import plan\n")
    (fake / "engine" / "plan.py").write_text("from ..shapes import x\n\ndef g():\n    from ..cli import main\n")
    layers = [["cli"], ["engine", "pool"], ["shapes"]]
    assert upward_imports(fake, layers) == [
        "engine/plan.py:4 (engine) imports convcli.cli (cli)",
        "pool.py:2 (pool) imports convcli.engine (engine)",
    ]
