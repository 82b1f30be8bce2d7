"""Prefetch targets derived from an S3-compatible origin bucket, listed with boto3 in the program.

The listing runs in the Pulumi program, never in the dynamic provider: credentials stay out of
the pickled provider, and every preview and up lists the bucket afresh. Each listed object
becomes a target at ``publicBaseUrl + "/" + quote(key)`` carrying its ETag and size, so content
the origin replaced since the last prefetch shows up in the preview (see resource/inputs.py ``desired_value``).

Keys are matched against ``include``/``exclude`` with ``fnmatch.fnmatchcase`` on the key relative
to ``prefix``: ``*`` matches any characters, ``/`` included (``*.js`` matches ``js/app.js``),
``?`` one character, ``[abc]`` one of a set; matching is case-sensitive, as keys are.

Any failure (bucket missing, access denied, credentials refused, endpoint unreachable) fails the
whole preview before a single resource is registered: a set listed in part is never used.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import socket
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union
from urllib.parse import quote

from .model import OriginDeclaration, PrefetchSetDeclaration, Problem
from ..model.clouds import cloud
from ..model.shown import shown
from ..model.status import ContentVersion
from ..model.urls import InvalidUrl, host_of, normalize_url

CONFIG_KEY = "cdn-prefetch:originCredentials"
PAGE_SIZE = 1000          # the S3 maximum per ListObjectsV2 page
MAX_RETRIES = 4           # per page, botocore "standard" mode (throttling, 5xx, connection errors): 5 attempts
CONNECT_TIMEOUT = 10.0    # seconds
READ_TIMEOUT = 60.0       # seconds

_NOT_FOUND = {"NoSuchBucket"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                    "InvalidClientTokenId", "TokenRefreshRequired", "UnrecognizedClientException"}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}


class OriginError(Exception):
    """Listing one or more origins failed; str() lists each problem, naming the set and the origin."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} listing origin buckets (nothing was submitted):"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


