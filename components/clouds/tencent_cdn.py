"""Tencent Cloud CDN (cdn 2018-06-06) adapter: PushUrlsCache, DescribePushTasks, DescribePushQuota;
and for purges (``purger()``): PurgeUrlsCache, DescribePurgeTasks (``PurgeType: url``), DescribePurgeQuota.

Quirks kept here: times are ``YYYY-MM-DD hh:mm:ss`` in Beijing time (UTC+8) with no zone; statuses
``process/done/fail/invalid`` in any casing (the docs' own example says ``Done``); quota is per
area and a ``global`` submit spends both areas'; there is no FailedList, a submit is all or nothing;
the largest history ``Limit`` is not documented, so it is learnt (``history_page``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cached_property, lru_cache
from typing import Any, Iterator, Mapping, Optional, Sequence

from tencentcloud.cdn.v20180606 import cdn_client, models

from .base import CloudAdapter, MalformedResponse, SubmitResult, lookup_status
from .page_size import SHARED_PAGE_SIZES, PageKey, PageLadder, PageSizes
from .paging import TaskMemo, checked_counts, checked_page, checked_time, paged_history, read_pages
from .ratelimit import TENCENT_LIMITER, SlidingWindowLimiter
from .tencent import TencentCaller, client_identity, client_profile, sdk_credential, wire_headers
from ..model.clouds import cloud
from ..model.connection import Endpoint, TencentCredentials
from ..model.quota import Quota
from ..model.status import HistoryRow, TargetState, TaskKind, shared
from ..model.urls import InvalidUrl, normalize_url

SPEC = cloud("tencent-cdn")
CLOUD = SPEC.key
ACTION = "DescribePushTasks"  # the history action, named in every MalformedResponse about a row
BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The docs give no maximum Limit for DescribePushTasks or DescribePurgeTasks, only "default 20": start
# with the registry's 1000 and step down to the documented 20 when the cloud refuses it as a parameter
# error, the one code the action documents for a bad value (the message names no parameter): one
# refused request per action and process at most.
PAGE_LADDER = PageLadder((SPEC.history_page, *SPEC.history_page_fallback),
                         frozenset({"InvalidParameter.CdnParamError"}))
STATUS_MAP = {
    "process": (TargetState.RUNNING, None),
    "done": (TargetState.WARM, None),
    "fail": (TargetState.FAILED, None),
    "invalid": (TargetState.FAILED, "origin answered 4xx/5xx (invalid)"),
}
AREAS = ("mainland", "overseas")
# Row areas a destination skips: the known ones (global warms either area). Unknown ones are kept.
OTHER_AREAS = frozenset(AREAS)


def map_status(raw: Optional[str]) -> tuple[TargetState, Optional[str]]:
    return lookup_status(STATUS_MAP, raw)


def make_client(endpoint: Endpoint, creds: TencentCredentials, timeout: int = 30) -> cdn_client.CdnClient:
    return cdn_client.CdnClient(sdk_credential(creds), "", client_profile(endpoint, timeout))


def beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


@lru_cache(maxsize=1 << 14)  # rows of one task share their times: a few thousand distinct per 100,000 rows
def parse_beijing(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(timezone.utc)


def build(destination: Mapping[str, Any], endpoint: Endpoint, credentials: TencentCredentials) -> "TencentCdnAdapter":
    """The adapter for one destination (components/clouds/factory.py)."""
    return TencentCdnAdapter(
        make_client(endpoint, credentials), destination.get("area", "mainland"),
        user_agent=destination.get("userAgent"), layer=destination.get("layer"),
        parse_m3u8=bool(destination.get("parseM3U8", False)), headers=destination.get("headers") or ())


class TencentCdnAdapter(CloudAdapter):
    cloud = CLOUD
    # No maximum span is documented; 7-day windows keep each query modest. History lasts ~30 days.
    max_window = SPEC.history_window
    poll_reads = SPEC.poll_reads

    def __init__(self, client: cdn_client.CdnClient, area: str = "mainland", *, user_agent: Optional[str] = None,
                 layer: Optional[str] = None, parse_m3u8: bool = False,
                 headers: Sequence[Mapping[str, str]] = (), limiter: SlidingWindowLimiter = TENCENT_LIMITER,
                 page_sizes: PageSizes = SHARED_PAGE_SIZES):
        self.area = area
        self.user_agent, self.layer, self.parse_m3u8, self.headers = user_agent, layer, parse_m3u8, list(headers)
        self._call = TencentCaller(CLOUD, client, models, limiter, scope=SPEC.describe(area))
        self._page_sizes = page_sizes

    def describe_scope(self) -> str:
        return SPEC.describe(self.area)

    @cached_property
    def _account(self) -> tuple[str, str, str]:
        """(scheme, API host, SecretId) of the client: fixed for the adapter's life, read once."""
        return client_identity(self._call.client)

    def purger(self) -> "TencentCdnAdapter":
        """The area's URL purges, through the same client and rate limiter."""
        return TencentCdnPurgeAdapter(self._call.client, self.area, limiter=self._call.limiter,
                                      page_sizes=self._page_sizes)

    #: The quota action and its per-area list (a purge adapter reads DescribePurgeQuota's UrlPurge).
    quota_action, quota_field = "DescribePushQuota", "UrlPush"

    def quota(self) -> Quota:
        action, field_name = self.quota_action, self.quota_field
        resp = self._call(action, {})
        by_area: dict[str, Quota] = {}
        for item in getattr(resp, field_name) or []:
            values = checked_counts(item, ("Batch", "Total", "Available"), CLOUD, action, field_name)
            by_area[item.Area.lower() if isinstance(item.Area, str) else ""] = Quota(values["Batch"], values["Total"], values["Available"])
        needed = AREAS if self.area == "global" else (self.area,)
        missing = [a for a in needed if a not in by_area]
        if missing:
            raise MalformedResponse(CLOUD, action, field_name, f"no entry for area {missing[0]}")
        # A global prefetch is charged to both areas: it fits only what both have left.
        return Quota(min(by_area[a].batch for a in needed), min(by_area[a].daily for a in needed),
                     min(by_area[a].available for a in needed))

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        params: dict[str, Any] = {"Urls": list(urls), "Area": self.area}
        if self.user_agent:
            params["UserAgent"] = self.user_agent
        if self.layer:
            params["Layer"] = self.layer
        if self.parse_m3u8:
            params["ParseM3U8"] = True
        if self.headers:
            params["Headers"] = wire_headers(self.headers)
        resp = self._call("PushUrlsCache", params)
        if not isinstance(resp.TaskId, str) or not resp.TaskId:
            raise MalformedResponse(CLOUD, "PushUrlsCache", "TaskId", f"expected a task id, got {resp.TaskId!r}")
        return SubmitResult(resp.TaskId, tuple(urls), {})

    def history_key(self) -> tuple:
        # The query names no area (a global task warms either one), but the rows this adapter
        # yields depend on its area: they are part of the key.
        return (CLOUD, *self._account, self.area)

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        return paged_history(since, until, self.max_window, self._page, self._observation,
                             cloud=CLOUD, action=ACTION)

    def task_history(self, task_id: str) -> Iterator[HistoryRow]:
        """One task's rows: ``TaskId`` (one id), no time range (the API takes either)."""
        def page(offset: int) -> tuple[int, list]:
            resp = self.history_page(ACTION, {"TaskId": task_id, "Offset": offset})
            return checked_page(resp, CLOUD, ACTION, "PushLogs")

        for rows in read_pages(page, cloud=CLOUD, action=ACTION):
            for row in rows:
                obs = self._observation(row)
                if obs is not None:
                    yield obs

    def _page(self, start: datetime, end: datetime, offset: int) -> tuple[int, list]:
        """(TotalCount, PushLogs) of one page of history, both checked."""
        resp = self.history_page(ACTION, {"StartTime": beijing(start), "EndTime": beijing(end), "Offset": offset})
        return checked_page(resp, CLOUD, ACTION, "PushLogs")

    def history_page(self, action: str, params: dict[str, Any]) -> Any:
        """One page of a history action (``DescribePushTasks``, ``DescribePurgeTasks``) as plain JSON: ``params``
        with the ``Limit`` this process learnt the cloud accepts for ``action`` (clouds/page_size.py)."""
        key = PageKey(CLOUD, action, self._account)
        return self._page_sizes.fetch(key, PAGE_LADDER,
                                      lambda limit: self._call.json(action, {**params, "Limit": limit}))

    def _observation(self, row: Any) -> Optional[HistoryRow]:
        """One row of ``PushLogs`` (plain JSON): every field it reads is checked, the per-task ones once per task."""
        if not isinstance(row, dict):
            raise MalformedResponse(CLOUD, ACTION, "PushLogs[]", f"expected an object, got {type(row).__name__}")
        get = row.get
        url = get("Url")
        if not isinstance(url, str):
            return _row_without_url(self.area, get("Area"), get("TaskId"), url)
        key = (self.area, get("Area"), get("TaskId"), get("Status"), get("CreateTime"), get("UpdateTime"))
        part = _TASKS.part(key)
        if part is None:
            return None
        try:
            url = normalize_url(url)
        except InvalidUrl:
            pass
        task_id, state, created, updated, reason, raw = part
        if state is TargetState.RUNNING:
            # Per row, not per task: Percent is the one field a task's rows do not share.
            percent = get("Percent")
            if isinstance(percent, int) and not isinstance(percent, bool):
                reason = f"{percent}% done"
        return HistoryRow(url, task_id, state, created, updated, reason, raw)


