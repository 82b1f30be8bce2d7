"""SQLite persistence for the sandbox: `SandboxStore`, one object over every table of one file.

Each table has its own module: `database` (the file: schema, upgrades, connections), `tasks` (task
rows and their quota), `history` (history pages), `steering` (rules, faults, settings, UCloud
domains) and `request_log`. The store composes them so that a test, the CLI or the server steers a
sandbox in any process with one object and one path; the names other code imports from here stay
importable from here.
"""

from __future__ import annotations

from .history import TaskHistory, TaskQuery, task_query
from .request_log import RequestLog
from .steering import DEFAULT_FAILURES, OUTCOMES, SERVICES, SETTINGS, Rule, Steering, pick_rule
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
    "BEIJING_OFFSET_SECONDS", "DEFAULT_FAILURES", "OUTCOMES", "SERVICES", "SETTINGS", "TASK_FIELDS",
    "Charge", "NewTask", "QuotaExceeded", "Rule", "SandboxStore", "StoredTask", "SubmitTooSoon",
    "TaskQuery", "beijing_day_bounds", "pick_rule", "task_progress", "task_query",
]


class SandboxStore(TaskHistory, TaskTable, Steering, RequestLog):
    """All sandbox state in one SQLite file; every method is safe to call from any thread/process."""

    def __repr__(self) -> str:
        return f"SandboxStore({self.path!r})"

    def reset(self) -> None:
        """Drop tasks, rules, faults, quota usage and the log. Settings and UCloud domains are kept (configuration)."""
        with self._write() as db:
            for table in ("tasks", "rules", "faults", "usage", "requests"):
                db.execute(f"DELETE FROM {table}")
