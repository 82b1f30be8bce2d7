"""The fourth cloud's "sandbox": a small JSON-over-HTTP API on loopback, state in memory.

POST /quota {space} -> {batch, daily, used}; POST /prefetch {space, urls} -> {taskId};
POST /tasks {space, since, until, offset, limit} -> {total, rows: [{url, taskId, status, created, finished}]}.
Every request is signed (``X-Fourth-Key``, ``X-Fourth-Signature``: HMAC-SHA256 of path and body with
the secret). A task is ``pending`` for ``delay`` seconds, then ``done``, or ``error``/``timeout`` for
URLs a rule made fail when it was submitted.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


def signature(secret: str, path: str, body: bytes) -> str:
    return hmac.new(secret.encode(), path.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Row:
    space: str
    url: str
    task_id: str
    created: datetime
    outcome: str  # what the row turns into once finished: done | error | timeout


class FourthCloud:
    """The emulator: spaces, rules, tasks and a log of accepted submits."""

    def __init__(self, keys: dict[str, str], spaces: tuple[str, ...], *, batch: int = 100, daily: int = 1000,
                 delay: float = 0.3):
        self.keys, self.spaces, self.batch, self.daily, self.delay = keys, set(spaces), batch, daily, delay
        self.rules: dict[str, str] = {}
        self.rows: list[Row] = []
        self.submits: list[list[str]] = []
        self.refused: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    # -- the test's controls -----------------------------------------------------------------
    def fail(self, url: str, how: str = "error") -> None:
        """Tasks submitted from now on for ``url`` end ``error`` (or ``timeout``)."""
        self.rules[url] = how

    def start(self) -> "FourthCloud":
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = cloud.handle(self.path, body, self.headers.get("X-Fourth-Key", ""),
                                              self.headers.get("X-Fourth-Signature", ""))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the API --------------------------------------------------------------------------------
    def handle(self, path: str, body: bytes, key_id: str, signed: str) -> tuple[int, dict]:
        secret = self.keys.get(key_id)
        if secret is None or not hmac.compare_digest(signed, signature(secret, path, body)):
            return self._refuse(401, "AuthFailure", f"{path}: bad key or signature")
        try:
            params = json.loads(body)
            space = params["space"]
        except (ValueError, KeyError, TypeError):
            return self._refuse(400, "InvalidRequest", f"{path}: not a JSON object with a space")
        if space not in self.spaces:
            return self._refuse(404, "SpaceNotFound", f"no space {space}")
        with self._lock:
            if path == "/quota":
                return 200, {"batch": self.batch, "daily": self.daily, "used": self._used(space)}
            if path == "/prefetch":
                return self._prefetch(space, params.get("urls"))
            if path == "/tasks":
                return self._tasks(space, params)
        return self._refuse(404, "NoSuchAction", path)

    def _refuse(self, status: int, code: str, message: str) -> tuple[int, dict]:
        self.refused.append(f"{code}: {message}")
        return status, {"code": code, "message": message}

    def _used(self, space: str) -> int:
        today = datetime.now(timezone.utc).date()
        return sum(1 for row in self.rows if row.space == space and row.created.date() == today)

    def _prefetch(self, space: str, urls: Any) -> tuple[int, dict]:
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            return self._refuse(400, "InvalidRequest", "urls must be a non-empty list of URLs")
        if len(urls) > self.batch:
            return self._refuse(400, "BatchTooLarge", f"{len(urls)} URLs, at most {self.batch}")
        if self._used(space) + len(urls) > self.daily:
            return self._refuse(429, "QuotaExceeded", "daily prefetch quota exceeded")
        task_id = f"{space}-task-{next(self._ids):06d}"
        now = datetime.now(timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the API's times are in milliseconds
        self.rows.extend(Row(space, url, task_id, now, self.rules.get(url, "done")) for url in urls)
        self.submits.append(sorted(urls))
        return 200, {"taskId": task_id}

    def _tasks(self, space: str, params: dict) -> tuple[int, dict]:
        since, until = (datetime.fromisoformat(params[k].replace("Z", "+00:00")) for k in ("since", "until"))
        offset, limit = int(params.get("offset", 0)), min(int(params.get("limit", 100)), 100)
        rows = [r for r in self.rows if r.space == space and since <= r.created <= until]
        now = datetime.now(timezone.utc)
        page = []
        for row in rows[offset:offset + limit]:
            finished = row.created + timedelta(seconds=self.delay)
            done = now >= finished
            page.append({"url": row.url, "taskId": row.task_id, "created": iso(row.created),
                         "status": row.outcome if done else "pending", "finished": iso(finished) if done else None})
        return 200, {"total": len(rows), "rows": page}
