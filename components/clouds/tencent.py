"""What the two Tencent adapters (EdgeOne, Cloud CDN) share: client profile, calls, error translation.

Both speak API 3.0 through the official SDK. The SDK's own retryer is never used: it re-sends
after a throttling error even when a later attempt succeeded, duplicating prefetch submits.
"""

from __future__ import annotations

import json
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any, Callable, Hashable, Iterator, Optional

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from ..ratelimit import SlidingWindowLimiter
from ..retry import DEFAULT_POLICY, RetryPolicy, call_with_retry
from ..settings import Endpoint, TencentCredentials
from ..status import Observation
from .base import CloudError, MalformedResponse, windows

# Actions that change something at the cloud: never re-sent blindly after an ambiguous failure.
SUBMIT_ACTIONS = frozenset({"CreatePrefetchTask", "PushUrlsCache"})
THROTTLE_CODES = frozenset({"UnauthorizedOperation.OperationTooOften", "LimitExceeded.CdnHostOpTooOften"})
QUOTA_CODES = frozenset({"LimitExceeded.DailyQuota", "LimitExceeded.BatchQuota",
                         "LimitExceeded.CdnPushExceedDayLimit", "LimitExceeded.CdnPushExceedBatchLimit"})
HINTS = {
    "auth": "check the credentials (tencentcloud:secretId/secretKey or TENCENTCLOUD_SECRET_ID/KEY), their CAM "
            "permissions, and this machine's clock",
    "quota": "the prefetch quota is used up for today; wait for it to reset or ask Tencent Cloud to raise it",
}


def classify(code: str) -> str:
    """The retry class of a Tencent error code (see retry.py)."""
    if code in THROTTLE_CODES or code.startswith("RequestLimitExceeded"):
        return "throttled"
    if code in ("ClientNetworkError", "ServerNetworkError") or code.startswith("InternalError"):
        return "transient"
    if code in QUOTA_CODES:
        return "quota"
    if code.startswith(("AuthFailure", "UnauthorizedOperation")):
        return "auth"
    if code.startswith(("InvalidParameter", "MissingParameter", "UnknownParameter", "InvalidAction",
                        "NoSuchVersion", "ResourceNotFound", "ResourceUnavailable")):
        return "invalid"
    # The SDK wraps a body it cannot deserialize as an exception named after the Python error.
    if code in ("JSONDecodeError", "KeyError", "TypeError", "AttributeError", "ValueError", "IndexError"):
        return "malformed"
    return "other"


def client_profile(endpoint: Endpoint, timeout: int = 30) -> ClientProfile:
    """A profile for the real cloud (default endpoint) or an explicit one such as the sandbox."""
    if endpoint.kind == "default":
        http = HttpProfile(reqTimeout=timeout)
    else:
        # protocol must be given to the constructor (it picks the scheme there); endpoint is host:port.
        http = HttpProfile(protocol=endpoint.scheme, endpoint=endpoint.netloc, reqTimeout=timeout)
    return ClientProfile(httpProfile=http)


def sdk_credential(creds: TencentCredentials) -> credential.Credential:
    return credential.Credential(creds.secret_id, creds.secret_key, creds.token)


def client_identity(client: Any) -> tuple[str, str, str]:
    """(scheme, API host, SecretId) of an SDK client: whose history it reads, and where. Never the key."""
    http = client.profile.httpProfile
    # No explicit endpoint: the SDK client's own default host for its service (teo/cdn.tencentcloudapi.com).
    return http.scheme or "https", http.endpoint or client._endpoint, getattr(client.credential, "secret_id", "")


