"""The command's progress: a live display on a terminal (rich), plain lines anywhere else.

On a terminal a person watches: one bar per shard and kind of task (submitting, then warm, failed and
running, and the wait left), redrawn on every poll, with every other line (submits, warnings) printed
above the bars. In CI and in a pipe nobody redraws anything: the plain lines every 30 s that ``pulumi
up`` shows too (resource/progress.py ``Progress.line``), so a log reads the same as the engine's.
``--progress`` chooses; ``auto`` is live only on a terminal, outside CI, with a terminal that can draw.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping, Optional, TextIO

from ..model.status import TaskKind
from ..resource.progress import Progress, ProgressSink

MODES = ("auto", "live", "plain")


def live_wanted(mode: str, stream: TextIO, env: Mapping[str, str]) -> bool:
    """Whether to draw: ``live``/``plain`` as asked; ``auto`` on a terminal that is not CI's nor dumb."""
    if mode != "auto":
        return mode == "live"
    isatty = getattr(stream, "isatty", None)
    ci = env.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return bool(isatty and isatty()) and not ci and env.get("TERM", "") != "dumb"


class ProgressDisplay:
    """Where the run's lines and progress go: ``log`` for lines, ``on_progress`` for reports (None: plain).

    ``showing()`` draws the bars while the apply submits and waits; outside it (the plan, the prompt)
    lines go straight to the stream.
    """

    def __init__(self, stream: TextIO, live: bool, *, width: Optional[int] = None):
        self.stream = stream
        self._lines = ""
        self._bars = None  # rich's Progress when live
        self._rows: dict[tuple[str, TaskKind], object] = {}
        if live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, TextColumn
            from rich.table import Column

            self._console = Console(file=stream, force_terminal=True, highlight=False, soft_wrap=True,
                                    width=width)  # None: the terminal's
            # The figures first: on a narrow terminal the shard's long name is what gets cut.
            self._bars = Bars(MofNCompleteColumn(), BarColumn(bar_width=16),
                              TextColumn("{task.fields[detail]}", table_column=Column(no_wrap=True)),
                              TextColumn("{task.description}", table_column=Column(no_wrap=True)),
                              console=self._console, transient=False, auto_refresh=True, refresh_per_second=4)

    @property
    def live(self) -> bool:
        return self._bars is not None

    @property
    def log(self) -> TextIO:
        return self if self.live else self.stream  # type: ignore[return-value]

    @property
    def on_progress(self) -> Optional[ProgressSink]:
        return self.update if self.live else None

    def write(self, text: str) -> int:
        """Lines printed above the bars (whole lines only: a partial one waits for its end)."""
        self._lines += text
        *whole, self._lines = self._lines.split("\n")
        for line in whole:
            self._console.print(line, markup=False, highlight=False)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return True

    def update(self, progress: Progress) -> None:
        """Draw one report: a shard's bar of one kind, created when first heard of."""
        assert self._bars is not None
        key = (progress.where, progress.kind)
        if key not in self._rows:
            self._rows[key] = self._bars.add_task("", total=progress.total, detail="")
        label = progress.where + (" (purge)" if progress.kind is TaskKind.PURGE else "")
        detail = progress.detail()
        # The name gets what the figures leave of the line (a narrow terminal cuts it, never the figures).
        room = max(12, self._console.width - len(detail) - 2 * len(str(progress.total)) - 24)
        self._bars.update(self._rows[key], total=progress.total, detail=detail,  # type: ignore[arg-type]
                          description=label if len(label) <= room else label[:room - 1] + "…",
                          completed=progress.settled if progress.waiting else progress.submitted)

    @contextmanager
    def showing(self) -> Iterator["ProgressDisplay"]:
        """Draw the bars for the duration (nothing to do for plain lines)."""
        if self._bars is None:
            yield self
            return
        with self._bars:
            yield self
        if self._lines:
            self.write("\n")
