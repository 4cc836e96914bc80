"""The stream cursor: which final events concern a participant, read page by page from a cursor.

Pure: it reads the final chain through `FinalChain` and returns values; the SSE shell
(node/notify/stream.py) and the webhook sender (node/notify/webhooks.py) do the I/O. A cursor
`<height>:<index>` names the last position a reader has seen; the next page holds the events
strictly after it, in chain order, so resuming at any cursor gives exactly the suffix after it:
nothing missed, nothing repeated, on this node or any other (every node holds the same final
chain, so a cursor means the same everywhere and survives restarts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ledger.errors import MalformedInput

#: At most this many events, and this many blocks looked at, per page: what a reader holds at
#: once however far behind it is (a client a million blocks behind costs the same per page).
MAX_PAGE_EVENTS = 64
MAX_PAGE_BLOCKS = 256

#: The index a cursor written as a bare height stands for: past every event of that block.
BLOCK_END = 2**31 - 1

_CURSOR = re.compile(r"(\d{1,15})(?::(\d{1,10}))?")

#: The certificate's ledger status right after each certificate event (the stream's `status`).
STATUS_AFTER = {
    "certificate.issue": "issued",
    "certificate.confirm_import": "import_confirmed",
    "certificate.reject_import": "import_rejected",
    "certificate.void": "voided",
    "certificate.endorse": "issued",
    # A record from before the network, in the final status its account names (docs/history.md).
    "certificate.historical": "historical",
}
#: What `status` says of an event that is not about a certificate (governance and the rest).
FINAL = "final"
CERTIFICATE_PREFIX = "certificate."


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in the final chain: block `height`, event `index` within it (both from 0:
    height 0 is genesis, which holds no event, so `0:0` is before every event)."""

    height: int
    index: int

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """`H:I`, or a bare height `H` (past every event of block H). Anything else is refused."""
        found = _CURSOR.fullmatch(text.strip())
        if found is None:
            raise MalformedInput(
                f"a stream cursor is <height>:<index> (two whole numbers), not {text[:40]!r}"
            )
        index = found.group(2)
        value = int(index) if index is not None else BLOCK_END
        if value > BLOCK_END:
            raise MalformedInput(f"a stream cursor's index is at most {BLOCK_END}")
        return cls(int(found.group(1)), value)

    def __str__(self) -> str:
        return f"{self.height}:{self.index}"


START = Cursor(0, 0)


class FinalChain(Protocol):
    """What the cursor reads of the final chain (node/notify/stream.py's StoreChain: the store)."""

    @property
    def height(self) -> int:
        """The latest final height (0 before block 1)."""
        ...

    def block_events(self, height: int) -> list[tuple[bytes, str, str]]:
        """(event id, type, number or subject) of each event of final block `height`, in order."""
        ...

    def block_time_ms(self, height: int) -> int: ...

    def parties(self, number: str) -> tuple[str, str]:
        """(exporting, importing participant) of a certificate on the chain."""
        ...


@dataclass(frozen=True)
class Interest:
    """Whose events a reader wants: a participant's (its certificates', as exporter or importer,
    and every governance event), optionally only some event types."""

    participant: str
    types: frozenset[str] = frozenset()  # empty: every type

    def wants(self, chain: FinalChain, event_type: str, number: str) -> bool:
        if self.types and event_type not in self.types:
            return False
        if not event_type.startswith(CERTIFICATE_PREFIX):
            return True  # governance (proposals, votes, keys, validators) concerns every member
        return self.participant in chain.parties(number)


@dataclass(frozen=True)
class StreamEvent:
    """One final event as the stream and the webhooks name it."""

    cursor: Cursor
    event_id: bytes
    type: str
    number: str
    time_ms: int

    @property
    def height(self) -> int:
        return self.cursor.height

    @property
    def status(self) -> str:
        return STATUS_AFTER.get(self.type, FINAL)

    def to_json(self) -> dict[str, Any]:
        """The stream's `data` and a webhook's body (SPEC 9), with the cursor to resume from."""
        return {
            "event_id": self.event_id.hex(),
            "type": self.type,
            "number": self.number,
            "height": self.height,
            "time": iso_time(self.time_ms),
            "status": self.status,
            "cursor": str(self.cursor),
        }


@dataclass(frozen=True)
class Page:
    """The events after a cursor, and where the next page starts (`cursor`): past the last
    event returned, or past the last block looked at when none there concerned the reader."""

    events: tuple[StreamEvent, ...]
    cursor: Cursor
    #: The page reached the latest final block: the next one waits for a new block.
    caught_up: bool


def next_page(
    chain: FinalChain,
    interest: Interest,
    after: Cursor,
    *,
    max_events: int = MAX_PAGE_EVENTS,
    max_blocks: int = MAX_PAGE_BLOCKS,
) -> Page:
    """The events strictly after `after` that `interest` wants, in chain order, bounded."""
    head = chain.height
    found: list[StreamEvent] = []
    position = after
    height = max(after.height, 1)
    looked = 0
    while height <= head and looked < max_blocks:
        events = chain.block_events(height)
        first = after.index + 1 if height == after.height else 0
        time_ms: int | None = None
        for index in range(first, len(events)):
            event_id, event_type, number = events[index]
            if not interest.wants(chain, event_type, number):
                continue
            if time_ms is None:
                time_ms = chain.block_time_ms(height)
            here = Cursor(height, index)
            found.append(StreamEvent(here, event_id, event_type, number, time_ms))
            if len(found) >= max_events:
                done = height == head and index == len(events) - 1
                return Page(tuple(found), here, caught_up=done)
        # Past the whole block: its last index (0 for an empty block, which holds none).
        position = max(position, Cursor(height, max(len(events) - 1, 0)))
        # The cursor's own block is not counted: a page that looked at it alone would end
        # where it began (an empty block's cursor is its index 0 as well as past it).
        looked += height != after.height
        height += 1
    return Page(tuple(found), position, caught_up=height > head)


def head_cursor(chain: FinalChain) -> Cursor:
    """The cursor past every final event: where a reader without one starts (new events only)."""
    head = chain.height
    if head == 0:
        return START
    return Cursor(head, max(len(chain.block_events(head)) - 1, 0))


def iso_time(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