class TencentCdnPurgeAdapter(TencentCdnAdapter):
    """The area's URL purges. A ``global`` destination purges without ``Area`` (the domain's own
    acceleration areas, as the API documents) and reads the purges of every area; purge rows carry
    no area, so the query's ``Area`` filter decides."""

    kind = TaskKind.PURGE
    quota_action, quota_field = "DescribePurgeQuota", "UrlPurge"
    poll_reads = None  # purges are polled in the shared windows (history.py)

    def purger(self) -> "TencentCdnAdapter":
        raise AssertionError("purger() is asked of the prefetch adapter")

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        params: dict[str, Any] = {"Urls": list(urls)}
        if self.area != "global":
            params["Area"] = self.area
        resp = self._call("PurgeUrlsCache", params)
        if not isinstance(resp.TaskId, str) or not resp.TaskId:
            raise MalformedResponse(CLOUD, "PurgeUrlsCache", "TaskId", f"expected a task id, got {resp.TaskId!r}")
        return SubmitResult(resp.TaskId, tuple(urls), {})

    def history_key(self) -> tuple:
        return (*super().history_key(), "purge")

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        return paged_history(since, until, self.max_window, self._page, _purge_observation,
                             cloud=CLOUD, action=PURGE_ACTION)

    def _page(self, start: datetime, end: datetime, offset: int) -> tuple[int, list]:
        """(TotalCount, PurgeLogs) of one page of URL purges, both checked."""
        params: dict[str, Any] = {"PurgeType": "url", "StartTime": beijing(start), "EndTime": beijing(end),
                                  "Offset": offset}
        if self.area != "global":
            params["Area"] = self.area
        resp = self.history_page(PURGE_ACTION, params)
        return checked_page(resp, CLOUD, PURGE_ACTION, "PurgeLogs")


