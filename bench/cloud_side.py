"""The sandbox side of the benchmark: the clouds as configured, seeded history, the naive reader, page latency.

The sandbox keeps its real rate limits (20 requests/s per Tencent action, one UCloud submit per
10 s, Limit <= 1000); only the daily quotas are raised so that large sets fit. It runs in the
benchmark's process, so the provider host's CPU and RSS are the provider's alone.
"""

from __future__ import annotations

import math
import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.layout import HOST, Resource
from components.clouds.ratelimit import SlidingWindowLimiter
from components.clouds.tencent import TencentCaller
from sandbox import (
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    Sandbox,
)
from sandbox.store import NewTask

RESOURCE_TYPE = "pulumi-python:dynamic/cdnprefetch:Destination"
ZONE = "zone-2o0i4xfimj9g"
UCLOUD_DOMAIN = "ucdn-bench"
TENCENT_RATE = 20.0       # requests per second per action (documented; the sandbox enforces it)
UCLOUD_INTERVAL = 10.0    # seconds between UCloud submits (documented; the sandbox enforces it)
PAGE = 1000               # rows per history page (EdgeOne's documented maximum; the sandbox's for CDN)
DEFAULT_PAGE = 20         # the APIs' default Limit, which the naive strategy uses
PROGRESS_SECONDS = 0.5    # how long a sandbox task stays processing
QUOTA = 100_000_000       # daily quotas, raised so that every size fits (rate limits stay real)

# More sandbox settings for every sandbox the benchmark starts (sandbox/steering.py SETTINGS), e.g. Cloud CDN's
# largest history Limit: prefetch_bench.py --cdn-max-limit / --cdn-over-limit set them. Empty: the defaults.
SANDBOX_SETTINGS: dict[str, Any] = {}


@dataclass(frozen=True)
class Cloud:
    name: str
    service: str
    destination: dict
    history_action: str
    submit_action: str
    batch: int             # the sandbox's default batch size for this cloud (kept)

    def history_pages(self, rows: int, tasks: int) -> int:
        """Fewest history calls that return ``rows`` rows in ``tasks`` tasks (one query window)."""
        if self.name == "ucloud":
            return 1  # Limit absent means every task in one answer
        return max(1, math.ceil(rows / PAGE))

    def submits(self, targets: int) -> int:
        return math.ceil(targets / self.batch)


CLOUDS = {
    "edgeone": Cloud("edgeone", "teo", {"provider": "edgeone", "zone": ZONE}, "DescribePrefetchTasks",
                     "CreatePrefetchTask", 1000),
    "tencent-cdn": Cloud("tencent-cdn", "cdn", {"provider": "tencent-cdn", "area": "mainland"}, "DescribePushTasks",
                         "PushUrlsCache", 500),
    "ucloud": Cloud("ucloud", "ucloud", {"provider": "ucloud", "domainId": UCLOUD_DOMAIN},
                    "DescribeNewUcdnPrefetchCacheTask", "PrefetchNewUcdnDomainCache", 1000),
}


def request_counts(box: Sandbox) -> tuple[Counter, int]:
    rows = box.store.requests()
    return Counter(r["action"] for r in rows), sum(1 for r in rows if r["error_code"] is not None)


@dataclass(frozen=True)
class PageUse:
    """The page size a Cloud CDN history read ended up with, from the sandbox's request log.

    The adapter asks for Limit 1000 and steps down to 20 when that is refused (components/clouds/
    page_size.py). ``asked``: the Limits of the answered requests; ``served``: the rows a full page held
    (the Limit asked, or the sandbox's largest when it caps instead of refusing); ``refused``: the
    refused requests' (Limit, error code).
    """

    max_limit: int
    over_limit: str
    asked: Counter
    served: int
    refused: tuple[tuple[Any, str], ...]

    @property
    def answered(self) -> int:
        return sum(self.asked.values())

    def fewest_pages(self, rows: int) -> int:
        """Fewest calls that read ``rows`` rows at the served page size."""
        return max(1, math.ceil(rows / self.served)) if self.served else 0


def page_use(box: Sandbox, cloud: Cloud) -> Optional[PageUse]:
    """What the history reads logged in ``box`` asked and were served (Cloud CDN only: its Limit is learnt)."""
    if cloud.name != "tencent-cdn":
        return None
    largest = int(box.store.get_setting("cdn_history_max_limit"))
    over = str(box.store.get_setting("cdn_history_over_limit"))
    rows = box.store.requests(action=cloud.history_action)
    limit = lambda row: (row["params"] or {}).get("Limit", DEFAULT_PAGE)  # noqa: E731
    asked = Counter(limit(r) for r in rows if r["error_code"] is None)
    served = min(max(asked), largest) if asked else 0  # every answered page after the probe asks the same
    refused = tuple((limit(r), r["error_code"]) for r in rows if r["error_code"] is not None)
    return PageUse(largest, over, asked, served, refused)


