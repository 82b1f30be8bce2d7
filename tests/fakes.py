"""Test doubles and helpers shared by the tests (one place for them; fixtures are in tests/conftest.py).

- ``FakeClock``: time that moves only when told, as a datetime or as monotonic seconds; ``wait_until``:
  real time, polled until a condition holds;
- ``FakeCloud``: an in-memory cloud adapter; ``RoundsCloud``: one polled in rounds (by task id or window);
- ``SdkAnswer``/``replace_tencent_transport``: a real Tencent SDK client answering without a network;
- ``run_program``: a Pulumi program run under ``pulumi.runtime.set_mocks``, its registrations recorded;
- ``FakeTencentCloud``, ``zone``, ``cdn_domain``: pulumi-tencentcloud's data sources, answered;
- ``write``: a declaration file; ``near_duplicates``: pages of history rows for the row memos;
- ``Site``: a web site on 127.0.0.1 (http.server) serving the files a test puts there (sitemaps).

The end-to-end helpers (a stack of the real project against a sandbox) are in tests/stacks.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import runpy
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar, Union

import pulumi
import pulumi.runtime
import yaml
from hypothesis import strategies as st
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime import settings as _settings
from pulumi.runtime.mocks import MockMonitor, Mocks
from pulumi.runtime.stack import run_in_stack

from components.clouds.base import CloudAdapter, CloudError, SubmitResult
from components.declare.references import CDN_DOMAINS_TOKEN, ZONES_TOKEN
from components.model.quota import Quota
from components.model.status import HistoryRow, TargetState, TaskKind

ZONE_ID = "zone-2o0i4xfimj9g"


# ------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------


class FakeClock:
    """Time that moves only when told, safe to share between threads.

    ``clock()`` is the time now as a UTC datetime (starting at ``start``), for code that takes a
    wall clock; ``clock.monotonic()`` is the seconds since the start as a float (starting at 0.0),
    for code that takes a monotonic clock (the rate limiters, the quota ledger). ``clock.sleep(s)``
    moves both on by ``s`` seconds (a negative wait does not move it back); setting ``clock.now``
    (a datetime) moves it to that moment.
    """

    START = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    def __init__(self, start: datetime = START):
        self.start = start
        self._seconds = 0.0  # the one state: float seconds since ``start``, added to exactly as slept
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        with self._lock:
            return self._seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._seconds += max(seconds, 0.0)

    @property
    def now(self) -> datetime:
        with self._lock:
            return self.start + timedelta(seconds=self._seconds)

    @now.setter
    def now(self, moment: datetime) -> None:
        with self._lock:
            self._seconds = (moment - self.start).total_seconds()


T = TypeVar("T")


def wait_until(read: Callable[[], T], done: Callable[[T], Any] = bool, *, timeout: float = 5.0,
               what: str = "condition not reached in time", every: float = 0.05) -> T:
    """``read()`` every ``every`` seconds of real time until ``done`` of it holds, and return that value; fail
    with ``what`` and the last value after ``timeout`` seconds (for what a sandbox does in its own time). A read
    that is a rate-limited API call polling for seconds wants ``every`` of 0.1 or more (20 requests/s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: {value!r}"
        time.sleep(every)


# ------------------------------------------------------------------------------------------
# An in-memory cloud
# ------------------------------------------------------------------------------------------


class FakeCloud(CloudAdapter):
    """Tasks finish ``finish_after`` seconds after submission with the outcome set per URL.

    ``purger()`` is another FakeCloud of kind PURGE on the same clock (its task ids start ``purge-``),
    so tests see purges and prefetches apart: ``cloud.submits`` and ``cloud.purger().submits``.
    """

    cloud = "fake"
    max_window = timedelta(days=7)

    def __init__(self, clock: FakeClock, *, batch: int = 100, available: int = 1000, finish_after: float = 2.0,
                 kind: TaskKind = TaskKind.PREFETCH):
        self.kind = kind
        self._purger: Optional["FakeCloud"] = None
        self.clock = clock
        self.batch, self.available = batch, available
        self.finish_after = finish_after
        self.outcomes: dict[str, TargetState] = {}
        self.rejects: dict[str, str] = {}
        self.fail_submit_call: Optional[int] = None
        self.rows: list[tuple[str, str, datetime, TargetState]] = []  # url, task, created, outcome
        self.submits: list[list[str]] = []
        self.history_calls: list[tuple[datetime, datetime]] = []

    def add_row(self, url: str, state: TargetState, created: datetime, task: str = "seed") -> None:
        self.rows.append((url, task, created, state))

    def purger(self) -> "FakeCloud":
        if self.kind is TaskKind.PURGE:
            raise AssertionError("purger() is asked of the prefetch adapter")
        if self._purger is None:
            self._purger = FakeCloud(self.clock, batch=self.batch, available=self.available,
                                     finish_after=self.finish_after, kind=TaskKind.PURGE)
        return self._purger

    def quota(self) -> Quota:
        return Quota(self.batch, 10_000, self.available)

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        if self.fail_submit_call is not None and len(self.submits) + 1 == self.fail_submit_call:
            raise CloudError("fake", "Submit", "InternalError", "backend exploded")
        assert len(urls) <= self.batch, "adapter contract: batch size respected"
        task = f"{'purge' if self.kind is TaskKind.PURGE else 'task'}-{len(self.submits) + 1}"
        self.submits.append(list(urls))
        rejected = {u: self.rejects[u] for u in urls if u in self.rejects}
        now = self.clock()
        for url in urls:
            if url not in rejected:
                self.rows.append((url, task, now, self.outcomes.get(url, TargetState.WARM)))
        self.available -= len(urls) - len(rejected)
        return SubmitResult(task, tuple(u for u in urls if u not in rejected), rejected)

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        self.history_calls.append((since, until))
        now = self.clock()
        for url, task, created, outcome in self.rows:
            if since <= created <= until:
                done = created + timedelta(seconds=self.finish_after)
                if task != "seed" and now < done:
                    yield HistoryRow(url, task, TargetState.RUNNING, created, None, None, "processing")
                else:
                    finished = done if task != "seed" else created
                    yield HistoryRow(url, task, outcome, created, finished, None, outcome.value)


class RoundsCloud(FakeCloud):
    """A FakeCloud polled the way EdgeOne and Cloud CDN are (components/clouds/poll_rounds.py): ``poll_reads``
    ``task`` or ``window``, a task read by id (``task_history``), creation times in whole seconds as the clouds
    answer them, and every read recorded: ``id_reads`` (task ids), ``window_reads`` ((since, until)) and
    ``rows_read`` (rows handed out per task id). Tasks in ``hidden_from_windows`` show only when read by id
    (a task a window should hold but does not list)."""

    def __init__(self, clock: FakeClock, *, poll_reads: str = "task", **kwargs: Any):
        super().__init__(clock, **kwargs)
        self.poll_reads = poll_reads
        self.id_reads: list[str] = []
        self.window_reads: list[tuple[datetime, datetime]] = []
        self.rows_read: dict[str, int] = {}
        self.hidden_from_windows: set[str] = set()

    def history_key(self) -> tuple:
        return ("rounds-fake", id(self))

    def _rows(self, keep: Callable[[str, datetime], bool]) -> Iterator[HistoryRow]:
        now = self.clock()
        for url, task, created, outcome in list(self.rows):
            stamp = created.replace(microsecond=0)
            if not keep(task, stamp):
                continue
            self.rows_read[task] = self.rows_read.get(task, 0) + 1
            done = created + timedelta(seconds=self.finish_after)
            if now < done:
                yield HistoryRow(url, task, TargetState.RUNNING, stamp, None, None, "processing")
            else:
                yield HistoryRow(url, task, outcome, stamp, done.replace(microsecond=0), None, outcome.value)

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        self.window_reads.append((since, until))
        return self._rows(lambda task, stamp: since <= stamp <= until and task not in self.hidden_from_windows)

    def task_history(self, task_id: str) -> Iterator[HistoryRow]:
        self.id_reads.append(task_id)
        return self._rows(lambda task, stamp: task == task_id)


# ------------------------------------------------------------------------------------------
# A Tencent SDK client without a network
# ------------------------------------------------------------------------------------------


class SdkAnswer:
    """What a Tencent SDK client's transport (``_call``) hands back, as far as the client reads it."""

    def __init__(self, content: Union[bytes, str], status_code: int = 200, content_type: str = "application/json"):
        self.content = content.encode() if isinstance(content, str) else content
        self.status_code, self.headers = status_code, {"Content-Type": content_type}


def replace_tencent_transport(client: Any, answer: Callable[[str, dict], Union[bytes, str, SdkAnswer]]) -> Any:
    """Make a real Tencent SDK client answer with ``answer(action, params)`` instead of sending anything.

    ``_call`` is where the client builds, signs and sends a request. After it, the model path of
    TencentCaller runs the SDK's own status check, error check, decoding and models; the JSON path
    runs the SDK's status check and ``response_of`` (components/clouds/tencent.py), which mirrors
    the SDK's error check on a body decoded once. ``answer`` returns the body (or a whole
    SdkAnswer), or raises as the transport would (the real one raises ClientNetworkError).
    """
    def transport(action: str, params: dict, options: Any = None, headers: Any = None) -> SdkAnswer:
        body = answer(action, params)
        return body if isinstance(body, SdkAnswer) else SdkAnswer(body)

    client._call = transport
    return client


# ------------------------------------------------------------------------------------------
# A Pulumi program under mocks
# ------------------------------------------------------------------------------------------
# ``run_program`` runs a program function (or a program folder's ``__main__.py``) under mocks in a
# fresh thread, the way tests/engine.py does, and records every RegisterResource request as the
# engine would receive it: inputs *with unknowns kept*, dependencies, property dependencies.

DYNAMIC = "pulumi-python:dynamic/cdnprefetch:Destination"
ZONE_TYPE = "tencentcloud:Teo/zone:Zone"
DOMAIN_TYPE = "tencentcloud:Teo/accelerationDomain:AccelerationDomain"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict  # deserialized with unknowns kept (pulumi.output.Unknown)
    dependencies: list
    property_dependencies: dict


@dataclass
class ProgramRun:
    registrations: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)  # (severity, message)
    exports: dict = field(default_factory=dict)
    error: Optional[BaseException] = None

    def dynamics(self) -> list:
        return [r for r in self.registrations if r.type == DYNAMIC]

    def dynamic(self, name: str) -> Registration:
        found = [r for r in self.dynamics() if r.name == name]
        assert len(found) == 1, f"{name!r} not among {[r.name for r in self.dynamics()]}"
        return found[0]

    def of_type(self, typ: str) -> Registration:
        [found] = [r for r in self.registrations if r.type == typ]
        return found

    def warnings(self) -> list:
        return [m for s, m in self.diagnostics if s == "warning"]


