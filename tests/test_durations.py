from datetime import datetime, timedelta, timezone

import pytest

from components.model.durations import LONGEST, DurationTooLong, format_duration, parse_duration


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800),
                                           ("1h30m", 5400), ("0s", 0), ("1d2h3m4s", 93784)])
def test_parse_and_format_round_trip(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "24 hours", "h", "1.5h", "-1h", "30m1h", None, 10])
def test_rejects_other_spellings_with_examples(bad):
    with pytest.raises(ValueError, match="e.g. 90s"):
        parse_duration(bad)


def test_format_reads_as_people_write_it():
    assert format_duration(timedelta(hours=24)) == "24h"
    assert format_duration(timedelta(hours=36)) == "36h"
    assert format_duration(timedelta(days=7)) == "7d"
    assert format_duration(timedelta(days=3, hours=12)) == "3d12h"


# Issue #17: a huge duration is refused with a message, never an OverflowError later.
@pytest.mark.parametrize("text", ["366d", "8761h", "31536001s", "9" * 30 + "d", "9" * 5_000 + "s"],
                         ids=["366d", "8761h", "31536001s", "30 digits", "5000 digits"])
def test_a_duration_longer_than_the_longest_is_refused(text):
    with pytest.raises(DurationTooLong, match="is longer than 365d") as info:
        parse_duration(text)
    assert isinstance(info.value, ValueError) and len(str(info.value)) < 200


def test_the_longest_duration_keeps_every_date_in_range():
    assert parse_duration("365d") == parse_duration("8760h") == LONGEST
    assert parse_duration("0" * 5_000 + "90s") == timedelta(seconds=90)  # leading zeros are not a long number
    now = datetime.now(timezone.utc)
    assert now - LONGEST < now < now + LONGEST


def test_a_key_may_take_a_shorter_longest():
    assert parse_duration("1h", longest=timedelta(hours=1)) == timedelta(hours=1)
    with pytest.raises(DurationTooLong, match="longer than 1h"):
        parse_duration("61m", longest=timedelta(hours=1))
