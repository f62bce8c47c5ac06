#!/usr/bin/env python3
"""Check pytest_sidecar's floors: no import cycle, no upward import, no oversized room.

    python scripts/check_layers.py          # exit 1 and one line per problem, else a map
    python scripts/check_layers.py --quiet  # problems only

Every import of our own modules counts, at module level or inside a function, including
`if TYPE_CHECKING:` ones (a type-only arrow is still an arrow a reader must follow).
A module may import from its own floor or a lower one; the floors are listed below, from
the bottom. Two more rules: the vocabulary imports nothing of ours, and the reference
stack imports nothing of the suite but `atomic` and the contract documents (it keeps its
own copies of the vocabulary, so the oracle shares no constant with what it checks).
Size limits: a module over MAX_MODULE_LINES lines, a function over MAX_FUNCTION_LINES.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "pytest_sidecar"
SOURCE = Path(__file__).resolve().parent.parent / "src"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

# Bottom to top. A module belongs to the floor of its longest listed prefix.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("vocabulary", "atomic", "tls", "errors"),
    ("options",),
    ("contracts", "client", "client_retry", "evidence", "metrics", "manifests", "serial",
     "load", "capacity", "capacity_sources", "stack", "embedded", "rundirs", "chaos",
     "receiver"),
    ("config", "target"),
    # the control plane runs pytest as a subprocess and reads its reports: it sits on
    # the libraries (manifests, contracts, metrics, target) and imports no pytest
    ("controlplane",),
    ("probes", "outcomes", "marks", "state", "traces"),
    ("fixtures", "reporting", "hookspecs"),
    ("plugin", "cli", ""),  # "" is the package's own __init__
)
STACK_MAY_IMPORT = ("stack", "atomic", "contracts")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module of ours, line) for every import in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import x` imports the module x when there is one.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield target, node.lineno


def floor_of(name: str) -> int:
    relative = name.removeprefix(PACKAGE).removeprefix(".")
    best, best_len = len(FLOORS) - 1, -1
    for index, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            matches = relative == prefix or relative.startswith(prefix + ".") or (
                prefix == "" and relative == "")
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def long_functions(path: Path) -> Iterator[tuple[str, int, int]]:
    """(name, line, length) of functions over the limit; nested ones count in their
    parent (a closure is part of the room it sits in)."""
    def walk(node: ast.AST) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    yield child.name, child.lineno, length
            elif isinstance(child, ast.ClassDef):
                yield from walk(child)
    yield from walk(ast.parse(path.read_text(encoding="utf-8")))


def check() -> tuple[list[str], dict[int, list[str]]]:
    files = {module_name(p): p for p in sorted((SOURCE / PACKAGE).rglob("*.py"))}
    known = set(files)
    graph: dict[str, set[str]] = defaultdict(set)
    problems: list[str] = []
    for name, path in files.items():
        where = path.relative_to(SOURCE.parent)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{where}: {lines} lines (limit {MAX_MODULE_LINES})")
        for function, line, length in long_functions(path):
            problems.append(f"{where}:{line}: {function}() is {length} lines "
                            f"(limit {MAX_FUNCTION_LINES})")
        relative = name.removeprefix(PACKAGE + ".")
        for target, line in imports_of(path, name, known):
            if target not in known:
                continue
            if target != name:
                graph[name].add(target)
            target_relative = target.removeprefix(PACKAGE + ".")
            if floor_of(target) > floor_of(name):
                problems.append(f"{where}:{line}: upward import of {target} "
                                f"(floor {floor_of(target)} above {floor_of(name)})")
            if relative.startswith("vocabulary") and not target_relative.startswith(
                    "vocabulary"):
                problems.append(f"{where}:{line}: the vocabulary imports {target}")
            if (relative == "stack" or relative.startswith("stack.")) and not any(
                    target_relative == p or target_relative.startswith(p + ".")
                    for p in STACK_MAY_IMPORT):
                problems.append(f"{where}:{line}: the reference stack imports {target} (it "
                                "keeps its own copies: tests/unit/stack/test_vocabulary.py)")
    for component in cycles(graph):
        problems.append("import cycle: " + " -> ".join(component))
    by_floor: dict[int, list[str]] = defaultdict(list)
    for name in files:
        by_floor[floor_of(name)].append(name.removeprefix(PACKAGE + ".") or "__init__")
    return problems, by_floor


def main(argv: list[str]) -> int:
    problems, by_floor = check()
    for problem in problems:
        print(problem)
    if not problems and "--quiet" not in argv:
        for floor in sorted(by_floor, reverse=True):
            tops = sorted({m.split(".")[0] for m in by_floor[floor]})
            print(f"floor {floor}: {', '.join(tops)}")
        print(f"ok: no import cycle, no upward import; modules <= {MAX_MODULE_LINES} lines, "
              f"functions <= {MAX_FUNCTION_LINES} lines")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
