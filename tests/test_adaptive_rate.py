"""AdaptiveRate: starts at the limit, backs off on throttling, recovers, honours the share."""

import pytest

from components.clouds.adaptive_rate import BETA, AdaptiveRate, share_rate
from tests.fakes import FakeClock


def test_starts_at_the_documented_limit():
    clock = FakeClock()
    assert AdaptiveRate(20, clock=clock.monotonic).rate == 20


def test_backs_off_on_throttling():
    clock = FakeClock()
    rate = AdaptiveRate(20, clock=clock.monotonic)
    assert rate.throttled() == pytest.approx(20 * BETA)
    assert rate.throttled() == pytest.approx(20 * BETA * BETA)


def test_recovers_smoothly_back_to_the_limit():
    clock = FakeClock()
    rate = AdaptiveRate(20, clock=clock.monotonic)
    rate.throttled()
    seen = []
    for _ in range(40):
        clock.sleep(0.25)
        seen.append(rate.succeeded())
    assert seen == sorted(seen)  # never drops without a throttle
    assert seen[0] < 20 and seen[-1] == 20  # not at once, but all the way back
    assert max(b - a for a, b in zip(seen, seen[1:])) < 3  # no jumps


def test_share_override_is_respected():
    clock = FakeClock()
    assert AdaptiveRate(20, share=0.25, clock=clock.monotonic).rate == 5
    assert AdaptiveRate(20, share=8, clock=clock.monotonic).rate == 8
    rate = AdaptiveRate(20, share=0.5, clock=clock.monotonic)
    rate.throttled()
    clock.sleep(60)
    assert rate.succeeded() == 10  # recovery stops at the share, not the limit
    assert share_rate(20, None) == 20
    with pytest.raises(ValueError):
        share_rate(20, 0)
