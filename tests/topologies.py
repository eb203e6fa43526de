"""Real Redis topologies for the suite: a primary with a replica behind three Sentinels
(redis-server --sentinel, the same binary the embedded Redis uses), on loopback.

Each process is a child of the test run; `stop()` kills them all. Ports are picked as
free (a server's port, nothing else: Sentinel needs no bus port)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bridge.store.embedded import find_redis_server
from tests.e2e.harness import free_port

MASTER = "bridgeprimary"


@dataclass
class SentinelSet:
    """A primary, one replica and three Sentinels (quorum 2), failing over within
    about two seconds of the primary's death."""

    root: Path
    password: str | None = None  # the Sentinels' own (requirepass), when set
    primary_port: int = 0
    replica_port: int = 0
    sentinel_ports: list[int] = field(default_factory=list)
    _procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        binary = str(find_redis_server())
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._server(binary, self.primary_port, [])
        self._server(
            binary, self.replica_port, ["--replicaof", "127.0.0.1", str(self.primary_port)]
        )
        self._wait_replicated()
        for port in self.sentinel_ports:
            conf = self.root / f"sentinel-{port}.conf"
            lines = [
                f"port {port}",
                "bind 127.0.0.1",
                f"dir {self.root}",
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2",
                f"sentinel down-after-milliseconds {MASTER} 800",
                f"sentinel failover-timeout {MASTER} 4000",
                f"sentinel parallel-syncs {MASTER} 1",
            ]
            if self.password:
                lines.append(f"requirepass {self.password}")
            conf.write_text("\n".join(lines) + "\n")
            self._spawn(port, [binary, str(conf), "--sentinel"])
        for port in self.sentinel_ports:
            self._until(lambda p=port: self._sentinel(p).ping())

    @property
    def sentinels(self) -> tuple[tuple[str, int], ...]:
        return tuple(("127.0.0.1", p) for p in self.sentinel_ports)

    def primary(self) -> tuple[str, int]:
        """The primary as the Sentinels name it now."""
        host, port = self._sentinel(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(MASTER)
        return str(host), int(port)

    def kill_primary(self) -> int:
        """kill -9 the current primary; its port."""
        _, port = self.primary()
        proc = self._procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return port

    def wait_for_promotion(self, old_port: int, within_s: float = 30.0) -> tuple[str, int]:
        """Until every Sentinel names a primary other than old_port (and it answers as one)."""

        def promoted() -> bool:
            names = {self._sentinel(p).sentinel_get_master_addr_by_name(MASTER)
                     for p in self.sentinel_ports}  # fmt: skip
            if len(names) != 1:
                return False
            ((host, port),) = names
            if int(port) == old_port:
                return False
            role = redis.Redis(host=str(host), port=int(port)).role()
            return bool(role and role[0] in (b"master", "master"))

        self._until(promoted, within_s)
        return self.primary()

    def stop(self) -> None:
        for proc in self._procs.values():
            proc.send_signal(signal.SIGKILL)
        for proc in self._procs.values():
            proc.wait()
        self._procs.clear()

    # -------------------------------------------------------------- internals
    def _server(self, binary: str, port: int, extra: list[str]) -> None:
        data = self.root / f"redis-{port}"
        data.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                "--save", "", "--appendonly", "no", *extra]  # fmt: skip
        self._spawn(port, args)
        self._until(lambda: redis.Redis(port=port).ping())

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.root / f"{port}.log", "wb")  # noqa: SIM115 - the child keeps it
        self._procs[port] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ}, start_new_session=True,
        )  # fmt: skip

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.password, decode_responses=True,
                           socket_timeout=2)  # fmt: skip

    def _wait_replicated(self) -> None:
        replica = redis.Redis(port=self.replica_port, decode_responses=True)
        self._until(lambda: replica.info("replication").get("master_link_status") == "up")

    @staticmethod
    def _until(check: object, within_s: float = 15.0) -> None:
        deadline = time.monotonic() + within_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
                last = exc
            time.sleep(0.05)
        raise TimeoutError(f"not ready within {within_s} s ({last})")