PURGE_ACTION = "DescribePurgeTasks"  # its largest Limit is a guess too: learnt apart (PAGE_LADDER)
PURGE_STATUS_MAP = {
    "process": (TargetState.RUNNING, None),
    "done": (TargetState.WARM, None),
    "fail": (TargetState.FAILED, None),
}


def _purge_observation(row: Any) -> Optional[HistoryRow]:
    """One row of ``PurgeLogs``: a URL purge (rows of path purges are skipped: they name no URL of ours)."""
    if not isinstance(row, dict):
        raise MalformedResponse(CLOUD, PURGE_ACTION, "PurgeLogs[]", f"expected an object, got {type(row).__name__}")
    get = row.get
    part = _PURGE_TASKS.part((get("PurgeType"), get("TaskId"), get("Status"), get("CreateTime")))
    if part is None:
        return None
    url = get("Url")
    if not isinstance(url, str):
        raise MalformedResponse(CLOUD, PURGE_ACTION, "PurgeLogs[].Url", f"expected a URL, got {url!r}")
    try:
        url = normalize_url(url)
    except InvalidUrl:
        pass
    return HistoryRow(url, *part)


def _purge_task_part(purge_type: Any, task_id: Any, status: Any, create_time: Any) -> Optional[tuple]:
    """(task id, state, created, updated, reason, raw status) of a URL purge row; None for a path purge."""
    if isinstance(purge_type, str) and purge_type.lower() == "path":
        return None
    if not isinstance(task_id, str) or not task_id:
        raise MalformedResponse(CLOUD, PURGE_ACTION, "PurgeLogs[].TaskId", f"expected a task id, got {task_id!r}")
    created = checked_time(create_time, parse_beijing, "'YYYY-MM-DD hh:mm:ss' (Beijing time)", CLOUD, PURGE_ACTION,
                           "PurgeLogs[].CreateTime", required=True)
    state, reason = lookup_status(PURGE_STATUS_MAP, status)
    # No finish time is listed: the creation time is the only one there is.
    return shared(task_id), state, created, None, reason, shared(status) if isinstance(status, str) else None


