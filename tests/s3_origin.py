"""An S3-compatible origin server on loopback (moto's), shared by the end-to-end tests of origin-derived sets.

The project lists origins with boto3; these tests give it a real HTTP server holding buckets, and
the sandbox's edge model reads the same objects' ETags (sandbox/origin.py).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any, Iterator, Optional

import boto3
import pytest
from moto import settings as moto_settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer


class S3:
    """The moto server on loopback, and helpers to shape buckets over its real HTTP API."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def client(self, service: str = "s3", **keys: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=keys.get("key", "testing"),
                            aws_secret_access_key=keys.get("secret", "testing"))

    def bucket(self) -> str:
        name = f"origin-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, body: bytes) -> str:
        """Upload over HTTP; returns the object's ETag."""
        return self.client().put_object(Bucket=bucket, Key=key, Body=body)["ETag"]

    def seed(self, bucket: str, keys: list[str]) -> None:
        """Many objects at once, written straight into the server's in-process store.

        Uploading 2,500 objects over HTTP takes ~15 s (the server shares this process's GIL); the
        listing under test still reads every page over HTTP.
        """
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(bucket, key, f"content of {key}".encode())

    def user(self, name: str, policy: Optional[str] = None) -> tuple[str, str]:
        """An IAM user's access key (the server checks it once authentication is on)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        if policy:
            iam.put_user_policy(UserName=name, PolicyName="list", PolicyDocument=policy)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    @contextlib.contextmanager
    def authenticating(self) -> Iterator[None]:
        """Make the server check every request's access key, signature and IAM policy."""
        previous = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        try:
            yield
        finally:
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = previous


def isolate_aws(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard AWS chain sees only fake keys: no profile or config file of this machine."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
