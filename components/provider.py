"""The Pulumi dynamic provider: translates engine calls into converge/plan calls, nothing more.

Pickled by reference (it lives in an importable package) and stateless: no client or credential
is ever an attribute at pickling time; settings are built in ``configure()`` inside the host.
How the engine calls each method (and why ``read`` rewrites inputs): see the README, "How drift
reaches the preview".

Safety rails (``plan/safety.py``) are checked where the engine lets us: ``read`` (a refreshed preview)
warns when the next up would submit nothing or only part of what needs it; ``diff`` (every
preview) warns when an update would drop too many targets; ``update``/``create`` refuse. Warnings
are lines on stderr, which the engine shows as diagnostics. A new resource's preview makes no
provider call that could see the quota (only ``check``): its quota is first checked by ``up``.
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
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN

from .clouds.factory import adapter_for
from .engine.collector import collector_paused
from .engine.settings import settings_from_config
from .model.clouds import cloud, cloud_keys, find
from .model.connection import ConfigError, ProviderSettings
from .model.durations import parse_duration
from .model.policy import CONFIG_KEY, POLICY_KEYS, Policy, parse_consent, policy_problems
from .plan.safety import RefusedChange, check_drop, check_purge
from .resource.converge import ShardSync, SyncResult
from .resource.inputs import ShardInputs, change_note, parse_shard
from .resource.outputs import build_outputs, output_targets, refreshed_inputs

#: Output: whether the inputs in state hold live statuses of drifted targets (False: the desired values).
INPUTS_SHOW_DRIFT = "inputs_show_drift"
NOTED_CHANGES = 20
"""Targets a preview names one per line when their version changed; the rest are counted."""


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
        try:
            self._allow_large_changes = parse_consent(req.config.get(CONFIG_KEY))
        except ValueError as exc:
            self._allow_large_changes = False
            self._config_error = "; ".join(filter(None, [self._config_error, str(exc)]))

    def _require_settings(self) -> ProviderSettings:
        settings = getattr(self, "_settings", None)
        if settings is None:
            error = getattr(self, "_config_error", None)
            if error:
                raise ConfigError(error)
            settings = self._settings = settings_from_config(lambda key: None, os.environ)
        return settings

    def _policy(self, props: dict[str, Any]) -> Policy:
        return Policy.from_destination(props.get("destination") or {},
                                       allow_large_changes=getattr(self, "_allow_large_changes", False))

    def _sync(self, props: dict[str, Any]) -> ShardSync:
        inputs = ShardInputs.from_props(props)
        return ShardSync(adapter_for(inputs.destination, self._require_settings()), inputs, log=sys.stderr,
                               policy=self._policy(props))

    # -- engine calls ---------------------------------------------------------------------------
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [CheckFailure(prop, reason) for prop, reason in check_inputs(news)]
        error = getattr(self, "_config_error", None)
        if error:
            failures.append(CheckFailure("destination", error))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # DIFF_UNKNOWN: the engine diffs old inputs against new inputs itself and shows each changed
        # target. After a refresh the old inputs carry the live status of every drifted target.
        # A preview runs diff, not update: say here already when the update will be refused.
        # The old targets are read, and compared with the new ones, once for all three checks.
        old_targets = output_targets(olds)
        changed = self._changed_versions(old_targets, news)
        for refusal in (self._drop_refusal(old_targets, news), self._purge_refusal(changed, news)):
            if refusal:
                sys.stderr.write(f"warning: up will refuse this change: {refusal}\n")
        self._note_changes(changed, news)
        self._note_options(olds, news)
        return DiffResult(changes=None)

    def create(self, props: dict[str, Any]) -> CreateResult:
        sync = self._sync(props)
        result = sync.converge(None)
        return CreateResult(resource_id(sync.inputs), outputs(sync, result, inputs_show_drift=False))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        refusal = self._drop_refusal(output_targets(olds), news)
        if refusal:
            raise RefusedChange(refusal)
        sync = self._sync(news)
        result = sync.converge(olds)
        return UpdateResult(outputs(sync, result, inputs_show_drift=False))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The live status of every target; drifted ones are written into the inputs (see the module doc).

        When nothing drifted and the inputs in state already are the desired values (outputs'
        ``inputs_show_drift`` is false: the last create, update or refresh left them so), no inputs
        are returned: the engine then keeps the ones it has, which are exactly what would be
        returned. That spares the host serialising every target of a large set on each refresh
        (about 0.9 s of CPU per 100,000 targets). Old state without the flag always gets inputs.
        The garbage collector is paused meanwhile (engine/collector.py): a row and a verdict per target.
        """
        with collector_paused():
            sync = self._sync(props)
            result = sync.observe(props, check_quota=True)
            drifted = not result.plan.in_sync
            outs = outputs(sync, result, inputs_show_drift=drifted)
            if not drifted and props.get(INPUTS_SHOW_DRIFT) is False:
                return ReadResult(id_, outs)
            return ReadResult(id_, outs, inputs=refreshed_inputs(sync.inputs, result.plan))

    def _drop_refusal(self, old_targets: Optional[dict[str, str]], news: dict[str, Any]) -> Optional[str]:
        """The safety rail on targets removed from the declaration.

        ``old_targets`` are the old outputs' (``output_targets``: from ``target_lines``, or the
        ``targets`` map of state written before it). When the old targets cannot be read, or the new
        ones are unknown (a preview), there is no rail: nothing to judge (check reports bad shapes).
        For a shard, a removed target that now belongs to another shard moved there (the set grew
        past a power of two) and is not a drop.
        """
        new_targets = news.get("targets")
        if old_targets is None or not isinstance(new_targets, dict):
            return None
        try:
            shard = parse_shard(news.get("shard"))
        except ValueError:
            shard = None  # check refuses it before any update; judged as an unsplit set meanwhile
        destination = news.get("destination") if isinstance(news.get("destination"), dict) else {}
        part = f" (shard {shard[0]} of {shard[1]})" if shard else ""
        where = f"set {news.get('set')!r}{part} on {describe_destination(destination)}"
        return check_drop(old_targets, new_targets, self._policy(news), where, shard=shard).refusal

    def _changed_versions(self, old_targets: Optional[dict[str, str]],
                          news: dict[str, Any]) -> Optional[tuple[dict[str, str], bool]]:
        """{url: change note} of the targets whose declared version changed (a revision bump, a new ETag),
        and whether the up purges them; None when the old or new targets cannot be read (a preview)."""
        new_targets = news.get("targets")
        if old_targets is None or not isinstance(new_targets, dict):
            return None
        destination = news.get("destination") if isinstance(news.get("destination"), dict) else {}
        spec = find(destination.get("provider"))
        purges = self._policy(news).purges_on_change(bool(spec and spec.supports_purge))
        notes = {url: note for url, value in new_targets.items() if url in old_targets and value != old_targets[url]
                 and (note := change_note(old_targets[url], value, purges))}
        return notes, purges

    def _purge_refusal(self, changed: Optional[tuple[dict[str, str], bool]], news: dict[str, Any]) -> Optional[str]:
        """The purge rail as a plain preview can judge it (``changed``: ``_changed_versions``): targets whose
        declared version changed would be purged. The up judges again on what the cloud says."""
        if changed is None or not changed[1]:
            return None
        return check_purge(len(changed[0]), len(news["targets"]), self._policy(news), _where(news))

    @staticmethod
    def _note_changes(changed: Optional[tuple[dict[str, str], bool]], news: dict[str, Any]) -> None:
        """One line per target whose version changed (at most NOTED_CHANGES), saying what the up does about it."""
        if not changed or not changed[0]:
            return
        notes = changed[0]
        lines = [f"{_where(news)}: {url}: {note}" for url, note in sorted(notes.items())[:NOTED_CHANGES]]
        if len(notes) > NOTED_CHANGES:
            lines.append(f"{_where(news)}: ... and {len(notes) - NOTED_CHANGES} more targets changed")
        sys.stderr.write("".join(line + "\n" for line in lines))

    def _note_options(self, olds: dict[str, Any], news: dict[str, Any]) -> None:
        """One line when the destination's prefetch options changed (registry ``prefetch_options``): the engine
        shows the changed ``destination`` values, this says what the up does about them."""
        old, new = olds.get("destination"), news.get("destination")
        if not isinstance(old, dict) or not isinstance(new, dict) or any(_unknown(v) for v in new.values()):
            return
        spec = find(new.get("provider"))
        if spec is None or old.get("provider") != spec.key:
            return
        before, after = spec.declared_options(old), spec.declared_options(new)
        changed = sorted(key for key in {*before, *after} if before.get(key) != after.get(key))
        if changed:
            sys.stderr.write(f"{_where(news)}: prefetch options changed ({', '.join(changed)}): up prefetches every "
                             "target again with them (no purge: the content did not change)\n")

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # A prefetch cannot be undone: deleting forgets the set and calls no cloud API.
        return None


