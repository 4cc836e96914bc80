"""Catch-up, in process: pages of final blocks from peers, each checked against its commit
certificate; a bad certificate refused; the pages this node serves bounded by bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ledger.chain import Execution, validate_block
from ledger.consensus import CommitCertificate
from ledger.encoding import encode
from ledger.errors import InvalidBlock, LedgerError
from node.health import Health
from node.mempool import Mempool
from node.metrics import Metrics
from node.peers import Peer
from node.service import sync as sync_module
from node.service.sync import PeerHeights, PeerSource, Sync
from node.service.view import ChainView
from tests.node.service.conftest import Link, Net, sample


class Committer:
    """Stands in for the driver's commit: writes the block and moves the view on."""

    def __init__(self, view: ChainView) -> None:
        self.view = view
        self.heights: list[int] = []

    def commit(self, execution: Execution, cert: CommitCertificate) -> None:
        self.view.store.commit(execution, encode(cert.to_wire()))
        self.view.committed(execution)
        self.heights.append(execution.header.height)


def sync_of(
    view: ChainView, link: Link, held: Callable[[bytes], Execution | None] | None = None
) -> tuple[Sync, Committer]:
    committer = Committer(view)
    metrics = Metrics()
    health = Health(metrics, view.registry.parameters.max_clock_drift_ms)
    sync = Sync(
        view,
        Mempool(1000),
        PeerHeights(view),
        committer,
        PeerSource(view, link),
        1024 * 1024,
        health,
        metrics,
        held=held,
    )
    return sync, committer


def serve(link: Link, source: Sync, peers: set[str] | None = None) -> None:
    """`link` answers as `source`'s node does (for the peers at the addresses in `peers`)."""
    store = source.view.store

    def status(peer: Peer, path: str) -> bytes | None:
        if peers is not None and peer.address not in peers:
            return None
        head = store.head
        return encode([store.height, head.hash if head else b""])

    def blocks(peer: Peer, path: str) -> bytes | None:
        if peers is not None and peer.address not in peers:
            return None
        query = {k: int(v[0]) for k, v in parse_qs(urlsplit(path).query).items()}
        return encode(source.final_blocks(query["from"], query["limit"], query["max_bytes"]))

    link.answers["/peer/status"] = status
    link.answers["/peer/blocks"] = blocks


def source_chain(net: Net, blocks: int) -> Sync:
    """AE's node with `blocks` final blocks of two issuances each."""
    view = net.view("AE")
    for _ in range(blocks):
        net.commit(view, [net.events.issue("BE", "AE"), net.events.issue("IN", "RU")])
    source, _ = sync_of(view, Link())
    return source


def test_final_blocks_are_fetched_checked_and_applied(net: Net) -> None:
    source = source_chain(net, 5)
    view = net.view("BE")
    link = Link()
    serve(link, source)
    sync, committer = sync_of(view, link)
    assert asyncio.run(sync.sync_once()) == 5
    assert committer.heights == [1, 2, 3, 4, 5]
    assert view.store.head == source.view.store.head
    assert sample(sync.metrics, "kpledger_sync_blocks_total") == 5
    assert sample(sync.metrics, "kpledger_peers_reachable") == 3


def test_the_loop_serves_others_between_the_blocks_of_a_page(net: Net) -> None:
    """A page of big blocks holds the loop for one block at a time, not for the whole page
    (an observer catching up answered no request for tens of seconds)."""
    source = source_chain(net, 3)
    view = net.view("BE")
    link = Link()
    serve(link, source)
    sync, committer = sync_of(view, link)
    seen: list[int] = []

    async def run() -> None:
        async def watch() -> None:
            while True:
                seen.append(view.store.height)
                await asyncio.sleep(0)

        watching = asyncio.get_running_loop().create_task(watch())
        await sync.sync_once()
        watching.cancel()

    asyncio.run(run())
    assert committer.heights == [1, 2, 3]
    assert {1, 2} <= set(seen), seen


