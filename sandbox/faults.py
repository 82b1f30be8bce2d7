"""Fault injection: make the sandbox fail the way the clouds and the network really do.

A fault is a row in the sandbox db (like a rule), so a test can break a sandbox served by another
process (the Pulumi provider host) by opening the same file. Each fault matches requests by service
and action (None = any) and fires with a probability, at most `count` times. Matching faults are
evaluated in insertion order and the first that fires wins; a fired fault is recorded in the request
log (`fault`, `fault_id`), so a test counts what happened instead of guessing.

Every kind imitates what the official SDKs see from the real failure (cdn-apis.md §5):

- `throttle`: the cloud's own throttling answer at the point where the cloud throttles (after
  authentication): Tencent HTTP 200 `Response.Error.Code = RequestLimitExceeded`, UCloud RetCode 153.
  Never executed.
- `http_5xx`: a gateway error page (HTTP `status`, default 502, text/html). The Tencent SDK raises
  `ServerNetworkError`, the UCloud SDK `HTTPStatusException`. `executed=True` performs the action
  first (task created, quota spent) and only then answers 5xx: the ambiguous failure a client must
  resolve by re-reading history. `executed=False` never reaches the API.
- `slow`: answers normally after `delay_seconds` (default 35 s, beyond a 30 s client timeout). With
  `executed=True` the action runs before the sleep (the client times out, the task exists), else
  after it (the task appears once the sleep ends, after the client gave up). Stopping the sandbox
  interrupts the sleep; an interrupted not-yet-executed request is dropped, never performed.
- `reset`: the TCP connection is closed with an RST (SO_LINGER 0) and no response; `executed`
  decides whether the action ran first.
- `malformed_json`: HTTP 200, `Content-Type: application/json`, the normal body truncated. The action
  ran.
- `missing_field` / `null_field`: the normal answer with one field (a dotted path, `[]` stepping into
  every element of a list) removed or set to null; the default is a field the client relies on, per
  action (`DEFAULT_FIELDS`). A path absent from the answer (e.g. an error answer) changes nothing.
- `wrong_content_type`: the normal (or error) body as `application/json; charset=utf-8`. The Tencent
  SDK then skips its error check and returns an empty model for an error; UCloud's SDK does not look
  at the header at all.
- `clock_skew`: the cloud's clock runs `delay_seconds` ahead of true time (default 600; negative:
  behind) for the requests it fires on; with no `count` that is every request, a cloud whose clock is
  off. Tencent (teo, cdn) checks the TC3 timestamp on it, so beyond 300 s either way every request is
  refused with `AuthFailure.SignatureExpire` (within, nothing else changes). UCloud signatures carry
  no time, so nothing is refused: its API reads and writes every time on that clock instead, as a
  real cloud with a wrong clock would. Answers report CreateTime/FinishTime shifted by the skew,
  BeginTime/EndTime are read on its clock and default to its now (EndTime = now + skew), while the
  tasks run in true time. E.g. `add_fault("clock_skew", service="ucloud", delay_seconds=1800)`
  (`python -m sandbox fault add clock_skew --service ucloud --delay 1800`) is a UCloud 30 minutes
  ahead; `-1800`, 30 minutes behind.

`executed` only chooses for http_5xx, slow and reset. The answer-mangling kinds (malformed_json,
missing_field, null_field, wrong_content_type) always execute; throttle and clock_skew never do.

This module is pure (no I/O, no sandbox imports): the store persists faults, the server applies them.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Mapping

KINDS: tuple[str, ...] = (
    "throttle", "http_5xx", "slow", "reset", "malformed_json", "missing_field", "null_field",
    "wrong_content_type", "clock_skew",
)
EXECUTED_CHOICE = frozenset({"http_5xx", "slow", "reset"})
"""Kinds where `executed` decides whether the action runs before the failure."""
ALWAYS_EXECUTED = frozenset({"malformed_json", "missing_field", "null_field", "wrong_content_type"})
NEVER_EXECUTED = frozenset({"throttle", "clock_skew"})
DEFAULT_DELAYS: dict[str, float] = {"slow": 35.0, "clock_skew": 600.0}
"""delay_seconds when not given: slow sleeps past a 30 s client timeout; 600 s is twice the TC3 window."""
DEFAULT_STATUS = 502

DEFAULT_FIELDS: Mapping[tuple[str, str], str] = {
    ("teo", "CreatePrefetchTask"): "Response.JobId",
    ("teo", "DescribePrefetchTasks"): "Response.TotalCount",
    ("teo", "DescribeContentQuota"): "Response.PrefetchQuota",  # documented "may be null"
    ("teo", "CreatePurgeTask"): "Response.JobId",
    ("teo", "DescribePurgeTasks"): "Response.TotalCount",
    ("cdn", "PushUrlsCache"): "Response.TaskId",
    ("cdn", "DescribePushTasks"): "Response.PushLogs",  # documented "may be null"
    ("cdn", "DescribePushQuota"): "Response.UrlPush",
    ("cdn", "PurgeUrlsCache"): "Response.TaskId",
    ("cdn", "DescribePurgeTasks"): "Response.PurgeLogs",
    ("cdn", "DescribePurgeQuota"): "Response.UrlPurge",
    ("ucloud", "PrefetchNewUcdnDomainCache"): "TaskId",
    ("ucloud", "DescribeNewUcdnPrefetchCacheTask"): "TaskList",
    ("ucloud", "GetUcdnDomainPrefetchRefreshState"): "PrefetchQuota",  # the docs' example names it differently
    ("ucloud", "RefreshNewUcdnDomainCache"): "TaskId",
    ("ucloud", "DescribeNewUcdnRefreshCacheTask"): "TaskList",
}
"""The field missing_field/null_field hits when none is given: the one a client depends on.

