"""The request log: what each request named, how it was answered, and what fault hit it.

Tests and the CLI read it to check what a client really sent (and how often), across processes.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .database import Database


class RequestLog(Database):
    """The requests table."""

    def log_request(
        self,
        *,
        service: str | None,
        action: str | None,
        params: Any,
        error_code: str | None,
        request_id: str,
        error_message: str | None = None,
        method: str | None = None,
        secret_id: str | None = None,
        at: float | None = None,
        fault: str | None = None,
        fault_id: int | None = None,
        handled: bool = True,
    ) -> None:
        """Record one request. `fault`/`fault_id`: what was injected; `handled=False`: a fault cut the
        request off before the API saw it (so `error_code` is None although nothing was performed)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO requests (at, service, action, method, secret_id, params, error_code,"
                " error_message, request_id, fault, fault_id, handled) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    time.time() if at is None else at, service, action, method, secret_id,
                    None if params is None else json.dumps(params, ensure_ascii=False, default=str),
                    error_code, error_message, request_id, fault, fault_id, int(handled),
                ),
            )

    def requests(self, action: str | None = None, service: str | None = None) -> list[dict[str, Any]]:
        """The request log in arrival order: time, service, action, params, error_code, request_id,
        fault (the kind injected, else None), fault_id and handled (False: cut off by a fault)."""
        where: list[str] = []
        args: list[Any] = []
        if action is not None:
            where.append("action = ?")
            args.append(action)
        if service is not None:
            where.append("service = ?")
            args.append(service)
        sql = "SELECT * FROM requests" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [
            {
                "id": r["id"],
                "time": r["at"],
                "service": r["service"],
                "action": r["action"],
                "method": r["method"],
                "secret_id": r["secret_id"],
                "params": None if r["params"] is None else json.loads(r["params"]),
                "error_code": r["error_code"],
                "error_message": r["error_message"],
                "request_id": r["request_id"],
                "fault": r["fault"],
                "fault_id": r["fault_id"],
                "handled": bool(r["handled"]),
            }
            for r in rows
        ]

    def clear_requests(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM requests")
