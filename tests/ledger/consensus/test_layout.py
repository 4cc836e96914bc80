"""The consensus package's layering: what needs a certificate imports only the messages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _consensus_imports(path: Path) -> set[str]:
    """The modules of ledger.consensus that `path` imports (its own package's included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "ledger.consensus" or node.module.startswith("ledger.consensus."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ledger.consensus"))
    return found


@pytest.mark.parametrize(
    "module",
    ["ledger/proofs.py", "ledger/audit.py", "ledger/authoring.py", "ledger/governance/bodies.py"],
)
def test_what_needs_a_certificate_or_evidence_imports_only_the_messages(module: str) -> None:
    assert _consensus_imports(ROOT / module) == {"ledger.consensus.messages"}


def _messages_names() -> set[str]:
    import ledger.consensus.messages as messages

    return {name for name in vars(messages) if not name.startswith("_")}


_IMPORTERS = [
    path
    for folder in ("ledger", "node", "scripts")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if not path.is_relative_to(ROOT / "ledger" / "consensus")
    and not path.is_relative_to(ROOT / "ledger" / "simulation")
]


def test_nothing_imports_the_whole_package_for_what_the_messages_hold() -> None:
    # A module that needs only messages, certificates or evidence names ledger.consensus.messages,
    # so that what depends on the state machine can be told from what does not.
    messages = _messages_names()
    offenders = []
    for path in _IMPORTERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "ledger.consensus"
                and {a.name for a in node.names} <= messages
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# Each part may import only the parts below it: messages at the bottom, the core on top.
ORDER = ["messages", "signer", "votes", "inputs", "actions", "core"]


@pytest.mark.parametrize("part", ORDER)
def test_each_part_of_the_package_imports_only_the_parts_below_it(part: str) -> None:
    below = {f"ledger.consensus.{p}" for p in ORDER[: ORDER.index(part)]}
    imported = _consensus_imports(ROOT / "ledger" / "consensus" / f"{part}.py")
    assert imported <= below, f"{part} imports {sorted(imported - below)}"


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found


SIMULATION_FILES = sorted((ROOT / "ledger" / "simulation").glob("*.py"))


@pytest.mark.parametrize("path", SIMULATION_FILES, ids=lambda p: p.name)
def test_the_simulation_has_no_clock_sleep_thread_or_socket(path: Path) -> None:
    # Its time is the event queue's: a real clock or a sleep would make a seed unrepeatable.
    forbidden = {"time", "asyncio", "threading", "socket", "datetime", "multiprocessing"}
    assert not _imported_modules(path) & forbidden


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "ledger" / "consensus").glob("*.py")) + SIMULATION_FILES,
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_no_file_of_consensus_or_the_simulation_is_over_700_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 700
