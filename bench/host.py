"""Drive the SDK's real dynamic provider host (``python -u -m pulumi.dynamic``) over gRPC, as the engine does.

The recipe is /work/shared/reference/pulumi-dynamic.md §3b: start the host with the project root
as cwd, read its port from the first stdout line, Configure, then Check/Create/Read/Diff with
property Structs. The host runs in its own process, so its CPU time and peak RSS can be read from
``/proc/<pid>/stat`` (utime + stime) and ``/proc/<pid>/status`` (VmHWM) without counting the
sandbox or this driver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

PROJECT = Path(__file__).resolve().parent.parent
PROJECT_NAME = "cdn-prefetch"
RPC_TIMEOUT = 3600.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """What the host process has used so far: CPU seconds (user + system) and peak RSS in bytes."""

    cpu: float
    peak_rss: int


def process_usage(pid: int) -> Usage:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is field 3 (state) of proc(5)
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    peak = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return Usage(cpu, peak)


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    """Plain JSON-like values as the engine sends them (no secrets, no unknowns in this benchmark)."""
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


class ProviderHost:
    """One provider host process, configured with ``config`` (namespaced stack config, plain text values)."""

    def __init__(self, config: dict[str, Any], env: Optional[dict[str, str]] = None):
        environment = dict(os.environ)
        environment.update({"PULUMI_PROJECT": PROJECT_NAME, "PULUMI_CONFIG": "{}",
                            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        environment.update(env or {})
        # BENCH_HOST_PROFILE=<dir>: the host runs under cProfile (bench/profiled_host.py), to see where its CPU goes.
        profile = environment.get("BENCH_HOST_PROFILE")
        module = ["bench.profiled_host", profile] if profile else ["pulumi.dynamic"]
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", *module, "127.0.0.1:1"], cwd=str(PROJECT),
                                     env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._log: list[str] = []
        self._stderr = threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True)
        self._stderr.start()
        port = self.proc.stdout.readline().decode(errors="replace").strip()
        if not port.isdigit():
            self.proc.kill()
            raise RuntimeError(f"the provider host did not start: {port!r}\n{self.log()}")
        self._stdout = threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True)
        self._stdout.start()
        options = list(_GRPC_CHANNEL_OPTIONS) + [("grpc.enable_http_proxy", 0)]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
        grpc.channel_ready_future(self.channel).result(timeout=60)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        args = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
        self.stub.Configure(provider_pb2.ConfigureRequest(
            variables=args, args=to_struct(args), acceptSecrets=True, acceptResources=True, sends_old_inputs=True,
            sends_old_inputs_to_delete=True, urn=self.urn("pulumi:providers:pulumi-python", "default"),
            name="default", type="pulumi:providers:pulumi-python"), timeout=RPC_TIMEOUT)

    @staticmethod
    def urn(type_: str, name: str) -> str:
        return f"urn:pulumi:bench::{PROJECT_NAME}::{type_}::{name}"

    def _pump(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            self._log.append(raw.decode(errors="replace"))

    def log(self) -> str:
        return "".join(self._log)

    def usage(self) -> Usage:
        return process_usage(self.proc.pid)

    # -- the engine's calls ---------------------------------------------------------------------
    def check(self, urn: str, olds: dict, news: dict) -> dict:
        resp = self.stub.Check(provider_pb2.CheckRequest(urn=urn, olds=to_struct(olds), news=to_struct(news)),
                               timeout=RPC_TIMEOUT)
        if resp.failures:
            raise RuntimeError(f"check failed: {[(f.property, f.reason) for f in resp.failures]}")
        return from_struct(resp.inputs)

    def create(self, urn: str, checked: dict) -> tuple[str, dict]:
        resp = self.stub.Create(provider_pb2.CreateRequest(urn=urn, properties=to_struct(checked)),
                                timeout=RPC_TIMEOUT)
        return resp.id, from_struct(resp.properties)

    def update(self, id_: str, urn: str, olds: dict, news: dict, old_inputs: dict,
               timeout: float = RPC_TIMEOUT) -> dict:
        """Update: ``olds`` are the outputs in state, ``news`` the checked new inputs (as the engine sends them)."""
        resp = self.stub.Update(provider_pb2.UpdateRequest(id=id_, urn=urn, olds=to_struct(olds), news=to_struct(news),
                                                           old_inputs=to_struct(old_inputs)), timeout=timeout)
        return from_struct(resp.properties)

    def read(self, id_: str, urn: str, outputs: dict, inputs: dict) -> tuple[str, dict, Optional[dict]]:
        resp = self.stub.Read(provider_pb2.ReadRequest(id=id_, urn=urn, properties=to_struct(outputs),
                                                       inputs=to_struct(inputs)), timeout=RPC_TIMEOUT)
        return resp.id, from_struct(resp.properties), from_struct(resp.inputs) if resp.HasField("inputs") else None

    def diff(self, id_: str, urn: str, olds: dict, news: dict, old_inputs: dict) -> int:
        resp = self.stub.Diff(provider_pb2.DiffRequest(id=id_, urn=urn, olds=to_struct(olds), news=to_struct(news),
                                                       old_inputs=to_struct(old_inputs)), timeout=RPC_TIMEOUT)
        return resp.changes

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.channel.close()
        for thread in (self._stderr, self._stdout):
            thread.join(5)
        return self.log()


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