class TencentCaller:
    """Calls one action of one SDK client under the shared rate limiter, translating SDK errors."""

    def __init__(self, cloud: str, client: Any, models: ModuleType, limiter: SlidingWindowLimiter,
                 policy: RetryPolicy = DEFAULT_POLICY):
        self.cloud, self.client, self.models, self.limiter, self.policy = cloud, client, models, limiter, policy

    def __call__(self, action: str, params: dict[str, Any]) -> Any:
        """The action's response model, as the SDK's own method for it returns it."""
        request = self._request(action, params)
        method: Callable[[Any], Any] = getattr(self.client, action)
        return self._with_retry(action, lambda: method(request))

    def json(self, action: str, params: dict[str, Any]) -> Any:
        """The body's ``Response`` object as plain JSON, for pages of history.

        Same transport and signing (the SDK client's ``_call``), the same status and error checks
        (``response_of``), limiter and retries as ``__call__``, but the rows are not turned into SDK models: that costs ~3 µs a row (0.3 s of CPU
        per 100,000 rows), and the adapters check every field they read themselves anyway.
        Whatever goes wrong while decoding becomes the exception the SDK's method would raise
        (named after the Python error), so failures classify exactly as on the model path.
        """
        wire = self._request(action, params)._serialize()
        return self._with_retry(action, _sdk_errors(lambda: self.client._call(action, wire, None, None)),
                                _sdk_errors(lambda answer: response_of(self.client, answer)))

    def _request(self, action: str, params: dict[str, Any]) -> Any:
        request = getattr(self.models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        return request

    def _with_retry(self, action: str, send: Callable[[], Any], finish: Optional[Callable[[Any], Any]] = None) -> Any:
        """``send()`` under the limiter, then ``finish(answer)`` (if given) once its slot is released, with retries.

        The slot is held until the answer arrives (see ratelimit.py for why), not while it is
        decoded: a page of 1,000 rows takes milliseconds to decode, and the next request waits
        for that slot.
        """
        def once() -> Any:
            try:
                with self.limiter.request((self.cloud, action)):
                    answer = send()
                return answer if finish is None else finish(answer)
            except TencentCloudSDKException as exc:
                code = exc.get_code()
                # A code that is not text (a malformed error answer) must not break the classification.
                code = code if isinstance(code, str) and code else (str(code) if code else "Error")
                kind = classify(code)
                message = exc.get_message() or ""
                if kind in HINTS:
                    message = f"{message} ({HINTS[kind]})" if message else HINTS[kind]
                raise CloudError(self.cloud, action, code, message, exc.get_request_id(), kind) from None

        return call_with_retry(once, read_only=action not in SUBMIT_ACTIONS, policy=self.policy)


def response_of(client: Any, answer: Any) -> Any:
    """``Response`` of an answer of the SDK client's transport (``client._call``), as ``call_json`` checks it.

    The SDK's ``call``/``call_json`` decode every answer in ``_check_error`` only to look for
    ``Response.Error``, and then hand back the raw body (or decode it again). For a page of 1,000
    history rows that second decode is ~1.3 ms of CPU: 0.13 s per 100,000 rows. This does the
    same checks (``_check_status``, then the error check) with one decode, and raises the same
    TencentCloudSDKException(code, message, request id) for an error answer. A body that is not
    JSON raises the decoder's error, as ``call_json`` would.

    Pinned to the SDK version in requirements.txt: ``_call``, ``_check_status`` and the checks
    mirrored here are the SDK's private API, and tests/test_clouds_tencent.py holds this path to the
    model path's answers for the same bodies.
    """
    client._check_status(answer)
    data = json.loads(answer.content)
    # From here on, the SDK's own _check_error (abstract_client.py), statement for statement, on
    # the body already decoded: same content types, same lookups, so the same exceptions (a
    # missing RequestId is a KeyError, ``"Error": null`` a TypeError, as there).
    if answer.headers.get("Content-Type") in ("text/plain", "application/json"):
        if "Error" in data["Response"]:
            raise TencentCloudSDKException(data["Response"]["Error"]["Code"], data["Response"]["Error"]["Message"],
                                           data["Response"]["RequestId"])
        if "DeprecatedWarning" in data["Response"]:
            warnings.filterwarnings("default")
            warnings.warn("This action is deprecated, detail: %s" % data["Response"]["DeprecatedWarning"],
                          DeprecationWarning)
    return data["Response"]


def _sdk_errors(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call``, with any other exception raised as the TencentCloudSDKException the SDK's methods make of it.

    The generated methods (the model path) name it after the Python error (``JSONDecodeError``,
    ``KeyError``...), so a failure classifies the same whichever path met it.
    """
    def wrapped(*args: Any) -> Any:
        try:
            return call(*args)
        except TencentCloudSDKException:
            raise
        except Exception as exc:  # noqa: BLE001 - as the SDK's generated methods wrap it
            raise TencentCloudSDKException(type(exc).__name__, str(exc)) from None

    return wrapped


# Pages of one history query fetched at once (each still waits for its slot in the shared limiter).
PAGES_IN_FLIGHT = 4


def read_pages(fetch: Callable[[int], tuple[int, list]], *, in_flight: int = PAGES_IN_FLIGHT,
               cloud: str = "", action: str = "") -> Iterator[list]:
    """Every page of one history query, in order: ``fetch(offset)`` answers (TotalCount, rows) of one page.

    The stop rules are a plain loop's: after a page, stop when it was empty or the offset (the rows
    read so far) reached that page's TotalCount; otherwise the next page starts at that offset.
    What differs is when pages are asked for: the first page tells how many rows there are and
    how many a page holds, so the following offsets are known and up to ``in_flight`` of them are
    fetched at once (each under the shared rate limiter inside ``fetch``), while the caller parses
    the pages already here. Every page the plain loop reads is asked for once, and pages are
    yielded in offset order.

    A page is used only when it was fetched at exactly the offset the plain loop would ask for. A
    short page in the middle moves that offset: the pages fetched ahead are dropped and the rest
    is planned again from there. A TotalCount that grew extends the plan; one that shrank ends the
    read where the plain loop would (pages fetched ahead of it are dropped, unread).

    Rows added while pages are read: the query's window is fixed when the read starts (EndTime is
    the caller's "now"), so a task created later is not in the query at all. Only a task the cloud
    stamps inside the window during the read can join it (within the last, rounded-up second, or
    with a cloud clock behind ours); it belongs to a later view of history and may or may not be
    seen. The clouds list newest first, one row per URL, so such a task moves every other row back
    by its number of URLs. A page answered after it starts that much further back; since pages
    are fetched at once and answered in any order, a page answered before it may end short of
    where a later-answered page before it began, and the rows between would be skipped. So each
    page's rows are placed in the listing as it was when the read started (its offset less the
    growth of its own TotalCount), and what no page covered is fetched again at where it has moved
    to (the largest growth seen), for at most ``REPAIR_ROUNDS`` rounds. Rows still uncovered then
    fail the read (a transient CloudError: read again) rather than go missing. A row may come
    twice (the history snapshot keeps it once). Two cases are left as the plain loop leaves them:
    a TotalCount that shrank (the cloud dropping its oldest rows, far outside the windows read
    here) cannot be placed, and an empty page ends the listing (a TotalCount that overstated it).
    """
    pool = ThreadPoolExecutor(max_workers=max(1, in_flight), thread_name_prefix="history-page")
    ahead: deque[tuple[int, Future]] = deque()
    try:
        total, rows = fetch(0)
        first = total  # the listing's length when the read started: where rows are placed from
        listed = first  # how much of it must be covered (less, once an empty page showed where it ends)
        covered: list[tuple[int, int]] = []
        placeable = _cover(covered, 0, total, first, len(rows))
        grown = 0  # the most rows listed ahead of the old ones that any answer has shown
        step = len(rows)  # what the cloud puts in a page (its Limit, or less if it caps it)
        offset = planned = 0
        while True:
            offset += len(rows)
            more = bool(rows) and offset < total
            if more and ahead and ahead[0][0] != offset:
                _drop(ahead)  # fetched for offsets the plain loop would not ask for
            if more:
                if not ahead:
                    planned = offset
                while len(ahead) < in_flight and planned < total:
                    ahead.append((planned, pool.submit(fetch, planned)))
                    planned += step
            yield rows
            if not more:
                break
            at, future = ahead.popleft()
            total, rows = future.result()
            grown = max(grown, total - first)
            placeable = _cover(covered, at, total, first, len(rows)) and placeable
            if not rows:  # an empty page ends the listing there (TotalCount overstated it), as for the plain loop
                listed = min(listed, max(0, at - (total - first)))
        if not placeable:
            return
        for _ in range(REPAIR_ROUNDS):
            gaps = _gaps(covered, listed)
            if not gaps:
                return
            for start, end in gaps:
                while start < end:
                    at = start + grown  # where the first uncovered row is now, as far as we know
                    total, rows = fetch(at)
                    grown = max(grown, total - first)
                    if not rows or not _cover(covered, at, total, first, len(rows)):
                        return  # the listing ends here (TotalCount overstated it) or shrank: as the plain loop
                    yield rows
                    reached = at - (total - first) + len(rows)  # the end of what this page covered
                    if reached <= start:
                        break  # rows moved again before it was answered: the next round looks again
                    start = reached
        missing = sum(end - start for start, end in _gaps(covered, listed))
        if missing:
            raise CloudError(cloud, action, "HistoryMoved",
                             f"{missing} rows of the history were not seen: tasks kept being listed in the "
                             f"queried window while it was read; read again", kind="transient")
    finally:
        # A caller that stops early (a malformed row) leaves at most the started read-only requests
        # to finish unseen.
        _drop(ahead)
        pool.shutdown(wait=False, cancel_futures=True)


# Rounds of re-fetching what no page covered (``read_pages``): rows stop moving once the window closes.
REPAIR_ROUNDS = 3


def _cover(covered: list[tuple[int, int]], offset: int, total: int, first: int, count: int) -> bool:
    """Record which rows of the listing as it was at the start (``first`` rows) a page covered; False
    when the page cannot be placed (the listing shrank since the start)."""
    moved = total - first  # rows listed ahead of the old ones since the start
    if moved < 0:
        return False
    start, end = max(0, offset - moved), min(first, offset - moved + count)
    if start < end:
        covered.append((start, end))
    return True


def _gaps(covered: list[tuple[int, int]], first: int) -> list[tuple[int, int]]:
    """The spans of [0, first) that no covered span holds, in order."""
    gaps: list[tuple[int, int]] = []
    reached = 0
    for start, end in sorted(covered):
        if start > reached:
            gaps.append((reached, start))
        reached = max(reached, end)
    if reached < first:
        gaps.append((reached, first))
    return gaps


def _drop(ahead: deque[tuple[int, Future]]) -> None:
    for _, future in ahead:
        future.cancel()
    ahead.clear()


def paged_history(since: datetime, until: datetime, span: timedelta,
                  page: Callable[[datetime, datetime, int], tuple[int, list]],
                  observation: Callable[[Any], Optional[Observation]], *, cloud: str = "",
                  action: str = "") -> Iterator[Observation]:
    """The history of both Tencent APIs: windows of at most ``span``, each read page by page.

    ``page(start, end, offset)`` answers one checked page; ``observation(row)`` turns a row into
    an observation, or None for a row that is not a prefetch of this destination.
    """
    # The APIs take whole seconds: widen to whole seconds so no row on the edge is lost.
    since = since.replace(microsecond=0)
    if until.microsecond:
        until = until.replace(microsecond=0) + timedelta(seconds=1)
    for start, end in windows(since, until, span):
        for rows in read_pages(lambda offset, start=start, end=end: page(start, end, offset), cloud=cloud,
                               action=action):
            for row in rows:
                obs = observation(row)
                if obs is not None:
                    yield obs


# Distinct per-task parts kept at once. A task's rows share one key, or a few when finish times
# differ by the second, so this covers many pages; when full the memo is emptied, not aged.
TASK_MEMO_SIZE = 4096


class TaskMemo(dict):
    """The per-task part of history rows, checked and converted once per distinct key: ``memo[key]``.

    Every row of a task repeats its id, creation time and status (and mostly its finish time);
    checking, parsing and interning those once per task instead of once per row is most of what a
    row used to cost (100,000 rows hold a few hundred distinct keys). ``build(*key)`` checks every
    field of the key and raises MalformedResponse for a bad one, so only keys that passed are
    stored and a malformed row is reported however many rows came before it.

    Equal keys must mean equal parts: ``build`` may depend on nothing but the key, and a field
    whose meaning depends on its type where equal values differ (``True == 1``) must be kept out
    of the key or told apart. A key holding an unhashable value (a list where a string belongs)
    raises TypeError on lookup: callers then call ``build`` directly. Safe to share between
    threads: a lost race builds one key twice, to equal values.
    """

    def __init__(self, build: Callable[..., Any], size: int = TASK_MEMO_SIZE):
        super().__init__()
        self.build, self.size = build, size

    def part(self, key: tuple[Any, ...]) -> Any:
        """``build(*key)``, from the memo when the key is hashable (an unhashable one is built, never stored)."""
        try:
            return self[key]
        except TypeError:  # a list or object where a string belongs: checked, never stored
            return self.build(*key)

    def __missing__(self, key: tuple[Hashable, ...]) -> Any:
        value = self.build(*key)
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


def checked_page(resp: Any, cloud: str, action: str, rows_field: str) -> tuple[int, list]:
    """(TotalCount, rows) of one page of a history answer (plain JSON), both checked."""
    if not isinstance(resp, dict):
        raise MalformedResponse(cloud, action, "Response", f"expected an object, got {type(resp).__name__}")
    total = resp.get("TotalCount")
    if not isinstance(total, int):
        raise MalformedResponse(cloud, action, "TotalCount", f"expected an integer, got {total!r}")
    rows = resp.get(rows_field) or []
    if not isinstance(rows, list):
        raise MalformedResponse(cloud, action, rows_field, f"expected a list, got {type(rows).__name__}")
    return total, rows


def checked_counts(item: Any, names: tuple[str, ...], cloud: str, action: str, prefix: str) -> dict[str, int]:
    """The named fields of one quota entry (an SDK model), each a non-negative integer."""
    values = {}
    for name in names:
        value = getattr(item, name)
        if not isinstance(value, int) or value < 0:
            raise MalformedResponse(cloud, action, f"{prefix}.{name}", f"expected a non-negative integer, got {value!r}")
        values[name] = value
    return values


def checked_time(value: Any, parse: Callable[[str], datetime], expected: str, cloud: str, action: str,
                 field_name: str, *, required: bool) -> Optional[datetime]:
    """A time field of a history row: ``parse`` of its text, None when absent and not required."""
    if value in (None, ""):
        if required:
            raise MalformedResponse(cloud, action, field_name, "missing")
        return None
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        return parse(value)
    except (TypeError, ValueError):
        raise MalformedResponse(cloud, action, field_name, f"expected {expected}, got {value!r}") from None
