"""A deployed stack of the real project for end-to-end tests: a sets folder, a sandbox, the engine.

Shared by the end-to-end tests of every cloud. The sandbox's request log is the evidence of what
was submitted; the engine (tests/engine.py) drives the real provider host as the CLI would.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import jsonschema
import yaml

from components.model.status import format_time, parse_time
from components.resource.submitter import REQUEST_LIFE
from sandbox import Sandbox
from tests.engine import COMPUTED, PROVIDER_KEY, Engine, EngineError

PROJECT = Path(__file__).resolve().parent.parent
SECRET_ID = "test-secret-id-e2e"
SECRET_KEY = "TestSecretKey-must-never-leak-7f3a9c"
UCLOUD_PUBLIC = "test-ucloud-public-e2e"
UCLOUD_PRIVATE = "TestUCloudPrivate-must-never-leak-4b1d"
ZONE = "zone-2o0i4xfimj9g"
UCLOUD_DOMAIN = "ucdn-e2etest"
HOST = "static.example.com"

# Every credential the tests hand to the product; none may ever show up in what the engine keeps or prints.
TEST_SECRETS = (SECRET_KEY, UCLOUD_PRIVATE)
OUTPUTS_SCHEMA = json.loads((PROJECT / "schemas" / "stack-outputs.schema.json").read_text(encoding="utf-8"))


class LeakFound(AssertionError):
    pass


def scan_for_secrets(where: str, text: str, secrets: Sequence[str] = TEST_SECRETS) -> None:
    """Fail if any test credential appears in ``text`` (state, outputs, logs or an error)."""
    for secret in secrets:
        if secret and secret in text:
            raise LeakFound(f"a test credential appeared in {where}")


def credential_values(value: Any) -> Iterator[str]:
    """Every string inside a secret config value (objects arrive as JSON text, ref §2.4), long enough to be a
    credential rather than a word that could appear anywhere (8 characters or more)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if not isinstance(parsed, (dict, list)):
            if len(value) >= 8:
                yield value
            return
        value = parsed
    if isinstance(value, dict):
        for item in value.values():
            yield from credential_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from credential_values(item)


def decoded_providers(state: dict) -> str:
    """Every resource's ``__provider`` decoded from base64 to the pickled provider's bytes (as Latin-1 text, so
    that a credential pickled as a string is found): what anyone holding the checkpoint could read."""
    blobs = []
    for resource in state.values():
        blob = resource.inputs.get(PROVIDER_KEY)
        if isinstance(blob, str) and blob:
            blobs.append(base64.b64decode(blob).decode("latin-1"))
    return "\n".join(blobs)


def check_outputs(outputs: dict) -> None:
    """Stack outputs validate against the published schema (unknown during a preview's update is fine)."""
    if outputs and COMPUTED not in json.dumps(outputs):
        jsonschema.validate(outputs, OUTPUTS_SCHEMA)


class AuditedEngine(Engine):
    """The engine stand-in, with every command's state, outputs, host log and error scanned for the
    test credentials, and every command's stack outputs validated against the outputs schema."""

    def credentials(self) -> tuple[str, ...]:
        """The test credentials and every value of the stack's secret config (origin keys included)."""
        values = {*TEST_SECRETS}
        for key in self.secret_keys:
            values.update(credential_values(self.config.get(key)))
        return tuple(sorted(values))

    def _audited(self, command: str, run):
        secrets = self.credentials()
        try:
            result = run()
        except EngineError as error:
            scan_for_secrets(f"the error of `{command}`", f"{error}\n{error.details}\n{error.host_log}", secrets)
            self._scan_state(f"a failed `{command}`", secrets)
            raise
        scan_for_secrets(f"the host log of `{command}`", result.host_log, secrets)
        scan_for_secrets(f"the stack outputs of `{command}`", json.dumps(result.outputs), secrets)
        self._scan_state(f"`{command}`", secrets)
        check_outputs(result.outputs)
        return result

    def _scan_state(self, after: str, secrets: Sequence[str]) -> None:
        scan_for_secrets(f"state after {after}", self.state_json(), secrets)
        scan_for_secrets(f"state after {after} (plain values)",
                         json.dumps({urn: [r.inputs, r.outputs] for urn, r in self.state.items()}), secrets)
        scan_for_secrets(f"the pickled provider in state after {after}", decoded_providers(self.state), secrets)

    def up(self, **kwargs):
        return self._audited("up", lambda: super(AuditedEngine, self).up(**kwargs))

    def preview(self, **kwargs):
        return self._audited("preview", lambda: super(AuditedEngine, self).preview(**kwargs))

    def refresh(self, **kwargs):
        return self._audited("refresh", lambda: super(AuditedEngine, self).refresh(**kwargs))

    def destroy(self, **kwargs):
        return self._audited("destroy", lambda: super(AuditedEngine, self).destroy(**kwargs))


