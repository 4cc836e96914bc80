"""The store's boundary: one module builds the keys, one imports plyvel, and proofs are checked
without either."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.store import keys

ROOT = Path(__file__).resolve().parents[3]
SOURCES = sorted(
    p
    for folder in ("ledger", "node", "scripts", "tests")
    for p in (ROOT / folder).rglob("*.py")
    if "__pycache__" not in p.parts
)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_plyvel_is_imported_by_the_leveldb_backend_only() -> None:
    importers = [
        str(p.relative_to(ROOT))
        for p in SOURCES
        if any(m.split(".")[0] == "plyvel" for m in _imports(p))
    ]
    assert importers == ["ledger/store/leveldb.py"]


#: A height packed as 8 big-endian bytes, the way only keys.height may build one.
_HEIGHT_PACKING = re.compile(r"""(pack|Struct)\(\s*["']>Q["']|to_bytes\(\s*8\s*,\s*["']big["']""")


def test_the_height_key_is_built_in_one_place() -> None:
    builders = [
        str(p.relative_to(ROOT))
        for p in SOURCES
        if _HEIGHT_PACKING.search(p.read_text(encoding="utf-8")) and p.name != "test_layout.py"
    ]
    assert builders == ["ledger/store/keys.py"]


def test_nothing_outside_the_store_reaches_into_a_backend_but_tests_and_tools() -> None:
    # The audit, the scrub and proof building read through the typed readers, not the KV.
    for module in ("ledger/audit.py", "ledger/scrub.py", "ledger/proofs.py"):
        text = (ROOT / module).read_text(encoding="utf-8")
        assert ".kv." not in text and ".raw()" not in text and "keys.P_" not in text, module


@pytest.mark.parametrize("height", [0, 1, 255, 256, 2**32, 2**64 - 1])
def test_heights_sort_as_numbers(height: int) -> None:
    assert keys.read_height(keys.height(height)) == height
    if height:
        assert keys.height(height - 1) < keys.height(height)
        assert keys.block(height - 1) < keys.block(height)


_WITHOUT_PLYVEL = """
import sys
sys.modules["plyvel"] = None  # any import of plyvel now fails
from ledger.proofs import CertificateProof, RegisterProof, verify_certificate_proof, verify_register_proof
import ledger.store
from ledger.store import MemoryKV, Store
assert "ledger.store.leveldb" not in sys.modules
try:
    import ledger.store.leveldb
except ImportError:
    print("blocked")
"""


def test_proof_verification_imports_without_plyvel() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PLYVEL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "blocked"  # the shim did block plyvel
