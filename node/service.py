"""One running node: feeds the consensus core, carries out its decisions, gossips and catches up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger import authoring
from ledger.block import Block, Header
from ledger.chain import Execution, build_block, validate_block
from ledger.consensus import (
    MAX_FUTURE_ROUNDS_PER_VALIDATOR,
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
    proposer_for,
    quorum_size,
)
from ledger.encoding import decode, encode
from ledger.errors import (
    BadSignature,
    InvalidBlock,
    LedgerError,
    MalformedInput,
    StoreCorrupt,
    StoreWriteFailed,
)
from ledger.events import Event
from ledger.governance import PASSED, next_registry
from ledger.pending import PendingBook, WriteBatch
from ledger.state import EventContext, Overlay, Registry
from ledger.store import Store
from node import clock
from node.config import NodeConfig
from node.health import Health
from node.limits import RateLimiter
from node.mempool import Mempool, MempoolFull
from node.metrics import Metrics
from node.peers import (
    PAGE_ITEM_OVERHEAD,
    STATUS_ANSWER_MAX,
    Peer,
    PeerClient,
    final_block_bound,
    page_bound,
)
from node.readcache import CachedReader
from node.tls import genesis_uses_tls

log = logging.getLogger("kpledger.node")

#: Signature verifications per second, in all, that the node spends looking for whose key made
#: a bad signature (one per registered key, per refusal), and how many it may spend at once:
#: about an eighth of a core, then a bad signature costs one verification and is bad_signature.
ATTRIBUTION_VERIFIES_PER_S = 2_000
ATTRIBUTION_VERIFIES_BURST = 20_000

#: With nothing to do, a block still comes every so often, so a proof's header is never old.
HEARTBEAT_MS = 10 * 60 * 1000
#: While a passed governance change waits for its effective height, empty blocks come this often
#: (an idle chain would otherwise never reach that height).
WAITING_BLOCK_MS = 200
SYNC_BATCH = 64
RESEND_MS = 1000
#: Events from clients go to the peers in one batch this often (each HTTP request costs both
#: ends more than its events; a proposal flushes the batch at once anyway).
GOSSIP_INTERVAL_S = 0.025
#: How long a proposal naming events not here yet waits for them before fetching its block.
GOSSIP_WAIT_STEPS = 5
GOSSIP_WAIT_STEP_S = 0.01
SYNC_INTERVAL_S = 2.0
#: A node governance added to the validators attests its readiness this often until it is in
#: the set (an attestation is refused while too few validators are live: it tries again).
READY_RETRY_S = 2.0
#: Group commit: the write of accepted events begins once the loop has run what is ready (the
#: other requests that came in the same moment), and while it is on disk the next ones gather
#: for the write after it. No delay beyond that: on a loaded machine a sleeping process wakes
#: late (2 ms asked cost 15 ms a write), and the write's own time gathers enough.
GROUP_COMMIT_S = 0.0
#: How often the pending events are looked at for re-gossip (ledger/pending.py says to whom).
REGOSSIP_TICK_S = 0.5
#: At a clean stop, how long the gossip under way may take to finish before the node closes.
STOP_FLUSH_S = 1.0


#: What _proposed_block answers when the proposal names events our mempool lacks.
_MISSING_EVENTS = object()


def now_ms() -> int:
    """The node's clock (node/clock.py: shifted only by the tests' clock hook)."""
    return clock.now_ms()


class EventTooLarge(LedgerError):
    code = "event_too_large"
    http_status = 413


@dataclass(frozen=True)
class EventStatus:
    status: str  # pending | final | rejected
    height: int | None = None
    error: str | None = None
    message: str | None = None


class LedgerNode:
    """The shell around the pure core. Everything runs on one asyncio loop, one step at a time."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.genesis = config.genesis()
        self.chain_id = self.genesis.chain_id
        self.node_key = config.node_key()
        self.encryption_key = config.encryption_key()
        self.participant = config.participant
        self.store = Store(config.data_dir, self.genesis)
        self.reader = CachedReader(self.store)
        # The register in force at the next height: the store's, or genesis's before block 1.
        self.registry = self.store.registry() or Registry.from_genesis(self.genesis)
        self.metrics = Metrics()
        self.health = Health(self.metrics, self.registry.parameters.max_clock_drift_ms)
        self.store.db.listener = self.health
        self.mempool = Mempool(config.mempool_limit)
        # Saying whose key made a bad signature costs a verification per registered key: granted
        # from a budget of verifications, else the refusal is a plain bad_signature.
        self._attributions = RateLimiter(ATTRIBUTION_VERIFIES_PER_S, ATTRIBUTION_VERIFIES_BURST)
        self.client = PeerClient(
            self.node_key, self.chain_id, tls_only=genesis_uses_tls(self.genesis)
        )
        self.client.on_untrusted = lambda who: self.metrics.peer_untrusted.labels(who).inc()
        params = self.registry.parameters  # governance may have changed the timeouts
        self.timeouts = TimeoutConfig(
            propose_ms=params.timeout_propose_ms,
            propose_delta_ms=params.timeout_delta_ms,
            prevote_ms=params.timeout_vote_ms,
            prevote_delta_ms=params.timeout_delta_ms,
            precommit_ms=params.timeout_vote_ms,
            precommit_delta_ms=params.timeout_delta_ms,
        )
        #: Proposed blocks of the current height that we judged: their execution, or None when
        #: the block is invalid. A value not here is one whose block we do not have (yet).
        self.candidates: dict[bytes, Execution | None] = {}
        #: Proposed blocks being awaited (events in flight) or fetched whole, by value.
        self._judging: dict[bytes, asyncio.Task[None]] = {}
        #: The first value proposed in each round of the current height: the only one of the
        #: round whose block is executed or fetched. A second one is an equivocation: the core
        #: keeps both as evidence, and it costs us no execution.
        self._round_values: dict[int, bytes] = {}
        self._fetch_tasks: set[asyncio.Task[None]] = set()
        #: A decision whose block we have not seen: committed as soon as the block arrives.
        self._pending_decision: tuple[bytes, CommitCertificate] | None = None
        #: The (height, round) whose proposals' blocks were last sought (_fetch_awaited).
        self._sought_at = (0, 0)
        #: Events from clients, for the next gossip to every peer.
        self._outbox: list[Event] = []
        #: Accepted events' durability and re-gossip (the pure part); the requests awaiting
        #: their event's write.
        self.pending = PendingBook()
        self._durable_waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._write_wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._timers: list[asyncio.TimerHandle] = []
        self._start_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_wakeup = asyncio.Event()
        self._syncing = False
        self._best_peer_height = 0
        #: Blocks asked of each peer per sync page; it follows the pages' lengths (sync_once).
        self._sync_span = SYNC_BATCH
        self._height_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.core = self._new_core()
        self.started_at = time.time()
        self._ready_sent_at = 0.0

    # -- set-up --------------------------------------------------------------------------------
    @property
    def validator_keys(self) -> list[bytes]:
        return [v.node_key for v in self.registry.validators]

    @property
    def peers(self) -> list[Peer]:
        return [
            Peer(v.node_key, v.address, v.participant)
            for v in self.registry.validators
            if v.node_key != self.node_key.public_bytes
        ]

    @property
    def is_validator(self) -> bool:
        return self.node_key.public_bytes in self.validator_keys

    @property
    def peer_keys(self) -> set[bytes]:
        """Node keys allowed on /peer/*: the validators' (in the set or waiting to enter it) and
        every active participant's node."""
        keys = set(self.validator_keys)
        keys.update(v.node_key for v in self.registry.pending_validators)
        keys.update(
            p.node_key
            for p in self.registry.participants.values()
            if p.active and p.node_key is not None
        )
        return keys

    @property
    def observers(self) -> list[Peer]:
        """Participants' nodes that do not validate: told of each final block, so they sync."""
        validators = set(self.validator_keys) | {self.node_key.public_bytes}
        return [
            Peer(p.node_key, p.address, p.code)
            for p in self.registry.participants.values()
            if p.active and p.node_key is not None and p.address and p.node_key not in validators
        ]

    @property
    def is_pending_validator(self) -> bool:
        """Governance added this node to the validators; it enters the set once it attests."""
        return any(
            v.node_key == self.node_key.public_bytes for v in self.registry.pending_validators
        )

    def attest_ready(self) -> EventStatus | None:
        """As a validator waiting to enter the set: sign a readiness attestation naming our head
        (we are synced) and send it to the validators. None when there is nothing to attest."""
        head = self.store.head
        if not self.is_pending_validator or head is None:
            return None
        if time.monotonic() - self._ready_sent_at < READY_RETRY_S:
            return None
        self._ready_sent_at = time.monotonic()
        pending = next(
            v for v in self.registry.pending_validators if v.node_key == self.node_key.public_bytes
        )
        event = authoring.ready(
            self.chain_id,
            pending.participant,
            self.node_key,
            head.height,
            head.hash,
            created_ms=now_ms(),
        )
        try:
            status = self.submit(event)
        except LedgerError as exc:
            log.info("readiness not accepted yet", extra={"code": exc.code, "reason": exc.message})
            return None
        log.info("readiness attested", extra={"height": head.height})
        return status

    def report_evidence(self, evidence: EquivocationEvidence | ConflictingProposals) -> None:
        """Put a validator's equivocation on the chain (signed with our node key): every node
        checks it, and the offender leaves the set from the next block."""
        event = authoring.evidence(
            self.chain_id, self.participant, self.node_key, evidence, created_ms=now_ms()
        )
        try:
            self.submit(event)
        except LedgerError as exc:  # already removed, or another node's report got in first
            log.info("evidence not put on the chain", extra={"code": exc.code})

    def change_waiting(self) -> bool:
        """A passed governance change waits for its effective height."""
        return any(r.status == PASSED for r in self.registry.proposals.values())

    def _new_core(self) -> ConsensusCore:
        raw = self.store.signer_state()
        state = SignerState.from_wire(decode(raw)) if raw is not None else None
        return ConsensusCore(
            self.chain_id,
            self.validator_keys,
            # Always the key: a node that governance makes a validator later signs from then on.
            self.node_key,
            self,
            self.store.height + 1,
            self.timeouts,
            state,
            next_validators=self._expected_next_validators(),
        )

    def _expected_next_validators(self) -> list[bytes]:
        """The validators expected at the height after the current one: the register in force
        with the passed changes due then. (Changes take effect at least two blocks after their
        proposal and voting closes before, so the current block cannot add to them.)"""
        registry = next_registry(self.registry, {}, {}, self.store.height + 1).registry
        return [v.node_key for v in registry.validators]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._restore_pending()
        self._writer = loop.create_task(self._write_loop())
        self._tasks = [
            loop.create_task(self._resend_loop()),
            loop.create_task(self._sync_loop()),
            loop.create_task(self._gossip_loop()),
            loop.create_task(self._regossip_loop()),
        ]
        # A restarted validator resumes the height it was voting in (its signed votes are on
        # disk). A state of an earlier height only says it once voted: starting a round then,
        # with nothing to propose, would pull every validator into empty rounds.
        if self._voting_height() == self.store.height + 1 or len(self.mempool):
            self._process(self.core.start(now_ms()))
        self._sync_wakeup.set()

    def _voting_height(self) -> int | None:
        raw = self.store.signer_state()
        return None if raw is None else SignerState.from_wire(decode(raw)).height

    async def stop(self) -> None:
        """Stop cleanly: what was accepted is written (it is reloaded at the next start), the
        gossip under way gets STOP_FLUSH_S to finish, then the sessions and the store close."""
        self._stopping = True
        for task in [*self._tasks, *self._fetch_tasks]:
            task.cancel()
        for timer in self._timers:
            timer.cancel()
        if self._start_handle is not None:
            self._start_handle.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            # Not cancelled: a write on disk runs in a thread, and the store must outlive it.
            self._write_wakeup.set()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._write_pending()
        self._flush_gossip()
        await self.client.drain(STOP_FLUSH_S)
        await self.client.close()
        for waiters in self._durable_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(
                        StoreWriteFailed("the node stopped before it could store the event")
                    )
        self._durable_waiters.clear()
        self.store.close()

    # -- the Application protocol of the consensus core ---------------------------------------
    def propose_value(self, height: int, round: int) -> bytes | None:
        if height != self.store.height + 1:
            return None
        params = self.registry.parameters
        events = self.mempool.take(params.max_block_events, params.max_block_bytes)
        head = self.store.head
        heartbeat_due = head is None or now_ms() - head.time_ms > HEARTBEAT_MS
        heartbeat_due = heartbeat_due or self.change_waiting()
        if not events and not heartbeat_due:
            return None
        execution = build_block(
            self.reader,
            self.registry,
            self.genesis.hash,
            head,
            events,
            chain_id=self.chain_id,
            time_ms=now_ms(),
            proposer=self.core.validator_index or 0,
            verified={e.event_id for e in events},  # checked on admission to the mempool
        )
        self._refuse(execution.refused)
        if not execution.block.events and not heartbeat_due:
            return None
        value = execution.header.hash
        self.candidates[value] = execution
        return value

    def is_valid(self, height: int, value: bytes) -> bool | None:
        if height != self.store.height + 1:
            return False
        if value not in self.candidates:
            return None  # no copy of the block yet: being fetched, or never to be executed
        return self.candidates[value] is not None

    # -- events from clients and peers --------------------------------------------------------
    def submit(self, event: Event, *, from_peer: bool = False) -> EventStatus:
        """Admit a signed event, or raise the LedgerError that says why not. Idempotent."""
        stored = self.store.event(event.event_id)
        if stored is not None:
            return EventStatus("final", stored.height)
        if event.event_id in self.mempool:
            if not from_peer:
                # A peer's event that a client gives us too: now ours to store and re-gossip.
                self._accepted(event)
            return EventStatus("pending")
        if not self.health.can_write:
            # Accepting what cannot be stored would be a promise the node cannot keep.
            if self.health.corrupt is not None:
                raise StoreCorrupt(
                    f"this node's store is corrupt ({self.health.corrupt}); it takes no events"
                )
            raise StoreWriteFailed(
                f"this node cannot write to its store ({self.health.write_error}); it takes no "
                "events: send them to another node"
            )
        if len(event.encoded) > self.registry.parameters.max_event_bytes:
            raise EventTooLarge(
                f"the event is {len(event.encoded)} bytes; at most "
                f"{self.registry.parameters.max_event_bytes} are accepted"
            )
        ctx = EventContext(self.store.height + 1, self._next_block_time_ms(), self.chain_id)
        try:
            # Checks the signature (once: the mempool remembers it) and every rule against the
            # committed state, so that a client hears "no" at once whenever it can.
            self._admit(event, ctx)
        except LedgerError as exc:
            self.metrics.events_refused.labels(exc.code).inc()
            raise
        self.mempool.add(event)
        self.metrics.events_accepted.labels(event.type).inc()
        self.metrics.mempool.set(len(self.mempool))
        if not from_peer:
            self._accepted(event)
            self._outbox.append(event)
        self._schedule_start()
        return EventStatus("pending")

    def _admit(self, event: Event, ctx: EventContext) -> None:
        """Check an event as its block would, or raise its refusal. A bad signature is looked
        up among the register's other keys (to say whose it is) only as the budget allows."""
        try:
            Overlay(self.reader).apply(self.registry, event, ctx, attribute=False)
        except BadSignature:
            keys = 3 * len(self.registry.participants) + len(self.registry.validators)
            if not self._attributions.allow("node", cost=keys):
                raise
            Overlay(self.reader).apply(self.registry, event, ctx)

    def _next_block_time_ms(self) -> int:
        """The time of the block this node would build now (as build_block sets it): events are
        admitted by the rules that block applies, its date included."""
        head = self.store.head
        return now_ms() if head is None else max(now_ms(), head.time_ms + 1)

    def _accepted(self, event: Event) -> None:
        """A client's event: written before its 202 (durable()), then re-gossiped until final."""
        if event.event_id not in self.pending:
            self.pending.accepted(event.event_id, now_ms())
        if not self.pending.is_durable(event.event_id):
            self._write_wakeup.set()  # a write that failed is tried again with this one

    async def durable(self, event_id: bytes) -> None:
        """Return once the event that submit() accepted is in the store (or final, or refused:
        recorded either way); raise StoreWriteFailed if it could not be written."""
        if self.pending.is_durable(event_id):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._durable_waiters.setdefault(event_id, []).append(future)
        await future

    def _release(self, event_ids: Iterable[bytes], error: LedgerError | None = None) -> None:
        for event_id in event_ids:
            for future in self._durable_waiters.pop(event_id, ()):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _forget(self, event_ids: list[bytes]) -> list[bytes]:
        """These events are final or refused: out of the mempool and the book. Returns those in
        the store's pending family, to delete in the batch that records the outcome."""
        self.mempool.remove(event_ids)
        stored = self.pending.left(event_ids)
        # A request still awaiting its write has its answer: the outcome is recorded.
        self._release(event_ids)
        return stored

    async def _write_loop(self) -> None:
        while not self._stopping:
            await self._write_wakeup.wait()
            self._write_wakeup.clear()
            await asyncio.sleep(GROUP_COMMIT_S)
            try:
                await self._write_pending()
            except Exception:  # a bug here must not leave every later request waiting
                log.exception("writing accepted events failed")

    async def _write_pending(self) -> None:
        """Write every queued event, one synced batch at a time, and answer their requests.
        After a failed write it stops: the next acceptance (a client sending again) retries."""
        while (batch := self.pending.next_write()) is not None:
            if not await self._write_batch(batch):
                return

    async def _write_batch(self, batch: WriteBatch) -> bool:
        events = [e for i in batch.event_ids if (e := self.mempool.get(i)) is not None]
        try:
            # In a thread: the loop takes the next requests (the next batch) meanwhile.
            await asyncio.to_thread(self.store.put_pending, events)
        except Exception as exc:  # a full disk, an I/O error: no 202, nothing is promised
            failed = self.pending.write_failed(batch)
            self.metrics.pending_write_failures.inc()
            error = (
                exc
                if isinstance(exc, StoreWriteFailed)
                else StoreWriteFailed(f"this node could not store the event: {exc}")
            )
            log.error("accepted events could not be written", extra={"error": error.message})
            self._release(failed, error)
            return False
        written = self.pending.written(batch)
        self.metrics.pending_writes.inc()
        if written.stale:
            self.store.drop_pending(written.stale)  # final or refused while being written
        self._release(written.durable)
        return True

    def _restore_pending(self) -> None:
        """Reload the events accepted before the last stop (or kill): each is checked again
        against the state now, signature included; one that no longer applies is refused, and
        its status says why."""
        ctx = EventContext(self.store.height + 1, self._next_block_time_ms(), self.chain_id)
        done: list[bytes] = []
        restored = 0
        for event_id, raw in list(self.store.pending()):
            try:
                event = Event.decode(raw)
                if event.event_id != event_id:
                    raise MalformedInput("the stored bytes are another event's")
            except LedgerError as exc:
                log.error(
                    "unreadable pending event dropped",
                    extra={"event_id": event_id.hex(), "reason": exc.message},
                )
                done.append(event_id)
                continue
            if self.store.has_event(event_id):
                done.append(event_id)  # its block was final before the delete was written
                continue
            try:
                Overlay(self.reader).apply(self.registry, event, ctx)
            except LedgerError as exc:
                self.store.note_refused(event_id, exc.code, exc.message, pending=True)
                self.metrics.events_refused.labels(exc.code).inc()
                log.info(
                    "reloaded event refused", extra={"event_id": event_id.hex(), "code": exc.code}
                )
                continue
            self.mempool.add(event, restored=True)
            self.pending.restored(event_id, now_ms())
            restored += 1
        if done:
            self.store.drop_pending(done)
        self.metrics.pending_restored.inc(restored)
        self.metrics.mempool.set(len(self.mempool))
        if restored or done:
            log.info("pending events reloaded", extra={"events": restored, "dropped": len(done)})

    def event_status(self, event_id: bytes) -> EventStatus | None:
        stored = self.store.event(event_id)
        if stored is not None:
            return EventStatus("final", stored.height)
        if event_id in self.mempool:
            return EventStatus("pending")
        refused = self.store.refused(event_id)
        if refused is not None:
            return EventStatus("rejected", error=refused[0], message=refused[1])
        return None

    def _refuse(self, refused: Iterable[tuple[Event, LedgerError]]) -> None:
        for event, exc in refused:
            stored = self._forget([event.event_id])
            self.store.note_refused(event.event_id, exc.code, exc.message, pending=bool(stored))
            self.metrics.events_refused.labels(exc.code).inc()
            log.info(
                "event refused at block time",
                extra={"event_id": event.event_id.hex(), "code": exc.code},
            )

    def _schedule_start(self) -> None:
        if self.core.running or self._start_handle is not None or not self.is_validator:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._start_handle = None
            if len(self.mempool) or self.change_waiting():
                self._process(self.core.start(now_ms()))

        delay_ms = self.config.block_delay_ms if len(self.mempool) else WAITING_BLOCK_MS
        self._start_handle = loop.call_later(delay_ms / 1000, fire)

    # -- consensus messages -------------------------------------------------------------------
    def on_peer_consensus(self, items: list[Any]) -> None:
        """Messages from a peer whose request signature was already checked."""
        for item in items:
            try:
                if not isinstance(item, list) or not item:
                    raise MalformedInput("a consensus item is a list")
                if item[0] == "proposal" and len(item) == 3:
                    self._on_proposal(Proposal.from_wire(item[1]), item[2])
                    continue
                message = message_from_wire(item)
                if isinstance(message, Vote) and message.height > self.core.height:
                    self._note_peer_height(message.height - 1)
                if isinstance(message, CommitCertificate):
                    self._on_commit_certificate(message)
                    continue
                self._process(self.core.on_message(message, now_ms()))
            except LedgerError as exc:
                log.debug("peer message ignored", extra={"reason": exc.message})

    def _on_proposal(self, proposal: Proposal, block_data: Any) -> None:
        current = self.store.height + 1
        if proposal.height > current:
            self._note_peer_height(proposal.height - 1)
        elif proposal.height == current and proposal.value not in self.candidates:
            # Only the scheduled proposer's signed proposal is worth executing a block for: a
            # forged or misrouted one must not cost us the block's re-execution (or a fetch).
            if not proposal.verify(self.chain_id, self.validator_keys):
                log.warning(
                    "proposal refused: not signed by the proposer of height %d round %d",
                    proposal.height,
                    proposal.round,
                )
                return
            self._obtain_block(proposal, block_data)
        # The core gets it even while its block is on its way: it waits for the block (is_valid
        # answers None) and never takes "not here yet" for "invalid".
        self._process(self.core.on_proposal(proposal, now_ms()))

    def _obtain_block(self, proposal: Proposal, block_data: Any) -> None:
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
        if proposal.round > self.core.round + MAX_FUTURE_ROUNDS_PER_VALIDATOR:
            return  # far ahead of us: judged if and when we get to that round
        self._round_values[proposal.round] = value
        block = self._proposed_block(proposal, block_data)
        if isinstance(block, Block):
            self._judge(proposal, block)
            return
        # Missing, garbage, or another block's bytes (a relay without the block, a byzantine
        # one): wait for the events in flight if we know which, else fetch the block.
        compact = block_data if block is _MISSING_EVENTS else None
        task = asyncio.get_running_loop().create_task(self._await_block(proposal, compact))
        self._judging[value] = task
        self._fetch_tasks.add(task)
        task.add_done_callback(self._fetch_tasks.discard)

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
        self._process(self.core.on_validity(proposal.height, value, now_ms()))

    def _proposed_block(self, proposal: Proposal, block_data: Any) -> Block | object | None:
        """The block a proposal names, from its whole encoding or from its header and event ids
        (the events taken from our mempool); _MISSING_EVENTS when some are not here; None when
        the data is not that block (its header or its events are another block's)."""
        max_events = self.registry.parameters.max_block_events
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
                block = await self._fetch_block(value, proposal.proposer)
        finally:
            if self._judging.get(value) is asyncio.current_task():
                del self._judging[value]
        if (
            isinstance(block, Block)
            and proposal.height == self.store.height + 1
            and value not in self.candidates
        ):
            try:
                self._judge(proposal, block)
            except Exception:
                log.exception("proposed block completed but not handled")

    async def _fetch_block(self, value: bytes, proposer: int) -> Block | None:
        """Ask the proposer, then the others, for the block of `value`; the first answer that is
        that block (by its hash and its events) is taken."""
        path = f"/peer/candidate?value={value.hex()}"
        validators = self.registry.validators
        first = validators[proposer].node_key if proposer < len(validators) else b""
        peers = sorted(self.peers, key=lambda p: p.node_key != first)
        max_events = self.registry.parameters.max_block_events
        bound = final_block_bound(self.registry.parameters, len(validators))
        for peer in peers:
            block_bytes = await self.client.get(peer, path, bound)
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

    def candidate_block(self, value: bytes) -> bytes | None:
        """The encoding of a block proposed at the current height that we found valid."""
        execution = self.candidates.get(value)
        return execution.block.encode() if execution is not None else None

    def _check_proposed_block(self, proposal: Proposal, block: Block) -> Execution | None:
        try:
            if block.header.time_ms > now_ms() + self.registry.parameters.max_clock_drift_ms:
                raise InvalidBlock("the block's time is ahead of our clock")
            if block.header.proposer != proposal.proposer:
                raise InvalidBlock("the block names another proposer")
            return self._execute(block)
        except LedgerError as exc:
            log.warning(
                "proposed block refused", extra={"height": proposal.height, "reason": exc.message}
            )
            return None

    def _execute(self, block: Block) -> Execution:
        verified = {e.event_id for e in block.events if e.event_id in self.mempool}
        return validate_block(
            self.reader,
            self.registry,
            self.genesis.hash,
            self.store.head,
            block,
            verified=verified,
            chain_id=self.chain_id,
        )

    def _commit_decided(self, block: Block, cert: CommitCertificate) -> None:
        """Commit the block of a decision we reached without it (it is final: no clock check)."""
        if block.header.height != self.store.height + 1 or block.header.hash != cert.value:
            return
        try:
            execution = self._execute(block)
        except LedgerError as exc:
            log.error("a decided block does not apply here", extra={"reason": exc.message})
            return
        self._commit(execution, cert)

    async def _fetch_decided(self, height: int, cert: CommitCertificate) -> None:
        """Fetch the block of a decision from the peers that still hold it as a candidate."""
        value = cert.value
        try:
            proposer = proposer_for(height, cert.round, len(self.registry.validators))
            block = await self._fetch_block(value, proposer)
        finally:
            if self._judging.get(value) is asyncio.current_task():
                del self._judging[value]
        pending = self._pending_decision
        if block is not None and pending is not None and pending[0] == value:
            try:
                self._commit_decided(block, pending[1])
            except Exception:
                log.exception("decided block fetched but not committed")

    def _on_commit_certificate(self, cert: CommitCertificate) -> None:
        if cert.height == self.store.height + 1 and cert.value in self.candidates:
            self._process(self.core.on_commit(cert, now_ms()))
        elif cert.height > self.store.height:
            self._note_peer_height(cert.height)

    def _note_peer_height(self, height: int) -> None:
        if height > self.store.height:
            self._best_peer_height = max(self._best_peer_height, height)
            self._sync_wakeup.set()

    def _process(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                self.store.put_signer_state(encode(action.state.to_wire()))
            elif isinstance(action, Broadcast):
                self._broadcast(action.message)
            elif isinstance(action, ScheduleTimeout):
                self._schedule_timeout(action)
            elif isinstance(action, Decide):
                self._decide(action)
            elif isinstance(action, ReportEvidence):
                self.metrics.evidence.inc()
                self.store.note_evidence(encode(action.evidence.to_wire()))
                log.warning("equivocation detected", extra={"validator": action.evidence.validator})
                self.report_evidence(action.evidence)
        if (self.core.height, self.core.round) != self._sought_at:
            self._sought_at = (self.core.height, self.core.round)
            self._fetch_awaited()
        self.metrics.round.set(self.core.round)

    def _fetch_awaited(self) -> None:
        """Fetch the blocks of the current round's proposals that the core holds without them
        (one from far ahead or replayed from the next-height buffer, a fetch that failed): the
        block may have reached a peer since."""
        for proposal in self.core.current_proposals():
            if proposal.height == self.store.height + 1 and proposal.value not in self.candidates:
                self._obtain_block(proposal, None)

    def _broadcast(self, message: Proposal | Vote | CommitCertificate) -> None:
        if isinstance(message, Proposal):
            # The peers hold the events already (gossip): the header and the event ids say which
            # block it is. Whoever lacks an event fetches the whole block (/peer/candidate).
            self._flush_gossip()
            execution = self.candidates.get(message.value)
            compact: Any = b""
            if execution is not None:
                compact = [execution.header.encoded, [e.event_id for e in execution.block.events]]
            elif message.proposer != self.core.validator_index:
                # A relay without the block would only make each peer fetch it: the peers that
                # have it relay it (issue 13 F1).
                return
            item: list[Any] = ["proposal", message.to_wire(), compact]
        else:
            item = message.to_wire()
        body = encode([item])
        for peer in self.peers:
            self.client.send(peer, "/peer/consensus", body)

    def _schedule_timeout(self, action: ScheduleTimeout) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, (action.at_ms - now_ms()) / 1000)

        def fire() -> None:
            self._process(self.core.on_timeout(action.step, action.height, action.round, now_ms()))

        self._timers = [t for t in self._timers if not t.cancelled()][-64:]
        self._timers.append(loop.call_later(delay, fire))

    def _decide(self, decision: Decide) -> None:
        execution = self.candidates.get(decision.value)
        if execution is None or decision.height != self.store.height + 1:
            # We saw the votes but not a valid copy of the block. It is committed the moment a
            # copy arrives (_judge): from the peers that hold it as a candidate, from a proposal
            # still on its way, or, final, by sync.
            self._pending_decision = (decision.value, decision.certificate)
            self._note_peer_height(decision.height)
            if decision.height == self.store.height + 1:
                task = self._judging.get(decision.value)
                if task is not None:
                    return  # its proposal's block is on its way
                task = asyncio.get_running_loop().create_task(
                    self._fetch_decided(decision.height, decision.certificate)
                )
                self._judging[decision.value] = task
                self._fetch_tasks.add(task)
                task.add_done_callback(self._fetch_tasks.discard)
            return
        self._commit(execution, decision.certificate)

    def _commit(self, execution: Execution, cert: CommitCertificate) -> None:
        ids = [e.event_id for e in execution.block.events]
        # The block's events leave the pending family in the batch that makes them final.
        stored = [i for i in ids if i in self.pending and self.pending.is_durable(i)]
        self.store.commit(execution, encode(cert.to_wire()), pending_done=stored)
        self.reader.committed(execution)
        previous = self.registry
        if execution.next_registry is not None:
            self.registry = execution.next_registry  # in force from the next height
        height = execution.header.height
        admitted = self.mempool.remove(ids)
        self._forget(ids)
        now = time.monotonic()
        for t in admitted:
            self.metrics.finality.observe(now - t)
        self.metrics.blocks.inc()
        self.metrics.events_final.inc(len(ids))
        self.metrics.height.set(height)
        if self.registry.hash != previous.hash:
            # Keys, members or restrictions may have changed: every pending event is checked
            # again, its signature included, under the register now in force.
            self._recheck_mempool(None)
        else:
            self._recheck_mempool(set(execution.records))
        self.candidates.clear()
        self._pending_decision = None
        self._round_values.clear()
        for task in self._judging.values():
            task.cancel()  # blocks of the height just committed
        self._judging.clear()
        log.info(
            "block final",
            extra={"height": height, "events": len(ids), "hash": execution.header.hash.hex()[:16]},
        )
        for waiter_height, future in list(self._height_waiters):
            if waiter_height <= height and not future.done():
                future.set_result(None)
        self._height_waiters = [(h, f) for h, f in self._height_waiters if not f.done()]
        self._process(
            self.core.advance(
                height + 1, self.validator_keys, now_ms(), self._expected_next_validators()
            )
        )
        # Tell the peers at once, so that one that missed the votes fetches the block.
        self._broadcast(cert)
        if self.is_validator:
            body = encode([cert.to_wire()])
            for observer in self.observers:
                self.client.send(observer, "/peer/consensus", body)
        if len(self.mempool) or self.change_waiting():
            self._schedule_start()
        self.attest_ready()

    def _recheck_mempool(self, changed_numbers: set[str] | None) -> None:
        """Pending events about certificates a block just changed may no longer apply.

        None: the register changed, so every pending event is checked again, signature included.
        """
        if changed_numbers is not None and not changed_numbers:
            return
        ctx = EventContext(self.store.height + 1, self._next_block_time_ms(), self.chain_id)
        refused = []
        for event in self.mempool.events():
            if changed_numbers is None or event.number in changed_numbers:
                try:
                    Overlay(self.reader).apply(
                        self.registry, event, ctx, verified=changed_numbers is not None
                    )
                except LedgerError as exc:
                    refused.append((event, exc))
        self._refuse(refused)

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        if self.store.height >= height:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._height_waiters.append((height, future))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False

    # -- background loops ---------------------------------------------------------------------
    async def _resend_loop(self) -> None:
        while True:
            await asyncio.sleep(RESEND_MS / 1000)
            try:
                if self.core.running:
                    self._process(self.core.resend(now_ms()))
                    self._fetch_awaited()
                elif len(self.mempool):
                    self._schedule_start()
                elif self.is_validator and self._heartbeat_due():
                    self._process(self.core.start(now_ms()))
                elif self.is_validator and self.change_waiting():
                    self._schedule_start()
                self.attest_ready()
            except Exception:  # a bug here must not stop the node's heart
                log.exception("resend failed")

    def _heartbeat_due(self) -> bool:
        head = self.store.head
        return head is not None and now_ms() - head.time_ms > HEARTBEAT_MS

    async def _gossip_loop(self) -> None:
        while True:
            await asyncio.sleep(GOSSIP_INTERVAL_S)
            self._flush_gossip()

    def _flush_gossip(self) -> None:
        """Send the events clients gave us to every peer."""
        batches, self._outbox = self._gossip_batches(self._outbox), []
        for batch in batches:
            body = encode([e.encoded for e in batch])
            ids = [e.event_id for e in batch]
            for peer in self.peers:
                self._gossip(peer, ids, body)

    def _gossip_batches(self, events: list[Event]) -> list[list[Event]]:
        """`events` in batches of at most a block's worth of events and bytes (the bound
        /peer/events reads with)."""
        params = self.registry.parameters
        batches: list[list[Event]] = []
        size = 0
        for event in events:
            if not batches or (
                len(batches[-1]) >= params.max_block_events
                or size + len(event.encoded) > params.max_block_bytes
            ):
                batches.append([])
                size = 0
            batches[-1].append(event)
            size += len(event.encoded)
        return batches

    def _gossip(self, peer: Peer, ids: list[bytes], body: bytes) -> None:
        """Send events to a peer; the book hears that they left and whether the peer took them."""
        self.pending.sent(ids, peer.node_key, now_ms())

        def done(ok: bool) -> None:
            if ok:
                self.pending.delivered(ids, peer.node_key, now_ms())

        self.client.send(peer, "/peer/events", body, done)

    async def _regossip_loop(self) -> None:
        while True:
            await asyncio.sleep(REGOSSIP_TICK_S)
            try:
                self._regossip()
            except Exception:  # a bug here must not stop the loop
                log.exception("re-gossip failed")

    def _regossip(self) -> None:
        """Send pending events again to the peers that may lack them (the book says which)."""
        peers = self.peers
        due = self.pending.due(now_ms(), [p.node_key for p in peers])
        for peer in peers:
            events = [
                e for i in due.get(peer.node_key, ()) if (e := self.mempool.get(i)) is not None
            ]
            self.metrics.events_regossiped.inc(len(events))
            for batch in self._gossip_batches(events):
                self._gossip(peer, [e.event_id for e in batch], encode([e.encoded for e in batch]))

    def on_peer_events(self, items: list[Any]) -> None:
        for raw in items:
            if not isinstance(raw, bytes):
                continue
            try:
                event = Event.decode(raw)
            except LedgerError:
                continue  # not an event: the sender's problem
            try:
                self.submit(event, from_peer=True)
            except MempoolFull:
                pass  # for now only: the sender's node holds it and relays it again
            except LedgerError as exc:
                # A peer accepted it (its client heard 202) and we refuse it: the register moved
                # on meanwhile (a key rotated, a proposal closed). Whoever asks this node about
                # it hears "rejected" with why, not "never seen".
                self.store.note_refused(event.event_id, exc.code, exc.message)

    async def _sync_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._sync_wakeup.wait(), SYNC_INTERVAL_S)
            except TimeoutError:
                pass
            self._sync_wakeup.clear()
            try:
                await self.sync_once()
            except Exception:
                log.exception("catch-up failed")

    async def peer_heights(self) -> dict[str, int]:
        peers = self.peers
        answers = await asyncio.gather(
            *(self.client.get(p, "/peer/status", STATUS_ANSWER_MAX) for p in peers)
        )
        heights = {}
        up = 0
        for peer, raw in zip(peers, answers, strict=True):
            if raw is None:
                continue
            up += 1
            try:
                status = decode(raw, STATUS_ANSWER_MAX)
                heights[peer.address] = int(status[0])
            except (LedgerError, ValueError, TypeError, IndexError):
                continue
        self.metrics.peers_up.set(up)
        self.health.observe_peers(heights, up, self.peers_needed())
        return heights

    def sync_page_bound(self) -> int:
        """The largest page we read or decode: our budget, or one block of the parameters in
        force at our next height if that is larger (a page's first block goes even alone)."""
        return page_bound(
            self.config.sync_page_bytes, self.registry.parameters, len(self.registry.validators)
        )

    def peers_needed(self) -> int:
        """Peers a validator must reach to make a quorum with its own vote; one for any other."""
        if not self.peers:
            return 0
        if not self.is_validator:
            return 1
        return quorum_size(len(self.validator_keys)) - 1

    async def sync_once(self) -> int:
        """Fetch and apply final blocks we lack, from several peers at once. Returns blocks applied.

        Each peer is asked for a page of `span` blocks (within our byte budget) following the
        previous peer's; a page cut short by its byte budget leaves a gap, and the pages after it
        wait for the next turn, asked again from where the chain then stands. `span` follows the
        pages' lengths, so that big blocks are asked for a few at a time.
        """
        heights = await self.peer_heights()
        best = max([self._best_peer_height, *heights.values()], default=0)
        applied = 0
        # Peers that failed us in this pass. One bad or silent peer must not stall catch-up:
        # its range is asked again of the others.
        skipped: set[str] = set()
        budget = self.config.sync_page_bytes
        while self.store.height < best:
            sources = [
                p
                for p in self.peers
                if heights.get(p.address, 0) > self.store.height and p.address not in skipped
            ]
            if not sources:
                break
            start = self.store.height + 1
            span = self._sync_span
            ranges = []
            for i, peer in enumerate(sources):
                first = start + i * span
                if first > best:
                    break
                ranges.append((peer, first))
            bound = self.sync_page_bound()
            results = await asyncio.gather(
                *(
                    self.client.get(
                        p, f"/peer/blocks?from={first}&limit={span}&max_bytes={budget}", bound
                    )
                    for p, first in ranges
                )
            )
            lengths = []
            for (peer, first), raw in zip(ranges, results, strict=True):
                if raw is None:
                    skipped.add(peer.address)
                    continue
                try:
                    items = decode(raw, bound)
                    if not isinstance(items, list):
                        raise MalformedInput("a page of blocks is a list")
                    lengths.append(len(items))
                    if first != self.store.height + 1:
                        continue  # after a gap: asked again next turn
                    for block_bytes, cert_bytes in items:
                        if self._apply_final(block_bytes, cert_bytes):
                            applied += 1
                except (LedgerError, ValueError, TypeError) as exc:
                    log.warning(
                        "a peer sent a block we refuse",
                        extra={"peer": peer.address, "reason": str(exc)},
                    )
                    skipped.add(peer.address)
            if lengths:
                shortest = min(lengths)
                self._sync_span = (
                    min(SYNC_BATCH, span * 2) if shortest >= span else max(1, shortest)
                )
            if self.store.height < start:
                # Nothing linked on: the peer asked for `start` did not deliver it.
                skipped.add(ranges[0][0].address)
        self._best_peer_height = 0 if self.store.height >= best else best
        return applied

    def _apply_final(self, block_bytes: bytes, cert_bytes: bytes) -> bool:
        """Check a final block from a peer against its commit certificate and apply it."""
        block = Block.decode(block_bytes)
        if block.header.height != self.store.height + 1:
            return False
        cert = CommitCertificate.from_wire(decode(cert_bytes))
        if cert.height != block.header.height or cert.value != block.header.hash:
            raise InvalidBlock("the commit certificate is for another block")
        cert.verify(self.chain_id, self.validator_keys)
        verified = {e.event_id for e in block.events if e.event_id in self.mempool}
        execution = validate_block(
            self.reader,
            self.registry,
            self.genesis.hash,
            self.store.head,
            block,
            verified=verified,
            chain_id=self.chain_id,
        )
        self._commit(execution, cert)
        self.metrics.sync_blocks.inc()
        return True

    def final_blocks(self, start: int, limit: int, max_bytes: int) -> list[list[bytes]]:
        """Final blocks from `start` with their commit certificates: at most `limit`, and added
        while the page stays within `max_bytes` (the first goes alone if it is larger)."""
        out: list[list[bytes]] = []
        size = 0
        for height in range(start, min(self.store.height, start + limit - 1) + 1):
            block = self.store.block(height)
            cert = self.store.commit_certificate_bytes(height)
            if block is None or cert is None:
                break
            encoded = block.encode()
            item = len(encoded) + len(cert) + PAGE_ITEM_OVERHEAD
            if out and size + item > max_bytes:
                break
            out.append([encoded, cert])
            size += item
        return out
