"""The admin commands of `import-bridge`: each is one or a few calls to the admin API.

Human tables by default, `--json` for scripts (the API's own JSON). Exit codes:
0 ok, 1 error (the API said no, or could not be reached), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.cli import output as out
from bridge.delivery.signing import InvalidSecret, InvalidSignature, verify

DEFAULT_API = "http://127.0.0.1:8080"
TIMEOUT_S = 15.0


class CommandError(Exception):
    """A failed command: the message is printed, the exit code is 1."""


class Unavailable(CommandError):
    """The bridge did not answer, or answered 429, 502, 503 or 504: asking again later
    may work (wait does, until its timeout)."""


RETRY_STATUSES = (429, 502, 503, 504)


class ApiClient:
    def __init__(self, base: str, token: str | None) -> None:
        if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
            raise CommandError(f"--api must be an http(s) URL, got {base!r}")
        self.base = base.rstrip("/")
        self.token = token
        self.last_status = 0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> Any:
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only, checked above
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with opener_for(url).open(req, timeout=timeout_s) as resp:
                raw = resp.read()
                self.last_status = resp.status
        except urllib.error.HTTPError as exc:
            kind = Unavailable if exc.code in RETRY_STATUSES else CommandError
            raise kind(_api_error(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(f"cannot reach the bridge at {self.base}: {reason}") from None
        return json.loads(raw) if raw else None

    def pages(self, path: str, query: dict[str, Any], every: bool) -> dict[str, Any]:
        """One page, or every page when asked (following next_cursor)."""
        page: dict[str, Any] = self.call("GET", path, query=query)
        if not every:
            return page
        items = list(page["items"])
        while page.get("next_cursor"):
            page = self.call("GET", path, query={**query, "cursor": page["next_cursor"]})
            items += page["items"]
        return {"items": items, "next_cursor": None}


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """The bridge on this host is asked directly, whatever HTTP(S)_PROXY says (a proxy
    would only answer for it wrongly, e.g. a health check that always fails)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host in ("localhost", "::1") or host.startswith("127."):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _api_error(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return f"the API answered HTTP {exc.code}"
    text = f"{body.get('message', 'HTTP ' + str(exc.code))} ({body.get('code', exc.code)})"
    for f in body.get("fields") or []:
        text += f"\n  {f.get('name')}: {f.get('description')}"
    return text


# ------------------------------------------------------------------- parser
def add_admin_commands(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api", default=os.environ.get("BRIDGE_API_URL", DEFAULT_API), help="admin API base URL"
    )
    common.add_argument("--token", help="API token (default: env BRIDGE_API_TOKEN)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    page = argparse.ArgumentParser(add_help=False)
    page.add_argument("--limit", type=int, default=50, help="items per page (1-500)")
    page.add_argument("--all", action="store_true", help="every page")

    def group(name: str, help_: str) -> Any:
        p = sub.add_parser(name, help=help_)
        return p.add_subparsers(dest="action", required=True, metavar="ACTION")

    w = group("watch", "watched import jobs")
    p = w.add_parser("add", parents=[common], help="watch a job")
    p.add_argument("source")
    p.add_argument("job_id")
    p.add_argument("--kind", help="users or events (FullStory); default: the source's first")
    p.add_argument("--meta", action="append", default=[], help="KEY=VALUE, repeatable")
    p.add_argument(
        "--wait", action="store_true", help="block until the job ends (exit codes: wait)"
    )
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    p = w.add_parser("ls", parents=[common, page], help="list watches")
    p.add_argument("--state", choices=["watching", "terminal", "not_found", "expired"])
    p.add_argument("--source")
    p.add_argument("--kind")
    p.add_argument("--job-id", help="the watches of one upstream job (with --source)")
    p = w.add_parser("show", parents=[common], help="one watch")
    p.add_argument("id", help="a watch id, or SOURCE/JOB_ID")
    p.add_argument("--kind", help="with SOURCE/JOB_ID: that kind only")
    w.add_parser("rm", parents=[common], help="stop watching").add_argument("id")

    s = group("sub", "webhook subscriptions")
    p = s.add_parser("add", parents=[common], help="subscribe a URL")
    p.add_argument("url")
    p.add_argument("--event-type", action="append", dest="event_types", help="repeatable")
    p.add_argument("--source", action="append", dest="sources", help="repeatable")
    p.add_argument(
        "--meta", action="append", default=[], help="KEY=VALUE: watches whose metadata has it"
    )
    p.add_argument("--format", choices=["standard", "slack", "discord", "teams"])
    p.add_argument("--secret", help="whsec_… (or whsk_… with --signature v1a); default: generated")
    p.add_argument("--signature", choices=["v1", "v1a"], help="v1: HMAC (default); v1a: Ed25519")
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    p.add_argument("--description")
    s.add_parser("ls", parents=[common, page], help="list subscriptions")
    for action, text in (
        ("show", "one subscription"),
        ("rm", "unsubscribe"),
        ("test", "send a ping now"),
        ("rotate", "new secret (the old one signs too for a grace period)"),
        ("enable", "enable; kept events are delivered"),
        ("disable", "disable; events are kept"),
    ):
        s.add_parser(action, parents=[common], help=text).add_argument("id")

    src = group("source", "sources defined at run time (and the config file's, listed)")
    p = src.add_parser("add", parents=[common], help="define a source")
    p.add_argument("id", metavar="NAME")
    p.add_argument("provider", choices=["fullstory", "talkdesk", "generic"])
    p.add_argument("--set", action="append", default=[], dest="sets",
                   help="KEY=VALUE of a [sources.NAME] table (JSON values: 2, true)")  # fmt: skip
    p.add_argument("--from-file", help="a JSON object of more keys (secrets best here)")
    src.add_parser("ls", parents=[common], help="every source")
    for action, text in (
        ("show", "one source (secrets as **********)"),
        ("rm", "delete a defined source: polled no more, its events kept"),
        ("check", "one authenticated request: do its credentials work? (exit 1: no)"),
    ):
        src.add_parser(action, parents=[common], help=text).add_argument("id", metavar="NAME")

    e = group("events", "the event log")
    p = e.add_parser("ls", parents=[common, page], help="list events")
    p.add_argument("--watch-id")
    p.add_argument("--type", help="a type or pattern: import.completed, import.*, *")
    e.add_parser("show", parents=[common], help="one event").add_argument("id")
    e.add_parser("types", parents=[common], help="the known event types")
    p = e.add_parser("replay", parents=[common], help="deliver again, same webhook-id")
    p.add_argument("id")
    p.add_argument("--subscription", help="only to this subscription")

    d = group("deliveries", "webhook deliveries")
    p = d.add_parser("ls", parents=[common, page], help="list deliveries")
    p.add_argument("--status", choices=["pending", "failed", "succeeded", "dead", "superseded"])
    p.add_argument("--subscription")
    d.add_parser("show", parents=[common], help="one delivery").add_argument("id")
    d.add_parser("retry", parents=[common], help="requeue a failed or dead one").add_argument("id")

    sub.add_parser("status", parents=[common], help="watches, sources and queues")
    p = sub.add_parser(
        "wait",
        parents=[common],
        help="block until a watch's job ends; print its event",
        description="Exit 0 completed, 3 completed_with_errors, 4 failed or canceled, "
        "5 not_found or expired, 6 on --timeout (1: an error).",
    )
    p.add_argument("id", help="a watch id, or SOURCE/JOB_ID")
    p.add_argument("--kind", help="with SOURCE/JOB_ID: that kind only")
    p.add_argument("--timeout", type=float, help="give up after this many seconds (exit 6)")

    v = sub.add_parser("verify", help="check a received webhook's signature")
    v.add_argument(
        "--secret",
        help="whsec_…, or the whpk_… public key for v1a (default: env BRIDGE_WEBHOOK_SECRET)",
    )
    v.add_argument("--body", required=True, help="file with the exact request body")
    v.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    v.add_argument("--headers", help="file of headers: JSON object or 'Name: value' lines")
    v.add_argument("--ignore-age", action="store_true", help="accept any webhook-timestamp")


ADMIN_COMMANDS = {"watch", "sub", "source", "events", "deliveries", "status", "verify", "wait"}


def run_admin(args: argparse.Namespace) -> int:
    try:
        if args.command == "verify":
            return _verify(args)
        token = args.token or os.environ.get("BRIDGE_API_TOKEN")
        client = ApiClient(args.api, token)
        handler = HANDLERS[(args.command, getattr(args, "action", None))]
        return handler(client, args) or 0
    except CommandError as exc:
        print(f"error: {out.printable(str(exc))}", file=sys.stderr)
        return 1


# ----------------------------------------------------------------- handlers
Handler = Callable[[ApiClient, argparse.Namespace], int | None]
# `wait` and `watch add --wait`: the exit code per outcome (DESIGN, CLI)
WAIT_EXIT = {
    "completed": 0,
    "completed_with_errors": 3,
    "failed": 4,
    "canceled": 4,
    "not_found": 5,
    "expired": 5,
}
WAIT_TIMED_OUT = 6
# What one GET ?wait= asks: well under the 60 s after which common proxies give up
LONG_POLL_S = 25.0
RETRY_MAX_S = 5.0  # the longest pause before asking again after the bridge was unavailable
WATCH_COLUMNS = ("id", "source", "kind", "job_id", "state", "status", "counts", "polls")
SUB_COLUMNS = ("id", "url", "event_types", "format", "enabled", "description")
EVENT_COLUMNS = ("id", "type", "timestamp", "data.source", "data.job_id", "data.outcome")
DELIVERY_COLUMNS = ("id", "status", "event_id", "subscription_id", "tries", "next_attempt_at")


def _show(args: argparse.Namespace, data: Any) -> None:
    if args.json:
        out.print_json(data)
    elif isinstance(data, dict):
        out.record(data)


def _list(args: argparse.Namespace, data: dict[str, Any], columns: tuple[str, ...]) -> None:
    if args.json:
        out.print_json(data)
        return
    out.table(data["items"], columns)
    if data.get("next_cursor"):
        print("(more: --all for every page)")


def meta_options(given: list[str]) -> dict[str, str]:
    """--meta KEY=VALUE options."""
    pairs = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--meta: expected KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _watch_add(c: ApiClient, a: argparse.Namespace) -> int | None:
    if a.timeout is not None and not a.wait:
        raise CommandError("--timeout goes with --wait")
    body = {"source": a.source, "job_id": a.job_id, **({"kind": a.kind} if a.kind else {})}
    if a.meta:
        body["metadata"] = meta_options(a.meta)
    watch = c.call("POST", "/v1/watches", body)
    if a.wait:  # the event is what a pipeline step wants to see, not the watch
        return wait_for(c, watch["id"], a.timeout, a.json)
    _show(a, watch)
    if not a.json and c.last_status == 200:
        print(f"\n(already watched: {watch['id']} since {watch.get('created_at')})")
    return None


def _wait(c: ApiClient, a: argparse.Namespace) -> int:
    found = _by_job(c, a.id, a.kind)
    if found is None:
        return wait_for(c, a.id, a.timeout, a.json)
    if len(found) > 1:
        raise CommandError(f"{a.id} has a watch per kind: name one with --kind")
    return wait_for(c, found[0]["id"], a.timeout, a.json)


def _by_job(c: ApiClient, given: str, kind: str | None) -> list[dict[str, Any]] | None:
    """The watches of SOURCE/JOB_ID (job ids hold no slash); None for a watch id."""
    source, slash, job_id = given.partition("/")
    if not slash:
        return None
    if not source or not job_id:
        raise CommandError(f"expected SOURCE/JOB_ID, got {given!r}")
    query = {"source": source, "job_id": job_id, "kind": kind}
    found: list[dict[str, Any]] = c.call("GET", "/v1/watches", query=query)["items"]
    if not found:
        raise CommandError(f"no watch for job {job_id!r} of source {source!r}")
    return found


def wait_for(c: ApiClient, watch_id: str, timeout_s: float | None, as_json: bool) -> int:
    """Block on the watch's long poll until its job ends; print its event; the exit code
    of its outcome (WAIT_EXIT), WAIT_TIMED_OUT past timeout_s."""
    if timeout_s is not None and not 0 <= timeout_s < float("inf"):
        raise CommandError("--timeout must be a number of seconds, 0 or more")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    path = f"/v1/watches/{_quote(watch_id)}"
    pause = 0.5
    while True:
        left = LONG_POLL_S if deadline is None else min(LONG_POLL_S, deadline - time.monotonic())
        wait = max(0.0, left)
        try:
            watch = c.call("GET", path, query={"wait": f"{wait:.1f}"}, timeout_s=wait + TIMEOUT_S)
        except Unavailable as exc:  # a restart, a failover, a busy bridge: ask again
            if deadline is not None and time.monotonic() + pause >= deadline:
                print(f"timed out: {exc}", file=sys.stderr)
                return WAIT_TIMED_OUT
            time.sleep(pause)
            pause = min(RETRY_MAX_S, pause * 2)
            continue
        pause = 0.5
        if watch["state"] != "watching":
            break
        if deadline is not None and time.monotonic() >= deadline:
            print(f"timed out: watch {watch_id} is still watching", file=sys.stderr)
            return WAIT_TIMED_OUT
    outcome = watch.get("outcome") or watch["state"]
    found = c.call("GET", "/v1/events", query={"watch_id": watch_id, "limit": 50})["items"]
    event = next((e for e in found if e["type"] == f"import.{outcome}"), None)
    shown = event if event is not None else watch  # the event expired: the watch says it
    if as_json:
        out.print_json(shown)
    else:
        out.record(shown)
    return WAIT_EXIT.get(outcome, 4)


def _watch_ls(c: ApiClient, a: argparse.Namespace) -> None:
    if a.job_id is not None and not (a.job_id and a.source):
        raise CommandError("--job-id needs a job id and --source")
    query = {"state": a.state, "source": a.source, "kind": a.kind, "job_id": a.job_id}
    _list(a, c.pages("/v1/watches", {**query, "limit": a.limit}, a.all), WATCH_COLUMNS)


def _watch_show(c: ApiClient, a: argparse.Namespace) -> None:
    """By watch id, or SOURCE/JOB_ID (job ids hold no slash): people know their jobs."""
    found = _by_job(c, a.id, a.kind)
    if found is None:
        _show(a, c.call("GET", f"/v1/watches/{_quote(a.id)}"))
        return
    for i, watch in enumerate(found):
        if i and not a.json:
            print()
        _show(a, watch)


def header_options(given: list[str]) -> dict[str, str]:
    """--header 'Name: value' options (one syntax everywhere, as in HTTP)."""
    headers = {}
    for h in given:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise CommandError("--header: expected 'Name: value' (as in HTTP)")
        headers[name.strip()] = value.strip()
    return headers


def _sub_add(c: ApiClient, a: argparse.Namespace) -> None:
    headers = header_options(a.header)
    fields = {
        "url": a.url,
        "event_types": a.event_types,
        "sources": a.sources,
        "format": a.format,
        "secret": a.secret,
        "signature": a.signature,
        "headers": headers or None,
        "description": a.description,
        "metadata": meta_options(a.meta) or None,
    }
    created = c.call("POST", "/v1/subscriptions", {k: v for k, v in fields.items() if v})
    _show(a, created)
    if a.json:
        return
    if created.get("signature") == "v1a":  # the private key signs here; receivers need the public
        keys = ", ".join(created.get("public_keys") or [])
        print(f"\nReceivers verify with the public key: {keys} (listed in every view).")
    else:
        print("\nKeep the secret: it is shown only now (and at each rotation).")


def _sub_show(c: ApiClient, a: argparse.Namespace) -> None:
    sub = c.call("GET", f"/v1/subscriptions/{_quote(a.id)}")
    _show(a, sub)
    if not a.json and isinstance(sub, dict) and sub.get("static"):
        print(
            "\nFrom the config file: it signs with the `secret` given there, or, with none "
            "given, with one generated at start that is never shown; "
            f"`import-bridge sub rotate {a.id}` shows a new one."
        )


def _deleted(what: str) -> Handler:
    def handler(c: ApiClient, a: argparse.Namespace) -> None:
        c.call("DELETE", f"/v1/{what}/{_quote(a.id)}")
        _show(a, {"id": a.id, "deleted": True}) if a.json else print(f"deleted {a.id}")

    return handler


def _get(path: str) -> Handler:
    return lambda c, a: _show(a, c.call("GET", path.format(id=_quote(a.id))))


def _post(path: str, body: Any = None) -> Handler:
    return lambda c, a: _show(a, c.call("POST", path.format(id=_quote(a.id)), body))


def _enabled(on: bool) -> Handler:
    return lambda c, a: _show(
        a, c.call("PATCH", f"/v1/subscriptions/{_quote(a.id)}", {"enabled": on})
    )


def _events_ls(c: ApiClient, a: argparse.Namespace) -> None:
    query = {"watch_id": a.watch_id, "type": a.type, "limit": a.limit}
    _list(a, c.pages("/v1/events", query, a.all), EVENT_COLUMNS)


def _events_replay(c: ApiClient, a: argparse.Namespace) -> None:
    query = {"subscription_id": a.subscription}
    _show(a, c.call("POST", f"/v1/events/{_quote(a.id)}/replay", query=query))


def _deliveries_ls(c: ApiClient, a: argparse.Namespace) -> None:
    query = {"status": a.status, "subscription_id": a.subscription, "limit": a.limit}
    page = c.pages("/v1/deliveries", query, a.all)
    if not a.json:  # the attempt count, for the table
        page["items"] = [{**d, "tries": len(d["attempts"])} for d in page["items"]]
    _list(a, page, DELIVERY_COLUMNS)


def _source_add(c: ApiClient, a: argparse.Namespace) -> None:
    body: dict[str, Any] = {}
    if a.from_file:
        try:
            loaded = json.loads(Path(a.from_file).read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {a.from_file}: {exc.strerror}") from None
        except ValueError:
            raise CommandError(f"{a.from_file} is not JSON") from None
        if not isinstance(loaded, dict):
            raise CommandError(f"{a.from_file}: a JSON object of a source's keys")
        body.update(loaded)
    for item in a.sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            body[key] = json.loads(value)
        except ValueError:
            body[key] = value  # a plain string
    body.update({"name": a.id, "provider": a.provider})
    _show(a, c.call("POST", "/v1/sources", body))


def _source_check(c: ApiClient, a: argparse.Namespace) -> int:
    answer = c.call("POST", f"/v1/sources/{_quote(a.id)}/check")
    _show(a, answer)
    return 0 if answer.get("ok") else 1


def _status(c: ApiClient, a: argparse.Namespace) -> None:
    data = c.call("GET", "/v1/status")
    if a.json:
        out.print_json(data)
        return
    print("watches")
    out.record(data["watches"], indent="  ")
    print("sources")
    rows = [{"source": name, **info} for name, info in data["sources"].items()]
    columns = ("source", "healthy", "budget_used", "waiting_for_budget", "paused_for_s", "reason")
    out.table(rows, (*columns, "since"))
    if "queues" in data:
        print("subscriptions")
        out.record(data["subscriptions"], indent="  ")
        print("queues")
        out.record(data["queues"], indent="  ")


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("watch", "add"): _watch_add,
    ("watch", "ls"): _watch_ls,
    ("watch", "show"): _watch_show,
    ("watch", "rm"): _deleted("watches"),
    ("sub", "add"): _sub_add,
    ("sub", "ls"): lambda c, a: _list(
        a, c.pages("/v1/subscriptions", {"limit": a.limit}, a.all), SUB_COLUMNS
    ),
    ("sub", "show"): _sub_show,
    ("sub", "rm"): _deleted("subscriptions"),
    ("sub", "test"): _post("/v1/subscriptions/{id}/test"),
    ("sub", "rotate"): _post("/v1/subscriptions/{id}/rotate-secret"),
    ("sub", "enable"): _enabled(True),
    ("sub", "disable"): _enabled(False),
    ("source", "add"): _source_add,
    ("source", "ls"): lambda c, a: _list(
        a, c.call("GET", "/v1/sources"), ("name", "provider", "static", "rate_limit", "base_url")
    ),
    ("source", "show"): _get("/v1/sources/{id}"),
    ("source", "rm"): _deleted("sources"),
    ("source", "check"): _source_check,
    ("events", "ls"): _events_ls,
    ("events", "show"): _get("/v1/events/{id}"),
    ("events", "types"): lambda c, a: _list(
        a, c.call("GET", "/v1/event-types"), ("type", "description")
    ),
    ("events", "replay"): _events_replay,
    ("deliveries", "ls"): _deliveries_ls,
    ("deliveries", "show"): _get("/v1/deliveries/{id}"),
    ("deliveries", "retry"): _post("/v1/deliveries/{id}/retry"),
    ("status", None): _status,
    ("wait", None): _wait,
}


# ------------------------------------------------------------------ verify
def _verify(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get("BRIDGE_WEBHOOK_SECRET")
    if not secret:
        raise CommandError("give the subscription's secret: --secret or BRIDGE_WEBHOOK_SECRET")
    try:
        body = Path(args.body).read_bytes()
        headers = parse_headers(Path(args.headers).read_text() if args.headers else "")
    except OSError as exc:
        raise CommandError(f"cannot read {exc.filename}: {exc.strerror}") from None
    headers.update({k.lower(): v for k, v in header_options(args.header).items()})
    tolerance = None if args.ignore_age else 300.0
    try:
        msg_id = verify(secret, headers, body, now=time.time(), tolerance_s=tolerance)
    except (InvalidSignature, InvalidSecret) as exc:
        print(f"invalid: {out.printable(str(exc))}")
        return 1
    print(f"valid: {out.printable(msg_id)} is signed with this secret")
    return 0


def parse_headers(text: str) -> dict[str, str]:
    """A JSON object, or 'Name: value' lines (curl -D, a proxy's log); other lines skipped."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise CommandError("the headers file is not valid JSON") from None
        return {str(k).lower(): str(v) for k, v in data.items()}
    headers = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            headers[name.strip().lower()] = value.strip()
    return headers
