"""The `import-bridge` command line (also installed as `bridge`). Exit codes: 0 ok,
1 error, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge import __version__
from bridge.cli.admin import ADMIN_COMMANDS, add_admin_commands, run_admin
from bridge.cli.secrets_cmd import add_secrets_command, run_secrets
from bridge.errors import BridgeError, ConfigError
from bridge.masking import CHAT_FORMATS, MASK, masked_url
from bridge.model import ALL_ROLES, Role

if TYPE_CHECKING:
    from bridge.app import Bridge
    from bridge.settings import Settings

# The daemon's modules (aiohttp, redis, APScheduler, pydantic) are imported by the
# commands that need them: the admin commands start in a fraction of the time.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="import-bridge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"import-bridge {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", help="TOML config file (or env BRIDGE_CONFIG)")
    run.add_argument("--secrets-dir", help="directory of secret files (or env BRIDGE_SECRETS_DIR)")
    run.add_argument(
        "--role",
        action="append",
        choices=[r.value for r in Role],
        help="run only these roles (repeatable); default: all",
    )
    run.add_argument("--data-dir", default=".bridge", help="embedded Redis data (no redis_url)")
    run.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default: INFO",
    )

    sim = sub.add_parser("sim", help="run the FullStory/Talkdesk simulator")
    sim.add_argument("--listen", default="127.0.0.1:8900", help="HOST:PORT")
    sim.add_argument(
        "--token-ttl", type=float, default=3600.0, help="seconds a Talkdesk token lives"
    )
    sim.add_argument(
        "--log-limit", type=int, default=200_000, help="requests kept for /_sim/requests"
    )

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config; print it with secrets masked")
    check.add_argument("file", nargs="?", help="TOML config file (or env BRIDGE_CONFIG)")
    check.add_argument(
        "--secrets-dir", help="directory of secret files (or env BRIDGE_SECRETS_DIR)"
    )
    check.add_argument("--json", action="store_true", help="(the output is JSON already)")

    demo = sub.add_parser("demo", help="simulator + bridge + verifying receiver, live")
    demo.add_argument("--forever", action="store_true", help="keep running after the jobs end")
    demo.add_argument("--data-dir", default=".bridge", help="embedded Redis data")
    demo.add_argument("--timeout", type=float, default=90.0, help="give up after (seconds)")

    rec = sub.add_parser("receiver", help="a webhook receiver that verifies and prints events")
    rec.add_argument("--listen", default="127.0.0.1:8901", help="HOST:PORT; path /webhooks")
    rec.add_argument("--secret", help="whsec_… (default: env BRIDGE_WEBHOOK_SECRET)")

    probe = sub.add_parser(
        "probe", help="exit 0 when the bridge answers ready (container health checks)"
    )
    api = os.environ.get("BRIDGE_API_URL", "http://127.0.0.1:8080").rstrip("/")
    probe.add_argument(
        "--url", default=f"{api}/readyz", help="what to ask (default: BRIDGE_API_URL's /readyz)"
    )
    probe.add_argument("--timeout", type=float, default=3.0, help="seconds")

    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument(
        "shell", choices=["bash"], help='eval "$(import-bridge completion bash)"'
    )

    add_secrets_command(sub)
    add_admin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words  # accepted anywhere on the line, not only first
    args = build_parser().parse_args([w for w in words if w != "--debug"])
    args.debug = debug
    try:
        return _main(args)
    except BrokenPipeError:  # `import-bridge … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(args: argparse.Namespace) -> int:
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "sim":
            with _needs_demo_extra("sim"):
                return _sim(args)
        if args.command == "receiver":
            with _needs_demo_extra("receiver"):
                return _receiver(args)
        if args.command == "config":
            return _config_check(args.file, args.secrets_dir)
        if args.command == "probe":
            return _probe(args.url, args.timeout)
        if args.command == "completion":
            from bridge.cli.completion import bash_script

            print(bash_script(build_parser(), ("import-bridge", "bridge")), end="")
            return 0
        if args.command == "demo":
            with _needs_demo_extra("demo"):
                from bridge.demo import run_demo

                return run_demo(
                    data_dir=Path(args.data_dir), forever=args.forever, timeout_s=args.timeout
                )
        if args.command == "secrets":
            return run_secrets(args)
        if args.command in ADMIN_COMMANDS:
            return run_admin(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 1
    except BridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        if args.debug:
            raise
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        print(
            f"error: unexpected {type(exc).__name__}: {detail} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 2


@contextlib.contextmanager
def _needs_demo_extra(command: str) -> Iterator[None]:
    """The simulator and the demo are an extra (the production image has neither)."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("rich", "standardwebhooks", "bridge"):
            raise
        raise BridgeError(
            f"`import-bridge {command}` is not installed here: "
            "it needs the demo extra (pip install '.[demo]' in a checkout; the production "
            "image leaves it out: use its demo target)"
        ) from None


