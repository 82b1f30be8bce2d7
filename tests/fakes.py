"""Test doubles shared by the unit tests: an in-memory cloud, a controllable clock, a Tencent SDK transport."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Optional, Sequence, Union

from components.clouds.base import CloudAdapter, CloudError, SubmitResult
from components.model.quota import Quota
from components.model.status import HistoryRow, TargetState


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeCloud(CloudAdapter):
    """Tasks finish ``finish_after`` seconds after submission with the outcome set per URL."""

    cloud = "fake"
    max_window = timedelta(days=7)

    def __init__(self, clock: FakeClock, *, batch: int = 100, available: int = 1000, finish_after: float = 2.0):
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

    def quota(self) -> Quota:
        return Quota(self.batch, 10_000, self.available)

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        if self.fail_submit_call is not None and len(self.submits) + 1 == self.fail_submit_call:
            raise CloudError("fake", "Submit", "InternalError", "backend exploded")
        assert len(urls) <= self.batch, "adapter contract: batch size respected"
        task = f"task-{len(self.submits) + 1}"
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
