"""Preflight: before any prefetch is planned, check that each target's domain can be prefetched.

Prefetching a domain that is not online fails at the cloud anyway
(``ResourceUnavailable.CdnHostIsNotOnline``), after the tasks were submitted and the quota spent.
The preview says so first, per set (``preflight: warn | error | off``, default ``warn``):

* Tencent Cloud CDN: every target's host must be a CDN domain of the account (exact, or a
  ``*.parent`` wildcard domain), ``online``, and accelerated in the set's area (a ``global``
  domain serves every area; ``mainland``/``overseas`` only their own) -- from
  ``tencentcloud_iac_pulumi.cdn.get_domains`` (``domain_lists[].status``, ``.area``);
* EdgeOne: the zone must be visible, not paused or blocked, and every target's host must be the
  zone's site name or below it -- from ``tencentcloud_iac_pulumi.teo.get_zones``.

It uses the same data sources as the references (components/declare/references.py), so the
``tencentcloud:`` provider config. It checks the real cloud only: a cloud whose
``cdn-prefetch:endpoints`` entry is set (``sandbox`` or a URL) is skipped, as is UCloud (no data
source). Warnings go to ``pulumi.log.warn`` on the PrefetchSet; with ``preflight: error`` the
preview fails with one message listing every finding (a RunError: no traceback). A data source
that cannot answer (credentials, permissions) is a finding too: a warning, or an error.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional, Sequence
from urllib.parse import urlsplit

import pulumi

from ..declare.references import CdnDomain, LookupFailed, TencentCloudLookup, Zone, exact_domains
from ..model.clouds import cloud, find

MODES = ("warn", "error", "off")
DEFAULT_MODE = "warn"
# Which prefetch areas a CDN domain's acceleration area serves.
AREA_SERVES = {"global": ("mainland", "overseas", "global"), "mainland": ("mainland",), "overseas": ("overseas",)}
# EdgeOne zone states in which prefetch tasks fail.
ZONE_STATUS_PROBLEMS = {
    "deactivated": "is blocked (status deactivated)",
    "initializing": "has no plan bound yet (status initializing)",
}


class PreflightError(pulumi.RunError):
    """``preflight: error`` and a target's domain is not ready: the preview fails with this message."""


def check_mode(value: Any, set_name: str) -> str:
    """The preflight mode (None: the default; False, as YAML reads a bare ``off``: off); ValueError otherwise."""
    if value is None:
        return DEFAULT_MODE
    if value is False:
        return "off"
    if value not in MODES:
        raise ValueError(f"PrefetchSet {set_name!r}: preflight {value!r} is not valid; use one of: {', '.join(MODES)}")
    return value


def hosts_of(targets: Iterable[str]) -> list[str]:
    """The distinct hosts of the targets, sorted."""
    return sorted({(urlsplit(url).hostname or "").lower() for url in targets} - {""})


def parent_wildcard(host: str) -> Optional[str]:
    """``a.b.example.com`` -> ``*.b.example.com``; None when the parent is a bare TLD."""
    parts = host.split(".")
    return "*." + ".".join(parts[1:]) if len(parts) > 2 else None


def domain_findings(host: str, area: str, matches: Sequence[CdnDomain]) -> list[str]:
    """What is wrong with prefetching ``host`` in ``area`` on Tencent Cloud CDN (empty: nothing)."""
    if not matches:
        return [f"{host} is not a Tencent Cloud CDN domain of this account (cdn.get_domains found neither it nor a "
                "wildcard domain above it); prefetching it fails"]
    domain = matches[0]
    name = domain.domain if domain.domain.lower() == host else f"{host} (domain {domain.domain})"
    found: list[str] = []
    if domain.status != "online":
        found.append(f"{name} is not online at Tencent Cloud CDN (status {domain.status or 'unknown'}); prefetching "
                     "it fails with ResourceUnavailable.CdnHostIsNotOnline")
    if domain.area and area not in AREA_SERVES.get(domain.area, ()):
        found.append(f"{name} is accelerated in {domain.area} only, but the set prefetches in {area}"
                     + (" (both areas)" if area == "global" else "")
                     + f"; change the set's area, or the domain's acceleration area")
    return found


