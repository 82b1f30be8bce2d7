"""Rewrite ``from components.x import y`` inside components/ as relative imports (``from ..x import y``).

Why: installed, the package is ``cdn_prefetch`` (pyproject.toml maps components/ there, so that no bare
``components`` lands in site-packages); relative imports work under both names. Idempotent: run it again
after merging a branch that added absolute imports. ``--check`` lists what it would change (exit 1 if any).

    venv/bin/python scripts/relative_imports.py [--check] [FOLDER]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "components"


def package_of(path: Path, root: Path) -> list[str]:
    """The package a module's relative imports start from: its folder, as dotted parts."""
    return [root.name, *path.parent.relative_to(root).parts]


def relative(target: str, package: list[str]) -> str:
    """``components.declare.model`` seen from package ``components.cli`` -> ``..declare.model``."""
    parts = target.split(".")
    common = 0
    while common < min(len(parts), len(package)) and parts[common] == package[common]:
        common += 1
    level = len(package) - common + 1
    return "." * level + ".".join(parts[common:])


def rewrite(source: str, package: list[str]) -> str:
    """The module's source with each absolute import of the package made relative (nothing else touched)."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name == PACKAGE or a.name.startswith(PACKAGE + ".")
                                                 for a in node.names):
            raise SystemExit(f"line {node.lineno}: `import {PACKAGE}...` cannot be made relative; "
                             f"write `from {PACKAGE}... import name`")
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                and (node.module == PACKAGE or node.module.startswith(PACKAGE + "."))):
            continue
        index = node.lineno - 1
        pattern = re.compile(rf"\bfrom\s+{re.escape(node.module)}\s+import\b")
        line, count = pattern.subn(f"from {relative(node.module, package)} import", lines[index], count=1)
        if not count:
            raise SystemExit(f"line {node.lineno}: cannot find `from {node.module} import` to rewrite")
        lines[index] = line
    return "".join(lines)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    folders = [Path(a) for a in argv if a != "--check"] or [ROOT / PACKAGE]
    changed = []
    for root in folders:
        root = root.resolve()
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            source = path.read_text(encoding="utf-8")
            try:
                new = rewrite(source, package_of(path, root))
            except SystemExit as exc:
                print(f"{path}: {exc}", file=sys.stderr)
                return 2
            if new != source:
                changed.append(path)
                if not check:
                    path.write_text(new, encoding="utf-8")
    for path in changed:
        print(f"{'would rewrite' if check else 'rewrote'} {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
