"""Mutation testing of the pure policies and the SSRF guard: do the tests bite?

Each mutant changes one thing in one module (a comparison, an operator, a constant,
`and`/`or`, min/max, a dropped element of a literal list or tuple, a `raise` made a
`pass`, a `not` dropped, a return made `return None`, an early return at the top of a
function), in a copy of the checkout, and runs the tests that import the module. A
mutant the tests pass with survived. Survivors known to change nothing a caller can
see are listed in bench/README.md ("Mutation testing"), by the id printed here.

    python bench/mutate.py                     # every module, two workers
    python bench/mutate.py bridge/poll/backoff.py --jobs 1
    python bench/mutate.py --list              # the mutants, not run

Exit status: 0 when at least --min-score of the mutants (equivalent ones aside) are killed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# each module with its own unit tests (the tests written for it, not the whole suite)
MODULES = {
    "bridge/poll/backoff.py": ["test_poll_policy_edges.py", "test_policies.py"],
    "bridge/poll/ratelimit.py": [
        "test_poll_policy_edges.py",
        "test_policies.py",
        "test_limiter_twins.py",
    ],
    "bridge/poll/priority.py": ["test_poll_policy_edges.py"],
    "bridge/poll/duration_policy.py": ["test_duration_policy_edges.py", "test_durations.py"],
    "bridge/delivery/policy.py": ["test_delivery_policy_edges.py", "test_delivery_policies.py"],
    "bridge/delivery/signing.py": ["test_delivery_policy_edges.py", "test_delivery_policies.py"],
    "bridge/delivery/targets.py": [
        "test_target_guard_edges.py",
        "test_ssrf_guard.py",
        "test_delivery_policies.py",
        "test_outgoing_http.py",
    ],
}
SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
GENERICS = {"tuple", "list", "dict", "set", "frozenset", "type", "Callable", "Mapping"}
CALL_SWAPS = {"min": "max", "max": "min", "any": "all", "all": "any"}


@dataclass(frozen=True)
class Mutant:
    module: str
    line: int
    col: int
    what: str
    source: str  # the whole mutated module

    @property
    def id(self) -> str:
        return f"{Path(self.module).stem}:{self.line}:{self.col}:{self.what}"


def _skipped(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Annotations, type aliases (tuple[int, ...]) and log calls change nothing."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if (
            isinstance(parent, ast.Subscript)
            and child is parent.slice
            and isinstance(parent.value, ast.Name)
            and parent.value.id in GENERICS
        ):
            return True
        if isinstance(parent, (ast.AnnAssign, ast.arg)) and child is parent.annotation:
            return True
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and child is parent.returns:
            return True
        if isinstance(parent, ast.Call):
            f = parent.func
            if isinstance(f, ast.Attribute) and f.attr in ("debug", "info", "warning", "error"):
                return True
        child, parent = parent, parents.get(parent)
    return False


def _is_docstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    if not isinstance(parent, ast.Expr):
        return False
    holder = parents.get(parent)
    body = getattr(holder, "body", None)
    return isinstance(body, list) and body[:1] == [parent]


def mutants_of(module: str) -> Iterator[Mutant]:
    """Each mutant once, with an id that stays while the module's text does (a second
    change of the same kind at the same place gets #2)."""
    seen: dict[str, int] = {}
    for m in _all_mutants(module):
        seen[m.id] = seen.get(m.id, 0) + 1
        yield (
            m
            if seen[m.id] == 1
            else Mutant(m.module, m.line, m.col, f"{m.what}#{seen[m.id]}", m.source)
        )


def _all_mutants(module: str) -> Iterator[Mutant]:
    text = (ROOT / module).read_text()
    tree = ast.parse(text)
    nodes = list(ast.walk(tree))
    for index, node in enumerate(nodes):
        for what, change in _changes(node):
            mutated = copy.deepcopy(tree)
            target = list(ast.walk(mutated))[index]
            parents = {c: p for p in ast.walk(mutated) for c in ast.iter_child_nodes(p)}
            if _skipped(target, parents) or _is_docstring(target, parents):
                continue
            if not change(target, parents):
                continue
            ast.fix_missing_locations(mutated)
            line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
            yield Mutant(module, line, col, what, ast.unparse(mutated))


