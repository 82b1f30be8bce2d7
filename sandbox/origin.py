"""An S3-compatible origin the edge model reads versions from: an object's ETag is its URL's version.

The edge model (sandbox/edge.py) needs what the origin served when a prefetch filled the edge. For
URLs under a prefix mapped to a bucket (`SandboxStore.add_s3_origin`), that is the object's ETag,
read through boto3 from a server on loopback only (the tests' moto server): the sandbox accepts a
well-known key pair and must never reach out. Keys are the URL's path after the prefix,
percent-decoded (declarations encode keys into URLs), after the mapping's key prefix.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlsplit

HEADS_AT_MOST = 20
"""A read of more keys than this lists their common prefix once instead of asking for each object."""
_CLIENTS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def check_loopback(host: str) -> None:
    """The sandbox talks (and listens) on loopback addresses only (127.0.0.1, ::1, localhost)."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the sandbox only uses loopback addresses (127.0.0.1, ::1, localhost); got {host!r}")


@dataclass(frozen=True)
class S3Origin:
    """URLs starting with `prefix` are objects of `bucket` at `endpoint`, keyed `key_prefix` + the rest."""

    prefix: str
    endpoint: str
    bucket: str
    key_prefix: str = ""
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        parts = urlsplit(self.prefix)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"prefix must be an http:// or https:// URL prefix; got {self.prefix!r}")
        endpoint = urlsplit(self.endpoint)
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname or endpoint.path not in ("", "/"):
            raise ValueError(f"endpoint must be a URL such as http://127.0.0.1:5000; got {self.endpoint!r}")
        check_loopback(endpoint.hostname)
        if not self.bucket or "/" in self.bucket:
            raise ValueError(f"bucket must be a bucket name; got {self.bucket!r}")

    def key(self, url: str) -> str | None:
        """The object key of `url`, or None if the URL is not under this origin's prefix."""
        if not url.startswith(self.prefix):
            return None
        rest = url[len(self.prefix):].split("#", 1)[0].split("?", 1)[0]
        return self.key_prefix + unquote(rest) if rest else None


def origin_of(origins: Iterable[S3Origin], url: str) -> S3Origin | None:
    """The mapping `url` falls under: the longest matching prefix."""
    matching = [o for o in origins if o.key(url) is not None]
    return max(matching, key=lambda o: len(o.prefix)) if matching else None


def read_versions(origin: S3Origin, urls: Iterable[str]) -> dict[str, str]:
    """url -> the ETag (quotes stripped) of its object now; URLs without an object are left out.

    Raises the boto3/botocore error if the origin cannot be read (the caller decides what that means).
    """
    keys = {url: key for url in urls if (key := origin.key(url)) is not None}
    if not keys:
        return {}
    client = _client(origin.endpoint, origin.region)
    if len(keys) <= HEADS_AT_MOST:
        etags = {}
        for key in set(keys.values()):
            try:
                etags[key] = client.head_object(Bucket=origin.bucket, Key=key)["ETag"]
            except client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
    else:
        etags = _listed(client, origin.bucket, os.path.commonprefix(list(keys.values())))
    return {url: etags[key].strip('"') for url, key in keys.items() if key in etags}


def _listed(client: Any, bucket: str, prefix: str) -> Mapping[str, str]:
    etags: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            etags[item["Key"]] = item["ETag"]
    return etags


def _client(endpoint: str, region: str) -> Any:
    """One boto3 client per endpoint and region (creating one costs ~50 ms), with throwaway keys."""
    import boto3  # only when an origin is mapped
    from botocore.config import Config

    with _LOCK:
        if (endpoint, region) not in _CLIENTS:
            _CLIENTS[endpoint, region] = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id="sandbox",
                aws_secret_access_key="sandbox",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=5,
                              read_timeout=30),
            )
        return _CLIENTS[endpoint, region]
