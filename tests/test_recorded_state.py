"""A state written by an older version refreshes with no diff, and the next preview shows no change.

``tests/fixtures/recorded_state/state.json`` is a checkpoint recorded by running the real project
through the engine stand-in (see ``record.py`` beside it: the commit, the sets, how to re-record).
This test loads it into a fresh engine, as a stack upgraded to the current code would find it, and
runs the current code against it: ``pulumi refresh``, then ``pulumi preview`` (which refreshes too,
``refresh: always``). It fails when the current code would change a user's existing stack: a
provider class moved or renamed (the ``__provider`` pickled in state names its module and class;
Read cannot unpickle it, and the one the program registers differs, which the engine's own input
diff counts as an update), a changed type token or resource name (other URNs: a create and a
delete), or a changed input key or value (an update).

The sandbox is a fresh one: the recorded task rows are not in it, and the recorded times are old.
The provider trusts the cloud's history inside its window and takes the newest row per URL, so the
recorded targets are made warm again first: submitted through the official SDKs (tasks finish at
once, sandbox setting ``progress_seconds`` = 0), and waited for until every row is done.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.cdn.v20180606 import cdn_client
from tencentcloud.cdn.v20180606 import models as cdn_models
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.teo.v20220901 import models as teo_models
from tencentcloud.teo.v20220901 import teo_client
from ucloud.services.ucdn.client import UCDNClient

import tests.engine
from components.plan import shards
from sandbox import (
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    Sandbox,
)
from tests.engine import ResourceState
from tests.stacks import PROJECT, AuditedEngine

FIXTURE = PROJECT / "tests" / "fixtures" / "recorded_state"
RECORDED = json.loads((FIXTURE / "state.json").read_text(encoding="utf-8"))
RESOURCES = {r["urn"]: r for r in RECORDED["resources"]}
PROVIDER_KEY = "__provider"
BATCH = 200  # URLs per submit: under every cloud's batch limit in the sandbox
WARM_TIMEOUT = 20.0


# -- a fresh sandbox where every recorded target is warm ---------------------------------------


def recorded_targets() -> dict[str, tuple[dict, list[str]]]:
    """Per destination (all shards of it together): the destination and every recorded target."""
    out: dict[str, tuple[dict, list[str]]] = {}
    for resource in RECORDED["resources"]:
        destination = resource["inputs"]["destination"]
        key = json.dumps(destination, sort_keys=True)
        out.setdefault(key, (destination, []))[1].extend(resource["inputs"]["targets"])
    return out


def tencent_profile(box: Sandbox) -> ClientProfile:
    return ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=box.endpoint, reqTimeout=10))


def submit(box: Sandbox, destination: dict, urls: list[str]) -> None:
    """Prefetch ``urls`` on ``destination`` of the sandbox through the cloud's official SDK."""
    cred = credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY)
    for start in range(0, len(urls), BATCH):
        batch = urls[start:start + BATCH]
        if destination["provider"] == "edgeone":
            request = teo_models.CreatePrefetchTaskRequest()
            request.from_json_string(json.dumps({"ZoneId": destination["zone"], "Targets": batch,
                                                 "Mode": destination.get("mode", "default")}))
            response = teo_client.TeoClient(cred, "", tencent_profile(box)).CreatePrefetchTask(request)
            assert not response.FailedList, response.FailedList
        elif destination["provider"] == "tencent-cdn":
            request = cdn_models.PushUrlsCacheRequest()
            request.from_json_string(json.dumps({"Urls": batch, "Area": destination.get("area", "mainland")}))
            cdn_client.CdnClient(cred, "", tencent_profile(box)).PushUrlsCache(request)
        elif destination["provider"] == "ucloud":
            client = UCDNClient({"base_url": box.url, "public_key": SANDBOX_UCLOUD_PUBLIC_KEY,
                                 "private_key": SANDBOX_UCLOUD_PRIVATE_KEY, "max_retries": 0, "timeout": 10})
            client.prefetch_new_ucdn_domain_cache({"UrlList": batch})
        else:
            raise AssertionError(f"the fixture has a destination this test cannot warm: {destination}")


