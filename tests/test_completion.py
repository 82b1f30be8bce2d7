"""When a new task is read first (components/clouds/completion.py): learnt from our own reads."""

import math
import random

from components.clouds.completion import PAUSE, TRIAL, TRIAL_EVERY, Completion


def ages(completion: Completion, n: int) -> list[float]:
    return [completion.first_read()[0] for _ in range(n)]


def simulate(completion: Completion, lengths, *, backoff: float = 15.0) -> tuple[list[float], list[int]]:
    """Tasks one after another, each read first when ``completion`` says, then every ``backoff`` s, as
    the poll rounds do (a trial seen running: next at the usual age). Returns each task's first-read age
    and its reads."""
    first_reads, reads = [], []
    for length in lengths:
        age, trial = completion.first_read()
        first_reads.append(age)
        late, n = False, 1
        while age < length:
            late = completion.running(age, trial=trial) or late
            trial = False  # a trial at its first read only
            age = completion.usual if not late else age + backoff
            n += 1
        completion.finished(age, ran_late=late)
        reads.append(n)
    return first_reads, reads


def test_before_any_read_a_task_is_read_first_at_the_initial_age_but_for_trials():
    read = ages(Completion(1.0), 2 * TRIAL_EVERY)
    assert [age for age in read if age != 1.0] == [TRIAL, TRIAL]
    assert read.index(TRIAL) == TRIAL_EVERY - 1


def test_a_trial_seen_finished_lowers_the_usual_age_and_a_later_read_does_not():
    completion = Completion(1.0)
    completion.finished(1.05, ran_late=False)  # read at 1.0
    assert completion.usual == 1.0
    completion.finished(0.72, ran_late=False)  # a trial read at 0.7
    assert completion.usual == 0.72


def test_quick_tasks_settle_a_little_above_their_length():
    completion = Completion(1.0)
    first_reads, reads = simulate(completion, [0.5] * 200, backoff=2.0)
    assert 0.5 <= completion.usual <= 0.5 * 1.15  # the trials' steps shrink as they fail, then stop
    assert first_reads[0] == 1.0
    assert sum(reads[100:]) <= 100 + math.ceil(100 / TRIAL_EVERY)  # a failed trial costs one read


def test_a_slow_cloud_is_learnt_from_the_first_task_not_doubled_step_by_step():
    completion = Completion(1.0)
    simulate(completion, [60.0])
    assert completion.usual >= 60.0
    first_reads, reads = simulate(completion, [60.0] * 20)
    assert sum(reads) <= 20 + 3 and max(first_reads) <= 76.0


def test_one_long_task_among_short_ones_does_not_set_the_usual_age():
    completion = Completion(1.0)
    simulate(completion, [30.0] * 20)
    before = completion.usual
    simulate(completion, [300.0])
    assert completion.usual <= 2 * before  # a doubling at most, once tasks finished within the usual age
    simulate(completion, [30.0] * 8 * TRIAL_EVERY)
    assert completion.usual <= 1.2 * before  # and the trials bring it back


def test_tasks_of_varying_length_are_read_first_near_the_longer_ones_about_once_each():
    rng, completion = random.Random(3), Completion(1.0)
    lengths = [rng.uniform(30, 90) for _ in range(300)]
    first_reads, reads = simulate(completion, lengths)
    assert max(first_reads[50:]) <= 2 * 90
    assert sum(reads[50:]) / 250 <= 1.6


def test_trials_pause_once_settled_and_start_again_when_tasks_take_longer():
    completion = Completion(1.0)
    simulate(completion, [0.5] * 200, backoff=2.0)
    assert not any(trial for _, trial in (completion.first_read() for _ in range(2 * TRIAL_EVERY)))
    simulate(completion, [5.0] * 4, backoff=2.0)  # the tasks now take longer: usual doubles up to it, trials resume
    assert completion.usual >= 5.0
    assert any(trial for _, trial in (completion.first_read() for _ in range(TRIAL_EVERY)))


def test_trials_resume_after_a_pause_so_tasks_that_became_quicker_are_read_sooner():
    completion = Completion(1.0)
    simulate(completion, [3.1] * 80, backoff=2.0)
    assert 3.1 <= completion.usual <= 3.1 * 1.15
    simulate(completion, [0.5] * (4 * PAUSE * TRIAL_EVERY), backoff=2.0)
    assert completion.usual <= 0.5 * 1.15


def test_only_a_trials_own_early_read_shrinks_its_step():
    completion = Completion(1.0)
    completion.finished(1.0, ran_late=False)
    step = completion.trial
    assert completion.running(0.5, trial=False) is False and completion.trial == step  # read early, not a trial
    assert completion.running(0.7, trial=True) is False and completion.trial > step
    assert completion.running(1.2, trial=False) is True
