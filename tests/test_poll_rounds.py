"""Poll rounds (components/clouds/poll_rounds.py): each due task's rows read once per round, one round for
every poller due on a scope, the cloud's query shape, and nothing taken as finished that was not seen so."""

import io
from contextlib import ExitStack
from datetime import timedelta

import pytest

from components.clouds.history import HistoryCache
from components.clouds.poll_rounds import PollRounds
from components.model.status import TargetState
from components.resource.converge import ShardSync
from components.resource.inputs import ShardInputs
from components.resource.poller import POLL_FIRST, POLL_MAX
from tests.fakes import FakeClock, RoundsCloud

URLS = tuple(f"https://cdn.example.com/{i}.js" for i in range(10))


def sync(cloud, clock, targets=URLS, wait="1m", rounds=None):
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", wait)
    shard = ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), history=HistoryCache())
    if rounds is not None:
        shard.prefetch.poller.rounds = rounds
    return shard


def submit(cloud, clock, urls):
    """One task as a submitter leaves it: (task id, (our time its submit returned, its URLs))."""
    result = cloud.submit(list(urls))
    return result.task_id, (clock(), frozenset(result.accepted))


@pytest.mark.parametrize("shape", ["task", "window"])
def test_an_up_reads_each_task_it_submitted_once_when_tasks_finish_before_their_first_poll(shape):
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads=shape, batch=3, finish_after=0.5)
    result = sync(cloud, clock).converge()
    assert result.plan.in_sync
    tasks = [t.task_id for t in result.new_tasks]
    assert len(tasks) == 4
    # Every task's rows were handed out once after the submits (the plan's read saw none of them) ...
    once = {"task-1": 3, "task-2": 3, "task-3": 3, "task-4": 1}
    if shape == "task":
        assert {task: cloud.rows_read.get(task) for task in tasks} == once
        assert sorted(cloud.id_reads) == sorted(tasks) and len(cloud.window_reads) == 1  # the plan's read only
    else:
        # ... but the scope's first due task, read by id to show the cloud's clock, which the first window
        # (from that task's second) holds again; the rest in bounded windows, ending no later than "now".
        [probe] = cloud.id_reads
        assert {task: cloud.rows_read.get(task) for task in tasks} == {**once, probe: 2 * once[probe]}
        polls = cloud.window_reads[1:]
        assert polls and all(until <= clock() for _, until in polls)


def test_a_task_still_running_is_read_again_with_the_backoff_and_then_never_again():
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="task", finish_after=6.0)
    result = sync(cloud, clock).converge()
    assert result.plan.in_sync
    # Polls at 1, 3 (1 + 2) and 7 (3 + 4) s after the submit: running, running, finished.
    assert cloud.id_reads == ["task-1"] * 3
    assert cloud.rows_read["task-1"] == 3 * len(URLS)