class _Recorder(MockMonitor):
    def __init__(self, mocks: Mocks, run: ProgramRun):
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.run.registrations.append(Registration(
                request.type, request.name, response.urn, request.parent,
                rpc.deserialize_properties(request.object, True), list(request.dependencies),
                {k: list(v.urns) for k, v in request.propertyDependencies.items()}))
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if "::pulumi:pulumi:Stack::" in request.urn:
            self.run.exports = rpc.deserialize_properties(request.outputs, True)
        return super().RegisterResourceOutputs(request)


class ProgramMocks(Mocks):
    """Echoes inputs; the EdgeOne zone gets ``zone_id`` (None during a preview of a new stack: unknown);
    dynamic resources get ``outputs(inputs)`` merged in when given."""

    def __init__(self, *, preview: bool, zone_id: Optional[str] = ZONE_ID, invoke: Optional[Callable] = None,
                 outputs: Optional[Callable[[dict], dict]] = None):
        self.preview, self.zone_id, self.invoke, self.outputs = preview, zone_id, invoke, outputs

    def new_resource(self, args: Any) -> tuple:
        if args.typ == ZONE_TYPE:
            return self.zone_id, dict(args.inputs)
        state = dict(args.inputs)
        if args.typ == DYNAMIC and self.outputs is not None:
            state.update(self.outputs(state))
        return ("" if self.preview else f"{args.name}-id") if args.custom else None, state

    def call(self, args: Any) -> tuple:
        answer = self.invoke(args) if self.invoke else {}
        # (result, failures): a failed data source, as the provider reports it; MockMonitor iterates the failures.
        return answer if isinstance(answer, tuple) else (answer, [])


