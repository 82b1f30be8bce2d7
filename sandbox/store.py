"""SQLite persistence for the sandbox: `SandboxStore`, one object over every table of one file.

Each table has its own module: `database` (the file: schema, upgrades, connections), `tasks` (task
rows and their quota), `history` (history pages), `steering` (rules, faults, settings, UCloud
domains), `accounts` (who owns which zone and domain), `rate_table` (the rate limit's count), `edge`
(origin versions, cache TTLs, the edge replayed from tasks) and `request_log`. The store composes them
so that a test, the CLI or the server steers a sandbox in any process with one object and one path; the
names other code imports from here stay importable from here.
"""

from __future__ import annotations

from typing import Sequence

from .accounts import AccountTable, Ownership
from .edge import DEFAULT_VERSION, EdgeCopy, EdgeModel, TaskSummary
from .history import TaskHistory, TaskQuery, task_query
from .origin import S3Origin
from .rate_table import RateTable
from .request_log import RequestLog
from .steering import DEFAULT_FAILURES, KINDS, OUTCOMES, SERVICES, SETTINGS, Rule, pick_rule
from .tasks import (
    BEIJING_OFFSET_SECONDS,
    TASK_FIELDS,
    Charge,
    NewTask,
    QuotaExceeded,
    StoredTask,
    SubmitTooSoon,
    TaskTable,
    beijing_day_bounds,
    task_progress,
)

__all__ = [
    "BEIJING_OFFSET_SECONDS", "DEFAULT_FAILURES", "DEFAULT_VERSION", "KINDS", "OUTCOMES", "SERVICES", "SETTINGS",
    "TASK_FIELDS", "Charge", "EdgeCopy", "NewTask", "Ownership", "QuotaExceeded", "Rule", "S3Origin", "SandboxStore",
    "StoredTask",
    "SubmitTooSoon", "TaskQuery", "TaskSummary", "beijing_day_bounds", "pick_rule", "task_progress", "task_query",
]


class SandboxStore(TaskHistory, TaskTable, EdgeModel, RequestLog, AccountTable, RateTable):
    """All sandbox state in one SQLite file; every method is safe to call from any thread/process."""

    def __repr__(self) -> str:
        return f"SandboxStore({self.path!r})"

    def create_tasks(self, service: str, scope: str, job_id: str, tasks: Sequence[NewTask], *, now: float,
                     kind: str = "prefetch", **options: object) -> None:
        """TaskTable.create_tasks; a prefetch first logs what a mapped S3 origin serves (sandbox/edge.py)."""
        if kind == "prefetch" and tasks:
            self.snapshot_origins([t.target for t in tasks], now)
        super().create_tasks(service, scope, job_id, tasks, now=now, kind=kind, **options)  # type: ignore[arg-type]

    def reset(self) -> None:
        """Drop tasks, rules, faults, quota usage, origin versions and the log. Settings, UCloud domains,
        owners (accounts), cache TTLs and S3 origins are kept (configuration)."""
        with self._write() as db:
            for table in ("tasks", "rules", "faults", "usage", "requests", "origin_versions"):
                db.execute(f"DELETE FROM {table}")
