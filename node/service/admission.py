"""Admission: whether the node takes an event (every rule, within a verification budget), the
refusals it records, and what it says of an event's status."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.chain import Execution
from ledger.errors import BadSignature, EventTooLarge, LedgerError, StoreCorrupt, StoreWriteFailed
from ledger.events import Event
from ledger.records import CertificateRecord, StateReader
from ledger.state import Overlay
from node.health import Health
from node.limits import RateLimiter
from node.mempool import Mempool
from node.metrics import Metrics
from node.service.view import ChainView

log = logging.getLogger("kpledger.node")

#: Signature verifications per second, in all, that the node spends looking for whose key made
#: a bad signature (one per registered key, per refusal), and how many it may spend at once:
#: about an eighth of a core, then a bad signature costs one verification and is bad_signature.
ATTRIBUTION_VERIFIES_PER_S = 2_000
ATTRIBUTION_VERIFIES_BURST = 20_000


@dataclass(frozen=True)
class EventStatus:
    status: str  # pending | final | rejected
    height: int | None = None
    error: str | None = None
    message: str | None = None


class Durability(Protocol):
    """The durable mempool as admission uses it (node/service/durable.py)."""

    def accepted(self, event: Event) -> None: ...

    def forget(self, event_ids: list[bytes]) -> list[bytes]: ...


class Outbox(Protocol):
    """Where a client's accepted event waits for the next gossip (node/service/gossip.py)."""

    def add(self, event: Event) -> None: ...


class _Unstored:
    """The committed state as admission reads it for one event that submit has just found
    absent from the store: asked again whether that event is stored, it says no without a
    second LevelDB read (the store does not change between the two: commits run on the same
    thread as submit). Everything else is the reader's own answer."""

    def __init__(self, reader: StateReader, event_id: bytes) -> None:
        self._reader = reader
        self._event_id = event_id

    def has_event(self, event_id: bytes) -> bool:
        return event_id != self._event_id and self._reader.has_event(event_id)

    def get_certificate(self, number: str) -> CertificateRecord | None:
        return self._reader.get_certificate(number)

    def __getattr__(self, name: str) -> Any:
        # The optional parts of a reader (headers, activity, proposals) that Overlay and the
        # governance rules look up with getattr: the same as the reader's, or absent likewise.
        return getattr(self._reader, name)


class Admission:
    """Takes events from clients and peers into the mempool, or says no with the rule broken."""

    def __init__(
        self,
        view: ChainView,
        mempool: Mempool,
        durability: Durability,
        outbox: Outbox,
        health: Health,
        metrics: Metrics,
    ) -> None:
        self.view = view
        self.mempool = mempool
        self.durability = durability
        self.outbox = outbox
        self.health = health
        self.metrics = metrics
        # Saying whose key made a bad signature costs a verification per registered key: granted
        # from a budget of verifications, else the refusal is a plain bad_signature.
        self.attributions = RateLimiter(ATTRIBUTION_VERIFIES_PER_S, ATTRIBUTION_VERIFIES_BURST)
        #: Told each time an event enters the mempool (the driver schedules a round).
        self._on_pending: list[Callable[[], None]] = []

    def when_pending(self, listener: Callable[[], None]) -> None:
        """Call `listener` each time an event enters the mempool."""
        self._on_pending.append(listener)

    def submit(self, event: Event, *, from_peer: bool = False) -> EventStatus:
        """Admit a signed event, or raise the LedgerError that says why not. Idempotent."""
        store, registry = self.view.store, self.view.registry
        stored = store.event(event.event_id)
        if stored is not None:
            return EventStatus("final", stored.height)
        if event.event_id in self.mempool:
            if not from_peer:
                # A peer's event that a client gives us too: now ours to store and re-gossip.
                self.durability.accepted(event)
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
        if len(event.encoded) > registry.parameters.max_event_bytes:
            raise EventTooLarge(
                f"the event is {len(event.encoded)} bytes; at most "
                f"{registry.parameters.max_event_bytes} are accepted"
            )
        try:
            # Checks the signature (once: the mempool remembers it) and every rule against the
            # committed state, so that a client hears "no" at once whenever it can.
            self._admit(event)
        except LedgerError as exc:
            self.metrics.events_refused.labels(exc.code).inc()
            raise
        self.mempool.add(event)
        self.metrics.events_accepted.labels(event.type).inc()
        self.metrics.mempool.set(len(self.mempool))
        if not from_peer:
            self.durability.accepted(event)
            self.outbox.add(event)
        for listener in self._on_pending:
            listener()
        return EventStatus("pending")

    def _admit(self, event: Event) -> None:
        """Check an event that the store does not hold as its block would, or raise its
        refusal. A bad signature is looked up among the register's other keys (to say whose it
        is) only as the budget allows."""
        view = self.view
        ctx = view.next_context()
        reader = _Unstored(view.reader, event.event_id)  # submit read the store for it just now
        try:
            Overlay(reader).apply(view.registry, event, ctx, attribute=False)
        except BadSignature:
            registry = view.registry
            keys = 3 * len(registry.participants) + len(registry.validators)
            if not self.attributions.allow("node", cost=keys):
                raise
            Overlay(reader).apply(registry, event, ctx)

    def status(self, event_id: bytes) -> EventStatus | None:
        """Final (with its height), pending, rejected (with why), or None: never seen here."""
        store = self.view.store
        stored = store.event(event_id)
        if stored is not None:
            return EventStatus("final", stored.height)
        if event_id in self.mempool:
            return EventStatus("pending")
        refused = store.refused(event_id)
        if refused is not None:
            return EventStatus("rejected", error=refused[0], message=refused[1])
        return None

    # -- refusals after acceptance ----------------------------------------------------------------
    def refuse(self, refused: Iterable[tuple[Event, LedgerError]]) -> None:
        """Events that no longer apply (at block time, or after a commit): out of the mempool,
        and their status says why."""
        for event, exc in refused:
            stored = self.durability.forget([event.event_id])
            self.view.store.note_refused(
                event.event_id, exc.code, exc.message, pending=bool(stored)
            )
            self.metrics.events_refused.labels(exc.code).inc()
            log.info(
                "event refused at block time",
                extra={"event_id": event.event_id.hex(), "code": exc.code},
            )

    def note_refused_relay(self, event: Event, exc: LedgerError) -> None:
        """A peer accepted `event` (its client heard 202) and we refuse it: the register moved
        on meanwhile (a key rotated, a proposal closed). Whoever asks this node about it hears
        "rejected" with why, not "never seen"."""
        self.view.store.note_refused(event.event_id, exc.code, exc.message)

    def committed(self, execution: Execution, register_changed: bool) -> None:
        """After a commit: pending events about the certificates the block changed may no
        longer apply; if the register changed, every one is checked again."""
        if register_changed:
            # Keys, members or restrictions may have changed: every pending event is checked
            # again, its signature included, under the register now in force.
            self.recheck(None)
        else:
            self.recheck(set(execution.records))

    def recheck(self, changed_numbers: set[str] | None) -> None:
        """Pending events about certificates a block just changed may no longer apply.

        None: the register changed, so every pending event is checked again, signature included.
        """
        if changed_numbers is not None and not changed_numbers:
            return
        view = self.view
        ctx = view.next_context()
        refused = []
        for event in self.mempool.events():
            if changed_numbers is None or event.number in changed_numbers:
                try:
                    Overlay(view.reader).apply(
                        view.registry, event, ctx, verified=changed_numbers is not None
                    )
                except LedgerError as exc:
                    refused.append((event, exc))
        self.refuse(refused)
