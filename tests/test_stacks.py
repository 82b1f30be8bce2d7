"""The end-to-end audit itself can fail: a planted leak or a bad output shape is caught."""

import pytest
from jsonschema import ValidationError

from tests.stacks import SECRET_KEY, UCLOUD_PRIVATE, LeakFound, check_outputs, scan_for_secrets


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
