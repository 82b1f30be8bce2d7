"""The Pulumi dynamic provider: translates engine calls into sync/reconcile calls, nothing more.

Pickled by reference (it lives in an importable package) and stateless: no client or credential
is ever an attribute at pickling time; settings are built in ``configure()`` inside the host.
How the engine calls each method (and why ``read`` rewrites inputs): see the README, "How drift
reaches the preview".
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from .clouds.factory import adapter_for
from .declarations import SUPPORTED_PROVIDERS
from .durations import parse_duration
from .records import SetInputs, build_outputs, refreshed_inputs
from .settings import ConfigError, ProviderSettings, settings_from_config
from .sync import DestinationSync


class PrefetchProvider(ResourceProvider):
    """Keeps one prefetch set warm on one destination."""

    # Nothing secret is captured in the pickle, so __provider need not be a state secret.
    serialize_as_secret_always = False

    def configure(self, req: ConfigureRequest) -> None:
        # Runs in the provider host only; never pickled back. A bad config is reported by check().
        try:
            self._settings: Optional[ProviderSettings] = settings_from_config(req.config.get, os.environ)
            self._config_error: Optional[str] = None
        except ConfigError as exc:
            self._settings, self._config_error = None, str(exc)

    def _require_settings(self) -> ProviderSettings:
        settings = getattr(self, "_settings", None)
        if settings is None:
            error = getattr(self, "_config_error", None)
            if error:
                raise ConfigError(error)
            settings = self._settings = settings_from_config(lambda key: None, os.environ)
        return settings

    def _sync(self, props: dict[str, Any]) -> DestinationSync:
        inputs = SetInputs.from_props(props)
        return DestinationSync(adapter_for(inputs.destination, self._require_settings()), inputs, log=sys.stderr)

    # -- engine calls ---------------------------------------------------------------------------
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(prop, reason) for prop, reason in check_inputs(news)]
        error = getattr(self, "_config_error", None)
        if error:
            failures.append(CheckFailure("destination", error))
        return CheckResult(news, failures)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        # DIFF_UNKNOWN: the engine diffs old inputs against new inputs itself and shows each changed
        # target. After a refresh the old inputs carry the live status of every drifted target.
        return DiffResult(changes=None)

    def create(self, props: dict[str, Any]) -> CreateResult:
        sync = self._sync(props)
        result = sync.converge(None)
        outs = build_outputs(sync.inputs, result.plan, verified_at=result.verified_at, submitted=result.submitted)
        return CreateResult(resource_id(sync.inputs), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        sync = self._sync(news)
        result = sync.converge(olds)
        return UpdateResult(build_outputs(sync.inputs, result.plan, verified_at=result.verified_at,
                                          submitted=result.submitted))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        sync = self._sync(props)
        result = sync.observe(props)
        outs = build_outputs(sync.inputs, result.plan, verified_at=result.verified_at, submitted=result.submitted)
        return ReadResult(id_, outs, inputs=refreshed_inputs(sync.inputs, result.plan))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # A prefetch cannot be undone: deleting forgets the set and calls no cloud API.
        return None


def resource_id(inputs: SetInputs) -> str:
    scope = ",".join(f"{k}={v}" for k, v in sorted(inputs.destination.items()) if k != "provider")
    return f"{inputs.set}/{inputs.provider}/{scope}"


def check_inputs(news: dict[str, Any]) -> list[tuple[str, str]]:
    """Shape checks for inputs that did not come through the YAML loader (typed API users)."""
    problems: list[tuple[str, str]] = []
    if not isinstance(news.get("set"), str):
        problems.append(("set", "set name must be text"))
    destination = news.get("destination")
    if not isinstance(destination, dict) or destination.get("provider") not in SUPPORTED_PROVIDERS:
        problems.append(("destination", f"destination.provider must be one of: {', '.join(SUPPORTED_PROVIDERS)}"))
    elif destination["provider"] == "edgeone" and not isinstance(destination.get("zone"), str):
        problems.append(("destination", "an EdgeOne destination needs its zone id (destination.zone)"))
    targets = news.get("targets")
    if not isinstance(targets, dict) or not all(isinstance(k, str) for k in targets):
        problems.append(("targets", "targets must be a map from URL to 'warm'"))
    for key in ("freshness", "wait"):
        try:
            parse_duration(news.get(key))
        except ValueError as exc:
            problems.append((key, str(exc)))
    return problems
