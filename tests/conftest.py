"""Fixtures every test gets."""

from __future__ import annotations

import pytest

from components.clouds import quota_ledger as quota
from components.clouds.history import SHARED


@pytest.fixture(autouse=True)
def fresh_shared_history():
    """Each test starts with an empty process-wide history cache (components/clouds/history.py) and quota
    ledger (components/clouds/quota_ledger.py).

    In production one provider host serves one engine command; in one pytest process, tests that
    reuse a sandbox port or a fake scope must not be served another test's history.
    """
    SHARED.clear()
    quota.SHARED.clear()
    yield
    SHARED.clear()
    quota.SHARED.clear()
