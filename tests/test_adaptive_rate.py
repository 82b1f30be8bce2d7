"""AdaptiveRate: starts at the limit, backs off on throttling, recovers, honours the share."""

import pytest

from components.clouds.adaptive_rate import BETA, AdaptiveRate, share_rate
from tests.fakes import FakeClock


def answers(rate, clock, seconds, every=0.25):
    """Unthrottled answers every ``every`` seconds for ``seconds``: the rates they leave."""
    seen = []
    for _ in range(int(seconds / every)):
        clock.sleep(every)
        seen.append(rate.succeeded())
    return seen


def test_starts_at_the_documented_limit():
    clock = FakeClock()
    assert AdaptiveRate(20, clock=clock.monotonic).rate == 20


def test_backs_off_on_throttling():
    clock = FakeClock()
    rate = AdaptiveRate(20, clock=clock.monotonic)
    assert rate.throttled() == pytest.approx(20 * BETA)
    assert rate.throttled() == pytest.approx(20 * BETA * BETA)


def test_the_cut_starts_from_the_share_the_process_had_and_recovery_levels_off_there():
    """Four processes at 20/s each: a full window holds 5 of each. Kept at BETA of what they had (not of what
    they allowed themselves), the four are under the limit after one throttle each."""
    clock = FakeClock()
    rate = AdaptiveRate(20, clock=clock.monotonic)
    assert rate.throttled(achieved=12) == pytest.approx(12 * BETA)
    seen = answers(rate, clock, 3)
    assert max(seen) == pytest.approx(12, abs=0.5)  # back near its share and no further within 3 s


def test_one_answer_never_cuts_below_four_plain_cuts():
    """A process that started just before the window filled has no share yet: its cut must not starve it."""
    clock = FakeClock()
    rate = AdaptiveRate(20, clock=clock.monotonic)
    assert rate.throttled(achieved=0) == pytest.approx(20 * BETA ** 4)


def test_recovers_smoothly_back_to_the_limit():
    clock = FakeClock()
    rate = AdaptiveRate(20, clock=clock.monotonic)
    rate.throttled()
    seen = answers(rate, clock, 15)
    assert seen == sorted(seen)  # never drops without a throttle
    assert seen[0] < 20 and seen[-1] == 20  # not at once, but all the way back
    assert max(b - a for a, b in zip(seen, seen[1:])) < 3  # no jumps


def test_an_idle_key_does_not_recover_without_answers():
    """Between poll rounds a key sends nothing: its rate must not climb back unused and burst into throttles."""
    clock = FakeClock()
    rate, busy = AdaptiveRate(20, clock=clock.monotonic), AdaptiveRate(20, clock=clock.monotonic)
    rate.throttled()
    clock.sleep(60)
    idle = rate.rate
    busy.throttled()
    answers(busy, clock, 2)
    assert idle < busy.rate < 20  # a minute of silence counts for less than two seconds of answers
    assert answers(rate, clock, 15)[-1] == 20  # answers move it on


def test_share_override_is_respected():
    clock = FakeClock()
    assert AdaptiveRate(20, share=0.25, clock=clock.monotonic).rate == 5
    assert AdaptiveRate(20, share=8, clock=clock.monotonic).rate == 8
    rate = AdaptiveRate(20, share=0.5, clock=clock.monotonic)
    rate.throttled()
    assert answers(rate, clock, 30)[-1] == 10  # recovery stops at the share, not the limit
    assert share_rate(20, None) == 20
    with pytest.raises(ValueError):
        share_rate(20, 0)


def test_a_limit_of_one_call_per_ten_seconds_can_still_back_off():
    clock = FakeClock()
    rate = AdaptiveRate(0.1, clock=clock.monotonic)
    assert rate.throttled() == pytest.approx(0.07)
    for _ in range(20):
        rate.throttled()
    assert rate.rate == pytest.approx(0.01)  # a tenth of the limit at the least