def zone_findings(zone_id: str, hosts: Sequence[str], zones: Sequence[Zone]) -> list[str]:
    """What is wrong with prefetching ``hosts`` on EdgeOne zone ``zone_id`` (empty: nothing)."""
    matching = [z for z in zones if z.zone_id == zone_id]
    if not matching:
        return [f"EdgeOne zone {zone_id} is not visible to these credentials (teo.get_zones found none); "
                "prefetching on it fails"]
    zone = matching[0]
    found: list[str] = []
    if zone.paused or zone.active_status == "paused":
        found.append(f"EdgeOne zone {zone.describe()} is paused; prefetch tasks fail until it is enabled again")
    if zone.status in ZONE_STATUS_PROBLEMS:
        found.append(f"EdgeOne zone {zone.describe()} {ZONE_STATUS_PROBLEMS[zone.status]}; prefetch tasks fail")
    name = zone.zone_name.rstrip(".").lower()
    if name and zone.type != "noDomainAccess":
        for host in hosts:
            if host != name and not host.endswith("." + name):
                found.append(f"{host} is not in EdgeOne zone {zone.describe()}: the zone only accelerates "
                             f"{name} and names below it")
    return found


def endpoints_overridden(config: Optional[pulumi.Config] = None) -> set[str]:
    """Clouds whose ``cdn-prefetch:endpoints`` entry is set: the provider does not talk to the real cloud there."""
    raw = (config or pulumi.Config("cdn-prefetch")).get("endpoints")
    if not raw:
        return set()
    try:
        table = json.loads(raw)
    except (TypeError, ValueError):
        return set()  # the provider's check reports a malformed table
    return {str(k) for k in table} if isinstance(table, dict) else set()


def cdn_matches(lookup: TencentCloudLookup, host: str) -> list[CdnDomain]:
    """The CDN domain serving ``host``: itself, else the wildcard domain above it."""
    found = exact_domains(lookup.cdn_domains(host), host)
    wildcard = parent_wildcard(host)
    if found or wildcard is None:
        return found
    return exact_domains(lookup.cdn_domains(wildcard), wildcard)


def findings(provider: str, scope_value: Any, targets: Sequence[str], lookup: TencentCloudLookup) -> list[str]:
    """Every finding for one destination (``scope_value``: its zone id or area). Raises LookupFailed."""
    hosts = hosts_of(targets)
    if cloud(provider).preflight == "zone":
        return zone_findings(scope_value, hosts, lookup.zones("zone-id", scope_value))
    return [finding for host in hosts for finding in domain_findings(host, scope_value, cdn_matches(lookup, host))]


def run(provider: str, scope_value: Any, targets: Sequence[str], lookup: TencentCloudLookup, *, mode: str,
        set_name: str, source: Optional[str], label: str, resource: Optional[pulumi.Resource]) -> list[str]:
    """Check one destination and report (warn, or raise PreflightError for ``error``)."""
    try:
        found = findings(provider, scope_value, targets, lookup)
    except LookupFailed as exc:
        found = [f"could not check the {'zone' if cloud(provider).preflight == 'zone' else 'domains'}: {exc}"]
    return report(found, mode=mode, set_name=set_name, source=source, label=label, resource=resource)


def report(found: Sequence[str], *, mode: str, set_name: str, source: Optional[str], label: str,
           resource: Optional[pulumi.Resource]) -> list[str]:
    """Warn about each finding, or (``error``) fail with all of them. Returns the findings."""
    if not found:
        return []
    where = f" ({source})" if source else ""
    if mode == "error":
        lines = "\n".join(f"  - {f}" for f in found)
        raise PreflightError(
            f"preflight failed for prefetch set {set_name!r}{where} on {label}:\n{lines}\n"
            "Fix the domain first, or set the set's preflight to warn (or off) to go ahead anyway.")
    for finding in found:
        pulumi.log.warn(f"preflight: prefetch set {set_name!r}{where} on {label}: {finding}", resource=resource)
    return list(found)


def applies_to(provider: str, endpoints: Iterable[str]) -> bool:
    """Whether preflight checks a destination of ``provider`` (a real cloud with a data source)."""
    spec = find(provider)
    return spec is not None and spec.supports_preflight and provider not in set(endpoints)


def scope_key(provider: str) -> str:
    """The scope value preflight needs: the zone id (EdgeOne) or the area (Tencent Cloud CDN)."""
    return cloud(provider).identity_key

