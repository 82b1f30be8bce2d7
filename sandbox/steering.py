"""How a test or the CLI steers the sandbox: outcome rules, faults and settings.

These tables are written by whoever steers and read by every request; the tasks they shape are
`sandbox.tasks`'s. Rules steer one kind of task (prefetch by default, or purge, or both), so a test
can fail a URL's purge and not its prefetch.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import SplitResult, urlsplit

from . import faults as fault_kinds
from .database import Database
from .faults import Fault
from .tasks import NewTask

OUTCOMES: tuple[str, ...] = ("success", "failed", "timeout", "canceled", "invalid", "unknown", "rejected")
"""What a rule can make of a target, in neutral words; each service renders them in its own vocabulary.

`invalid` = the origin answered 4xx/5xx; `unknown` = the cloud lost track (UCloud's `unknow`);
`rejected` = refused at submit time (EdgeOne: FailedList; CDN and UCloud: the whole call fails).
"""

SERVICES: tuple[str, ...] = ("teo", "cdn", "ucloud")
"""Names the sandbox uses for its emulated services: in the task table, the request log and rules."""

KINDS: tuple[str, ...] = ("prefetch", "purge")
"""The kinds of task: each has its own actions, history and quota at every cloud."""

DEFAULT_FAILURES: dict[str, tuple[str, str]] = {
    # outcome -> (FailType, FailMessage); FailType values are the ones EdgeOne documents. `{kind}` is
    # the task's kind.
    "failed": ("originPullFailed", "origin returned HTTP 502"),
    "timeout": ("taskFailed", "{kind} timed out"),
    "canceled": ("taskFailed", "{kind} task canceled"),
    "invalid": ("originPullFailed", "origin returned HTTP 404"),
    "unknown": ("taskFailed", "{kind} status unknown"),
    "rejected": ("", "target rejected by a sandbox rule"),
}


Value = float | int | str
"""A setting's value: a number, or one word of its `choices`."""


@dataclass(frozen=True)
class _Setting:
    kind: Callable[[Any], Value]
    default: Value
    minimum: float
    help: str
    choices: tuple[str, ...] = ()  # a word setting: one of these (`kind` is str, `minimum` unused)


SETTINGS: dict[str, _Setting] = {
    "progress_seconds": _Setting(float, 1.0, 0.0, "seconds a new task stays `processing`"),
    "prefetch_batch": _Setting(int, 1000, 1, "most targets accepted in one submit"),
    "prefetch_daily": _Setting(int, 10000, 0, "targets accepted per zone per Beijing-time day"),
    "rate_limit_per_second": _Setting(int, 20, 1, "requests per (secret id, service, action) per second"),
    "cdn_push_batch": _Setting(int, 500, 1, "most URLs in one Tencent CDN PushUrlsCache"),
    "cdn_push_daily_mainland": _Setting(int, 1000, 0, "CDN prefetch URLs per Beijing-time day, mainland"),
    "cdn_push_daily_overseas": _Setting(int, 1000, 0, "CDN prefetch URLs per Beijing-time day, overseas"),
    "cdn_history_days": _Setting(int, 30, 1, "days of CDN push history DescribePushTasks returns"),
    "cdn_history_max_limit": _Setting(int, 1000, 1, "largest Limit CDN DescribePushTasks serves (undocumented)"),
    "cdn_history_over_limit": _Setting(str, "refuse", 0, "what CDN DescribePushTasks does with a larger Limit: "
                                       "refuse (InvalidParameter.CdnParamError) or cap (fewer rows)",
                                       choices=("refuse", "cap")),
    "ucloud_prefetch_interval": _Setting(float, 10.0, 0.0, "seconds between UCloud prefetch submits, per account"),
    "ucloud_prefetch_batch": _Setting(int, 1000, 1, "most URLs in one UCloud PrefetchNewUcdnDomainCache"),
    "ucloud_prefetch_daily": _Setting(int, 500, 0, "UCloud prefetch URLs per domain per Beijing-time day"),
    "purge_batch": _Setting(int, 1000, 1, "most URLs in one EdgeOne URL purge (CreatePurgeTask)"),
    "purge_daily": _Setting(int, 10000, 0, "EdgeOne URL purges per zone per Beijing-time day"),
    "cdn_purge_batch": _Setting(int, 1000, 1, "most URLs in one Tencent CDN PurgeUrlsCache"),
    "cdn_purge_daily_mainland": _Setting(int, 10000, 0, "CDN URL purges per Beijing-time day, mainland"),
    "cdn_purge_daily_overseas": _Setting(int, 10000, 0, "CDN URL purges per Beijing-time day, overseas"),
    "ucloud_refresh_batch": _Setting(int, 30, 1, "most URLs in one UCloud RefreshNewUcdnDomainCache"),
    "ucloud_refresh_daily": _Setting(int, 700, 0, "UCloud file refreshes per domain per Beijing-time day"),
    "ucloud_refresh_dir_daily": _Setting(int, 20, 0, "UCloud directory refreshes per domain per Beijing-time day"),
    "ucloud_refresh_interval": _Setting(float, 0.0, 0.0, "seconds between UCloud refresh submits, per account "
                                                         "(undocumented: none by default)"),
    "edge_ttl_seconds": _Setting(float, 86400.0, 0.0, "how long an edge keeps a copy (hosts without their own TTL)"),
}


@dataclass(frozen=True)
class Rule:
    """A steering rule: targets matching `pattern` (fnmatch, case-sensitive) get `outcome`.

    Rules are global (whichever cloud prefetches the URL) unless `service` names one cloud, so a
    test can make one URL fail on one cloud only. A rule steers the tasks of its `kind` (None: both).
    """

    id: int
    pattern: str
    outcome: str
    fail_type: str | None
    fail_message: str | None
    delay_seconds: float | None
    service: str | None = None
    kind: str | None = "prefetch"

    def matches(self, url: str) -> bool:
        return fnmatchcase(url, self.pattern)

    def applies(self, url: str, service: str | None, kind: str = "prefetch") -> bool:
        """Matches `url`, is global or scoped to `service`, and steers `kind`'s tasks."""
        return (self.service is None or self.service == service) and self.kind in (None, kind) and self.matches(url)

    def failure(self, kind: str = "prefetch") -> tuple[str, str]:
        """(FailType, FailMessage) for this outcome on a `kind` task: the rule's own, else the outcome's default."""
        default_type, default_message = DEFAULT_FAILURES.get(self.outcome, ("", ""))
        return (
            default_type if self.fail_type is None else self.fail_type,
            default_message.format(kind=kind) if self.fail_message is None else self.fail_message,
        )


@lru_cache(maxsize=8192)
def split_url(url: str) -> SplitResult:
    """``urlsplit`` remembered for a submit's worth of URLs: the submit checks each URL and then files
    it under its host, and the standard library's own cache (128) holds none of 1,000 URLs that long."""
    return urlsplit(url)


def pick_rule(rules: Sequence[Rule], url: str, service: str | None = None, kind: str = "prefetch") -> Rule | None:
    """The rule deciding `url` on `service` for a `kind` task: the most recently added match wins (so a
    rule can override).

    Rules scoped to another service or kind are skipped; with `service=None` only global rules count.
    """
    for rule in sorted(rules, key=lambda r: r.id, reverse=True):
        if rule.applies(url, service, kind):
            return rule
    return None


def steered_tasks(steering: Steering, service: str, urls: Iterable[str], *, now: float,
                  kind: str = "prefetch") -> list[NewTask]:
    """The `kind` task each URL of a submit to `service` at `now` becomes, as the rules decide, in order.

    No rule: success after `progress_seconds`. Every service refuses `rejected` ones its own way.
    """
    rules = steering.rule_objects()
    progress = float(steering.get_setting("progress_seconds"))
    tasks: list[NewTask] = []
    for url in urls:
        rule = pick_rule(rules, url, service, kind)
        outcome = rule.outcome if rule else "success"
        fail_type, fail_message = rule.failure(kind) if rule and outcome != "success" else ("", "")
        delay = rule.delay_seconds if rule and rule.delay_seconds is not None else progress
        host = (split_url(url).hostname or "").lower()
        tasks.append(NewTask(url, host, now + delay, outcome, fail_type, fail_message))
    return tasks


class Steering(Database):
    """The rules, faults and settings tables."""

    # ----- rules ---------------------------------------------------------------------------------

    def add_rule(
        self,
        pattern: str,
        outcome: str,
        *,
        fail_type: str | None = None,
        fail_message: str | None = None,
        delay_seconds: float | None = None,
        service: str | None = None,
        kind: str | None = "prefetch",
    ) -> Rule:
        """Steer targets matching `pattern`; later-added rules win over earlier ones.

        `service` ("teo", "cdn", "ucloud") limits the rule to that cloud; None applies it everywhere.
        `kind` ("prefetch", the default, or "purge") is the tasks it steers; None steers both.
        """
        if service is not None and service not in SERVICES:
            raise ValueError(f"service must be one of {', '.join(SERVICES)} (or None for all); got {service!r}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)} (or None for both); got {kind!r}")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty fnmatch glob, e.g. '*/broken/*'")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}; got {outcome!r}")
        if outcome == "success" and (fail_type is not None or fail_message is not None):
            raise ValueError("fail_type/fail_message make no sense with outcome 'success'")
        if delay_seconds is not None:
            delay_seconds = float(delay_seconds)
            if not math.isfinite(delay_seconds) or delay_seconds < 0:
                raise ValueError(f"delay_seconds must be a finite number >= 0; got {delay_seconds!r}")
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO rules (pattern, outcome, fail_type, fail_message, delay_seconds, service, kind)"
                " VALUES (?,?,?,?,?,?,?)",
                (pattern, outcome, fail_type, fail_message, delay_seconds, service, kind),
            )
            rule_id = int(cur.lastrowid or 0)
        return Rule(rule_id, pattern, outcome, fail_type, fail_message, delay_seconds, service, kind)

    def clear_rules(self) -> None:
        """Forget every rule. Existing tasks keep the outcome they were created with."""
        with self._write() as db:
            db.execute("DELETE FROM rules")

    def rule_objects(self) -> list[Rule]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM rules ORDER BY id").fetchall()
        return [
            Rule(r["id"], r["pattern"], r["outcome"], r["fail_type"], r["fail_message"], r["delay_seconds"],
                 r["service"], r["kind"])
            for r in rows
        ]

    def rules(self) -> list[dict[str, Any]]:
        """Rules in the order they were added (the last matching one wins)."""
        return [asdict(r) for r in self.rule_objects()]

    # ----- faults --------------------------------------------------------------------------------

    def add_fault(
        self,
        kind: str,
        *,
        service: str | None = None,
        action: str | None = None,
        probability: float = 1.0,
        count: int | None = None,
        executed: bool = False,
        delay_seconds: float | None = None,
        seed: int | None = None,
        status: int | None = None,
        field: str | None = None,
    ) -> int:
        """Make matching requests fail like `kind` (see `sandbox.faults`); returns the fault's id.

        `service`/`action` scope it (None = any). It fires with `probability`, at most `count` times;
        its draws come from `seed` and a counter kept here, so the same seed and the same request
        sequence give the same firings (seed None: a random one, shown by `faults()`). `executed`
        (http_5xx, slow, reset) performs the action before failing. `delay_seconds`: slow's sleep
        (default 35) or clock_skew's offset (default 600). `status`: http_5xx's code (default 502).
        `field`: the dotted path missing_field/null_field hits (default: one per action).
        """
        values = fault_kinds.normalize(
            kind, service=service, action=action, probability=probability, count=count, executed=executed,
            delay_seconds=delay_seconds, status=status, field=field, seed=seed, services=SERVICES,
        )
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO faults (kind, service, action, probability, count, executed, delay_seconds,"
                " status, field, seed) VALUES (:kind, :service, :action, :probability, :count, :executed,"
                " :delay_seconds, :status, :field, :seed)",
                values,
            )
            return int(cur.lastrowid or 0)

    def add_chaos(
        self,
        throttle: float = 0.3,
        server_error: float = 0.05,
        reset: float = 0.02,
        executed_share: float = 0.5,
        seed: int = 0,
    ) -> list[int]:
        """A background of everyday failures on every service; returns the ids of the faults added.

        `throttle`, `server_error` (HTTP 502) and `reset` are shares of all requests (the stored
        probabilities compensate for earlier faults winning); `executed_share` of the server errors
        and resets happen after the action ran (ambiguous), the rest before (clean).
        """
        plan = fault_kinds.chaos_plan(
            throttle=throttle, server_error=server_error, reset=reset, executed_share=executed_share, seed=seed,
        )
        return [self.add_fault(**spec) for spec in plan]

    def clear_faults(self) -> None:
        """Forget every fault (the request log keeps what they did)."""
        with self._write() as db:
            db.execute("DELETE FROM faults")

    def fault_objects(self) -> list[Fault]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM faults ORDER BY id").fetchall()
        return [_fault(r) for r in rows]

    def faults(self) -> list[dict[str, Any]]:
        """Faults in evaluation (insertion) order, with their counters `evaluated` and `fired`."""
        return [asdict(f) for f in self.fault_objects()]

    def trigger_fault(self, service: str | None, action: str | None) -> Fault | None:
        """The fault to inject into one request to (`service`, `action`), or None.

        Matching faults are drawn in insertion order until one fires; every draw advances that
        fault's counter, atomically with the decision, so concurrent requests (from any process)
        never exceed a `count` and a run replays identically. Without a matching fault (the common
        case) this is one read and no write.
        """
        if not any(f.matches(service, action) for f in self.fault_objects()):
            return None
        with self._write() as db:
            rows = db.execute("SELECT * FROM faults ORDER BY id").fetchall()
            for fault in (_fault(r) for r in rows):
                if not fault.matches(service, action):
                    continue
                fired = fault_kinds.fires(fault.seed, fault.evaluated, fault.probability)
                db.execute(
                    "UPDATE faults SET evaluated = evaluated + 1, fired = fired + ? WHERE id = ?",
                    (int(fired), fault.id),
                )
                if fired:
                    return Fault(**{**asdict(fault), "evaluated": fault.evaluated + 1, "fired": fault.fired + 1})
        return None

    # ----- settings ------------------------------------------------------------------------------

    def set_setting(self, key: str, value: Any) -> None:
        """Set one of SETTINGS; strings are accepted (the CLI passes them). ValueError if invalid."""
        spec = SETTINGS.get(key)
        if spec is None:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}")
        converted = _convert(key, spec, value)
        with self._write() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(converted)),
            )

    def get_setting(self, key: str) -> Value:
        spec = SETTINGS.get(key)
        if spec is None:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}")
        with self._connect() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return spec.default if row is None else spec.kind(json.loads(row["value"]))

    def settings(self) -> dict[str, Value]:
        """Every setting with its effective value (defaults included)."""
        with self._connect() as db:
            stored = {r["key"]: json.loads(r["value"]) for r in db.execute("SELECT key, value FROM settings")}
        return {k: (s.kind(stored[k]) if k in stored else s.default) for k, s in SETTINGS.items()}


def _convert(key: str, spec: _Setting, value: Any) -> Value:
    if spec.choices:
        if value not in spec.choices:
            raise ValueError(f"{key} must be one of {', '.join(spec.choices)}; got {value!r}")
        return str(value)
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number; got {value!r}") from None
    if not math.isfinite(number) or number < spec.minimum:
        raise ValueError(f"{key} must be >= {spec.minimum:g}; got {value!r}")
    if spec.kind is int:
        if number != int(number):
            raise ValueError(f"{key} must be a whole number; got {value!r}")
        return int(number)
    return number


def _fault(r: sqlite3.Row) -> Fault:
    return Fault(
        id=r["id"], kind=r["kind"], service=r["service"], action=r["action"], probability=r["probability"],
        count=r["count"], executed=bool(r["executed"]), delay_seconds=r["delay_seconds"], status=r["status"],
        field=r["field"], seed=r["seed"], evaluated=r["evaluated"], fired=r["fired"],
    )
