"""The peer routes (/peer/...): gossip between nodes, each request signed by a node key."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ledger.encoding import decode, encode
from ledger.errors import BodyTooLarge, MalformedInput, PeerClockStale
from node.http.appkeys import NODE, PEER_GATE
from node.http.responses import Handler, error_response
from node.peers import MSGPACK, SYNC_PAGE_BLOCKS, PeerGate, consensus_body_bound, events_body_bound
from node.service import LedgerNode, now_ms

PeerHandler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


async def _read_hashed(request: web.Request, limit: int) -> tuple[bytes, bytes]:
    """The body, read chunk by chunk and hashed as it comes, refused once over `limit`."""
    digest = hashlib.sha256()
    chunks = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes, this route's bound")
        digest.update(chunk)
        chunks.append(chunk)
    return b"".join(chunks), digest.digest()


def peer_route(handler: PeerHandler, body_bound: Callable[[LedgerNode], int] | None) -> Handler:
    """A /peer/ route: the signing headers are checked (sender, recipient, time, nonce and
    signature over the body's hash) before any of the body is read; then the body, within
    `body_bound` (None: no body), must hash to what was signed. A refusal raises (app.py
    answers it, and closes the connection when the body is left unread)."""

    async def route(request: web.Request) -> web.StreamResponse:
        node = request.app[NODE]
        local = now_ms()
        try:
            signed = request.app[PEER_GATE].check_headers(
                request.headers,
                node.peer_keys,  # validators, and every active participant's registered node
                request.method,
                request.path_qs,
                local,
            )
        except PeerClockStale as stale:
            node.health.observe_clock(stale.node_key.hex(), stale.time_ms, local)
            raise
        node.health.observe_clock(signed.node_key.hex(), signed.time_ms, local)
        limit = 0 if body_bound is None else body_bound(node)
        length = request.content_length
        if length is not None and length > limit:
            raise BodyTooLarge(f"the body is {length} bytes; this route takes at most {limit}")
        body, digest = await _read_hashed(request, limit)
        PeerGate.check_body(signed, digest)
        return await handler(request, body)

    return route


def _events_bound(node: LedgerNode) -> int:
    return events_body_bound(node.registry.parameters)


def _consensus_bound(node: LedgerNode) -> int:
    return consensus_body_bound(node.registry.parameters, len(node.registry.validators))


def _peer_items(body: bytes) -> list[Any]:
    items = decode(body)
    if not isinstance(items, list):
        raise MalformedInput("a peer message is a list")
    return items


async def peer_events(request: web.Request, body: bytes) -> web.Response:
    request.app[NODE].on_peer_events(_peer_items(body))
    return web.Response(status=204)


async def peer_consensus(request: web.Request, body: bytes) -> web.Response:
    request.app[NODE].on_peer_consensus(_peer_items(body))
    return web.Response(status=204)


async def peer_status(request: web.Request, body: bytes) -> web.Response:
    node = request.app[NODE]
    head = node.store.head
    answer = encode([node.store.height, head.hash if head else b""])
    return web.Response(body=answer, content_type=MSGPACK)


async def peer_candidate(request: web.Request, body: bytes) -> web.Response:
    """A block proposed at the current height, whole, for a peer that lacks some of its events."""
    try:
        value = bytes.fromhex(request.query.get("value", ""))
    except ValueError as exc:
        raise MalformedInput("value is a block hash in hex") from exc
    block = request.app[NODE].candidate_block(value)
    if block is None:
        return error_response(404, "block_not_found", "no such proposed block here")
    return web.Response(body=block, content_type=MSGPACK)


def final_blocks_response(request: web.Request) -> web.Response:
    """A page of final blocks: `limit` at most, within `max_bytes` (at most this node's own
    sync_page_bytes; the first block goes even alone, within the network's block bound)."""
    node = request.app[NODE]
    own = node.config.sync_page_bytes
    try:
        start = int(request.query.get("from", "1"))
        limit = min(max(int(request.query.get("limit", "64")), 1), SYNC_PAGE_BLOCKS)
        max_bytes = min(max(int(request.query.get("max_bytes", str(own))), 1), own)
    except ValueError as exc:
        raise MalformedInput("from, limit and max_bytes are whole numbers") from exc
    page = node.final_blocks(max(start, 1), limit, max_bytes)
    return web.Response(body=encode(page), content_type=MSGPACK)


async def peer_blocks(request: web.Request, body: bytes) -> web.Response:
    return final_blocks_response(request)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/peer/events", peer_route(peer_events, _events_bound))
    r.add_post("/peer/consensus", peer_route(peer_consensus, _consensus_bound))
    r.add_get("/peer/status", peer_route(peer_status, None))
    r.add_get("/peer/blocks", peer_route(peer_blocks, None))
    r.add_get("/peer/candidate", peer_route(peer_candidate, None))