# What a destination of each cloud looks like, and how its submits show in the sandbox log.
DESTINATIONS = {
    "edgeone": {"provider": "edgeone", "zone": ZONE},
    "tencent-cdn": {"provider": "tencent-cdn", "area": "mainland"},
    "ucloud": {"provider": "ucloud", "domainId": UCLOUD_DOMAIN},
}
SUBMIT_ACTIONS = {"edgeone": ("CreatePrefetchTask", "Targets"), "tencent-cdn": ("PushUrlsCache", "Urls"),
                  "ucloud": ("PrefetchNewUcdnDomainCache", "UrlList")}
PURGE_ACTIONS = {"edgeone": ("CreatePurgeTask", "Targets"), "tencent-cdn": ("PurgeUrlsCache", "Urls"),
                 "ucloud": ("RefreshNewUcdnDomainCache", "UrlList")}
SERVICES = {"edgeone": "teo", "tencent-cdn": "cdn", "ucloud": "ucloud"}


def resource_name(set_name: str, destination: dict[str, Any]) -> str:
    identity = {"edgeone": "zone", "tencent-cdn": "area", "ucloud": "domainId"}[destination["provider"]]
    return f"{set_name}-{destination['provider']}-{destination[identity]}"


def start_sandbox(db: Path, progress_seconds: float = 0.3) -> Sandbox:
    box = Sandbox(db, credentials={SECRET_ID: SECRET_KEY}, ucloud_credentials={UCLOUD_PUBLIC: UCLOUD_PRIVATE},
                  progress_seconds=progress_seconds).start()
    box.store.add_ucloud_domain(UCLOUD_DOMAIN, HOST)
    return box


