"""The command's progress (components/cli/progress.py, resource/progress.py): live bars on a terminal, plain
lines in CI and pipes; the same figures either way."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
import time

import pytest

from components.cli.main import main
from components.cli.progress import ProgressDisplay, live_wanted
from components.model.status import TaskKind
from components.resource.progress import Progress
from sandbox import SandboxStore
from tests.stacks import PROJECT

ESCAPE = "\x1b["


def plain(text: str) -> str:
    """What a person reads: the drawing's escape sequences taken out."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("mode, stream, env, live", [
    ("auto", Tty(), {}, True),
    ("auto", Tty(), {"CI": "true"}, False),
    ("auto", Tty(), {"CI": "false"}, True),
    ("auto", Tty(), {"TERM": "dumb"}, False),
    ("auto", io.StringIO(), {}, False),  # a pipe or a file
    ("live", io.StringIO(), {"CI": "true"}, True),
    ("plain", Tty(), {}, False),
])
def test_auto_draws_only_on_a_terminal_outside_ci(mode, stream, env, live):
    assert live_wanted(mode, stream, env) is live


def test_the_plain_line_says_what_the_bar_shows():
    waiting = Progress("set web on edgeone zone z", TaskKind.PREFETCH, 40, 40, 30, 2, 8, 245)
    assert waiting.line() == "set web on edgeone zone z: 40 submitted: 30 warm, 2 failed, 8 running; 245s left\n"
    purging = Progress("set web on edgeone zone z", TaskKind.PURGE, 3, 3, 1, 0, 2, 9)
    assert purging.line() == "set web on edgeone zone z: 3 purges submitted: 1 done, 0 failed, 2 running; 9s left\n"
    sending = Progress("set web on edgeone zone z", TaskKind.PREFETCH, 1000, 400)
    assert not sending.waiting and sending.detail() == "submitting: 400 of 1000 targets sent"


def test_the_display_prints_lines_above_the_bars_and_redraws_a_bar_per_shard_and_kind():
    stream = io.StringIO()
    display = ProgressDisplay(stream, live=True, width=200)
    with display.showing():
        display.log.write("set web: submitted 40 targets as ")
        display.log.write("task t-1 on zone z\n")
        display.on_progress(Progress("set web on zone z", TaskKind.PREFETCH, 40, 40, 30, 2, 8, 245))
        display.on_progress(Progress("set web on zone z", TaskKind.PURGE, 3, 3, 3, 0, 0, 9))
        display.on_progress(Progress("set web on zone z", TaskKind.PREFETCH, 40, 40, 38, 2, 0, 200))
    drawn = stream.getvalue()
    assert ESCAPE in drawn  # drawn, not printed
    shown = plain(drawn)
    assert "set web: submitted 40 targets as task t-1 on zone z" in shown  # a split write is one line
    assert "40/40" in shown and "38 warm, 2 failed, 0 running; 200s left" in shown
    assert "set web on zone z (purge)" in shown and "3 done, 0 failed, 0 running" in shown


def cli(*argv: str, err: io.StringIO, env: dict) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue()


def test_apply_draws_live_bars_and_keeps_its_record_and_lines(example_project):
    err = io.StringIO()
    code, out = cli("apply", "-C", str(example_project), "--yes", "--progress", "live", err=err, env={})
    shown = err.getvalue()
    assert code == 0, shown
    assert json.loads(out)["prefetch"]["sets"]["site-assets"]["destinations"]  # the audit record as ever
    assert ESCAPE in shown and "5/5" in shown and "5 warm, 0 failed, 0 running" in shown
    assert "submitted 5 targets as task" in shown and "apply: 5 of 5 targets warm" in shown


def test_apply_in_ci_or_a_pipe_writes_plain_lines_only(example_project):
    err = io.StringIO()
    code, _ = cli("apply", "-C", str(example_project), "--yes", err=err, env={"CI": "true"})
    assert code == 0 and ESCAPE not in err.getvalue() and "apply: 5 of 5 targets warm" in err.getvalue()


def test_apply_on_a_real_terminal_draws_by_itself(example_project):
    """Through a pseudo-terminal, as a person runs it: auto finds the terminal (CI unset) and draws."""
    SandboxStore(example_project / ".sandbox" / "sandbox.db").set_setting("progress_seconds", 1.5)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(PROJECT), NO_PROXY="127.0.0.1,localhost", TERM="xterm")
    leader, follower = pty.openpty()
    apply = subprocess.Popen([sys.executable, "-m", "components.cli", "apply", "--yes"], cwd=example_project,
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert apply.wait(30) == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert ESCAPE in text and "5/5" in text and "running;" in text