def test_one_round_serves_every_poller_due_on_the_scope_and_each_task_once():
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="task", batch=5, finish_after=0.5)
    rounds, history = PollRounds(), HistoryCache()
    a = dict([submit(cloud, clock, URLS[:5])])
    b = dict([submit(cloud, clock, URLS[5:])])
    with rounds.awaiting(cloud, a, first=POLL_FIRST, most=POLL_MAX) as mine_a, \
            rounds.awaiting(cloud, b, first=POLL_FIRST, most=POLL_MAX) as mine_b:
        clock.sleep(POLL_FIRST)
        rounds.poll(cloud, mine_a, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
        assert rounds.rounds == 1 and sorted(cloud.id_reads) == ["task-1", "task-2"]
        assert all(t.done for t in mine_a + mine_b)  # B's task was due too: read in A's round
        rounds.poll(cloud, mine_b, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
        assert rounds.rounds == 1 and len(cloud.id_reads) == 2  # nothing left to read for B
    assert {t.task_id: len(t.rows) for t in mine_b} == {"task-2": 5}


def test_a_round_reads_no_task_before_it_is_due():
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="task", batch=5, finish_after=0.5)
    rounds, history = PollRounds(), HistoryCache()
    early = dict([submit(cloud, clock, URLS[:5])])
    clock.sleep(0.6)
    late = dict([submit(cloud, clock, URLS[5:])])
    with rounds.awaiting(cloud, early, first=POLL_FIRST, most=POLL_MAX) as mine, \
            rounds.awaiting(cloud, late, first=POLL_FIRST, most=POLL_MAX) as theirs:
        clock.sleep(POLL_FIRST - 0.6)
        rounds.poll(cloud, mine, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
        assert cloud.id_reads == ["task-1"] and not theirs[0].done


def test_windows_never_read_again_the_rows_of_tasks_seen_finished():
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="window", batch=2, finish_after=0.5)
    rounds, history = PollRounds(), HistoryCache()
    awaited, mine = {}, []
    with ExitStack() as stack:
        for i in range(0, 10, 2):  # five tasks, 1.5 s apart, polled as they come (one poller per task)
            task = dict([submit(cloud, clock, URLS[i:i + 2])])
            awaited.update(task)
            mine += stack.enter_context(rounds.awaiting(cloud, task, first=POLL_FIRST, most=POLL_MAX))
            clock.sleep(1.5)
            rounds.poll(cloud, mine, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
        while not all(t.done for t in mine):
            clock.sleep(1.0)
            rounds.poll(cloud, mine, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
    # task-1 (the first due) read by id shows the cloud's clock; alone in its second, no window holds it again.
    assert cloud.id_reads == ["task-1"]
    assert cloud.rows_read == {task: 2 for task in awaited}
    windows = cloud.window_reads
    assert len(windows) >= 2 and all(later[0] > earlier[1] for earlier, later in zip(windows, windows[1:]))


def test_a_task_a_window_should_hold_but_does_not_list_is_read_by_id_not_taken_as_not_listed():
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="window", batch=5, finish_after=0.5)
    cloud.hidden_from_windows = {"task-2"}
    result = sync(cloud, clock).converge()
    assert result.plan.in_sync  # task-2's targets warm: read by id once the window showed no row of it
    assert cloud.id_reads.count("task-2") == 1


def test_a_task_listed_with_fewer_rows_than_it_was_sent_with_is_not_finished():
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="task", finish_after=0.5)
    result = cloud.submit(list(URLS))
    cloud.rows = [row for row in cloud.rows if row[0] != URLS[9]]  # the cloud does not list one target (yet)
    rounds, history = PollRounds(), HistoryCache()
    with rounds.awaiting(cloud, {result.task_id: (clock(), frozenset(URLS))}, first=POLL_FIRST,
                         most=POLL_MAX) as mine:
        clock.sleep(POLL_FIRST)
        rounds.poll(cloud, mine, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
    assert not mine[0].done and mine[0].due == clock() + timedelta(seconds=2 * POLL_FIRST)


def test_targets_whose_task_is_never_listed_stay_in_flight_until_the_deadline():
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="task", finish_after=0.5)
    cloud.hidden_from_windows = set()
    shard = sync(cloud, clock, wait="20s")
    submit_once = cloud.submit

    def submit_unlisted(urls):
        result = submit_once(urls)
        cloud.rows = []  # accepted, never listed
        return result

    cloud.submit = submit_unlisted
    result = shard.converge()
    assert {s.state for s in result.plan.statuses.values()} == {TargetState.QUEUED}
    assert [t.task_id for t in result.new_tasks] == ["task-1"]  # the task id is remembered all the same
    assert 3 <= len(cloud.id_reads) <= 6  # polled with the backoff up to the deadline, not every second


@pytest.mark.parametrize("others_sending", [False, True])
def test_the_last_task_is_read_when_due_once_nothing_more_is_being_sent(others_sending):
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="window", batch=5, finish_after=0.5)
    rounds, history = PollRounds(), HistoryCache()
    probe = dict([submit(cloud, clock, URLS[:5])])
    with rounds.awaiting(cloud, probe, first=POLL_FIRST, most=POLL_MAX) as first_task:
        clock.sleep(POLL_FIRST)
        rounds.poll(cloud, first_task, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
    assert first_task[0].done and cloud.id_reads == ["task-1"]  # read by id: the cloud's clock is known now
    clock.sleep(4.2)  # into the middle of a second
    last = dict([submit(cloud, clock, URLS[5:])])
    sent_at = clock()
    with rounds.awaiting(cloud, last, first=POLL_FIRST, most=POLL_MAX) as mine:
        clock.sleep(POLL_FIRST)
        rounds.poll(cloud, mine, clock, first=POLL_FIRST, most=POLL_MAX, history=history,
                    last_sent=lambda: clock() if others_sending else sent_at)
        # Nothing more sent: the window reaches the last whole second, the task's own. Others still sending:
        # it ends where every task is due (a second earlier), and the task is due again when that moves on.
        assert mine[0].done is not others_sending and cloud.id_reads == ["task-1"]
        if others_sending:
            assert mine[0].due <= clock() + timedelta(seconds=1)


def test_once_nothing_more_is_sent_a_window_reaches_into_the_current_second():
    """The last task of an up, due within its own second: read then, not after the second is whole."""
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="window", batch=5, finish_after=0.5)
    rounds, history = PollRounds(), HistoryCache()
    probe = dict([submit(cloud, clock, URLS[:5])])
    with rounds.awaiting(cloud, probe, first=0.5, most=POLL_MAX) as first_task:
        clock.sleep(0.5)
        rounds.poll(cloud, first_task, clock, first=0.5, most=POLL_MAX, history=history)
    assert first_task[0].done  # read by id: the cloud's clock is known now
    clock.sleep(4.1 - clock.monotonic())  # 4.1 s: early in a second
    last = dict([submit(cloud, clock, URLS[5:])])
    sent_at = clock()
    with rounds.awaiting(cloud, last, first=0.5, most=POLL_MAX) as mine:
        clock.sleep(0.5)  # x.6 s: due, finished, and its second not whole yet
        rounds.poll(cloud, mine, clock, first=0.5, most=POLL_MAX, history=history, last_sent=lambda: sent_at)
        assert mine[0].done and cloud.id_reads == ["task-1"]  # in a window that ends in this second
        assert cloud.window_reads[-1][1] == clock().replace(microsecond=0)


