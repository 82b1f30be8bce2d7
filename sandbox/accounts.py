"""Sandbox accounts: which key pair owns which EdgeOne zone, Cloud CDN domain and UCloud domain.

A key pair is an account (sub-accounts are not modelled). Each cloud answers a request that names
another account's resource the way it documents for a resource that is not the caller's.
So that the embedded sandbox needs no setup, a resource nobody owns yet is claimed by the first
account whose request names it, read or submit: a new user's first `pulumi up` owns the example zone,
and another key pair naming it afterwards is refused. `python -m sandbox account list|grant|release`
shows and changes who owns what; ownership is configuration, so `reset()` keeps it. The built-in
key pairs (`sandbox.keys`) are two accounts per cloud family.

What each cloud's accounts own, and the answer for another account's (codes from the official lists):
- EdgeOne (`teo`): ZoneIds. All five actions (CreatePrefetchTask, CreatePurgeTask,
  DescribePrefetchTasks, DescribePurgeTasks, DescribeContentQuota) with another account's ZoneId:
  `ResourceUnavailable.ZoneNotFound`, "站点不存在或不属于该账号" (the site does not exist or does not
  belong to this account) in the SDK's `teo/v20220901/errorcodes.py` (tencentcloud-sdk-python-teo
  3.1.194) and the Go SDK's `teo/v20220901/errors.go`. The per-action lists of the Go SDK's client.go
  name for these actions only the CAM codes (`UnauthorizedOperation.CamUnauthorized`, `.NoPermission`:
  a sub-account's missing permission), which say nothing of ownership; a malformed ZoneId stays
  `InvalidParameter.ZoneNotFound` ("站点不存在").
- Cloud CDN (`cdn`): domains, i.e. the lowercase hosts of URLs. PushUrlsCache and PurgeUrlsCache with
  a URL on another account's domain, and DescribePushTasks / DescribePurgeTasks whose Keyword names
  one: `ResourceNotFound.CdnHostNotExists`, "未查询到该域名，请确认域名是否正确" (the domain was not
  found) in the SDK's `cdn/v20180606/errorcodes.py` (3.1.169); the Go SDK's client.go lists it for
  PushUrlsCache and DescribePushTasks (cdn-apis.md §1.1). `UnauthorizedOperation.CdnHostUnauthorized`
  ("CDN子账号加速域名未授权") is a sub-account's. Histories and quotas are per account: another
  account's TaskId finds nothing, and each account's pushes spend only its own areas' daily quota.
- UCloud (`ucloud`): DomainIds (declared with `add_ucloud_domain`) and so their hosts.
  GetUcdnDomainPrefetchRefreshState with another account's DomainId, and a prefetch or refresh of a URL
  on the host of another account's domain: RetCode 299, "IAM 权限校验未通过" (IAM permission check
  failed), from UCloud's common error codes (UCloudDoc-Team/api `summary/public.md`, cdn-apis.md §3.4):
  UCloud publishes no UCDN code of its own for another account's domain. A URL whose host is no
  declared domain's is accepted, as before. Histories were already per PublicKey.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterable

from .database import Database

SERVICES: dict[str, str] = {"teo": "zone", "cdn": "domain", "ucloud": "domain"}
"""What an account owns on each emulated service (the noun messages use)."""
ZONE_NOT_OWNED = "ResourceUnavailable.ZoneNotFound"
CDN_HOST_NOT_OWNED = "ResourceNotFound.CdnHostNotExists"
RET_NOT_PERMITTED = 299


@dataclass(frozen=True)
class Ownership:
    service: str
    resource: str
    account: str


def resource_key(service: str, resource: str) -> str:
    """How a resource is stored: trimmed, and a CDN domain lowercased (hosts are case-insensitive)."""
    if service not in SERVICES:
        raise ValueError(f"service must be one of {', '.join(SERVICES)}; got {service!r}")
    if not isinstance(resource, str) or not resource.strip():
        raise ValueError(f"a {SERVICES[service]} must be a non-empty string; got {resource!r}")
    resource = resource.strip()
    return resource.lower() if service == "cdn" else resource


class AccountTable(Database):
    """The owners table (claims made by requests, grants and releases made by whoever steers), and the
    UCloud domains an account may own (DomainId -> host)."""

    def claim(self, service: str, resources: Iterable[str], account: str) -> dict[str, str]:
        """Let `account` use `resources`: those nobody owns become its own, unless one is another account's.

        Returns {resource: owner} of the resources owned by another account; then nothing is claimed.
        Empty: every resource is `account`'s now. When all are its already (the common case) this is
        one read and no write.
        """
        wanted = sorted({resource_key(service, r) for r in resources})
        if not wanted:
            return {}
        with self._connect() as db:
            owners = self._owners_of(db, service, wanted)
        if len(owners) == len(wanted) and all(owner == account for owner in owners.values()):
            return {}
        with self._write() as db:
            owners = self._owners_of(db, service, wanted)  # again, inside the transaction
            foreign = {r: owner for r, owner in owners.items() if owner != account}
            if not foreign:
                db.executemany("INSERT INTO owners (service, resource, account) VALUES (?, ?, ?)",
                               [(service, r, account) for r in wanted if r not in owners])
        return foreign

    @staticmethod
    def _owners_of(db: sqlite3.Connection, service: str, resources: list[str]) -> dict[str, str]:
        marks = ",".join("?" * len(resources))
        rows = db.execute(
            f"SELECT resource, account FROM owners WHERE service = ? AND resource IN ({marks})", (service, *resources))
        return {r["resource"]: r["account"] for r in rows}

    def owner(self, service: str, resource: str) -> str | None:
        """The account owning `resource` on `service`, or None while nobody does."""
        key = resource_key(service, resource)
        with self._connect() as db:
            return self._owners_of(db, service, [key]).get(key)

    def grant(self, service: str, resource: str, account: str) -> Ownership:
        """Make `account` the owner of `resource` (whoever owned it before)."""
        if not isinstance(account, str) or not account.strip():
            raise ValueError(f"an account is a key pair's SecretId or PublicKey; got {account!r}")
        owned = Ownership(service, resource_key(service, resource), account.strip())
        with self._write() as db:
            db.execute("INSERT INTO owners (service, resource, account) VALUES (?, ?, ?) "
                       "ON CONFLICT(service, resource) DO UPDATE SET account = excluded.account",
                       (owned.service, owned.resource, owned.account))
        return owned

    def release(self, service: str, resource: str) -> bool:
        """Forget who owns `resource`: the next account naming it claims it. False if nobody did."""
        with self._write() as db:
            cur = db.execute("DELETE FROM owners WHERE service = ? AND resource = ?",
                             (service, resource_key(service, resource)))
            return cur.rowcount > 0

    def owners(self, service: str | None = None) -> list[Ownership]:
        """Every ownership, by service then resource."""
        where, args = ("WHERE service = ?", (service,)) if service is not None else ("", ())
        with self._connect() as db:
            rows = db.execute(f"SELECT service, resource, account FROM owners {where} ORDER BY service, resource",
                              args).fetchall()
        return [Ownership(r["service"], r["resource"], r["account"]) for r in rows]

    # ----- UCloud domains ----------------------------------------------------------------------------

    def add_ucloud_domain(self, domain_id: str, host: str) -> None:
        """Declare a UCloud DomainId and its hostname (GetUcdnDomainPrefetchRefreshState needs it).

        UCloud quotas are per domain while URLs only name a host, so this is the link between the two.
        Adding an existing id re-points it. Domains are configuration: `reset()` keeps them.
        """
        if not isinstance(domain_id, str) or not domain_id.strip():
            raise ValueError("domain_id must be a non-empty string, e.g. 'ucdn-abc123'")
        if not isinstance(host, str) or not host.strip() or "/" in host or " " in host.strip():
            raise ValueError(f"host must be a bare hostname such as 'static.example.com'; got {host!r}")
        with self._write() as db:
            db.execute(
                "INSERT INTO ucloud_domains (domain_id, host) VALUES (?, ?) "
                "ON CONFLICT(domain_id) DO UPDATE SET host = excluded.host",
                (domain_id.strip(), host.strip().lower()),
            )

    def ucloud_domains(self) -> dict[str, str]:
        """DomainId -> hostname, sorted by DomainId."""
        with self._connect() as db:
            rows = db.execute("SELECT domain_id, host FROM ucloud_domains ORDER BY domain_id").fetchall()
        return {r["domain_id"]: r["host"] for r in rows}

    def ucloud_domain_ids(self, hosts: Iterable[str]) -> dict[str, list[str]]:
        """host -> the DomainIds declared for it, sorted, for the hosts of `hosts` that have any."""
        wanted = sorted({h.strip().lower() for h in hosts})
        found: dict[str, list[str]] = {}
        with self._connect() as db:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT domain_id, host FROM ucloud_domains WHERE host IN ({marks}) ORDER BY domain_id"
                for r in db.execute(sql, chunk):
                    found.setdefault(r["host"], []).append(r["domain_id"])
        return found

    def ucloud_domain_host(self, domain_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT host FROM ucloud_domains WHERE domain_id = ?", (domain_id,)).fetchone()
        return None if row is None else str(row["host"])
