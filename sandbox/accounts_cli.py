"""`python -m sandbox account ...` and `ucloud-domain ...`: the zones and domains, and which key pair owns
each (`sandbox.accounts`)."""

from __future__ import annotations

import argparse

from .accounts import SERVICES
from .edgeone import ZONE_ID
from .keys import OTHER_SECRET_ID, OTHER_UCLOUD_PUBLIC_KEY, SANDBOX_SECRET_ID, SANDBOX_UCLOUD_PUBLIC_KEY
from .store import SandboxStore

BUILT_IN = {
    "tencent": {"default": SANDBOX_SECRET_ID, "other": OTHER_SECRET_ID},
    "ucloud": {"default": SANDBOX_UCLOUD_PUBLIC_KEY, "other": OTHER_UCLOUD_PUBLIC_KEY},
}
"""The built-in accounts by key family, under the names `--key` accepts for them."""
FAMILY = {"teo": "tencent", "cdn": "tencent", "ucloud": "ucloud"}


def add_parser(sub: argparse._SubParsersAction, db_parent: argparse.ArgumentParser) -> None:
    account = sub.add_parser(
        "account", help="which key pair owns which EdgeOne zone, CDN domain and UCloud domain",
        description="Each key pair is an account. A zone or domain nobody owns is claimed by the first key pair "
                    "whose request names it; another key pair is then refused with the cloud's code for a resource "
                    "of another account (EdgeOne ResourceUnavailable.ZoneNotFound, Cloud CDN "
                    "ResourceNotFound.CdnHostNotExists, UCloud RetCode 299).",
    )
    account_sub = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    listing = account_sub.add_parser("list", parents=[db_parent], help="the built-in key pairs and who owns what")
    listing.add_argument("--service", choices=list(SERVICES), help="only this cloud's zones or domains")
    grant = account_sub.add_parser("grant", parents=[db_parent], help="give RESOURCE to the key pair KEY")
    grant.add_argument("resource", metavar="RESOURCE",
                       help="an EdgeOne ZoneId (zone-...), a CDN domain (static.example.com) or a UCloud DomainId")
    grant.add_argument("--key", required=True,
                       help="the SecretId or PublicKey of the new owner, or `default` / `other` (a built-in pair)")
    grant.add_argument("--service", choices=list(SERVICES), help="the cloud (default: told by RESOURCE)")
    release = account_sub.add_parser("release", parents=[db_parent],
                                     help="RESOURCE is nobody's: the next key pair naming it claims it")
    release.add_argument("resource", metavar="RESOURCE")
    release.add_argument("--service", choices=list(SERVICES), help="the cloud (default: told by RESOURCE)")

    domain = sub.add_parser("ucloud-domain", help="declare UCloud DomainIds (for the quota call)")
    domain_sub = domain.add_subparsers(dest="domain_command", required=True, metavar="ACTION")
    domain_add = domain_sub.add_parser("add", parents=[db_parent], help="map a DomainId to its hostname")
    domain_add.add_argument("domain_id", metavar="DOMAIN_ID", help="e.g. ucdn-abc123")
    domain_add.add_argument("host", metavar="HOST", help="e.g. static.example.com")
    domain_add.add_argument("--key", help="the PublicKey owning it, or `default` / `other` (default: the first "
                                          "key pair that names it)")
    domain_sub.add_parser("list", parents=[db_parent], help="list declared domains")


def service_of(store: SandboxStore, resource: str, service: str | None) -> str:
    """The cloud `resource` is on: `service` if given, else what the name says (a ZoneId, a declared
    UCloud DomainId, a hostname)."""
    if service is not None:
        return service
    name = resource.strip()
    if ZONE_ID.fullmatch(name):
        return "teo"
    if store.ucloud_domain_host(name) is not None:
        return "ucloud"
    if "." in name and "/" not in name and " " not in name:
        return "cdn"
    raise ValueError(f"cannot tell which cloud {resource!r} is on: add --service {' or '.join(SERVICES)}")


def key_of(service: str, key: str) -> str:
    """`--key` as an account: `default` / `other` name a built-in pair of the service's family."""
    return BUILT_IN[FAMILY[service]].get(key.strip(), key.strip())


def run(args: argparse.Namespace, store: SandboxStore) -> int:
    if args.command == "ucloud-domain":
        return _domains(args, store)
    if args.account_command == "list":
        print("built-in key pairs (a sandbox started with its own key pairs accepts those instead):")
        for family, keys in BUILT_IN.items():
            print(f"  {family:8} " + "  ".join(f"{key} ({name})" for name, key in keys.items()))
        owned = store.owners(args.service)
        print("owners (a zone or domain nobody owns is claimed by the first key pair naming it):")
        if not owned:
            print("  none yet")
        for o in owned:
            print(f"  {o.service:7} {SERVICES[o.service]:7} {o.resource} {o.account}")
    elif args.account_command == "grant":
        service = service_of(store, args.resource, args.service)
        owned = store.grant(service, args.resource, key_of(service, args.key))
        print(f"{owned.service} {SERVICES[owned.service]} {owned.resource} is owned by {owned.account}")
    else:
        service = service_of(store, args.resource, args.service)
        released = store.release(service, args.resource)
        state = "is nobody's now" if released else "was nobody's"
        print(f"{service} {SERVICES[service]} {args.resource.strip()} {state}: the next key pair naming it claims it")
    return 0


def _domains(args: argparse.Namespace, store: SandboxStore) -> int:
    if args.domain_command == "add":
        store.add_ucloud_domain(args.domain_id, args.host)
        owner = store.grant("ucloud", args.domain_id, key_of("ucloud", args.key)).account if args.key \
            else store.owner("ucloud", args.domain_id)
        owned = f", owned by {owner}" if owner else ""
        print(f"ucloud domain {args.domain_id} -> {args.host.strip().lower()}{owned}")
        return 0
    domains = store.ucloud_domains()
    if not domains:
        print("no ucloud domains: GetUcdnDomainPrefetchRefreshState answers 'domain not found'")
    for domain_id, host in domains.items():
        owner = store.owner("ucloud", domain_id)
        print(f"{domain_id} {host}" + (f" (owned by {owner})" if owner else ""))
    return 0
