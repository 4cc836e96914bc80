"""The shape of the code that docs/architecture.md promises, checked so it stays true.

The core (`ledger/`) does no I/O but through its store backend, nothing imports in a circle, plyvel
is imported by one file, and no source file grows past what a reader takes in at one sitting.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "node")
MAX_LINES = 700
STORE_BACKEND = Path("ledger/store/leveldb.py")

#: Calls and imports that mean I/O, a clock, sleeping or processes: the shell's business.
FORBIDDEN_IN_CORE_IMPORTS = {
    "socket",
    "multiprocessing",
    "concurrent.futures",
    "subprocess",
    "asyncio",
    "plyvel",
    "aiohttp",
    "urllib.request",
}
FORBIDDEN_IN_CORE_CALLS = {
    "open",
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.monotonic_ns",
    "time.perf_counter",
    "time.sleep",
    "datetime.now",
    "datetime.utcnow",
    "date.today",
    "os.open",
}


def sources(*roots: str) -> Iterator[Path]:
    for root in roots:
        yield from sorted((REPO / root).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """Every module the file names in an import, wherever it stands (`TYPE_CHECKING` blocks and
    function bodies too: an import moved there to dodge a circle is still a circle in the design)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def all_imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every import in the file, wherever it stands (function bodies included)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module or "", node.lineno


def dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return ""


def test_no_source_file_is_longer_than_a_sitting() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in sources(*PACKAGES, "scripts")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"files over {MAX_LINES} lines: {long}"


def test_plyvel_is_imported_by_the_store_backend_only() -> None:
    importers = {
        str(path.relative_to(REPO))
        for path in sources(*PACKAGES, "scripts", "tests")
        for name, _ in all_imports(path)
        if name == "plyvel" or name.startswith("plyvel.")
    }
    assert importers == {str(STORE_BACKEND)}


def test_the_core_does_no_io_of_its_own() -> None:
    found = []
    for path in sources("ledger"):
        if path.relative_to(REPO) == STORE_BACKEND:
            continue
        for name, line in all_imports(path):
            if name in FORBIDDEN_IN_CORE_IMPORTS or name.split(".")[0] in {"node", "scripts"}:
                found.append(f"{path.relative_to(REPO)}:{line} imports {name}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and dotted(node.func) in FORBIDDEN_IN_CORE_CALLS:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} calls {dotted(node.func)}")
    assert found == []


def test_the_shell_never_imports_scripts_or_tests() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sources("node")
        for name, line in all_imports(path)
        if name.split(".")[0] in {"scripts", "tests"}
    ]
    assert found == []


def test_no_import_circle() -> None:
    modules = {module_name(path): path for path in sources(*PACKAGES)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for target, _ in imports_of(path):
            # `from pkg import name` names either a module or an attribute of pkg.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # A module importing from its own package's __init__ is the package's business.
            if target and target != name and not name.startswith(target + "."):
                targets.add(target)
        graph[name] = targets

    circles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_says_what_it_owns(package: str) -> None:
    missing = [
        str(path.relative_to(REPO))
        for path in sources(package)
        if path.read_text().strip() and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []
