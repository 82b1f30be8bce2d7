"""Issue #8, part 5: examples/with-tencentcloud — an EdgeOne zone and acceleration domain managed by
pulumi-tencentcloud, and a prefetch set on them made with the typed API.

The example's own ``__main__.py`` runs under mocks (the tencentcloud plugin cannot be installed
here); the mocked Zone gets a real-looking zone id, or none (unknown) in the preview of a new stack.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import yaml
from pulumi.output import Unknown
from pulumi.runtime import rpc

from tests.fakes import DOMAIN_TYPE, ZONE_ID, ZONE_TYPE, FakeTencentCloud, no_unknowns, run_program, zone

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "with-tencentcloud"
CONFIG = {"cdn-prefetch-with-tencentcloud:planId": "edgeone-2o1xvpmq7nn",
          "cdn-prefetch-with-tencentcloud:siteName": "example.com",
          "cdn-prefetch-with-tencentcloud:host": "static.example.com"}
SET = "site-assets-edgeone"
TARGETS = {f"https://static.example.com{p}": "warm" for p in ("/index.html", "/assets/app.js", "/assets/app.css")}


def run_example(**kwargs):
    kwargs.setdefault("invoke", FakeTencentCloud(zones=[zone(ZONE_ID, "example.com")]))
    return run_program(EXAMPLE, config=CONFIG, project="cdn-prefetch-with-tencentcloud", **kwargs)


def test_project_files():
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == "cdn-prefetch-with-tencentcloud" and project["runtime"]["name"] == "python"
    assert project["options"]["refresh"] == "always"
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    for words in ("pulumi config set", "planId", "depends_on", "components/", "PYTHONPATH", "pickled by reference"):
        assert words in readme, words


def test_zone_id_flows_into_the_set_which_depends_on_the_domain():
    run = run_example()
    assert run.error is None, run.error
    zone_reg, domain_reg = run.of_type(ZONE_TYPE), run.of_type(DOMAIN_TYPE)
    assert zone_reg.inputs["zoneName"] == "example.com" and zone_reg.inputs["planId"] == "edgeone-2o1xvpmq7nn"
    assert domain_reg.inputs["zoneId"] == ZONE_ID and domain_reg.inputs["domainName"] == "static.example.com"
    reg = run.dynamic(SET)
    assert reg.inputs["destination"]["zone"] == ZONE_ID
    assert domain_reg.urn in reg.dependencies  # depends_on=[domain] reaches the dynamic resource
    assert zone_reg.urn in reg.property_dependencies["destination"]
    assert {k: v for k, v in reg.inputs.items() if k not in ("__provider",) and v is not None} == {
        "set": "site-assets", "destination": {"provider": "edgeone", "zone": ZONE_ID, "mode": "default"},
        "targets": TARGETS, "freshness": "24h", "wait": "2m"}
    assert run.exports["zoneId"] == ZONE_ID
    assert run.exports["prefetch"]["sets"]["site-assets"]["source"] == "pulumi program"
    assert run.warnings() == []  # preflight found the zone active and the host inside it


def test_preview_of_a_new_stack_with_the_zone_id_unknown_plans_a_create():
    cloud = FakeTencentCloud()
    run = run_example(preview=True, zone_id=None, invoke=cloud)
    assert run.error is None, run.error
    reg = run.dynamic(SET)
    assert isinstance(reg.inputs["destination"]["zone"], Unknown)
    assert reg.inputs["targets"] == TARGETS
    assert no_unknowns({k: v for k, v in reg.inputs.items() if k != "destination"})
    assert run.of_type(DOMAIN_TYPE).urn in reg.dependencies
    assert cloud.calls == []  # nothing to look up for a zone that does not exist yet


def test_preflight_warns_when_the_zone_is_paused():
    run = run_example(invoke=FakeTencentCloud(zones=[zone(ZONE_ID, "example.com", paused=True)]))
    assert run.error is None
    assert run.warnings() == [f"preflight: prefetch set 'site-assets' on edgeone: EdgeOne zone {ZONE_ID} "
                              "(example.com) is paused; prefetch tasks fail until it is enabled again"]


def test_the_provider_host_unpickles_the_provider_by_reference_from_the_example_folder():
    # The engine starts `python -m pulumi.dynamic` in the project folder: the same sys.path as `python -c` there.
    run = run_example()
    blob = run.dynamic(SET).inputs["__provider"]
    blob = blob["value"] if rpc.is_rpc_secret(blob) else blob
    assert b"components.provider" in base64.b64decode(blob)  # by reference: the class path, not its code
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = ("import base64, sys, dill; provider = dill.loads(base64.b64decode(sys.argv[1])); "
             "import components.provider as m; print(type(provider).__module__, m.__file__)")
    out = subprocess.run([sys.executable, "-c", probe, blob], cwd=EXAMPLE, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    module, path = out.stdout.split()
    assert module == "components.provider"
    assert Path(path) == EXAMPLE.parent.parent / "components" / "provider.py"


def test_the_real_provider_host_accepts_the_planned_create_with_the_zone_unknown():
    # The engine's Check for a new resource in preview: Check(olds={}, news=<inputs with the unknown zone>),
    # in the SDK's own provider host started in the example folder (tests/engine.py's host, ref §3b).
    from pulumi.runtime.proto import provider_pb2

    from tests.engine import Engine, _Host, _struct, _unstruct

    run = run_example(preview=True, zone_id=None, invoke=FakeTencentCloud())
    reg = run.dynamic(SET)
    news = {k: v for k, v in reg.inputs.items() if v is not None}
    engine = Engine(EXAMPLE, {k: v for k, v in CONFIG.items()}, env={"PYTHONPATH": ""})
    host = _Host(engine, [])
    try:
        urn = reg.urn
        response = host.call("Check", provider_pb2.CheckRequest(urn=urn, name=SET, type=reg.type, olds=_struct({}),
                                                               news=_struct(news)), urn)
    finally:
        host.stop()
    assert list(response.failures) == []
    checked = _unstruct(response.inputs)
    assert checked["destination"]["zone"] == rpc.UNKNOWN and checked["targets"] == TARGETS
