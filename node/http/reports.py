"""The statistics routes: the KP's public quarterly figures, and the participant API's pair
figures and reconciliation (node/reports.py computes them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ledger.certificate import is_participant_code
from ledger.errors import MalformedInput
from node.http.appkeys import NODE
from node.http.responses import operator_only
from node.reports import pair_stats, public_stats, reconcile


def _period(query: Any) -> tuple[int, int | None]:
    try:
        year = int(query.get("year") or datetime.now(UTC).year)
        quarter = int(query["quarter"]) if query.get("quarter") else None
    except ValueError as exc:
        raise MalformedInput("year and quarter are whole numbers") from exc
    if not 1900 <= year <= 9999:
        raise MalformedInput("year out of range")
    if quarter is not None and not 1 <= quarter <= 4:
        raise MalformedInput("quarter is 1, 2, 3 or 4")
    return year, quarter


async def get_public_stats(request: web.Request) -> web.Response:
    year, quarter = _period(request.query)
    return web.json_response(public_stats(request.app[NODE].store, year, quarter))


@operator_only
async def get_pair_stats(request: web.Request) -> web.Response:
    year, quarter = _period(request.query)
    return web.json_response(pair_stats(request.app[NODE].store, year, quarter))


@operator_only
async def get_reconcile(request: web.Request) -> web.Response:
    try:
        days = int(request.query.get("days", "30"))
    except ValueError as exc:
        raise MalformedInput("days is a whole number") from exc
    if not 0 <= days <= 36500:
        raise MalformedInput("days out of range")
    year = _period(request.query)[0] if request.query.get("year") else None
    participant = request.query.get("participant") or None
    if participant is not None and not is_participant_code(participant):
        raise MalformedInput("participant is a participant code: two capital letters, or EU")
    return web.json_response(reconcile(request.app[NODE].store, days, year, participant))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/public/stats", get_public_stats)
    app.router.add_get("/v1/stats", get_pair_stats)
    app.router.add_get("/v1/reconcile", get_reconcile)
