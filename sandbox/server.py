"""The HTTP side: a threaded server on loopback that parses, dispatches, logs and answers.

Every answer is HTTP 200 with `Content-Type: application/json` exactly: the Tencent SDK only looks
for `Response.Error` under that exact value (cdn-apis.md §5.1), and a non-200 would surface as an
opaque `ServerNetworkError`. Unexpected crashes become an `InternalError` body, never a traceback.
The exceptions are deliberate: a fault (`sandbox.faults`) that fires on a request changes how it is
handled or answered, down to resetting the connection.

Over 400 lines, one job: the request's path through the server (parse, identify, rate-limit,
fault, dispatch, log, answer) reads best in one place; each protocol lives in its own module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import struct
import sys
import threading
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Callable, Hashable, Mapping

from . import edgeone, faults, tencent, tencent_cdn, ucloud, ucloud_wire
from .faults import Fault
from .keys import TENCENT_KEYS, UCLOUD_KEYS
from .origin import check_loopback
from .store import SandboxStore
from .wire import Env, HttpRequest, Identity, Reply

TENCENT_SERVICES: Mapping[str, tencent.TencentService] = {s.name: s for s in (edgeone.SERVICE, tencent_cdn.SERVICE)}
"""Emulated Tencent services by credential-scope name. A new service is one module + one entry here."""

PROTOCOLS: list[tuple[Callable[[HttpRequest], bool], Callable[[HttpRequest, Env], Reply]]] = [
    (tencent.claims, lambda req, env: tencent.handle(req, env, TENCENT_SERVICES)),
    (ucloud_wire.claims, lambda req, env: ucloud_wire.handle(req, env, ucloud.ACTIONS)),  # Action, PublicKey, SHA1 Signature
]
"""Wire protocols, tried in order; the first whose `claims` accepts a request handles it."""

IDENTIFIERS: list[tuple[Callable[[HttpRequest], bool], Callable[[HttpRequest], Identity]]] = [
    (tencent.claims, lambda req: tencent.identify(req, TENCENT_SERVICES)),
    (ucloud_wire.claims, ucloud_wire.identify),
]
"""How each protocol names a request's service and action before handling it (faults match on them)."""
JSON = "application/json"


