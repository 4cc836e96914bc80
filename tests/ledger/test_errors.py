"""Every refusal is a type of ledger.errors (ledger/errors/: its __init__ and the modules it
re-exports) with its own stable machine code."""

from __future__ import annotations

import ast
from pathlib import Path

from ledger import errors
from ledger.errors import LedgerError

REPO = Path(__file__).resolve().parents[2]


def _refusals() -> list[type[LedgerError]]:
    return [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, LedgerError)
    ]


def test_every_refusal_has_its_own_code() -> None:
    # A subclass that only carries details for the shell (PeerClockStale) keeps its parent's code.
    codes = [kind.code for kind in _refusals() if "code" in vars(kind)]
    assert len(codes) == len(set(codes)), sorted(codes)
    assert [k.__name__ for k in _refusals() if "code" not in vars(k)] == ["PeerClockStale"]


def test_every_refusal_is_defined_in_errors_py() -> None:
    names = {kind.__name__ for kind in _refusals()}
    elsewhere = []
    for path in sorted((*REPO.glob("ledger/**/*.py"), *REPO.glob("node/**/*.py"))):
        if path.parent == REPO / "ledger" / "errors":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if bases & names:
                elsewhere.append(f"{path.relative_to(REPO)}: {node.name}")
    assert elsewhere == []


def test_every_refusal_of_the_package_is_named_by_ledger_errors() -> None:
    """A type defined in a module of ledger/errors/ is importable from ledger.errors itself."""
    import importlib
    import pkgutil

    exported = {kind.__name__ for kind in _refusals()}
    for info in pkgutil.iter_modules(errors.__path__, "ledger.errors."):
        module = importlib.import_module(info.name)
        defined = {
            name
            for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, LedgerError)
            and obj.__module__ == info.name
        }  # fmt: skip
        assert defined and defined <= exported, (info.name, sorted(defined - exported))
