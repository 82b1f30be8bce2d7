"""``pip install`` of a fresh copy of the repository, used outside it (pyproject.toml): the ``cdn-prefetch``
command on the example sets and the embedded sandbox, validation from the wheel's own schema, a user's
own Pulumi program importing the typed API, and import names that cannot collide (no bare
``components`` or ``sandbox``). One test: the install is the expensive part (about 5 s)."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from sandbox import SandboxStore
from tests.stacks import PROJECT

USER_PROGRAM = '''
"""A user's own Pulumi program, in its own folder: the typed API from the installed package, under mocks."""
import base64, json
import importlib.util
import dill
import pulumi, pulumi.runtime

registered = []


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        registered.append({"type": args.typ, "provider": args.inputs.get("__provider")})
        return [f"{args.name}-id", dict(args.inputs)]

    def call(self, args):
        return {}


pulumi.runtime.set_mocks(Mocks(), project="user-site", stack="dev", preview=False)
from cdn_prefetch import PrefetchSet, PrefetchSetArgs  # after set_mocks, as Pulumi's own tests do


@pulumi.runtime.test
def program():
    site = PrefetchSet("site", PrefetchSetArgs(targets=["https://static.example.com/app.js"], provider="edgeone",
                                               zone="zone-abc", preflight="off"))
    return site.audit.apply(lambda audit: print(json.dumps({"audit": audit, "registered": registered, "loaded": [
        type(dill.loads(base64.b64decode(r["provider"]))).__module__ for r in registered if r["provider"]],
        "missing": {name: importlib.util.find_spec(name) is None
                    for name in ("components", "sandbox", "cdn_prefetch.sandbox")}})))


program()
'''


def fresh_copy(target: Path) -> Path:
    """The files a clone of the working tree has (tracked, plus new files git does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT / name
        if source.is_file() and not name.startswith("venv"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def build_isolation() -> list[str]:
    """Without isolation when this environment can build a wheel offline (setuptools >= 70.1, or wheel);
    else pip fetches the build backend from its index, as `pip install .` on a bare machine does."""
    try:
        import setuptools

        if tuple(int(p) for p in setuptools.__version__.split(".")[:2]) >= (70, 1):
            return ["--no-build-isolation"]
        import wheel  # noqa: F401
    except ImportError:
        return []
    return ["--no-build-isolation"]


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, text=True, capture_output=True, timeout=180)


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = {"cdn_prefetch.schemas"}
    for folder, name in (("components", "cdn_prefetch"), ("sandbox", "cdn_prefetch.sandbox")):
        for init in (PROJECT / folder).rglob("__init__.py"):
            expected.add(".".join([name, *init.parent.relative_to(PROJECT / folder).parts]))
    assert set(config["packages"]) == expected
    assert config["package-dir"] == {"cdn_prefetch": "components", "cdn_prefetch.sandbox": "sandbox",
                                     "cdn_prefetch.schemas": "schemas"}


def test_installed_outside_the_repository_the_command_warms_the_example_sets(tmp_path, example_project):
    source, site = fresh_copy(tmp_path / "clone"), tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(site), "NO_PROXY": "127.0.0.1,localhost",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", *build_isolation(),
                   "--target",
                   str(site), str(source)], tmp_path, env)
    assert install.returncode == 0, install.stderr[-3000:]
    command = [str(site / "bin" / "cdn-prefetch")]  # the console script (its interpreter: this venv's)

    apply = run([*command, "apply", "--yes"], example_project, env)
    assert apply.returncode == 0, apply.stderr
    [destination] = json.loads(apply.stdout)["prefetch"]["sets"]["site-assets"]["destinations"]
    assert destination["summary"]["in_sync"] is True and destination["summary"]["total"] == 5
    report = run([*command, "report"], example_project, env)
    assert report.returncode == 0 and "all 5 targets warm" in report.stdout, report.stderr

    # A failure rule (through the installed sandbox command); a day later every target is due again.
    rule = run([*command, "sandbox", "--db", ".sandbox/sandbox.db", "rule", "add", "*/app.js", "failed"],
               example_project, env)
    assert rule.returncode == 0, rule.stderr
    SandboxStore(example_project / ".sandbox" / "sandbox.db").age(25 * 3600)
    assert run([*command, "apply", "--yes"], example_project, env).returncode == 2  # one target failed
    plan = run([*command, "plan"], example_project, env)
    assert plan.returncode == 2, plan.stderr
    drifted = [line for line in plan.stdout.splitlines() if line.startswith("  ~ ")]
    assert len(drifted) == 1 and drifted[0].startswith("  ~ https://static.example.com/assets/app.js: failed: ")
    assert drifted[0].endswith("=> prefetch")

    # Validation reads the schema the wheel carries (no repository around).
    (example_project / "bad.yaml").write_text("provider: edgeone\nzone: zone-abc\ntargets: [ftp://x]\n")
    check = run([*command, "validate", "bad.yaml", "prefetch-sets"], example_project, env)
    assert check.returncode == 1 and "bad.yaml:3: targets[0]: 'ftp://x' is not valid" in check.stderr

    # A user's own program in another folder: the typed API, the provider pickled by reference.
    user = tmp_path / "user-program"
    user.mkdir()
    (user / "__main__.py").write_text(USER_PROGRAM)
    program = run([sys.executable, str(user)], user, env)
    assert program.returncode == 0, program.stderr
    result = json.loads(program.stdout)
    assert result["audit"]["targets"] == 1 and result["audit"]["destinations"][0]["scope"]["zone"] == "zone-abc"
    [provider] = [r["provider"] for r in result["registered"] if r["provider"]]
    pickled = base64.b64decode(provider)
    assert b"cdn_prefetch.provider" in pickled and b"PrefetchProvider" in pickled and len(pickled) < 200
    assert result["loaded"] == ["cdn_prefetch.provider"]
    assert result["missing"] == {"components": True, "sandbox": True, "cdn_prefetch.sandbox": False}


def test_imports_inside_components_are_relative_and_the_rewrite_is_idempotent(tmp_path):
    spec = importlib.util.spec_from_file_location("relative_imports", PROJECT / "scripts" / "relative_imports.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    # An absolute import merged from another branch is found (and `--check` fails on it) ...
    assert script.main(["--check", str(PROJECT / "components")]) == 0
    module = tmp_path / "components" / "cli" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text("from components.cli.run import Shard\nfrom components import PrefetchSet\n"
                      "def f():\n    from components.declare.model import (\n        Problem,\n    )\n")
    assert script.main(["--check", str(tmp_path / "components")]) == 1
    # ... rewritten relative to the module's package, and a second run changes nothing.
    assert script.main([str(tmp_path / "components")]) == 0
    assert module.read_text() == ("from .run import Shard\nfrom .. import PrefetchSet\n"
                                  "def f():\n    from ..declare.model import (\n        Problem,\n    )\n")
    assert script.main(["--check", str(tmp_path / "components")]) == 0