def warm_sandbox(db: Path) -> None:
    """A fresh sandbox at ``db`` holding a finished, successful task for every recorded target."""
    with Sandbox(db, progress_seconds=0.0) as box:
        box.store.set_setting("ucloud_prefetch_interval", 0)  # submits back to back
        wanted: set[str] = set()
        for destination, urls in recorded_targets().values():
            submit(box, destination, urls)
            wanted.update(urls)
        deadline = time.monotonic() + WARM_TIMEOUT
        while True:  # until every row is done (at once here, as tasks take progress_seconds)
            now = time.time()
            rows = box.store.tasks()
            if {row.target for row in rows} >= wanted and all(row.status(now) != "processing" for row in rows):
                break
            assert time.monotonic() < deadline, "the sandbox did not finish the warming tasks"
            time.sleep(0.1)
        assert {row.status(now) for row in rows} == {"success"}


# -- the recorded stack, upgraded: refresh, then preview ----------------------------------------


def loaded_engine(db: Path) -> AuditedEngine:
    config = {
        "cdn-prefetch:endpoints": {"edgeone": "sandbox", "tencent-cdn": "sandbox", "ucloud": "sandbox"},
        "cdn-prefetch:sandboxDb": str(db),
        "cdn-prefetch:setsDir": RECORDED["sets_dir"],  # relative to the project root: the recorded `source`
    }
    engine = AuditedEngine(PROJECT, config, env={"NO_PROXY": "127.0.0.1,localhost"})
    engine.state = {
        r["urn"]: ResourceState(r["urn"], r["type"], r["id"], r["inputs"], r["outputs"],
                                list(r.get("secret_inputs", [])), list(r.get("secret_outputs", [])))
        for r in RECORDED["resources"]
    }
    engine.stack_outputs = RECORDED["stack_outputs"]
    return engine


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    """Refresh and preview of the recorded state with the current code, once for every test here.

    Also records what the program registers (type and inputs, ``__provider`` included) for each
    dynamic resource during the preview: the step diff the engine reports hides ``__`` keys.
    """
    db = tmp_path_factory.mktemp("recorded-state") / "sandbox" / "sandbox.db"
    warm_sandbox(db)
    registered: dict[str, dict[str, Any]] = {}
    real_register = tests.engine._Deployment.register

    def register(deployment, args, request):
        if request is not None and args.typ.startswith(tests.engine.DYNAMIC_TYPE_PREFIX):
            urn = deployment.engine._monitor_urn(request)
            registered[urn] = {"type": args.typ, "inputs": dict(args.inputs)}
        return real_register(deployment, args, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shards, "SHARD_TARGETS", RECORDED["shard_targets"])  # as recorded (the program runs here)
        engine = loaded_engine(db)
        refresh = engine.refresh()
        refreshed = {urn: (s.inputs, s.outputs) for urn, s in engine.state.items()}
        patch.setattr(tests.engine._Deployment, "register", register)
        preview = engine.preview()
    return {"refresh": refresh, "refreshed": refreshed, "preview": preview, "registered": registered}


def test_refresh_reads_every_recorded_resource_and_changes_none(upgraded):
    refresh = upgraded["refresh"]
    # Both passes (the preview pass and the update pass) read every resource of the recorded state.
    assert Counter(refresh.calls("Read")) == {urn: 2 for urn in RESOURCES}
    for result in (refresh.preview, refresh):
        assert sorted(s.urn for s in result.refresh_steps) == sorted(RESOURCES)
        assert {s.name: s.op for s in result.refresh_steps if s.op != "refresh"} == {}
    # The checkpoint keeps every resource with its recorded inputs, byte for byte (__provider included).
    assert set(upgraded["refreshed"]) == set(RESOURCES)
    for urn, (inputs, outputs) in upgraded["refreshed"].items():
        assert inputs == RESOURCES[urn]["inputs"], urn
        assert outputs[PROVIDER_KEY] == RESOURCES[urn]["outputs"][PROVIDER_KEY], urn


