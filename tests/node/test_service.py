"""The node's handling of consensus messages, in process (no sockets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger import authoring
from ledger import governance as gov
from ledger.block import Block
from ledger.chain import build_block
from ledger.consensus import (
    CommitCertificate,
    ConflictingProposals,
    Proposal,
    Step,
    Vote,
    VoteKind,
    message_from_wire,
    proposer_for,
)
from ledger.encoding import decode
from ledger.errors import BadSignature, SignedByAnotherParticipant
from ledger.keys import SigningKey
from node.config import NodeConfig
from node.files import load_signing_key
from node.limits import RateLimiter
from node.netinit import init_network, parse_participants
from node.peers import Peer
from node.service import LedgerNode

CODES = ("BE", "AE", "IN", "RU")


def test_only_the_scheduled_proposers_signature_gets_a_block_executed(tmp_path: Path) -> None:
    init_network(tmp_path, parse_participants(",".join(CODES)), base_port=7700, chain_id="kp-p")
    node = LedgerNode(NodeConfig.load(tmp_path / "BE" / "node.toml"))
    try:
        proposer = proposer_for(1, 0, len(CODES))
        execution = build_block(
            node.store,
            node.registry,
            node.genesis.hash,
            None,
            [],
            chain_id=node.chain_id,
            time_ms=1_800_000_000_000,
            proposer=proposer,
        )
        value, block = execution.header.hash, execution.block.encode()

        def proposal(signer: str) -> Proposal:
            key = load_signing_key(tmp_path / signer / "node.pem")
            return Proposal.create(key, node.chain_id, 1, 0, value, -1, proposer)

        async def deliver() -> None:
            try:
                # Signed by another validator's node key: refused before the block is executed.
                node._on_proposal(proposal(CODES[(proposer + 1) % len(CODES)]), block)
                assert value not in node.candidates
                # The same block from its scheduled proposer is executed and kept.
                node._on_proposal(proposal(CODES[proposer]), block)
                assert value in node.candidates
            finally:
                await node.client.close()  # the prevote it sent opened the peer session

        asyncio.run(deliver())
    finally:
        node.store.close()


# --- proposals whose block is missing, equivocating proposers, decisions before the block ------


class Wire:
    """Stands in for the node's peer client: keeps what it sends and answers block fetches."""

    def __init__(self, node: LedgerNode) -> None:
        self.node = node
        self.sent: list[Any] = []
        #: Blocks the peers hold as candidates, by value.
        self.blocks: dict[bytes, bytes] = {}
        self.fetches = 0
        node.client.send = self.send  # type: ignore[method-assign]
        node.client.get = self.get  # type: ignore[method-assign]

    def send(
        self, peer: Peer, path: str, body: bytes, done: Callable[[bool], None] | None = None
    ) -> None:
        if path == "/peer/consensus":
            for item in decode(body):
                if item not in self.sent:
                    self.sent.append(item)

    async def get(self, peer: Peer, path: str, max_bytes: int) -> bytes | None:
        prefix = "/peer/candidate?value="
        if not path.startswith(prefix):
            return None
        self.fetches += 1
        answer = self.blocks.get(bytes.fromhex(path[len(prefix) :]))
        return answer if answer is None or len(answer) <= max_bytes else None  # as PeerClient

    def prevotes(self) -> list[bytes | None]:
        """The values of the node's own prevotes, in the order sent."""
        own = self.node.core.validator_index
        votes = [message_from_wire(i) for i in self.sent if i[0] == "vote"]
        return [
            v.value
            for v in votes
            if isinstance(v, Vote) and v.kind is VoteKind.PREVOTE and v.validator == own
        ]


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        await asyncio.sleep(0.005)


def network(tmp_path: Path) -> tuple[LedgerNode, dict[int, SigningKey]]:
    """BE's node (validator 0) of a fresh 4-validator network, and every validator's node key."""
    init_network(tmp_path, parse_participants(",".join(CODES)), base_port=7700, chain_id="kp-p")
    node = LedgerNode(NodeConfig.load(tmp_path / "BE" / "node.toml"))
    keys = {i: load_signing_key(tmp_path / code / "node.pem") for i, code in enumerate(CODES)}
    assert [k.public_bytes for k in keys.values()] == node.validator_keys
    return node, keys


def empty_block(node: LedgerNode, proposer: int, time_ms: int | None = None) -> Block:
    return build_block(
        node.store,
        node.registry,
        node.genesis.hash,
        None,
        [],
        chain_id=node.chain_id,
        time_ms=time_ms if time_ms is not None else int(time.time() * 1000) - 1_000,
        proposer=proposer,
    ).block


