"""Snapshots of a data directory and restores from them (node/snapshots.py, `kpledger snapshot`):
a restore gives the same chain and answers; a snapshot tampered with (its digest recomputed or
not), of another chain, or into a directory in use, is refused and leaves nothing behind."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.encoding import decode, encode
from ledger.errors import (
    SnapshotDigestMismatch,
    SnapshotMalformed,
    SnapshotOtherChain,
    SnapshotRefused,
    SnapshotTargetInUse,
)
from ledger.proofs import build_certificate_proof, verify_certificate_proof
from ledger.snapshot import SnapshotReader, write_snapshot
from ledger.store import Store, keys
from node.snapshots import chain_records, create_from_data, restore, snapshot_stream
from tests.helpers import TestNetwork

REPO = Path(__file__).resolve().parents[2]


def build(root: Path, net: TestNetwork | None = None) -> tuple[TestNetwork, Path, list[str]]:
    """A stopped node's data directory with three blocks, and the numbers it holds."""
    net = net or TestNetwork()
    data = root / "BE" / "data"
    store = Store(data, net.genesis)
    try:
        a, b = net.issue(exporting="BE", importing="AE"), net.issue(exporting="IN", importing="RU")
        c = net.issue(exporting="AE", importing="BE")
        net.commit_block(store, [a.event, b.event])
        net.commit_block(store, [net.confirm(a), net.void(b, "lost"), c.event])
        net.commit_block(store, [net.reject(c, "no such parcel")])
        numbers = [a.event.number, b.event.number, c.event.number]
        # A node's own notes, which a snapshot must never carry.
        store.put_api_token("deputy", b"a token's hash")
        store.put_signer_state(b"what this validator signed")
    finally:
        store.close()
    (root / "genesis.json").write_text(json.dumps(net.genesis.to_json()))
    return net, data, numbers


def chain_of(data: Path, net: TestNetwork) -> list[tuple[bytes, bytes]]:
    store = Store(data, net.genesis)
    try:
        with store.kv.snapshot() as view:
            return list(chain_records(view))
    finally:
        store.close()


def rewrite(snapshot: Path, out: Path, change: Callable[[bytes, bytes], bytes | None]) -> None:
    """A forger's copy: each record through `change` (None drops it), the digest recomputed."""
    with snapshot.open("rb") as f:
        reader = SnapshotReader(f.read)
        header = reader.header()
        records = []
        for key, value in reader.records():
            changed = change(key, value)
            if changed is not None:
                records.append((key, changed))
    out.write_bytes(b"".join(write_snapshot(header, records)))


