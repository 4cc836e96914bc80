"""Proposed blocks of the current height: the value this node proposes, and obtaining and
judging the blocks other proposers name (from the proposal, from our mempool, or fetched)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from ledger.block import Block, Header
from ledger.chain import Execution, build_block, validate_block
from ledger.consensus import (
    MAX_FUTURE_ROUNDS_PER_VALIDATOR,
    CommitCertificate,
    Proposal,
    SignerState,
    proposer_for,
)
from ledger.errors import InvalidBlock, LedgerError, MalformedInput
from ledger.events import Event
from node.clock import now_ms
from node.mempool import Mempool
from node.metrics import Metrics
from node.peers import final_block_bound
from node.service.view import ChainView, PeerLink

log = logging.getLogger("kpledger.node")

#: With nothing to do, a block still comes every so often, so a proof's header is never old.
HEARTBEAT_MS = 10 * 60 * 1000
#: How long a proposal naming events not here yet waits for them before fetching its block.
GOSSIP_WAIT_STEPS = 5
GOSSIP_WAIT_STEP_S = 0.01

#: What _proposed_block answers when the proposal names events our mempool lacks.
_MISSING_EVENTS = object()


class Refusals(Protocol):
    """Where events a block leaves out are recorded as refused (admission)."""

    def refuse(self, refused: Iterable[tuple[Event, LedgerError]]) -> None: ...


class ProposalSink(Protocol):
    """Who hears that a proposed block was judged or a decided one arrived (the driver)."""

    def judged(self, height: int, value: bytes) -> None:
        """The block of `value` was executed: `is_valid` now answers for it."""
        ...

    def commit(self, execution: Execution, cert: CommitCertificate) -> None:
        """A decided block arrived and applies: write it."""
        ...


class Proposals:
    """The candidate blocks of one height. The core asks `propose_value` and `is_valid` (its
    Application protocol, through the driver); the driver hands it every signed proposal."""

    def __init__(
        self,
        view: ChainView,
        mempool: Mempool,
        refusals: Refusals,
        link: PeerLink,
        metrics: Metrics,
    ) -> None:
        self.view = view
        self.mempool = mempool
        self.refusals = refusals
        self.link = link
        self.metrics = metrics
        self._sink: ProposalSink | None = None
        #: Proposed blocks of the current height that we judged: their execution, or None when
        #: the block is invalid. A value not here is one whose block we do not have (yet).
        self.candidates: dict[bytes, Execution | None] = {}
        #: Proposed blocks being awaited (events in flight) or fetched whole, by value.
        self._judging: dict[bytes, asyncio.Task[None]] = {}
        #: The first value proposed in each round of the current height: the only one of the
        #: round whose block is executed or fetched. A second one is an equivocation: the core
        #: keeps both as evidence, and it costs us no execution.
        self._round_values: dict[int, bytes] = {}
        self.fetch_tasks: set[asyncio.Task[None]] = set()
        #: A decision whose block we have not seen: committed as soon as the block arrives.
        self._pending_decision: tuple[bytes, CommitCertificate] | None = None
        #: Candidates whose block is on disk (the store's signed blocks of the current height).
        self._kept: set[bytes] = set()
        self._restore_kept()

    def report_to(self, sink: ProposalSink) -> None:
        """Name who hears of judged and decided blocks (the driver, built after this part)."""
        self._sink = sink

    @property
    def sink(self) -> ProposalSink:
        if self._sink is None:
            raise RuntimeError("proposals report to nobody: report_to() was not called")
        return self._sink

    # -- the core's Application protocol -------------------------------------------------------
    def propose_value(self, height: int, round: int, proposer: int) -> bytes | None:
        """Build a block of pending events (or a heartbeat block when one is due) and keep it
        as a candidate; its hash is the value. None when there is nothing to propose."""
        view = self.view
        if height != view.store.height + 1:
            return None
        params = view.registry.parameters
        recovery = view.recovery_event(height)
        first = [] if recovery is None else [recovery]
        events = first + self.mempool.take(
            params.max_block_events - len(first),
            params.max_block_bytes - sum(len(e.encoded) for e in first),
        )
        head = view.store.head
        heartbeat_due = head is None or now_ms() - head.time_ms > HEARTBEAT_MS
        heartbeat_due = heartbeat_due or view.change_waiting() or recovery is not None
        if not events and not heartbeat_due:
            return None
        try:
            execution = build_block(
                view.reader,
                view.registry,
                view.genesis.hash,
                head,
                events,
                chain_id=view.chain_id,
                time_ms=now_ms(),
                proposer=proposer,
                verified={e.event_id for e in events[len(first) :]},  # checked on admission
            )
        except InvalidBlock as exc:
            # Only a recovery this node was given can make its own block invalid (the recovery
            # refused now: it is checked when given, so this is a bug or a changed head).
            log.error("no block proposed: %s", exc.message)
            return None
        self.refusals.refuse(execution.refused)
        if not execution.block.events and not heartbeat_due:
            return None
        value = execution.header.hash
        self.candidates[value] = execution
        return value

    def is_valid(self, height: int, value: bytes) -> bool | None:
        if height != self.view.store.height + 1:
            return False
        if value not in self.candidates:
            return None  # no copy of the block yet: being fetched, or never to be executed
        return self.candidates[value] is not None

    # -- what the driver and the peers ask -----------------------------------------------------
    def held_execution(self, value: bytes) -> Execution | None:
        """Our execution of the block of `value` proposed at the current height, if we judged
        it valid (catch-up then commits it as it is, when it arrives final)."""
        return self.candidates.get(value)

    def candidate_block(self, value: bytes) -> bytes | None:
        """The encoding of a block proposed at the current height that we found valid."""
        execution = self.candidates.get(value)
        return execution.block.encode() if execution is not None else None

    def compact(self, value: bytes) -> list[Any] | None:
        """A candidate as its proposal carries it: its header and its event ids (the peers hold
        the events already, by gossip). None when we hold no valid copy."""
        execution = self.candidates.get(value)
        if execution is None:
            return None
        return [execution.header.encoded, [e.event_id for e in execution.block.events]]

    # -- the blocks behind our votes, kept on disk ----------------------------------------------
    def blocks_to_keep(self, state: SignerState) -> dict[bytes, bytes]:
        """The blocks (value -> bytes) of the values `state` locks on, holds as valid or signed
        for, that are not on disk yet: the driver writes them with `state`, before the vote
        leaves. A lock on a block that a crash took from memory would leave the height stuck:
        the lock forbids prevoting any other value, and nobody could re-propose or serve it."""
        if state.height != self.view.store.height + 1:
            return {}
        values = {state.locked_value, state.valid_value, *(m.value for m in state.signed)}
        blocks: dict[bytes, bytes] = {}
        for value in values:
            if value is None or value in self._kept:
                continue
            execution = self.candidates.get(value)
            if execution is not None:
                blocks[value] = execution.block.encode()
        return blocks

    def kept(self, values: Iterable[bytes]) -> None:
        """The blocks of `values` are on disk (blocks_to_keep's, written)."""
        self._kept.update(values)

    def _restore_kept(self) -> None:
        """Take back the blocks kept for the height we were voting in before a restart, as the
        judged candidates they were: we can re-propose our valid value and serve our lock's
        block to the peers that need it (/peer/candidate)."""
        height = self.view.store.height + 1
        for value, block_bytes in self.view.store.signed_blocks(height):
            try:
                block = Block.decode(
                    block_bytes, max_events=self.view.registry.parameters.max_block_events
                )
                if block.header.hash != value:
                    raise InvalidBlock("a kept block is not the block of its value")
                self.candidates[value] = self.execute(block)
            except LedgerError as exc:
                # Judged valid before it was written: only a damaged store gets here.
                log.error("kept block not restored", extra={"reason": exc.message})
                continue
            self._kept.add(value)

    def height_done(self) -> None:
        """The height was committed: its candidates, decision and searches are over."""
        self.candidates.clear()
        self._kept.clear()  # the commit's batch deleted them from disk
        self._pending_decision = None
        self._round_values.clear()
        for task in self._judging.values():
            task.cancel()  # blocks of the height just committed
        self._judging.clear()

    def stop(self) -> None:
        for task in self.fetch_tasks:
            task.cancel()

    # -- obtaining and judging a proposed block ------------------------------------------------
    def obtain(self, proposal: Proposal, block_data: Any, current_round: int) -> None:
        """Judge the block a proposal names, from the data that came with it if that is the
        very block, else once its events are here or it is fetched whole."""
        value = proposal.value
        if value in self._judging:
            block = self._proposed_block(proposal, block_data)
            if isinstance(block, Block):
                self._judge(proposal, block)  # a whole copy came while we waited
            return
        first = self._round_values.get(proposal.round)
        if first is not None and first != value:
            log.warning(
                "conflicting proposal not executed",
                extra={"height": proposal.height, "round": proposal.round},
            )
            return
        if proposal.round > current_round + MAX_FUTURE_ROUNDS_PER_VALIDATOR:
            return  # far ahead of us: judged if and when we get to that round
        self._round_values[proposal.round] = value
        block = self._proposed_block(proposal, block_data)
        if isinstance(block, Block):
            self._judge(proposal, block)
            return
        # Missing, garbage, or another block's bytes (a relay without the block, a byzantine
        # one): wait for the events in flight if we know which, else fetch the block.
        compact = block_data if block is _MISSING_EVENTS else None
        self._search(value, self._await_block(proposal, compact))

    def _search(self, value: bytes, work: Coroutine[Any, Any, None]) -> None:
        """Run the search for the block of `value` (one at a time per value)."""
        task = asyncio.get_running_loop().create_task(work)
        self._judging[value] = task
        self.fetch_tasks.add(task)
        task.add_done_callback(self.fetch_tasks.discard)

    def _judge(self, proposal: Proposal, block: Block) -> None:
        """Execute the proposed block; tell the core, or commit it if it was already decided."""
        value = proposal.value
        task = self._judging.pop(value, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        pending = self._pending_decision
        if pending is not None and pending[0] == value:
            # Final already: commit it now rather than at the next sync pass.
            self._commit_decided(block, pending[1])
            return
        self.candidates[value] = self._check_proposed_block(proposal, block)
        self.sink.judged(proposal.height, value)

    def _proposed_block(self, proposal: Proposal, block_data: Any) -> Block | object | None:
        """The block a proposal names, from its whole encoding or from its header and event ids
        (the events taken from our mempool); _MISSING_EVENTS when some are not here; None when
        the data is not that block (its header or its events are another block's)."""
        max_events = self.view.registry.parameters.max_block_events
        try:
            if isinstance(block_data, list) and len(block_data) == 2:
                header_bytes, ids = block_data
                if not isinstance(header_bytes, bytes) or not isinstance(ids, list):
                    raise MalformedInput("a compact block is [header, [event ids]]")
                if len(ids) > max_events:
                    raise InvalidBlock(f"a block holds at most {max_events} events")
                header = Header.decode(header_bytes)
                if header.hash != proposal.value:
                    return None
                events = []
                for event_id in ids:
                    event = self.mempool.get(event_id) if isinstance(event_id, bytes) else None
                    if event is None:
                        return _MISSING_EVENTS
                    events.append(event)
                block = Block(header, tuple(events))
                # Event ids that are not the header's make another block, not an invalid one.
                block.check_body()
                return block
            if not isinstance(block_data, bytes) or not block_data:
                return None
            block = Block.decode(block_data, max_events=max_events)
        except LedgerError as exc:
            log.warning("undecodable proposed block", extra={"reason": exc.message})
            return None
        return block if block.header.hash == proposal.value else None

    async def _await_block(self, proposal: Proposal, compact: list[Any] | None) -> None:
        """The events a proposal names are usually on their way here by gossip (HTTP requests
        overtake one another): wait for them a moment, else ask the proposer, then the others,
        for the whole block. If nobody has it, the core's propose timeout decides."""
        value = proposal.value
        block: Block | object | None = None
        try:
            if compact is not None:
                for _ in range(GOSSIP_WAIT_STEPS):
                    await asyncio.sleep(GOSSIP_WAIT_STEP_S)
                    if all(event_id in self.mempool for event_id in compact[1]):
                        block = self._proposed_block(proposal, compact)
                        break
            if not isinstance(block, Block):
                self.metrics.proposals_fetched.inc()
                block = await self.fetch_block(value, proposal.proposer)
        finally:
            if self._judging.get(value) is asyncio.current_task():
                del self._judging[value]
        if (
            isinstance(block, Block)
            and proposal.height == self.view.store.height + 1
            and value not in self.candidates
        ):
            try:
                self._judge(proposal, block)
            except Exception:
                log.exception("proposed block completed but not handled")

    async def fetch_block(self, value: bytes, proposer: int) -> Block | None:
        """Ask the proposer, then the others, for the block of `value`; the first answer that is
        that block (by its hash and its events) is taken."""
        path = f"/peer/candidate?value={value.hex()}"
        registry = self.view.registry
        validators = registry.validators
        first = validators[proposer].node_key if proposer < len(validators) else b""
        peers = sorted(self.view.peers, key=lambda p: p.node_key != first)
        max_events = registry.parameters.max_block_events
        bound = final_block_bound(registry.parameters, len(validators))
        for peer in peers:
            block_bytes = await self.link.get(peer, path, bound)
            if not block_bytes:
                continue
            try:
                block = Block.decode(block_bytes, max_events=max_events)
            except LedgerError as exc:
                log.warning("undecodable fetched block", extra={"reason": exc.message})
                continue
            if block.header.hash == value:
                return block
        return None

    def _check_proposed_block(self, proposal: Proposal, block: Block) -> Execution | None:
        try:
            drift = self.view.registry.parameters.max_clock_drift_ms
            if block.header.time_ms > now_ms() + drift:
                raise InvalidBlock("the block's time is ahead of our clock")
            if block.header.proposer != proposal.proposer:
                raise InvalidBlock("the block names another proposer")
            return self.execute(block)
        except LedgerError as exc:
            log.warning(
                "proposed block refused", extra={"height": proposal.height, "reason": exc.message}
            )
            return None

    def execute(self, block: Block) -> Execution:
        """Re-execute a block against the committed state (events our mempool holds were
        verified on admission)."""
        view = self.view
        verified = {e.event_id for e in block.events if e.event_id in self.mempool}
        return validate_block(
            view.reader,
            view.registry,
            view.genesis.hash,
            view.store.head,
            block,
            verified=verified,
            chain_id=view.chain_id,
        )

    # -- a decision reached before its block ---------------------------------------------------
    def await_decision(self, height: int, value: bytes, cert: CommitCertificate) -> None:
        """We saw the votes but not a valid copy of the block. It is committed the moment a copy
        arrives (_judge): from the peers that hold it as a candidate, from a proposal still on
        its way, or, final, by sync."""
        self._pending_decision = (value, cert)
        if height != self.view.store.height + 1:
            return
        if self._judging.get(value) is not None:
            return  # its proposal's block is on its way
        self._search(value, self._fetch_decided(height, cert))

    def _commit_decided(self, block: Block, cert: CommitCertificate) -> None:
        """Commit the block of a decision we reached without it (it is final: no clock check)."""
        if block.header.height != self.view.store.height + 1 or block.header.hash != cert.value:
            return
        try:
            execution = self.execute(block)
        except LedgerError as exc:
            log.error("a decided block does not apply here", extra={"reason": exc.message})
            return
        self.sink.commit(execution, cert)

    async def _fetch_decided(self, height: int, cert: CommitCertificate) -> None:
        """Fetch the block of a decision from the peers that still hold it as a candidate."""
        value = cert.value
        try:
            proposer = proposer_for(height, cert.round, len(self.view.registry.validators))
            block = await self.fetch_block(value, proposer)
        finally:
            if self._judging.get(value) is asyncio.current_task():
                del self._judging[value]
        pending = self._pending_decision
        if block is not None and pending is not None and pending[0] == value:
            try:
                self._commit_decided(block, pending[1])
            except Exception:
                log.exception("decided block fetched but not committed")
