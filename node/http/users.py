"""The admin routes for portal officer accounts (`/v1/admin/users`, token scope `admin`): used
by `kpledger user add|list|disable|reset` on the running node (SPEC 6 and 7)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ledger.errors import MalformedInput
from node.http.admin import _json_object
from node.http.appkeys import ACCOUNTS, ACTIVITY, PRINCIPAL, SESSIONS
from node.http.responses import admin_only, json_response, read_body
from node.portal.accounts import check_name

log = logging.getLogger("kpledger.admin")


def _who(request: web.Request) -> str:
    """How the activity log names a change made through the admin API: by its token's name."""
    return f"token:{request[PRINCIPAL].name}"


@admin_only
async def list_users(request: web.Request) -> web.Response:
    book = request.app[ACCOUNTS]
    now = book.clock()
    return json_response({"users": [a.to_json(now) for a in book.records()]})


@admin_only
async def add_user(request: web.Request) -> web.Response:
    book = request.app[ACCOUNTS]
    data = _json_object(await read_body(request, allow=("application/json",)))
    unknown = sorted(set(data) - {"name", "role", "password"})
    if unknown:
        raise MalformedInput(f"unknown fields: {', '.join(unknown)}")
    name, role, password = data.get("name"), data.get("role"), data.get("password")
    if not isinstance(name, str) or not isinstance(role, str) or not isinstance(password, str):
        raise MalformedInput("give the officer's name, role and password")
    # Argon2id takes tens of milliseconds and 64 MiB: off the event loop.
    account = await asyncio.to_thread(book.add, name, role, password)
    request.app[ACTIVITY].record(_who(request), "user.add", "done", detail=f"{name} ({role})")
    log.info("officer added", extra={"officer": name, "role": role, "by": request[PRINCIPAL].name})
    return json_response(account.to_json(book.clock()), status=201)


@admin_only
async def disable_user(request: web.Request) -> web.Response:
    book = request.app[ACCOUNTS]
    name = check_name(request.match_info["name"])
    account = book.disable(name)
    ended = request.app[SESSIONS].end_all(name)
    request.app[ACTIVITY].record(_who(request), "user.disable", "done", detail=name)
    log.info("officer disabled", extra={"officer": name, "sessions_ended": ended})
    return json_response(account.to_json(book.clock()))


@admin_only
async def reset_user(request: web.Request) -> web.Response:
    """A new password (and the account enabled and unlocked again); its sessions end."""
    book = request.app[ACCOUNTS]
    name = check_name(request.match_info["name"])
    data = _json_object(await read_body(request, allow=("application/json",)))
    unknown = sorted(set(data) - {"password"})
    if unknown:
        raise MalformedInput(f"unknown fields: {', '.join(unknown)}")
    password = data.get("password")
    if not isinstance(password, str):
        raise MalformedInput("give the new password")
    account = await asyncio.to_thread(book.reset, name, password)
    request.app[SESSIONS].end_all(name)
    request.app[ACTIVITY].record(_who(request), "user.reset", "done", detail=name)
    log.info("officer password reset", extra={"officer": name, "by": request[PRINCIPAL].name})
    return json_response(account.to_json(book.clock()))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/admin/users", list_users)
    r.add_post("/v1/admin/users", add_user)
    r.add_post("/v1/admin/users/{name}/disable", disable_user)
    r.add_post("/v1/admin/users/{name}/reset", reset_user)
