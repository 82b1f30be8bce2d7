"""A size the cloud does not tell us, learnt once per process: the page size of a history action whose largest
``Limit`` is a guess, and the batch size of a submit whose quota the cloud did not report.

Why: Tencent Cloud CDN documents ``Limit`` of ``DescribePushTasks`` (and of ``DescribePurgeTasks``)
only as "default 20". 1000 is our guess, and a cloud that refuses it as a parameter error
(``InvalidParameter.CdnParamError``, which names no parameter) must not make the whole cloud
unusable (issue 21).

How: an action's ``PageLadder`` lists the page sizes to try, largest first (the registry's
``history_page``, then its ``history_page_fallback``; the last is the size the API documents),
and the error codes a too-large ``Limit`` may be refused with. ``PageSizes.fetch(key, ladder,
send)`` sends one page as ``send(limit)``:

- Once a size has been answered for a key (one action on one API endpoint and account), it is
  the key's size for the rest of the process. A refusal at that size is never taken for a
  ``Limit`` refusal: it is something else (an Offset, a time span), and it is raised.
- Until then, requests of the key go one at a time (the others wait, so concurrent reads cost
  one refusal, not one each). A request refused with one of the ladder's codes is sent again,
  the very same page, at the next smaller size; the first size answered is kept. A refusal counts
  as the ``Limit``'s only because the same request with a smaller ``Limit`` was answered. When
  the smallest size is refused too, the refusals were not the ``Limit``'s: that refusal is raised
  and the key starts from the top again.

Cost: one refused request per ladder step above the size the cloud accepts, per key and process
(a cloud taking 100: one; a cloud taking only 20: two), however many reads, pages and threads.

What is read does not change: the probe retries the same page (same window and offset), and a
size once answered never changes, so every page of every read after the probe uses it.
(``read_pages`` would stay correct even if it did: it plans offsets from the rows of the pages
it gets and uses a page only at the offset a plain loop would ask for, so a changed page size
costs requests, never rows.)

Batches (``SHARED_BATCH_SIZES``): EdgeOne documents ``PrefetchQuota`` and ``PurgeQuota`` of DescribeContentQuota
as possibly null, and then nothing tells how many URLs one submit may carry (model/quota.py ``Quota.unreported``).
The submitter (resource/submitter.py) sends its batches through ``fetch`` with the registry's ladder of batch
sizes and the codes of a too-large batch (``LimitExceeded.BatchQuota``): a refused batch was not executed, so
the same URLs go again, fewer at a time. A last batch shorter than the size proves nothing about the size
(``carried``: a refused batch of 250 at size 2000 steps down to the size below 250).

To use it for another action whose page size is a guess (e.g. Cloud CDN's ``DescribePurgeTasks``),
name the action in the key; ``TencentCdnAdapter.history_page(action, params)`` does this for
Cloud CDN:

    SHARED_PAGE_SIZES.fetch(PageKey(cloud, "DescribePurgeTasks", client_identity(client)), ladder,
                            lambda limit: call.json("DescribePurgeTasks", {**params, "Limit": limit}))
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Hashable, NamedTuple, Optional, TypeVar

from .base import CloudError

T = TypeVar("T")


class PageKey(NamedTuple):
    """Whose largest ``Limit`` is learnt: one action of one cloud, on one API endpoint and account."""

    cloud: str
    action: str
    account: Hashable = ()  # e.g. ``client_identity(client)``: (scheme, API host, SecretId)


@dataclass(frozen=True)
class PageLadder:
    """The page sizes to try, largest first, and the error codes a too-large ``Limit`` may get."""

    sizes: tuple[int, ...]
    refusal_codes: frozenset[str]

    def __post_init__(self) -> None:
        if not self.sizes or self.sizes != tuple(sorted(set(self.sizes), reverse=True)) or self.sizes[-1] < 1:
            raise ValueError(f"page sizes must be distinct, >= 1 and largest first; got {self.sizes!r}")

    def below(self, size: int) -> Optional[int]:
        """The next size to try after ``size`` was refused; None when nothing smaller is left."""
        return next((s for s in self.sizes if s < size), None)


@dataclass(eq=False)
class _Learnt:
    size: int
    answered: bool = False  # a request at ``size`` was answered: it is kept for the process
    refused: list[str] = field(default_factory=list)  # the sizes refused on the way to ``size``, for the log
    probe: threading.Lock = field(default_factory=threading.Lock)


class PageSizes:
    """Process-wide, thread-safe: the page size each key's cloud accepts (see the module docstring)."""

    def __init__(self, log: Optional[Callable[[str], None]] = None, *, unit: str = "rows a page",
                 what: str = "Limit"):
        self._lock = threading.Lock()
        self._keys: dict[PageKey, _Learnt] = {}
        # A step down is worth a line: the engine shows the provider's stderr as diagnostics.
        self._log = log or (lambda line: sys.stderr.write(line + "\n"))
        self._unit, self._what = unit, what  # how the line names the size: ``Limit 1000`` ... ``100 rows a page``

    def size(self, key: PageKey, ladder: PageLadder) -> int:
        """The size the next request of ``key`` will use."""
        return self._entry(key, ladder).size

    def fetch(self, key: PageKey, ladder: PageLadder, send: Callable[[int], T],
              carried: Optional[Callable[[int], int]] = None) -> T:
        """``send(limit)`` at the key's page size, learning that size first if no request has been answered.

        ``carried(size)``: how many items the request sent at ``size`` really carried (default: ``size``; a
        submit's last batch may be shorter). Only an answer that carried the full size proves the size, and a
        refusal steps down below what was carried.
        """
        learnt = self._entry(key, ladder)
        if learnt.answered:
            return send(learnt.size)
        with learnt.probe:
            if learnt.answered:  # learnt while this caller waited
                return send(learnt.size)
            return self._probe(key, learnt, ladder, send, carried or (lambda size: size))

    def clear(self) -> None:
        """Forget what was learnt (tests: one pytest process talks to many sandboxes)."""
        with self._lock:
            self._keys.clear()

    def _entry(self, key: PageKey, ladder: PageLadder) -> _Learnt:
        with self._lock:
            learnt = self._keys.get(key)
            if learnt is None:
                learnt = self._keys[key] = _Learnt(ladder.sizes[0])
            return learnt

    def _probe(self, key: PageKey, learnt: _Learnt, ladder: PageLadder, send: Callable[[int], T],
               carried: Callable[[int], int]) -> T:
        """Under ``learnt.probe``: the same request at the learnt size, then at each smaller one while refused."""
        while True:
            size = learnt.size
            try:
                answer = send(size)
            except CloudError as error:
                if error.code not in ladder.refusal_codes:
                    raise  # not a parameter error: says nothing about the Limit
                smaller = ladder.below(min(size, carried(size)))
                if smaller is None:  # even the smallest was refused: not the Limit's doing
                    learnt.size, learnt.refused = ladder.sizes[0], []
                    raise
                learnt.refused.append(f"{min(size, carried(size))} ({error.code})")
                learnt.size = smaller
                continue
            if carried(size) < size:
                return answer  # answered, but for fewer than the size: the next request probes on
            learnt.answered = True
            if learnt.refused:
                self._log(f"{key.cloud} {key.action}: the cloud refused {self._what} {', '.join(learnt.refused)}; "
                          f"this process uses {size} {self._unit}")
            return answer


SHARED_PAGE_SIZES = PageSizes()
"""The provider process's page sizes: every adapter with a guessed page size uses it unless given another."""

SHARED_BATCH_SIZES = PageSizes(unit="URLs a submit", what="batches of")
"""The provider process's batch sizes for destinations whose quota the cloud did not report."""