def _probe(url: str, timeout_s: float) -> int:
    """200 → 0; anything else → 1 with one line saying what was seen."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise BridgeError("--url must be an http(s) URL")
    from bridge.cli.admin import opener_for

    try:
        with opener_for(url).open(url, timeout=timeout_s) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"not ready: HTTP {status}", file=sys.stderr)
        return 1
    return 0


def _config_check(path: str | None, secrets_dir: str | None) -> int:
    """The validation `run` does before it connects to anything, then what the API
    checks of a subscription's target (its name resolved now)."""
    from bridge.delivery.targets import TargetRefused, Unresolvable, check_host, check_url
    from bridge.settings import load_settings

    if path is None and not os.environ.get("BRIDGE_CONFIG"):
        print(
            "warning: no config file (`config check FILE`, or BRIDGE_CONFIG): checking the "
            "defaults and BRIDGE_* variables only",
            file=sys.stderr,
        )
    settings = load_settings(path, secrets_dir=secrets_dir)
    problems = []
    policy = settings.delivery.targets
    for i, sub in enumerate(settings.subscriptions):
        try:
            check_host(*check_url(sub.url, policy), policy)
        except Unresolvable as exc:  # the API refuses it; this machine may not be its home
            print(f"warning: subscriptions[{i}].url: {exc} from here", file=sys.stderr)
        except TargetRefused as exc:
            problems.append(f"subscriptions[{i}].url: {exc}")
    if problems:
        raise ConfigError(problems)
    print(json.dumps(masked(settings), indent=2))
    return 0


def masked(settings: Settings) -> dict[str, Any]:
    """The effective config as JSON with every credential masked: SecretStr values,
    header and query values (names shown, as the API shows headers), and the paths of
    incoming-webhook URLs, which are credentials themselves."""
    data: dict[str, Any] = json.loads(settings.model_dump_json())
    for source in data.get("sources", {}).values():
        for key in ("headers", "query"):
            if isinstance(source.get(key), dict):
                source[key] = dict.fromkeys(source[key], MASK)
        for key in ("url", "base_url", "token_url"):
            if isinstance(source.get(key), str):
                source[key] = masked_url(source[key], chat=False)
    for sub in data.get("subscriptions", []):
        sub["headers"] = dict.fromkeys(sub.get("headers") or {}, MASK)
        sub["url"] = masked_url(sub["url"], chat=sub.get("format") in CHAT_FORMATS)
    return data