def config_for(box: Sandbox, cloud: Cloud) -> dict[str, Any]:
    return {
        "cdn-prefetch:endpoints": {cloud.name: box.url},
        "tencentcloud:secretId": SANDBOX_SECRET_ID,
        "tencentcloud:secretKey": SANDBOX_SECRET_KEY,
        "ucloud:publicKey": SANDBOX_UCLOUD_PUBLIC_KEY,
        "ucloud:privateKey": SANDBOX_UCLOUD_PRIVATE_KEY,
    }


def start_sandbox(db: Path) -> Sandbox:
    """A sandbox on a new database file, its daily quotas raised, the UCloud domain declared.

    The store indexes history by time across scopes (sandbox/store.py ``tasks_by_time``), so a CDN
    query without Area costs what a scoped one does; the benchmark no longer adds that index itself.
    """
    box = Sandbox(db, progress_seconds=PROGRESS_SECONDS).start()
    for key in ("prefetch_daily", "cdn_push_daily_mainland", "cdn_push_daily_overseas", "ucloud_prefetch_daily"):
        box.store.set_setting(key, QUOTA)
    for key, value in SANDBOX_SETTINGS.items():
        box.store.set_setting(key, value)
    box.store.add_ucloud_domain(UCLOUD_DOMAIN, HOST)
    return box


def seed_history(box: Sandbox, cloud: Cloud, resources: Sequence[Resource]) -> None:
    """Write the tasks a create of ``resources`` would have made straight into the sandbox, and the state it leaves.

    For sizes where a real create is slow (UCloud: one submit per 10 s). Each resource submits its own
    targets in batches, as its Create would; its outputs are built by the product's own code
    (reconcile + records) from the same rows, so the refresh starts from the state a create leaves.
    """
    from components.model.durations import parse_duration
    from components.model.status import HistoryRow, TargetState
    from components.plan.reconcile import make_plan
    from components.provider import INPUTS_SHOW_DRIFT, resource_id
    from components.resource.inputs import ShardInputs
    from components.resource.outputs import SubmittedTask, build_outputs

    now = time.time() - 600  # finished ten minutes ago, well within freshness
    scope = {"edgeone": ZONE, "tencent-cdn": "mainland", "ucloud": SANDBOX_UCLOUD_PUBLIC_KEY}[cloud.name]
    at = datetime.fromtimestamp(int(now), timezone.utc)
    finished = datetime.fromtimestamp(int(now + 1), timezone.utc)
    for resource in resources:
        urls = list(resource.inputs["targets"])
        submitted, observations = [], []
        for index in range(0, len(urls), cloud.batch):
            chunk = urls[index:index + cloud.batch]
            job = new_task_id(cloud, now)
            box.store.create_tasks(cloud.service, scope, job, [NewTask(u, HOST, now + 1, "success") for u in chunk],
                                   now=now)
            submitted.append(SubmittedTask(job, at, len(chunk)).to_dict())
            observations.extend(HistoryRow(u, job, TargetState.WARM, at, finished) for u in chunk)
        set_inputs = ShardInputs.from_props(resource.inputs)
        plan = make_plan(set_inputs.targets, observations, now=datetime.now(timezone.utc),
                         freshness=parse_duration(set_inputs.freshness), content=set_inputs.content)
        outputs = build_outputs(set_inputs, plan, verified_at=datetime.now(timezone.utc), submitted=submitted)
        outputs[INPUTS_SHOW_DRIFT] = False  # as create leaves it: the inputs in state are the desired values
        outputs["__provider"] = resource.inputs["__provider"]
        id_ = resource_id(set_inputs)
        index, count = resource.shard
        if count > 1:  # outputs repeat the inputs; an id names its shard (contract 2), whether or not that is in yet
            outputs.setdefault("shard", resource.inputs["shard"])
            id_ = id_ if "shard" in id_ else f"{id_}/shard-{index}-of-{count}"
        resource.id, resource.outputs, resource.state_inputs = id_, outputs, dict(resource.inputs)


def new_task_id(cloud: Cloud, now: float) -> str:
    if cloud.name == "edgeone":
        return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
    if cloud.name == "tencent-cdn":
        return f"{int(now * 1000):013d}{secrets.randbelow(10**10):010d}"
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))


