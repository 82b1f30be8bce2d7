"""The layout of the tests themselves: what one test module shares with another lives in a helper module.

Fixtures are in tests/conftest.py, helpers and fakes in tests/fakes.py (end-to-end stacks in
tests/stacks.py, the engine stand-in in tests/engine.py). A test module importing another one would
run that module's tests' imports and couple the two; this test fails if any does.
"""

from __future__ import annotations

import ast
from pathlib import Path

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
