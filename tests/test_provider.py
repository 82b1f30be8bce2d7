import base64
import json

import dill
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider

from components.provider import PrefetchProvider, check_inputs, resource_id
from components.records import SetInputs

INPUTS = SetInputs("web", {"provider": "edgeone", "zone": "zone-a", "mode": "default"},
                   ("https://a.example.com/x.js",), "24h", "10m")


def test_provider_pickles_by_reference_with_nothing_captured():
    blob = serialize_provider(PrefetchProvider())
    raw = base64.b64decode(blob)
    assert b"components.provider" in raw and len(blob) < 200  # by reference: module path + class name only
    assert isinstance(dill.loads(raw), PrefetchProvider)
    assert PrefetchProvider.serialize_as_secret_always is False


def test_configured_provider_does_not_carry_settings_into_a_new_pickle():
    provider = PrefetchProvider()
    provider.configure(ConfigureRequest(Config({"tencentcloud:secretId": "id", "tencentcloud:secretKey": "key-xyz"},
                                               "cdn-prefetch")))
    assert provider._settings.tencent.secret_key == "key-xyz"
    assert b"key-xyz" not in base64.b64decode(serialize_provider(PrefetchProvider()))


def test_check_accepts_program_inputs():
    assert check_inputs(INPUTS.to_props()) == []


def test_check_reports_each_malformed_input():
    bad = {**INPUTS.to_props(), "destination": {"provider": "edgeone"}, "targets": ["a"], "wait": "soon"}
    assert {prop for prop, _ in check_inputs(bad)} == {"destination", "targets", "wait"}


def test_config_error_surfaces_as_a_check_failure_not_a_crash():
    provider = PrefetchProvider()
    provider.configure(ConfigureRequest(Config({"cdn-prefetch:endpoints": json.dumps({"edgeone": "ftp://x"})},
                                               "cdn-prefetch")))
    result = provider.check({}, INPUTS.to_props())
    assert [f.property for f in result.failures] == ["destination"]
    assert "cdn-prefetch:endpoints.edgeone" in result.failures[0].reason


def test_resource_id_is_stable_and_names_the_scope():
    assert resource_id(INPUTS) == "web/edgeone/mode=default,zone=zone-a"
