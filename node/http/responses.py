"""What every route family shares: JSON answers, a client's body within its bound, and the
mark on a route that needs the node operator's token (checked by app.py)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node.http.appkeys import NODE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The attribute operator_only and admin_only set on a handler: the token scope the route needs
#: (node/tokens.py); app.py's token middleware reads it.
SCOPE_NEEDED = "kpledger_scope_needed"


def operator_only(handler: Handler) -> Handler:
    """Mark a route as the node operator's confidential reads: app.py checks, before it runs,
    for a bearer token of scope `read` or more."""
    setattr(handler, SCOPE_NEEDED, "read")
    return handler


def sync_only(handler: Handler) -> Handler:
    """Mark a route as what an observer needs (the pages of final blocks): app.py checks, before
    it runs, for a bearer token of scope `sync` or more."""
    setattr(handler, SCOPE_NEEDED, "sync")
    return handler


def admin_only(handler: Handler) -> Handler:
    """Mark a route as the node's management (tokens, and later officers and webhooks): app.py
    checks, before it runs, for a bearer token of scope `admin`."""
    setattr(handler, SCOPE_NEEDED, "admin")
    return handler


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


async def read_body(
    request: web.Request, *, allow: tuple[str, ...], limit: int | None = None
) -> bytes:
    """The request's body, of one of the `allow`ed types and at most `limit` bytes (the node's
    max_body_bytes unless told)."""
    content_type = request.content_type
    if content_type not in allow:
        raise web.HTTPUnsupportedMediaType(text=f"send {' or '.join(allow)}, not {content_type!r}")
    if limit is None:
        limit = request.app[NODE].config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    # read(n) answers what has arrived, up to n bytes: a body sent in several segments needs
    # several reads (one read alone took the first segment for the whole body, now and then).
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
    return b"".join(chunks)
