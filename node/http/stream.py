"""The event stream routes (SPEC 9): GET /v1/stream and GET /v1/public/stream, as Server-Sent
Events (the shell: node/notify/stream.py; the cursor: node/notify/cursor.py)."""

from __future__ import annotations

from aiohttp import web

from node.http.appkeys import NOTIFICATIONS
from node.http.responses import operator_only
from node.notify.hub import Notifications
from node.notify.stream import (
    StreamSource,
    header_source,
    participant_source,
    requested_cursor,
    serve_stream,
)


@operator_only  # a token of scope read or more (checked in app.py before this runs)
async def participant_stream(request: web.Request) -> web.StreamResponse:
    """The final events that concern this node's participant."""
    hub = request.app[NOTIFICATIONS]
    after = requested_cursor(request)
    source = participant_source(hub.node.store, hub.node.participant, after)
    # A client that named no cursor is told where it starts, so that it can resume from there
    # even if it breaks off before its first event (an SSE message of an id alone).
    first = b"" if after is not None else f"id: {source.cursor}\n".encode()
    return await _serve(request, hub, source, "participant", first)


async def public_stream(request: web.Request) -> web.StreamResponse:
    """Final headers with their commit certificates, for monitors."""
    hub = request.app[NOTIFICATIONS]
    source = header_source(hub.node.store, requested_cursor(request))
    return await _serve(request, hub, source, "public", b"")


async def _serve(
    request: web.Request, hub: Notifications, source: StreamSource, name: str, first: bytes
) -> web.StreamResponse:
    return await serve_stream(
        request,
        hub.bell,
        source,
        heartbeat_s=hub.heartbeat_s,
        write_timeout_s=hub.write_timeout_s,
        first=first,
        on_open=hub.streams_open.labels(name).inc,
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/stream", participant_stream)
    r.add_get("/v1/public/stream", public_stream)
