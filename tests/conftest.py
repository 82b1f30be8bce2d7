"""Fixtures every test may use; shared helpers that are not fixtures are in tests/fakes.py.

- ``fresh_shared_history`` and ``no_proxy``: every test gets them (autouse);
- ``sb``: a sandbox with its built-in credentials (the SDK and adapter tests);
- ``sandbox``: a sandbox that knows the end-to-end stack's credentials and UCloud domain (tests/stacks.py);
- ``s3``: an S3-compatible origin server on loopback (tests/s3_origin.py), one per module;
- ``site``: a web site on loopback serving the files a test puts there (tests/fakes.py ``Site``);
- ``example_project``: a folder holding only a copy of the example sets and stack file (the command's tests).

A module (or a test) sets the sandbox's settings with a marker, e.g.
``pytestmark = pytest.mark.sandbox(progress_seconds=0.0, ucloud_prefetch_interval=0)``: each keyword
is a setting of the sandbox's store (sandbox/store.py), set before the first request.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from components.clouds.history import SHARED_HISTORY
from components.clouds.page_size import SHARED_BATCH_SIZES, SHARED_PAGE_SIZES
from components.clouds.poll_rounds import SHARED_ROUNDS
from components.clouds.quota_ledger import SHARED_QUOTA
from sandbox import Sandbox
from tests.fakes import Site
from tests.s3_origin import S3
from tests.stacks import PROJECT, start_sandbox

# How long a sandbox task stays running unless a module says otherwise (the setting progress_seconds).
SB_PROGRESS_SECONDS = 0.2  # sb: the sandbox's own tests see tasks run, briefly
SANDBOX_PROGRESS_SECONDS = 0.3  # sandbox: what start_sandbox (tests/stacks.py) gives the end-to-end tests


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox(**settings): store settings of the sb/sandbox fixture's sandbox "
                                       "(progress_seconds, ucloud_prefetch_interval, ...)")
    config.addinivalue_line("markers", "mostly_waits: a long test that mostly waits (rate limits, task progress); "
                                       "run first, so that its waiting overlaps the CPU-bound tests")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long waiting tests first: the workers (scripts/test: 4 on 2 cores) then spend their waits beside the
    CPU-bound tests instead of in a tail after them. A stable sort: the order is otherwise unchanged."""
    items.sort(key=lambda item: item.get_closest_marker("mostly_waits") is None)


@pytest.fixture(autouse=True)
def fresh_shared_history():
    """Each test starts with an empty process-wide history cache (components/clouds/history.py), quota
    ledger (components/clouds/quota_ledger.py) and learnt page and batch sizes (components/clouds/page_size.py).

    In production one provider host serves one engine command; in one pytest process, tests that
    reuse a sandbox port or a fake scope must not be served another test's history or page size.
    """
    for shared in (SHARED_HISTORY, SHARED_QUOTA, SHARED_PAGE_SIZES, SHARED_BATCH_SIZES, SHARED_ROUNDS):
        shared.clear()
    yield
    for shared in (SHARED_HISTORY, SHARED_QUOTA, SHARED_PAGE_SIZES, SHARED_BATCH_SIZES, SHARED_ROUNDS):
        shared.clear()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of the tests goes to 127.0.0.1 (sandboxes, provider hosts): never through a proxy."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def sandbox_settings(request: pytest.FixtureRequest, progress_seconds: float) -> dict[str, Any]:
    """The store settings the closest ``sandbox`` marker gives, with ``progress_seconds`` as the default."""
    marker = request.node.get_closest_marker("sandbox")
    return {"progress_seconds": progress_seconds, **(marker.kwargs if marker else {})}


def _configured(box: Sandbox, settings: dict[str, Any]) -> Sandbox:
    for name, value in settings.items():
        box.store.set_setting(name, value)
    return box


@pytest.fixture
def sb(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A started sandbox on a fresh db, with the sandbox's built-in credentials; stopped afterwards."""
    box = _configured(Sandbox(tmp_path / "sandbox.db"), sandbox_settings(request, SB_PROGRESS_SECONDS))
    with box:
        yield box


@pytest.fixture
def sandbox(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A started sandbox on a fresh db for a ``Stack`` (tests/stacks.py): its credentials and UCloud domain."""
    settings = sandbox_settings(request, SANDBOX_PROGRESS_SECONDS)
    box = _configured(start_sandbox(tmp_path / "sandbox.db", progress_seconds=settings["progress_seconds"]), settings)
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = S3()
    yield server
    server.server.stop()


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.stop()


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A folder with only what a user copies to run ``cdn-prefetch``: prefetch-sets/ and Pulumi.dev.yaml
    (every cloud on the embedded sandbox, whose SQLite file lands in the folder's .sandbox/)."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT / "prefetch-sets", project / "prefetch-sets")
    shutil.copy(PROJECT / "Pulumi.dev.yaml", project / "Pulumi.dev.yaml")
    return project