def outputs(sync: ShardSync, result: SyncResult, *, inputs_show_drift: bool) -> dict[str, Any]:
    """The audit outputs, plus ``quota`` (``purge_quota``) when the live quota was held against what needs
    a prefetch (a purge).

    ``inputs_show_drift`` records whether the inputs the engine keeps after this call hold live
    statuses (a refresh that found drift) rather than the desired values (create, update, or a
    refresh that found none): ``read`` needs it to know whether it may leave the inputs as they are.
    """
    outs = build_outputs(sync.inputs, result.plan, verified_at=result.verified_at, submitted=result.submitted,
                         unconfirmed=result.unconfirmed)
    outs[INPUTS_SHOW_DRIFT] = inputs_show_drift
    if result.quota is not None:
        outs["quota"] = result.quota.to_output()
    if result.purge_quota is not None:
        outs["purge_quota"] = result.purge_quota.to_output()
    return outs


def resource_id(inputs: ShardInputs) -> str:
    scope = ",".join(f"{k}={v}" for k, v in sorted(inputs.destination.items())
                     if k != "provider" and k not in POLICY_KEYS)
    shard = f"/shard-{inputs.shard[0]}-of-{inputs.shard[1]}" if inputs.shard else ""
    return f"{inputs.set}/{inputs.provider}/{scope}{shard}"


