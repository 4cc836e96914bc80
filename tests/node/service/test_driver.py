"""The consensus driver, in process: a decided block committed step by step (store, mempool,
listeners, waiters, the next height, the peers told), and proposals refused or judged."""

from __future__ import annotations

import asyncio
from typing import Any

from ledger.chain import Execution
from ledger.consensus import (
    CommitCertificate,
    ConflictingProposals,
    EquivocationEvidence,
    Proposal,
    Vote,
    VoteKind,
    message_from_wire,
    proposer_for,
)
from ledger.encoding import decode
from ledger.keys import SigningKey
from ledger.pending import PendingBook
from node.mempool import Mempool
from node.metrics import Metrics
from node.service.driver import ConsensusDriver, HeightWaiters
from node.service.durable import DurableWriter
from node.service.proposals import Proposals
from node.service.sync import PeerHeights
from node.service.view import ChainView
from tests.node.service.conftest import Link, Net, Refusals, sample

PROPOSER = proposer_for(1, 0, 4)


class Flush:
    def __init__(self) -> None:
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


class OwnEvents:
    def __init__(self) -> None:
        self.attested = 0
        self.reported: list[Any] = []

    def attest_ready(self) -> object:
        self.attested += 1
        return None

    def report_evidence(self, evidence: EquivocationEvidence | ConflictingProposals) -> None:
        self.reported.append(evidence)


class Parts:
    """The driver over a real store, mempool, proposals and durable writer; the rest stand-ins."""

    def __init__(self, view: ChainView) -> None:
        self.view = view
        self.mempool = Mempool(1000)
        self.metrics = Metrics()
        self.link = Link()
        self.writer = DurableWriter(view, self.mempool, PendingBook(), self.metrics)
        self.proposals = Proposals(view, self.mempool, Refusals(), self.link, self.metrics)
        self.flush = Flush()
        self.own = OwnEvents()
        self.heights = PeerHeights(view)
        self.driver = ConsensusDriver(
            view,
            self.mempool,
            self.proposals,
            self.writer,
            self.flush,
            self.own,
            self.heights,
            self.link,
            self.metrics,
            block_delay_ms=20,
        )
        self.proposals.report_to(self.driver)
        self.waiters = HeightWaiters(view)
        self.heard: list[tuple[int, bool]] = []
        self.driver.on_commit(self.heard_commit)
        self.driver.on_commit(self.waiters.committed)

    def heard_commit(self, execution: Execution, register_changed: bool) -> None:
        # Listeners run after the block is written and before the core moves on.
        assert self.view.store.height == execution.header.height
        assert self.driver.core.height == execution.header.height
        self.heard.append((execution.header.height, register_changed))

    def consensus_sent(self) -> list[Any]:
        """What the first peer was sent on /peer/consensus (every peer is sent the same)."""
        first = self.view.peers[0].node_key
        return [
            item
            for peer, path, body in self.link.sent
            if path == "/peer/consensus" and peer.node_key == first
            for item in decode(body)
        ]


def precommits(net: Net, value: bytes, signers: tuple[int, ...] = (1, 2, 3)) -> list[Any]:
    chain_id = net.events.chain_id
    return [
        Vote.create(net.node_keys[i], chain_id, VoteKind.PRECOMMIT, 1, 0, value, i).to_wire()
        for i in signers
    ]


def test_a_decided_block_is_committed_and_the_waiters_woken(net: Net) -> None:
    view = net.view()
    parts = Parts(view)
    event = net.events.issue("BE", "AE")
    parts.mempool.add(event)
    block = net.block(view, [event], proposer=PROPOSER).block
    value = block.header.hash
    proposal = Proposal.create(net.node_keys[PROPOSER], view.chain_id, 1, 0, value, -1, PROPOSER)

    async def run() -> None:
        waiting = asyncio.ensure_future(parts.waiters.wait_for(1, 30))
        await asyncio.sleep(0)
        try:
            parts.driver.on_proposal(proposal, block.encode())
            assert parts.proposals.is_valid(1, value) is True
            parts.driver.on_peer_consensus(precommits(net, value))
            assert await waiting is True
        finally:
            parts.driver.stop()

    asyncio.run(run())
    assert view.store.height == 1 and view.store.head == block.header
    stored = view.store.event(event.event_id)
    assert stored is not None and stored.height == 1
    assert event.event_id not in parts.mempool
    assert parts.heard == [(1, False)]
    assert parts.proposals.candidates == {}  # the height's candidates are over
    assert parts.driver.core.height == 2
    assert parts.own.attested == 1
    assert sample(parts.metrics, "kpledger_blocks_total") == 1
    assert sample(parts.metrics, "kpledger_events_final_total") == 1
    # The node prevoted the block (the others' precommits decided it), then told its peers
    # that it is final.
    sent = [message_from_wire(item) for item in parts.consensus_sent()]
    own = [m for m in sent if isinstance(m, Vote) and m.validator == 0]
    assert [(v.kind, v.value) for v in own] == [(VoteKind.PREVOTE, value)]
    certs = [m for m in sent if isinstance(m, CommitCertificate)]
    assert len(certs) == 1 and certs[0].value == value and certs[0].height == 1


def test_a_height_already_past_wakes_its_waiter_at_once(net: Net) -> None:
    view = net.view()
    net.commit(view, [])
    waiters = HeightWaiters(view)
    assert asyncio.run(waiters.wait_for(1, 0.0)) is True
    assert asyncio.run(waiters.wait_for(2, 0.01)) is False


