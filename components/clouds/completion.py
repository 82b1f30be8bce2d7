"""How long this process's tasks on one scope take to finish: when to read a new task first.

Why: a task read before it finished costs a read and waits a backoff for the next; one read long
after it finished keeps its ``up`` waiting (the last task of an ``up`` sets its end). No cloud says
how long a task takes (a real CDN's prefetch runs minutes, the sandbox's 0.5 s), and its row times
are whole seconds (learning from them put the first reads of 0.5 s tasks before they finished). So
the estimate comes from our own reads, on our own clock, from when a task's submit returned:

- a read that started ``age`` after and saw the task running: it takes longer than ``age``
  (``running_at``, the longest such age);
- a read answered ``age`` after that saw it finished: it takes at most ``age`` (``done_by``, the
  shortest such age).

A new task is first read at ``done_by``; before any finished, at ``initial``, then at twice the
longest age seen running, so a slow cloud costs a few early reads a scope, not a few a task. An
early finished read may overstate the time (a task read late), so every ``TRIAL_EVERY``-th task is
first read halfway between the bounds while they are further apart than ``CLOSE``: a trial seen
finished lowers ``done_by``, one seen running raises ``running_at``. A task seen running past
``done_by`` means the tasks slowed down: ``done_by`` is forgotten and learnt again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

TRIAL_EVERY = 8
CLOSE = 0.1  # bounds this close (a fraction of done_by, at least MIN_GAP) need no more trials
MIN_GAP = 0.05


@dataclass
class Completion:
    """One scope's bounds on its tasks' completion time (seconds after the submit returned)."""

    initial: float
    running_at: Optional[float] = None
    done_by: Optional[float] = None
    _registered: int = 0

    def first_read(self) -> float:
        """The age at which a task registered now is read first (a trial every ``TRIAL_EVERY``-th task)."""
        self._registered += 1
        usual = self.usual()
        trial = self._trial()
        if trial is not None and self._registered % TRIAL_EVERY == 0:
            return trial
        return usual

    def usual(self) -> float:
        """The first-read age of a task that is not a trial."""
        if self.done_by is not None:
            return self.done_by
        if self.running_at is not None:
            return max(self.initial, 2 * self.running_at)
        return self.initial

    def seen(self, started: float, answered: float, finished: bool) -> None:
        """A read of one task that started ``started`` s after its submit returned and was answered
        ``answered`` s after; ``finished``: every URL of it done."""
        if finished:
            self.done_by = answered if self.done_by is None else min(self.done_by, answered)
            return
        self.running_at = started if self.running_at is None else max(self.running_at, started)
        if self.done_by is not None and self.running_at >= self.done_by:
            self.done_by = None  # slower than it was: learn the finished bound again

    def _trial(self) -> Optional[float]:
        if self.done_by is None:
            return None
        low = self.running_at or 0.0
        if self.done_by - low <= max(CLOSE * self.done_by, MIN_GAP):
            return None
        return (low + self.done_by) / 2