_PURGE_TASKS = TaskMemo(_purge_task_part)


def _task_part(destination_area: str, area: Any, task_id: Any, status: Any, create_time: Any,
               update_time: Any) -> Optional[tuple]:
    """What a row says besides its URL and Percent: (task id, state, created, updated, reason, raw status).

    None for a row of the other known area. A pure function of the destination's area and the
    row's other fields, so rows that repeat them share one result (``_TASKS``). Non-string values
    of the same field all mean the same here (kept, UNKNOWN or malformed), so keys that are equal
    but differently typed (``True == 1``) agree.
    """
    if _other_area(destination_area, area):
        return None
    _check_task_id(task_id)
    created = _time(create_time, "PushLogs[].CreateTime", required=True)
    updated = _time(update_time, "PushLogs[].UpdateTime", required=False)
    state, reason = map_status(status)
    # Interned: every row of a task repeats its id and status (100,000 rows, a few hundred distinct strings).
    return shared(task_id), state, created, updated, reason, shared(status) if isinstance(status, str) else None


_TASKS = TaskMemo(_task_part)


def _row_without_url(destination_area: str, area: Any, task_id: Any, url: Any) -> None:
    """A row whose Url is not a string: skipped if of the other area, else reported (its TaskId checked first)."""
    if _other_area(destination_area, area):
        return None
    _check_task_id(task_id)
    raise MalformedResponse(CLOUD, ACTION, "PushLogs[].Url", f"expected a URL, got {url!r}")


def _other_area(destination_area: str, area: Any) -> bool:
    """A global prefetch also warms either area; a destination ignores rows of the *other known* area.

    A row with an unknown area is kept: never drop what we cannot classify.
    """
    area = area.lower() if isinstance(area, str) else ""
    return area != destination_area and area in OTHER_AREAS


def _check_task_id(task_id: Any) -> None:
    if not isinstance(task_id, str) or not task_id:
        raise MalformedResponse(CLOUD, ACTION, "PushLogs[].TaskId", f"expected a task id, got {task_id!r}")


def _time(value: Any, field_name: str, *, required: bool) -> Optional[datetime]:
    return checked_time(value, parse_beijing, "'YYYY-MM-DD hh:mm:ss' (Beijing time)", CLOUD, ACTION, field_name,
                        required=required)
