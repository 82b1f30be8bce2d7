"""When a new task is read first (components/clouds/completion.py): bounds learnt from our own reads."""

import pytest

from components.clouds.completion import TRIAL_EVERY, Completion


def ages(completion: Completion, n: int) -> list[float]:
    return [completion.first_read() for _ in range(n)]


def test_before_any_read_a_task_is_read_first_at_the_initial_age():
    assert ages(Completion(1.0), 3) == [1.0, 1.0, 1.0]


def test_a_task_seen_finished_sets_the_first_read_of_the_next_ones():
    completion = Completion(1.0)
    completion.seen(1.0, 1.05, finished=True)
    assert completion.usual() == 1.05
    completion.seen(0.6, 0.62, finished=True)  # a shorter one: the shortest age seen finished counts
    assert completion.usual() == 0.62


def test_a_slow_cloud_doubles_the_first_read_instead_of_reading_every_task_early():
    completion = Completion(0.5)
    completion.seen(0.5, 0.55, finished=False)
    assert completion.usual() == 1.0
    completion.seen(30.0, 30.1, finished=False)  # a later read of a task still running
    assert completion.usual() == 60.0
    completion.seen(63.0, 63.2, finished=True)
    assert completion.usual() == 63.2


def test_trials_between_the_bounds_find_a_shorter_time_than_a_late_read_showed():
    completion = Completion(1.0)
    completion.seen(1.0, 1.05, finished=True)  # truly finished at 0.5, read late
    true_time = 0.5
    for _ in range(20 * TRIAL_EVERY):
        age = completion.first_read()
        completion.seen(age, age + 0.01, finished=age >= true_time)
    assert true_time <= completion.usual() <= true_time * 1.15
    # Close bounds: no more trials, every task is read at the usual age.
    assert set(ages(completion, 2 * TRIAL_EVERY)) == {completion.usual()}


def test_only_every_trial_every_th_task_is_a_trial():
    completion = Completion(1.0)
    completion.seen(1.0, 1.0, finished=True)
    read = ages(completion, 2 * TRIAL_EVERY)
    trials = [age for age in read if age != 1.0]
    assert trials == [0.5, 0.5]


@pytest.mark.parametrize("started", [0.8, 1.2])
def test_a_task_running_past_the_finished_bound_means_they_slowed_down(started):
    completion = Completion(0.5)
    completion.seen(0.9, 1.0, finished=True)
    completion.seen(started, started + 0.1, finished=False)
    if started >= 1.0:
        assert completion.done_by is None and completion.usual() == 2 * started
    else:
        assert completion.done_by == 1.0 and completion.usual() == 1.0
