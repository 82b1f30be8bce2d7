"""The cloud registry (components/model/clouds.py): lookups, registration rules, installed clouds."""

from __future__ import annotations

from dataclasses import replace
from importlib.metadata import EntryPoint

import pytest

from components.model import clouds as registry


@pytest.fixture
def fresh_registry(monkeypatch):
    """The built-in clouds only, with installed clouds not yet loaded; restored afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", {spec.key: spec for spec in registry.BUILT_IN})
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    monkeypatch.setattr(registry, "PLUGIN_ERRORS", {})
    return registry


def installed(monkeypatch, *points: EntryPoint) -> None:
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group: [p for p in points if p.group == group])


def test_every_built_in_cloud_is_found_with_its_facts():
    assert registry.cloud_keys()[:3] == ("edgeone", "tencent-cdn", "ucloud")
    spec = registry.cloud("edgeone")
    assert spec.describe("zone-x") == "edgeone zone zone-x" and spec.reference_keys == {"zoneName": "zone"}
    assert registry.find("nope") is None and registry.find(3) is None


def test_an_unknown_cloud_is_named_with_the_choices(fresh_registry, monkeypatch):
    installed(monkeypatch)
    with pytest.raises(registry.UnknownCloud) as error:
        registry.cloud("akamai")
    assert error.value.args[0] == "unknown provider 'akamai'; use edgeone, tencent-cdn or ucloud"


def test_a_typed_argument_that_means_another_key_for_another_cloud_is_refused(fresh_registry):
    clash = replace(registry.cloud("ucloud"), key="other", typed_args={"zone": "otherZone"})
    with pytest.raises(ValueError, match="typed argument 'zone' already means 'zone' for cloud 'edgeone'"):
        registry.register(clash)
    assert registry.find("other") is None
    same_meaning = replace(clash, typed_args={"zone": "zone"})
    assert registry.register(same_meaning) is same_meaning


def test_a_broken_installed_cloud_is_skipped_and_named_and_the_others_still_load(fresh_registry, monkeypatch):
    good = replace(registry.cloud("ucloud"), key="good", typed_args={})
    monkeypatch.setattr(registry, "_GOOD_FOR_TEST", good, raising=False)
    installed(monkeypatch,
              EntryPoint("broken", "no_such_module_for_cdn_prefetch:SPEC", registry.ENTRY_POINT_GROUP),
              EntryPoint("good", "components.model.clouds:_GOOD_FOR_TEST", registry.ENTRY_POINT_GROUP))
    assert "good" in registry.cloud_keys()  # a listing loads installed clouds
    assert registry.find("broken") is None
    with pytest.raises(registry.UnknownCloud, match="the installed cloud 'broken' failed to load: "
                                                    "ModuleNotFoundError"):
        registry.cloud("broken")


def test_an_entry_point_that_is_not_a_cloud_spec_is_reported(fresh_registry, monkeypatch):
    installed(monkeypatch, EntryPoint("odd", "components.model.clouds:ENTRY_POINT_GROUP", registry.ENTRY_POINT_GROUP))
    assert registry.find("odd") is None
    assert "not a CloudSpec" in registry.PLUGIN_ERRORS["odd"]


def test_the_typed_api_is_importable_from_the_package_and_its_old_path():
    import components
    from components.prefetch_set import Destination, PrefetchSet, stack_record

    assert components.PrefetchSet is PrefetchSet and Destination is components.ShardResource
    assert stack_record is components.stack_output
    with pytest.raises(AttributeError):
        components.NoSuchThing  # noqa: B018
