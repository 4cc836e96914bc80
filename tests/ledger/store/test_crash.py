"""Killing a writer at any instant loses no committed block and leaves a consistent store."""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.audit import verify_chain
from ledger.records import state_key
from ledger.statetree import EMPTY, MemoryNodeStore, StateTree
from ledger.store import Store, keys
from tests.ledger.store.crash_writer import network

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]
KILLS = 32


@dataclass
class Run:
    printed: dict[int, str]  # height -> header hash of each block the writer said it committed
    first_commit: float | None  # seconds from start to the first committed block


def _run_and_kill(path: Path, errors: Path, kill_at: float | None, rng: random.Random) -> Run:
    """Start the writer and SIGKILL it: at `kill_at` seconds after the start (while it starts
    up), or else at a random moment after it has committed its first block."""
    started = time.monotonic()
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=ROOT,
            start_new_session=True,
        )
    assert proc.stdout is not None
    lines: list[bytes] = []
    first_commit = None
    try:
        if kill_at is not None:
            time.sleep(kill_at)
        else:
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                if selector.select(timeout=30):
                    lines.append(proc.stdout.readline())
                    first_commit = time.monotonic() - started
            time.sleep(rng.uniform(0.0, 0.3))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        lines += proc.communicate(timeout=30)[0].splitlines()
    assert proc.returncode == -signal.SIGKILL, errors.read_text()
    printed: dict[int, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and len(parts[1]) == 64:  # the last line may be cut short
            printed[int(parts[0])] = parts[1].decode()
    return Run(printed, first_commit)


def _check_consistent(store: Store, checked_up_to: int) -> None:
    """Links, events and commit certificates of the new blocks; records against the state root."""
    genesis = store.genesis
    height = store.height
    prev = store.header(checked_up_to) if checked_up_to else None
    for h in range(checked_up_to + 1, height + 1):
        header = store.header(h)
        assert header is not None, f"block {h} below the head {height} is missing"
        assert header.prev_hash == (prev.hash if prev is not None else genesis.hash)
        block = store.block(h)  # raises if an event is missing
        assert block is not None
        block.check_body()
        for index, event in enumerate(block.events):
            stored = store.event(event.event_id)
            assert stored is not None and (stored.height, stored.index) == (h, index)
        assert store.commit_certificate_bytes(h), f"block {h} has no commit certificate"
        prev = header
    assert store.head == store.header(height)
    assert store.kv.get(keys.block(height + 1)) is None
    leaves = {state_key(record.number): record.leaf_value() for record in store.iter_records()}
    root = StateTree(MemoryNodeStore(), EMPTY).update(leaves)[0] if leaves else EMPTY
    assert root == store.state_root, "the records do not add up to the head's state root"


@pytest.mark.slow
def test_a_killed_writer_loses_no_committed_block(tmp_path: Path) -> None:
    rng = random.Random(20260302)
    path = tmp_path / "chain"
    genesis = network().genesis
    printed: dict[int, str] = {}
    checked_up_to = 0
    startup = None  # how long the writer takes to commit its first block
    for kill in range(KILLS):
        # One kill in four lands while the writer starts up; the rest while it commits blocks.
        kill_at = rng.uniform(0.0, startup) if startup and kill % 4 == 3 else None
        run = _run_and_kill(path, tmp_path / "writer.err", kill_at, rng)
        if run.first_commit is not None:
            startup = run.first_commit
        printed.update(run.printed)
        store = Store(path, genesis)
        try:
            assert store.height >= max(printed, default=0), "a committed block was lost"
            for h, header_hash in printed.items():
                header = store.header(h)
                assert header is not None and header.hash.hex() == header_hash
            _check_consistent(store, checked_up_to)
            checked_up_to = store.height
        finally:
            store.close()
    assert len(printed) >= KILLS, "the writer hardly ever got to commit: the test proves little"

    store = Store(path, genesis)
    try:
        report = verify_chain(store, genesis)
        assert report.ok, report.fault
        assert report.height_checked == store.height
    finally:
        store.close()