def test_a_proposal_not_signed_by_the_scheduled_proposer_costs_no_execution(net: Net) -> None:
    view = net.view()
    parts = Parts(view)
    block = net.block(view, [], proposer=PROPOSER).block
    value = block.header.hash
    forger = (PROPOSER + 1) % 4
    forged = Proposal.create(net.node_keys[forger], view.chain_id, 1, 0, value, -1, PROPOSER)

    async def run() -> None:
        try:
            parts.driver.on_proposal(forged, block.encode())
        finally:
            parts.driver.stop()

    asyncio.run(run())
    assert value not in parts.proposals.candidates
    assert not any(isinstance(message_from_wire(i), Vote) for i in parts.consensus_sent())


def test_a_decision_without_the_block_is_committed_when_a_peer_serves_it(net: Net) -> None:
    view = net.view()
    parts = Parts(view)
    block = net.block(view, [], proposer=PROPOSER).block
    value = block.header.hash
    parts.link.answers["/peer/candidate?value="] = lambda peer, path: block.encode()

    async def run() -> None:
        try:
            parts.driver.on_peer_consensus(precommits(net, value))
            assert parts.driver.core.decision is not None and view.store.height == 0
            assert parts.heights.best == 1  # the sync loop would look too
            assert await parts.waiters.wait_for(1, 30) is True
        finally:
            parts.proposals.stop()
            parts.driver.stop()

    asyncio.run(run())
    assert view.store.head == block.header and parts.heard == [(1, False)]


def prevotes(net: Net, value: bytes, signers: tuple[int, ...] = (1, 2, 3)) -> list[Any]:
    chain_id = net.events.chain_id
    return [
        Vote.create(net.node_keys[i], chain_id, VoteKind.PREVOTE, 1, 0, value, i).to_wire()
        for i in signers
    ]


def test_a_validator_restarted_while_locked_still_has_its_locks_block(net: Net) -> None:
    # Locked on a block that only its memory held, then killed: no peer has the block either
    # (every validator went down at once), so only this node's disk can bring it back.
    view = net.view(on_disk=True)
    parts = Parts(view)
    event = net.events.issue("BE", "AE")
    parts.mempool.add(event)
    block = net.block(view, [event], proposer=PROPOSER).block
    value = block.header.hash
    proposal = Proposal.create(net.node_keys[PROPOSER], view.chain_id, 1, 0, value, -1, PROPOSER)

    async def lock() -> None:
        try:
            parts.driver.on_proposal(proposal, block.encode())
            parts.driver.on_peer_consensus(prevotes(net, value))
        finally:
            parts.proposals.stop()
            parts.driver.stop()

    asyncio.run(lock())
    assert parts.driver.core.locked == (0, value)
    view.store.close()

    restarted = Parts(net.view(on_disk=True))
    store = restarted.view.store
    assert store.height == 0 and len(restarted.mempool) == 0
    # It serves its lock's block to the peers that ask (/peer/candidate) ...
    assert restarted.proposals.candidate_block(value) == block.encode()
    assert restarted.proposals.is_valid(1, value) is True

    async def finish() -> None:
        try:
            restarted.driver.start()
            assert restarted.driver.core.locked == (0, value)
            # ... and the others' precommits for it make the height final with no fetch.
            restarted.driver.on_peer_consensus(precommits(net, value))
        finally:
            restarted.proposals.stop()
            restarted.driver.stop()

    asyncio.run(finish())
    assert store.height == 1 and store.head == block.header
    assert restarted.link.gets == []
    stored = store.event(event.event_id)
    assert stored is not None and stored.height == 1
    # The kept blocks went with the height, in the commit's batch.
    assert store.signed_blocks(1) == []


def test_votes_signed_by_a_key_of_no_validator_count_for_nothing(net: Net) -> None:
    """An observer's node key is no validator's: its precommits, even relayed by a validator's
    signed request and claiming a validator's index, never make a decision."""
    view = net.view()
    parts = Parts(view)
    block = net.block(view, [], proposer=PROPOSER).block
    value = block.header.hash
    parts.link.answers["/peer/candidate?value="] = lambda peer, path: block.encode()
    observer = SigningKey.generate()
    chain_id = net.events.chain_id
    forged = [
        Vote.create(observer, chain_id, VoteKind.PRECOMMIT, 1, 0, value, i).to_wire()
        for i in range(4)
    ]

    async def run() -> None:
        try:
            parts.driver.on_peer_consensus(precommits(net, value, (1, 2)) + forged)
            assert parts.driver.core.decision is None and view.store.height == 0
            parts.driver.on_peer_consensus(precommits(net, value, (3,)))
            assert parts.driver.core.decision is not None
            assert await parts.waiters.wait_for(1, 30) is True
        finally:
            parts.proposals.stop()
            parts.driver.stop()

    asyncio.run(run())
    assert view.store.head == block.header


def test_an_observing_driver_commits_a_synced_block_and_tells_nobody(net: Net) -> None:
    """An observer's driver (LedgerNode in role observer) writes what sync checked, wakes its
    listeners, and sends nothing: no commit certificate, no vote, the core never moved."""
    view = net.view()
    parts = Parts(view)
    parts.driver.observing = True
    execution = net.block(view, [net.events.issue("BE", "AE")], proposer=PROPOSER)
    cert = net.certificate(1, execution.block.header.hash)

    async def run() -> None:
        parts.driver.commit(execution, cert)

    asyncio.run(run())
    assert view.store.height == 1 and parts.heard == [(1, False)]
    assert parts.link.sent == [] and parts.own.attested == 0
    assert parts.driver.core.height == 1 and not parts.driver.core.running
