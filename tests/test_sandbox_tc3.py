"""TC3-HMAC-SHA256 verification (pure): it must accept exactly what the official SDK signs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign
from tencentcloud.teo.v20220901 import teo_client

from sandbox import tc3

HOST = "127.0.0.1:8787"


def sdk_request(method: str, params: dict[str, Any], key: str = "k3y", host: str = HOST) -> RequestInternal:
    """Let the SDK build and sign a request without sending it."""
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=host, reqMethod=method))
    client = teo_client.TeoClient(credential.Credential("the-id", key), "", profile)
    req = RequestInternal(host, method, "/", header={})
    client._build_req_inter("DescribePrefetchTasks", params, req)
    return req


def verify(req: RequestInternal, *, key: str = "k3y", now: float | None = None, body: bytes | None = None) -> int:
    headers = {k.lower(): str(v) for k, v in req.header.items()}
    auth = tc3.parse_authorization(headers["authorization"])
    get = req.method == "GET"
    return tc3.verify(
        auth, secret_key=key, timestamp_header=headers["x-tc-timestamp"], now=time.time() if now is None else now,
        method=req.method, path="/", query=req.data if get else "", headers=headers,
        payload=b"" if get else (req.data.encode() if body is None else body),
    )


PARAMS = {"ZoneId": "zone-abc", "StartTime": "2024-01-01T00:00:00+08:00", "EndTime": "2024-01-02T00:00:00+08:00",
          "Limit": 1000, "Filters": [{"Name": "statuses", "Values": ["processing", "failed"]}],
          "Note": "non-ascii: 预热"}


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_accepts_what_the_sdk_signs(method: str) -> None:
    req = sdk_request(method, PARAMS)
    assert verify(req) == int(req.header["X-TC-Timestamp"])
    auth = tc3.parse_authorization(req.header["Authorization"])
    assert (auth.secret_id, auth.service, auth.signed_headers) == ("the-id", "teo", ("content-type", "host"))


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_rejects_wrong_key_tampered_body_and_other_host(method: str) -> None:
    req = sdk_request(method, PARAMS)
    with pytest.raises(tc3.Tc3Error) as info:
        verify(req, key="other")
    assert info.value.code == "AuthFailure.SignatureFailure"

    other_host = sdk_request(method, PARAMS, host="127.0.0.1:9999")
    other_host.header["Host"] = HOST  # signed for another host:port
    with pytest.raises(tc3.Tc3Error, match="SignatureFailure"):
        verify(other_host)
    if method == "POST":
        with pytest.raises(tc3.Tc3Error, match="SignatureFailure"):
            verify(req, body=req.data.replace("zone-abc", "zone-xyz").encode())


def test_timestamp_window_is_five_minutes_either_way() -> None:
    req = sdk_request("POST", PARAMS)
    ts = int(req.header["X-TC-Timestamp"])
    assert verify(req, now=ts + 300) == ts
    assert verify(req, now=ts - 300) == ts
    for now in (ts + 301, ts - 301):
        with pytest.raises(tc3.Tc3Error) as info:
            verify(req, now=now)
        assert info.value.code == "AuthFailure.SignatureExpire"


def test_sign_helper_matches_the_sdk_primitive() -> None:
    body = b'{"ZoneId": "zone-abc"}'
    header = tc3.sign(secret_id="i", secret_key="k", service="teo", timestamp=1700000000, method="POST",
                      host=HOST, content_type="application/json", payload=body)
    auth = tc3.parse_authorization(header)
    canonical = tc3.canonical_request("POST", "/", "", {"content-type": "application/json", "host": HOST},
                                      auth.signed_headers, body)
    to_sign = tc3.string_to_sign(1700000000, auth.scope, canonical)
    assert auth.date == "2023-11-14"
    assert auth.signature == Sign.sign_tc3("k", auth.date, "teo", to_sign)


@pytest.mark.parametrize(
    "header",
    [
        None, "", "TC3-HMAC-SHA256", "HMAC-SHA1 Credential=a/2024-01-01/teo/tc3_request",
        "TC3-HMAC-SHA256 Credential=a/2024-01-01/teo/tc3_request, SignedHeaders=content-type;host",
        "TC3-HMAC-SHA256 Credential=a/2024-01-01/teo, SignedHeaders=content-type;host, Signature=" + "0" * 64,
        "TC3-HMAC-SHA256 Credential=a/yesterday/teo/tc3_request, SignedHeaders=content-type;host, Signature=" + "0" * 64,
        "TC3-HMAC-SHA256 Credential=a/2024-01-01/teo/tc3_request, SignedHeaders=host, Signature=" + "0" * 64,
        "TC3-HMAC-SHA256 Credential=a/2024-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=xyz",
        "TC3-HMAC-SHA256 garbage",
    ],
)
def test_garbled_authorization_is_invalid_authorization(header: str | None) -> None:
    with pytest.raises(tc3.Tc3Error) as info:
        tc3.parse_authorization(header)
    assert info.value.code == "AuthFailure.InvalidAuthorization"


def test_missing_or_bad_timestamp_header() -> None:
    req = sdk_request("POST", PARAMS)
    headers = {k.lower(): str(v) for k, v in req.header.items()}
    auth = tc3.parse_authorization(headers["authorization"])
    for value, code in ((None, "MissingParameter"), ("soon", "InvalidParameter")):
        with pytest.raises(tc3.Tc3Error) as info:
            tc3.verify(auth, secret_key="k3y", timestamp_header=value, now=time.time(), method="POST",
                       path="/", query="", headers=headers, payload=req.data.encode())
        assert info.value.code == code
