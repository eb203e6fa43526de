"""Real Redis topologies for the suite, on loopback, with the binary the embedded Redis
uses: a primary with a replica behind three Sentinels (redis-server --sentinel), and a
cluster of three primaries, each with a replica (cluster-enabled, slots assigned by
CLUSTER ADDSLOTS the way `redis-cli --cluster create` splits them).

Each process is a child of the test run; `stop()` kills them all. Ports are picked as
free; a cluster node's bus listens on its port + 10000, so a node's port is picked
with that one free too."""

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
class _Processes:
    """Child redis-server processes by port; stop() kills them all."""

    root: Path
    _procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, kw_only=True)

    def kill(self, port: int) -> None:
        """kill -9 one process."""
        proc = self._procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def freeze(self, port: int) -> None:
        """SIGSTOP: the process holds its sockets open and answers nothing."""
        self._procs[port].send_signal(signal.SIGSTOP)

    def thaw(self, port: int) -> None:
        self._procs[port].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for proc in self._procs.values():
            proc.send_signal(signal.SIGCONT)  # a frozen one too
            proc.send_signal(signal.SIGKILL)
        for proc in self._procs.values():
            proc.wait()
        self._procs.clear()

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.root / f"{port}.log", "wb")  # noqa: SIM115 - the child keeps it
        self._procs[port] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ}, start_new_session=True,
        )  # fmt: skip

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


@dataclass
class SentinelSet(_Processes):
    """A primary, one replica and three Sentinels (quorum 2), failing over within
    about two seconds of the primary's death."""

    password: str | None = None  # the Sentinels' own (requirepass), when set
    primary_port: int = 0
    replica_port: int = 0
    sentinel_ports: list[int] = field(default_factory=list)

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
        self.kill(port)
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

    # -------------------------------------------------------------- internals
    def _server(self, binary: str, port: int, extra: list[str]) -> None:
        data = self.root / f"redis-{port}"
        data.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                "--save", "", "--appendonly", "no", *extra]  # fmt: skip
        self._spawn(port, args)
        self._until(lambda: redis.Redis(port=port).ping())

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.password, decode_responses=True,
                           socket_timeout=2)  # fmt: skip

    def _wait_replicated(self) -> None:
        replica = redis.Redis(port=self.replica_port, decode_responses=True)
        self._until(lambda: replica.info("replication").get("master_link_status") == "up")


SLOTS = 16384


@dataclass
class ClusterSet(_Processes):
    """Three primaries, each with one replica; a primary's replica takes over within
    about two seconds of its death (cluster-node-timeout 1000 ms)."""

    primaries: int = 3
    node_timeout_ms: int = 1000
    ports: list[int] = field(default_factory=list)  # primaries first, then replicas

    def start(self) -> None:
        binary = str(find_redis_server())
        n = self.primaries
        while len(self.ports) < 2 * n:
            port = free_port()
            if port + 10000 < 65536 and _free(port + 10000) and port not in self.ports:
                self.ports.append(port)
        for port in self.ports:
            self._node(binary, port)
        per = SLOTS // n
        for i, port in enumerate(self.ports[:n]):
            last = SLOTS - 1 if i == n - 1 else (i + 1) * per - 1
            self._client(port).execute_command("CLUSTER", "ADDSLOTS", *range(i * per, last + 1))
        first = self._client(self.ports[0])
        for port in self.ports[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        for port in self.ports:
            self._until(lambda p=port: len(self._nodes(p).splitlines()) == 2 * n)
        for primary, replica in zip(self.ports[:n], self.ports[n:], strict=True):
            node_id = self._client(primary).execute_command("CLUSTER", "MYID")
            self._until(lambda r=replica, i=node_id: i in self._nodes(r))
            self._client(replica).execute_command("CLUSTER", "REPLICATE", node_id)
        self.wait_ok()

    @property
    def url(self) -> str:
        """Any one node: the others are discovered."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def wait_ok(self, within_s: float = 30.0) -> None:
        """Until every running node says cluster_state:ok and every replica is linked."""

        def ok() -> bool:
            for port in self._procs:
                c = self._client(port)
                if "cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
                    return False
                role = c.info("replication")
                if role.get("role") == "slave" and role.get("master_link_status") != "up":
                    return False
            return True

        self._until(ok, within_s)

    def primary_of(self, key: str) -> int:
        """The port of the primary that serves key's slot now."""
        c = self._client(self.ports[0])
        slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, (_, port, *_), *_ in c.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return int(port)
        raise LookupError(f"no node serves slot {slot}")

    def wait_for_promotion(self, old_port: int, within_s: float = 30.0) -> None:
        """Until the slots old_port served are served by another node, and the cluster
        is ok again."""

        def promoted() -> bool:
            for port in self._procs:
                slots = self._client(port).execute_command("CLUSTER", "SLOTS")
                if any(int(node[1]) == old_port for _, _, node, *_ in slots):
                    return False
            return True

        self._until(promoted, within_s)
        self._until(lambda: all(
            "cluster_state:ok" in self._client(p).execute_command("CLUSTER", "INFO")
            for p in self._procs
        ), within_s)  # fmt: skip

    def keys_per_primary(self) -> dict[int, int]:
        out = {}
        for port in self._procs:
            c = self._client(port)
            if c.info("replication").get("role") == "master":
                out[port] = int(c.dbsize())
        return out

    # -------------------------------------------------------------- internals
    def _node(self, binary: str, port: int) -> None:
        data = self.root / f"node-{port}"
        data.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms)]  # fmt: skip
        self._spawn(port, args)
        self._until(lambda: self._client(port).ping())

    def _nodes(self, port: int) -> str:
        return str(self._client(port).execute_command("CLUSTER", "NODES"))

    @staticmethod
    def _client(port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=2)


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
