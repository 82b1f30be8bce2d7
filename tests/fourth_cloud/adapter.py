"""The fourth cloud's adapter: quota, submit and history over the emulator's signed JSON API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Iterator, Mapping, Sequence

from components.clouds.base import CloudAdapter, CloudError, MalformedResponse, SubmitResult, lookup_status, windows
from components.model.clouds import cloud
from components.model.connection import Endpoint
from components.model.quota import Quota
from components.model.status import HistoryRow, TargetState
from tests.fourth_cloud.emulator import iso, signature
from tests.fourth_cloud.spec import FourthCredentials

SPEC = cloud("fourth")
STATUS = {"pending": (TargetState.RUNNING, None), "done": (TargetState.WARM, None),
          "error": (TargetState.FAILED, "the origin answered an error"),
          "timeout": (TargetState.TIMED_OUT, None)}
PAGE = 100
# Loopback only, whatever the environment's proxy settings say.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def build(destination: Mapping[str, Any], endpoint: Endpoint, credentials: FourthCredentials) -> "FourthAdapter":
    """The adapter for one destination (components/clouds/factory.py)."""
    if endpoint.kind != "url":
        raise CloudError(SPEC.key, "build", "NoEndpoint", "the fourth cloud exists only at an explicit endpoint URL",
                         kind="invalid")
    return FourthAdapter(endpoint.url, credentials, destination["space"])


def _time(row: dict, name: str) -> datetime:
    try:
        return datetime.fromisoformat(row[name].replace("Z", "+00:00"))
    except (KeyError, AttributeError, ValueError):
        raise MalformedResponse(SPEC.key, "tasks", name, f"expected an ISO 8601 time, got {row.get(name)!r}") from None


class FourthAdapter(CloudAdapter):
    cloud = SPEC.key
    max_window = SPEC.history_window

    def __init__(self, base_url: str, credentials: FourthCredentials, space: str):
        self.base_url, self.credentials, self.space = base_url, credentials, space

    def describe_scope(self) -> str:
        return SPEC.describe(self.space)

    def history_key(self) -> tuple:
        return (SPEC.key, self.base_url, self.credentials.key_id, self.space)

    def _call(self, action: str, params: dict) -> dict:
        path = f"/{action}"
        body = json.dumps({"space": self.space, **params}).encode()
        request = urllib.request.Request(self.base_url + path, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Fourth-Key": self.credentials.key_id,
            "X-Fourth-Signature": signature(self.credentials.secret, path, body)})
        try:
            with _OPENER.open(request, timeout=10) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}")
            kind = {401: "auth", 400: "invalid", 429: "quota"}.get(error.code, "other")
            raise CloudError(SPEC.key, action, detail.get("code", f"HTTP {error.code}"), detail.get("message", ""),
                             kind=kind) from None
        except (urllib.error.URLError, OSError) as error:
            raise CloudError(SPEC.key, action, "ConnectionError", type(error).__name__, kind="transient") from None
        if not isinstance(answer, dict):
            raise MalformedResponse(SPEC.key, action, "(body)", "expected a JSON object")
        return answer

    def quota(self) -> Quota:
        answer = self._call("quota", {})
        batch, daily, used = (answer.get(k) for k in ("batch", "daily", "used"))
        if not all(isinstance(v, int) and v >= 0 for v in (batch, daily, used)):
            raise MalformedResponse(SPEC.key, "quota", "batch/daily/used", "expected non-negative integers")
        return Quota(batch, daily, max(0, daily - used))

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        task_id = self._call("prefetch", {"urls": list(urls)}).get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise MalformedResponse(SPEC.key, "prefetch", "taskId", f"expected a task id, got {task_id!r}")
        return SubmitResult(task_id, tuple(urls))

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        for start, end in windows(since, until, self.max_window):
            offset = 0
            while True:
                answer = self._call("tasks", {"since": iso(start), "until": iso(end), "offset": offset, "limit": PAGE})
                rows, total = answer.get("rows"), answer.get("total")
                if not isinstance(rows, list) or not isinstance(total, int):
                    raise MalformedResponse(SPEC.key, "tasks", "rows/total", "expected a list and a count")
                for row in rows:
                    state, reason = lookup_status(STATUS, row.get("status"))
                    yield HistoryRow(row["url"], row["taskId"], state, _time(row, "created"),
                                      _time(row, "finished") if row.get("finished") else None, reason,
                                      raw_status=row.get("status"))
                offset += len(rows)
                if not rows or offset >= total:
                    break