class Stack:
    """One stack of the real project against one sandbox."""

    def __init__(self, tmp_path: Path, sandbox: Optional[Sandbox], *, endpoints: Optional[dict] = None,
                 extra_config: Optional[dict] = None, credentials: bool = True):
        self.sets = tmp_path / "sets"
        self.sets.mkdir(exist_ok=True)
        self.sandbox = sandbox
        config: dict[str, Any] = {
            "cdn-prefetch:setsDir": str(self.sets),
            "cdn-prefetch:endpoints": endpoints or {c: sandbox.url for c in DESTINATIONS},
            **(extra_config or {}),
        }
        secret_keys: list[str] = []
        if credentials:
            config.update({"tencentcloud:secretId": SECRET_ID, "tencentcloud:secretKey": SECRET_KEY,
                           "ucloud:publicKey": UCLOUD_PUBLIC, "ucloud:privateKey": UCLOUD_PRIVATE})
            secret_keys = ["tencentcloud:secretId", "tencentcloud:secretKey", "ucloud:publicKey", "ucloud:privateKey"]
        self.engine = AuditedEngine(PROJECT, config, secret_keys=secret_keys, env={"NO_PROXY": "127.0.0.1,localhost"})

    def declare(self, urls: Sequence[str], *, name: str = "web", destinations: Sequence[dict] = (DESTINATIONS["edgeone"],),
                freshness: str = "24h", wait: str = "30s", **keys: Any) -> None:
        """Write the set's YAML; ``keys`` are further top-level keys (``revision``, ``onChange``, ``safety``, ...)."""
        doc: dict[str, Any] = {"name": name, "freshness": freshness, "wait": wait, **keys}
        doc.update(destinations[0] if len(destinations) == 1 else {"destinations": [dict(d) for d in destinations]})
        doc["targets"] = list(urls)
        (self.sets / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def submits(self, cloud: str = "edgeone", *, purges: bool = False) -> list[list[str]]:
        """Sorted targets of every accepted prefetch (``purges``: purge) submit to ``cloud`` since the log
        was last cleared."""
        action, key = (PURGE_ACTIONS if purges else SUBMIT_ACTIONS)[cloud]
        return [sorted(r["params"][key]) for r in self.sandbox.store.requests(action=action)
                if r["error_code"] is None]

    def rejected_requests(self) -> list[dict]:
        """Requests the sandbox refused (limits, signatures, parameters): tests expect none."""
        return [r for r in self.sandbox.store.requests() if r["error_code"] is not None]

    def outputs(self, resource: str) -> dict:
        [state] = [s for s in self.engine.state.values() if s.urn.endswith("::" + resource)]
        return state.outputs

    def travel(self, seconds: float) -> None:
        """Let ``seconds`` pass without waiting: the sandbox's tasks and quota age (``store.age``), and so do
        the times the outputs record for unconfirmed submits (plan/unconfirmed.py), the recorded times that
        decide what a later ``up`` sends."""
        self.sandbox.store.age(seconds)
        for state in self.engine.state.values():
            for entry in state.outputs.get("unconfirmed") or []:
                for key in ("at", "until"):
                    entry[key] = format_time(parse_time(entry[key]) - timedelta(seconds=seconds))


def target_diff(step) -> dict:
    return {path: entry for path, entry in step.diff.items() if path.startswith("targets[")}


def path_of(url: str) -> str:
    return f'targets["{url}"]'


# ------------------------------------------------------------------------------------------
# Soak: one set on every cloud while the sandbox misbehaves (tests/test_soak.py, bench/soak_bench.py)
# ------------------------------------------------------------------------------------------
SOAK_CLOUDS = ("edgeone", "tencent-cdn", "ucloud")
SOAK_MAX_UPS = 6


def soak_urls(count: int) -> list[str]:
    return [f"https://static.example.com/soak/{i // 100:02d}/{i:05d}.js" for i in range(count)]


@dataclass
class SoakRun:
    """What a soak did, read from the sandbox (its task table and request log) and the stack outputs."""

    urls: list[str]
    ups: int
    failures: list[str]  # the last line of each failed up
    seconds: float
    summaries: dict[str, dict]  # cloud -> the summary of its destination's outputs after the last up
    tasks_per_url: dict[str, Counter]  # cloud -> target -> tasks the sandbox holds for it
    requests: list[dict]
    executed_faults: dict[int, bool]  # fault id -> whether it fires after the cloud did the work

    def ambiguous_submits(self) -> Counter:
        """Submits answered 502/reset after (executed) or before (clean) the cloud did the work."""
        submit_actions = {SUBMIT_ACTIONS[c][0] for c in SOAK_CLOUDS}
        return Counter(f"{r['fault']} {'executed' if self.executed_faults.get(r['fault_id']) else 'clean'}"
                       for r in self.requests if r["action"] in submit_actions and r["fault"] in ("http_5xx", "reset"))

    def report(self) -> dict[str, Any]:
        return {
            "targets": len(self.urls),
            "destinations": len(SOAK_CLOUDS),
            "ups": self.ups,
            "failed_ups": len(self.failures),
            "seconds": round(self.seconds, 1),
            "requests": len(self.requests),
            "by_fault": dict(Counter(r["fault"] or "none" for r in self.requests)),
            "by_error_code": dict(Counter(r["error_code"] for r in self.requests if r["error_code"])),
            "by_action": dict(Counter(r["action"] for r in self.requests)),
            "ambiguous_submits": dict(self.ambiguous_submits()),
        }

    def check(self) -> None:
        """The soak's guarantees: every destination converged, every target was submitted exactly once to each
        (the sandbox's task table, not the client's view, is the evidence), and the chaos really happened,
        including at least the forced executed-then-failed submits."""
        for cloud in SOAK_CLOUDS:
            summary = self.summaries[cloud]
            assert summary.get("in_sync"), (cloud, summary)
            per_url = self.tasks_per_url[cloud]
            duplicates = {u: n for u, n in per_url.items() if n != 1}
            assert not duplicates, f"{cloud}: {len(duplicates)} targets submitted more than once"
            missing = set(self.urls) - set(per_url)
            assert not missing and set(per_url) == set(self.urls), f"{cloud}: {len(missing)} targets never submitted"
        fired = Counter(r["fault"] for r in self.requests if r["fault"])
        assert fired["throttle"] and fired["http_5xx"] and fired["reset"], f"the chaos did not happen: {dict(fired)}"
        executed = sum(n for kind, n in self.ambiguous_submits().items() if kind.endswith("executed"))
        assert executed >= 2 * len(SOAK_CLOUDS), f"only {executed} submits failed after the cloud did the work"


def run_soak(tmp_path: Path, sandbox: Sandbox, count: int, *, max_ups: int = SOAK_MAX_UPS) -> SoakRun:
    """``count`` targets in one set on the three clouds, through the engine harness and the real provider host.

    The sandbox throttles 30 % of all requests, answers 5 % with HTTP 502 and resets 2 % of connections;
    half of the 502s and resets come *after* the cloud did the work (a task exists although the client saw
    an error); on top of that, on every cloud the first submit is answered 502 and the second has its
    connection reset, both after the cloud created the task, so the ambiguous case is always exercised.
    ``up`` is repeated until every destination is in sync, at most ``max_ups`` times (a failed ``up`` is
    allowed: the next one picks up from the cloud's history). The UCloud submits keep the client's 10 s
    spacing (the provider's own limiter); the sandbox's is off.
    """
    store = sandbox.store
    for key, value in {"prefetch_daily": 100_000, "cdn_push_daily_mainland": 100_000,
                       "ucloud_prefetch_daily": 100_000, "ucloud_prefetch_interval": 0.0}.items():
        store.set_setting(key, value)
    for cloud in SOAK_CLOUDS:
        action, _ = SUBMIT_ACTIONS[cloud]
        for kind in ("http_5xx", "reset"):
            store.add_fault(kind, service=SERVICES[cloud], action=action, executed=True, count=1, seed=0)
    store.add_chaos(throttle=0.3, server_error=0.05, reset=0.02, executed_share=0.5, seed=20261123)
    urls = soak_urls(count)
    stack = Stack(tmp_path, sandbox)
    stack.declare(urls, destinations=[DESTINATIONS[c] for c in SOAK_CLOUDS], wait="2m")

    def summaries() -> dict[str, dict]:
        return {c: stack.outputs(resource_name("web", DESTINATIONS[c]))["summary"] for c in SOAK_CLOUDS}

    started = time.monotonic()
    ups, failures = 0, []
    while ups < max_ups:
        if ups:
            stack.travel(REQUEST_LIFE.total_seconds())  # submits whose answer was lost: their life is over
        ups += 1
        try:
            stack.engine.up()
        except EngineError as error:  # allowed: the next up resumes from the clouds' history
            failures.append(error.message.splitlines()[-1][:300])
            continue
        if all(s["in_sync"] for s in summaries().values()):
            break
    seconds = time.monotonic() - started
    return SoakRun(urls, ups, failures, seconds, summaries(),
                   {c: Counter(t.target for t in store.tasks(SERVICES[c])) for c in SOAK_CLOUDS},
                   store.requests(), {f["id"]: f["executed"] for f in store.faults()})
