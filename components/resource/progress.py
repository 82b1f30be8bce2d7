"""How far one shard's tasks of one kind have come: the event the submitter and the poller report.

One home for what a progress report says: ``line()`` is the plain line ``pulumi up`` shows as a
diagnostic and a CI log keeps (written every ``PROGRESS_EVERY`` seconds while waiting), and the
``cdn-prefetch`` command's live display on a terminal (cli/progress.py) draws the same figures as a bar
on every poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ..clouds.base import CloudAdapter
from ..model.status import TaskKind


@dataclass(frozen=True)
class Progress:
    """One report: ``total`` targets of this kind's work, how many are submitted, and how they stand.

    While submitting, ``submitted`` grows and nothing is settled; while waiting, every target is
    submitted and ``done`` (warm or purged), ``failed`` and ``running`` add up to ``total``.
    """

    where: str          # ``set web on <cloud> zone z`` (the shard's scope, as messages name it)
    kind: TaskKind
    total: int
    submitted: int
    done: int = 0
    failed: int = 0
    running: int = 0
    seconds_left: Optional[int] = None  # of the wait; None while submitting

    @property
    def waiting(self) -> bool:
        return self.seconds_left is not None

    @property
    def settled(self) -> int:
        return self.done + self.failed

    def detail(self) -> str:
        """The figures after the count: ``submitting 400 of 1000`` or ``30 warm, 2 failed, 8 running; 245s left``."""
        if not self.waiting:
            noun = "purges" if self.kind is TaskKind.PURGE else "targets"
            return f"submitting: {self.submitted} of {self.total} {noun} sent"
        done = "done" if self.kind is TaskKind.PURGE else "warm"
        return f"{self.done} {done}, {self.failed} failed, {self.running} running; {self.seconds_left}s left"

    def line(self) -> str:
        """The plain progress line (the engine shows it as a diagnostic; CI logs keep it)."""
        if self.kind is TaskKind.PURGE:
            return f"{self.where}: {self.total} purges submitted: {self.detail()}\n"
        return f"{self.where}: {self.total} submitted: {self.detail()}\n"


def shard_scope(set_name: str, adapter: CloudAdapter) -> str:
    """How a report names its shard: ``set web on <cloud> zone z`` (one bar, one plain line)."""
    return f"set {set_name} on {adapter.describe_scope()}"


#: Who hears every report (the command's live display); without one, the poller writes plain lines.
ProgressSink = Callable[[Progress], None]