Its keys are also the emulated (service, action) pairs, which faults are checked against so that a
typo in an action name is an error rather than a fault that silently never fires.
"""

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\[\])?(\.[A-Za-z_][A-Za-z0-9_-]*(\[\])?)*")


@dataclass(frozen=True)
class Fault:
    """One stored fault and its counters (`evaluated`: draws so far, i.e. its position in its
    random stream; `fired`: times it fired)."""

    id: int
    kind: str
    service: str | None
    action: str | None
    probability: float
    count: int | None
    executed: bool
    delay_seconds: float | None
    status: int | None
    field: str | None
    seed: int
    evaluated: int = 0
    fired: int = 0

    def matches(self, service: str | None, action: str | None) -> bool:
        """Would a request to (`service`, `action`) draw from this fault? In scope and `count` not used up."""
        if self.service is not None and self.service != service:
            return False
        if self.action is not None and self.action != action:
            return False
        return self.count is None or self.fired < self.count

    def field_for(self, service: str | None, action: str | None) -> str | None:
        """The path to strip from this request's answer: the fault's own, else the action's default."""
        if self.field is not None:
            return self.field
        return DEFAULT_FIELDS.get((service or "", action or ""))


def fires(seed: int, draw: int, probability: float) -> bool:
    """Whether draw number `draw` of a fault seeded `seed` fires: a pure function of the two.

    A fresh `random.Random` per (seed, draw) keeps this reproducible across processes and restarts:
    the only state is the draw counter stored in the db.
    """
    if probability >= 1.0:
        return True
    if probability <= 0.0:
        return False
    return random.Random(f"fault:{seed}:{draw}").random() < probability


def known_actions(service: str | None) -> set[str]:
    return {a for (s, a) in DEFAULT_FIELDS if service is None or s == service}


def new_seed() -> int:
    return random.SystemRandom().getrandbits(63)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return number


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise ValueError(f"{name} must be an integer; got {value!r}")
    return value