def test_a_proposal_relayed_without_its_block_is_fetched_not_prevoted_nil(tmp_path: Path) -> None:
    # Issue 13 F1: a relay without the block (resend by a node lacking it, or a byzantine one)
    # made the node prevote nil at once, as if the block were invalid.
    node, keys = network(tmp_path)
    proposer = proposer_for(1, 0, 4)
    block = empty_block(node, proposer)
    value = block.header.hash
    p = Proposal.create(keys[proposer], node.chain_id, 1, 0, value, -1, proposer)

    async def run() -> None:
        wire = Wire(node)
        try:
            node._on_proposal(p, b"")  # nobody has the block yet
            await until(lambda: not node._fetch_tasks)
            assert wire.fetches == 3  # the proposer, then the two others
            node._on_proposal(p, b"\x93garbage")
            node._on_proposal(p, [empty_block(node, proposer, 5).header.encoded, []])
            await until(lambda: not node._fetch_tasks)
            assert wire.prevotes() == [] and value not in node.candidates
            # A peer has it now: the next relay without it gets it fetched, and prevoted.
            wire.blocks[value] = block.encode()
            node._on_proposal(p, b"")
            await until(lambda: bool(wire.prevotes()))
            assert wire.prevotes() == [value]
        finally:
            await node.stop()

    asyncio.run(run())


def test_the_propose_timeout_judges_a_proposal_whose_block_never_comes(tmp_path: Path) -> None:
    node, keys = network(tmp_path)
    proposer = proposer_for(1, 0, 4)
    value = empty_block(node, proposer).header.hash
    p = Proposal.create(keys[proposer], node.chain_id, 1, 0, value, -1, proposer)

    async def run() -> None:
        wire = Wire(node)
        try:
            node._process(node.core.start(int(time.time() * 1000)))  # the node has work
            node._on_proposal(p, b"")
            await until(lambda: not node._fetch_tasks)
            assert wire.prevotes() == []
            node._process(node.core.on_timeout(Step.PROPOSE, 1, 0, int(time.time() * 1000)))
            assert wire.prevotes() == [None]
        finally:
            await node.stop()

    asyncio.run(run())


def test_a_conflicting_proposal_is_kept_as_evidence_and_not_executed(tmp_path: Path) -> None:
    # Issue 12 item 6: each conflicting proposal a byzantine proposer signed was executed in full.
    node, keys = network(tmp_path)
    proposer = proposer_for(1, 0, 4)
    now = int(time.time() * 1000)
    first, second = (
        empty_block(node, proposer, now - 2_000),
        empty_block(node, proposer, now - 1_000),
    )

    def proposal(block: Block) -> Proposal:
        return Proposal.create(keys[proposer], node.chain_id, 1, 0, block.header.hash, -1, proposer)

    async def run() -> None:
        wire = Wire(node)
        try:
            node._on_proposal(proposal(first), first.encode())
            assert node.candidates.get(first.header.hash) is not None
            assert wire.prevotes() == [first.header.hash]
            node._on_proposal(proposal(second), second.encode())
            node._on_proposal(proposal(second), b"")
            assert second.header.hash not in node.candidates  # not executed
            assert not node._fetch_tasks  # nor fetched
            assert wire.fetches == 0 and wire.prevotes() == [first.header.hash]
            (evidence,) = node.store.evidence()
            stored = ConflictingProposals.from_wire(decode(evidence))
            assert stored.verify(node.chain_id, node.validator_keys)
            assert {stored.proposal_a, stored.proposal_b} == {proposal(first), proposal(second)}
            # Issue 22: and it goes on the chain, for every node to check and act on.
            (reported,) = [e for e in node.mempool.events() if e.type == gov.EVIDENCE]
            assert reported.signer == "node/BE" and reported.body.evidence == stored
        finally:
            await node.stop()

    asyncio.run(run())


def decide_without_the_block(node: LedgerNode, keys: dict[int, SigningKey], value: bytes) -> None:
    precommits = [
        Vote.create(keys[i], node.chain_id, VoteKind.PRECOMMIT, 1, 0, value, i) for i in (1, 2, 3)
    ]
    node.on_peer_consensus([v.to_wire() for v in precommits])
    assert node.core.decision is not None and node.store.height == 0