@pytest.mark.parametrize("finish_after", [0.5, 20.0])
def test_later_tasks_are_read_first_when_the_scopes_earlier_tasks_were_seen_finished(finish_after):
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="task", batch=1, finish_after=finish_after)
    rounds, history = PollRounds(), HistoryCache()
    seen_done_at, reads = [], []
    for i in range(40):  # one task at a time, as the last shard of an up waits for its last task
        task = dict([submit(cloud, clock, URLS[i % 10:i % 10 + 1])])
        sent, before = clock(), len(cloud.id_reads)
        with rounds.awaiting(cloud, task, first=POLL_FIRST, most=POLL_MAX) as mine:
            while not mine[0].done:
                clock.sleep(max(0.0, (mine[0].due - clock()).total_seconds()))
                rounds.poll(cloud, mine, clock, first=POLL_FIRST, most=POLL_MAX, history=history)
        seen_done_at.append((clock() - sent).total_seconds())
        reads.append(len(cloud.id_reads) - before)
    # Quick tasks: the first is read at POLL_FIRST, the last ones when they finish, not a second later.
    # Slow ones: after the first few, a task is read about when it finishes, once, not every backoff step.
    if finish_after < POLL_FIRST:
        assert seen_done_at[0] == POLL_FIRST
        assert all(finish_after <= age <= finish_after * 1.15 for age in seen_done_at[-8:])
    else:
        assert sum(reads[:1]) >= 4  # 1, 3, 7, 15 ... s: the backoff until the first finished
        assert all(age <= finish_after * 1.15 for age in seen_done_at[-8:])
        assert sum(reads[-8:]) <= 9
    # Trials cost a read each, a few per scope: not one extra read per task.
    assert sum(reads) <= len(reads) + 8 + (4 if finish_after > POLL_FIRST else 0)


def test_windows_learn_when_tasks_finish_from_trial_reads_by_id_and_read_the_last_task_then():
    """A window reads a second once its tasks are all due, so it never shows a task finishing sooner than
    the usual time: trials are read by id. Once nothing more is sent, the last task is read when due."""
    clock = FakeClock()
    cloud = RoundsCloud(clock, poll_reads="window", batch=1, finish_after=0.5)
    rounds, history = PollRounds(), HistoryCache()
    seen_done_at, calls = [], []
    for i in range(200):  # one task at a time, each the last of its up: nothing more being sent
        clock.sleep(1.13)
        task = dict([submit(cloud, clock, URLS[i % 10:i % 10 + 1])])
        sent, before = clock(), len(cloud.id_reads) + len(cloud.window_reads)
        with rounds.awaiting(cloud, task, first=POLL_FIRST, most=POLL_MAX) as mine:
            while not mine[0].done:
                clock.sleep(max(0.0, (mine[0].due - clock()).total_seconds()))
                rounds.poll(cloud, mine, clock, first=POLL_FIRST, most=POLL_MAX, history=history,
                            last_sent=lambda: sent)
        seen_done_at.append((clock() - sent).total_seconds())
        calls.append(len(cloud.id_reads) + len(cloud.window_reads) - before)
    assert seen_done_at[0] >= POLL_FIRST
    assert all(age <= 0.5 * 1.15 for age in seen_done_at[-10:])  # learnt: read when it finishes
    assert sum(calls) <= len(calls) + 12  # the clock probe and a few trials by id
