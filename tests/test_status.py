"""The shared status model: Observation's hand-written constructor behaves as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from datetime import datetime, timezone

import pytest

from components.status import Observation, TargetState

AT = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def test_observation_init_takes_exactly_the_fields_in_order_with_their_defaults():
    # The constructor is written out for speed (status.py says why): it must not drift from the fields.
    params = list(inspect.signature(Observation.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in params] == \
        [(f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
         for f in dataclasses.fields(Observation)]


def test_observation_sets_every_field_positionally_or_by_name():
    values = ("https://a.example/x", "j1", TargetState.FAILED, AT, AT, "HTTP 502", "failed", "9b2cf535d3e1")
    by_position = Observation(*values)
    by_name = Observation(**{f.name: v for f, v in zip(dataclasses.fields(Observation), values)})
    assert dataclasses.astuple(by_position) == dataclasses.astuple(by_name) == values
    assert Observation("u", "j", TargetState.WARM, AT) == Observation("u", "j", TargetState.WARM, AT, None, None, None,
                                                                      None)


def test_observation_stays_a_frozen_hashable_dataclass():
    obs = Observation("u", "j", TargetState.WARM, AT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.url = "v"  # type: ignore[misc]
    assert hash(obs) == hash(Observation("u", "j", TargetState.WARM, AT))
    assert dataclasses.replace(obs, content="etag").content == "etag" and obs.content is None
    assert pickle.loads(pickle.dumps(obs)) == obs
    assert obs.at == AT and not hasattr(obs, "__dict__")
