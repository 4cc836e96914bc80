"""The webhooks' admin routes (SPEC 9): list with delivery status, add, remove; a token of
scope admin (app.py checks it). The outbox and the sender: node/notify/."""

from __future__ import annotations

import json
import re

from aiohttp import web

from ledger.errors import MalformedInput, WebhookNotFound
from node.http.appkeys import NOTIFICATIONS
from node.http.responses import admin_only, json_response, read_body

_WEBHOOK_ID = re.compile(r"wh_[0-9a-f]{12}")


@admin_only
async def list_webhooks(request: web.Request) -> web.Response:
    hub = request.app[NOTIFICATIONS]
    items = [hub.webhook_json(w) for w in hub.book.webhooks()]
    return json_response({"webhooks": items, "count": len(items)})


@admin_only
async def add_webhook(request: web.Request) -> web.Response:
    hub = request.app[NOTIFICATIONS]
    raw = await read_body(request, allow=("application/json",))
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedInput("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise MalformedInput('the body is {"url": "https://...", "events": ["type", ...]}')
    unknown = sorted(set(body) - {"url", "events"})
    if unknown:
        raise MalformedInput(f"unknown field {', '.join(unknown)}; a webhook has url and events")
    webhook = hub.add_webhook(body.get("url"), body.get("events"))
    out = hub.webhook_json(webhook)
    out["secret"] = webhook.secret_text  # shown this once; the node keeps it to sign with
    return json_response(out, status=201)


@admin_only
async def remove_webhook(request: web.Request) -> web.Response:
    hub = request.app[NOTIFICATIONS]
    webhook_id = request.match_info["webhook_id"]
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise WebhookNotFound(
            f"no webhook {webhook_id[:40]!r} on this node (an id is wh_ and 12 hex digits)"
        )
    hub.remove_webhook(webhook_id)
    return json_response({"id": webhook_id, "removed": True})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/webhooks", list_webhooks)
    r.add_post("/v1/webhooks", add_webhook)
    r.add_delete("/v1/webhooks/{webhook_id}", remove_webhook)
