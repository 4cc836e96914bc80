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
