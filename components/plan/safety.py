"""Safety rails and partial submission: pure decisions on how much one change may submit or drop.

Like octodns's ``MAX_SAFE_UPDATE_PCENT``, a change that is probably a mistake is refused unless
someone consented to it:

- an ``up`` that would submit more than ``maxQuotaShare`` (default 50 %) of a destination's
  *daily* prefetch quota (a glob or origin prefix that suddenly matches far more objects burns
  the day's quota and leaves nothing for an emergency);
- an update that drops (removes from the declaration) more than ``maxDropShare`` (default 50 %)
  of a set's targets, for sets of at least ``MIN_TARGETS_FOR_DROP_RAIL`` targets (an origin
  prefix typo lists nothing and would silently forget the whole set; a sitemap that suddenly
  lists far fewer URLs would forget them).

- an ``up`` that would purge more than ``maxPurgeShare`` (default 50 %) of a set's targets (sets of
  at least ``MIN_TARGETS_FOR_DROP_RAIL``), or of a destination's daily purge quota: every purged URL
  is fetched from the origin again, and a purge cannot be undone.

Consent is the set's ``safety`` key (raise a limit, up to 1 = no limit) or the stack config
``cdn-prefetch:allowLargeChanges: true`` (every set; meant for one ``up``, then removed).

Quota shortfall: when today's remaining quota cannot fit every target that needs a prefetch,
``up`` submits nothing and fails, unless the set says ``allowPartial: true``: then it submits what
fits, reports the rest as not submitted and succeeds with a warning (the user consented).

The policy travels to the provider inside the resource's ``destination`` input as string values
(``allowPartial``, ``maxQuotaShare``, ``maxDropShare``; present only when declared), so consent
shows in the preview diff and in state. No I/O here: every rule is tested without servers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..model.policy import CONFIG_KEY, DEFAULT_MAX_QUOTA_SHARE, Policy
from ..model.quota import Quota
from .shards import shard_of

MIN_TARGETS_FOR_DROP_RAIL = 10  # dropping 3 of 4 targets is an ordinary edit, not an accident


class RefusedChange(Exception):
    """A safety rail refused the change before anything was submitted; the message says how to consent."""


_FORMS = {"submit": ("submitting", "submitted"), "purge": ("purging", "purged")}


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def _needed_share(count: int, whole: int) -> str:
    """The smallest share (2 decimals, rounded up) that lets ``count`` of ``whole`` through."""
    return f"{min(100, -(-count * 100 // whole)) / 100:g}"


def _over(count: int, share: float, whole: int) -> bool:
    """count > share * whole, with no float noise (0.29 * 100 is 28.999999999999996)."""
    return count > share * whole + 1e-9


# -- quota ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuotaDecision:
    """How an ``up`` treats the targets that need a prefetch, given the live quota and the policy."""

    needed: int
    available: Optional[int]        # None: the cloud did not report its quota (model/quota.py)
    daily: Optional[int]
    submit: int                     # targets up submits now (0 when refused)
    allow_partial: bool
    refusal: Optional[str] = None   # up refuses with this message and submits nothing
    short: bool = False             # needed > available
    share_exceeded: bool = False    # would submit more than max_quota_share of daily, without consent
    would_submit: int = 0           # what up would submit if no rail stopped it
    max_quota_share: float = DEFAULT_MAX_QUOTA_SHARE
    batch: int = 1                  # most URLs one submit may carry (from the same quota reading)
    noun: str = "prefetch"          # which quota: prefetch | purge
    smaller_batches: tuple[int, ...] = ()  # a guessed batch's smaller sizes (Quota.smaller_batches)

    @property
    def _share_key(self) -> str:
        return "maxPurgeShare" if self.noun == "purge" else "maxQuotaShare"

    @property
    def _quota(self) -> str:
        return "purge quota" if self.noun == "purge" else "quota"

    @property
    def _verb(self) -> str:
        return "purge" if self.noun == "purge" else "submit"

    @property
    def not_submitted(self) -> int:
        return self.needed - self.submit

    def preview_warnings(self, where: str) -> list[str]:
        """What a refreshed preview says about the next up (``where``: ``set web on <cloud> zone z``)."""
        if self.available is None:
            return [f"warning: {where}: the cloud did not report today's {self._quota}: up will {self._verb} all "
                    f"{self.needed} targets that need it, and the cloud refuses what exceeds its quota"]
        lines = []
        if self.short:
            head = (f"warning: {where}: {self.needed} targets need a {self.noun} but only {self.available} of "
                    f"today's {self._quota} are left")
            verb = self._verb
            if not self.allow_partial:
                hint = (f" (add 'allowPartial: true' to the set to {verb} the {self.available} that fit)"
                        if self.available else "")
                lines.append(f"{head}: up will {verb} nothing{hint}")
            elif not self.share_exceeded:
                now = f"{self.submit}" if self.submit else "nothing now"
                lines.append(f"{head}: up will {verb} {now} and leave {self.not_submitted} for after the quota "
                             "resets (allowPartial)")
        if self.share_exceeded:
            lines.append(f"warning: {where}: up would {self._verb} {self.would_submit} targets, "
                         f"{_percent(self.would_submit / self.daily)} of the daily {self.noun} quota of {self.daily}, "
                         f"more than the {_percent(self.max_quota_share)} one change may use without consent: up will "
                         f"{self._verb} nothing (consent: 'safety: {{{self._share_key}: "
                         f"{_needed_share(self.would_submit, self.daily)}}}' in the set, or stack config "
                         f"{CONFIG_KEY}=true)")
        return lines

    def up_warnings(self, where: str) -> list[str]:
        """What an up that goes ahead says about targets it leaves out."""
        if self.refusal is None and self.short:
            return [f"warning: {where}: {self.needed} targets need a {self.noun} but only {self.available} of today's "
                    f"{self._quota} are left: {_FORMS[self._verb][0]} {self.submit} (allowPartial); "
                    f"{self.not_submitted} not {_FORMS[self._verb][1]}, an up after the quota resets {self._verb}s them"]
        return []

    def to_output(self) -> dict[str, Any]:
        """The resource's ``quota`` output: numbers, and what up does (or did) about them."""
        return {
            "needed": self.needed,
            "available": self.available,
            "daily": self.daily,
            "submit": self.submit,
            "not_submitted": self.not_submitted,
            "allow_partial": self.allow_partial,
            "refused": self.refusal or "",
        }


