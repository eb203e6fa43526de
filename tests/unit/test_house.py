"""Guard rails for the package's shape: imports run one way, and redis-py enters
through the store alone. Read from the source (ast), nothing is imported."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bridge"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """Every module an import names (at any depth of the file), with its line; for
    `from package import name`, the module package.name too."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # `from bridge.api import feed`: the module feed
                yield f"{node.module}.{alias.name}", node.lineno


def graph(package: Path) -> dict[str, set[str]]:
    """Module → the modules it imports. `from package import submodule` is an edge to
    the submodule alone: the package's __init__ only hands names on."""
    modules = {module_name(p): p for p in package.rglob("*.py")}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        named = [target for target, _ in imports_of(path)]
        for target in named:
            if target not in modules or target == name:
                continue
            submodules = [t for t in named if t.startswith(target + ".") and t in modules]
            if modules[target].name == "__init__.py" and submodules:
                continue  # only reached for a submodule's sake
            edges[name].add(target)
    return edges


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of module names, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_imports_in_the_package_run_one_way() -> None:
    """No import cycle in bridge/, counting imports inside functions too: such an
    import may defer a heavy module, never dodge a cycle."""
    assert cycle_in(graph(PACKAGE)) is None


def test_redis_py_enters_through_the_store_alone() -> None:
    """Only modules under bridge/store/ import redis-py (or hiredis)."""
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
        for path in PACKAGE.rglob("*.py")
        if "store" not in path.relative_to(PACKAGE).parts[:1]
        for target, line in imports_of(path)
        if target.split(".")[0] in ("redis", "hiredis")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"a.py": "import b\n", "b.py": "from c import x\n", "c.py": "def f():\n    import a\n"},
         ["a", "b", "c", "a"]),
        ({"a.py": "import b\n", "b.py": "import c\n", "c.py": "x = 1\n"}, None),
    ],
)  # fmt: skip
def test_the_rails_see_what_they_guard(
    tmp_path: Path, source: dict[str, str], expected: list[str] | None
) -> None:
    """The cycle finder sees a cycle closed by an import inside a function, and none
    where there is none (so the rails above can fail)."""
    for name, text in source.items():
        (tmp_path / name).write_text(text)
    edges = {
        p.stem: {t for t, _ in imports_of(p) if (tmp_path / f"{t}.py").exists()}
        for p in tmp_path.glob("*.py")
    }
    assert cycle_in(edges) == expected


def test_only_the_store_touches_the_redis_client() -> None:
    """Outside bridge/store/, nothing reaches for a store's redis-py client
    (`store.client`): each concern has its store, and the store maps the errors."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "client":
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []


ENGINES = ("poll", "delivery", "api", "app.py")
PROVIDER_WORDS = ("fullstory", "talkdesk", "generic")


def provider_names_in(path: Path, label: str = "") -> list[str]:
    """Identifiers and imported modules of a file that name a provider (its config,
    its class or its module); comments, docstrings and strings are not names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or "", *(a.name for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found += [
            f"{label or path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)} {name}"
            for name in names
            if any(word in name.lower() for word in PROVIDER_WORDS)
        ]
    return found


def test_the_engines_know_no_provider() -> None:
    """Polling, delivery, the API and the composition root name no provider: a
    provider is its own module plus a line in providers/registry.py."""
    paths = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] in ENGINES]
    assert paths, "the engines were found"
    assert [hit for path in paths for hit in provider_names_in(path)] == []


def test_the_provider_rail_sees_a_provider_name(tmp_path: Path) -> None:
    """An import of a provider's class, or a call of it, is a hit; the word in a comment
    or a string is not."""
    sample = tmp_path / "engine.py"
    sample.write_text(
        "# FullStory's errors page\nfrom bridge.providers import base\n"
        "x = 'talkdesk'\nok = isinstance(p, base.TalkdeskProvider)\n"
    )
    assert provider_names_in(sample, "engine.py") == ["engine.py:4 TalkdeskProvider"]


def test_every_event_is_built_in_events_py() -> None:
    """An Event is made in bridge/events.py (and read back in the store's codec): its
    types and id schemes are in one place."""
    allowed = {PACKAGE / "events.py", PACKAGE / "store" / "codec.py"}
    makers = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        if path not in allowed
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Event"
    ]
    assert makers == []


def test_no_test_module_imports_another() -> None:
    """Shared builders live in helpers modules and fixtures in conftest.py: a test
    module never imports another's."""
    tests = PACKAGE.parent / "tests"
    offenders = [
        f"{path.relative_to(tests.parent)}:{line} {target}"
        for path in tests.rglob("test_*.py")
        for target, line in imports_of(path)
        if target.startswith("tests.") and target.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert offenders == []


def test_every_lua_script_is_headed_by_its_interface() -> None:
    """Each script in store/lua/ opens with comment lines naming its KEYS, its ARGV and
    what it returns; every script is loaded, and nothing else is."""
    from bridge.store import scripts

    folder = PACKAGE / "store" / "lua"
    names = {p.stem for p in folder.glob("*.lua")} - set(scripts.LIBRARIES)
    assert names == set(scripts.SOURCES)
    for name in names:
        header = []
        for line in (folder / f"{name}.lua").read_text().splitlines():
            if not line.startswith("--"):
                break
            header.append(line.lower())
        text = " ".join(header)
        assert all(word in text for word in ("keys", "argv", "return")), name


def test_every_store_coroutine_speaks_the_bridges_errors() -> None:
    """Every public coroutine of every class in bridge/store/ is wrapped by the one
    edge that turns redis-py's exceptions into the bridge's (store/redis_errors.py)."""
    import importlib
    import inspect

    from redis.asyncio.cluster import RedisCluster

    unwrapped = []
    for path in (PACKAGE / "store").glob("*.py"):
        module = importlib.import_module(module_name(path))
        for cls_name, cls in vars(module).items():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            if cls_name == "Coalescer":  # a batching tool, run inside wrapped methods only
                continue
            if issubclass(cls, RedisCluster):  # the client itself, used by the stores
                continue
            for name, member in vars(cls).items():
                if name.startswith("_") or not inspect.iscoroutinefunction(member):
                    continue
                if not hasattr(member, "__wrapped__"):
                    unwrapped.append(f"{module.__name__}.{cls_name}.{name}")
    assert unwrapped == []


def console_reaches_out(package: Path) -> list[str]:
    """Where the console could make an HTTP request (to itself or anywhere): an aiohttp
    client, or aiohttp imported for more than its server side (aiohttp.web)."""
    found = []
    for path in sorted((package / "ui").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute) and "ClientSession" in ast.unparse(node):
                found.append(f"{path.name}:{node.lineno} uses an HTTP client")
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] == "aiohttp" and not name.startswith("aiohttp.web"):
                    found.append(f"{path.name}:{node.lineno} imports {name}")
    return sorted(set(found))


def test_the_console_calls_the_operations_not_itself() -> None:
    """The console is a sub-application over the API's context: it calls the same
    operations the HTTP handlers serve, never its own API over HTTP."""
    assert console_reaches_out(PACKAGE) == []


def test_the_console_rail_sees_an_http_client(tmp_path: Path) -> None:
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "console.py").write_text(
        "import aiohttp\nasync def f():\n    async with aiohttp.ClientSession() as s:\n"
        "        return s\n"
    )
    assert console_reaches_out(tmp_path) == [
        "console.py:1 imports aiohttp",
        "console.py:3 uses an HTTP client",
    ]
