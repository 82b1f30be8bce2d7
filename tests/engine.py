"""A test-only stand-in for the Pulumi engine (never shipped; used by the test suite only).

The Pulumi CLI cannot be installed here, so this module reproduces what the engine does for a
Python *dynamic* provider, closely enough for tests to prove preview/up/refresh/destroy
behaviour:

* the Pulumi program (``__main__.py`` of a project directory) runs under
  ``pulumi.runtime.set_mocks``;
* every ``RegisterResource`` of a dynamic resource is turned, **from inside the mocks**, into
  the engine's step (Check, Diff, Create/Update/Delete) against the SDK's real dynamic
  provider host (``python -u -m pulumi.dynamic``), driven over gRPC in the engine's order;
* a checkpoint (``Engine.state``) is kept in memory and optionally dumped as JSON.

Every step below cites the section of ``/work/shared/reference/pulumi-dynamic.md`` ("ref §x")
describing the engine behaviour it reproduces.  Known simplifications (documented, deliberate):
``ignoreChanges`` / ``replaceOnChanges`` / ``additionalSecretOutputs`` are honoured for
top-level property names only; secretness is tracked per top-level property; non-dynamic custom
resources (e.g. tencentcloud) are echoed back like plain mocks and never enter the checkpoint.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import os
import re
import runpy
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import grpc
import pulumi
import pulumi.runtime
import yaml
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime import settings as _settings
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _ensure_event_loop

__all__ = [
    "COMPUTED",
    "DiffEntry",
    "Engine",
    "EngineError",
    "ResourceState",
    "RunResult",
    "Step",
    "input_diff",
    "display_diff",
]

#: How the CLI shows a value that is unknown during preview.
COMPUTED = "<computed>"
#: Type prefix of Python dynamic resources (ref §1.1).
DYNAMIC_TYPE_PREFIX = "pulumi-python:dynamic"
PROVIDER_KEY = "__provider"
RPC_TIMEOUT = 300.0
HOST_START_TIMEOUT = 60.0
PROGRAM_TIMEOUT = 600.0

_CHANGES = {
    provider_pb2.DiffResponse.DIFF_UNKNOWN: "DIFF_UNKNOWN",
    provider_pb2.DiffResponse.DIFF_SOME: "DIFF_SOME",
    provider_pb2.DiffResponse.DIFF_NONE: "DIFF_NONE",
}


# --------------------------------------------------------------------------------------------
# Public data model
# --------------------------------------------------------------------------------------------


class EngineError(Exception):
    """A failed command, as the CLI would report it (``error: ...``, non-zero exit).

    ``details`` holds the gRPC details (the provider's error text / traceback) for provider
    failures; ``program_error`` holds the original exception raised by ``__main__.py``.
    ``host_log`` is what the provider host printed before the failure.
    """

    def __init__(
        self,
        message: str,
        *,
        program_error: Optional[BaseException] = None,
        details: Optional[str] = None,
        urn: Optional[str] = None,
        method: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.program_error = program_error
        self.program_traceback: Optional[str] = (
            "".join(traceback.format_exception(program_error)) if program_error is not None else None
        )
        self.details = details
        self.urn = urn
        self.method = method
        self.host_log = ""
        #: steps decided before the failure (the failed one included)
        self.steps: list = []

    def copy(self) -> "EngineError":
        """A fresh instance (clean traceback) to raise to the caller."""
        e = EngineError(
            self.message, program_error=self.program_error, details=self.details, urn=self.urn, method=self.method
        )
        e.host_log = self.host_log
        e.steps = list(self.steps)
        return e


@dataclass
class ResourceState:
    """One entry of the checkpoint. Values are plain Python (secrets unwrapped), incl. __provider."""

    urn: str
    type: str
    id: str
    inputs: dict
    outputs: dict
    #: top-level input / output keys that are secrets (the real checkpoint encrypts them).
    secret_inputs: list = field(default_factory=list)
    secret_outputs: list = field(default_factory=list)


@dataclass
class DiffEntry:
    kind: str  # "add" | "delete" | "update"
    old: Any
    new: Any


@dataclass
class Step:
    urn: str
    op: str  # "create" | "update" | "same" | "delete" | "replace" | "refresh"
    diff: dict  # property path -> DiffEntry; top-level keys starting with "__" hidden (display)
    provider_changes: str  # "DIFF_UNKNOWN" | "DIFF_SOME" | "DIFF_NONE" | ""

    @property
    def name(self) -> str:
        return self.urn.split("::")[-1]


@dataclass
class RunResult:
    steps: list  # program steps (create/update/same/delete/replace), registration order
    refresh_steps: list  # refresh phase ("refresh" if unchanged, "update" if changed, "delete")
    outputs: dict  # stack outputs as `pulumi stack output --json --show-secrets` prints them
    host_log: str  # everything the provider host(s) printed on stdout+stderr
    #: names of stack outputs that are secrets (printed as "[secret]" without --show-secrets)
    secret_outputs: set = field(default_factory=set)
    #: (method, urn) of every provider RPC in order, e.g. ("Create", "urn:...")
    rpc_calls: list = field(default_factory=list)
    #: for up/refresh: the result of the preview pass that ran first
    preview: Optional["RunResult"] = None
    #: the program's pulumi.log.* messages as (severity, message), e.g. ("warning", "...")
    diagnostics: list = field(default_factory=list)

    def changed(self) -> list:
        return [s for s in self.steps if s.op not in ("same", "refresh")]

    def step(self, urn_suffix_or_name: str) -> Step:
        return _find_step(self.steps, urn_suffix_or_name)

    def refresh_step(self, urn_suffix_or_name: str) -> Step:
        return _find_step(self.refresh_steps, urn_suffix_or_name)

    def calls(self, method: str) -> list:
        """URNs for which the given provider RPC (e.g. "Read") was made during this command."""
        return [u for m, u in self.rpc_calls if m == method]


def _find_step(steps: list, key: str) -> Step:
    found = [s for s in steps if s.urn == key] or [s for s in steps if s.name == key]
    found = found or [s for s in steps if s.urn.endswith(key)]
    if len(found) != 1:
        raise KeyError(f"{len(found)} steps match {key!r}; steps: {[s.urn for s in steps]}")
    return found[0]


# --------------------------------------------------------------------------------------------
# Property paths and the engine's own input diff (ref §1.4)
# --------------------------------------------------------------------------------------------

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _key_path(parent: str, key: str) -> str:
    # As the CLI prints property paths: `a.b`, `a["https://x/y"]`, top-level `name`.
    if _SIMPLE_KEY.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def _is_unknown(v: Any) -> bool:
    return isinstance(v, Unknown) or (isinstance(v, str) and v == rpc.UNKNOWN)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _diff_into(old: Any, new: Any, path: str, out: dict) -> None:
    if _is_unknown(new):
        out[path] = DiffEntry("update", old, COMPUTED)
    elif isinstance(old, dict) and isinstance(new, dict):
        for k in list(old.keys()) + [k for k in new.keys() if k not in old]:
            p = _key_path(path, k)
            if k not in new:
                out[p] = DiffEntry("delete", old[k], None)
            elif k not in old:
                out[p] = DiffEntry("add", None, COMPUTED if _is_unknown(new[k]) else new[k])
            else:
                _diff_into(old[k], new[k], p, out)
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            p = f"{path}[{i}]"
            if i >= len(new):
                out[p] = DiffEntry("delete", old[i], None)
            elif i >= len(old):
                out[p] = DiffEntry("add", None, COMPUTED if _is_unknown(new[i]) else new[i])
            else:
                _diff_into(old[i], new[i], p, out)
    elif not _equal(old, new):
        out[path] = DiffEntry("update", old, new)


def input_diff(old_inputs: dict, new_inputs: dict) -> dict:
    """The engine's detailed input diff (ref §1.4): ALL keys, including `__provider`.

    Recurses into maps and lists, so one changed entry of a 10,000-key map is one entry.
    """
    out: dict = {}
    _diff_into(old_inputs or {}, new_inputs or {}, "", out)
    return out


def display_diff(diff: dict) -> dict:
    """What the CLI displays: top-level keys starting with "__" are hidden (ref §1.4)."""
    return {p: e for p, e in diff.items() if not re.split(r"[.\[]", p, maxsplit=1)[0].startswith("__")}


# --------------------------------------------------------------------------------------------
# Value helpers: secrets, unknowns, (de)serialization
# --------------------------------------------------------------------------------------------


def _norm(v: Any) -> Any:
    """Deserialized value -> plain Python: Unknown objects become the rpc.UNKNOWN sentinel."""
    if isinstance(v, Unknown):
        return rpc.UNKNOWN
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return v


def _contains_secret(v: Any) -> bool:
    if rpc.is_rpc_secret(v):
        return True
    if isinstance(v, dict):
        return any(_contains_secret(x) for x in v.values())
    if isinstance(v, list):
        return any(_contains_secret(x) for x in v)
    return False


def _strip_secrets(v: Any) -> Any:
    # The host answers Configure with acceptSecrets=False, so the engine strips every secret
    # marker before sending properties to it (ref §2.5).
    if rpc.is_rpc_secret(v):
        return _strip_secrets(v["value"])
    if isinstance(v, dict):
        return {k: _strip_secrets(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_strip_secrets(x) for x in v]
    return v


def _show(v: Any) -> Any:
    """Plain value as the CLI prints it (unknown -> "<computed>", secrets unwrapped)."""
    v = _strip_secrets(v)
    if _is_unknown(v):
        return COMPUTED
    if isinstance(v, dict):
        return {k: _show(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_show(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)  # property values are float64; the CLI prints integral numbers as ints
    return v


def _annotate_secrets(outputs: dict, secret_keys: Iterable[str]) -> dict:
    # On the way back the engine marks as secret every output whose key matches a secret
    # input, plus additionalSecretOutputs (ref §2.5 `annotateSecrets`).
    keys = set(secret_keys)
    return {k: (rpc.wrap_rpc_secret(v) if k in keys else v) for k, v in outputs.items()}


def _run_coro(coro: Any) -> Any:
    """Run a coroutine to completion on a private loop (never the SDK's running loop)."""
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if not running:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    # A loop is running in this thread (calling asyncio.run here would fail): use a helper thread.
    box: dict = {}

    def worker() -> None:
        try:
            box["value"] = _run_coro(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _struct(props: Optional[dict]) -> Any:
    # ref §3b step 4: encode with rpc.serialize_properties (None-valued keys are not sent, §1.7).
    return _run_coro(rpc.serialize_properties(_norm(props or {}), {}))


def _unstruct(struct: Any) -> dict:
    return _norm(rpc.deserialize_properties(struct, True))


def _config_text(v: Any) -> str:
    # Config values are strings; structured values travel as JSON text (ref §2.4, §5.2).
    if isinstance(v, str):
        return v
    return json.dumps(v)


def _name_of(urn: str) -> str:
    return urn.split("::")[-1]


# --------------------------------------------------------------------------------------------
# The provider host (one per engine deployment)
# --------------------------------------------------------------------------------------------


class _Host:
    """The SDK's real dynamic provider host, started like the engine starts the plugin."""

    def __init__(self, engine: "Engine", calls: list) -> None:
        self._engine = engine
        self._calls = calls
        self._log: list = []
        self._log_lock = threading.Lock()
        # ref §2.3: the plugin runs `python -u -m pulumi.dynamic <engine address>` with the project
        # root as cwd (so `components/` is importable), PULUMI_PROJECT set, PULUMI_CONFIG holding
        # only the (empty) pulumi-python namespace, and the rest of the CLI's environment inherited.
        env = dict(os.environ)
        # PULUMI_RUNTIME_<OPTION> for each `runtime.options` key (ref §2.3).
        runtime = engine.project.get("runtime")
        for opt, val in ((runtime.get("options") or {}) if isinstance(runtime, dict) else {}).items():
            env[f"PULUMI_RUNTIME_{str(opt).upper()}"] = val if isinstance(val, str) else json.dumps(val)
        env.update(
            {
                "PULUMI_PROJECT": engine.project_name,
                "PULUMI_CONFIG": "{}",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        env.update(engine.env)
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
            cwd=str(engine.program_dir),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if engine.on_host_start is not None:
            engine.on_host_start(self.proc)  # test hook, see Engine.on_host_start
        self._readers = [threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True)]
        self._readers[0].start()
        # ref §2.3 handshake: the host prints one line with its port on stdout.
        port_line = self.proc.stdout.readline().decode(errors="replace").strip()
        if not port_line.isdigit():
            self.proc.kill()
            self.proc.wait()
            self._readers[0].join(5)
            raise EngineError(f"could not start the dynamic provider host: {port_line!r}\n{self.log()}")
        out_reader = threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True)
        out_reader.start()
        self._readers.append(out_reader)
        options = list(_GRPC_CHANNEL_OPTIONS) + [("grpc.enable_http_proxy", 0)]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port_line}", options=options)
        grpc.channel_ready_future(self.channel).result(timeout=HOST_START_TIMEOUT)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self._configure()

    def _pump(self, stream: Any) -> None:
        # The engine forwards the dynamic plugin's stdout/stderr as info diagnostics (ref §2.5).
        for raw in iter(stream.readline, b""):
            with self._log_lock:
                self._log.append(raw.decode(errors="replace"))

    def _configure(self) -> None:
        # ref §2.4: the engine sends the FULL stack config to the dynamic providers, namespaced,
        # decrypted, secret values wrapped as secrets, object values as JSON text.
        # (The SDK calls the provider's configure() lazily, per distinct __provider, ref §1.2.)
        e = self._engine
        args = {}
        config = e.effective_config()
        for key, value in config.items():
            text = _config_text(value)
            args[key] = rpc.wrap_rpc_secret(text) if key in e.secret_keys else text
        provider_urn = f"urn:pulumi:{e.stack}::{e.project_name}::pulumi:providers:pulumi-python::default"
        req = provider_pb2.ConfigureRequest(
            variables={k: _config_text(v) for k, v in config.items()},
            args=_struct(args),
            acceptSecrets=True,
            acceptResources=True,
            sends_old_inputs=True,
            sends_old_inputs_to_delete=True,
            urn=provider_urn,
            name="default",
            type="pulumi:providers:pulumi-python",
        )
        resp = self.call("Configure", req, provider_urn)
        # ref §1.3: the host says acceptSecrets=False and no supportsPreview.
        self.accept_secrets = resp.acceptSecrets
        self.supports_preview = resp.supportsPreview

    def call(self, method: str, request: Any, urn: str) -> Any:
        self._calls.append((method, urn))
        try:
            return getattr(self.stub, method)(request, timeout=RPC_TIMEOUT)
        except grpc.RpcError as exn:
            # ref §1.2: provider exceptions come back as gRPC UNKNOWN with the traceback as details;
            # the engine fails the step and the command.
            details = exn.details() if hasattr(exn, "details") else str(exn)
            raise EngineError(
                f"{urn}: {method} failed: {details}", details=details, urn=urn, method=method
            ) from None

    def log(self) -> str:
        with self._log_lock:
            return "".join(self._log)

    def stop(self) -> str:
        # The engine closes the plugin context at the end of each deployment (kills the plugin).
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # (Closing the channel after the server is gone is instant; before, it blocks ~0.2 s.)
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001
            pass
        for t in self._readers:
            t.join(10)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except Exception:  # noqa: BLE001
                pass
        return self.log()


# --------------------------------------------------------------------------------------------
# Mocks / monitor: the program side
# --------------------------------------------------------------------------------------------

_current_request = threading.local()


class _EngineMonitor(MockMonitor):
    """MockMonitor that lets new_resource see the raw request and captures the stack outputs."""

    def __init__(self, mocks: Mocks, deployment: "_Deployment") -> None:
        super().__init__(mocks)
        self._deployment = deployment

    def RegisterResource(self, request: Any) -> Any:
        # new_resource is called synchronously from here on the same (executor) thread.
        _current_request.value = request
        try:
            return super().RegisterResource(request)
        finally:
            _current_request.value = None

    def RegisterResourceOutputs(self, request: Any) -> Any:
        # run_in_stack's Stack registers the program's exports (pulumi.export) as its outputs.
        if "::pulumi:pulumi:Stack::" in request.urn:
            _ensure_event_loop()
            self._deployment.raw_exports = _norm(rpc.deserialize_properties(request.outputs, True))
        return super().RegisterResourceOutputs(request)


class _EngineMocks(Mocks):
    def __init__(self, deployment: "_Deployment") -> None:
        self._deployment = deployment

    def new_resource(self, args: MockResourceArgs) -> tuple:
        return self._deployment.register(args, getattr(_current_request, "value", None))

    def call(self, args: MockCallArgs) -> tuple:
        handler = self._deployment.engine.invoke
        return (handler(args) if handler else {}), []  # MockMonitor iterates the failures


# --------------------------------------------------------------------------------------------
# One engine deployment (a preview pass or an update pass)
# --------------------------------------------------------------------------------------------


class _Deployment:
    def __init__(self, engine: "Engine", *, dry_run: bool) -> None:
        self.engine = engine
        self.dry_run = dry_run
        # The base snapshot (ref §1.5: refresh may replace it in memory).
        self.base: dict = copy.deepcopy(engine.state)
        self.steps: list = []
        self.refresh_steps: list = []
        self.rpc_calls: list = []
        self.registered: list = []
        self.seen_urns: set = set()
        self.diagnostics: list = []
        self.pending_deletes: list = []
        self.raw_exports: Optional[dict] = None
        self.error: Optional[EngineError] = None
        self.lock = threading.Lock()
        self.host_log = ""
        # The engine loads (starts + Configures) the pulumi-python plugin for the deployment; it
        # is started in the background so that its ~0.3 s start overlaps the program's start.
        # (The provider's own configure() stays lazy: the host calls it at the first RPC, §1.2.)
        self._host_box: dict = {}
        self._host_thread = threading.Thread(target=self._start_host, name="dynamic-host-start", daemon=True)
        self._host_thread.start()

    # -- host lifecycle ----------------------------------------------------------------------
    def _start_host(self) -> None:
        try:
            self._host_box["host"] = _Host(self.engine, self.rpc_calls)
        except BaseException as e:  # noqa: BLE001 - raised on first use
            self._host_box["error"] = e

    @property
    def host(self) -> _Host:
        self._host_thread.join()
        if "error" in self._host_box:
            raise self._host_box["error"]
        return self._host_box["host"]

    def close(self) -> None:
        self._host_thread.join()
        host = self._host_box.pop("host", None)
        if host is not None:
            self.host_log = host.stop()

    # -- state helpers -----------------------------------------------------------------------
    def _save(self, rs: ResourceState) -> None:
        # Only the update pass writes the checkpoint (ref §1.3/§1.5: preview never saves).
        if not self.dry_run:
            self.engine.state[rs.urn] = copy.deepcopy(rs)

    def _drop(self, urn: str) -> None:
        if not self.dry_run:
            self.engine.state.pop(urn, None)

    # -- refresh (ref §1.5) ----------------------------------------------------------------
    def refresh(self) -> None:
        for urn, old in list(self.base.items()):
            # Read(id, urn, properties=old outputs, inputs=old inputs).
            resp = self.host.call(
                "Read",
                provider_pb2.ReadRequest(
                    id=old.id,
                    urn=urn,
                    name=_name_of(urn),
                    type=old.type,
                    properties=_struct(old.outputs),
                    inputs=_struct(old.inputs),
                ),
                urn,
            )
            if not resp.id:
                # Empty id = the resource is gone: dropped from the base (and the checkpoint in an
                # update pass), so the program's registration of it becomes a create (ref §1.5).
                self.refresh_steps.append(Step(urn, "delete", {}, ""))
                del self.base[urn]
                self._drop(urn)
                continue
            new_outputs = _unstruct(resp.properties)
            # New inputs = ReadResponse.inputs if set, else the old inputs (ref §1.5).
            new_inputs = _unstruct(resp.inputs) if resp.HasField("inputs") else copy.deepcopy(old.inputs)
            # Refresh diff since CLI 3.120: Diff(olds=refreshed outputs, old_inputs=refreshed
            # inputs, news=OLD state inputs), result inverted (ref §1.5).
            d = self.host.call(
                "Diff",
                provider_pb2.DiffRequest(
                    id=resp.id,
                    urn=urn,
                    name=_name_of(urn),
                    type=old.type,
                    olds=_struct(new_outputs),
                    news=_struct(old.inputs),
                    old_inputs=_struct(new_inputs),
                ),
                urn,
            )
            # Inverting the reversed diff = the diff old inputs -> refreshed inputs; with
            # DIFF_UNKNOWN the engine computes it itself, __provider included (ref §1.4).
            full = input_diff(old.inputs, new_inputs)
            changed = self._changed(d.changes, full)
            # Shown as an update if changes != NONE, else as an unchanged refresh (ref §1.5).
            self.refresh_steps.append(
                Step(urn, "update" if changed else "refresh", display_diff(full) if changed else {}, _CHANGES[d.changes])
            )
            refreshed = ResourceState(
                urn, old.type, resp.id, new_inputs, new_outputs, list(old.secret_inputs), list(old.secret_outputs)
            )
            # The refreshed state replaces the base in memory (preview --refresh, never saved) or
            # in the checkpoint (up --refresh / refresh) (ref §1.5, deployment_executor rebuildBaseState).
            self.base[urn] = refreshed
            self._save(refreshed)

    @staticmethod
    def _changed(changes: int, full_input_diff: dict) -> bool:
        # ref §1.4: DIFF_UNKNOWN -> the engine diffs old vs new inputs itself (incl. __provider);
        # DIFF_SOME -> changed; DIFF_NONE -> unchanged.
        if changes == provider_pb2.DiffResponse.DIFF_UNKNOWN:
            return bool(full_input_diff)
        return changes == provider_pb2.DiffResponse.DIFF_SOME

    # -- program (RegisterResource -> step) -------------------------------------------------
    def register(self, args: MockResourceArgs, request: Any) -> tuple:
        if request is not None:
            urn = self.engine._monitor_urn(request)
            with self.lock:
                # The engine rejects a second registration of the same URN.
                if urn in self.seen_urns:
                    raise EngineError(f"Duplicate resource URN '{urn}'; try giving it a unique name", urn=urn)
                self.seen_urns.add(urn)
        if not args.typ.startswith(DYNAMIC_TYPE_PREFIX):
            # Components and non-dynamic custom resources: echo like plain mocks, no checkpoint.
            return (f"{args.name}_id" if args.custom else None), args.inputs
        if request is None:  # pragma: no cover - only ReadResource (get) reaches here
            raise EngineError(f"{args.typ}::{args.name}: reading dynamic resources (get/import) is not supported")
        with self.lock:
            if self.error is not None:
                # The engine stops issuing new steps once one has failed.
                raise EngineError(f"deployment aborted after an earlier error: {self.error.message}")
            try:
                return self._register_dynamic(args, request)
            except EngineError as e:
                self.error = e
                raise

    def _register_dynamic(self, args: MockResourceArgs, request: Any) -> tuple:
        urn = self.engine._monitor_urn(request)
        typ = args.typ
        name = args.name
        raw = _norm(rpc.deserialize_properties(request.object, True))
        secret_inputs = sorted(k for k, v in raw.items() if _contains_secret(v))
        news = _strip_secrets(raw)  # ref §2.5: secret markers stripped (acceptSecrets=False)
        old: Optional[ResourceState] = self.base.get(urn)
        self.registered.append(urn)

        # ignore_changes (top-level names): the engine substitutes the old input values.
        if old is not None:
            for key in request.ignoreChanges:
                if key in old.inputs:
                    news[key] = copy.deepcopy(old.inputs[key])
                else:
                    news.pop(key, None)

        # Check(olds = old inputs from state or {}, news = program inputs) (ref §1.2, §3b).
        checked = self._check(urn, name, typ, old.inputs if old else {}, news, old.outputs if old else None)
        secret_outputs = sorted(set(secret_inputs) | set(request.additionalSecretOutputs))

        if old is None:
            op, diff, changes = "create", {}, ""
            replaces: list = []
            delete_before_replace = False
        else:
            # Diff(id, olds = old OUTPUTS, news = checked inputs, old_inputs = old inputs) (ref §1.2).
            d = self.host.call(
                "Diff",
                provider_pb2.DiffRequest(
                    id=old.id,
                    urn=urn,
                    name=name,
                    type=typ,
                    olds=_struct(old.outputs),
                    news=_struct(checked),
                    old_inputs=_struct(old.inputs),
                    ignoreChanges=list(request.ignoreChanges),
                ),
                urn,
            )
            changes = _CHANGES[d.changes]
            full = input_diff(old.inputs, checked)
            changed = self._changed(d.changes, full)
            replaces = list(d.replaces)
            # replaceOnChanges (top-level names) turns a changed property into a replacement.
            top_changed = {re.split(r"[.\[]", p, maxsplit=1)[0] for p in full}
            replaces += [k for k in request.replaceOnChanges if k in top_changed and k not in replaces]
            delete_before_replace = d.deleteBeforeReplace or request.deleteBeforeReplace
            if not changed:
                op = "same"
            else:
                op = "replace" if replaces else "update"
            # The DetailedDiff (DIFF_UNKNOWN) or the display's input text diff (DIFF_SOME),
            # "__" keys hidden (ref §1.4).
            diff = display_diff(full) if changed else {}
        self.steps.append(Step(urn, op, diff, changes))

        if op == "replace":
            # ref §1.3: for a replacement the engine calls Check a second time, with no olds.
            checked = self._check(urn, name, typ, {}, news, None)

        if self.dry_run:
            # ref §1.3: the host does not set supportsPreview, so in preview the engine never
            # calls Create/Update and hands back the checked inputs as the outputs (ref §1.7).
            if op == "same":
                return old.id, _annotate_secrets(old.outputs, old.secret_outputs)
            return ("" if op in ("create", "replace") else old.id), _annotate_secrets(checked, secret_outputs)

        if op == "create":
            new = self._create(urn, name, typ, checked, secret_inputs, secret_outputs)
        elif op == "update":
            # Update(id, olds = old outputs, news = checked inputs, old_inputs) (ref §1.2).
            resp = self.host.call(
                "Update",
                provider_pb2.UpdateRequest(
                    id=old.id,
                    urn=urn,
                    name=name,
                    type=typ,
                    olds=_struct(old.outputs),
                    news=_struct(checked),
                    old_inputs=_struct(old.inputs),
                    ignoreChanges=list(request.ignoreChanges),
                ),
                urn,
            )
            new = ResourceState(urn, typ, old.id, checked, _unstruct(resp.properties), secret_inputs, secret_outputs)
            self._save(new)
        elif op == "replace":
            # ref §1.3: create-before-delete by default (the old one is deleted after all
            # registrations); deleteBeforeReplace deletes it first.
            if delete_before_replace:
                self._delete(old)
                self._drop(urn)
            else:
                self.pending_deletes.append(old)
            new = self._create(urn, name, typ, checked, secret_inputs, secret_outputs)
        else:
            # A Same step keeps the old (possibly refreshed) outputs with the new inputs (ref §1.5,
            # step.go SameStep.Apply).
            new = ResourceState(
                urn, typ, old.id, checked, copy.deepcopy(old.outputs), secret_inputs, sorted(set(old.secret_outputs) | set(secret_outputs))
            )
            self._save(new)
        return new.id, _annotate_secrets(new.outputs, new.secret_outputs)

    def _check(self, urn: str, name: str, typ: str, olds: dict, news: dict, old_outputs: Optional[dict]) -> dict:
        resp = self.host.call(
            "Check",
            provider_pb2.CheckRequest(
                urn=urn,
                name=name,
                type=typ,
                olds=_struct(olds),
                news=_struct(news),
                old_outputs=_struct(old_outputs) if old_outputs is not None else None,
            ),
            urn,
        )
        if resp.failures:
            reasons = "; ".join(f"{f.property}: {f.reason}" if f.property else f.reason for f in resp.failures)
            raise EngineError(f"{urn}: Check failed: {reasons}", urn=urn, method="Check", details=reasons)
        return _unstruct(resp.inputs)

    def _create(self, urn: str, name: str, typ: str, checked: dict, secret_inputs: list, secret_outputs: list) -> ResourceState:
        # Create(urn, properties = checked inputs) -> id, outputs (ref §1.2). A failed create
        # records nothing in the checkpoint.
        resp = self.host.call(
            "Create",
            provider_pb2.CreateRequest(urn=urn, name=name, type=typ, properties=_struct(checked), preview=False),
            urn,
        )
        new = ResourceState(urn, typ, resp.id, checked, _unstruct(resp.properties), secret_inputs, secret_outputs)
        self._save(new)
        return new

    def _delete(self, old: ResourceState) -> None:
        # Delete(id, urn, properties = outputs, old_inputs = inputs), using the __provider saved
        # in the outputs (ref §1.2, §1.3).
        self.host.call(
            "Delete",
            provider_pb2.DeleteRequest(
                id=old.id,
                urn=old.urn,
                name=_name_of(old.urn),
                type=old.type,
                properties=_struct(old.outputs),
                old_inputs=_struct(old.inputs),
            ),
            old.urn,
        )

    def finish_program(self) -> None:
        # Resources in the base snapshot that the program did not register are deleted, after all
        # registrations, in reverse order; then the old halves of create-before-delete replacements.
        for urn in reversed(list(self.base)):
            if urn in self.registered:
                continue
            self.steps.append(Step(urn, "delete", {}, ""))
            if not self.dry_run:
                self._delete(self.base[urn])
                self._drop(urn)
        if not self.dry_run:
            for old in reversed(self.pending_deletes):
                self._delete(old)
            # The new snapshot lists resources in registration order.
            ordered = {u: self.engine.state[u] for u in self.registered if u in self.engine.state}
            ordered.update({u: r for u, r in self.engine.state.items() if u not in ordered})
            self.engine.state.clear()
            self.engine.state.update(ordered)

    def destroy_all(self) -> None:
        # `pulumi destroy`: Delete every resource in reverse order; the program does not run.
        for urn in reversed(list(self.base)):
            self.steps.append(Step(urn, "delete", {}, ""))
            if not self.dry_run:
                self._delete(self.base[urn])
                self._drop(urn)

    def result(self) -> RunResult:
        exports = self.raw_exports or {}
        return RunResult(
            steps=list(self.steps),
            refresh_steps=list(self.refresh_steps),
            outputs={k: _show(v) for k, v in exports.items()},
            host_log=self.host_log,
            secret_outputs={k for k, v in exports.items() if _contains_secret(v)},
            rpc_calls=list(self.rpc_calls),
            diagnostics=list(self.diagnostics),
        )


class _DiagnosticsHandler(logging.Handler):
    """Collects the program's pulumi.log.* messages (the MockEngine logs them) as diagnostics."""

    def __init__(self, sink: list) -> None:
        super().__init__(logging.DEBUG)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self._sink.append((record.levelname.lower(), record.getMessage()))


class _NotYetRoot:
    """Sentinel root so set_mocks does not register its own Stack (run_in_stack makes one)."""


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


class Engine:
    """Runs Pulumi commands for a project directory against the real dynamic provider host."""

    def __init__(
        self,
        project_dir: str | Path,
        config: dict,
        *,
        stack: str = "dev",
        secret_keys: Iterable[str] = (),
        env: Optional[dict] = None,
        state_file: str | Path | None = None,
        invoke: Optional[Callable[[MockCallArgs], dict]] = None,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        with open(self.project_dir / "Pulumi.yaml", encoding="utf-8") as f:
            self.project: dict = yaml.safe_load(f) or {}
        self.project_name: str = self.project["name"]
        # `main:` moves the program dir, which is also the plugins' cwd (ref §2.3, §5.3).
        self.program_dir = (self.project_dir / self.project["main"]).resolve() if self.project.get("main") else self.project_dir
        #: the stack config as given (namespaced keys); see effective_config() for defaults
        self.config: dict = dict(config)
        self.stack = stack
        self.secret_keys: set = set(secret_keys)
        self.env: dict = dict(env or {})
        self.state_file = Path(state_file) if state_file else None
        self.invoke = invoke
        #: Test hook (default None: no effect): called with the ``subprocess.Popen`` of every provider
        #: host right after it is started (one per preview pass / update pass), e.g. to kill the host
        #: in the middle of a command as a crash or a cancelled CI job would. A killed host fails the
        #: running RPC, and so the command, like the CLI would (tests/test_reliability_end_to_end.py).
        self.on_host_start: Optional[Callable[[subprocess.Popen], None]] = None
        #: the checkpoint, keyed by URN
        self.state: dict = {}
        #: stack outputs saved by the last successful update (what `pulumi stack output` shows)
        self.stack_outputs: dict = {}
        self._stack_output_secrets: set = set()

    # -- project settings ------------------------------------------------------------------
    @property
    def refresh_always(self) -> bool:
        """Pulumi.yaml `options: refresh: always` (ref §1.6)."""
        return str((self.project.get("options") or {}).get("refresh", "")).lower() == "always"

    def _refresh_flag(self, refresh: Optional[bool]) -> bool:
        # `refresh: always` turns on --refresh for up/preview/destroy; an explicit
        # --refresh=false (refresh=False here) wins (ref §1.6).
        return self.refresh_always if refresh is None else refresh

    def effective_config(self) -> dict:
        """Stack config with the defaults declared under Pulumi.yaml `config:` filled in
        (unnamespaced keys get the project's namespace), as the CLI passes it to the program
        and to the dynamic providers' Configure (ref §2.4, §5.2)."""
        out: dict = {}
        for key, spec in (self.project.get("config") or {}).items():
            full = key if ":" in key else f"{self.project_name}:{key}"
            if isinstance(spec, dict) and "default" in spec:
                out[full] = spec["default"]
            elif not isinstance(spec, dict):
                out[full] = spec  # short form `key: value`
        out.update(self.config)
        return out

    # -- commands --------------------------------------------------------------------------
    def preview(self, *, refresh: Optional[bool] = None) -> RunResult:
        """`pulumi preview` / `pulumi preview --refresh` (refresh=None: Pulumi.yaml decides)."""
        return self._run(dry_run=True, refresh=self._refresh_flag(refresh), program=True)

    def up(self, *, refresh: Optional[bool] = None, skip_preview: bool = False) -> RunResult:
        """`pulumi up [--refresh]`: a preview pass first unless skip_preview (ref §1.3, apply.go)."""
        refresh = self._refresh_flag(refresh)
        pre = None if skip_preview else self._run(dry_run=True, refresh=refresh, program=True)
        return self._combine(pre, self._run(dry_run=False, refresh=refresh, program=True))

    def refresh(self, *, skip_preview: bool = False) -> RunResult:
        """`pulumi refresh`: program does not run; a preview pass (Read, not saved) runs first."""
        pre = None if skip_preview else self._run(dry_run=True, refresh=True, program=False)
        return self._combine(pre, self._run(dry_run=False, refresh=True, program=False))

    def destroy(self, *, refresh: Optional[bool] = None, skip_preview: bool = False) -> RunResult:
        """`pulumi destroy [--refresh]`: Delete everything in reverse order (ref §1.3); the
        program does not run. Without refresh the destroy preview pass makes no provider calls,
        so it is only reproduced when refreshing (its Reads are observable)."""
        refresh = self._refresh_flag(refresh)
        pre = None
        if refresh and not skip_preview:
            pre = self._run(dry_run=True, refresh=True, program=False, destroy=True)
        return self._combine(pre, self._run(dry_run=False, refresh=refresh, program=False, destroy=True))

    def state_json(self) -> str:
        """The checkpoint serialized like a Pulumi checkpoint: secret values are encrypted."""

        def enc(values: dict, secret: Iterable[str]) -> dict:
            out = {}
            for k, v in values.items():
                if k in set(secret):
                    digest = hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()
                    out[k] = {rpc._special_sig_key: rpc._special_secret_sig, "ciphertext": "v1:" + digest[:32]}
                else:
                    out[k] = v
            return out

        stack_urn = f"urn:pulumi:{self.stack}::{self.project_name}::pulumi:pulumi:Stack::{self.project_name}-{self.stack}"
        resources = [
            {"urn": stack_urn, "custom": False, "type": "pulumi:pulumi:Stack",
             "outputs": enc(self.stack_outputs, self._stack_output_secrets)}
        ] if (self.state or self.stack_outputs) else []
        for rs in self.state.values():
            resources.append(
                {
                    "urn": rs.urn,
                    "custom": True,
                    "id": rs.id,
                    "type": rs.type,
                    "inputs": enc(rs.inputs, rs.secret_inputs),
                    "outputs": enc(rs.outputs, rs.secret_outputs),
                }
            )
        return json.dumps({"version": 3, "checkpoint": {"latest": {"resources": resources}}}, indent=2, sort_keys=True)

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _combine(pre: Optional[RunResult], res: RunResult) -> RunResult:
        if pre is not None:
            res.preview = pre
            res.host_log = pre.host_log + res.host_log
            res.rpc_calls = pre.rpc_calls + res.rpc_calls
            res.diagnostics = pre.diagnostics + res.diagnostics
        return res

    def _monitor_urn(self, request: Any) -> str:
        parent = request.parent
        typ = request.type
        if parent:
            typ = parent.split("::")[2].split("$")[-1] + "$" + typ
        return f"urn:pulumi:{self.stack}::{self.project_name}::{typ}::{request.name}"

    def _run(self, *, dry_run: bool, refresh: bool, program: bool, destroy: bool = False) -> RunResult:
        # Each engine deployment (the preview pass and the update pass of `up` are two) has its
        # own plugin context, so its own provider host process (pkg/engine/deployment.go).
        d = _Deployment(self, dry_run=dry_run)
        try:
            if refresh:
                d.refresh()
            if program:
                self._run_program(d)
                d.finish_program()
            elif destroy:
                d.destroy_all()
        except EngineError as e:
            d.close()
            e.host_log = d.host_log
            e.steps = list(d.steps)
            self._dump()
            raise
        d.close()
        result = d.result()
        if not dry_run:
            if program:
                self.stack_outputs = copy.deepcopy(result.outputs)
                self._stack_output_secrets = set(result.secret_outputs)
            elif destroy:
                self.stack_outputs, self._stack_output_secrets = {}, set()
        self._dump()
        return result

    def _dump(self) -> None:
        if self.state_file is not None:
            self.state_file.write_text(self.state_json(), encoding="utf-8")

    def _run_program(self, d: _Deployment) -> None:
        # A fresh thread gives a fresh contextvars context (SDK settings, root resource, config)
        # and its own event loop, so several commands can run in one test process.
        box: dict = {}
        t = threading.Thread(target=self._program_thread, args=(d, box), name="pulumi-program", daemon=True)
        t.start()
        t.join(PROGRAM_TIMEOUT)
        if t.is_alive():
            raise EngineError("the Pulumi program did not finish in time")
        exc = box.get("error")
        if exc is None:
            return
        if d.error is not None:
            # A failed step fails the command with the provider's error (not the SDK's echo of it).
            raise d.error.copy() from None
        if isinstance(exc, EngineError):
            raise exc.copy() from None
        # A program error: the CLI prints the error message and fails the command.
        raise EngineError(str(exc) or type(exc).__name__, program_error=exc) from None

    def _program_thread(self, d: _Deployment, box: dict) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        def on_loop_error(lp: asyncio.AbstractEventLoop, context: dict) -> None:
            # A failed step / program error leaves SDK futures holding that same error; they are
            # reported once, as the EngineError, so asyncio's "never retrieved" noise is dropped.
            err = context.get("exception")
            if isinstance(err, EngineError) or (err is not None and err is box.get("error")):
                return
            lp.default_exception_handler(context)

        loop.set_exception_handler(on_loop_error)
        project_dir = str(self.program_dir)
        old_cwd = os.getcwd()
        try:
            # Stack config as the language host passes it: strings (objects as JSON text) + the
            # list of secret keys (ref §3a, §5.2).
            pulumi.runtime.set_all_config(
                {k: _config_text(v) for k, v in self.effective_config().items()}, sorted(self.secret_keys)
            )
            mocks = _EngineMocks(d)
            program_logger = logging.Logger(f"pulumi-program-{id(d)}", logging.DEBUG)  # not registered globally
            program_logger.addHandler(_DiagnosticsHandler(d.diagnostics))
            _settings.ROOT.set(_NotYetRoot())  # type: ignore[arg-type]
            pulumi.runtime.set_mocks(
                mocks,
                project=self.project_name,
                stack=self.stack,
                preview=d.dry_run,
                logger=program_logger,
                monitor=_EngineMonitor(mocks, d),
            )
            _settings.ROOT.set(None)
            _settings.SETTINGS.root_directory = str(self.project_dir)  # where Pulumi.yaml lives
            # Per-run bookkeeping of outstanding outputs, private to this run's context.
            _settings.SETTINGS.rpc_manager.clear()
            _settings.SETTINGS.outputs = set()
            _settings.SETTINGS.lock = threading.Lock()
            # Pulumi runs the program dir with runpy.run_path(<dir>) (ref §2.1), cwd = project root.
            sys.path.insert(0, project_dir)
            os.chdir(project_dir)
            try:
                loop.run_until_complete(run_in_stack(lambda: runpy.run_path(project_dir, run_name="__main__")))
            finally:
                os.chdir(old_cwd)
                if project_dir in sys.path:
                    sys.path.remove(project_dir)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            box["error"] = e
        finally:
            try:
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