class _Diagnostics(logging.Handler):
    def __init__(self, sink: list):
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.sink.append((record.levelname.lower(), record.getMessage()))


def run_program(program: Callable[[], Any] | Path, *, preview: bool = False, config: Optional[dict] = None,
                invoke: Optional[Callable] = None, zone_id: Optional[str] = ZONE_ID,
                outputs: Optional[Callable[[dict], dict]] = None, project: str = "cdn-prefetch") -> ProgramRun:
    """Run ``program`` (a function, or a folder holding ``__main__.py``) under mocks; never raises."""
    run = ProgramRun()
    mocks = ProgramMocks(preview=preview, zone_id=zone_id, invoke=invoke, outputs=outputs)

    def thread() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(lambda *_: None)  # a failed program's leftover futures
        old_cwd = os.getcwd()
        try:
            pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v)
                                           for k, v in (config or {}).items()}, [])
            logger = logging.Logger(f"program-{id(run)}", logging.DEBUG)
            logger.addHandler(_Diagnostics(run.diagnostics))
            _settings.ROOT.set(object())  # type: ignore[arg-type]  # run_in_stack makes the Stack
            pulumi.runtime.set_mocks(mocks, project=project, stack="dev", preview=preview, logger=logger,
                                     monitor=_Recorder(mocks, run))
            _settings.ROOT.set(None)
            _settings.SETTINGS.rpc_manager.clear()
            _settings.SETTINGS.outputs = set()
            _settings.SETTINGS.lock = threading.Lock()
            if isinstance(program, Path):
                folder = str(program)
                os.chdir(folder)
                func: Callable[[], Any] = lambda: runpy.run_path(folder, run_name="__main__")
            else:
                func = program
            loop.run_until_complete(run_in_stack(func))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            run.error = exc
        finally:
            os.chdir(old_cwd)
            try:
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    worker = threading.Thread(target=thread, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the program did not finish"
    return run


def no_unknowns(value: Any) -> bool:
    if isinstance(value, Unknown):
        return False
    if isinstance(value, dict):
        return all(no_unknowns(v) for v in value.values())
    if isinstance(value, list):
        return all(no_unknowns(v) for v in value)
    return True


# ------------------------------------------------------------------------------------------
# pulumi-tencentcloud's data sources
# ------------------------------------------------------------------------------------------
# ``FakeTencentCloud`` answers the data sources' invokes (``Mocks.call`` / the engine's ``invoke``
# hook) the way pulumi-tencentcloud would: ``tencentcloud:Teo/getZones:getZones`` and
# ``tencentcloud:Cdn/getDomains:getDomains`` with the SDK's camelCase result fields.


class FakeTencentCloud:
    """What pulumi-tencentcloud's data sources would answer, from a list of zones and CDN domains."""

    def __init__(self, zones: Optional[list[dict]] = None, domains: Optional[list[dict]] = None,
                 *, fuzzy_names: bool = False, failure: Optional[str] = None):
        self.zones = zones if zones is not None else [zone(ZONE_ID, "example.com")]
        self.domains = domains if domains is not None else [cdn_domain("static.example.com")]
        self.fuzzy_names = fuzzy_names  # the API's zone-name filter may also return similar names
        self.failure = failure  # every call fails with this reason (run_program's mocks only)
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, args: Any) -> Any:
        token, params = args.token, dict(args.args or {})
        self.calls.append((token, params))
        if self.failure:
            return {}, [("", self.failure)]
        if token == ZONES_TOKEN:
            found = list(self.zones)
            for flt in params.get("filters") or []:
                field, values = flt["name"], flt["values"]
                if field == "zone-name":
                    found = [z for z in found if any(v in z["zoneName"] if self.fuzzy_names else z["zoneName"] == v
                                                     for v in values)]
                elif field == "zone-id":
                    found = [z for z in found if z["zoneId"] in values]
            return {"id": "zones", "zones": found}
        if token == CDN_DOMAINS_TOKEN:
            return {"id": "domains", "domainLists": [d for d in self.domains if d["domain"] == params.get("domain")]}
        raise AssertionError(f"unexpected invoke {token}")

    def tokens(self) -> list[str]:
        return [token for token, _ in self.calls]


