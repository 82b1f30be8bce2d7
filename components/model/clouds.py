"""The registry of clouds: everything that differs between the clouds, one entry per cloud.

Like octodns's providers declaring ``SUPPORTS_*`` flags, each cloud declares its facts here:
how a destination names its scope (keys, the key that tells two destinations apart, the names a
program may look up instead of ids), how it is described in messages, its credentials, its
documented limits and capabilities, and which module builds its adapter. Nothing outside this
module and ``components/clouds/`` names a cloud: declarations, the component, the provider,
preflight, settings, the report and the adapter factory all read these entries.

Adding a cloud = one adapter module under ``components/clouds/`` (``build()``), one entry here (or,
from another package, a ``cdn_prefetch.clouds`` entry point naming a ``CloudSpec``, with the JSON Schema
of its own scope keys in ``scope_schema``), and its sandbox module (tests/test_fourth_cloud.py does it).
This module is plain data: importing it imports no adapter and no SDK.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterable, Iterator, Mapping, Optional

from .connection import TencentCredentials, UCloudCredentials

#: Entry-point group through which another package registers a cloud (its value is a CloudSpec).
ENTRY_POINT_GROUP = "cdn_prefetch.clouds"


@dataclass(frozen=True)
class CredentialFamily:
    """One account's key pair, shared by the clouds of one vendor (EdgeOne and Cloud CDN share Tencent's)."""

    name: str                      # the stack-config namespace of its keys, e.g. ``tencentcloud``
    title: str                     # in messages: ``Tencent Cloud``
    config_keys: tuple[str, str]   # (id, secret), e.g. ``tencentcloud:secretId``, ``tencentcloud:secretKey``
    env_keys: tuple[str, str]      # the same from the environment
    token_config_key: Optional[str] = None
    token_env_key: Optional[str] = None
    # Builds the credential value (whose repr hides the secret): (id, secret, token, source) -> value.
    make: Callable[..., object] = TencentCredentials
    # Names of the sandbox package's built-in pair for this family.
    sandbox_pair: tuple[str, str] = ("SANDBOX_SECRET_ID", "SANDBOX_SECRET_KEY")

    def hint(self) -> str:
        """How to set them, for messages."""
        return (f"run `pulumi config set --secret {self.config_keys[0]} ...` and `pulumi config set --secret "
                f"{self.config_keys[1]} ...`, or set {self.env_keys[0]} and {self.env_keys[1]}")


@dataclass(frozen=True)
class ReferenceKey:
    """A destination key naming a cloud object the program looks up (declare/references.py), and the
    scope key the lookup fills in."""

    key: str                 # ``zoneName``
    fills: str               # ``zone``
    noun: str                # in messages: ``site name``
    thing: str               # ``site``
    example: str             # ``example.com``
    exclusive: bool = False  # the scope key is given either by id or by this name, never both


@dataclass(frozen=True)
class CloudSpec:
    """One cloud: the facts every layer reads (see the module docstring)."""

    key: str                                   # the ``provider`` value of a destination
    title: str                                 # in messages: ``EdgeOne``
    identity_key: str                          # the scope key that tells two destinations apart
    identity_noun: str                         # ``zone``: a destination is described ``edgeone zone zone-x``
    scope_keys: tuple[str, ...]                # every key a destination of this cloud may declare
    typed_args: Mapping[str, str]              # typed API argument -> scope key (engine/args.py)
    credentials: CredentialFamily
    adapter: str                               # module under which ``build(destination, endpoint, credentials)``
    required_key: Optional[str] = None         # a scope key the typed API requires
    references: tuple[ReferenceKey, ...] = ()
    preflight: Optional[str] = None            # what preflight checks: ``zone`` | ``domain`` | None (nothing)
    # JSON Schema of each scope key schemas/prefetch-set.schema.json does not define (another package's cloud).
    scope_schema: Mapping[str, Mapping] = field(default_factory=dict)
    # Documented limits.
    history_window: timedelta = timedelta(days=7)  # longest span one history query may cover
    requests_per_second: int = 20                  # per action and account
    history_page: int = 1000                       # most rows one history page may hold (the first size asked for)
    # Smaller sizes to step down to when the cloud refuses ``history_page`` as a parameter error: for
    # a largest Limit that is not documented (components/clouds/page_size.py). Empty: documented.
    history_page_fallback: tuple[int, ...] = ()
    # Batch sizes to try, largest first, when the cloud answers its quota call without a quota (model/quota.py
    # ``Quota.unreported``); each refusal of a batch as too large steps down once per process. Empty: the
    # quota is always reported.
    unreported_batches: tuple[int, ...] = ()
    # Capabilities.
    supports_purge: bool = False                   # its adapter's purger() purges URLs (clouds/base.py)
    # How the polls of an ``up`` read the prefetch tasks it waits for (clouds/poll_rounds.py): ``task``, one
    # query per task by its id filter (cheapest when a task's rows fill a history page: one page per task,
    # never more than a time window holding that task); ``window``, bounded time windows over the tasks due
    # (cheapest when a task is smaller than a page: a task-id query would cost a page per task); None, the
    # shared open windows of clouds/history.py (a cloud whose adapter reads no task by id).
    poll_reads: Optional[str] = None
    # URLs it takes (components/model/urls.py ``cloud_problems`` checks them before anything is submitted).
    # Longest URL, in characters of the normalised (ASCII) URL. Where the cloud documents none: RFC 9110
    # §4.1's floor, the length every HTTP recipient is asked to support (a longer URL may be refused by
    # the API or cached by no edge).
    max_url_length: int = 8000
    # A scope key naming the site the cloud accelerates: every URL's host must be it or below it.
    host_within: Optional[str] = None
    # One destination is one domain, and every URL it prefetches must start with http(s)://<that domain>/.
    same_host: bool = False
    # Prefetch options: scope keys its adapter passes to every prefetch submit, each with the value that
    # means "not given" (the API's behaviour when the parameter is absent). A change to one of them makes
    # every target due for a prefetch (``declared_options``; plan/reconcile.py), since the copy the edge
    # holds is then not the one the options ask for (another header variant, layer or segments).
    prefetch_options: Mapping[str, object] = field(default_factory=dict)

    @property
    def supports_preflight(self) -> bool:
        return self.preflight is not None

    @property
    def reference_keys(self) -> dict[str, str]:
        """``{"zoneName": "zone"}``: the reference keys and what each fills in."""
        return {ref.key: ref.fills for ref in self.references}

    def describe(self, identity: object) -> str:
        """How messages name one destination: ``edgeone zone zone-x``."""
        return f"{self.key} {self.identity_noun} {identity}"

    def declared_options(self, destination: Mapping[str, object]) -> dict[str, object]:
        """The prefetch options ``destination`` gives a value other than "not given", by key."""
        return {key: destination[key] for key, unset in self.prefetch_options.items()
                if destination.get(key) is not None and destination[key] != unset}


TENCENT = CredentialFamily(
    name="tencentcloud", title="Tencent Cloud",
    config_keys=("tencentcloud:secretId", "tencentcloud:secretKey"),
    env_keys=("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"),
    token_config_key="tencentcloud:securityToken", token_env_key="TENCENTCLOUD_SECURITY_TOKEN",
    make=TencentCredentials, sandbox_pair=("SANDBOX_SECRET_ID", "SANDBOX_SECRET_KEY"),
)
UCLOUD = CredentialFamily(
    name="ucloud", title="UCloud",
    config_keys=("ucloud:publicKey", "ucloud:privateKey"),
    env_keys=("UCLOUD_PUBLIC_KEY", "UCLOUD_PRIVATE_KEY"),
    make=lambda key_id, secret, _token, source: UCloudCredentials(key_id, secret, source),
    sandbox_pair=("SANDBOX_UCLOUD_PUBLIC_KEY", "SANDBOX_UCLOUD_PRIVATE_KEY"),
)

BUILT_IN = (
    CloudSpec(
        key="edgeone", title="EdgeOne", identity_key="zone", identity_noun="zone",
        scope_keys=("zone", "zoneName", "mode", "headers", "encodeUrl", "prefetchMediaSegments"),
        typed_args={"zone": "zone", "mode": "mode", "headers": "headers", "encode_url": "encodeUrl",
                    "prefetch_media_segments": "prefetchMediaSegments"},
        credentials=TENCENT, adapter="components.clouds.edgeone", required_key="zone",
        references=(ReferenceKey("zoneName", "zone", "site name", "site", "example.com", exclusive=True),),
        preflight="zone", supports_purge=True,
        # "HTTP restrictions" (cloud.tencent.com/document/product/1552/107286, intl 1145/63624): request
        # URL length 8192 B. A zone accelerates its site name and the hosts below it.
        max_url_length=8192, host_within="zoneName",
        # DescribeContentQuota's PrefetchQuota / PurgeQuota "may be null" (1552/80701). Then: the official
        # example's Batch 2000 (the FAQ 1145/57250 allows up to 5,000 a pre-warm), stepping down on
        # LimitExceeded.BatchQuota.
        unreported_batches=(2000, 1000, 500, 100, 20),
        # Filter ``job-id`` takes one value; a task holds up to 1000 URLs (the batch) and a page 1000 rows.
        poll_reads="task",
        # CreatePrefetchTask: Headers, EncodeUrl (deprecated), PrefetchMediaSegments (on|off, default off).
        prefetch_options={"headers": [], "encodeUrl": False, "prefetchMediaSegments": "off"},
    ),
    CloudSpec(
        key="tencent-cdn", title="Tencent Cloud CDN", identity_key="area", identity_noun="area",
        scope_keys=("area", "domain", "userAgent", "layer", "parseM3U8", "headers"),
        typed_args={"area": "area", "user_agent": "userAgent", "layer": "layer", "parse_m3u8": "parseM3U8",
                    "headers": "headers"},
        credentials=TENCENT, adapter="components.clouds.tencent_cdn",
        references=(ReferenceKey("domain", "area", "domain", "domain", "static.example.com"),),
        preflight="domain", supports_purge=True,
        # DescribePushTasks / DescribePurgeTasks document only "default 20" (issue 21). Straight down to the
        # documented size: a middle step (100) would cost a cloud that takes only 20 a second refusal.
        history_page_fallback=(20,),
        # ``TaskId`` takes one id; a task holds up to 500 URLs (the batch) and a page 1000 rows: a task-id
        # query would read half a page per call, a window of due tasks a full one.
        poll_reads="window",
        # PushUrlsCache / PurgeUrlsCache document no URL length (max_url_length: the default). A URL's host
        # must be an acceleration domain of the account, online in the area: preflight asks the cloud.
        # PushUrlsCache: UserAgent (default TencentCdn), Layer (only `middle`), ParseM3U8, Headers.
        prefetch_options={"userAgent": None, "layer": None, "parseM3U8": False, "headers": []},
    ),
    CloudSpec(
        key="ucloud", title="UCloud UCDN", identity_key="domainId", identity_noun="domain",
        scope_keys=("domainId", "projectId"), typed_args={"domain_id": "domainId", "project_id": "projectId"},
        credentials=UCLOUD, adapter="components.clouds.ucloud", required_key="domainId", supports_purge=True,
        # PrefetchNewUcdnDomainCache / RefreshNewUcdnDomainCache: "UrlList.N must start with http://<domain>/"
        # (UCloudDoc-Team/api ucdn-api); no URL length documented.
        same_host=True,
    ),
)

_REGISTRY: dict[str, CloudSpec] = {spec.key: spec for spec in BUILT_IN}
_PLUGINS_LOADED = False
_LOCK = threading.Lock()
_PLUGIN_LOCK = threading.Lock()
#: Entry point name -> why it could not be registered (named when that cloud is asked for).
PLUGIN_ERRORS: dict[str, str] = {}


class UnknownCloud(KeyError):
    """A destination names a cloud no entry describes."""


def register(spec: CloudSpec) -> CloudSpec:
    """Add a cloud (another package's, or a test's). Refused: a key already taken by another spec, or a
    typed argument another cloud already maps to a different scope key (it would change that cloud)."""
    with _LOCK:
        existing = _REGISTRY.get(spec.key)
        if existing is not None and existing != spec:
            raise ValueError(f"cloud {spec.key!r} is already registered")
        for other in _REGISTRY.values():
            clash = sorted(arg for arg, key in spec.typed_args.items()
                           if other.key != spec.key and other.typed_args.get(arg, key) != key)
            if clash:
                raise ValueError(f"cloud {spec.key!r}: typed argument {clash[0]!r} already means "
                                 f"{other.typed_args[clash[0]]!r} for cloud {other.key!r}")
        _REGISTRY[spec.key] = spec
    return spec


def _load_plugins() -> None:
    """Entry points of the ``cdn_prefetch.clouds`` group, once per process: on the first unknown key, or
    the first listing (an installed cloud's credentials and arguments count before anything names it).

    Thread-safe (the provider host serves calls on several threads): a second caller waits for the
    first to finish. A plugin that fails to load is skipped and its error kept in ``PLUGIN_ERRORS``,
    which ``cloud()`` names when that cloud is asked for: a broken package never breaks the others.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    with _PLUGIN_LOCK:
        if _PLUGINS_LOADED:
            return
        from importlib.metadata import entry_points

        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                spec = point.load()
                if not isinstance(spec, CloudSpec):
                    raise TypeError(f"{point.value} is a {type(spec).__name__}, not a CloudSpec")
                register(spec)
            except Exception as exc:  # noqa: BLE001 - any failure of another package's code is reported, not raised
                PLUGIN_ERRORS[point.name] = f"{type(exc).__name__}: {exc}"
        _PLUGINS_LOADED = True


def find(key: object) -> Optional[CloudSpec]:
    """The entry for ``key``, or None."""
    if not isinstance(key, str):
        return None
    spec = _REGISTRY.get(key)
    if spec is None:
        _load_plugins()
        spec = _REGISTRY.get(key)
    return spec


def cloud(key: object) -> CloudSpec:
    """The entry for ``key``; UnknownCloud (naming the known keys) if there is none."""
    spec = find(key)
    if spec is None:
        broken = f" (the installed cloud {key!r} failed to load: {PLUGIN_ERRORS[key]})" if key in PLUGIN_ERRORS else ""
        raise UnknownCloud(f"unknown provider {key!r}; use {or_list(cloud_keys())}{broken}")
    return spec


def or_list(items: Iterable[str]) -> str:
    """``a, b or c``: how messages list the choices."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def cloud_keys() -> tuple[str, ...]:
    """Every registered cloud's key, built-in ones first."""
    _load_plugins()
    return tuple(_REGISTRY)


def clouds() -> Iterator[CloudSpec]:
    _load_plugins()
    return iter(tuple(_REGISTRY.values()))


def all_scope_keys() -> frozenset[str]:
    """Every scope key of every cloud (a key of another cloud on a destination is a mistake)."""
    return frozenset(key for spec in clouds() for key in spec.scope_keys)


def credential_families() -> tuple[CredentialFamily, ...]:
    """Each family once, in registry order."""
    seen: dict[str, CredentialFamily] = {}
    for spec in clouds():
        seen.setdefault(spec.credentials.name, spec.credentials)
    return tuple(seen.values())
