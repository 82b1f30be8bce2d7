"""Names in declarations resolved with pulumi-tencentcloud's own data sources.

A declaration may name its EdgeOne zone by site name (``zoneName: example.com``) instead of by id,
and its Tencent Cloud CDN scope by acceleration domain (``domain: static.example.com``) instead of
by area. The program looks both up with the tencentcloud provider's data sources, which use the
``tencentcloud:`` provider config (or its ``TENCENTCLOUD_*`` environment fallbacks), the same
credentials the dynamic provider uses:

* ``zoneName`` -> ``tencentcloud_iac_pulumi.teo.get_zones(filters=[zone-name])`` -> ``zone``;
* ``domain`` -> ``tencentcloud_iac_pulumi.cdn.get_domains(domain=...)`` -> ``area`` (unless the
  set gives ``area`` itself; preflight then checks the domain is accelerated there).

The reference key is then replaced by what it resolved to, so ``zoneName: example.com`` and
``zone: zone-…`` give the same resource inputs and the same resource name: switching between
them changes nothing. A name that matches nothing, or several objects, is a problem naming the
set and its file:line; every problem of every set is reported at once.

The data sources are invokes, so this runs inside a Pulumi program only (where the tencentcloud
plugin answers them; under ``pulumi.runtime.set_mocks`` ``Mocks.call`` does). The lookups are
behind :class:`TencentCloudLookup` so preflight (components/engine/preflight.py) shares them and their
answers. A data source that fails (credentials, permissions) is a problem naming the set too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Optional, Sequence

from .model import DeclarationError, PrefetchSetDeclaration, Problem, Reference
from .schema import load_schema

ZONES_TOKEN = "tencentcloud:Teo/getZones:getZones"
CDN_DOMAINS_TOKEN = "tencentcloud:Cdn/getDomains:getDomains"


@dataclass(frozen=True)
class Zone:
    """The fields of an EdgeOne zone (``teo.get_zones`` ``zones[]``) that references and preflight use."""

    zone_id: str
    zone_name: str = ""
    alias_zone_name: str = ""
    status: str = ""          # active | pending | moved | deactivated | initializing
    active_status: str = ""   # active | inactive | paused
    paused: bool = False
    type: str = ""            # full | partial | noDomainAccess
    area: str = ""

    def describe(self) -> str:
        alias = f", alias {self.alias_zone_name}" if self.alias_zone_name else ""
        return f"{self.zone_id} ({self.zone_name or 'no name'}{alias})"


@dataclass(frozen=True)
class CdnDomain:
    """The fields of a Tencent Cloud CDN domain (``cdn.get_domains`` ``domain_lists[]``) we use."""

    domain: str
    status: str = ""          # online | offline | processing | closing | rejected
    area: str = ""            # mainland | overseas | global
    id: str = ""


def _text(item: Any, name: str) -> str:
    value = getattr(item, name, None)
    if value is None and isinstance(item, dict):
        value = item.get(name)
    return "" if value is None else str(value)


def zone_of(item: Any) -> Zone:
    """A ``GetZonesZoneResult`` (or a plain dict in tests) as a Zone."""
    paused = getattr(item, "paused", None)
    if paused is None and isinstance(item, dict):
        paused = item.get("paused")
    return Zone(_text(item, "zone_id"), _text(item, "zone_name"), _text(item, "alias_zone_name"),
                _text(item, "status"), _text(item, "active_status"), bool(paused), _text(item, "type"),
                _text(item, "area"))


def cdn_domain_of(item: Any) -> CdnDomain:
    """A ``GetDomainsDomainListResult`` as a CdnDomain."""
    return CdnDomain(_text(item, "domain"), _text(item, "status"), _text(item, "area"), _text(item, "id"))


class LookupFailed(Exception):
    """A data source call failed (credentials, permissions, the tencentcloud plugin): says which call and why."""


class TencentCloudLookup:
    """Lookups through pulumi-tencentcloud's data sources, remembered for the life of this object.

    The calls block, at the top level of a program or inside an ``apply``: the Python SDK runs a
    synchronous invoke by pumping the event loop. A failing data source raises LookupFailed; the
    SDK reports such a failure to the caller only, so the caller decides what it means.
    """

    def __init__(self) -> None:
        self._zones: dict[tuple[str, str], list[Zone]] = {}
        self._domains: dict[str, list[CdnDomain]] = {}

    def zones(self, field: str, value: str) -> list[Zone]:
        """Zones matching a ``teo.get_zones`` filter (``zone-name`` or ``zone-id``)."""
        key = (field, value)
        if key not in self._zones:
            from tencentcloud_iac_pulumi import teo

            try:
                result = teo.get_zones(filters=[{"name": field, "values": [value]}])
            except Exception as exc:  # noqa: BLE001 - the invoke's own error, passed on with its context
                raise LookupFailed(f"teo.get_zones({field} {value}) failed: {exc}") from None
            self._zones[key] = [zone_of(z) for z in result.zones or []]
        return self._zones[key]

    def cdn_domains(self, domain: str) -> list[CdnDomain]:
        """CDN domains ``cdn.get_domains(domain=...)`` answers for this name."""
        if domain not in self._domains:
            from tencentcloud_iac_pulumi import cdn

            try:
                result = cdn.get_domains(domain=domain)
            except Exception as exc:  # noqa: BLE001 - the invoke's own error, passed on with its context
                raise LookupFailed(f"cdn.get_domains({domain}) failed: {exc}") from None
            self._domains[domain] = [cdn_domain_of(d) for d in result.domain_lists or []]
        return self._domains[domain]


class UnresolvedReference(ValueError):
    """A name that resolves to nothing or to several objects; the message says which and what to do."""


def exact_zones(zones: Iterable[Zone], name: str) -> list[Zone]:
    """The zones whose site name is ``name`` (the API's name filter may also match similar names)."""
    wanted = name.strip().rstrip(".").lower()
    return [z for z in zones if z.zone_name.rstrip(".").lower() == wanted]


def exact_domains(domains: Iterable[CdnDomain], name: str) -> list[CdnDomain]:
    wanted = name.strip().rstrip(".").lower()
    return [d for d in domains if d.domain.rstrip(".").lower() == wanted]


def resolve_zone_name(name: str, lookup: TencentCloudLookup) -> Zone:
    """The one EdgeOne zone named ``name``; UnresolvedReference when there is none or several."""
    found = exact_zones(lookup.zones("zone-name", name), name)
    if not found:
        raise UnresolvedReference(
            f"no EdgeOne zone named {name!r} is visible to these credentials (pulumi-tencentcloud "
            "teo.get_zones found none); check the site name and the tencentcloud: provider config, "
            "or give the zone id with zone:")
    if len(found) > 1:
        listed = ", ".join(z.describe() for z in found)
        raise UnresolvedReference(
            f"{name!r} names {len(found)} EdgeOne zones: {listed}; give the one you mean by id with zone:")
    return found[0]


def resolve_cdn_domain(name: str, lookup: TencentCloudLookup) -> CdnDomain:
    """The one Tencent Cloud CDN domain ``name``; UnresolvedReference when there is none or several."""
    found = exact_domains(lookup.cdn_domains(name), name)
    if not found:
        raise UnresolvedReference(
            f"no Tencent Cloud CDN domain {name!r} in this account (pulumi-tencentcloud cdn.get_domains "
            "found none); check the domain and the tencentcloud: provider config, or give area: instead")
    if len(found) > 1:
        listed = ", ".join(f"{d.domain} (id {d.id or '?'}, area {d.area or '?'})" for d in found)
        raise UnresolvedReference(
            f"{name!r} matches {len(found)} Tencent Cloud CDN domains: {listed}; give area: instead")
    return found[0]


def zone_id(name: str, lookup: Optional[TencentCloudLookup] = None) -> str:
    """For typed programs: the zone id of the EdgeOne site ``name``.

    ``PrefetchSetArgs(provider=..., zone=zone_id("example.com"), ...)``; raises UnresolvedReference
    when no zone, or several, have that name.
    """
    return resolve_zone_name(name, lookup or TencentCloudLookup()).zone_id


def _resolve_one(ref: Reference, scope: dict[str, Any], lookup: TencentCloudLookup) -> dict[str, Any]:
    """The destination scope with one reference replaced by what it names."""
    scope = dict(scope)
    del scope[ref.key]
    if ref.key == "zoneName":
        scope["zone"] = resolve_zone_name(ref.value, lookup).zone_id
    elif ref.key == "domain":
        domain = resolve_cdn_domain(ref.value, lookup)
        if "area" not in scope:
            areas = load_schema()["$defs"]["area"]["enum"]
            if domain.area not in areas:
                raise UnresolvedReference(
                    f"CDN domain {ref.value!r} reports acceleration area {domain.area!r}, which is not one of "
                    f"{', '.join(areas)}; give area: explicitly")
            scope["area"] = domain.area
    else:  # pragma: no cover - declarations only produce the keys above
        raise UnresolvedReference(f"{ref.key} cannot be looked up")
    return scope


def resolve_references(declarations: Sequence[PrefetchSetDeclaration],
                       lookup: Optional[TencentCloudLookup] = None) -> list[PrefetchSetDeclaration]:
    """Every set with its ``zoneName``/``domain`` keys resolved; DeclarationError lists what could not be.

    Sets without references are returned as they are, and nothing is looked up for them.
    """
    problems: list[Problem] = []
    resolved: list[PrefetchSetDeclaration] = []
    for decl in declarations:
        if not decl.references:
            resolved.append(decl)
            continue
        lookup = lookup or TencentCloudLookup()
        destinations = list(decl.destinations)
        failed = False
        for ref in decl.references:
            dest = destinations[ref.destination]
            try:
                destinations[ref.destination] = replace(dest, scope=_resolve_one(ref, dict(dest.scope), lookup))
            except UnresolvedReference as exc:
                problems.append(Problem(decl.source, ref.line, ref.path, f"set {decl.name!r}: {exc}"))
                failed = True
            except LookupFailed as exc:
                problems.append(Problem(decl.source, ref.line, ref.path,
                                        f"set {decl.name!r}: could not look up {ref.value!r}: {exc}"))
                failed = True
        if failed:
            continue
        seen: dict[str, int] = {}
        for index, dest in enumerate(destinations):
            if dest.label in seen:
                refs = [r for r in decl.references if r.destination in (index, seen[dest.label])]
                ref = refs[-1] if refs else None
                problems.append(Problem(decl.source, ref.line if ref else None, ref.path if ref else "destinations",
                                        f"set {decl.name!r}: destinations[{seen[dest.label]}] and "
                                        f"destinations[{index}] are both {dest.label}; keep one"))
                failed = True
            seen.setdefault(dest.label, index)
        if not failed:
            resolved.append(replace(decl, destinations=tuple(destinations), references=()))
    if problems:
        raise DeclarationError(problems)
    return resolved
