"""UCloud UCDN adapter: PrefetchNewUcdnDomainCache, DescribeNewUcdnPrefetchCacheTask,
GetUcdnDomainPrefetchRefreshState, through the official ``ucloud-sdk-python3`` client; for purges
(``purger()``): RefreshNewUcdnDomainCache (``Type: file``, at most 30 URLs a call),
DescribeNewUcdnRefreshCacheTask (the same task shape), and the state's file-refresh quota. Answers of
the history actions become rows in clouds/ucloud_rows.py.

Quirks kept here: errors come as HTTP 200 with a RetCode; at most one submit every 10 s; the SDK's
request logging is silenced (it logs every parameter) and lists are always passed as lists (a string
would be sent one character per element).

The history query (issue 19, measured in bench/RESULTS.md): one call per window, no ``Limit``, read
through the client's generic ``invoke``. Why:

- The time window is the only complete query: it shows every task on the account, also the ones
  our state has no id for (another stack's, an interrupted submit's, the console's), which decide
  a URL's status as much as ours. ``TaskId.N`` filters (many ids a call) read only tasks we know
  of, and the shards of one refresh reach the host four at a time, so no read knows every id.
- It is also the cheapest: ``Limit`` defaults to every task, so one call answers the window. Split
  into concurrent calls (task-id batches, or ``Offset`` pages), the answer building, transfer and
  parsing overlap, yet at 100,000 URLs that saved 0.16 s of 0.75 s at best (four task-id batches, two
  in flight), before the window query that completeness would still need; ``Offset`` pages cost more.
- ``invoke`` returns the answer as decoded JSON. The method ``describe_new_ucdn_prefetch_cache_task``
  would also run the SDK's response schema over every URL (a copy with ``str()``/``int()`` on each
  field: 0.2 s of CPU per 100,000 URLs) before ucloud_rows.py checks every field it reads anyway.
  Submits and quota calls still go through their SDK methods.

The signature carries no time, so nothing keeps UCloud's clock near ours: history is read up to a
day past the caller's "now" (a clock ahead of ours stamps our newest tasks later), and our own tasks
can be read by id (``task_rows``), which shows where its clock stands whatever the offset
(clouds/history.py ``learn_clock_by_id``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping, Optional, Sequence

import requests
from ucloud.core import exc as uexc
from ucloud.core.utils.middleware import Middleware
from ucloud.services.ucdn.client import UCDNClient

from .base import (
    CloudAdapter,
    CloudError,
    MalformedResponse,
    SubmitResult,
    key_tail,
    windows,
)
from .paging import read_pages
from .ratelimit import SlidingWindowLimiter, process_limiter
from .retry import DEFAULT_POLICY, RetryPolicy, call_with_retry
from .ucloud_rows import ACTION, map_status, task_observations, task_page
from ..model.clouds import cloud
from ..model.connection import Endpoint, UCloudCredentials
from ..model.quota import Quota
from ..model.status import HistoryRow, TaskKind

__all__ = ["UCloudAdapter", "UCloudPurgeAdapter", "build", "classify_retcode", "make_client", "map_status"]

SPEC = cloud("ucloud")
CLOUD = SPEC.key
DEFAULT_BASE_URL = "https://api.ucloud.cn"
BATCH = 1000            # UrlList.N per call
SUBMIT_INTERVAL = 10.0  # seconds between submits, per account
# Tasks per history page; 0 sends no Limit, which the API answers with every task (its default).
# One call then reads the whole window, however many tasks hold the URLs; a page that still holds
# fewer tasks than TotalCount is followed by the next one.
TASK_PAGE = 0
# A read's last window ends this long after the caller's "now": rows a cloud clock ahead of ours
# stamps in our future are still read (a clock behind ours is learnt from our tasks, by id).
CLOCK_AHEAD_ALLOWANCE = timedelta(days=1)
# One submit per 10 s and a polite 20/s for the rest, per account, shared by the whole process.
SUBMIT_LIMITER = process_limiter(limit=1, window=SUBMIT_INTERVAL, margin=0.2)
CALL_LIMITER = process_limiter(limit=20, window=1.0)

THROTTLE_RETCODES = frozenset({150, 153})   # service unavailable, request throttled
TRANSIENT_RETCODES = frozenset({110, 130})  # API timed out, gateway error
AUTH_RETCODES = frozenset({170, 171, 172, 174, 293, 294, 295, 299})
SUBMIT_ACTION = "PrefetchNewUcdnDomainCache"
PURGE_SUBMIT_ACTION = "RefreshNewUcdnDomainCache"
PURGE_ACTION = "DescribeNewUcdnRefreshCacheTask"
QUOTA_ACTION = "GetUcdnDomainPrefetchRefreshState"  # both kinds' quotas
# Sent through the client's generic invoke: answers read as plain JSON (see the module docstring).
RAW_ACTIONS = frozenset({ACTION, PURGE_ACTION})
PURGE_BATCH = 30
"""UrlList.N per refresh call: the API doc and console say 30, the SDK docstring 100; 30 works under both."""


def classify_retcode(code: int) -> str:
    if code in THROTTLE_RETCODES:
        return "throttled"
    if code in TRANSIENT_RETCODES:
        return "transient"
    if code in AUTH_RETCODES:
        return "auth"
    return "invalid"


_SDK_LOGGER = logging.getLogger("cdn_prefetch.ucloud_sdk")
_SDK_LOGGER.setLevel(logging.CRITICAL)  # the SDK logs every request's parameters at INFO
_SDK_LOGGER.propagate = False


def make_client(endpoint: Endpoint, creds: UCloudCredentials, project_id: Optional[str] = None,
                timeout: int = 30) -> UCDNClient:
    config: dict[str, Any] = {
        "base_url": DEFAULT_BASE_URL if endpoint.kind == "default" else endpoint.url,
        "public_key": creds.public_key,
        "private_key": creds.private_key,
        "max_retries": 0,  # its retries are immediate and retry permanent errors; we decide ourselves
        "timeout": timeout,
    }
    if project_id:
        config["project_id"] = project_id
    # An empty middleware instead of the SDK's default one, whose only handlers log every request
    # and response: it formats the whole answer into a string (16 MB for 100,000 URLs of history)
    # before the silenced logger drops it.
    return UCDNClient(config, middleware=Middleware(), logger=_SDK_LOGGER)


def build(destination: Mapping[str, Any], endpoint: Endpoint, credentials: UCloudCredentials) -> "UCloudAdapter":
    """The adapter for one destination (components/clouds/factory.py)."""
    project = destination.get("projectId")
    return UCloudAdapter(make_client(endpoint, credentials, project), destination["domainId"], project)


def prepare_sandbox(box: Any, destination: Mapping[str, Any]) -> None:
    """The embedded sandbox must know a domain before it reports its quota: a new user's example
    domain is registered on first use (its usage is counted under a placeholder host)."""
    domain_id = destination["domainId"]
    if box.store.ucloud_domain_host(domain_id) is None:
        box.store.add_ucloud_domain(domain_id, f"{domain_id}.sandbox.invalid")


class UCloudAdapter(CloudAdapter):
    cloud = CLOUD
    # No maximum span is documented; 7-day windows keep each answer modest.
    max_window = SPEC.history_window

    def __init__(self, client: UCDNClient, domain_id: str, project_id: Optional[str] = None,
                 submit_limiter: SlidingWindowLimiter = SUBMIT_LIMITER,
                 call_limiter: SlidingWindowLimiter = CALL_LIMITER, policy: RetryPolicy = DEFAULT_POLICY):
        self.client, self.domain_id, self.project_id = client, domain_id, project_id
        self.submit_limiter, self.call_limiter, self.policy = submit_limiter, call_limiter, policy
        self.account = getattr(getattr(client, "credential", None), "public_key", "")

    #: (submit action, its SDK method, history action, its SDK method, batch, quota and used-count fields)
    actions = (SUBMIT_ACTION, "prefetch_new_ucdn_domain_cache", ACTION, "describe_new_ucdn_prefetch_cache_task",
               BATCH, ("PrefetchQuota", "QuotaCount"), ("SubmitPrefetchCount", "SubmitCount"))

    def describe_scope(self) -> str:
        return SPEC.describe(self.domain_id)

    def purger(self) -> "UCloudAdapter":
        """The account's file refreshes (URL purges), through the same client. The 10 s between submits is
        documented for prefetches only: refreshes go at the polite 20/s of the other calls, and a cloud that
        throttles them anyway (RetCode 153) is waited for and asked again by the retry."""
        return UCloudPurgeAdapter(self.client, self.domain_id, self.project_id, self.call_limiter,
                                  self.call_limiter, self.policy)

    def history_key(self) -> tuple:
        # The history API takes no domain: it answers the account's (and project's) tasks, so
        # every domain of one key pair reads the same rows.
        config = getattr(self.client, "config", None)
        return (CLOUD, getattr(config, "base_url", ""), self.account,
                self.project_id or getattr(config, "project_id", None) or "")

    def _call(self, action: str, method: str, params: dict[str, Any], limiter: SlidingWindowLimiter) -> dict:
        if self.project_id:
            params["ProjectId"] = self.project_id
        submit = action in (SUBMIT_ACTION, PURGE_SUBMIT_ACTION)
        return call_with_retry(lambda: self._call_once(action, method, params, limiter), read_only=not submit,
                               policy=self.policy, min_delay=limiter.window if submit else 0.0)

    def _call_once(self, action: str, method: str, params: dict[str, Any], limiter: SlidingWindowLimiter) -> dict:
        try:
            # The slot is held until the answer arrives (see ratelimit.py): the 10 s between submits
            # then count from when the cloud had surely received the last one.
            with limiter.request((CLOUD, self.account, action)) as slot:
                resp = self.client.invoke(action, params) if action in RAW_ACTIONS \
                    else getattr(self.client, method)(params)
        except uexc.RetCodeException as error:
            kind = classify_retcode(error.code)
            limiter.answered(slot, throttled=kind == "throttled")
            hint = (f" (the key pair whose PublicKey ends in {key_tail(self.account)} may not use "
                    f"{self.describe_scope()}: check that ucloud:publicKey/privateKey or UCLOUD_PUBLIC_KEY/"
                    "UCLOUD_PRIVATE_KEY are the key pair of the account that owns the domain, and the key's UCDN "
                    "permissions)") if kind == "auth" else ""
            raise CloudError(CLOUD, action, f"RetCode {error.code}", (error.message or "") + hint,
                             getattr(error, "request_uuid", None), kind) from None
        except uexc.HTTPStatusException as error:
            kind = "throttled" if error.status_code == 429 else "transient" if error.status_code >= 500 else "other"
            limiter.answered(slot, throttled=kind == "throttled")
            raise CloudError(CLOUD, action, f"HTTP {error.status_code}", "the API answered an HTTP error",
                             kind=kind) from None
        except uexc.InvalidResponseException:
            raise CloudError(CLOUD, action, "InvalidResponse", "the API answered something that is not JSON",
                             kind="malformed") from None
        except uexc.UCloudException as error:
            raise CloudError(CLOUD, action, type(error).__name__, str(error)) from None
        except requests.RequestException as error:
            raise CloudError(CLOUD, action, "ConnectionError", type(error).__name__, kind="transient") from None
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as error:
            # The SDK's response schema chokes on a body of the wrong shape before we see it.
            raise MalformedResponse(CLOUD, action, "(body)", f"not the documented shape ({type(error).__name__})") from None
        limiter.answered(slot, throttled=False)
        if not isinstance(resp, dict):
            raise MalformedResponse(CLOUD, action, "(body)", f"expected a JSON object, got {type(resp).__name__}")
        return resp

    def quota(self) -> Quota:
        return self.quotas()[self.kind]

    def quotas(self) -> dict[TaskKind, Quota]:
        """One GetUcdnDomainPrefetchRefreshState answers the domain's prefetch and refresh quotas."""
        resp = self._call(QUOTA_ACTION, "get_ucdn_domain_prefetch_refresh_state", {"DomainId": self.domain_id},
                          self.call_limiter)
        found = {self.kind: _quota_of(resp, self.actions)}
        sibling = (UCloudPurgeAdapter if self.kind is TaskKind.PREFETCH else UCloudAdapter).actions
        try:
            found[TaskKind.PURGE if self.kind is TaskKind.PREFETCH else TaskKind.PREFETCH] = _quota_of(resp, sibling)
        except MalformedResponse:
            pass  # asked for when that kind is used, and reported then
        return found

    def quota_key(self) -> tuple:
        return (UCloudAdapter.history_key(self), self.describe_scope())

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        if isinstance(urls, str):
            raise TypeError("submit() takes a list of URLs, not one string")  # the SDK would send it char by char
        url_list = [str(u) for u in urls]
        action, method = self.actions[0], self.actions[1]
        resp = self._call(action, method, self._submit_params(url_list), self.submit_limiter)
        task_id = resp.get("TaskId")
        if not isinstance(task_id, str) or not task_id:
            raise MalformedResponse(CLOUD, action, "TaskId", f"expected a task id, got {task_id!r}")
        return SubmitResult(task_id, tuple(url_list), {})

    def _submit_params(self, url_list: list[str]) -> dict[str, Any]:
        return {"UrlList": url_list}

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        """Every task in [since, until], through the shared pager (clouds/paging.py ``read_pages``).

        ``Limit`` defaults to everything, so one call usually answers the whole window; a cloud that
        caps its pages gets the same offsets a plain loop would ask for, a few in flight. The order
        of ``TaskList`` is undocumented: the pager's repair for rows pushed back by a task created
        during the read can then only read some rows twice, which is harmless (the newest row of a
        URL decides), never skip one. The last window ends ``CLOCK_AHEAD_ALLOWANCE`` after ``until``
        (see the module docstring).
        """
        for start, end in windows(since, until, self.max_window):
            if end == until:
                end += CLOCK_AHEAD_ALLOWANCE
            yield from self._read({"BeginTime": int(start.timestamp()),
                                   "EndTime": int(end.timestamp()) + (1 if end.microsecond else 0)})

    def task_rows(self, task_ids: Sequence[str]) -> list[HistoryRow]:
        """The rows of these tasks, by ``TaskId.N`` and no time: the API's default window is the last day on
        its own clock, so our recent tasks show however far its clock is from ours."""
        return list(self._read({"TaskId": [str(t) for t in task_ids]})) if task_ids else []

    def _read(self, query: dict[str, Any]) -> Iterator[HistoryRow]:
        """Every row one history query answers, page by page (clouds/paging.py ``read_pages``)."""
        action = self.actions[2]
        fetch = lambda offset: self._task_page(query, offset)  # noqa: E731
        for tasks in read_pages(fetch, cloud=CLOUD, action=action):
            for task in tasks:
                yield from task_observations(task, action)

    def _task_page(self, query: dict[str, Any], offset: int) -> tuple[int, list]:
        """(TotalCount, TaskList) of one page of the query, both checked."""
        params: dict[str, Any] = {**query, "Offset": offset}
        if TASK_PAGE:
            params["Limit"] = TASK_PAGE
        action, method = self.actions[2], self.actions[3]
        return task_page(self._call(action, method, params, self.call_limiter), action)