# -- how fast the emulator itself answers a page ------------------------------------------------------------
def probe_page_latency(box: Sandbox, cloud: Cloud, size: int, samples: int = 4, limit: int = PAGE) -> float:
    """Mean seconds for one full history page of ``limit`` rows (first and last offsets): the raw SDK call, no parsing.

    The sandbox is Python and SQLite: when one page takes it about as long as the rate limit's 50 ms
    slot, a sequential reader is bound by the emulator rather than by the limit. Measured from this
    process after the run; not counted as calls.
    """
    from components.model.connection import Endpoint, TencentCredentials, UCloudCredentials

    endpoint = Endpoint("url", "http", box.endpoint)
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=1)
    last = max(0, (size - 1) // limit * limit)
    if cloud.name == "ucloud":
        from components.clouds.ucloud import make_client as ucloud_client

        client = ucloud_client(endpoint, UCloudCredentials(SANDBOX_UCLOUD_PUBLIC_KEY, SANDBOX_UCLOUD_PRIVATE_KEY))

        def page(offset: int) -> None:
            client.invoke(cloud.history_action, {"BeginTime": int(since.timestamp()),
                                                 "EndTime": int(now.timestamp()) + 1, "Offset": 0, "Limit": 100})
    else:
        if cloud.name == "edgeone":
            from components.clouds.edgeone import _iso as render
            from components.clouds.edgeone import make_client
        else:
            from components.clouds.tencent_cdn import beijing as render
            from components.clouds.tencent_cdn import make_client
        client = make_client(endpoint, TencentCredentials(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY))
        scope = {"ZoneId": ZONE} if cloud.name == "edgeone" else {}

        def page(offset: int) -> None:
            client.call(cloud.history_action, {**scope, "StartTime": render(since), "EndTime": render(now),
                                               "Offset": offset, "Limit": limit})
    took = []
    time.sleep(1.2)  # the run's last calls are out of the sandbox's one-second window (with --no-floor, just before)
    for i in range(samples):
        time.sleep(0.06)  # stay under the sandbox's rate limit
        start = time.perf_counter()
        page(0 if i % 2 == 0 else last)
        took.append(time.perf_counter() - start)
    return sum(took) / len(took)


# -- the naive strategy: one task id per call, the default page size ---------------------------------------
def run_naive(box: Sandbox, cloud: Cloud, task_ids: list[str]) -> tuple[int, float]:
    """Read every task on its own, as the Terraform resources do (EdgeOne: ``job-id`` filter; CDN: ``TaskId``;
    UCloud: one ``TaskId.0``), with the API's default page size. Returns (calls, seconds)."""
    time.sleep(1.2)  # the calls of the refresh just before are out of the sandbox's one-second window
    box.store.clear_requests()
    start = time.monotonic()
    limiter = SlidingWindowLimiter(limit=int(TENCENT_RATE), window=1.0)
    if cloud.name == "ucloud":
        from components.clouds.ucloud import make_client
        from components.model.connection import Endpoint, UCloudCredentials

        client = make_client(Endpoint("url", "http", box.endpoint),
                             UCloudCredentials(SANDBOX_UCLOUD_PUBLIC_KEY, SANDBOX_UCLOUD_PRIVATE_KEY))
        for task_id in task_ids:
            limiter.acquire("ucloud")
            client.describe_new_ucdn_prefetch_cache_task({"TaskId": [task_id]})
    else:
        from components.model.connection import Endpoint, TencentCredentials

        creds = TencentCredentials(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY)
        endpoint = Endpoint("url", "http", box.endpoint)
        if cloud.name == "edgeone":
            from components.clouds.edgeone import make_client, models
        else:
            from components.clouds.tencent_cdn import make_client, models
        call = TencentCaller(cloud.name, make_client(endpoint, creds), models, limiter)
        for task_id in task_ids:
            offset = 0
            while True:
                if cloud.name == "edgeone":
                    resp = call(cloud.history_action, {"ZoneId": ZONE, "Offset": offset,
                                                      "Filters": [{"Name": "job-id", "Values": [task_id]}]})
                    rows = resp.Tasks or []
                else:
                    resp = call(cloud.history_action, {"TaskId": task_id, "Offset": offset})
                    rows = resp.PushLogs or []
                offset += len(rows)
                if not rows or offset >= resp.TotalCount:
                    break
    wall = time.monotonic() - start
    calls, _ = request_counts(box)
    return sum(calls.values()), wall


def naive_calls_computed(cloud: Cloud, task_sizes: list[int]) -> int:
    if cloud.name == "ucloud":
        return len(task_sizes)
    return sum(max(1, math.ceil(n / DEFAULT_PAGE)) for n in task_sizes)
