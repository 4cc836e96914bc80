"""The promise of 202, in process: an accepted event is in the node's store before the answer,
reloaded at start (checked again), and leaves the store's pending family with its outcome."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ledger.chain import build_block
from ledger.errors import StoreWriteFailed
from node.config import NodeConfig
from node.files import load_signing_key
from node.netinit import init_network, parse_participants
from node.service import LedgerNode
from tests.e2e.conftest import PARTICIPANTS, EventMaker


def make_network(tmp_path: Path) -> tuple[NodeConfig, EventMaker]:
    """BE's node.toml in a fresh 4-validator network (the others never run), and its signers."""
    genesis = init_network(
        tmp_path, parse_participants(",".join(PARTICIPANTS)), base_port=7700, chain_id="kp-d"
    )
    config = NodeConfig.load(tmp_path / "BE" / "node.toml")
    keys = {p: load_signing_key(tmp_path / p / "authority.pem") for p in PARTICIPANTS}
    node = LedgerNode(config)
    registry = node.registry
    node.store.close()
    return config, EventMaker(genesis.chain_id, registry, keys, tag="DUR")


def test_an_accepted_event_is_stored_before_its_answer_and_reloaded_at_start(
    tmp_path: Path,
) -> None:
    # Issue 13 item 1: the mempool lived only in memory; a stopped node lost what it accepted.
    config, maker = make_network(tmp_path)
    events = [maker.issue("BE", "AE") for _ in range(5)]

    async def accept() -> None:
        node = LedgerNode(config)
        await node.start()
        try:
            for event in events:
                assert node.submit(event).status == "pending"
            await asyncio.gather(*(node.durable(e.event_id) for e in events))
            stored = dict(node.store.pending())
            assert set(stored) == {e.event_id for e in events}
            assert stored[events[0].event_id] == events[0].encoded
            # The same event again: the same answer, stored once.
            assert node.submit(events[0]).status == "pending"
            await node.durable(events[0].event_id)
        finally:
            await node.stop()

    async def restart() -> None:
        node = LedgerNode(config)
        await node.start()
        try:
            assert node.mempool.ids == {e.event_id for e in events}
            for event in events:
                status = node.event_status(event.event_id)
                assert status is not None and status.status == "pending"
            # Reloaded events are due to every peer at once (what they took they may have lost).
            due = node.pending.due(int(time.time() * 1000), [p.node_key for p in node.peers])
            assert len(due) == 3 and all(len(ids) == 5 for ids in due.values())
        finally:
            await node.stop()

    asyncio.run(accept())
    asyncio.run(restart())


def test_a_reloaded_event_that_no_longer_applies_is_rejected_with_its_reason(
    tmp_path: Path,
) -> None:
    config, maker = make_network(tmp_path)
    first = maker.issue("BE", "AE")
    number = first.body.facts.number
    rival = maker.issue("BE", "IN", number=number)  # the same number, a different event

    async def accept() -> None:
        node = LedgerNode(config)
        await node.start()
        try:
            node.submit(first)
            await node.durable(first.event_id)
        finally:
            await node.stop()

    asyncio.run(accept())
    # While the node is down, the network records the rival under that number.
    node = LedgerNode(config)
    execution = build_block(
        node.store,
        node.registry,
        node.genesis.hash,
        node.store.head,
        [rival],
        chain_id=node.chain_id,
        time_ms=int(time.time() * 1000),
        proposer=1,
    )
    assert not execution.refused
    node.store.commit(execution, b"\x90")
    node.store.close()

    async def restart() -> None:
        node = LedgerNode(config)
        await node.start()
        try:
            assert first.event_id not in node.mempool
            status = node.event_status(first.event_id)
            assert status is not None and status.status == "rejected", status
            assert status.error == "certificate_number_taken" and status.message
            assert dict(node.store.pending()) == {}
        finally:
            await node.stop()

    asyncio.run(restart())


def test_an_event_leaves_the_pending_family_in_the_batch_of_its_block(tmp_path: Path) -> None:
    config, maker = make_network(tmp_path)
    kept, final = maker.issue("BE", "AE"), maker.issue("BE", "RU")

    async def run() -> None:
        node = LedgerNode(config)
        await node.start()
        try:
            for event in (kept, final):
                node.submit(event)
                await node.durable(event.event_id)
            execution = build_block(
                node.reader,
                node.registry,
                node.genesis.hash,
                node.store.head,
                [final],
                chain_id=node.chain_id,
                time_ms=int(time.time() * 1000),
                proposer=1,
            )
            # Final: its pending key goes in the block's own batch (Store.commit).
            node._commit(execution, _cert(node, execution.header.hash))
            assert set(dict(node.store.pending())) == {kept.event_id}
            assert final.event_id not in node.pending and kept.event_id in node.pending
        finally:
            await node.stop()

    asyncio.run(run())


def _cert(node: LedgerNode, value: bytes) -> object:
    from ledger.consensus.messages import CommitCertificate, Vote, VoteKind

    keys = [
        load_signing_key(Path(node.config.path).parent.parent / p / "node.pem")
        for p in PARTICIPANTS
    ]
    votes = [
        Vote.create(k, node.chain_id, VoteKind.PRECOMMIT, 1, 0, value, i)
        for i, k in enumerate(keys)
    ]
    return CommitCertificate(1, 0, value, tuple((v.validator, v.signature) for v in votes))


def test_an_event_that_cannot_be_stored_is_not_promised(tmp_path: Path) -> None:
    config, maker = make_network(tmp_path)
    event = maker.issue("BE", "AE")

    def full_disk(events: object) -> None:
        raise StoreWriteFailed("cannot write to the store: No space left on device")

    async def run() -> None:
        node = LedgerNode(config)
        await node.start()
        try:
            real = node.store.put_pending
            node.store.put_pending = full_disk  # type: ignore[method-assign]
            node.submit(event)
            with pytest.raises(StoreWriteFailed):  # the API answers 503, not 202
                await node.durable(event.event_id)
            assert dict(node.store.pending()) == {}
            node.store.put_pending = real  # type: ignore[method-assign]
            # The client sends it again (the disk has room): stored now, and promised.
            assert node.submit(event).status == "pending"
            await node.durable(event.event_id)
            assert set(dict(node.store.pending())) == {event.event_id}
        finally:
            await node.stop()

    asyncio.run(run())
