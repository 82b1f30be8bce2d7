"""The end-to-end audit itself can fail: a planted leak or a bad output shape is caught."""

import base64
import json
import pickle

import pytest
from jsonschema import ValidationError

from tests.engine import PROVIDER_KEY, ResourceState
from tests.stacks import (PROJECT, SECRET_KEY, TEST_SECRETS, UCLOUD_PRIVATE, AuditedEngine, LeakFound, check_outputs,
                          decoded_providers, scan_for_secrets)


@pytest.mark.parametrize("secret", [SECRET_KEY, UCLOUD_PRIVATE])
def test_scanner_finds_a_planted_credential(secret):
    with pytest.raises(LeakFound, match="host log"):
        scan_for_secrets("the host log of `up`", f"info: connecting with {secret} ...")
    scan_for_secrets("clean text", "nothing secret here")


def test_outputs_that_break_the_schema_are_caught():
    with pytest.raises(ValidationError):
        check_outputs({"prefetch": {"version": 2, "sets": {}}})
    check_outputs({"prefetch": {"version": 1, "sets": {}}})
    check_outputs({"prefetch": "<computed>"})  # unknown during a preview's update: nothing to validate


def test_every_secret_config_value_is_scanned_nested_objects_included(tmp_path):
    engine = AuditedEngine(PROJECT, {"tencentcloud:secretKey": "k" * 12, "cdn-prefetch:plain": "not-a-secret-1",
                                     "cdn-prefetch:originCredentials": json.dumps(
                                         {"assets": {"accessKeyId": "AKIAORIGINKEY0001", "secretAccessKey": "s3cr3t-origin-key"}})},
                           secret_keys=["tencentcloud:secretKey", "cdn-prefetch:originCredentials"])
    assert set(engine.credentials()) == {*TEST_SECRETS, "k" * 12, "AKIAORIGINKEY0001", "s3cr3t-origin-key"}


def test_a_credential_pickled_into_the_provider_is_found_in_state():
    """The checkpoint keeps each resource's pickled provider in base64: a credential in it is a leak that no text
    scan of the state sees, so the audit decodes it."""
    leaky = base64.b64encode(pickle.dumps({"credentials": ("id", SECRET_KEY)})).decode()
    state = {"urn:one": ResourceState(urn="urn:one", type="t", id="one", inputs={PROVIDER_KEY: leaky}, outputs={})}
    assert SECRET_KEY not in json.dumps({urn: [r.inputs, r.outputs] for urn, r in state.items()})
    with pytest.raises(LeakFound, match="pickled provider"):
        scan_for_secrets("the pickled provider in state", decoded_providers(state))
    clean = base64.b64encode(pickle.dumps({"credentials": ("id", "<from configure()>")})).decode()
    state["urn:one"].inputs[PROVIDER_KEY] = clean
    scan_for_secrets("clean", decoded_providers(state))
