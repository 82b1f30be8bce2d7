"""How long this process's tasks on one scope take to finish: when to read a new task first.

Why: a task read before it finished costs a read and waits a backoff for the next; one read long
after it finished keeps its ``up`` waiting (the last task of an ``up`` sets its end). No cloud says
how long a task takes (a real CDN's prefetch runs minutes, the sandbox's 0.5 s), and its row times
are whole seconds (learning from them put the first reads of 0.5 s tasks before they finished). So
the age at which a new task is read first (``usual``, seconds after its submit returned, on our
clock) follows what our own reads of earlier tasks showed:

- a task seen finished by a read answered at ``answered``, never seen running at or after ``usual``:
  ``usual`` was long enough (it drops to ``answered`` if that is shorter, as after a trial);
- a task seen running at or after ``usual`` (``ran_late``) and finished later: ``usual`` was too
  short. It rises to that age, at most doubling per such task once some task finished within
  ``usual`` (one long task among short ones is not the new normal), and at once before (learning a
  slow cloud from the one-second start);
- every ``trial_every``-th task is read first at ``trial`` times ``usual``: seen finished then,
  ``usual`` drops to that age; so a ``usual`` that an early late read or a long task overstated
  comes down, a trial read at a time (at most one read in ``trial_every`` more). Like a search,
  the step grows while trials succeed and shrinks when one finds the task still running, so
  ``usual`` comes down fast from far above and then settles close above the tasks' length, where
  trials pause (``SETTLED``): they start afresh when ``usual`` rises, and after ``PAUSE`` trial slots
  (the tasks may have become quicker). Only a trial's own reads move its step: a task registered
  under an earlier, shorter ``usual`` is read early too, and tells nothing of the trials.

Tasks of one length then settle a little above it; tasks of varying length near the longer ones,
about one read each.
"""

from __future__ import annotations

from dataclasses import dataclass

TRIAL_EVERY = 8
TRIAL = 0.7  # the first trial's share of ``usual``
BOLDEST, MILDEST = 0.5, 0.95  # the trial's share after successes, after failures
SETTLED = 0.9  # trials this close to ``usual`` tell little: paused until ``usual`` rises, or PAUSE tasks
PAUSE = 8  # trials paused for this many trial slots (``trial_every`` tasks each)


@dataclass
class Completion:
    """One scope's estimate of its tasks' completion time (seconds after the submit returned)."""

    usual: float
    trial_every: int = TRIAL_EVERY  # one task in this many is a trial
    settled: bool = False  # a task finished within ``usual``: raises are bounded from now on
    trial: float = TRIAL
    _registered: int = 0
    _paused: int = 0  # tasks registered since trials paused

    def first_read(self) -> tuple[float, bool]:
        """The age at which a task registered now is read first, and whether that is a trial (every
        ``trial_every``-th task while trials still step far enough to tell something)."""
        self._registered += 1
        if self.trial >= SETTLED:
            self._paused += 1
            if self._paused >= PAUSE * self.trial_every:
                self.trial, self._paused = TRIAL, 0
        if self._registered % self.trial_every == 0 and self.trial < SETTLED:
            return self.trial * self.usual, True
        return self.usual, False

    def running(self, started: float, *, trial: bool) -> bool:
        """A read that started ``started`` s after a task's submit returned saw it running; True when that
        is at or after ``usual`` (the task ran late). ``trial``: the task was a trial (its step shrinks)."""
        if started >= self.usual:
            return True
        if trial:
            self.trial = min(MILDEST, (1 + self.trial) / 2)  # too early: the next trial steps less
        return False

    def finished(self, answered: float, *, ran_late: bool) -> None:
        """A task seen finished by a read answered ``answered`` s after its submit returned;
        ``ran_late``: a read that started at or after ``usual`` saw it running (``running`` said so)."""
        if not ran_late:
            if answered < self.usual:  # a trial that found the tasks quicker: the next one steps further
                self.usual, self.trial = answered, max(BOLDEST, self.trial - 0.1)
            self.settled = True
        elif answered > self.usual:
            self.usual = min(answered, 2 * self.usual) if self.settled else answered
            self.trial = TRIAL  # a new time: search below it again