def _changes(node: ast.AST) -> Iterator[tuple[str, object]]:
    def set_op(attr: str, i: int | None, new: type):  # type: ignore[no-untyped-def]
        def apply(target, parents):  # type: ignore[no-untyped-def]
            if i is None:
                setattr(target, attr, new())
            else:
                getattr(target, attr)[i] = new()
            return True

        return apply

    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in SWAPS:
                new = SWAPS[type(op)]
                yield f"{type(op).__name__}->{new.__name__}", set_op("ops", i, new)
    if isinstance(node, (ast.BoolOp, ast.BinOp)) and type(node.op) in SWAPS:
        new = SWAPS[type(node.op)]
        yield f"{type(node.op).__name__}->{new.__name__}", set_op("op", None, new)
    if isinstance(node, ast.AugAssign) and type(node.op) in SWAPS:
        new = SWAPS[type(node.op)]
        yield f"{type(node.op).__name__}=->{new.__name__}=", set_op("op", None, new)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):

        def drop_not(target, parents):  # type: ignore[no-untyped-def]
            return _replace(target, parents, target.operand)

        yield "not-dropped", drop_not
    if isinstance(node, ast.Constant) and not isinstance(node.value, str | bytes):
        value = node.value
        if isinstance(value, bool):
            yield f"{value}->{not value}", _set_value(not value)
        elif isinstance(value, int | float):
            yield f"{value}->{value + 1}", _set_value(value + 1)
            if value != 0:
                yield f"{value}->0", _set_value(0)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in CALL_SWAPS
    ):
        new_name = CALL_SWAPS[node.func.id]

        def swap_call(target, parents):  # type: ignore[no-untyped-def]
            target.func.id = new_name
            return True

        yield f"{node.func.id}->{new_name}", swap_call
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
        for i in range(len(node.elts)):

            def drop(target, parents, i=i):  # type: ignore[no-untyped-def]
                if isinstance(parents.get(target), (ast.Assign, ast.For, ast.comprehension)):
                    if getattr(parents[target], "target", None) is target:
                        return False
                    if target in getattr(parents[target], "targets", []):
                        return False
                del target.elts[i]
                return True

            yield f"drop-element-{i}", drop
    if isinstance(node, ast.Raise):

        def to_pass(target, parents):  # type: ignore[no-untyped-def]
            return _replace(target, parents, ast.Pass())

        yield "raise->pass", to_pass
    if (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):

        def to_none(target, parents):  # type: ignore[no-untyped-def]
            target.value = ast.Constant(None)
            return True

        yield "return->None", to_none
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):

        def early(target, parents):  # type: ignore[no-untyped-def]
            body = target.body
            at = 1 if body and _docstring_stmt(body[0]) else 0
            body.insert(at, ast.Return(value=None))
            return True

        yield "early-return", early


def _docstring_stmt(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _set_value(value: object):  # type: ignore[no-untyped-def]
    def apply(target, parents):  # type: ignore[no-untyped-def]
        target.value = value
        return True

    return apply


def _replace(target: ast.AST, parents: dict[ast.AST, ast.AST], new: ast.AST) -> bool:
    parent = parents.get(target)
    if parent is None:
        return False
    for field, value in ast.iter_fields(parent):
        if value is target:
            setattr(parent, field, new)
            return True
        if isinstance(value, list) and target in value:
            value[value.index(target)] = new
            return True
    return False


def tests_for(module: str) -> list[str]:
    """The module's own unit tests; for another module, those that import it."""
    if module in MODULES:
        return [f"tests/unit/{name}" for name in MODULES[module]]
    dotted = module.removesuffix(".py").replace("/", ".")
    parent, name = dotted.rsplit(".", 1)
    pattern = re.compile(rf"\b{re.escape(dotted)}\b|from {re.escape(parent)} import .*\b{name}\b")
    return [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "tests" / "unit").glob("test_*.py"))
        if pattern.search(p.read_text())
    ]


def equivalent_ids() -> set[str]:
    """Mutant ids that bench/README.md names as equivalent or deliberate."""
    readme = (ROOT / "bench" / "README.md").read_text()
    return set(re.findall(r"`([a-z_]+:\d+:\d+:[^`\s]+)`", readme))


def make_copy() -> Path:
    where = Path(tempfile.mkdtemp(prefix="mutate-"))
    for part in ("bridge", "tests", "config", "deploy", "pyproject.toml"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, where / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, where / part)
    return where


def run(mutant: Mutant, workdir: Path, tests: list[str], timeout_s: float) -> str:
    """'killed', 'survived' or 'timeout' (counted as killed: the tests noticed)."""
    path = workdir / mutant.module
    original = path.read_text()
    path.write_text(mutant.source)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=workdir,
            capture_output=True,
            timeout=timeout_s,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(workdir)},
        )
        return "survived" if proc.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        return "timeout"
    finally:
        path.write_text(original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--min-score", type=float, default=0.90)
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    args = parser.parse_args()
    known = equivalent_ids()
    started = time.monotonic()
    copies = [make_copy() for _ in range(max(1, args.jobs))]
    free: queue.Queue[Path] = queue.Queue()
    for c in copies:
        free.put(c)
    total_killed = total_counted = 0
    all_survivors: list[str] = []
    try:
        for module in args.modules:
            mutants = list(mutants_of(module))
            tests = tests_for(module)
            if args.list:
                for m in mutants:
                    print(m.id)
                continue
            if not tests:
                print(f"{module}: no unit test imports it")
                return 1

            def one(m: Mutant, tests: list[str] = tests) -> tuple[Mutant, str]:
                workdir = free.get()  # a copy of the checkout that no other worker uses now
                try:
                    return m, run(m, workdir, tests, args.timeout)
                finally:
                    free.put(workdir)

            with ThreadPoolExecutor(len(copies)) as pool:
                results = list(pool.map(one, mutants))
            killed = sum(1 for _, r in results if r != "survived")
            survivors = [m.id for m, r in results if r == "survived"]
            explained = [s for s in survivors if s in known]
            counted = len(results) - len(explained)
            total_killed += killed
            total_counted += counted
            score = killed / counted if counted else 1.0
            print(
                f"{module}: {killed}/{counted} killed ({score:.0%}); {len(mutants)} mutants, "
                f"{len(explained)} named equivalent; tests: {len(tests)} files"
            )
            for s in survivors:
                mark = "equivalent" if s in known else "SURVIVED"
                print(f"    {mark:10} {s}")
            all_survivors += [s for s in survivors if s not in known]
    finally:
        for c in copies:
            shutil.rmtree(c, ignore_errors=True)
    if args.list:
        return 0
    score = total_killed / total_counted if total_counted else 1.0
    print(
        f"total: {total_killed}/{total_counted} killed ({score:.1%}), "
        f"{len(all_survivors)} unexplained survivors, {time.monotonic() - started:.0f} s"
    )
    return 0 if score >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
