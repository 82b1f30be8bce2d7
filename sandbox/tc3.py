"""TC3-HMAC-SHA256 (Tencent Cloud API 3.0) signing and verification, as pure functions.

The sandbox verifies signatures exactly like the cloud does, so a client that signs wrongly
(wrong Host, wrong body hash, wrong key) fails here instead of first failing in production.
The algorithm mirrors `tencentcloud/common/abstract_client.py` (see cdn-apis.md §4.1).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

ALGORITHM = "TC3-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 300  # the cloud rejects timestamps more than 5 minutes off
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_REQUIRED_SIGNED_HEADERS = ("content-type", "host")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Tc3Error(Exception):
    """An authentication failure, carrying the Tencent error code the cloud would answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Authorization:
    """The parsed `Authorization` header: who signed, for which day and service, and how."""

    secret_id: str
    date: str  # YYYY-MM-DD, UTC date of the request timestamp
    service: str  # e.g. "teo", "cdn": the sandbox routes on this
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.service}/tc3_request"


def parse_authorization(value: str | None) -> Authorization:
    """Parse `TC3-HMAC-SHA256 Credential=id/date/service/tc3_request, SignedHeaders=..., Signature=...`.

    Raises Tc3Error(AuthFailure.InvalidAuthorization) on anything malformed, so a garbled header is
    an auth error and never a crash.
    """

    def bad(why: str) -> Tc3Error:
        return Tc3Error("AuthFailure.InvalidAuthorization", f"Authorization header is invalid: {why}.")

    if not value or not value.strip():
        raise bad("missing")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise bad(f"the algorithm must be {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise bad(f"cannot parse {part.strip()!r}")
        fields[key.strip()] = val.strip()
    try:
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    except KeyError as missing:
        raise bad(f"{missing.args[0]} is missing") from None
    pieces = credential.split("/")
    if len(pieces) != 4 or pieces[3] != "tc3_request" or not all(pieces[:3]):
        raise bad("Credential must be <SecretId>/<YYYY-MM-DD>/<service>/tc3_request")
    secret_id, date, service = pieces[:3]
    if not _DATE.fullmatch(date):
        raise bad("the Credential date must be YYYY-MM-DD")
    headers = tuple(h.strip().lower() for h in signed.split(";") if h.strip())
    if any(h not in headers for h in _REQUIRED_SIGNED_HEADERS):
        raise bad("SignedHeaders must include content-type and host")
    if not _HEX64.fullmatch(signature):
        raise bad("Signature must be 64 lowercase hex characters")
    return Authorization(secret_id, date, service, headers, signature)


def utc_date(timestamp: int) -> str:
    """The credential-scope date: the UTC calendar day of the request timestamp."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload: bytes,
) -> str:
    """The six-line canonical request. `headers` keys must be lowercase; values are used as sent.

    The SDK does not lowercase header values (it signs `Host` verbatim, port included), so neither
    do we. The payload hash is of the raw body bytes (empty for GET), or of the literal
    "UNSIGNED-PAYLOAD" when the client asked for that.
    """
    canonical_headers = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed_headers)
    if headers.get("x-tc-content-sha256", "").strip() == UNSIGNED_PAYLOAD:
        payload = UNSIGNED_PAYLOAD.encode()
    return "\n".join(
        [
            method.upper(),
            path or "/",
            query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def string_to_sign(timestamp: int | str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def signature(secret_key: str, date: str, service: str, to_sign: str) -> str:
    """hex(HMAC(kSigning, string-to-sign)) with kSigning derived from the key, date and service."""

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    k_signing = mac(mac(mac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(k_signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    method: str,
    host: str,
    content_type: str,
    payload: bytes = b"",
    query: str = "",
    path: str = "/",
) -> str:
    """Client side: the `Authorization` header value for a request (used by tests and tools)."""
    date = utc_date(timestamp)
    signed = ("content-type", "host")
    canonical = canonical_request(
        method, path, query, {"content-type": content_type, "host": host}, signed, payload
    )
    sig = signature(secret_key, date, service, string_to_sign(timestamp, f"{date}/{service}/tc3_request", canonical))
    return (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )


def verify(
    auth: Authorization,
    *,
    secret_key: str,
    timestamp_header: str | None,
    now: float,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload: bytes,
) -> int:
    """Check the timestamp window and the signature; return the request timestamp.

    Raises Tc3Error with AuthFailure.SignatureExpire or AuthFailure.SignatureFailure (or
    MissingParameter / InvalidParameter for an absent or non-numeric X-TC-Timestamp).
    """
    if timestamp_header is None or not timestamp_header.strip():
        raise Tc3Error("MissingParameter", "The request is missing a required parameter `Timestamp`.")
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        raise Tc3Error("InvalidParameter", "X-TC-Timestamp must be Unix seconds.") from None
    if abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        raise Tc3Error(
            "AuthFailure.SignatureExpire",
            f"Signature expired. Timestamp is {timestamp}, server time is {int(now)}; "
            f"the difference must be at most {MAX_CLOCK_SKEW_SECONDS} seconds.",
        )
    if auth.date != utc_date(timestamp):
        raise Tc3Error(
            "AuthFailure.SignatureFailure",
            f"The Credential date {auth.date} is not the UTC date of X-TC-Timestamp ({utc_date(timestamp)}).",
        )
    canonical = canonical_request(method, path, query, headers, auth.signed_headers, payload)
    to_sign = string_to_sign(timestamp_header.strip(), auth.scope, canonical)  # as sent, like the SDK
    expected = signature(secret_key, auth.date, auth.service, to_sign)
    if not hmac.compare_digest(expected, auth.signature):
        raise Tc3Error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        )
    return timestamp
