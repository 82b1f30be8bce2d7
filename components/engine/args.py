"""The typed arguments of the PrefetchSet component: a TypedDict per argument group, a docstring
per field (what IDEs show), and the map from argument names to the declarations' scope keys."""

from __future__ import annotations

from typing import Mapping, Sequence, TypedDict

try:  # Python 3.11+
    from typing import Required
except ImportError:  # pragma: no cover
    from typing_extensions import Required

import pulumi

from ..model.clouds import clouds


class _ScopeArgs(TypedDict, total=False):
    zone: pulumi.Input[str]
    """EdgeOne (required): the zone id, e.g. ``zone.id`` of a ``tencentcloud.teo.Zone``, or ``zone-2o0i4xfimj9g``."""
    mode: pulumi.Input[str]
    """EdgeOne: ``default`` prefetches to the middle tier; ``edge`` also to edge nodes (allow-listed accounts)."""
    area: pulumi.Input[str]
    """Tencent Cloud CDN: ``mainland`` (default), ``overseas`` or ``global`` (spends both areas' quota)."""
    user_agent: pulumi.Input[str]
    """Tencent Cloud CDN: User-Agent sent to the origin when prefetching."""
    layer: pulumi.Input[str]
    """Tencent Cloud CDN: ``middle`` prefetches to the middle tier only. Changing it makes every target due for a
    prefetch."""
    parse_m3u8: pulumi.Input[bool]
    """Tencent Cloud CDN: also prefetch the TS segments an M3U8 playlist names (default false)."""
    headers: pulumi.Input[Sequence[pulumi.Input[Mapping[str, pulumi.Input[str]]]]]
    """EdgeOne and Tencent Cloud CDN: extra HTTP headers every prefetch sends, ``[{"name": ..., "value": ...}]``
    (at most 20), e.g. ``Accept-Encoding: br`` to warm the brotli variant. Changing them makes every target due
    for a prefetch."""
    encode_url: pulumi.Input[bool]
    """EdgeOne: ``EncodeUrl`` (deprecated by the API; targets are already percent-encoded). Default: not sent."""
    prefetch_media_segments: pulumi.Input[str]
    """EdgeOne: ``on`` also prefetches the TS segments an M3U8 playlist names (allow-listed accounts); default off."""
    domain_id: pulumi.Input[str]
    """UCloud (required): the UCDN domain id, e.g. ``ucdn-abc123``."""
    project_id: pulumi.Input[str]
    """UCloud: the project id (needed for sub-accounts), e.g. ``org-abc123``."""


class DestinationArgs(_ScopeArgs, total=False):
    """One CDN destination of a set: the provider and its scope."""

    provider: Required[str]
    """The cloud: a key of the registry (components/model/clouds.py): EdgeOne, Tencent Cloud CDN or UCloud.
    A plain string: it decides the resources' names."""
    label: str
    """Names the destination's resource (``<set>-<label>``). Default: ``<provider>-<zone, area or domain id>``
    when that is a plain string (as for a YAML set), else ``<provider>``. Give one when two destinations
    of one provider take their scope from Outputs."""


class PrefetchSetArgs(_ScopeArgs, total=False):
    """Arguments of a PrefetchSet. Give the destination either with ``provider`` and its scope
    (``zone``, ``area``, ``domain_id``, ...) or as a ``destinations`` list."""

    targets: Required[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """URLs to keep warm: full ``http://`` or ``https://`` URLs, each in its RFC 3986 normal form (scheme and
    host lower-cased, an internationalised host in punycode, percent-encodings and dot segments normalised,
    fragments, userinfo and default ports dropped), duplicates collapsed (components/model/urls.py)."""
    destinations: Sequence[DestinationArgs]
    """Several CDN destinations for the same targets; each is reconciled and reported on its own."""
    provider: str
    """Single-destination shorthand: the cloud's key, as ``DestinationArgs.provider`` (a plain string)."""
    label: str
    """Single-destination shorthand: see ``DestinationArgs.label``."""
    freshness: pulumi.Input[str]
    """How long a successful prefetch counts as warm, e.g. ``24h`` (default), ``90s``, ``7d``, ``1h30m``."""
    wait: pulumi.Input[str]
    """How long ``pulumi up`` waits for submitted tasks, e.g. ``2m``; ``0s`` does not wait (default ``10m``)."""
    description: pulumi.Input[str]
    """Free text, copied into the audit record."""
    preflight: pulumi.Input[str]
    """``warn`` (default), ``error`` or ``off``: what the preview does when a target's domain is not
    online, not accelerated in the requested area, or outside the EdgeOne zone (components/preflight.py)."""
    revision: str
    """A release marker (a build id, a git SHA; a plain string): when it changes, every target is due
    for purge, then prefetch (``on_change``). Shown in each target's desired value."""
    on_change: str
    """``purge-then-prefetch`` (default where the cloud can purge) or ``prefetch``: what ``up`` does with
    a target whose content changed (origin ETag or ``revision``)."""


def scope_args() -> dict[str, str]:
    """Typed argument -> scope key (``user_agent`` -> ``userAgent``), over every registered cloud."""
    return {arg: key for spec in clouds() for arg, key in spec.typed_args.items()}