def zone(zone_id: str, name: str, **fields: Any) -> dict:
    return {"zoneId": zone_id, "zoneName": name, "status": "active", "activeStatus": "active", "paused": False,
            "type": "partial", "area": "overseas", "aliasZoneName": "", **fields}


def cdn_domain(name: str, status: str = "online", area: str = "mainland", **fields: Any) -> dict:
    return {"domain": name, "status": status, "area": area, "id": f"cdn-{abs(hash(name)) % 10**6}", **fields}


# ------------------------------------------------------------------------------------------
# Declarations and history rows
# ------------------------------------------------------------------------------------------


def write(folder: Path, name: str, doc: dict) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def near_duplicates(valid: dict[str, list], junk: dict[str, list], *, max_rows: int = 12):
    """Pages of history rows that mostly repeat each other, as a task's rows do, for testing the row memos.

    The first row is well formed (``valid`` values); each next one is an earlier row with a field or
    two changed, mostly to another valid value, sometimes to ``junk``. So a memo that ignores a field
    it should not is soon given two rows that differ in only that field, and a malformed row often
    follows well-formed rows that share its other fields.
    """
    names = sorted(valid)

    @st.composite
    def pages(draw):
        rows = [{name: draw(st.sampled_from(valid[name])) for name in names}]
        for _ in range(draw(st.integers(0, max_rows - 1))):
            row = dict(draw(st.sampled_from(rows)))
            for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=2)):
                pool = junk[name] if junk.get(name) and draw(st.integers(0, 3)) == 0 else valid[name]
                row[name] = draw(st.sampled_from(pool))
            rows.append(row)
        return rows

    return pages()