def test_a_page_with_a_bad_certificate_is_refused_and_another_peer_asked(net: Net) -> None:
    source = source_chain(net, 2)
    view = net.view("BE")
    block = source.view.store.block(1)
    assert block is not None
    # Two signatures of four: not a quorum.
    weak = net.certificate(1, block.header.hash, range(2))
    with pytest.raises(LedgerError):
        sync_of(view, Link())[0].apply_final(block.encode(), encode(weak.to_wire()))
    other = net.certificate(1, b"\x01" * 32)  # a quorum, for another block
    with pytest.raises(InvalidBlock):
        sync_of(view, Link())[0].apply_final(block.encode(), encode(other.to_wire()))
    assert view.store.height == 0

    # A liar serves pages whose certificates are not a quorum; an honest peer serves the chain.
    link = Link()
    liar, honest = (p.address for p in view.peers[:2])
    serve(link, source, {honest})
    real_blocks = link.answers["/peer/blocks"]

    def lying(peer: Peer, path: str) -> bytes | None:
        if peer.address != liar:
            return real_blocks(peer, path)
        page = source.final_blocks(1, 64, 1 << 20)
        return encode([[b, encode(weak.to_wire())] for b, _ in page])

    def status(peer: Peer, path: str) -> bytes | None:
        head = source.view.store.head
        return encode([2, head.hash if head else b""]) if peer.address in {liar, honest} else None

    link.answers["/peer/blocks"] = lying
    link.answers["/peer/status"] = status
    sync, committer = sync_of(view, link)
    assert asyncio.run(sync.sync_once()) == 2
    asked = [p.address for p, path in link.gets if path.startswith("/peer/blocks")]
    assert asked == [liar, honest]  # the liar first (the first peer), then the honest one
    assert committer.heights == [1, 2] and view.store.head == source.view.store.head


def test_a_served_page_keeps_to_its_byte_budget_but_its_first_block_goes_alone(
    net: Net,
) -> None:
    source = source_chain(net, 4)
    whole = source.final_blocks(1, 64, 1 << 20)
    assert len(whole) == 4
    one = sum(len(b) + len(c) for b, c in whole[:1])
    assert len(source.final_blocks(1, 64, 1)) == 1  # over budget, the first still goes
    two = source.final_blocks(1, 64, 2 * one + 64)
    assert len(two) == 2
    assert len(source.final_blocks(3, 1, 1 << 20)) == 1
    assert source.final_blocks(5, 64, 1 << 20) == []


def test_a_peer_seen_ahead_wakes_catch_up(net: Net) -> None:
    view = net.view("BE")
    heights = PeerHeights(view)
    heights.note(0)
    assert heights.best == 0 and not heights.wakeup.is_set()
    heights.note(7)
    heights.note(3)
    assert heights.best == 7 and heights.wakeup.is_set()


def test_a_final_block_this_node_executed_already_is_not_executed_again(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block that this node judged valid when it was proposed (its candidate) and that then
    arrives by catch-up is committed as executed then; any other block is executed on arrival."""
    source = source_chain(net, 2)
    first = source.view.store.block(1)
    assert first is not None
    view = net.view("BE")
    executed = validate_block(
        view.reader,
        view.registry,
        view.genesis.hash,
        view.store.head,
        first,
        chain_id=view.chain_id,
    )
    runs: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Execution:
        runs.append(args[4].header.height)
        return validate_block(*args, **kwargs)

    monkeypatch.setattr(sync_module, "validate_block", counting)
    link = Link()
    serve(link, source)
    held = {first.header.hash: executed}
    sync, committer = sync_of(view, link, held.get)
    assert asyncio.run(sync.sync_once()) == 2
    assert runs == [2]  # block 1 was held; block 2 was not
    assert committer.heights == [1, 2]
    assert view.store.head == source.view.store.head

    # Held, but judged by another register than the one in force: executed again.
    other = net.view("IN")
    judged_elsewhere = replace(executed, judged_by=replace(other.registry))
    runs.clear()
    sync, committer = sync_of(other, link, {first.header.hash: judged_elsewhere}.get)
    assert asyncio.run(sync.sync_once()) == 2
    assert runs == [1, 2]
    assert other.store.head == source.view.store.head
