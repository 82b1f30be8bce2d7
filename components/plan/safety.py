"""Safety rails and partial submission: pure decisions on how much one change may submit or drop.

Like octodns's ``MAX_SAFE_UPDATE_PCENT``, a change that is probably a mistake is refused unless
someone consented to it:

- an ``up`` that would submit more than ``maxQuotaShare`` (default 50 %) of a destination's
  *daily* prefetch quota (a glob or origin prefix that suddenly matches far more objects burns
  the day's quota and leaves nothing for an emergency);
- an update that drops (removes from the declaration) more than ``maxDropShare`` (default 50 %)
  of a set's targets, for sets of at least ``MIN_TARGETS_FOR_DROP_RAIL`` targets (an origin
  prefix typo lists nothing and would silently forget the whole set).

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

from components.model.policy import CONFIG_KEY, DEFAULT_MAX_QUOTA_SHARE, Policy
from components.model.quota import Quota
from components.plan.shards import shard_of

MIN_TARGETS_FOR_DROP_RAIL = 10  # dropping 3 of 4 targets is an ordinary edit, not an accident


class RefusedChange(Exception):
    """A safety rail refused the change before anything was submitted; the message says how to consent."""


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
    available: int
    daily: int
    submit: int                     # targets up submits now (0 when refused)
    allow_partial: bool
    refusal: Optional[str] = None   # up refuses with this message and submits nothing
    short: bool = False             # needed > available
    share_exceeded: bool = False    # would submit more than max_quota_share of daily, without consent
    would_submit: int = 0           # what up would submit if no rail stopped it
    max_quota_share: float = DEFAULT_MAX_QUOTA_SHARE
    batch: int = 1                  # most URLs one submit may carry (from the same quota reading)

    @property
    def not_submitted(self) -> int:
        return self.needed - self.submit

    def preview_warnings(self, where: str) -> list[str]:
        """What a refreshed preview says about the next up (``where``: ``set web on <cloud> zone z``)."""
        lines = []
        if self.short:
            head = (f"warning: {where}: {self.needed} targets need a prefetch but only {self.available} of "
                    f"today's quota are left")
            if not self.allow_partial:
                hint = (f" (add 'allowPartial: true' to the set to submit the {self.available} that fit)"
                        if self.available else "")
                lines.append(f"{head}: up will submit nothing{hint}")
            elif not self.share_exceeded:
                now = f"{self.submit}" if self.submit else "nothing now"
                lines.append(f"{head}: up will submit {now} and leave {self.not_submitted} for after the quota "
                             "resets (allowPartial)")
        if self.share_exceeded:
            lines.append(f"warning: {where}: up would submit {self.would_submit} targets, "
                         f"{_percent(self.would_submit / self.daily)} of the daily quota of {self.daily}, more than "
                         f"the {_percent(self.max_quota_share)} one change may use without consent: up will submit "
                         f"nothing (consent: 'safety: {{maxQuotaShare: {_needed_share(self.would_submit, self.daily)}}}'"
                         f" in the set, or stack config {CONFIG_KEY}=true)")
        return lines

    def up_warnings(self, where: str) -> list[str]:
        """What an up that goes ahead says about targets it leaves out."""
        if self.refusal is None and self.short:
            return [f"warning: {where}: {self.needed} targets need a prefetch but only {self.available} of today's "
                    f"quota are left: submitting {self.submit} (allowPartial); {self.not_submitted} not submitted, "
                    "an up after the quota resets submits them"]
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


def decide_quota(needed: int, quota: Quota, policy: Policy, where: str, *, spent: int = 0) -> QuotaDecision:
    """Submit everything, what fits (allowPartial), or nothing (refusal with the numbers and the fix).

    ``where`` names the set and destination in messages, e.g. ``set 'web' on <cloud> zone zone-x``.
    ``spent``: what the set's other shards already submitted to this destination in this up; the
    share rail holds for their sum (quota.py).
    """
    available, daily = max(0, quota.available), max(0, quota.daily)
    short = needed > available
    common = dict(allow_partial=policy.allow_partial, short=short, max_quota_share=policy.max_quota_share,
                  batch=max(1, quota.batch))
    if short and not policy.allow_partial:
        return QuotaDecision(needed, available, daily, 0, would_submit=0, **common, refusal=(
            f"{where}: {needed} targets need a prefetch but only {available} of today's {daily} prefetch "
            "quota are left; nothing was submitted. Wait for the quota to reset, raise it with the cloud"
            + (f", split the set, or add 'allowPartial: true' to the set's declaration to submit the {available} "
               "that fit now and the rest after the reset." if available else ", or split the set.")))
    submit = min(needed, available)
    if submit and not policy.allow_large_changes and _over(spent + submit, policy.max_quota_share, daily):
        total = spent + submit
        already = f" (with the {spent} its other shards submitted in this up)" if spent else ""
        return QuotaDecision(needed, available, daily, 0, would_submit=total, share_exceeded=True, **common, refusal=(
            f"{where}: this up would submit {total} targets{already}, {_percent(total / daily)} of the daily prefetch "
            f"quota of {daily}, more than the {_percent(policy.max_quota_share)} one change may use without "
            "consent; nothing was submitted. If this is intended, add 'safety: {maxQuotaShare: "
            f"{_needed_share(total, daily)}}}' (or more, up to 1) to the set's declaration, or consent once "
            f"for every set with `pulumi config set {CONFIG_KEY} true` (remove it after the up with "
            f"`pulumi config rm {CONFIG_KEY}`)."))
    return QuotaDecision(needed, available, daily, submit, would_submit=submit, **common)


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
        "objects). If this is intended, add 'safety: {maxDropShare: "
        f"{_needed_share(dropped, len(old))}}}' (or more, up to 1) to the set's declaration, or consent once for "
        f"every set with `pulumi config set {CONFIG_KEY} true` (remove it after the up with "
        f"`pulumi config rm {CONFIG_KEY}`)."))
