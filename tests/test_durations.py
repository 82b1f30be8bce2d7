from datetime import timedelta

import pytest

from components.model.durations import format_duration, parse_duration


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