def test_a_decision_reached_without_the_block_commits_when_the_block_arrives(
    tmp_path: Path,
) -> None:
    # Issue 13 F2: the node waited for the next sync pass instead.
    node, keys = network(tmp_path)
    proposer = proposer_for(1, 0, 4)
    block = empty_block(node, proposer)
    value = block.header.hash

    async def run() -> None:
        wire = Wire(node)
        try:
            decide_without_the_block(node, keys, value)
            await until(lambda: not node._fetch_tasks)  # no peer had it as a candidate
            assert wire.fetches == 3 and node.store.height == 0
            p = Proposal.create(keys[proposer], node.chain_id, 1, 0, value, -1, proposer)
            node._on_proposal(p, block.encode())  # the proposal, late
            assert node.store.height == 1 and node.store.head == block.header
            assert node.core.height == 2
        finally:
            await node.stop()

    asyncio.run(run())


def test_a_decision_reached_without_the_block_fetches_it_from_a_peer(tmp_path: Path) -> None:
    node, keys = network(tmp_path)
    block = empty_block(node, proposer_for(1, 0, 4))
    value = block.header.hash

    async def run() -> None:
        wire = Wire(node)
        wire.blocks[value] = block.encode()
        try:
            decide_without_the_block(node, keys, value)
            await until(lambda: node.store.height == 1)
            assert node.store.head == block.header and wire.fetches == 1  # the proposer had it
        finally:
            await node.stop()

    asyncio.run(run())


# --- events refused after they were accepted ----------------------------------------------------


def test_events_refused_after_acceptance_because_of_a_rotation_read_back_as_rejected(
    tmp_path: Path,
) -> None:
    """Issue 22: events refused after acceptance because their key was rotated read back as
    event_not_found. Whether the node held them (refused when the rotation took effect) or a
    peer relays them after it, GET /v1/events/{id} says rejected, with the reason."""
    node, keys = network(tmp_path)
    old = load_signing_key(tmp_path / "BE" / "authority.pem")
    new = SigningKey.generate()
    created = int(time.time() * 1000)

    def proposal(days: int) -> Any:
        return authoring.propose(
            node.chain_id, "BE", gov.SET_PARAMETER, "", ["max_validity_days", days], 50, old,
            created_ms=created + days,
        )  # fmt: skip

    async def run() -> None:
        Wire(node)
        try:
            rotation = authoring.rotate_key(
                node.chain_id, "BE", gov.AUTHORITY, new, old, created_ms=created
            )
            held, relayed = proposal(100), proposal(101)
            assert node.submit(rotation).status == "pending"
            assert node.submit(held).status == "pending"  # the old key is in force still
            execution = build_block(
                node.reader, node.registry, node.genesis.hash, None, [rotation],
                chain_id=node.chain_id, time_ms=created, proposer=proposer_for(1, 0, 4),
            )  # fmt: skip
            header = execution.header
            votes = [
                Vote.create(keys[i], node.chain_id, VoteKind.PRECOMMIT, 1, 0, header.hash, i)
                for i in range(3)
            ]
            node._commit(execution, CommitCertificate.from_precommits(votes))
            for event in (held, relayed):
                if event is relayed:
                    node.on_peer_events([relayed.encoded])  # a peer still behind sends it
                status = node.event_status(event.event_id)
                assert status is not None and status.status == "rejected", (
                    event is relayed,
                    status,
                )
                assert status.error == "bad_signature" and status.message
        finally:
            await node.stop()

    asyncio.run(run())


def test_whose_key_made_a_bad_signature_is_looked_up_only_within_the_budget(
    tmp_path: Path,
) -> None:
    """The search through the register's keys costs a verification per key: a node spends it
    from a budget, so a flood of forged events cannot cost a register's worth each."""
    node, _ = network(tmp_path)
    ru = load_signing_key(tmp_path / "RU" / "authority.pem")
    created = int(time.time() * 1000)

    def forged(days: int) -> Any:  # names BE as its signer, signed with RU's authority key
        return authoring.propose(
            node.chain_id, "BE", gov.SET_PARAMETER, "", ["max_validity_days", days], 50, ru,
            created_ms=created,
        )  # fmt: skip

    async def run() -> None:
        Wire(node)
        try:
            try:
                node.submit(forged(100))
                raise AssertionError("a forged event was accepted")
            except SignedByAnotherParticipant as exc:
                assert "signed by RU's authority key" in exc.message
            node._attributions = RateLimiter(1e-9, 1)  # spent: no search is granted
            try:
                node.submit(forged(101))
                raise AssertionError("a forged event was accepted")
            except BadSignature as exc:
                assert type(exc) is BadSignature
        finally:
            await node.stop()

    asyncio.run(run())