def decide_quota(needed: int, quota: Quota, policy: Policy, where: str, *, spent: int = 0,
                 noun: str = "prefetch") -> QuotaDecision:
    """Submit everything, what fits (allowPartial), or nothing (refusal with the numbers and the fix).

    ``where`` names the set and destination in messages, e.g. ``set 'web' on <cloud> zone zone-x``.
    ``spent``: what the set's other shards already submitted to this destination in this up; the
    share rail holds for their sum (quota.py).
    """
    if not quota.reported:  # nothing to judge against: the cloud itself refuses what exceeds its quota
        return QuotaDecision(needed, None, None, needed, allow_partial=policy.allow_partial, would_submit=needed,
                             max_quota_share=policy.max_quota_share, batch=max(1, quota.batch), noun=noun,
                             smaller_batches=quota.smaller_batches)
    available, daily = max(0, quota.available), max(0, quota.daily)
    short = needed > available
    common = dict(allow_partial=policy.allow_partial, short=short, max_quota_share=policy.max_quota_share,
                  batch=max(1, quota.batch), noun=noun)
    verb, key = ("purge", "maxPurgeShare") if noun == "purge" else ("submit", "maxQuotaShare")
    if short and not policy.allow_partial:
        return QuotaDecision(needed, available, daily, 0, would_submit=0, **common, refusal=(
            f"{where}: {needed} targets need a {noun} but only {available} of today's {daily} {noun} "
            "quota are left; nothing was submitted. Wait for the quota to reset, raise it with the cloud"
            + (f", split the set, or add 'allowPartial: true' to the set's declaration to {verb} the {available} "
               "that fit now and the rest after the reset." if available else ", or split the set.")))
    submit = min(needed, available)
    if submit and not policy.allow_large_changes and _over(spent + submit, policy.max_quota_share, daily):
        total = spent + submit
        already = f" (with the {spent} its other shards submitted in this up)" if spent else ""
        return QuotaDecision(needed, available, daily, 0, would_submit=total, share_exceeded=True, **common, refusal=(
            f"{where}: this up would {verb} {total} targets{already}, {_percent(total / daily)} of the daily {noun} "
            f"quota of {daily}, more than the {_percent(policy.max_quota_share)} one change may use without "
            f"consent; nothing was submitted. If this is intended, add 'safety: {{{key}: "
            f"{_needed_share(total, daily)}}}' (or more, up to 1) to the set's declaration, or consent once "
            f"for every set with `pulumi config set {CONFIG_KEY} true` (remove it after the up with "
            f"`pulumi config rm {CONFIG_KEY}`)."))
    return QuotaDecision(needed, available, daily, submit, would_submit=submit, **common)


