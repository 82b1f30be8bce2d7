"""What a declaration is once validated: a set, its destinations, its origin, its references, and
the problems a file can have. Values only; ``declarations.py`` builds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping, Optional, Sequence

from ..model.clouds import cloud
from ..model.durations import parse_duration
from ..model.shown import cut
from ..model.status import ContentVersion


#: Most problems listed for one file: a file of 100,000 bad targets gets a readable message, and is
#: validated only until they are found.
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one declaration file."""

    file: str
    line: Optional[int]
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DeclarationError(Exception):
    """Declarations are invalid; str() lists every problem, one per line, for the preview to print."""

    #: What the problems are about, in the first line of the message.
    about = "in prefetch-set declarations"

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} {self.about}:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


@dataclass(frozen=True)
class DestinationDeclaration:
    """One CDN destination of a set: provider plus its scope (zone, area or domain, and options)."""

    provider: str
    scope: Mapping[str, Any]
    # The set's allowPartial/safety, as the provider reads them (components/plan/safety.py); empty if not declared.
    policy: Mapping[str, str] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        spec = cloud(self.provider)
        key = spec.identity_key
        if key not in self.scope:  # not resolved yet: named by its reference (zoneName, domain)
            for ref in spec.references:
                if ref.fills == key and ref.key in self.scope:
                    return str(self.scope[ref.key])
        return str(self.scope[key])

    @property
    def unresolved(self) -> dict[str, str]:
        """Reference keys still to be looked up (``{"zoneName": "example.com"}``); empty once resolved."""
        return {ref.key: self.scope[ref.key] for ref in cloud(self.provider).references if ref.key in self.scope}

    @property
    def label(self) -> str:
        """Stable, unique within a set; names the dynamic resource: ``<cloud>-<identity>``."""
        return f"{self.provider}-{self.identity}"

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, **self.scope, **self.policy}


@dataclass(frozen=True)
class Reference:
    """A destination key that names a cloud object to look up (``zoneName``, ``domain``), and where it is."""

    destination: int  # index into PrefetchSetDeclaration.destinations
    key: str
    value: str
    line: Optional[int]
    path: str  # e.g. ``zoneName`` or ``destinations[1].domain``


@dataclass(frozen=True)
class OriginDeclaration:
    """An S3-compatible bucket whose objects become targets (listed by components/declare/origin.py)."""

    bucket: str
    public_base_url: str
    endpoint: Optional[str] = None
    region: Optional[str] = None
    prefix: str = ""
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    addressing_style: str = "auto"
    profile: Optional[str] = None
    credentials_config: Optional[str] = None
    must_not_be_empty: bool = False
    allow_link_local: bool = False  # endpoint may be a link-local / instance-metadata address (declare/origin.py)
    line: Optional[int] = field(default=None, compare=False)  # of the `origin:` key, for messages

    def describe(self) -> str:
        """Names the origin in every message: ``origin s3://assets/static/ at http://127.0.0.1:9000``."""
        where = f"at {cut(self.endpoint)}" if self.endpoint else "on AWS S3"
        if self.region:
            where += f" (region {self.region})"
        return f"origin s3://{self.bucket}/{cut(self.prefix)} {where}"


@dataclass(frozen=True)
class SitemapDeclaration:
    """Sitemaps whose URLs become targets (read by components/declare/sitemap.py)."""

    urls: tuple[str, ...]
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    limit: Optional[int] = None
    # Of the `sitemap:` key and of each URL, for messages.
    line: Optional[int] = field(default=None, compare=False)
    url_lines: tuple[Optional[int], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class PrefetchSetDeclaration:
    """A validated, normalised prefetch set.

    ``content`` is filled once the origin is listed (components/declare/origin.py) and the sitemaps read
    (components/declare/sitemap.py): the current version of every target they gave, which becomes part
    of its desired value.
    """

    name: str
    source: str
    destinations: tuple[DestinationDeclaration, ...]
    targets: tuple[str, ...]
    freshness: str = "24h"
    wait: str = "10m"
    description: str = ""
    # One located note per target dropped as a repeat of another (the same URL once normalised).
    duplicates: tuple[Problem, ...] = field(default=(), compare=False)
    origin: Optional[OriginDeclaration] = None
    sitemap: Optional[SitemapDeclaration] = None
    content: Mapping[str, ContentVersion] = field(default_factory=dict, compare=False)
    # What the preview does when preflight finds a target's domain not ready (components/engine/preflight.py).
    preflight: str = "warn"
    # zoneName/domain keys to resolve (components/declare/references.py); empty once resolved.
    references: tuple[Reference, ...] = field(default=(), compare=False)
    allow_partial: bool = False
    safety: Mapping[str, float] = field(default_factory=dict)
    # A release marker: when it changes, every target is due for purge then prefetch (resource/inputs.py).
    revision: Optional[str] = None

    def duplicates_warning(self, most: int = 5) -> str:
        """The warning naming the targets dropped as repeats (the program's and the command line's), or ""."""
        if not self.duplicates:
            return ""
        notes = "\n".join(f"  - {note}" for note in self.duplicates[:most])
        more = f"\n  - ...and {len(self.duplicates) - most} more" if len(self.duplicates) > most else ""
        return f"{self.source}: {len(self.duplicates)} duplicate targets collapsed, each kept once:\n{notes}{more}"

    @property
    def freshness_delta(self) -> timedelta:
        return parse_duration(self.freshness)

    @property
    def wait_delta(self) -> timedelta:
        return parse_duration(self.wait)