def now() -> datetime:
    """The real time, in UTC: what the adapter tests against a live sandbox read history around."""
    return datetime.now(timezone.utc)


def freeze_rate_window(*boxes: Any) -> Callable[[float], None]:
    """Sandboxes' rate limiters on one clock that moves only when told (the function returned): requests
    land in one second however slowly a loaded machine sends them (21 calls took more than a second there,
    and no limit was met)."""
    from sandbox.wire import RateLimiter

    now = [time.time()]  # the shared count's clock: earlier requests of this second still count
    for box in boxes:
        box._server.env.limiter = RateLimiter(box.store, clock=lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += seconds

    return advance


# ------------------------------------------------------------------------------------------
# A web site on loopback (sitemaps)
# ------------------------------------------------------------------------------------------


class Site:
    """A web site on 127.0.0.1 serving what a test puts at each path (404 elsewhere), logging each GET path."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                site.requests.append(self.path)
                status, headers, body = site.files.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll: stop() (shutdown) waits for one, 0.5 s by default.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def put(self, path: str, body: Union[str, bytes], *, status: int = 200, gzipped: bool = False,
            headers: Optional[dict[str, str]] = None) -> str:
        """Serve ``body`` at ``path`` (gzipped as a .gz file is: the bytes, no Content-Encoding); its URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.files[path] = (status, headers or {}, gzip.compress(data) if gzipped else data)
        return self.url + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def urlset(entries: Sequence[tuple[str, Optional[str]]]) -> str:
    """A sitemap listing (url, lastmod or None) entries."""
    items = "".join(f"<url><loc>{url}</loc>{f'<lastmod>{mod}</lastmod>' if mod else ''}</url>" for url, mod in entries)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</urlset>'


def sitemap_index(urls: Sequence[str]) -> str:
    """A sitemap index listing ``urls``."""
    items = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return (f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{items}</sitemapindex>")


#: A "billion laughs" document: ten entities of ten of the one before; refused before anything expands.
ENTITY_EXPANSION = ('<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a0 "lol">'
                    + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
                    + ']><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&a9;</loc></url></urlset>')
