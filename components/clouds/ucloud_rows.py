"""UCloud's history answers (DescribeNewUcdnPrefetchCacheTask, DescribeNewUcdnRefreshCacheTask) to HistoryRows.

Why its own module: the adapter (clouds/ucloud.py) makes the calls; this reads what they answer. The
answer is read as plain JSON, not through the SDK's response schema (see clouds/ucloud.py), so every
field used is checked here: a wrong shape is a MalformedResponse naming the field, never a crash or
a dropped row. The schema's one leniency the clouds may rely on is kept: a time written as a string
of digits is read as the number (the schema's ``int()``).

Quirks kept here: one history row per *task* with the URLs nested in ``UrlLists``; times in Unix
seconds; the status ``unknow`` (sic); a URL without a status of its own under a finished task.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterator, Optional

from .base import MalformedResponse, lookup_status
from ..model.clouds import cloud
from ..model.status import HistoryRow, TargetState, shared
from ..model.urls import InvalidUrl, normalize_url

CLOUD = cloud("ucloud").key
ACTION = "DescribeNewUcdnPrefetchCacheTask"  # the history action, named in every MalformedResponse about a row
# Task statuses under which a URL without a status of its own is still in flight with its task.
IN_FLIGHT_TASK_STATUSES = frozenset({"wait", "process"})
STATUS_MAP = {
    "wait": (TargetState.QUEUED, None),
    "process": (TargetState.RUNNING, None),
    "success": (TargetState.WARM, None),
    "failure": (TargetState.FAILED, None),
    "unknow": (TargetState.UNKNOWN, None),
}


def map_status(raw: Optional[str]) -> tuple[TargetState, Optional[str]]:
    return lookup_status(STATUS_MAP, raw)


def task_page(resp: dict, action: str = ACTION) -> tuple[int, list]:
    """(TotalCount, TaskList) of one answer, both checked; a missing TotalCount or TaskList is 0 or none."""
    total = resp.get("TotalCount", 0)
    tasks = resp.get("TaskList") or []
    if not isinstance(total, int) or not isinstance(tasks, list):
        raise MalformedResponse(CLOUD, action, "TotalCount/TaskList", "expected an integer count and a list of tasks")
    return total, tasks


def task_observations(task: Any, action: str = ACTION) -> Iterator[HistoryRow]:
    """The rows of one task of ``TaskList`` (of ``action``'s answer): every field read is checked, the ones
    its URLs repeat once each."""
    if not isinstance(task, dict):
        raise MalformedResponse(CLOUD, action, "TaskList[]", f"expected an object, got {type(task).__name__}")
    task_id = task.get("TaskId")
    if not isinstance(task_id, str) or not task_id:
        raise MalformedResponse(CLOUD, action, "TaskList[].TaskId", f"expected a task id, got {task_id!r}")
    task_created = _unix(task.get("CreateTime"), "TaskList[].CreateTime", action, required=True)
    urls = task.get("UrlLists") or []
    if not isinstance(urls, list):
        raise MalformedResponse(CLOUD, action, "TaskList[].UrlLists", "expected a list")
    task_status = task.get("Status")
    # A URL without a status of its own: in flight while its task is, else unknown. A finished task's
    # status sums up all its URLs (one failed URL fails the task) and says nothing of this one.
    orphan = task_status if isinstance(task_status, str) and task_status.strip().lower() in IN_FLIGHT_TASK_STATUSES \
        else _NO_STATUS
    # The URLs of a task mostly share status and times: (status, CreateTime, FinishTime) -> their part.
    parts: dict[tuple, tuple] = {}
    for item in urls:
        url = item.get("Url") if isinstance(item, dict) else None
        if not isinstance(url, str):
            raise MalformedResponse(CLOUD, action, "TaskList[].UrlLists[].Url", f"expected a URL, got {item!r}")
        raw = item.get("Status")
        if raw is None:
            raw = orphan
        key = (raw, item.get("CreateTime"), item.get("FinishTime"))
        try:
            if key[1] is True or key[2] is True:
                raise TypeError  # a time of True is malformed, yet True == 1 would find the part of a time of 1
            part = parts[key]
        except KeyError:
            part = parts[key] = _url_part(*key, task_created, action)
        except TypeError:  # a list or object where a value belongs, or a time of True: checked, never stored
            part = _url_part(*key, task_created, action)
        state, reason, created, finished, raw_status = part
        if state is TargetState.RUNNING and isinstance(item.get("Progress"), int):
            reason = f"{item['Progress']}% done"
        try:
            url = normalize_url(url)
        except InvalidUrl:
            pass
        yield HistoryRow(url, task_id, state, created, finished, reason, raw_status)


class _NoStatus:
    """The status of a URL the answer gives none for, under a finished task (``_task_observations``)."""

    REASON = "the cloud gave no status for this URL"


_NO_STATUS = _NoStatus()


def _url_part(raw: Any, create_time: Any, finish_time: Any, task_created: datetime, action: str = ACTION) -> tuple:
    """What a URL row says besides its URL and Progress: (state, reason, created, finished, raw status).

    A pure function of its arguments, so the URLs of a task that repeat them share one result.
    """
    state, reason = (TargetState.UNKNOWN, _NoStatus.REASON) if raw is _NO_STATUS else map_status(raw)
    created = _unix(create_time, "TaskList[].UrlLists[].CreateTime", action, required=False) or task_created
    finished = _unix(finish_time, "TaskList[].UrlLists[].FinishTime", action, required=False)
    return state, reason, created, finished, shared(raw) if isinstance(raw, str) else None


def _unix(value: Any, field_name: str, action: str = ACTION, *, required: bool) -> Optional[datetime]:
    if value in (None, 0, ""):
        if required:
            raise MalformedResponse(CLOUD, action, field_name, "missing")
        return None
    if type(value) is str and value.isascii() and value.isdigit():
        value = int(value)  # as the SDK's response schema (int()) would have read it
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise MalformedResponse(CLOUD, action, field_name, f"expected Unix seconds, got {value!r}")
    try:
        return _from_unix(value)
    except (ValueError, OverflowError, OSError):
        raise MalformedResponse(CLOUD, action, field_name, f"Unix seconds out of range: {value!r}") from None


@lru_cache(maxsize=1 << 14)  # a task's URLs share their times: a few thousand distinct per 100,000 rows
def _from_unix(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)