def normalize(
    kind: str,
    *,
    service: str | None,
    action: str | None,
    probability: float,
    count: int | None,
    executed: bool,
    delay_seconds: float | None,
    status: int | None,
    field: str | None,
    seed: int | None,
    services: tuple[str, ...],
) -> dict[str, Any]:
    """Check a fault's parameters and fill in defaults; the column values to store. ValueError if wrong.

    Parameters that make no sense for the kind are refused rather than ignored, so a test cannot
    believe it configured something that has no effect.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if service is not None and service not in services:
        raise ValueError(f"service must be one of {', '.join(services)} (or None for all); got {service!r}")
    if action is not None:
        if not isinstance(action, str) or action not in known_actions(service):
            where = f" of {service}" if service else ""
            raise ValueError(
                f"action must be an emulated action{where} ({', '.join(sorted(known_actions(service)))}); got {action!r}"
            )
    probability = _number("probability", probability)
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be between 0 and 1; got {probability!r}")
    if count is not None:
        count = _integer("count", count)
        if count < 1:
            raise ValueError(f"count must be >= 1 (or None for no limit); got {count!r}")
    if not isinstance(executed, bool):
        raise ValueError(f"executed must be True or False; got {executed!r}")
    if kind in NEVER_EXECUTED and executed:
        raise ValueError(f"{kind} never executes the action; executed=True makes no sense")
    if kind in ALWAYS_EXECUTED:
        executed = True
    if delay_seconds is not None:
        if kind not in DEFAULT_DELAYS:
            raise ValueError(f"delay_seconds applies to {' and '.join(DEFAULT_DELAYS)} only, not {kind}")
        delay_seconds = _number("delay_seconds", delay_seconds)
        if kind == "slow" and delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0 for slow; got {delay_seconds!r}")
    elif kind in DEFAULT_DELAYS:
        delay_seconds = DEFAULT_DELAYS[kind]
    if status is not None:
        if kind != "http_5xx":
            raise ValueError(f"status applies to http_5xx only, not {kind}")
        status = _integer("status", status)
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx HTTP status (500..599); got {status!r}")
    elif kind == "http_5xx":
        status = DEFAULT_STATUS
    if field is not None:
        if kind not in ("missing_field", "null_field"):
            raise ValueError(f"field applies to missing_field and null_field only, not {kind}")
        if not isinstance(field, str) or not _FIELD.fullmatch(field) or field.endswith("[]"):
            raise ValueError(
                "field must be a dotted path ending in a name, `[]` stepping into list elements, "
                f"e.g. Response.Tasks[].CreateTime; got {field!r}"
            )
    seed = new_seed() if seed is None else _integer("seed", seed)
    if not -(2**63) <= seed < 2**63:
        raise ValueError(f"seed must fit in 64 bits; got {seed!r}")
    return {
        "kind": kind, "service": service, "action": action, "probability": probability, "count": count,
        "executed": executed, "delay_seconds": delay_seconds, "status": status, "field": field, "seed": seed,
    }


def chaos_plan(
    *, throttle: float, server_error: float, reset: float, executed_share: float, seed: int
) -> list[dict[str, Any]]:
    """The faults of the chaos preset, as add_fault keyword arguments, in evaluation order.

    The rates are shares of *all* requests: since the first firing fault wins, each later fault's
    stored probability is conditional on the earlier ones not firing (0.05 after a 0.3 throttle is
    stored as 0.05 / 0.7). Server errors and resets are split into an executed and a clean fault by
    `executed_share`, so both the ambiguous and the clean failure occur. Each fault gets its own seed
    derived from `seed`, so their draws are independent yet reproducible.
    """
    rates = {"throttle": throttle, "server_error": server_error, "reset": reset, "executed_share": executed_share}
    for name, value in rates.items():
        number = _number(name, value)
        if not 0.0 <= number <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1; got {value!r}")
        rates[name] = number
    if rates["throttle"] + rates["server_error"] + rates["reset"] > 1.0 + 1e-9:
        raise ValueError("throttle + server_error + reset must not exceed 1 (they are shares of all requests)")
    share = rates["executed_share"]
    wanted = [
        ("throttle", False, rates["throttle"]),
        ("http_5xx", True, rates["server_error"] * share),
        ("http_5xx", False, rates["server_error"] * (1 - share)),
        ("reset", True, rates["reset"] * share),
        ("reset", False, rates["reset"] * (1 - share)),
    ]
    seeds = random.Random(f"chaos:{_integer('seed', seed)}")
    plan: list[dict[str, Any]] = []
    remaining = 1.0
    for kind, executed, rate in wanted:
        fault_seed = seeds.getrandbits(63)  # drawn for every slot, so a zero rate does not shift the rest
        if rate <= 0:
            continue
        probability = min(1.0, rate / remaining) if remaining > 0 else 1.0
        remaining -= rate
        plan.append({"kind": kind, "executed": executed, "probability": probability, "seed": fault_seed})
    return plan


# ----- what a fired fault does to an answer --------------------------------------------------------


def _parse_field(path: str) -> list[tuple[str, bool]]:
    """`Response.Tasks[].CreateTime` -> [("Response", False), ("Tasks", True), ("CreateTime", False)]."""
    return [(part[:-2], True) if part.endswith("[]") else (part, False) for part in path.split(".")]


def strip_field(body: Any, path: str, *, null: bool) -> int:
    """Remove (or set to None) `path` in `body`, in place; returns how many places changed."""
    steps = _parse_field(path)
    nodes = [body]
    for name, into_list in steps[:-1]:
        following: list[Any] = []
        for node in nodes:
            if isinstance(node, dict) and name in node:
                value = node[name]
                if into_list:
                    following.extend(value if isinstance(value, list) else [])
                else:
                    following.append(value)
        nodes = following
    last = steps[-1][0]
    changed = 0
    for node in nodes:
        if isinstance(node, dict) and last in node:
            if null:
                node[last] = None
            else:
                del node[last]
            changed += 1
    return changed


def truncate(payload: bytes) -> bytes:
    """A JSON object cut short: never valid JSON (its braces cannot balance), yet clearly a reply."""
    return payload[: max(1, len(payload) // 2)]


def error_page(status: int) -> bytes:
    """The kind of HTML a load balancer answers with when the backend fails."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Server Error"
    return (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>stgw</center>\r\n</body>\r\n</html>\r\n"
    ).encode("ascii")
