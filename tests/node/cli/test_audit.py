"""`kpledger audit --data DIR`: exit 0 on a sound chain, 1 naming the first fault, 2 on misuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ledger.encoding import decode, encode
from ledger.store import Store, keys
from tests.helpers import TestNetwork, poke

REPO = Path(__file__).resolve().parents[3]


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "audit", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def _build(tmp_path: Path) -> tuple[TestNetwork, Path, Path]:
    net = TestNetwork()
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(net.genesis.to_json()))
    data = tmp_path / "BE" / "data"
    store = Store(data, net.genesis)
    try:
        a, b = net.issue(exporting="BE", importing="AE"), net.issue(exporting="IN", importing="RU")
        net.commit_block(store, [a.event, b.event])
        net.commit_block(store, [net.confirm(a), net.void(b, "lost")])
    finally:
        store.close()
    return net, genesis, data


def test_audit_data_passes_a_sound_chain_and_names_a_fault(tmp_path: Path) -> None:
    net, genesis, data = _build(tmp_path)
    done = audit("--data", str(data), "--json")  # genesis found at ../../genesis.json
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["height_checked"] == 2 and report["events_checked"] == 4
    assert report["scope"] == "full"

    store = Store(data, net.genesis)
    try:
        event_id = store.event_ids(2)[0]
        height, index, encoded = decode(store.kv.get(keys.event(event_id)))
        flipped = encoded[:-3] + bytes([encoded[-3] ^ 1]) + encoded[-2:]
        poke(store, keys.event(event_id), encode([height, index, flipped]))
    finally:
        store.close()
    done = audit("--data", str(data), "--genesis", str(genesis))
    assert done.returncode == 1
    assert "FAULT after height 1" in done.stdout and "block 2 event 0" in done.stdout


def test_audit_usage_errors(tmp_path: Path) -> None:
    _, genesis, data = _build(tmp_path)
    assert audit().returncode == 2
    assert audit("--data", str(data), "--node", "http://127.0.0.1:9").returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    done = audit("--data", str(empty), "--genesis", str(genesis))
    assert done.returncode == 2 and "no LevelDB" in done.stderr
    done = audit("--node", "http://127.0.0.1:9", "--genesis", str(genesis))
    assert done.returncode == 2 and "cannot reach" in done.stderr


def test_audit_finds_the_genesis_its_help_names(tmp_path: Path) -> None:
    """--help names where the genesis is looked for with --data, and that is where it looks."""
    helped = audit("--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    assert "the genesis the node.toml beside DIR names" in text
    assert "DIR/../../genesis.json" in text and "DIR/../genesis.json" in text
    # 1. A node.toml beside the data directory names a genesis elsewhere: that one is used.
    (tmp_path / "a").mkdir()
    _, genesis, data = _build(tmp_path / "a")
    elsewhere = tmp_path / "a" / "shared" / "kp-genesis.json"
    elsewhere.parent.mkdir()
    genesis.rename(elsewhere)
    (data.parent / "node.toml").write_text('genesis = "../shared/kp-genesis.json"\n')
    done = audit("--data", str(data), "--json", "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"]
    # 2. No node.toml: DIR/../genesis.json when DIR/../../genesis.json is not there.
    (data.parent / "node.toml").unlink()
    elsewhere.rename(data.parent / "genesis.json")
    done = audit("--data", str(data), "--json", "--workers", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    # 3. None anywhere: a usage error that names where it looked.
    (data.parent / "genesis.json").unlink()
    done = audit("--data", str(data), "--json", "--workers", "1")
    assert done.returncode == 2
    failure = json.loads(done.stdout)
    assert failure["error"] == "usage" and "give --genesis" in failure["message"]
    assert str(data.parent.parent / "genesis.json") in failure["message"]
