"""The consensus driver: feeds the core its messages and timeouts, carries out its actions, and
commits what it decides, one explicit step after another."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from ledger.chain import Execution
from ledger.consensus import (
    Action,
    Broadcast,
    CommitCertificate,
    ConflictingProposals,
    ConsensusCore,
    Decide,
    EquivocationEvidence,
    Persist,
    Proposal,
    ReportEvidence,
    ScheduleTimeout,
    SignerState,
    TimeoutConfig,
    Vote,
    message_from_wire,
)
from ledger.encoding import decode, encode
from ledger.errors import LedgerError, MalformedInput
from node.clock import now_ms
from node.mempool import Mempool
from node.metrics import Metrics
from node.service.proposals import HEARTBEAT_MS, Proposals
from node.service.sync import PeerHeights
from node.service.view import ChainView, PeerLink

log = logging.getLogger("kpledger.node")

#: While a passed governance change waits for its effective height, empty blocks come this often
#: (an idle chain would otherwise never reach that height).
WAITING_BLOCK_MS = 200
RESEND_MS = 1000

#: Told after each commit: the block's execution, and whether the register changed with it.
CommitListener = Callable[[Execution, bool], None]


class Settlement(Protocol):
    """The durable mempool as a commit settles a block's events (node/service/durable.py)."""

    def stored(self, event_ids: list[bytes]) -> list[bytes]: ...

    def forget(self, event_ids: list[bytes]) -> list[bytes]: ...


class GossipFlush(Protocol):
    """Event gossip, flushed before a proposal leaves (node/service/gossip.py)."""

    def flush(self) -> None: ...


class OwnEvents(Protocol):
    """The events this node signs itself (node/service/own_events.py)."""

    def attest_ready(self) -> object: ...

    def report_evidence(self, evidence: EquivocationEvidence | ConflictingProposals) -> None: ...


def timeouts_of(view: ChainView) -> TimeoutConfig:
    """The core's timeouts, from the parameters in force (governance may have changed them)."""
    params = view.registry.parameters
    return TimeoutConfig(
        propose_ms=params.timeout_propose_ms,
        propose_delta_ms=params.timeout_delta_ms,
        prevote_ms=params.timeout_vote_ms,
        prevote_delta_ms=params.timeout_delta_ms,
        precommit_ms=params.timeout_vote_ms,
        precommit_delta_ms=params.timeout_delta_ms,
    )


