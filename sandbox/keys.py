"""The sandbox's built-in key pairs: two accounts per cloud family, known to every sandbox by default.

The first pair of each family is the default account (the embedded sandbox and the CLI use it); the
second is "another account", so that a test or a user can see what a cloud answers for a resource
that belongs to someone else (`sandbox.accounts`). They are deliberately unlike real keys (a real
Tencent SecretId starts with `AKID`), so that they are never mistaken for one.
"""

from __future__ import annotations

SANDBOX_SECRET_ID = "sandbox-secret-id"
SANDBOX_SECRET_KEY = "sandbox-secret-key"
"""The default Tencent Cloud pair (SecretId, SecretKey): EdgeOne and Cloud CDN."""
OTHER_SECRET_ID = "sandbox-other-secret-id"
OTHER_SECRET_KEY = "sandbox-other-secret-key"
"""A second Tencent Cloud account."""
SANDBOX_UCLOUD_PUBLIC_KEY = "sandbox-public-key"
SANDBOX_UCLOUD_PRIVATE_KEY = "sandbox-private-key"
"""The default UCloud pair (PublicKey, PrivateKey)."""
OTHER_UCLOUD_PUBLIC_KEY = "sandbox-other-public-key"
OTHER_UCLOUD_PRIVATE_KEY = "sandbox-other-private-key"
"""A second UCloud account."""

TENCENT_KEYS: dict[str, str] = {SANDBOX_SECRET_ID: SANDBOX_SECRET_KEY, OTHER_SECRET_ID: OTHER_SECRET_KEY}
"""SecretId -> SecretKey a sandbox accepts unless it is given its own."""
UCLOUD_KEYS: dict[str, str] = {SANDBOX_UCLOUD_PUBLIC_KEY: SANDBOX_UCLOUD_PRIVATE_KEY,
                               OTHER_UCLOUD_PUBLIC_KEY: OTHER_UCLOUD_PRIVATE_KEY}
"""PublicKey -> PrivateKey a sandbox accepts unless it is given its own."""


def default_account(service: str, scope: str) -> str:
    """Whose tasks written without an account are (a test's own rows, files from before accounts): a
    UCloud task's scope is its PublicKey; a Tencent one is the default pair's."""
    return scope if service == "ucloud" else SANDBOX_SECRET_ID
