"""`kpledger audit --data` and `kpledger store scrub` on a store damaged at rest: a fault, exit 1,
never a traceback (issue 13 item 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.ledger.store.test_integrity import build, damage, tables, zero_footer

REPO = Path(__file__).resolve().parents[3]


def kpledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def _store(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "BE" / "data"
    net, _ = build(data, certificates=200)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(net.genesis.to_json()))
    return data, genesis


def test_scrub_passes_a_sound_store_and_lists_what_is_damaged(tmp_path: Path) -> None:
    data, _genesis = _store(tmp_path)
    done = kpledger("store", "scrub", "--data", str(data), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["certificates"] == 200 and report["blocks"] == 4

    biggest = tables(data)[-1]
    damage(biggest, biggest.stat().st_size // 2)
    done = kpledger("store", "scrub", "--data", str(data))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "is corrupt" in done.stdout and "checksum" in done.stdout
    assert "Traceback" not in done.stderr
    assert kpledger("store", "scrub", "--data", str(tmp_path / "none")).returncode == 2


def test_audit_reports_a_damaged_table_as_a_fault(tmp_path: Path) -> None:
    data, genesis = _store(tmp_path)
    biggest = tables(data)[-1]
    damage(biggest, biggest.stat().st_size // 2)
    done = kpledger("audit", "--data", str(data), "--genesis", str(genesis), "--workers", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "CorruptionError" not in done.stderr
    assert "FAULT" in done.stdout and "corrupt" in done.stdout


def test_audit_reports_a_zeroed_table_footer_as_a_fault(tmp_path: Path) -> None:
    data, genesis = _store(tmp_path)
    zero_footer(tables(data)[-1])
    done = kpledger("audit", "--data", str(data), "--genesis", str(genesis), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert not report["ok"] and report["error"] == "store_corrupt"
    assert "damaged footer" in report["fault"]
    done = kpledger("store", "scrub", "--data", str(data))
    assert done.returncode == 1 and "damaged footer" in done.stdout


def test_store_compact_rewrites_the_tables_and_changes_no_entry(tmp_path: Path) -> None:
    from ledger.store.leveldb import LevelDB

    data, genesis = _store(tmp_path)
    db = LevelDB(data)
    before = list(db.items())
    db.close()
    done = kpledger("store", "compact", "--data", str(data), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["bytes_before"] > 0 and report["bytes_after"] > 0
    assert not list(data.glob("*.log")) or all(f.stat().st_size == 0 for f in data.glob("*.log"))
    db = LevelDB(data)
    assert list(db.items()) == before
    db.close()
    assert kpledger("store", "scrub", "--data", str(data)).returncode == 0
    done = kpledger("audit", "--data", str(data), "--genesis", str(genesis), "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr


def test_store_compact_refuses_a_store_in_use_and_a_directory_without_one(tmp_path: Path) -> None:
    from ledger.store.leveldb import LevelDB

    data, _genesis = _store(tmp_path)
    db = LevelDB(data)  # as a running node holds it
    try:
        done = kpledger("store", "compact", "--data", str(data), "--json")
    finally:
        db.close()
    assert done.returncode == 2, done.stdout + done.stderr
    assert json.loads(done.stdout)["error"] == "store_locked"
    done = kpledger("store", "compact", "--data", str(tmp_path / "none"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