class ConsensusDriver:
    """Everything runs on one asyncio loop, one step at a time: a message or a timer in, the
    core's actions out (Persist before the Broadcast it guards, as the core orders them)."""

    def __init__(
        self,
        view: ChainView,
        mempool: Mempool,
        proposals: Proposals,
        settlement: Settlement,
        gossip: GossipFlush,
        own_events: OwnEvents,
        heights: PeerHeights,
        link: PeerLink,
        metrics: Metrics,
        block_delay_ms: int,
    ) -> None:
        self.view = view
        self.mempool = mempool
        self.proposals = proposals
        self.settlement = settlement
        self.gossip = gossip
        self.own_events = own_events
        self.heights = heights
        self.link = link
        self.metrics = metrics
        self.block_delay_ms = block_delay_ms
        #: An observer's driver only commits what sync checked: it takes part in no consensus
        #: (its core is never started or fed) and tells nobody of a block (LedgerNode).
        self.observing = False
        self._committed: list[CommitListener] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._start_handle: asyncio.TimerHandle | None = None
        #: The (height, round) whose proposals' blocks were last sought (_fetch_awaited).
        self._sought_at = (0, 0)
        self.timeouts = timeouts_of(view)
        self.core = self._new_core()

    def on_commit(self, listener: CommitListener) -> None:
        """Call `listener` after each block is written, before the core moves to the next
        height (admission rechecks the mempool; the height waiters wake)."""
        self._committed.append(listener)

    def _new_core(self) -> ConsensusCore:
        view = self.view
        raw = view.store.signer_state()
        state = SignerState.from_wire(decode(raw)) if raw is not None else None
        return ConsensusCore(
            view.chain_id,
            view.validator_keys,
            # Always the key: a node that governance makes a validator later signs from then on.
            view.node_key,
            self,
            view.store.height + 1,
            self.timeouts,
            state,
            next_validators=view.expected_next_validators(),
        )

    # -- the Application protocol of the consensus core ---------------------------------------
    def propose_value(self, height: int, round: int) -> bytes | None:
        return self.proposals.propose_value(height, round, self.core.validator_index or 0)

    def is_valid(self, height: int, value: bytes) -> bool | None:
        return self.proposals.is_valid(height, value)

    # -- what proposals report (ProposalSink) ----------------------------------------------------
    def judged(self, height: int, value: bytes) -> None:
        self.process(self.core.on_validity(height, value, now_ms()))

    # -- running ---------------------------------------------------------------------------------
    def loop(self) -> asyncio.Task[None]:
        """Start the resend loop (the node's heart); the caller cancels it at stop."""
        return asyncio.get_running_loop().create_task(self._resend_loop())

    def start(self) -> None:
        # A restarted validator resumes the height it was voting in (its signed votes are on
        # disk). A state of an earlier height only says it once voted: starting a round then,
        # with nothing to propose, would pull every validator into empty rounds.
        if self._voting_height() == self.view.store.height + 1 or len(self.mempool):
            self.process(self.core.start(now_ms()))

    def _voting_height(self) -> int | None:
        raw = self.view.store.signer_state()
        return None if raw is None else SignerState.from_wire(decode(raw)).height

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._start_handle is not None:
            self._start_handle.cancel()

    async def _resend_loop(self) -> None:
        while True:
            await asyncio.sleep(RESEND_MS / 1000)
            try:
                if self.core.running:
                    self.process(self.core.resend(now_ms()))
                    self._fetch_awaited()
                elif len(self.mempool):
                    self.schedule_start()
                elif self.view.is_validator and self._heartbeat_due():
                    self.process(self.core.start(now_ms()))
                elif self.view.is_validator and self.view.change_waiting():
                    self.schedule_start()
                self.own_events.attest_ready()
            except Exception:  # a bug here must not stop the node's heart
                log.exception("resend failed")

    def _heartbeat_due(self) -> bool:
        head = self.view.store.head
        return head is not None and now_ms() - head.time_ms > HEARTBEAT_MS

    def schedule_start(self) -> None:
        """Start a height soon: there are events to propose, or a passed change waits."""
        if self.core.running or self._start_handle is not None or not self.view.is_validator:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._start_handle = None
            if len(self.mempool) or self.view.change_waiting():
                self.process(self.core.start(now_ms()))

        delay_ms = self.block_delay_ms if len(self.mempool) else WAITING_BLOCK_MS
        self._start_handle = loop.call_later(delay_ms / 1000, fire)

    # -- consensus messages -------------------------------------------------------------------
    def on_peer_consensus(self, items: list[Any]) -> None:
        """Messages from a peer whose request signature was already checked."""
        for item in items:
            try:
                if not isinstance(item, list) or not item:
                    raise MalformedInput("a consensus item is a list")
                if item[0] == "proposal" and len(item) == 3:
                    self.on_proposal(Proposal.from_wire(item[1]), item[2])
                    continue
                message = message_from_wire(item)
                if isinstance(message, Vote) and message.height > self.core.height:
                    self.heights.note(message.height - 1)
                if isinstance(message, CommitCertificate):
                    self._on_commit_certificate(message)
                    continue
                self.process(self.core.on_message(message, now_ms()))
            except LedgerError as exc:
                log.debug("peer message ignored", extra={"reason": exc.message})

    def on_proposal(self, proposal: Proposal, block_data: Any) -> None:
        view = self.view
        current = view.store.height + 1
        if proposal.height > current:
            self.heights.note(proposal.height - 1)
        elif proposal.height == current and proposal.value not in self.proposals.candidates:
            # Only the scheduled proposer's signed proposal is worth executing a block for: a
            # forged or misrouted one must not cost us the block's re-execution (or a fetch).
            if not proposal.verify(view.chain_id, view.validator_keys):
                log.warning(
                    "proposal refused: not signed by the proposer of height %d round %d",
                    proposal.height,
                    proposal.round,
                )
                return
            self.proposals.obtain(proposal, block_data, self.core.round)
        # The core gets it even while its block is on its way: it waits for the block (is_valid
        # answers None) and never takes "not here yet" for "invalid".
        self.process(self.core.on_proposal(proposal, now_ms()))

    def _on_commit_certificate(self, cert: CommitCertificate) -> None:
        height = self.view.store.height
        if cert.height == height + 1 and cert.value in self.proposals.candidates:
            self.process(self.core.on_commit(cert, now_ms()))
        elif cert.height > height:
            self.heights.note(cert.height)

    # -- the core's actions -------------------------------------------------------------------
    def process(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                self._persist(action.state)
            elif isinstance(action, Broadcast):
                self._broadcast(action.message)
            elif isinstance(action, ScheduleTimeout):
                self._schedule_timeout(action)
            elif isinstance(action, Decide):
                self._decide(action)
            elif isinstance(action, ReportEvidence):
                self.metrics.evidence.inc()
                self.view.store.note_evidence(encode(action.evidence.to_wire()))
                log.warning("equivocation detected", extra={"validator": action.evidence.validator})
                self.own_events.report_evidence(action.evidence)
        if (self.core.height, self.core.round) != self._sought_at:
            self._sought_at = (self.core.height, self.core.round)
            self._fetch_awaited()
        self.metrics.round.set(self.core.round)

    def _persist(self, state: SignerState) -> None:
        """The signer state, and the blocks of the values it signed for, durable in one synced
        batch before the vote that depends on them leaves (Tendermint stores a block's parts
        before it signs for it): after a crash of every validator, a lock still has its block."""
        blocks = self.proposals.blocks_to_keep(state)
        self.view.store.put_signer_state(encode(state.to_wire()), blocks, at=state.height)
        self.proposals.kept(blocks)

    def _fetch_awaited(self) -> None:
        """Fetch the blocks of the current round's proposals that the core holds without them
        (one from far ahead or replayed from the next-height buffer, a fetch that failed): the
        block may have reached a peer since."""
        height = self.view.store.height
        for proposal in self.core.current_proposals():
            if proposal.height == height + 1 and proposal.value not in self.proposals.candidates:
                self.proposals.obtain(proposal, None, self.core.round)

    def _broadcast(self, message: Proposal | Vote | CommitCertificate) -> None:
        if isinstance(message, Proposal):
            # The peers hold the events already (gossip): the header and the event ids say which
            # block it is. Whoever lacks an event fetches the whole block (/peer/candidate).
            self.gossip.flush()
            compact: Any = self.proposals.compact(message.value)
            if compact is None:
                if message.proposer != self.core.validator_index:
                    # A relay without the block would only make each peer fetch it: the peers
                    # that have it relay it (issue 13 F1).
                    return
                compact = b""
            item: list[Any] = ["proposal", message.to_wire(), compact]
        else:
            item = message.to_wire()
        self._send_peers(encode([item]))

    def _send_peers(self, body: bytes) -> None:
        for peer in self.view.peers:
            self.link.send(peer, "/peer/consensus", body)

    def _schedule_timeout(self, action: ScheduleTimeout) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, (action.at_ms - now_ms()) / 1000)

        def fire() -> None:
            self.process(self.core.on_timeout(action.step, action.height, action.round, now_ms()))

        self._timers = [t for t in self._timers if not t.cancelled()][-64:]
        self._timers.append(loop.call_later(delay, fire))

    def _decide(self, decision: Decide) -> None:
        execution = self.proposals.candidates.get(decision.value)
        if execution is None or decision.height != self.view.store.height + 1:
            self.heights.note(decision.height)
            self.proposals.await_decision(decision.height, decision.value, decision.certificate)
            return
        self.commit(execution, decision.certificate)

    # -- a commit, step by step ---------------------------------------------------------------
    def commit(self, execution: Execution, cert: CommitCertificate) -> None:
        """Write a final block, then move everything that depends on it to the next height."""
        ids = [e.event_id for e in execution.block.events]
        # The block's events leave the pending family in the batch that makes them final.
        self.view.store.commit(
            execution, encode(cert.to_wire()), pending_done=self.settlement.stored(ids)
        )
        register_changed = self.view.committed(execution)
        self._settle(ids)
        self._count(execution, ids)
        for listener in self._committed:
            listener(execution, register_changed)
        self.proposals.height_done()
        log.info(
            "block final",
            extra={
                "height": execution.header.height,
                "events": len(ids),
                "hash": execution.header.hash.hex()[:16],
            },
        )
        if self.observing:
            return
        self._advance(execution.header.height, cert)
        self.own_events.attest_ready()

    def _settle(self, ids: list[bytes]) -> None:
        """The block's events leave the mempool and the book; their latency is observed."""
        admitted = self.mempool.remove(ids)
        self.settlement.forget(ids)
        now = time.monotonic()
        for t in admitted:
            self.metrics.finality.observe(now - t)

    def _count(self, execution: Execution, ids: list[bytes]) -> None:
        self.metrics.blocks.inc()
        self.metrics.events_final.inc(len(ids))
        self.metrics.height.set(execution.header.height)

    def _advance(self, height: int, cert: CommitCertificate) -> None:
        """The core moves to the next height; the peers and observers hear of the block."""
        view = self.view
        self.process(
            self.core.advance(
                height + 1, view.validator_keys, now_ms(), view.expected_next_validators()
            )
        )
        # Tell the peers at once, so that one that missed the votes fetches the block.
        self._broadcast(cert)
        if view.is_validator:
            body = encode([cert.to_wire()])
            for observer in view.observers:
                self.link.send(observer, "/peer/consensus", body)
        if len(self.mempool) or view.change_waiting():
            self.schedule_start()


class HeightWaiters:
    """Requests waiting for the chain to reach a height (a commit listener)."""

    def __init__(self, view: ChainView) -> None:
        self.view = view
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def wait_for(self, height: int, timeout: float) -> bool:
        """True once the chain is at `height` or beyond; False if `timeout` seconds pass first."""
        if self.view.store.height >= height:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((height, future))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False

    def committed(self, execution: Execution, register_changed: bool) -> None:
        height = execution.header.height
        for waiter_height, future in list(self._waiters):
            if waiter_height <= height and not future.done():
                future.set_result(None)
        self._waiters = [(h, f) for h, f in self._waiters if not f.done()]
