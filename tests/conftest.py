"""Fixtures every test gets."""

from __future__ import annotations

import pytest

from components.clouds.history import SHARED_HISTORY
from components.clouds.quota_ledger import SHARED_QUOTA


@pytest.fixture(autouse=True)
def fresh_shared_history():
    """Each test starts with an empty process-wide history cache (components/clouds/history.py) and quota
    ledger (components/clouds/quota_ledger.py).

    In production one provider host serves one engine command; in one pytest process, tests that
    reuse a sandbox port or a fake scope must not be served another test's history.
    """
    SHARED_HISTORY.clear()
    SHARED_QUOTA.clear()
    yield
    SHARED_HISTORY.clear()
    SHARED_QUOTA.clear()
