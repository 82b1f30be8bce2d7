"""The fourth cloud's registry entry: what an entry point of group ``cdn_prefetch.clouds`` names.

Importing it imports nothing but the registry's data types (the provider host loads it through the
entry point while it reads its stack config, before any adapter is built).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.model.clouds import CloudSpec, CredentialFamily


@dataclass(frozen=True)
class FourthCredentials:
    """Key id and secret; repr hides the secret."""

    key_id: str
    secret: str = field(repr=False)
    source: str = "config"


FOURTH_KEYS = CredentialFamily(
    name="fourth", title="Fourth CDN",
    config_keys=("fourth:keyId", "fourth:keySecret"),
    env_keys=("FOURTH_KEY_ID", "FOURTH_KEY_SECRET"),
    make=lambda key_id, secret, _token, source: FourthCredentials(key_id, secret, source),
)

SPEC = CloudSpec(
    key="fourth", title="Fourth CDN", identity_key="space", identity_noun="space",
    scope_keys=("space",), typed_args={"space": "space"}, required_key="space",
    scope_schema={"space": {"type": "string", "pattern": "^sp-[a-z0-9]+$",
                            "description": "The Fourth CDN space id, e.g. sp-abc123."}},
    credentials=FOURTH_KEYS, adapter="tests.fourth_cloud.adapter",
)
