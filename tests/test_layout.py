"""The codebase's shape holds: layers import downwards only, one home per cloud fact, single-job
modules, the README's Layout names exactly the modules that exist, and no test module imports
another (shared fixtures live in tests/conftest.py, helpers and fakes in tests/fakes.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ROOT / "components"
# The order of the layers (components/__init__.py): a module may import its own layer and the ones before.
LAYERS = ("model", "declare", "plan", "clouds", "resource", "engine", "report", "cli", "program")
# components/provider.py sits at the top for its pickled import path, but it is the engine's.
LAYER_OF_TOP_MODULE = {"provider": "engine", "program": "program"}
CLOUD_KEYS = ("edgeone", "tencent-cdn", "ucloud")
REGISTRY = COMPONENTS / "model" / "clouds.py"
MAX_LINES = 400


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def layer_of(path: Path) -> str:
    parts = path.relative_to(COMPONENTS).parts
    if len(parts) == 1:
        return LAYER_OF_TOP_MODULE.get(path.stem, "program")
    return parts[0]


def imported_layers(path: Path, at: Optional[Path] = None) -> set[tuple[str, str]]:
    """(module imported, its layer) for every ``components.*`` import of one module, absolute or relative
    (``from ..declare.model import x`` in components/cli/ is ``components.declare.model``). ``at``: where the
    module sits, when its file is elsewhere (a probe)."""
    out = set()
    where = at or path
    package = ["components", *where.parent.relative_to(COMPONENTS).parts] if where.is_relative_to(COMPONENTS) else []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level > 0 and package:
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "components" or len(parts) < 2:
                continue
            target = COMPONENTS.joinpath(*parts[1:])
            if target.with_suffix(".py").is_file():
                out.add((name, layer_of(target.with_suffix(".py"))))
            elif target.is_dir():
                out.add((name, parts[1]))
    return out


def test_every_import_points_down_the_layers():
    climbing = []
    for path in modules(COMPONENTS):
        own = LAYERS.index(layer_of(path))
        for name, layer in imported_layers(path):
            if LAYERS.index(layer) > own:
                climbing.append(f"{path.relative_to(ROOT)} imports {name} ({layer} is above {layer_of(path)})")
    assert climbing == []


def test_the_layer_check_sees_a_climbing_import(tmp_path):
    # The check itself: a model module importing the engine is reported.
    bad = COMPONENTS / "model" / "status.py"
    source = bad.read_text(encoding="utf-8") + "\nfrom components.engine.settings import PROJECT\n"
    probe = tmp_path / "status.py"
    probe.write_text(source, encoding="utf-8")
    assert ("components.engine.settings", "engine") in imported_layers(probe)


def test_the_layer_check_sees_a_climbing_relative_import(tmp_path):
    # The same import written relative (scripts/relative_imports.py writes them so) is resolved from the
    # module's own package: components/model/ -> ..engine.settings is components.engine.settings.
    probe = tmp_path / "status.py"
    probe.write_text("from ..engine.settings import PROJECT\nfrom .status import TargetState\n", encoding="utf-8")
    found = imported_layers(probe, at=COMPONENTS / "model" / "status.py")
    assert ("components.engine.settings", "engine") in found and ("components.model.status", "model") in found


def test_parsing_a_declaration_imports_no_adapter_and_no_cloud_sdk():
    code = (
        "import sys\n"
        "from components.declare.declarations import load_sets\n"
        f"sets = load_sets({str(ROOT / 'prefetch-sets')!r})\n"
        "assert sets\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('components.clouds', 'components.resource', "
        "'components.engine', 'tencentcloud', 'ucloud', 'pulumi')))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_cloud_key_outside_the_registry_and_the_adapters():
    found = []
    for path in modules(COMPONENTS):
        if path == REGISTRY or path.relative_to(COMPONENTS).parts[0] == "clouds":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(key in line for key in CLOUD_KEYS):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


@pytest.mark.parametrize("folder", ["components", "sandbox"])
def test_modules_stay_small_or_say_why_they_are_one_job(folder):
    long = []
    for path in modules(ROOT / folder):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and "one job" not in docstring:
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert long == []


def layout_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout", 1)[1]
    return section.split("```", 2)[1]


def listed_modules(block: str) -> set[str]:
    """The files the Layout block names: an entry ending in ``/`` opens a folder for the deeper lines."""
    listed: set[str] = set()
    folders: list[tuple[int, str]] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        token = line.split()[0]
        while folders and folders[-1][0] >= indent:
            folders.pop()
        if token.endswith("/"):
            folders.append((indent, token))
        elif token.endswith(".py"):
            listed.add("".join(folder for _, folder in folders) + token)
    return listed


def test_readme_layout_names_exactly_the_modules_that_exist():
    existing = {str(p.relative_to(ROOT)) for folder in ("components", "sandbox") for p in modules(ROOT / folder)
                if p.name not in ("__init__.py", "__main__.py")}
    listed = {name for name in listed_modules(layout_block()) if name.startswith(("components/", "sandbox/"))}
    assert sorted(existing - listed) == [], "modules missing from the README's Layout"
    assert sorted(listed - existing) == [], "the README's Layout names modules that do not exist"


def test_layout_parser_reads_nesting():
    block = "a/\n  b.py   x\n  c/\n    d.py  y\n  e.py\nf.py\n"
    assert listed_modules(block) == {"a/b.py", "a/c/d.py", "a/e.py", "f.py"}


TESTS = Path(__file__).resolve().parent


def test_the_check_sees_every_way_of_importing_a_test_module(tmp_path):
    """The check itself: every spelling of importing a test module is seen, helpers are not."""
    source = tmp_path / "test_example.py"
    source.write_text("\n".join([
        "import tests.test_a", "import tests.test_b as b", "from tests.test_c import x",
        "from tests import test_d, fakes", "from . import test_e", "from .test_f import y",
        "from tests.fakes import FakeClock", "import tests.stacks",
        "def f():", "    from tests.test_g import z", ""]), encoding="utf-8")
    assert imported_test_modules(source) == ["test_a", "test_b", "test_c", "test_d", "test_e", "test_f", "test_g"]


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (``test_*`` in tests/) that ``path`` imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = "tests" if node.level == 1 and node.module is None else (
                f"tests.{node.module}" if node.level == 1 else node.module or "")
            names = [package] + [f"{package}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "tests" and parts[1].startswith("test_"):
                found.append(parts[1])
    return sorted(set(found))


def test_no_test_module_imports_another():
    offenders = {path.name: imported for path in sorted(TESTS.glob("test_*.py"))
                 if (imported := imported_test_modules(path))}
    assert offenders == {}, ("test modules import other test modules; move what they share to tests/fakes.py "
                             f"(helpers) or tests/conftest.py (fixtures): {offenders}")
