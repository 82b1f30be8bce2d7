"""Where a cloud's API is and with which credentials: the values adapters are built from.

Reading them from stack config or the environment is ``engine/settings.py``; the credential types'
``repr`` hides every secret part, so one can never reach a log or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

DEFAULT_SANDBOX_DB = ".sandbox/sandbox.db"


class ConfigError(ValueError):
    """Stack config is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class Endpoint:
    """Where a cloud's API is: the real cloud (default), the embedded sandbox, or an explicit URL."""

    kind: str                 # "default" | "sandbox" | "url"
    scheme: str = "https"
    netloc: str = ""          # host[:port] for "url"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


@dataclass(frozen=True)
class TencentCredentials:
    """SecretId/SecretKey(/token). repr hides the secret parts so they never reach a log or error."""

    secret_id: str
    secret_key: str = field(repr=False)
    token: Optional[str] = field(default=None, repr=False)
    source: str = "config"


@dataclass(frozen=True)
class UCloudCredentials:
    """PublicKey/PrivateKey; repr hides the private key."""

    public_key: str
    private_key: str = field(repr=False)
    source: str = "config"


@dataclass(frozen=True)
class ProviderSettings:
    """What the provider reads in ``configure()``: an endpoint per cloud (unset: the real cloud) and
    the credentials of each credential family (their names: model/clouds.py)."""

    endpoints: Mapping[str, Endpoint]
    credentials: Mapping[str, object] = field(default_factory=dict)
    sandbox_db: str = DEFAULT_SANDBOX_DB
    rate_share: Optional[float] = None
    """``cdn-prefetch:rateShare``: the share of each account rate limit this process may use when the
    sharing is known (a fraction <= 1, or requests/s > 1); None: all of it, backing off on throttling."""

    def endpoint(self, cloud: str) -> Endpoint:
        return self.endpoints.get(cloud, Endpoint("default"))

    def credentials_for(self, family: str) -> Optional[object]:
        """The key pair of one credential family, or None when neither config nor environment has it."""
        return self.credentials.get(family)
