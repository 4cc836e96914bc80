"""The shape of the code that docs/architecture.md promises, checked so it stays true.

No source file grows past what a reader takes in at one sitting, the shell never reaches into
scripts or tests, and every module says what it owns. The core's own promises are tested beside
it: import circles in tests/ledger/test_imports.py, no I/O in tests/ledger/test_pure_core.py,
plyvel in one file in tests/ledger/store/test_layout.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "node")
MAX_LINES = 700


def sources(*roots: str) -> Iterator[Path]:
    for root in roots:
        yield from sorted((REPO / root).rglob("*.py"))


def all_imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every import in the file, wherever it stands (function bodies included)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module or "", node.lineno


def test_no_source_file_is_longer_than_a_sitting() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in sources(*PACKAGES, "scripts")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"files over {MAX_LINES} lines: {long}"


def test_the_shell_never_imports_scripts_or_tests() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sources("node")
        for name, line in all_imports(path)
        if name.split(".")[0] in {"scripts", "tests"}
    ]
    assert found == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_says_what_it_owns(package: str) -> None:
    missing = [
        str(path.relative_to(REPO))
        for path in sources(package)
        if path.read_text().strip() and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []
