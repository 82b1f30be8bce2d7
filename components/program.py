"""The Pulumi program: stack config -> declarations -> references resolved -> origin listings and sitemaps -> one
PrefetchSet per set (with preflight) -> the audit output."""

from __future__ import annotations

import pulumi
from pulumi.config import ConfigTypeError

from .declare.declarations import load_sets
from .declare.model import DeclarationError, Problem
from .declare.origin import OriginError, resolve_origins
from .declare.references import TencentCloudLookup, resolve_references
from .declare.sitemap import resolve_sitemaps
from .engine.prefetch_set import PrefetchSet, stack_output

DEFAULT_SETS_DIR = "prefetch-sets"


def main() -> None:
    config = pulumi.Config("cdn-prefetch")
    sets_dir = config.get("setsDir") or DEFAULT_SETS_DIR
    # One lookup for the whole program: zoneName/domain references and preflight share its answers.
    lookup = TencentCloudLookup()
    try:
        declarations = load_sets(sets_dir)
        # zoneName/domain become zone/area through pulumi-tencentcloud's data sources (components/declare/references.py).
        declarations = resolve_references(declarations, lookup)
        # Sets with an origin get its objects as targets; the buckets are listed here, never in the provider.
        needs_keys = any(d.origin is not None and d.origin.credentials_config for d in declarations)
        declarations = resolve_origins(declarations, credentials_table=origin_credentials(config) if needs_keys else None,
                                       warn=pulumi.log.warn, info=pulumi.log.info)
        # Sets with a sitemap get its URLs as targets, read here too (SitemapError is a DeclarationError).
        declarations = resolve_sitemaps(declarations, warn=pulumi.log.warn, info=pulumi.log.info)
    except (DeclarationError, OriginError) as exc:
        # RunError: the CLI prints the message without a Python traceback. Nothing is registered.
        raise pulumi.RunError(str(exc)) from None
    sets = {}
    for decl in declarations:
        if decl.duplicates:
            pulumi.log.warn(decl.duplicates_warning())
        sets[decl.name] = PrefetchSet.from_declaration(decl, lookup=lookup).audit
    pulumi.export("prefetch", stack_output(sets))


def origin_credentials(config: pulumi.Config) -> object:
    """The secret stack config ``cdn-prefetch:originCredentials`` as plain values, for listing only.

    Config values are decrypted for the program; these are used here to list the buckets and never
    become resource inputs, outputs or log text (the provider never sees them).
    """
    try:
        return config.get_object("originCredentials")
    except ConfigTypeError:  # its own message would quote the secret value
        raise OriginError([Problem("stack config", None, "cdn-prefetch:originCredentials",
                                   "is not valid JSON/YAML; set it as a map, e.g. pulumi config set --secret "
                                   "--path 'originCredentials.assets.secretAccessKey' ...")]) from None
