"""The core's import graph: no circle, and the register below the rules that read it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(module imported, only for type checking) of every import of a module."""
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    out: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(name, id(node) in typing_only) for name in names]
    return out


def _graph(*, typing: bool, unit: int | None = None) -> dict[str, set[str]]:
    """ledger module -> the ledger modules it imports (importing ledger.a.b runs ledger.a first).
    `typing`: count imports made only for type checking too. `unit`: join every module into its
    ancestor of that many dotted parts (2: ledger.governance.* is one node, ledger.governance)."""
    paths = {_module(p): p for p in ROOT.glob("ledger/**/*.py")}

    def cut(name: str) -> str:
        return ".".join(name.split(".")[:unit]) if unit else name

    graph: dict[str, set[str]] = {cut(name): set() for name in paths}
    for name, path in paths.items():
        for target, typing_only in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if typing_only and not typing:
                continue
            pieces = target.split(".")
            for i in range(2, len(pieces) + 1):
                dep = ".".join(pieces[:i])
                # A package's own modules import each other; its __init__ re-exports them.
                inside = dep == name or name.startswith(dep + ".") or cut(dep) == cut(name)
                if dep in paths and not inside:
                    graph[cut(name)].add(cut(dep))
    return graph


def _circle(graph: dict[str, set[str]]) -> str | None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> str | None:
        if name in path:
            return " -> ".join([*path[path.index(name) :], name])
        if name in done:
            return None
        for dep in sorted(graph[name]):
            found = visit(dep, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name, [])
        if found:
            return found
    return None


def test_the_core_has_no_import_circle() -> None:
    # Not at run time, module by module; and not even for type checking between the core's
    # subsystems (a module or package of ledger/: governance <-> state was one, type-only).
    assert _circle(_graph(typing=False)) is None
    assert _circle(_graph(typing=True, unit=2)) is None


def test_the_register_is_below_the_state_machine_and_governance() -> None:
    graph = _graph(typing=True)
    assert "ledger.registry" in graph["ledger.state"]
    assert "ledger.registry" in graph["ledger.governance.proposals"]
    assert not {"ledger.state", "ledger.governance"} & graph["ledger.registry"]
    governance = {m for m in graph if m.startswith("ledger.governance")}
    assert not any("ledger.state" in graph[m] for m in governance)