@dataclass(frozen=True)
class OriginCredentials:
    """An access key pair from the secret stack config; repr hides the secret parts."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: Optional[str] = field(default=None, repr=False)


@dataclass(frozen=True)
class OriginObject:
    """One listed object that became a target."""

    key: str
    url: str
    version: ContentVersion


@dataclass
class Listing:
    objects: list[OriginObject]
    skipped_folders: int = 0       # zero-byte keys ending in "/": folder placeholders, not content
    skipped_unaddressable: list[str] = field(default_factory=list)  # keys a URL cannot name


class ListingFailed(Exception):
    """One origin could not be listed; the message says why and how to fix it (never a credential)."""


# -- the endpoint -------------------------------------------------------------------------------
# Where clouds serve instance metadata, temporary credentials included: an endpoint there would make
# the listing read them (and a bucket-listing error could echo them). Beyond every link-local address
# (169.254.0.0/16, fe80::/10: AWS, Google, Azure, Tencent's 169.254.0.23, OpenStack...):
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "100.100.100.200",   # Alibaba Cloud ECS
    "fd00:ec2::254",     # AWS IMDS over IPv6
))
METADATA_HOSTS = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog",   # Google Cloud
    "metadata.tencentyun.com",                                  # Tencent Cloud (169.254.0.23)
    "instance-data", "instance-data.ec2.internal",              # AWS
})
ALLOW_LINK_LOCAL = "origin.allowLinkLocal"
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


def endpoint_problem(endpoint: str, allow_link_local: bool = False) -> Optional[str]:
    """What is wrong with ``origin.endpoint`` (None: nothing): credentials in the URL, a URL no client can
    use, or an instance-metadata address (unless ``origin.allowLinkLocal``). Loopback and private
    addresses are fine (a MinIO on 127.0.0.1 or the LAN). Only what the URL says is judged: a name is
    not resolved (DNS may answer differently when the listing runs)."""
    authority = endpoint.partition("//")[2].split("/", 1)[0]
    if "@" in authority:
        return ("carries credentials (user:password@ before the host), which would be sent with every request "
                "and shown wherever the endpoint is; remove them from the URL and give the key pair with "
                "origin.credentials.config, an entry of the secret stack config cdn-prefetch:originCredentials "
                "(pulumi config set --secret --path 'originCredentials.<name>.secretAccessKey' ...)")
    try:
        host = host_of(normalize_url(endpoint))
    except InvalidUrl as exc:
        return str(exc)
    reason = metadata_reason(host)
    if reason is None or allow_link_local:
        return None
    return (f"{host} {reason}, where a cloud serves instance metadata and temporary credentials; give the "
            f"S3-compatible server's own address, or set {ALLOW_LINK_LOCAL}: true if the server really is there")


def metadata_reason(host: str) -> Optional[str]:
    """Why ``host`` (of a normalised URL) is an instance-metadata address, or None. Numeric hosts are read
    as every resolver reads them (``2852039166``, ``0xa9fea9fe`` and ``0251.0376.0251.0376`` are all
    169.254.169.254), IPv4-mapped IPv6 addresses as their IPv4 address."""
    name = host.strip("[]")
    if name in METADATA_HOSTS:
        return "is a cloud instance-metadata host name"
    address = _address(name)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"is a cloud instance-metadata address ({address})"
    if address.is_link_local:
        network = "169.254.0.0/16" if address.version == 4 else "fe80::/10"
        return f"is a link-local address ({address}, in {network})"
    return None


def _address(name: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(name):
        return None
    try:  # the forms inet_aton (and so getaddrinfo) accepts: decimal, hex, octal, fewer than four parts
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


# -- pure parts ---------------------------------------------------------------------------------
def key_url(public_base_url: str, key: str) -> str:
    """The CDN URL of a key: space -> %20, + -> %2B, non-ASCII UTF-8 percent-encoded, / kept."""
    return normalize_url(public_base_url.rstrip("/") + "/" + quote(key, safe="/~"))


def glob_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """One compiled regex for all globs: matching 100,000 keys stays linear."""
    patterns = list(patterns)
    if not patterns:
        return lambda _key: False
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.DOTALL)
    return lambda key: regex.match(key) is not None


def select(origin: OriginDeclaration, pages: Iterable[Mapping[str, Any]]) -> Listing:
    """Turn ListObjectsV2 pages into targets: placeholders skipped, globs applied to key minus prefix."""
    included, excluded = glob_matcher(origin.include), glob_matcher(origin.exclude)
    listing = Listing([])
    for page in pages:
        for item in page.get("Contents") or ():
            key = item["Key"]
            size = int(item.get("Size") or 0)
            if key.endswith("/") and size == 0:
                listing.skipped_folders += 1
                continue
            relative = key[len(origin.prefix):] if key.startswith(origin.prefix) else key
            if not included(relative) or excluded(relative):
                continue
            if any(part in (".", "..") for part in key.split("/")):
                # "a/../b" would be fetched as "b" by every CDN and browser: no URL names this object.
                listing.skipped_unaddressable.append(key)
                continue
            try:
                url = key_url(origin.public_base_url, key)
            except InvalidUrl:
                listing.skipped_unaddressable.append(key)
                continue
            # No ETag (some S3-compatible servers): the modification time still changes with the content.
            etag = item.get("ETag") or f"mtime:{item.get('LastModified')}"
            listing.objects.append(OriginObject(key, url, ContentVersion.of(etag, size)))
    return listing


def drop_too_long(listing: Listing, limit: int) -> list[str]:
    """Leave out the objects whose URL is longer than ``limit`` (the shortest a destination's cloud takes);
    their keys, for the warning. No cloud would take them: reported warm, they never would be."""
    kept = [obj for obj in listing.objects if len(obj.url) <= limit]
    dropped = [obj.key for obj in listing.objects if len(obj.url) > limit]
    listing.objects = kept
    return dropped


def with_origin_targets(decl: PrefetchSetDeclaration, objects: Sequence[OriginObject]) -> PrefetchSetDeclaration:
    """The declaration with the listed objects added as targets (a URL also listed under targets counts once)."""
    targets = list(decl.targets)
    seen = set(targets)
    content: dict[str, ContentVersion] = {}
    for obj in objects:
        if obj.url not in seen:
            seen.add(obj.url)
            targets.append(obj.url)
        content[obj.url] = obj.version
    return replace(decl, targets=tuple(targets), content=content)


def credentials_for(origin: OriginDeclaration, table: Any) -> Optional[OriginCredentials]:
    """The key pair origin.credentials.config names in the stack config, or None (profile / AWS chain)."""
    name = origin.credentials_config
    if name is None:
        return None
    hint = (f"set it with `pulumi config set --secret --path 'originCredentials.{name}.accessKeyId' ...` and "
            f"the same for secretAccessKey")
    if table is None:
        raise ListingFailed(f"origin.credentials.config names {name!r}, but stack config {CONFIG_KEY} is not set; "
                            + hint)
    if not isinstance(table, Mapping):
        raise ListingFailed(f"stack config {CONFIG_KEY} must be a map from a name to "
                            "{accessKeyId, secretAccessKey, sessionToken?}")
    entry = table.get(name)
    if entry is None:
        names = ", ".join(sorted(str(k) for k in table)) or "none"
        raise ListingFailed(f"origin.credentials.config names {name!r}, but stack config {CONFIG_KEY} has no "
                            f"such entry (entries: {names}); " + hint)
    if not isinstance(entry, Mapping) or not all(isinstance(entry.get(k), str) and entry.get(k)
                                                 for k in ("accessKeyId", "secretAccessKey")):
        raise ListingFailed(f"stack config {CONFIG_KEY}.{name} needs both accessKeyId and secretAccessKey; " + hint)
    token = entry.get("sessionToken")
    return OriginCredentials(entry["accessKeyId"].strip(), entry["secretAccessKey"].strip(),
                             token.strip() if isinstance(token, str) and token.strip() else None)


# -- boto3 --------------------------------------------------------------------------------------
def make_client(origin: OriginDeclaration, credentials: Optional[OriginCredentials]) -> Any:
    """An S3 client for the origin: explicit keys, else the profile, else the standard AWS chain."""
    import boto3
    from botocore.config import Config

    keys: dict[str, Any] = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials.access_key_id,
                "aws_secret_access_key": credentials.secret_access_key,
                "aws_session_token": credentials.session_token}
    session = boto3.session.Session(profile_name=origin.profile, region_name=origin.region, **keys)
    config = Config(
        retries={"max_attempts": MAX_RETRIES, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        s3={"addressing_style": origin.addressing_style},
        user_agent_extra="cdn-prefetch",
    )
    return session.client("s3", endpoint_url=origin.endpoint, config=config)


def list_origin(origin: OriginDeclaration, credentials: Optional[OriginCredentials] = None,
                client_factory: Optional[Callable[..., Any]] = None) -> Listing:
    """Every page of the bucket under the prefix; raises ListingFailed with a plain reason."""
    from botocore.exceptions import BotoCoreError, ClientError

    secrets = [s for s in (credentials.secret_access_key, credentials.session_token) if s] if credentials else []
    wrong = endpoint_problem(origin.endpoint, origin.allow_link_local) if origin.endpoint else None
    if wrong is not None:  # declarations refuse it already; an origin built by other code too
        raise ListingFailed(f"origin.endpoint {wrong}")
    try:
        client = (client_factory or make_client)(origin, credentials)
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=origin.bucket, Prefix=origin.prefix,
                                   PaginationConfig={"PageSize": PAGE_SIZE})
        return select(origin, pages)
    except ClientError as exc:
        raise ListingFailed(_redact(_client_error(origin, exc), secrets)) from None
    except BotoCoreError as exc:
        raise ListingFailed(_redact(_botocore_error(origin, exc), secrets)) from None


def _client_error(origin: OriginDeclaration, exc: Any) -> str:
    error = exc.response.get("Error") or {}
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    code = str(error.get("Code") or status or "Error")
    detail = f"{code}: {error['Message']}" if error.get("Message") else code
    if code in _NOT_FOUND:
        return (f"the bucket {origin.bucket!r} does not exist ({detail}); check origin.bucket, origin.endpoint "
                "and origin.region")
    if code in _BAD_CREDENTIALS:
        return (f"the credentials were refused ({detail}); check origin.credentials, or AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY / AWS_PROFILE")
    if code in _WRONG_REGION:
        return f"the bucket is in another region ({detail}); set origin.region to the bucket's region"
    if code in _DENIED or status == 403:
        return (f"access denied ({detail}); the credentials need s3:ListBucket on bucket {origin.bucket!r}"
                + (f" for prefix {origin.prefix!r}" if origin.prefix else ""))
    return f"listing failed ({detail})"


def _botocore_error(origin: OriginDeclaration, exc: Exception) -> str:
    from botocore import exceptions as bx

    if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return (f"the endpoint did not answer in time after {MAX_RETRIES + 1} attempts ({exc}); check "
                "origin.endpoint and the network")
    if isinstance(exc, bx.EndpointConnectionError):
        return (f"cannot reach the endpoint after {MAX_RETRIES + 1} attempts ({exc}); check origin.endpoint "
                "and that the server is up")
    if isinstance(exc, bx.NoCredentialsError):
        return ("no credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
                "origin.credentials.profile, or origin.credentials.config with the secret stack config "
                f"{CONFIG_KEY}")
    if isinstance(exc, bx.ProfileNotFound):
        return f"{exc}; check origin.credentials.profile and the AWS config files"
    if isinstance(exc, (bx.PartialCredentialsError, bx.InvalidConfigError)):
        return f"the AWS configuration is incomplete ({exc})"
    return f"listing failed ({type(exc).__name__}: {exc})"


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


# -- the program's step -------------------------------------------------------------------------
def resolve_origins(
    declarations: Sequence[PrefetchSetDeclaration],
    *,
    credentials_table: Any = None,
    warn: Callable[[str], None] = lambda error_message: None,
    info: Callable[[str], None] = lambda error_message: None,
    lister: Callable[[OriginDeclaration, Optional[OriginCredentials]], Listing] = list_origin,
) -> list[PrefetchSetDeclaration]:
    """List every set's origin; return the sets with their origin targets, or raise OriginError naming each failure.

    Every origin is tried before failing, so all problems are reported in one preview.
    """
    resolved: list[PrefetchSetDeclaration] = []
    problems: list[Problem] = []
    for decl in declarations:
        origin = decl.origin
        if origin is None:
            resolved.append(decl)
            continue
        where = f"set {decl.name!r}, {origin.describe()}"
        try:
            listing = lister(origin, credentials_for(origin, credentials_table))
        except ListingFailed as exc:
            problems.append(Problem(decl.source, origin.line, "origin", f"{where}: {exc}"))
            continue
        if listing.skipped_unaddressable:
            warn(f"{decl.source}: {where}: {len(listing.skipped_unaddressable)} keys left out because no URL "
                 f"can name them ('.' or '..' path segments), e.g. {shown(listing.skipped_unaddressable[0])}")
        specs = [cloud(d.provider) for d in decl.destinations]
        if specs:
            shortest = min(specs, key=lambda spec: spec.max_url_length)
            too_long = drop_too_long(listing, shortest.max_url_length)
            if too_long:
                warn(f"{decl.source}: {where}: {len(too_long)} keys left out because their URL is longer than the "
                     f"{shortest.max_url_length:,} characters {shortest.title} takes, e.g. {shown(too_long[0])}; "
                     "shorten the keys or the publicBaseUrl")
        if not listing.objects:
            message = (f"{where}: no object matches (prefix {shown(origin.prefix)}, include "
                       f"{shown(list(origin.include))}, exclude {shown(list(origin.exclude))})")
            if origin.must_not_be_empty:
                problems.append(Problem(decl.source, origin.line, "origin", message + "; check the bucket, prefix "
                                        "and globs, or set origin.mustNotBeEmpty: false to allow an empty listing"))
                continue
            warn(f"{decl.source}: {message}; the set keeps only its listed targets. Set origin.mustNotBeEmpty: "
                 "true to fail instead")
        else:
            info(f"set {decl.name}: {len(listing.objects)} targets from {origin.describe()}")
        resolved.append(with_origin_targets(decl, listing.objects))
    if problems:
        raise OriginError(problems)
    return resolved
