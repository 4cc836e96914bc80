"""The durable mempool's bookkeeping, sans-I/O: which accepted events await their synced write,
which may be answered, which leave the store's pending family, and which go to which peer again.

A node answers 202 only once the event is in its own store (a synced write of the pending
family), so that no kill, clean stop or crash loses what it said it accepted. Writes are grouped:
every event accepted while one write is on disk goes in the next one (group commit), so that the
rate of accepted events is not the disk's rate of synced writes. An event leaves the pending family
in the very batch that commits its block (or notes its refusal), never before.

Gossip is fire-and-forget and may be lost (a peer down, a reset link). Every event this node
answered for (and every one it reloaded at start) is sent again to each peer that has not taken it
(answered a gossip that carried it), at growing intervals, until it is final or refused; and now
and then to the peers that did take it, since a peer that restarts forgets its mempool. Without
this, an event held by one validator alone that is not the proposer would sit there: one
validator's messages do not start an idle height.

The shell carries out what this decides: node/service/durable.py writes the batches, answers
the waiting requests and deletes the keys; node/service/gossip.py sends the gossip; both report
back. Times are in milliseconds,
given by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: The first re-send to a peer that has not taken an event comes this long after the first send.
REGOSSIP_AFTER_MS = 1_000
#: Each further re-send to that peer waits twice as long as the one before, up to this.
REGOSSIP_MAX_MS = 8_000
#: A peer that took an event is sent it again this often while it is pending (a peer that
#: restarted lost its mempool, and nothing else tells us).
REGOSSIP_TAKEN_MS = 15_000
#: At most this many events go to one peer in one round of re-gossip (the oldest first).
REGOSSIP_BATCH = 1_000

QUEUED = "queued"  # accepted, its write not begun
WRITING = "writing"  # in the write on disk now
STORED = "stored"  # in the store's pending family


@dataclass
class _PeerState:
    due_ms: int
    interval_ms: int
    taken: bool = False


@dataclass
class _Entry:
    since_ms: int
    durability: str = QUEUED
    #: Left the mempool (final or refused) while its write was on disk: its key is deleted
    #: when the write returns.
    gone: bool = False
    peers: dict[bytes, _PeerState] = field(default_factory=dict)
    #: No peer is due before this (0: to be worked out again), so that a round of re-gossip
    #: passes over the events that wait for later at the cost of one comparison each.
    next_ms: int = 0


@dataclass(frozen=True)
class WriteBatch:
    """The events of one synced write of the pending family."""

    event_ids: tuple[bytes, ...]


@dataclass(frozen=True)
class Written:
    """What a finished write allows: the requests to answer, the keys to delete again."""

    durable: tuple[bytes, ...]
    stale: tuple[bytes, ...]


class PendingBook:
    """The state of every event this node answered for, from acceptance to final or refused."""

    def __init__(
        self,
        *,
        regossip_after_ms: int = REGOSSIP_AFTER_MS,
        regossip_max_ms: int = REGOSSIP_MAX_MS,
        regossip_taken_ms: int = REGOSSIP_TAKEN_MS,
        regossip_batch: int = REGOSSIP_BATCH,
    ) -> None:
        self.regossip_after_ms = regossip_after_ms
        self.regossip_max_ms = regossip_max_ms
        self.regossip_taken_ms = regossip_taken_ms
        self.regossip_batch = regossip_batch
        self._entries: dict[bytes, _Entry] = {}
        #: The write on disk now, if any (one at a time: the next one takes all queued since).
        self._writing: WriteBatch | None = None

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if not e.gone)

    def __contains__(self, event_id: object) -> bool:
        entry = self._entries.get(event_id)  # type: ignore[call-overload]
        return entry is not None and not entry.gone

    # -- durability ---------------------------------------------------------------------------
    def accepted(self, event_id: bytes, now_ms: int) -> None:
        """A client gave us this event (again, perhaps): it is written before we answer."""
        entry = self._entries.get(event_id)
        if entry is None or entry.gone:
            self._entries[event_id] = _Entry(since_ms=now_ms)

    def restored(self, event_id: bytes, now_ms: int) -> None:
        """Reloaded from the store at start: durable already; due to every peer at once (what
        they took before we stopped, they may have lost since)."""
        self._entries[event_id] = _Entry(
            since_ms=now_ms - self.regossip_after_ms, durability=STORED
        )

    def is_durable(self, event_id: bytes) -> bool:
        """True when the event needs no write before it is answered: stored, or not ours to
        store (final, refused, or never accepted from a client here)."""
        entry = self._entries.get(event_id)
        return entry is None or entry.gone or entry.durability == STORED

    def next_write(self) -> WriteBatch | None:
        """The events to write now, or None (nothing queued, or a write is on disk already:
        what is accepted meanwhile goes in the next one)."""
        if self._writing is not None:
            return None
        ids = tuple(
            event_id
            for event_id, entry in self._entries.items()
            if entry.durability == QUEUED and not entry.gone
        )
        if not ids:
            return None
        for event_id in ids:
            self._entries[event_id].durability = WRITING
        self._writing = WriteBatch(ids)
        return self._writing

    def written(self, batch: WriteBatch) -> Written:
        """The write of `batch` is on disk."""
        durable, stale = [], []
        for event_id in batch.event_ids:
            entry = self._entries.get(event_id)
            if entry is None:
                continue
            entry.durability = STORED
            durable.append(event_id)
            if entry.gone:
                stale.append(event_id)
                del self._entries[event_id]
        self._writing = None
        return Written(tuple(durable), tuple(stale))

    def write_failed(self, batch: WriteBatch) -> tuple[bytes, ...]:
        """The write of `batch` failed: its events are queued again (a resubmission or the next
        acceptance retries); returns those whose requests get the failure."""
        failed = []
        for event_id in batch.event_ids:
            entry = self._entries.get(event_id)
            if entry is None:
                continue
            failed.append(event_id)
            if entry.gone:
                del self._entries[event_id]
            else:
                entry.durability = QUEUED
        self._writing = None
        return tuple(failed)

    def queued(self) -> bool:
        return any(e.durability == QUEUED and not e.gone for e in self._entries.values())

    def left(self, event_ids: Iterable[bytes]) -> list[bytes]:
        """These events are final or refused. Returns those whose pending key is in the store
        now, to delete in the batch that records why they left."""
        stored = []
        for event_id in event_ids:
            entry = self._entries.get(event_id)
            if entry is None or entry.gone:
                continue
            if entry.durability == STORED:
                stored.append(event_id)
                del self._entries[event_id]
            elif entry.durability == WRITING:
                entry.gone = True  # deleted when its write returns (written)
            else:
                del self._entries[event_id]
        return stored

    # -- gossip -------------------------------------------------------------------------------
    def sent(self, event_ids: Iterable[bytes], peer: bytes, now_ms: int) -> None:
        """A gossip carrying these events left for `peer` (its outcome comes later)."""
        for event_id in event_ids:
            entry = self._entries.get(event_id)
            if entry is None or entry.gone:
                continue
            entry.next_ms = 0
            state = entry.peers.get(peer)
            if state is None:
                entry.peers[peer] = _PeerState(
                    now_ms + self.regossip_after_ms, self.regossip_after_ms
                )
            elif not state.taken:
                state.interval_ms = min(state.interval_ms * 2, self.regossip_max_ms)
                state.due_ms = now_ms + state.interval_ms
            else:
                state.due_ms = now_ms + self.regossip_taken_ms

    def delivered(self, event_ids: Iterable[bytes], peer: bytes, now_ms: int) -> None:
        """`peer` answered a gossip carrying these events: it has them (or refused them)."""
        for event_id in event_ids:
            entry = self._entries.get(event_id)
            if entry is None or entry.gone:
                continue
            entry.next_ms = 0
            state = entry.peers.setdefault(peer, _PeerState(0, self.regossip_after_ms))
            state.taken = True
            state.interval_ms = self.regossip_after_ms
            state.due_ms = now_ms + self.regossip_taken_ms

    def due(self, now_ms: int, peers: Sequence[bytes]) -> dict[bytes, list[bytes]]:
        """Per peer, the events to send it again now, oldest first, at most regossip_batch.

        A peer never sent an event is due once the event is regossip_after_ms old (its first
        gossip may still be on its way in the outbox before that); each send is then recorded
        with sent(), which sets the next time.
        """
        out: dict[bytes, list[bytes]] = {peer: [] for peer in peers}
        for event_id, entry in self._entries.items():
            if entry.gone or entry.next_ms > now_ms:
                continue
            soonest = None
            for peer in peers:
                state = entry.peers.get(peer)
                due_ms = entry.since_ms + self.regossip_after_ms if state is None else state.due_ms
                batch = out[peer]
                if due_ms <= now_ms and len(batch) < self.regossip_batch:
                    batch.append(event_id)
                soonest = due_ms if soonest is None else min(soonest, due_ms)
            # Those returned now are due again at once unless sent() records their send.
            entry.next_ms = soonest if soonest is not None else now_ms + self.regossip_after_ms
        return {peer: ids for peer, ids in out.items() if ids}
