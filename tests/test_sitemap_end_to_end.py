"""Issue 20 acceptance: a set whose targets come from a sitemap index with a gzipped child, served on
127.0.0.1, through the project's own program and the real provider host against the sandbox. The
sandbox's request log is the evidence of what was purged and prefetched."""

from __future__ import annotations

import pytest
import yaml

from tests.engine import EngineError
from tests.fakes import ENTITY_EXPANSION, sitemap_index, urlset
from tests.stacks import DESTINATIONS, HOST, Stack, path_of, resource_name, target_diff

RESOURCE = resource_name("web", DESTINATIONS["edgeone"])
PAGES = [f"https://{HOST}/docs/{n}" for n in range(6)]  # in the gzipped child
POSTS = [f"https://{HOST}/blog/{n}" for n in range(4)]  # in a plain child, added later

pytestmark = pytest.mark.sandbox(progress_seconds=0.0)


@pytest.mark.mostly_waits
def test_sitemap_targets_are_warmed_their_lastmod_changes_purged_and_an_unreadable_sitemap_drops_nothing(
        tmp_path, sandbox, site):
    lastmods = {url: "2026-05-01" for url in PAGES + POSTS}

    def serve(*children: str) -> None:
        site.put("/sitemap-docs.xml.gz", urlset([(u, lastmods[u]) for u in PAGES]), gzipped=True)
        site.put("/sitemap-blog.xml", urlset([(u, lastmods[u]) for u in POSTS]))
        site.put("/sitemap.xml", sitemap_index([site.url + child for child in children]))

    serve("/sitemap-docs.xml.gz")
    stack = Stack(tmp_path, sandbox)
    declared = stack.sets / "web.yaml"

    def declare(wait: str) -> int:
        """The set's file; the line of its sitemap URL."""
        declared.write_text(yaml.safe_dump({"name": "web", **DESTINATIONS["edgeone"], "wait": wait,
                                            "sitemap": {"urls": [site.url + "/sitemap.xml"]}}, sort_keys=False))
        return declared.read_text().splitlines().index(f"  - {site.url}/sitemap.xml") + 1

    declare("0s")  # submitted, not waited for: the sandbox finishes them at once (progress_seconds=0)
    stack.engine.up(skip_preview=True)
    assert stack.submits() == [sorted(PAGES)]

    # The index gains a plain child, and two pages change: the preview names exactly the URLs not warm (the new
    # ones) and the two changed ones (old lastmod => new); up purges exactly the two, then prefetches them and the
    # new ones, and nothing else.
    changed = [PAGES[2], PAGES[4]]
    lastmods.update({url: "2026-05-02T09:30:00+08:00" for url in changed})
    serve("/sitemap-docs.xml.gz", "/sitemap-blog.xml")
    line = declare("30s")  # up waits for each purge before the prefetch that follows it
    sandbox.store.clear_requests()
    up = stack.engine.up()
    diff = target_diff(up.preview.step(RESOURCE))
    assert {path: (e.kind, e.old, e.new) for path, e in diff.items()} == {
        **{path_of(url): ("add", None, "warm (lastmod 2026-05-01)") for url in POSTS},
        **{path_of(url): ("update", "warm (lastmod 2026-05-01)", "warm (lastmod 2026-05-02T01:30:00Z)")
           for url in changed}}
    assert stack.submits(purges=True) == [sorted(changed)]
    assert sorted(url for batch in stack.submits() for url in batch) == sorted(POSTS + changed)
    purged = {task.target: task for task in sandbox.store.tasks("teo", kind="purge")}
    warmed = {task.target: task for task in sandbox.store.tasks("teo", kind="prefetch")}
    assert all(purged[url].finish <= warmed[url].created for url in changed)  # purged, then prefetched
    assert stack.outputs(RESOURCE)["summary"]["in_sync"] is True
    kept = stack.engine.state_json()

    # a sitemap that cannot be read fails the preview, names the set and the URL, and drops nothing (an
    # unreachable one too: tests/test_sitemap.py, through the same program step)
    gz_url = site.url + "/sitemap-docs.xml.gz"
    for break_it, words in [
        (lambda: site.put("/sitemap-docs.xml.gz", "<urlset><url>", gzipped=True),
         f"sitemap {site.url}/sitemap.xml: lists sitemap {gz_url}, which is not well-formed XML"),
        (lambda: site.put("/sitemap.xml", ENTITY_EXPANSION),
         f"sitemap {site.url}/sitemap.xml: declares a DTD or entities (DTDForbidden)"),
    ]:
        break_it()
        sandbox.store.clear_requests()
        with pytest.raises(EngineError) as info:  # the program fails: a refresh first would change nothing
            stack.engine.preview(refresh=False)
        message = str(info.value.program_error)
        assert message.startswith("1 problem reading sitemaps (nothing was submitted):\n  - ")
        assert f"{declared}:{line}: sitemap.urls[0]: set 'web', {words}" in message and "Traceback" not in message
        assert info.value.steps == [] and stack.engine.state_json() == kept
        assert stack.submits() == [] and stack.submits(purges=True) == []
