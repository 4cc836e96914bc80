"""`kpledger snapshot create|restore` on a live 4-node TLS network: a snapshot cut from a
running validator through its admin API, restored into a node whose data was lost, gives the
same head and answers (`kpledger verify` accepts them), and the node then keeps up with new
blocks from its peers. A tampered copy of the same snapshot is refused and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import EventMaker, head, poll, submit, wait_final, wait_same_head
from tests.e2e.harness import Network
from tests.e2e.test_key_custody_e2e import kpledger

pytestmark = pytest.mark.slow


def test_a_snapshot_of_a_running_node_starts_a_lost_node_again(
    network: Network, events: EventMaker, tmp_path: Path
) -> None:
    net = network
    be, ru = net.node("BE"), net.node("RU")
    genesis = str(net.directory / "genesis.json")
    issued = [submit(be, e) for e in events.trade(12)]
    wait_final(net, be, issued)
    number = next(iter(events.issued))
    wait_final(net, be, [submit(be, events.confirm(number))])

    # Cut from BE while the network runs; more blocks may land meanwhile (not in the file).
    snap = tmp_path / "be.kpsnap"
    made = kpledger("snapshot", "create", "--config", str(be.config), "--out", str(snap), "--json")
    assert made.returncode == 0, made.stdout + made.stderr
    cut = json.loads(made.stdout)
    assert cut["height"] >= 2 and snap.stat().st_size == cut["bytes"]
    assert '"event": "snapshot sent"' in be.log.read_text(encoding="utf-8")

    # RU loses its data directory.
    ru.stop()
    ru_data = ru.config.parent / "data"
    assert ru_data.is_dir()
    shutil.move(ru_data, tmp_path / "ru-data-lost")

    # A copy with one byte changed is refused (exit 1) and leaves no data directory.
    raw = bytearray(snap.read_bytes())
    raw[len(raw) // 3] ^= 0x08
    bad = tmp_path / "bad.kpsnap"
    bad.write_bytes(bytes(raw))
    refused = kpledger("snapshot", "restore", str(bad), "--config", str(ru.config), "--json")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert json.loads(refused.stdout)["error"] in ("snapshot_digest_mismatch", "snapshot_malformed")
    assert not ru_data.exists()
    assert not [p for p in ru_data.parent.iterdir() if ".restoring" in p.name]

    restored = kpledger("snapshot", "restore", str(snap), "--config", str(ru.config), "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert json.loads(restored.stdout)["height"] == cut["height"]

    # RU runs from the snapshot and syncs what was final after it.
    ru.start()
    ru.wait_healthy()
    wait_same_head(net.nodes, timeout=60)
    assert head(ru)[0] >= cut["height"]

    # The same answers: the public lookup, and a proof kpledger verify accepts from RU.
    path = f"/v1/public/certificates/{number}"
    mine, theirs = ru.get(path), be.get(path)
    assert mine[0] == 200 and mine[1]["status"] == theirs[1]["status"] == "import_confirmed"
    assert mine[1]["history"] == theirs[1]["history"]
    verified = kpledger("verify", number, "--node", ru.url, "--genesis", genesis, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["status"] == "import_confirmed"

    # And it keeps up: new blocks after the restore reach it, and it serves them.
    later = [submit(be, e) for e in events.trade(6)]
    top = wait_final(net, be, later)
    poll(lambda: head(ru)[0] >= top, 60, "RU to follow the new blocks")
    newest = next(reversed(events.issued))
    assert wait_final(net, ru, [later[-1]]) == top
    verified = kpledger("verify", newest, "--node", ru.url, "--genesis", genesis, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    wait_same_head(net.nodes, timeout=60)
