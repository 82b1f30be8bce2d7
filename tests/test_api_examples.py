"""The example responses in each API's official documentation parse into the normalised model.

Fixtures in tests/fixtures/api_examples/ are the documentation's bodies, verbatim (see the README
there). Each adapter's real parsing runs on them: only the transport is replaced.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from tencentcloud.cdn.v20180606 import models as cdn_models
from tencentcloud.teo.v20220901 import models as teo_models

from components.clouds.edgeone import EdgeOneAdapter
from components.clouds.tencent_cdn import TencentCdnAdapter
from components.clouds.ucloud import UCloudAdapter
from components.model.status import TargetState

EXAMPLES = Path(__file__).parent / "fixtures" / "api_examples"
# One query window: the fake transport answers every window with the same example.
SINCE, UNTIL = datetime(2022, 2, 8, tzinfo=timezone.utc), datetime(2022, 2, 10, tzinfo=timezone.utc)


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


class tencent_transport:
    """Answers each action with its documented example (first page only, then an empty page): as the
    SDK's response model (``TencentCaller.__call__``), or as the plain ``Response`` JSON
    (``TencentCaller.json``, what history pages are read with)."""

    def __init__(self, models, service: str):
        self.models, self.service = models, service
        # What client_identity reads of an SDK client (the adapter keys history and page sizes by it).
        self.client = SimpleNamespace(profile=SimpleNamespace(httpProfile=SimpleNamespace(
            scheme="https", endpoint=f"{service}.tencentcloudapi.com")), _endpoint=None,
            credential=SimpleNamespace(secret_id="example-id"))

    def json(self, action: str, params: dict) -> dict:
        body = example(f"tencent_{self.service}_{action}")["Response"]
        if params.get("Offset", 0) > 0:
            body = {**body, "Tasks": [], "PushLogs": []}
        return body

    def __call__(self, action: str, params: dict):
        response = getattr(self.models, f"{action}Response")()
        response._deserialize(self.json(action, params))
        return response


def test_edgeone_examples():
    adapter = EdgeOneAdapter(None, "zone-example")
    adapter._call = tencent_transport(teo_models, "teo")
    [row] = list(adapter.history(SINCE, UNTIL))
    assert (row.url, row.task_id, row.state) == ("http://www.qq.com/a.txt", "20g9wz8m9mgx", TargetState.WARM)
    assert row.created == datetime(2022, 2, 9, 2, 28, 43, tzinfo=timezone.utc)
    assert row.updated == datetime(2022, 2, 9, 2, 28, 52, tzinfo=timezone.utc)
    submitted = adapter.submit(["http://www.qq.com/a.txt"])
    assert submitted.task_id == "20ga521cpwch" and submitted.rejected == {}
    quota = adapter.quota()
    assert quota.batch > 0 and quota.daily >= quota.available >= 0


def test_tencent_cdn_examples():
    adapter = TencentCdnAdapter(None, "mainland")
    adapter._call = tencent_transport(cdn_models, "cdn")
    [row] = list(adapter.history(SINCE, UNTIL))
    assert row.state is TargetState.WARM and row.raw_status == "Done"  # the docs' capital D
    assert row.created == datetime(2018, 7, 30, 10, 10, 53, tzinfo=timezone.utc)  # 18:10:53 Beijing time
    assert adapter.submit(["http://www.example.com/a.js"]).task_id == "15475444535871929928456"
    assert adapter.quota() == type(adapter.quota())(1000, 10000, 10000)


def test_tencent_cdn_global_area_needs_both_areas_in_the_quota_answer():
    adapter = TencentCdnAdapter(None, "global")
    adapter._call = tencent_transport(cdn_models, "cdn")
    with pytest.raises(Exception, match="no entry for area overseas"):
        adapter.quota()  # the documented example lists mainland only


def test_ucloud_examples_placeholder_statuses_become_unknown_not_a_crash():
    adapter = UCloudAdapter(None, "ucdn-example")
    bodies = {"describe_new_ucdn_prefetch_cache_task": example("ucloud_DescribeNewUcdnPrefetchCacheTask"),
              "prefetch_new_ucdn_domain_cache": example("ucloud_PrefetchNewUcdnDomainCache"),
              "get_ucdn_domain_prefetch_refresh_state": example("ucloud_GetUcdnDomainPrefetchRefreshState")}
    adapter._call = lambda action, method, params, limiter: bodies[method]
    rows = list(adapter.history(SINCE, UNTIL))
    documented = bodies["describe_new_ucdn_prefetch_cache_task"]["TaskList"]
    assert len(rows) == sum(len(task["UrlLists"]) for task in documented)
    assert {row.state for row in rows} == {TargetState.UNKNOWN}
    assert {row.raw_status for row in rows} == {u["Status"] for t in documented for u in t["UrlLists"]}
    assert adapter.submit(["http://www.example.com/a.js"]).task_id == "IhrznXRB"
    quota = adapter.quota()  # the example uses SubmitCount where the table says SubmitPrefetchCount
    assert (quota.daily, quota.available) == (6, 1)
