"""The shared status model: HistoryRow's and TargetStatus's hand-written constructors behave as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from datetime import datetime, timezone

import pytest

from components.model.status import HistoryRow, TargetState, TargetStatus

AT = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("cls", [HistoryRow, TargetStatus])
def test_init_takes_exactly_the_fields_in_order_with_their_defaults(cls):
    # The constructors are written out for speed (status.py says why): they must not drift from the fields.
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in params] == \
        [(f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
         for f in dataclasses.fields(cls)]


def test_observation_sets_every_field_positionally_or_by_name():
    values = ("https://a.example/x", "j1", TargetState.FAILED, AT, AT, "HTTP 502", "failed", "9b2cf535d3e1")
    by_position = HistoryRow(*values)
    by_name = HistoryRow(**{f.name: v for f, v in zip(dataclasses.fields(HistoryRow), values)})
    assert dataclasses.astuple(by_position) == dataclasses.astuple(by_name) == values
    assert HistoryRow("u", "j", TargetState.WARM, AT) == HistoryRow("u", "j", TargetState.WARM, AT, None, None, None,
                                                                      None)


def test_observation_stays_a_frozen_hashable_dataclass():
    obs = HistoryRow("u", "j", TargetState.WARM, AT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.url = "v"  # type: ignore[misc]
    assert hash(obs) == hash(HistoryRow("u", "j", TargetState.WARM, AT))
    assert dataclasses.replace(obs, content="etag").content == "etag" and obs.content is None
    assert pickle.loads(pickle.dumps(obs)) == obs
    assert obs.at == AT and not hasattr(obs, "__dict__")


def test_target_status_sets_every_field_and_stays_a_frozen_hashable_dataclass():
    values = ("https://a.example/x", TargetState.FAILED, "j1", AT, "HTTP 502", "failed", "9b2cf535d3e1", "p1")
    by_position = TargetStatus(*values)
    by_name = TargetStatus(**{f.name: v for f, v in zip(dataclasses.fields(TargetStatus), values)})
    assert dataclasses.astuple(by_position) == dataclasses.astuple(by_name) == values
    assert TargetStatus("u", TargetState.MISSING) == TargetStatus("u", TargetState.MISSING, None, None, None, None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_position.state = TargetState.WARM  # type: ignore[misc]
    assert hash(by_position) == hash(by_name)
    assert dataclasses.replace(by_position, reason="r").reason == "r" and by_position.reason == "HTTP 502"
    assert pickle.loads(pickle.dumps(by_position)) == by_position and not hasattr(by_position, "__dict__")
