"""The admin routes (`/v1/admin/...`, token scope `admin`): the node's API tokens, managed on the
running node (SPEC 6, "Managing a running node"), and snapshots of its chain (SPEC 10).
Officer accounts and webhooks join here."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from ledger.errors import MalformedInput
from ledger.store import keys
from node.http.appkeys import NODE, PRINCIPAL, TOKENS
from node.http.responses import admin_only, error_response, json_response, read_body
from node.snapshots import snapshot_stream
from node.tokens import check_name

log = logging.getLogger("kpledger.admin")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedInput("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedInput("the body is a JSON object")
    return data


@admin_only
async def list_tokens(request: web.Request) -> web.Response:
    book = request.app[TOKENS]
    now = book.now_ms()
    return json_response({"tokens": [record.to_json(now) for record in book.records()]})


@admin_only
async def add_token(request: web.Request) -> web.Response:
    """A new token, in the answer once (the node keeps only its hash)."""
    book = request.app[TOKENS]
    data = _json_object(await read_body(request, allow=("application/json",)))
    unknown = sorted(set(data) - {"name", "scope", "expires_days"})
    if unknown:
        raise MalformedInput(f"unknown fields: {', '.join(unknown)}")
    name, scope = data.get("name"), data.get("scope")
    if not isinstance(name, str) or not isinstance(scope, str):
        raise MalformedInput("give the token's name and scope (sync, read or admin)")
    expires_days = data.get("expires_days")
    if expires_days is not None and (type(expires_days) is not int):
        raise MalformedInput("expires_days is a whole number of days")
    token, record = book.add(name, scope, expires_days)
    log.info(
        "token added",
        extra={
            "token_name": record.name,
            "scope": record.scope,
            "expires_ms": record.expires_ms,
            "by": request[PRINCIPAL].name,
        },
    )
    return json_response({**record.to_json(book.now_ms()), "token": token}, status=201)


@admin_only
async def revoke_token(request: web.Request) -> web.Response:
    book = request.app[TOKENS]
    name = check_name(request.match_info["name"])
    record = book.revoke(name)
    log.info("token revoked", extra={"token_name": name, "by": request[PRINCIPAL].name})
    return json_response(record.to_json(book.now_ms()))


#: The media type of a snapshot file (docs/snapshots.md).
SNAPSHOT_TYPE = "application/vnd.kpledger.snapshot"


@admin_only
async def snapshot(request: web.Request) -> web.StreamResponse:
    """The chain at the final height of this instant, streamed (`kpledger snapshot create`).

    One LevelDB snapshot is held while it streams: blocks finalised meanwhile are not in it.
    Each piece is read in a worker thread, so the node keeps voting and answering meanwhile.
    """
    node = request.app[NODE]
    loop = asyncio.get_running_loop()
    with node.store.kv.snapshot() as view:
        if view.get(keys.K_HEAD) is None:
            return error_response(404, "no_blocks", "the node has no final block to snapshot yet")
        header, pieces = await loop.run_in_executor(None, snapshot_stream, view, node.genesis)
        response = web.StreamResponse(
            headers={
                "Content-Type": SNAPSHOT_TYPE,
                "Content-Disposition": (
                    f'attachment; filename="{header.chain_id}-{header.height}.kpsnap"'
                ),
                "Cache-Control": "no-store",
                "X-Kpledger-Snapshot-Height": str(header.height),
            }
        )
        await response.prepare(request)
        sent = 0
        try:
            while (piece := await loop.run_in_executor(None, next, pieces, None)) is not None:
                await response.write(piece)
                sent += len(piece)
        finally:
            pieces.close()
        await response.write_eof()
    log.info(
        "snapshot sent",
        extra={"height": header.height, "bytes": sent, "by": request[PRINCIPAL].name},
    )
    return response


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/admin/snapshot", snapshot)
    r.add_get("/v1/admin/tokens", list_tokens)
    r.add_post("/v1/admin/tokens", add_token)
    r.add_delete("/v1/admin/tokens/{name}", revoke_token)