class _Throttled:
    """A rate limiter that refuses every request: the throttle fault answers with the protocol's own
    throttling error, at the step where the cloud throttles (after authentication)."""

    def allow(self, key: Hashable, limit: int) -> bool:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], env: Env) -> None:
        self.env = env
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.stopping = threading.Event()  # wakes `slow` faults so a stop never waits for them
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so a stopped sandbox really stops answering."""
        with self.connections_lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses its connection
    disable_nagle_algorithm = True  # else headers + body in two writes cost a 40 ms delayed ACK
    server_version = "cdn-prefetch-sandbox"
    timeout = 60  # idle keep-alive connections are closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the request log in SQLite is the record (`python -m sandbox log`)."""

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        env = self.server.env
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked or length < 0 or length > tencent.MAX_BODY_BYTES:
            self.close_connection = True  # we will not read the body, so the stream is unusable
            if length > tencent.MAX_BODY_BYTES:
                reply = _error_reply("RequestSizeLimitExceeded", f"The request body exceeds {tencent.MAX_BODY_BYTES} bytes.")
            else:
                reply = _error_reply("InvalidParameter", "Send the body with a valid Content-Length (no chunked encoding).")
            self._log(reply)
            self._send(reply)
            return
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        req = HttpRequest(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=self.client_address[0],
        )
        who, fault = self._pick_fault(req, env)
        if fault is None:
            reply = self._handle(req, env)
            self._log(reply)
            self._send(reply)
        else:
            self._inject(req, env, who, fault)

    @staticmethod
    def _pick_fault(req: HttpRequest, env: Env) -> tuple[Identity, Fault | None]:
        """The request's identity and the fault that fires on it, if any (a broken fault is no fault)."""
        who = Identity(service=None, action=None)
        try:
            who = _identify(req)
            return who, env.store.trigger_fault(who.service, who.action)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return who, None

    def _handle(self, req: HttpRequest, env: Env) -> Reply:
        try:
            return self._dispatch(req, env)
        except Exception:  # a sandbox bug: answer like the cloud would, keep the trace for us
            traceback.print_exc(file=sys.stderr)
            reply = _error_reply("InternalError", "Internal error in the sandbox (see its stderr).")
            reply.action = req.headers.get("x-tc-action")
            return reply

    def _inject(self, req: HttpRequest, env: Env, who: Identity, fault: Fault) -> None:
        """Handle `req` the way `fault` says: perform the action or not, then answer, break or stall."""
        kind = fault.kind
        if kind == "throttle":
            env = dataclasses.replace(env, limiter=_Throttled())
        elif kind == "clock_skew":
            env = dataclasses.replace(env, clock_offset=float(fault.delay_seconds or 0.0))

        if kind in faults.EXECUTED_CHOICE and not fault.executed:
            if kind == "http_5xx":
                self._log_cut_off(req, who, fault)
                self._send_error_page(fault)
                return
            if kind == "reset" or self._stall(fault):  # a stall cut short: the sandbox is stopping
                self._log_cut_off(req, who, fault)
                self._reset()
                return

        reply = self._handle(req, env)
        self._log(reply, fault=kind, fault_id=fault.id)
        if kind == "http_5xx":
            self._send_error_page(fault)
        elif kind == "reset":
            self._reset()
        elif kind == "slow" and fault.executed and self._stall(fault):
            self._reset()
        elif kind == "malformed_json":
            self._send(reply, payload=faults.truncate(_encode(reply.body)))
        elif kind in ("missing_field", "null_field"):
            field = fault.field_for(reply.service or who.service, reply.action or who.action)
            if field is not None:
                faults.strip_field(reply.body, field, null=kind == "null_field")
            self._send(reply)
        elif kind == "wrong_content_type":
            self._send(reply, content_type=f"{JSON}; charset=utf-8")
        else:  # throttle and clock_skew shaped the reply itself; slow has slept
            self._send(reply)

    def _stall(self, fault: Fault) -> bool:
        """Sleep for a `slow` fault; True if the sandbox was stopped meanwhile."""
        return self.server.stopping.wait(max(0.0, float(fault.delay_seconds or 0.0)))

    def _log(self, reply: Reply, *, fault: str | None = None, fault_id: int | None = None) -> None:
        try:
            self.server.env.store.log_request(
                service=reply.service, action=reply.action, params=reply.params,
                error_code=reply.error_code, error_message=reply.error_message,
                request_id=reply.request_id, method=self.command, secret_id=reply.secret_id,
                fault=fault, fault_id=fault_id,
            )
        except Exception:
            traceback.print_exc(file=sys.stderr)

    def _log_cut_off(self, req: HttpRequest, who: Identity, fault: Fault) -> None:
        """Log a request a fault stopped before any handler saw it, with what it named."""
        try:
            self.server.env.store.log_request(
                service=who.service, action=who.action, params=who.params, error_code=None,
                request_id=str(uuid.uuid4()), method=req.method, secret_id=who.secret_id,
                fault=fault.kind, fault_id=fault.id, handled=False,
            )
        except Exception:
            traceback.print_exc(file=sys.stderr)

    @staticmethod
    def _dispatch(req: HttpRequest, env: Env) -> Reply:
        for claims, handle in PROTOCOLS:
            if claims(req):
                return handle(req, env)
        # Nothing recognisable: answer as API 3.0 would (an Authorization error), not with a 404.
        return PROTOCOLS[0][1](req, env)

    def _send(self, reply: Reply, *, payload: bytes | None = None, content_type: str = JSON) -> None:
        """The JSON answer; `payload`/`content_type` only differ when a fault mangles it."""
        self._send_bytes(200, content_type, _encode(reply.body) if payload is None else payload, reply.headers)

    def _send_error_page(self, fault: Fault) -> None:
        status = int(fault.status or faults.DEFAULT_STATUS)
        self._send_bytes(status, "text/html", faults.error_page(status), {})

    def _send_bytes(self, status: int, content_type: str, payload: bytes, headers: Mapping[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)  # JSON: exactly this; see module docstring
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out on `slow`)
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection without an answer: SO_LINGER 0 makes the close an RST, not a FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.rfile.close()  # the last reference to the socket: the kernel sends the RST now
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP or an unsupported method: still answer 200 + JSON, like the gateway."""
        self.close_connection = True
        self._send(_error_reply("UnsupportedRequestMethod" if code == 501 else "InvalidParameter",
                                message or f"HTTP error {code}"))


def _identify(req: HttpRequest) -> Identity:
    for claims, identify in IDENTIFIERS:
        if claims(req):
            return identify(req)
    return tencent.identify(req, TENCENT_SERVICES)  # like _dispatch: the unrecognisable is answered as API 3.0


def _encode(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _error_reply(code: str, message: str) -> Reply:
    request_id = str(uuid.uuid4())
    return Reply(body=tencent.error_body(code, message, request_id), request_id=request_id,
                 error_code=code, error_message=message)


class Sandbox:
    """A local emulator of the cloud prefetch APIs, serving in a daemon thread.

    Usage: `with Sandbox(tmp_path / "sb.db") as sb:` then point the Tencent SDK at it with
    `HttpProfile(protocol="http", endpoint=sb.endpoint)` and the SANDBOX_SECRET_* pair, or the
    UCloud SDK with `{"base_url": sb.url}` and the SANDBOX_UCLOUD_* pair; every service shares the
    port and the db. Without `credentials` / `ucloud_credentials` it accepts the built-in pairs of
    `sandbox.keys` (two accounts per family; who owns what: `sandbox.accounts`). Port 0 (the default)
    picks a free port; `sb.store` steers it (rules, faults, settings, log). `stop()` also wakes
    requests stalled by a `slow` fault, so it never waits for them.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: dict[str, str] | None = None,
        progress_seconds: float | None = None,
        ucloud_credentials: dict[str, str] | None = None,
    ) -> None:
        check_loopback(host)
        self.host = host
        self._requested_port = int(port)
        self.store = SandboxStore(db_path)
        self.credentials = dict(credentials) if credentials is not None else dict(TENCENT_KEYS)
        self.ucloud_credentials = dict(ucloud_credentials) if ucloud_credentials is not None else dict(UCLOUD_KEYS)
        if progress_seconds is not None:
            # Settings live in the db so another process (or the CLI) sees and can change them.
            self.store.set_setting("progress_seconds", progress_seconds)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        env = Env(store=self.store, credentials=self.credentials, ucloud_credentials=self.ucloud_credentials)
        self._server = _Server((self.host, self._requested_port), env)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"sandbox:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self.store.close()  # its idle connections: the file may be removed once the sandbox stops

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's `serve`)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is not None:
            return int(self._server.server_address[1])
        if self._requested_port:
            return self._requested_port
        raise RuntimeError("the sandbox is not started, so its ephemeral port is not known yet")

    @property
    def endpoint(self) -> str:
        """host:port without a scheme, as the Tencent SDK's HttpProfile(endpoint=...) wants it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"Sandbox({self.store.path!r}, {where})"
