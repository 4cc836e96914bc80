"""docs/rules.md against the code: every error code the code can raise is in the rule book with
its HTTP status, and every code the rule book names exists."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import ledger
import node
from ledger.errors import LedgerError

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "rules.md"
CODE = re.compile(r"`([a-z][a-z0-9_]*)`")
#: `error_response(404, "no_blocks", ...)`, `_refusal(503, "too_many_connections", ...)`: codes the
#: HTTP layer answers without an error type, with their status.
LITERAL_RESPONSE = re.compile(r"(?:error_response|_refusal)\(\s*(\d{3}),\s*\"([a-z_]+)\"")
#: `{"error": "rate_limited", ...}`, `code, text = "timeout", ...`: such codes whose status is set
#: apart from them.
LITERAL_CODE = re.compile(r"(?:\"error\":\s*|code, text = )\"([a-z_]+)\"")
#: The command line's own package: its codes are exit reports, not answers of a node.
CLI_PACKAGE = ROOT / "node" / "cli"


def error_types() -> dict[str, int]:
    """Every LedgerError subclass of every module of ledger/ and node/: code -> HTTP status."""
    for package in (ledger, node):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
    found: dict[str, int] = {}
    todo: list[type[LedgerError]] = [LedgerError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(("ledger.", "node.")):
            assert found.get(cls.code, cls.http_status) == cls.http_status, cls
            found[cls.code] = cls.http_status
    return found


def tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every markdown table as (the heading above it, header cells, rows of cells)."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            out.append((heading, header, rows))
            continue
        i += 1
    return out


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def index() -> tuple[dict[str, str], dict[str, str]]:
    """The two tables of the index: error types and HTTP-layer codes, code -> HTTP cell."""
    found = [t for t in tables(RULES.read_text()) if t[0] == "Index of codes"]
    assert len(found) == 2, "the index has two tables: error types, then the HTTP layer's codes"
    out = []
    for _, header, rows in found:
        assert header[:2] == ["code", "HTTP"]
        entries: dict[str, str] = {}
        for row in rows:
            (code,) = CODE.findall(row[0])
            assert code not in entries, f"{code} is listed twice"
            entries[code] = row[1]
        out.append(entries)
    return out[0], out[1]


def http_layer_codes() -> dict[str, str]:
    """Codes a node answers without an error type: code -> status ("" when set apart)."""
    from node.http.app import HTTP_ERROR_CODES

    found = {code: str(status) for status, code in HTTP_ERROR_CODES.items()}
    for path in sorted((ROOT / "node").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for status, code in LITERAL_RESPONSE.findall(text):
            found.setdefault(code, status)
        if not path.is_relative_to(CLI_PACKAGE):
            for code in LITERAL_CODE.findall(text):
                found.setdefault(code, "")
    found["http_error"] = "any"  # the fallback of errors_middleware
    return found


def test_every_error_type_is_in_the_rule_book_with_its_status() -> None:
    types = error_types()
    documented, _ = index()
    missing = sorted(set(types) - set(documented))
    assert not missing, f"docs/rules.md does not list {missing}"
    unknown = sorted(set(documented) - set(types))
    assert not unknown, f"docs/rules.md lists codes no error type has: {unknown}"
    wrong = {c: (documented[c], types[c]) for c in types if documented[c] != str(types[c])}
    assert not wrong, f"HTTP status in docs/rules.md (doc, code): {wrong}"


def test_every_http_layer_code_is_in_the_rule_book() -> None:
    types = error_types()
    _, documented = index()
    answered = {c: s for c, s in http_layer_codes().items() if c not in types}
    missing = sorted(set(answered) - set(documented))
    assert not missing, f"docs/rules.md does not list the HTTP layer's {missing}"
    unknown = sorted(set(documented) - set(answered))
    assert not unknown, (
        f"docs/rules.md lists HTTP-layer codes node/http/app.py never answers: {unknown}"
    )
    wrong = {c: (documented[c], s) for c, s in answered.items() if s and documented[c] != s}
    assert not wrong, f"HTTP status in docs/rules.md (doc, code): {wrong}"


def test_every_code_a_rule_names_exists_with_that_status() -> None:
    # A code of the HTTP layer whose status is set apart from it has the index's status.
    _, layer = index()
    known = {c: s or layer.get(c, "") for c, s in http_layer_codes().items()}
    known |= {c: str(s) for c, s in error_types().items()}
    checked = 0
    for heading, header, rows in tables(RULES.read_text()):
        if "code" not in header or heading == "Index of codes":
            continue
        code_at = header.index("code")
        http_at = header.index("HTTP") if "HTTP" in header else None
        for row in rows:
            named = CODE.findall(row[code_at])
            for code in named:
                assert code in known, f"{heading}: {code} is no error code ({row})"
                checked += 1
            status = row[http_at] if http_at is not None else ""
            if status:
                stated = {known[c] for c in named if known[c]}
                assert stated <= {status} and stated, f"{heading}: {row}"
    assert checked > 100  # the rule tables were read


def test_rule_numbers_are_unique_and_the_index_refers_to_them() -> None:
    text = RULES.read_text()
    numbers: list[str] = []
    for _, header, rows in tables(text):
        if header and header[0] == "#":
            numbers += [row[0] for row in rows if row[0]]
    assert len(numbers) == len(set(numbers)), "a rule number is used twice"
    documented, _ = index()
    body = next(t for t in tables(text) if t[0] == "Index of codes")[2]
    referred: set[str] = set()
    for row in body:
        for ref in re.findall(r"\b([A-Z]{1,2})(\d+)(?: to \1?(\d+))?", row[2]):
            letter, first, last = ref
            for n in range(int(first), int(last or first) + 1):
                referred.add(f"{letter}{n}")
    dangling = sorted(referred - set(numbers))
    assert not dangling, f"the index refers to rules that do not exist: {dangling}"
    assert documented
