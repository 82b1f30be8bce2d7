"""Issue #15 acceptance: adding a cloud = one adapter module + one registry entry + its sandbox module.

A fake fourth cloud (tests/fourth_cloud/: adapter, CloudSpec, emulator) that no module of
components/ names runs the drift scenario of tests/test_clouds_end_to_end.py through the engine
harness and the real provider host. The host is another process: it finds the cloud only through
an entry point of group ``cdn_prefetch.clouds``, from a ``*.dist-info`` folder on its PYTHONPATH;
this process (where the program runs) registers the same entry with ``register()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.model import clouds
from tests.engine import Engine
from tests.fourth_cloud.emulator import FourthCloud
from tests.fourth_cloud.spec import SPEC
from tests.stacks import HOST, check_outputs, path_of, scan_for_secrets, target_diff

REPO = Path(__file__).resolve().parent.parent
KEY_ID, SECRET = "fourth-key-e2e", "FourthSecret-must-never-leak-91c2"
SPACE = "sp-e2etest"
URLS = [f"https://{HOST}/assets/{i:02d}.js" for i in range(50)]
FAILED = URLS[3:6]
TIMED_OUT = URLS[10:12]
RESOURCE = f"web-fourth-{SPACE}"

PROGRAM = """\
import json

import pulumi

from components.engine.prefetch_set import PrefetchSet, PrefetchSetArgs, stack_output

config = pulumi.Config("fourth-test")
web = PrefetchSet("web", PrefetchSetArgs(targets=json.loads(config.require("targets")), provider="fourth",
                                         space=config.require("space"), freshness="24h", wait="30s"))
pulumi.export("prefetch", stack_output({"web": web.audit}))
"""


def plugin_site(where: Path) -> Path:
    """A folder holding what ``pip install`` of a package with the fourth cloud's entry point would leave."""
    info = where / "cdn_prefetch_fourth_cloud-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cdn-prefetch-fourth-cloud\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cdn_prefetch.clouds]\nfourth = tests.fourth_cloud.spec:SPEC\n")
    return where


@pytest.fixture
def registered(monkeypatch):
    """The fourth cloud in this process's registry, for this test only."""
    monkeypatch.setattr(clouds, "_REGISTRY", dict(clouds._REGISTRY))
    clouds.register(SPEC)
    yield SPEC


@pytest.fixture
def fourth():
    cloud = FourthCloud({KEY_ID: SECRET}, (SPACE,), delay=0.3).start()
    yield cloud
    cloud.stop()


def plugin_path(tmp_path: Path) -> str:
    """PYTHONPATH of a process with the plugin installed: its dist-info, and its code (here the repo)."""
    return os.pathsep.join([str(plugin_site(tmp_path / "site")), str(REPO)])


def engine_for(tmp_path: Path, cloud: FourthCloud) -> Engine:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: fourth-test\nruntime:\n  name: python\noptions:\n  refresh: always\n")
    (project / "__main__.py").write_text(PROGRAM)
    config = {"cdn-prefetch:endpoints": {"fourth": cloud.url}, "fourth-test:targets": json.dumps(URLS),
              "fourth-test:space": SPACE}
    # The host: the project folder as cwd, the plugin installed (plugin_path), the key pair in the environment.
    env = {"PYTHONPATH": plugin_path(tmp_path), "FOURTH_KEY_ID": KEY_ID, "FOURTH_KEY_SECRET": SECRET}
    return Engine(project, config, env=env)


def audited(engine: Engine, result):
    for where, text in (("host log", result.host_log), ("outputs", json.dumps(result.outputs)),
                        ("state", engine.state_json())):
        scan_for_secrets(where, text, (SECRET,))
    check_outputs(result.outputs)  # the published outputs schema holds for a registered cloud too
    return result


def test_drift_scenario_on_a_fourth_cloud_registered_by_entry_point(tmp_path, registered, fourth):
    for url in FAILED:
        fourth.fail(url, "error")
    for url in TIMED_OUT:
        fourth.fail(url, "timeout")
    engine = engine_for(tmp_path, fourth)

    result = audited(engine, engine.up())
    assert fourth.submits == [sorted(URLS)]
    [entry] = result.outputs["prefetch"]["sets"]["web"]["destinations"]
    assert entry["provider"] == "fourth" and entry["scope"] == {"space": SPACE}
    [state] = engine.state.values()
    assert state.id == f"web/fourth/space={SPACE}"
    assert {task["task_id"] for task in state.outputs["submitted"]} == {f"{SPACE}-task-000001"}

    drift = target_diff(audited(engine, engine.preview()).step(RESOURCE))
    assert set(drift) == {path_of(u) for u in FAILED + TIMED_OUT}
    assert all(drift[path_of(u)].old.startswith("failed") for u in FAILED)
    assert all(drift[path_of(u)].old.startswith("timed out") for u in TIMED_OUT)
    assert all(entry.new == "warm" for entry in drift.values())

    fourth.rules.clear()
    fourth.submits.clear()
    audited(engine, engine.up())
    assert fourth.submits == [sorted(FAILED + TIMED_OUT)]
    assert audited(engine, engine.preview()).changed() == []
    assert fourth.refused == []


def test_an_installed_cloud_is_listed_before_anything_names_it(tmp_path):
    # A fresh process with the plugin installed, where nothing has asked for "fourth" by key yet (its
    # endpoint unset: the real cloud): the provider still reads its key pair, the typed API knows its arguments.
    probe = ("from components.engine.settings import settings_from_config\n"
             "from components.engine.args import scope_args\n"
             "settings = settings_from_config(lambda key: None, {'FOURTH_KEY_ID': 'k', 'FOURTH_KEY_SECRET': 's'})\n"
             "print(settings.credentials_for('fourth'), scope_args().get('space'))\n")
    env = {**os.environ, "PYTHONPATH": plugin_path(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "FourthCredentials(key_id='k', source='environment') space"