def leftovers(target: Path) -> list[Path]:
    return [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.restoring")]


def test_a_restore_gives_the_same_chain_and_answers(tmp_path: Path) -> None:
    net, data, numbers = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    header, size = create_from_data(data, net.genesis, snap)
    assert header.height == 3 and size == snap.stat().st_size
    target = tmp_path / "new" / "data"
    restored = restore(snap, target, net.genesis)
    assert restored.header == header and restored.events == 6
    assert chain_of(target, net) == chain_of(data, net)
    before, after = Store(data, net.genesis), Store(target, net.genesis)
    try:
        assert after.head == before.head and after.state_root == before.state_root
        for number in numbers:
            assert after.served_certificate(number) == before.served_certificate(number)
        # A node's own notes stayed behind: no token, no signer state.
        assert list(after.api_tokens()) == [] and after.signer_state() is None
        assert list(before.api_tokens()) != [] and before.signer_state() is not None
        # The restored node serves a public proof that checks against genesis alone.
        proof = build_certificate_proof(after, numbers[0])
        assert verify_certificate_proof(proof, net.genesis, numbers[0]).status == "import_confirmed"
    finally:
        before.close()
        after.close()
    assert leftovers(target) == []
    # The data directory is the node's own, 0700 like one a node made.
    assert target.stat().st_mode & 0o077 == 0


def _tamper_commit(key: bytes, value: bytes) -> bytes:
    *fields, signatures = decode(value)
    return encode([*fields, signatures[:2]])  # 2 of 4: not more than 2/3


TAMPERINGS: dict[str, Callable[[bytes, bytes], bytes | None]] = {
    # A certificate record whose status a forger changed (what the state tree commits to).
    "record status": lambda k, v: (
        v.replace(b"import_rejected", b"import_confirmed") if k.startswith(keys.P_CERT) else v
    ),
    # A void's reason changed: not in the state tree's leaf, but not what the events imply.
    "record reason": lambda k, v: v.replace(b"lost", b"lose") if k.startswith(keys.P_CERT) else v,
    "statistics": lambda k, v: v[:-1] + bytes([v[-1] ^ 1]) if k.startswith(keys.P_STATS) else v,
    "a state tree node dropped": lambda k, v: None if k.startswith(keys.P_NODE) else v,
    "an index entry added": lambda k, v: v,  # replaced below: adds a key
    "a commit certificate short of 2/3": lambda k, v: (
        _tamper_commit(k, v) if k == keys.commit(2) else v
    ),
    "an event dropped": lambda k, v: None if k.startswith(keys.P_EVENT) and k[-1] % 2 else v,
}


@pytest.mark.parametrize("what", sorted(TAMPERINGS))
def test_a_tampered_snapshot_with_its_digest_recomputed_is_refused(
    tmp_path: Path, what: str
) -> None:
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    create_from_data(data, net.genesis, snap)
    forged = tmp_path / "forged.kpsnap"
    if what == "an index entry added":
        with snap.open("rb") as f:
            reader = SnapshotReader(f.read)
            header = reader.header()
            records = dict(reader.records())
        records[keys.index_entry(keys.INDEX_DATE, "2026-01-01", "BE-FORGED-1")] = b""
        forged.write_bytes(b"".join(write_snapshot(header, sorted(records.items()))))
    else:
        rewrite(snap, forged, TAMPERINGS[what])
    assert forged.read_bytes() != snap.read_bytes()
    target = tmp_path / "new" / "data"
    with pytest.raises(SnapshotRefused) as refused:
        restore(forged, target, net.genesis)
    assert "does not hold the chain it claims" in refused.value.message
    assert not target.exists() and leftovers(target) == []


def test_a_byte_changed_in_the_file_is_refused(tmp_path: Path) -> None:
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    create_from_data(data, net.genesis, snap)
    raw = bytearray(snap.read_bytes())
    for at in (20, len(raw) // 2, len(raw) - 5):
        tampered = bytearray(raw)
        tampered[at] ^= 0x01
        bad = tmp_path / f"bad-{at}.kpsnap"
        bad.write_bytes(bytes(tampered))
        target = tmp_path / f"new-{at}" / "data"
        # A digest mismatch, or the framing no longer parses (a length byte hit), or the header
        # names another chain: refused before anything is kept, whichever.
        with pytest.raises((SnapshotDigestMismatch, SnapshotMalformed, SnapshotOtherChain)):
            restore(bad, target, net.genesis)
        assert not target.exists() and leftovers(target) == []


def test_a_snapshot_of_another_chain_is_refused(tmp_path: Path) -> None:
    other = TestNetwork(chain_id="kp-other", seed="another")
    _, data, _ = build(tmp_path / "other", other)
    snap = tmp_path / "other.kpsnap"
    create_from_data(data, other.genesis, snap)
    mine = TestNetwork()
    target = tmp_path / "new" / "data"
    with pytest.raises(SnapshotOtherChain) as refused:
        restore(snap, target, mine.genesis)
    assert "kp-other" in refused.value.message and "kp-test" in refused.value.message
    assert not target.exists() and leftovers(target) == []
    # The same chain id under another genesis (other keys) is another chain too.
    twin = TestNetwork(chain_id="kp-other")
    with pytest.raises(SnapshotOtherChain):
        restore(snap, target, twin.genesis)


def test_a_restore_never_writes_over_a_data_directory(tmp_path: Path) -> None:
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    create_from_data(data, net.genesis, snap)
    before = sorted(p.name for p in data.iterdir())
    with pytest.raises(SnapshotTargetInUse):
        restore(snap, data, net.genesis)
    assert sorted(p.name for p in data.iterdir()) == before
    # An empty directory (made by hand, or by a deployment tool) is a fresh start.
    empty = tmp_path / "empty"
    empty.mkdir()
    restore(snap, empty, net.genesis)
    assert (empty / "CURRENT").exists()


def kpledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_the_commands_and_their_exit_statuses(tmp_path: Path) -> None:
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    done = kpledger("snapshot", "create", "--data", str(data), "--out", str(snap), "--json")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["height"] == 3 and made["chain_id"] == "kp-test" and snap.exists()
    new = tmp_path / "new"
    new.mkdir()
    config = new / "node.toml"
    config.write_text(
        'participant = "BE"\ndata_dir = "data"\nport = 7799\n'
        f'api_token = "{"t" * 24}"\ngenesis = "{tmp_path / "a" / "genesis.json"}"\n'
    )
    done = kpledger("snapshot", "restore", str(snap), "--config", str(config), "--json",
                    "--workers", "1")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["events_audited"] == 6
    # Again: the data directory now holds a chain; a usage error (2), nothing changed.
    done = kpledger("snapshot", "restore", str(snap), "--config", str(config), "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["error"] == "snapshot_target_in_use"
    # A changed byte: the ledger's no (1), with the code and a message a person reads.
    raw = bytearray(snap.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    bad = tmp_path / "bad.kpsnap"
    bad.write_bytes(bytes(raw))
    config.write_text(config.read_text().replace('"data"', '"data2"'))
    done = kpledger("snapshot", "restore", str(bad), "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert "error:" in done.stderr and "Traceback" not in done.stderr
    assert not (new / "data2").exists()
    # Not a snapshot at all.
    done = kpledger("snapshot", "restore", str(config), "--config", str(config), "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["error"] == "snapshot_malformed"
    # A running node's store is locked: create says to go through its API.
    store = Store(data, net.genesis)
    try:
        done = kpledger("snapshot", "create", "--data", str(data), "--out", str(tmp_path / "x"))
    finally:
        store.close()
    assert done.returncode == 2 and "--config node.toml" in done.stderr
    assert not (tmp_path / "x").exists()


def test_reader_offsets_do_not_depend_on_how_the_file_is_read(tmp_path: Path) -> None:
    """A reader that gets short reads (a pipe) reads the same records."""
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    create_from_data(data, net.genesis, snap)
    buffer = io.BytesIO(snap.read_bytes())
    reader = SnapshotReader(lambda n: buffer.read(min(n, 7)))
    reader.header()
    assert len(list(reader.records())) == len(chain_of(data, net))


FORGED_RECORDS: dict[str, tuple[bytes, bytes]] = {
    # A participant's last activity moved (governance's dormancy rule reads it).
    "activity": (keys.active("RU"), encode(1)),
    "a suspension": (keys.suspended("IN"), encode(1)),
    # A validator set the chain never named: the node would check commit certificates with it.
    "a validator set": (keys.validators(2), encode([])),
    "a register change": (keys.register(3), encode([])),
    "a scheduled proposal": (keys.schedule(9, b"\x01" * 32), b""),
    # A header hash the chain does not hold, indexed at a height it holds.
    "a header hash": (keys.header_hash(b"\x07" * 32), keys.height(1)),
}


@pytest.mark.parametrize("what", sorted(FORGED_RECORDS))
def test_a_forged_governance_or_index_record_is_refused(tmp_path: Path, what: str) -> None:
    """Records the audit compares with what the chain implies: governance's activity, validator
    sets, register history and schedule, and the header hash index."""
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    create_from_data(data, net.genesis, snap)
    with snap.open("rb") as f:
        reader = SnapshotReader(f.read)
        header = reader.header()
        records = dict(reader.records())
    key, value = FORGED_RECORDS[what]
    records[key] = value
    forged = tmp_path / "forged.kpsnap"
    forged.write_bytes(b"".join(write_snapshot(header, sorted(records.items()))))
    target = tmp_path / "new" / "data"
    with pytest.raises(SnapshotRefused):
        restore(forged, target, net.genesis)
    assert not target.exists() and leftovers(target) == []


def test_a_snapshot_is_one_final_height_while_blocks_land(tmp_path: Path) -> None:
    """The stream of a running store (what GET /v1/admin/snapshot sends) holds the head of the
    instant it began, though a block is committed while it is being written."""
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    store = Store(data, net.genesis)
    try:
        with store.kv.snapshot() as view:
            header, pieces = snapshot_stream(view, net.genesis)
            with snap.open("wb") as out:
                out.write(next(pieces))
                extra = net.issue(exporting="RU", importing="IN")
                net.commit_block(store, [extra.event])
                assert store.height == 4
                for piece in pieces:
                    out.write(piece)
        assert header.height == 3
    finally:
        store.close()
    target = tmp_path / "new" / "data"
    restored = restore(snap, target, net.genesis)
    assert restored.header.height == 3
    after = Store(target, net.genesis)
    try:
        assert after.height == 3 and after.get_certificate(extra.event.number) is None
    finally:
        after.close()


def test_what_a_killed_restore_left_is_cleared_and_a_running_one_is_respected(
    tmp_path: Path,
) -> None:
    net, data, _ = build(tmp_path / "a")
    snap = tmp_path / "be.kpsnap"
    create_from_data(data, net.genesis, snap)
    target = tmp_path / "new" / "data"
    target.parent.mkdir()
    # A restore killed with SIGKILL leaves its staging directory, never the data directory.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = target.with_name(f".data.restoring-{dead.stdout.strip()}")
    stale.mkdir()
    (stale / "000005.ldb").write_bytes(b"half a table")
    restore(snap, target, net.genesis)
    assert not stale.exists() and (target / "CURRENT").exists()
    # One whose process still runs (here: this test's parent) is not touched.
    other = tmp_path / "other" / "data"
    other.parent.mkdir()
    running = other.with_name(f".data.restoring-{os.getppid()}")
    running.mkdir()
    with pytest.raises(SnapshotTargetInUse, match="another restore"):
        restore(snap, other, net.genesis)
    assert running.exists() and not other.exists()
