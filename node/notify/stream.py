"""The event streams' shell: Server-Sent Events of the final chain, read from the store by cursor.

Each client reads the store itself, page by page from its own cursor (node/notify/cursor.py):
the node keeps nothing per client but that cursor and one page (MAX_PAGE_EVENTS events, or
PUBLIC_PAGE_BLOCKS headers). A write waits for the client to take what was sent before (the
transport's buffer is bounded); a slow client therefore falls behind in the chain, never in the
node's memory, and one that takes nothing for `request_timeout_s` is disconnected (it resumes
from its last id). A new final block rings the bell every waiting stream awaits: no client
polls. Shapes: SPEC 9 and docs/api/notifications.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ledger.encoding import decode
from ledger.errors import StoreCorrupt
from ledger.store import Store
from node.notify.cursor import Cursor, Interest, Page, head_cursor, iso_time, next_page
from node.views import final_header_json

log = logging.getLogger("kpledger.stream")

#: Final headers per page of the public stream (each carries its commit certificate).
PUBLIC_PAGE_BLOCKS = 16
#: What a client waits before reconnecting after the stream broke (the SSE `retry` field).
RETRY_MS = 2000
HEARTBEAT = b": keep-alive\n\n"


class StoreChain:
    """The final chain as the cursor reads it (node/notify/cursor.py's FinalChain), from a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def height(self) -> int:
        return self.store.height

    def block_events(self, height: int) -> list[tuple[bytes, str, str]]:
        out = []
        for leaf in self.store.event_leaves(height):
            event_id, event_type, number = decode(leaf)
            out.append((bytes(event_id), str(event_type), str(number)))
        return out

    def block_time_ms(self, height: int) -> int:
        header = self.store.header(height)
        if header is None:
            raise StoreCorrupt(f"the store names events of block {height} but lacks its header")
        return header.time_ms

    def parties(self, number: str) -> tuple[str, str]:
        record = self.store.get_certificate(number)
        if record is None:
            raise StoreCorrupt(f"a final event names certificate {number}, which the store lacks")
        return record.facts.exporting_participant, record.facts.importing_participant


class FinalityBell:
    """Rung at each new final block; whoever took a ticket before is woken. One asyncio.Event
    per block for all the streams, not one timer per client."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def ticket(self) -> asyncio.Event:
        """Take before reading the chain: a block final after that sets it."""
        return self._event

    def ring(self, height: int | None = None) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def close(self) -> None:
        """The node is stopping: every stream ends (its clients resume elsewhere or later)."""
        self.closed = True
        self.ring()


def sse_message(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    """One SSE message. JSON escapes line breaks, so `data` is always a single line."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event_id}\nevent: {event_type}\ndata: {body}\n\n".encode()


def requested_cursor(request: web.Request) -> Cursor | None:
    """Where the client resumes: Last-Event-ID (what a reconnecting EventSource sends, newer
    than the URL it reuses), else `?after=`; None: from now on."""
    raw = request.headers.get("Last-Event-ID")
    if raw is None or not raw.strip():
        raw = request.query.get("after")
    if raw is None or not raw.strip():
        return None
    return Cursor.parse(raw)


class StreamSource:
    """What one stream sends: the next page of SSE messages after its own cursor."""

    def next_messages(self) -> tuple[list[bytes], bool]:
        """(messages, caught up with the final chain)."""
        raise NotImplementedError


class ParticipantSource(StreamSource):
    """The final events that concern the node's participant (GET /v1/stream)."""

    def __init__(self, chain: StoreChain, interest: Interest, after: Cursor) -> None:
        self.chain = chain
        self.interest = interest
        self.cursor = after

    def next_messages(self) -> tuple[list[bytes], bool]:
        page: Page = next_page(self.chain, self.interest, self.cursor)
        self.cursor = page.cursor
        messages = [sse_message(str(e.cursor), e.type, e.to_json()) for e in page.events]
        return messages, page.caught_up


class HeaderSource(StreamSource):
    """Final headers with their commit certificates (GET /v1/public/stream)."""

    def __init__(self, store: Store, after_height: int) -> None:
        self.store = store
        self.height = after_height

    def next_messages(self) -> tuple[list[bytes], bool]:
        top = min(self.store.height, self.height + PUBLIC_PAGE_BLOCKS)
        messages = []
        for height in range(self.height + 1, top + 1):
            found = final_header_json(self.store, height)
            if found is None:
                raise StoreCorrupt(f"the store lacks the header of final block {height}")
            header = found["header"]
            data = {
                "height": height,
                "hash": header["hash"],
                "time": iso_time(int(header["time_ms"])),
                **found,
            }
            messages.append(sse_message(str(height), "block", data))
        self.height = top
        return messages, top >= self.store.height


async def serve_stream(
    request: web.Request,
    bell: FinalityBell,
    source: StreamSource,
    *,
    heartbeat_s: float,
    write_timeout_s: float,
    first: bytes = b"",
    on_open: Callable[[int], None] | None = None,
) -> web.StreamResponse:
    """Send `source`'s messages as they become final, until the client or the node goes."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # a reverse proxy must not hold the events back
        }
    )
    await response.prepare(request)
    _long_lived(request)
    loop = asyncio.get_running_loop()
    last_write = loop.time()

    async def send(data: bytes) -> bool:
        nonlocal last_write
        try:
            await asyncio.wait_for(response.write(data), write_timeout_s)
        except (TimeoutError, ConnectionError):
            # A client that took nothing for so long is let go (it resumes from its last id);
            # a write that cannot finish would otherwise hold its buffer for ever.
            if request.transport is not None:
                request.transport.abort()
            return False
        last_write = loop.time()
        return True

    if on_open is not None:
        on_open(1)
    try:
        if not await send(f"retry: {RETRY_MS}\n".encode() + first + b"\n"):
            return response
        while not bell.closed:
            ticket = bell.ticket()  # before reading: a block final meanwhile wakes us
            messages, caught_up = source.next_messages()
            for message in messages:
                if not await send(message):
                    return response
            if not caught_up:
                await asyncio.sleep(0)  # let the node's own work run between pages
                continue
            while not ticket.is_set() and not bell.closed:
                idle = loop.time() - last_write
                if idle >= heartbeat_s:
                    if not await send(HEARTBEAT):
                        return response
                    continue
                try:
                    await asyncio.wait_for(ticket.wait(), heartbeat_s - idle)
                except TimeoutError:
                    pass
    finally:
        if on_open is not None:
            on_open(-1)
    return response


def _long_lived(request: web.Request) -> None:
    """Lift the connection's request deadline (node/connections.py) for a stream: its writes
    have their own (serve_stream's write_timeout_s)."""
    protocol: Any = request.protocol
    lift = getattr(protocol, "stream_started", None)
    if lift is not None:
        lift()


def participant_source(store: Store, participant: str, after: Cursor | None) -> ParticipantSource:
    chain = StoreChain(store)
    return ParticipantSource(
        chain, Interest(participant), after if after is not None else head_cursor(chain)
    )


def header_source(store: Store, after: Cursor | None) -> HeaderSource:
    """From the client's cursor (its height), or from the current head (sent first)."""
    if after is None:
        return HeaderSource(store, max(store.height - 1, 0))
    return HeaderSource(store, after.height)