def _run(args: argparse.Namespace) -> int:
    import structlog

    from bridge import logs
    from bridge.app import Bridge
    from bridge.settings import load_settings
    from bridge.store.connection import RedisTarget
    from bridge.store.embedded import EmbeddedRedis

    log = structlog.get_logger("bridge.cli")
    logs.configure(args.log_level)
    settings = load_settings(args.config, secrets_dir=args.secrets_dir)
    roles = {Role(r) for r in args.role} if args.role else set(ALL_ROLES)
    if Role.API in roles and not settings.api.tokens:
        log.warning(
            "no_admin_tokens",
            message="api.tokens is empty: every /v1 request is refused (401); "
            "set api.tokens (see `import-bridge config check`)",
        )
    if Role.POLLER in roles and not settings.sources:
        log.warning("no_sources", message="no [sources.*] configured: there is nothing to poll")
    embedded: EmbeddedRedis | None = None
    target = settings.redis_target()
    keys = settings.sealing_keys()
    if target is None:
        embedded = EmbeddedRedis(Path(args.data_dir).resolve())
        embedded.start()  # first: it says what is wrong with --data-dir
        try:
            keys = embedded.sealing_keys(keys)
        except BridgeError:
            embedded.stop()
            raise
        log.warning(
            "embedded_redis",
            message=f"embedded Redis at {embedded.socket}; set redis_url for production",
            binary=str(embedded.binary),
        )
        target = RedisTarget(url=embedded.url)
    elif not keys:
        log.warning(
            "secrets_in_clear",
            message="secrets_keys is empty: webhook secrets, custom header values and "
            "access tokens are stored in Redis in clear; set secrets_keys (see "
            "`import-bridge secrets new-key`)",
        )
    try:
        bridge = Bridge(settings, redis_url=target, roles=roles, sealing_keys=keys)
        asyncio.run(_serve(bridge, on_second_signal=embedded.stop if embedded else None))
    finally:
        if embedded:
            embedded.stop()
    return 0


async def _serve(bridge: Bridge, on_second_signal: Callable[[], object] | None) -> None:
    """Run until SIGTERM or SIGINT; a second signal exits at once."""
    from bridge.app import run_until_signalled

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            return
        print("second signal: exiting now", file=sys.stderr, flush=True)
        if on_second_signal:
            on_second_signal()  # the embedded Redis writes its AOF and exits too
        os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await run_until_signalled(bridge, stop)


def _sim(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bridge import logs
    from bridge.settings import split_listen
    from bridge.sim.upstream import SimState, Simulator

    logs.configure("INFO")
    try:
        host, port = split_listen(args.listen)
    except ValueError as exc:
        raise BridgeError(f"--{exc}") from None
    _check_free(host, port)
    sim = Simulator(SimState(token_ttl=args.token_ttl, log_limit=args.log_limit))
    print(
        f"simulator on http://{host}:{port} (FullStory key {sim.state.api_key!r}, "
        f"Talkdesk client {sim.state.client_id!r})",
        flush=True,
    )
    web.run_app(sim.app(), host=host, port=port, print=None, shutdown_timeout=2)
    return 0


def _receiver(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bridge.cli.output import printable
    from bridge.settings import split_listen
    from bridge.sim.receiver import Received, VerifyingReceiver

    try:
        host, port = split_listen(args.listen)
    except ValueError as exc:
        raise BridgeError(f"--{exc}") from None
    _check_free(host, port)
    secret = args.secret or os.environ.get("BRIDGE_WEBHOOK_SECRET")
    if not secret:
        print("note: no --secret (or BRIDGE_WEBHOOK_SECRET): nothing will verify", flush=True)

    def show(r: Received) -> None:
        mark = "verified" if r.verified else "NOT VERIFIED"
        job = r.data.get("job_id") or r.data.get("source") or ""
        line = printable(f"{r.webhook_id} {r.type} {job}")
        print(f"{line} ({mark})", flush=True)

    receiver = VerifyingReceiver(secret=secret, on_receive=show)
    print(f"receiver on http://{host}:{port}/webhooks", flush=True)
    web.run_app(receiver.app(), host=host, port=port, print=None, shutdown_timeout=2)
    return 0


def _check_free(host: str, port: int) -> None:
    """One clear line when --listen cannot be had (before printing that it listens)."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise BridgeError(f"--listen: cannot listen on {host}:{port}: {exc.strerror}") from None