class UCloudPurgeAdapter(UCloudAdapter):
    """File refreshes (URL purges). The refresh history, like the prefetch one, is the account's."""

    kind = TaskKind.PURGE
    actions = (PURGE_SUBMIT_ACTION, "refresh_new_ucdn_domain_cache", PURGE_ACTION,
               "describe_new_ucdn_refresh_cache_task", PURGE_BATCH, ("RefreshFileQuota",), ("SubmitRefreshFile",))

    def purger(self) -> "UCloudAdapter":
        raise AssertionError("purger() is asked of the prefetch adapter")

    def _submit_params(self, url_list: list[str]) -> dict[str, Any]:
        return {"Type": "file", "UrlList": url_list}

    def history_key(self) -> tuple:
        return (*super().history_key(), "purge")


def _quota_of(resp: dict, actions: tuple) -> Quota:
    """One kind's quota in a GetUcdnDomainPrefetchRefreshState answer (``actions``: that adapter's table)."""
    # The documented example uses QuotaCount/SubmitCount; the field table PrefetchQuota/SubmitPrefetchCount.
    _, _, _, _, batch, quota_names, used_names = actions
    quota = _first(resp, *quota_names)
    used = _first(resp, *used_names)
    for name, value in ((quota_names[0], quota), (used_names[0], used)):
        if not isinstance(value, int) or value < 0:
            raise MalformedResponse(CLOUD, QUOTA_ACTION, name, f"expected a non-negative integer, got {value!r}")
    return Quota(batch, quota, max(0, quota - used))


def _first(resp: dict, *names: str) -> Any:
    for name in names:
        if name in resp and resp[name] is not None:
            return resp[name]
    return None