def test_refreshed_outputs_have_the_recorded_keys(upgraded):
    for urn, (_, outputs) in upgraded["refreshed"].items():
        assert sorted(outputs) == sorted(RESOURCES[urn]["outputs"]), urn
        assert outputs["summary"]["in_sync"] is True, urn  # the fresh sandbox's rows were found warm
        observed, recorded = outputs["observed"], RESOURCES[urn]["outputs"]["observed"]
        assert sorted(observed) == sorted(recorded), urn  # the compact encoding where it was recorded
        assert sorted(outputs["summary"]) == sorted(RESOURCES[urn]["outputs"]["summary"]), urn


def test_preview_after_refresh_shows_no_change_for_the_same_urns_and_types(upgraded):
    preview = upgraded["preview"]
    assert [(s.name, s.op, s.diff) for s in preview.changed()] == []
    assert sorted(s.urn for s in preview.steps) == sorted(RESOURCES)
    assert {s.op for s in preview.steps} == {"same"}
    assert {s.name: s.op for s in preview.refresh_steps if s.op != "refresh"} == {}
    registered = upgraded["registered"]
    assert sorted(registered) == sorted(RESOURCES)
    for urn, resource in RESOURCES.items():
        assert registered[urn]["type"] == resource["type"], urn


def test_program_registers_the_recorded_inputs_and_provider_pickle(upgraded):
    for urn, resource in RESOURCES.items():
        assert urn in upgraded["registered"], f"the program no longer registers {urn}"
        inputs = upgraded["registered"][urn]["inputs"]
        # Byte-identical: dill pickles the provider by reference (module path + class name).
        assert inputs[PROVIDER_KEY] == resource["inputs"][PROVIDER_KEY], urn
        assert sorted(inputs) == sorted(resource["inputs"]), urn


def shape(prefetch: Any) -> dict:
    """The structure of the ``prefetch`` stack output: sets, their destinations and target counts."""
    assert isinstance(prefetch, dict), f"the prefetch stack output is not known: {prefetch!r} (a resource changes)"
    return {
        "version": prefetch["version"],
        "sets": {
            name: {
                "keys": sorted(audit),
                "source": audit["source"],
                "description": audit["description"],
                "targets": audit["targets"],
                "destinations": [
                    {"keys": sorted(d), "provider": d["provider"], "scope": d["scope"],
                     "summary_keys": sorted(d["summary"]), "total": d["summary"]["total"],
                     "warm": d["summary"]["counts"]["warm"], "in_sync": d["summary"]["in_sync"]}
                    for d in audit["destinations"]
                ],
            }
            for name, audit in prefetch["sets"].items()
        },
    }


def test_stack_output_has_the_recorded_structure(upgraded):
    assert set(upgraded["preview"].outputs) == set(RECORDED["stack_outputs"])
    assert shape(upgraded["preview"].outputs["prefetch"]) == shape(RECORDED["stack_outputs"]["prefetch"])


def test_the_fixture_covers_what_it_promises():
    """Three clouds, a set with two destinations, a sharded set, a compact ``observed``, and small."""
    providers = {r["inputs"]["destination"]["provider"] for r in RECORDED["resources"]}
    assert providers == {"edgeone", "tencent-cdn", "ucloud"}
    sets = RECORDED["stack_outputs"]["prefetch"]["sets"]
    assert any(len(audit["destinations"]) >= 2 for audit in sets.values())
    assert any(r["inputs"].get("shard") for r in RECORDED["resources"])
    assert any(isinstance(r["outputs"]["observed"], dict) and r["outputs"]["observed"].get("encoding")
               for r in RECORDED["resources"])
    assert (FIXTURE / "state.json").stat().st_size < 1_000_000
