"""Proposed blocks, in process: the value this node proposes, and obtaining and judging the
blocks others propose (whole, from our mempool, awaited, fetched), decided ones included."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ledger.block import Block
from ledger.chain import Execution
from ledger.consensus import CommitCertificate, Proposal, proposer_for
from ledger.events import Event
from node.mempool import Mempool
from node.metrics import Metrics
from node.peers import Peer
from node.service.proposals import Proposals
from node.service.view import ChainView
from tests.node.service.conftest import Link, Net, Refusals

PROPOSER = proposer_for(1, 0, 4)


class Sink:
    """Stands in for the driver: keeps what proposals report."""

    def __init__(self) -> None:
        self.judgements: list[tuple[int, bytes]] = []
        self.committed: list[tuple[Execution, CommitCertificate]] = []

    def judged(self, height: int, value: bytes) -> None:
        self.judgements.append((height, value))

    def commit(self, execution: Execution, cert: CommitCertificate) -> None:
        self.committed.append((execution, cert))


def proposals_of(view: ChainView) -> tuple[Proposals, Link, Refusals, Sink]:
    link, refusals, sink = Link(), Refusals(), Sink()
    proposals = Proposals(view, Mempool(1000), refusals, link, Metrics())
    proposals.report_to(sink)
    return proposals, link, refusals, sink


def proposed(net: Net, view: ChainView, events: list[Event]) -> tuple[Proposal, Block]:
    """The block the scheduled proposer of height 1 builds of `events`, and its proposal."""
    block = net.block(view, events, proposer=PROPOSER).block
    value = block.header.hash
    proposal = Proposal.create(net.node_keys[PROPOSER], view.chain_id, 1, 0, value, -1, PROPOSER)
    return proposal, block


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        await asyncio.sleep(0.005)


def test_the_proposed_block_holds_what_applies_and_the_rest_is_refused(net: Net) -> None:
    view = net.view()
    taken = net.events.issue("BE", "AE")
    net.commit(view, [taken])
    proposals, _, refusals, _ = proposals_of(view)
    good = net.events.issue("BE", "AE")
    rival = net.events.issue("BE", "IN", number=taken.body.facts.number)
    proposals.mempool.add(good)
    proposals.mempool.add(rival)
    assert proposals.propose_value(1, 0, 0) is None  # not the next height
    value = proposals.propose_value(2, 0, 0)
    assert value is not None
    execution = proposals.candidates[value]
    assert execution is not None and execution.block.events == (good,)
    assert [(e, x.code) for e, x in refusals.refused] == [(rival, "certificate_number_taken")]
    assert proposals.is_valid(2, value) is True and proposals.is_valid(3, value) is False
    assert proposals.candidate_block(value) == execution.block.encode()
    assert proposals.compact(value) == [execution.header.encoded, [good.event_id]]


def test_with_nothing_pending_and_a_recent_head_there_is_nothing_to_propose(net: Net) -> None:
    view = net.view()
    net.commit(view, [])
    proposals, _, _, _ = proposals_of(view)
    assert proposals.propose_value(2, 0, 0) is None
    assert proposals.candidates == {}


def test_a_compact_proposal_is_judged_from_the_mempool(net: Net) -> None:
    view = net.view()
    proposals, link, _, sink = proposals_of(view)
    events = [net.events.issue("BE", "AE") for _ in range(2)]
    for event in events:
        proposals.mempool.add(event)
    proposal, block = proposed(net, view, events)
    assert proposals.is_valid(1, proposal.value) is None  # not judged yet
    proposals.obtain(proposal, [block.header.encoded, [e.event_id for e in events]], 0)
    assert sink.judgements == [(1, proposal.value)]
    assert proposals.is_valid(1, proposal.value) is True
    assert link.gets == []  # nothing fetched


def test_a_block_naming_another_proposer_is_judged_invalid(net: Net) -> None:
    view = net.view()
    proposals, _, _, sink = proposals_of(view)
    block = net.block(view, [], proposer=(PROPOSER + 1) % 4).block
    value = block.header.hash
    proposal = Proposal.create(net.node_keys[PROPOSER], view.chain_id, 1, 0, value, -1, PROPOSER)
    proposals.obtain(proposal, block.encode(), 0)
    assert sink.judgements == [(1, value)] and proposals.is_valid(1, value) is False
    assert proposals.candidate_block(value) is None


def test_a_block_whose_events_are_not_here_is_awaited_then_fetched(net: Net) -> None:
    view = net.view()
    proposals, link, _, sink = proposals_of(view)
    events = [net.events.issue("BE", "AE")]
    proposal, block = proposed(net, view, events)
    served: list[str] = []

    def candidate(peer: Peer, path: str) -> bytes | None:
        served.append(peer.address)
        return block.encode() if peer.node_key == net.node_keys[PROPOSER].public_bytes else None

    link.answers["/peer/candidate?value="] = candidate

    async def run() -> None:
        proposals.obtain(proposal, [block.header.encoded, [events[0].event_id]], 0)
        assert sink.judgements == [] and proposals.fetch_tasks
        await until(lambda: not proposals.fetch_tasks)

    asyncio.run(run())
    # The proposer is asked first, and has it.
    assert len(served) == 1 and sink.judgements == [(1, proposal.value)]
    assert proposals.is_valid(1, proposal.value) is True


def test_a_second_value_in_a_round_is_neither_executed_nor_fetched(net: Net) -> None:
    view = net.view()
    proposals, link, _, sink = proposals_of(view)
    first, first_block = proposed(net, view, [])
    proposals.obtain(first, first_block.encode(), 0)
    other = net.block(view, [net.events.issue("BE", "AE")], proposer=PROPOSER).block
    second = Proposal.create(
        net.node_keys[PROPOSER], view.chain_id, 1, 0, other.header.hash, -1, PROPOSER
    )
    proposals.obtain(second, other.encode(), 0)
    proposals.obtain(second, b"", 0)
    assert sink.judgements == [(1, first.value)]
    assert other.header.hash not in proposals.candidates and not proposals.fetch_tasks
    assert link.gets == []


def test_a_decided_block_is_fetched_and_handed_over_for_commit(net: Net) -> None:
    view = net.view()
    proposals, link, _, sink = proposals_of(view)
    _, block = proposed(net, view, [net.events.issue("BE", "AE")])
    cert = net.certificate(1, block.header.hash)
    link.answers["/peer/candidate?value="] = lambda peer, path: block.encode()

    async def run() -> None:
        proposals.await_decision(1, block.header.hash, cert)
        await until(lambda: not proposals.fetch_tasks)

    asyncio.run(run())
    ((execution, committed),) = sink.committed
    assert execution.block == block and committed == cert
    assert sink.judgements == []  # final: committed, not judged
    proposals.height_done()
    assert proposals.candidates == {} and proposals.is_valid(1, block.header.hash) is None