def _where(news: dict[str, Any]) -> str:
    destination = news.get("destination") if isinstance(news.get("destination"), dict) else {}
    return f"set {news.get('set')!r} on {describe_destination(destination)}"


def describe_destination(destination: dict[str, Any]) -> str:
    """The destination as the adapters' describe_scope() says it (``<cloud> zone <id>``), without building one."""
    provider = destination.get("provider", "?")
    spec = find(provider)
    return spec.describe(destination.get(spec.identity_key)) if spec else str(provider)


def check_inputs(news: dict[str, Any]) -> list[tuple[str, str]]:
    """Shape checks for inputs that did not come through the YAML loader (typed API users).

    A value unknown during a preview (e.g. a zone id from a zone created in the same up) is not
    judged: the engine checks again with the real value before create or update.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(news.get("set"), str) and not _unknown(news.get("set")):
        problems.append(("set", "set name must be text"))
    destination = news.get("destination")
    if _unknown(destination):
        pass
    elif not isinstance(destination, dict) or find(destination.get("provider")) is None:
        problems.append(("destination", f"destination.provider must be one of: {', '.join(cloud_keys())}"))
    else:
        spec = cloud(destination["provider"])
        required = spec.required_key
        if required and not isinstance(destination.get(required), str) and not _unknown(destination.get(required)):
            article = "an" if spec.title[:1] in "AEIO" else "a"
            problems.append(("destination", f"{article} {spec.title} destination needs its {spec.identity_noun} id "
                                            f"(destination.{required})"))
    targets = news.get("targets")
    if not _unknown(targets) and (not isinstance(targets, dict) or not all(isinstance(k, str) for k in targets)):
        problems.append(("targets", "targets must be a map from URL to 'warm'"))
    elif isinstance(targets, dict) and ("" in targets or _breaks_lines(targets)):
        # The outputs keep the targets one a line, url<TAB>desired: neither may hold a tab or line break.
        problems.append(("targets", "target URLs may not be empty, and URLs and their values may not contain "
                                    "tabs or line breaks (percent-encode them in a URL)"))
    shard = news.get("shard")
    if not _unknown(shard) and not (isinstance(shard, dict) and any(_unknown(v) for v in shard.values())):
        try:
            parse_shard(shard)
        except ValueError as exc:
            problems.append(("shard", str(exc)))
    for key in ("freshness", "wait"):
        if _unknown(news.get(key)):
            continue
        try:
            parse_duration(news.get(key))
        except ValueError as exc:
            problems.append((key, str(exc)))
    if isinstance(destination, dict):
        known = {k: v for k, v in destination.items() if not _unknown(v)}
        problems.extend(("destination", problem) for problem in policy_problems(known))
    return problems


def _breaks_lines(targets: dict[str, Any]) -> bool:
    """Whether a URL or a (text) value holds a tab or line break.

    Joined first: for 100,000 targets, a few scans in C instead of 600,000 substring tests.
    """
    keys = "\n".join(targets)
    values = "".join(v for v in targets.values() if isinstance(v, str))
    return ("\t" in keys or "\r" in keys or keys.count("\n") != max(0, len(targets) - 1)
            or "\t" in values or "\n" in values or "\r" in values)


def _unknown(value: Any) -> bool:
    """A value the engine does not know yet (preview): ``pulumi.output.Unknown``, or its wire sentinel."""
    return isinstance(value, Unknown) or value == UNKNOWN
