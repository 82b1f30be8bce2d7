"""What the Tencent adapters share (components/clouds/tencent.py): TencentCaller's raw-JSON call."""

from __future__ import annotations

import contextlib
import json

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.teo.v20220901 import models

from components.clouds.base import CloudError
from components.clouds.edgeone import make_client
from components.clouds.ratelimit import SlidingWindowLimiter
from components.clouds.retry import RetryPolicy
from components.clouds.tencent import TencentCaller
from components.model.connection import Endpoint, TencentCredentials
from tests.fakes import SdkAnswer, replace_tencent_transport


# -- TencentCaller.json: the model path's transport and error translation, without the models -----------
def caller(answer):
    """A real teo client whose transport is replaced (tests/fakes.py); nothing is ever sent."""
    client = replace_tencent_transport(make_client(Endpoint("url", "http", "127.0.0.1:9"), TencentCredentials("i", "k")),
                                       answer)
    return TencentCaller("edgeone", client, models, SlidingWindowLimiter(10**6), RetryPolicy(max_attempts=1))


def test_json_returns_the_response_object_as_sent():
    seen = {}

    def answer(action, params, options=None, headers=None):
        seen.update(action=action, params=params)
        return json.dumps({"Response": {"TotalCount": 1, "Tasks": [{"JobId": "j"}], "RequestId": "r"}}).encode()

    body = caller(answer).json("DescribePrefetchTasks", {"ZoneId": "zone-a", "Offset": 0, "Limit": 1000})
    assert body == {"TotalCount": 1, "Tasks": [{"JobId": "j"}], "RequestId": "r"}
    assert seen == {"action": "DescribePrefetchTasks", "params": {"ZoneId": "zone-a", "Offset": 0, "Limit": 1000}}


@pytest.mark.parametrize("answer, code, kind", [
    (b"<html>502</html>", "JSONDecodeError", "malformed"),
    (b'{"NoResponse": {}}', "KeyError", "malformed"),
    (b"[1, 2]", "TypeError", "malformed"),
    (TencentCloudSDKException("RequestLimitExceeded", "slow down", "rid"), "RequestLimitExceeded", "throttled"),
    (TencentCloudSDKException("AuthFailure.SignatureFailure", "bad", "rid"), "AuthFailure.SignatureFailure", "auth"),
    (b'{"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}, "RequestId": "r"}}',
     "RequestLimitExceeded", "throttled"),
    (b'{"Response": {"Error": {"Code": "InvalidParameter.ZoneId", "Message": "no zone"}, "RequestId": "r"}}',
     "InvalidParameter.ZoneId", "invalid"),
    (SdkAnswer(b"bad gateway", status_code=502, content_type="text/html"), "ServerNetworkError", "transient"),
    (b'{"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}}', "KeyError", "malformed"),
    (b'{"Response": {"Error": null, "TotalCount": 0, "RequestId": "r"}}', "TypeError", "malformed"),
    (b'{"Response": {"Error": {"Code": 5, "Message": "odd"}, "RequestId": "r"}}', "5", "other"),
    (SdkAnswer(b'{"Response": {"Error": {"Code": "RequestLimitExceeded"}}}', content_type="text/plain"),
     "KeyError", "malformed"),
])
def test_json_fails_like_the_model_path_would(answer, code, kind):
    def call(action, params, options=None, headers=None):
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(CloudError) as raised:
        caller(call).json("DescribePrefetchTasks", {"ZoneId": "zone-a"})
    assert (raised.value.code, raised.value.kind, raised.value.action) == (code, kind, "DescribePrefetchTasks")
    with pytest.raises(CloudError) as model_path:
        caller(call)("DescribePrefetchTasks", {"ZoneId": "zone-a"})
    assert (model_path.value.code, model_path.value.kind) == (code, kind)
    assert (raised.value.request_id, str(raised.value)) == (model_path.value.request_id, str(model_path.value))


def test_json_looks_for_an_error_only_where_the_sdk_does():
    """The SDK checks ``Response.Error`` only under a JSON or text content type; elsewhere the body
    comes back as it is (the adapters then find no rows in it), on the JSON path as on ``call_json``."""
    body = b'{"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "slow"}, "RequestId": "r"}}'
    for content_type in ("application/json; charset=utf-8", "text/html"):
        answer = caller(lambda action, params: SdkAnswer(body, content_type=content_type))
        assert answer.json("DescribePrefetchTasks", {"ZoneId": "zone-a"}) == json.loads(body)["Response"] == \
            answer.client.call_json("DescribePrefetchTasks", {"ZoneId": "zone-a"})["Response"]


def test_json_warns_of_a_deprecated_action_as_the_sdk_does():
    body = b'{"Response": {"TotalCount": 0, "Tasks": [], "DeprecatedWarning": "use V2", "RequestId": "r"}}'
    with pytest.warns(DeprecationWarning, match="use V2"):
        caller(lambda action, params: body).json("DescribePrefetchTasks", {"ZoneId": "zone-a"})


def test_json_holds_the_limiter_slot_until_the_answer_arrives_not_while_it_is_decoded():
    events = []

    class Recorder:
        @contextlib.contextmanager
        def request(self, key, paced=False):
            events.append(("slot taken", key))
            yield key
            events.append(("slot released", key))

        def answered(self, slot, throttled):
            events.append(("told the limiter", throttled))

    class Body(SdkAnswer):
        @property
        def content(self):  # what the decoder reads
            events.append(("decoded", None))
            return b'{"Response": {"TotalCount": 0, "Tasks": [], "RequestId": "r"}}'

        @content.setter
        def content(self, _value):
            pass

    def answer(action, params):
        events.append(("answered", action))
        return Body(b"")

    client = replace_tencent_transport(make_client(Endpoint("url", "http", "127.0.0.1:9"), TencentCredentials("i", "k")),
                                       answer)
    body = TencentCaller("edgeone", client, models, Recorder(), RetryPolicy(max_attempts=1)).json(
        "DescribePrefetchTasks", {"ZoneId": "zone-a"})
    assert body["TotalCount"] == 0
    key = ("edgeone", "DescribePrefetchTasks")
    assert events == [("slot taken", key), ("answered", "DescribePrefetchTasks"), ("slot released", key),
                      ("decoded", None), ("told the limiter", False)]


def test_submits_ask_the_limiter_for_pacing_from_the_start_and_history_reads_do_not():
    """Submits come in bursts from several resources at once (ratelimit.py: paced, one in flight)."""
    asked = []

    class Recorder:
        @contextlib.contextmanager
        def request(self, key, paced=False):
            asked.append((key[1], paced))
            yield key

        def answered(self, slot, throttled):
            pass

    client = replace_tencent_transport(make_client(Endpoint("url", "http", "127.0.0.1:9"), TencentCredentials("i", "k")),
                                       lambda action, params: b'{"Response": {"RequestId": "r"}}')
    call = TencentCaller("edgeone", client, models, Recorder(), RetryPolicy(max_attempts=1))
    call.json("CreatePrefetchTask", {"ZoneId": "zone-a", "Targets": ["https://a.example/x"]})
    call.json("DescribePrefetchTasks", {"ZoneId": "zone-a"})
    assert asked == [("CreatePrefetchTask", True), ("DescribePrefetchTasks", False)]
