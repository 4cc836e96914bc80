"""The core does no I/O of its own: no file opened, no socket, no clock, no sleep, no process
pool anywhere in ledger/ but the LevelDB backend (SPEC's design card; STYLE.md)."""

from __future__ import annotations

import re
from pathlib import Path

LEDGER = Path(__file__).resolve().parents[2] / "ledger"
#: What the shell owns: files, sockets, clocks, sleeping and worker processes.
IMPERATIVE = re.compile(r"open\(|socket|time\.time|monotonic|sleep|multiprocessing|ProcessPool")
BACKEND = LEDGER / "store" / "leveldb.py"


def test_no_io_in_the_core_outside_the_store_backend() -> None:
    found = [
        f"{path.relative_to(LEDGER.parent)}:{number}: {line.strip()}"
        for path in sorted(LEDGER.rglob("*.py"))
        if path != BACKEND
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if IMPERATIVE.search(line)
    ]
    assert found == []
