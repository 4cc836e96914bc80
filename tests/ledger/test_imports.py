"""The core's import graph: no circle, and the register below the rules that read it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """ledger module -> the ledger modules it imports (a package's __init__ included: importing
    ledger.a.b runs ledger.a first)."""
    paths = {_module(p): p for p in ROOT.glob("ledger/**/*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                pieces = target.split(".")
                for i in range(2, len(pieces) + 1):
                    dep = ".".join(pieces[:i])
                    # A package's own modules import each other; its __init__ re-exports them.
                    if dep in paths and dep != name and not name.startswith(dep + "."):
                        deps.add(dep)
        graph[name] = deps
    return graph


def test_the_core_has_no_import_circle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError(" -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_register_is_below_the_state_machine_and_governance() -> None:
    graph = _graph()
    assert "ledger.registry" in graph["ledger.state"]
    assert "ledger.registry" in graph["ledger.governance.proposals"]
    assert not {"ledger.state", "ledger.governance"} & graph["ledger.registry"]
    assert not any(
        dep == "ledger.state"
        for m, deps in graph.items()
        if m.startswith("ledger.governance")
        for dep in deps
    )
