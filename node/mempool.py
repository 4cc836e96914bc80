"""Events waiting for a block: deduplicated, bounded, first come first served."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ledger.errors import MempoolFull
from ledger.events import Event


class Mempool:
    def __init__(self, limit: int, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self._events: dict[bytes, Event] = {}
        self._admitted_at: dict[bytes, float] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._events

    @property
    def ids(self) -> set[bytes]:
        return set(self._events)

    def get(self, event_id: bytes) -> Event | None:
        return self._events.get(event_id)

    def add(self, event: Event, *, restored: bool = False) -> bool:
        """Admit an event whose signature was checked. False if it was already here.

        `restored`: an event accepted before a restart, reloaded from the store. It was
        promised, so the limits (which may have been lowered since) do not refuse it.
        """
        if event.event_id in self._events:
            return False
        full = len(self._events) >= self.limit or self._bytes + len(event.encoded) > self.max_bytes
        if full and not restored:
            raise MempoolFull("the node has too many pending events; retry in a moment")
        self._events[event.event_id] = event
        self._admitted_at[event.event_id] = time.monotonic()
        self._bytes += len(event.encoded)
        return True

    def take(self, max_events: int, max_bytes: int) -> list[Event]:
        """The oldest events that fit in one block (not removed until their block is final)."""
        out: list[Event] = []
        size = 0
        for event in self._events.values():
            if len(out) >= max_events or size + len(event.encoded) > max_bytes:
                break
            out.append(event)
            size += len(event.encoded)
        return out

    def remove(self, event_ids: Iterable[bytes]) -> list[float]:
        """Drop events (now final or refused); returns their admission times (for latency)."""
        admitted = []
        for event_id in event_ids:
            event = self._events.pop(event_id, None)
            if event is not None:
                self._bytes -= len(event.encoded)
                admitted.append(self._admitted_at.pop(event_id))
        return admitted

    def events(self) -> list[Event]:
        return list(self._events.values())