# -- purges ---------------------------------------------------------------------------------------
def check_purge(count: int, total: int, policy: Policy, where: str) -> Optional[str]:
    """The refusal of an up that would purge more than ``max_purge_share`` of a set's ``total`` targets
    without consent (sets of at least MIN_TARGETS_FOR_DROP_RAIL), or None.

    For a sharded set ``total`` is the shard's: its targets are a hash-spread sample of the set's.
    """
    if (not count or total < MIN_TARGETS_FOR_DROP_RAIL or policy.allow_large_changes
            or not _over(count, policy.max_purge_share, total)):
        return None
    return (f"{where}: this up would purge {count} of the set's {total} targets ({_percent(count / total)}), more "
            f"than the {_percent(policy.max_purge_share)} one change may purge without consent (every purged URL "
            "is fetched from the origin again); nothing was purged or submitted. If this is intended (a release that "
            f"changed them), add 'safety: {{maxPurgeShare: {_needed_share(count, total)}}}' (or more, up to 1) to the "
            f"set's declaration, or consent once for every set with `pulumi config set {CONFIG_KEY} true` (remove "
            f"it after the up with `pulumi config rm {CONFIG_KEY}`).")


# -- dropped targets ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DropCheck:
    total: int      # targets before the change (of a shard: those that still belong to it)
    dropped: int    # of those, no longer declared
    refusal: Optional[str] = None
    moved: int = 0  # removed from a shard because they now belong to another one: not drops

    @property
    def share(self) -> float:
        return self.dropped / self.total if self.total else 0.0


def check_drop(old_targets: Iterable[str], new_targets: Iterable[str], policy: Policy, where: str,
               shard: Optional[tuple[int, int]] = None) -> DropCheck:
    """Refuse an update that drops more than ``max_drop_share`` of the set's targets without consent.

    ``shard`` (index, count): the new inputs are one shard of a split set. A removed target whose
    shard under ``count`` is another one moved there when the set grew (it is still declared, in
    its new shard): neither a drop nor part of the share's base, which is the targets this shard
    keeps. Only removed targets are hashed, so an unchanged shard costs nothing extra.
    """
    old = set(old_targets)
    removed = old.difference(new_targets)
    moved = 0
    if shard is not None and removed:
        index, count = shard
        gone = {url for url in removed if shard_of(url, count) != index}
        moved = len(gone)
        removed -= gone
        old -= gone
    dropped = len(removed)
    check = DropCheck(len(old), dropped, moved=moved)
    if (not dropped or len(old) < MIN_TARGETS_FOR_DROP_RAIL or policy.allow_large_changes
            or not _over(dropped, policy.max_drop_share, len(old))):
        return check
    whose = "this shard's" if shard is not None else "the set's"
    return DropCheck(len(old), dropped, moved=moved, refusal=(
        f"{where}: this change drops {dropped} of {whose} {len(old)} targets ({_percent(check.share)}), more "
        f"than the {_percent(policy.max_drop_share)} one change may drop without consent; nothing was changed or "
        "submitted. Check the declaration first (an origin prefix or include glob with a typo lists fewer "
        "objects; a sitemap the site shortened lists fewer URLs). If this is intended, add 'safety: {maxDropShare: "
        f"{_needed_share(dropped, len(old))}}}' (or more, up to 1) to the set's declaration, or consent once for "
        f"every set with `pulumi config set {CONFIG_KEY} true` (remove it after the up with "
        f"`pulumi config rm {CONFIG_KEY}`)."))
