"""The rate limit's count, in the SQLite file: one count per account and action for every server on it.

A cloud counts requests per account and action at its gateway, whichever of its servers answers. The
embedded sandbox runs one server per provider process (components/clouds/factory.py), and several
pipelines on one account are several processes on one file: counted in memory, each would get the whole
limit and none would ever be throttled by the others. Counted here, they share it as on the cloud.
"""

from __future__ import annotations

from .database import Database


class RateTable(Database):
    """Admitted requests of the last window per key (refused ones do not count, as on the clouds)."""

    def admit(self, key: str, limit: int, now: float, window: float) -> bool:
        """Count one request at ``now`` (seconds, a clock every process shares) unless ``limit`` requests
        of ``key`` were admitted within the ``window`` before it."""
        with self._write() as db:
            db.execute("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (key, now - window))
            (count,) = db.execute("SELECT count(*) FROM rate_hits WHERE key = ?", (key,)).fetchone()
            if count >= limit:
                return False
            db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, now))
            return True
