"""KP statistics and reconciliation over HTTP: public aggregates, pairs and open loops (token)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from ledger.certificate import format_hundredths
from ledger.errors import MalformedInput
from ledger.state import IMPORT_REJECTED, ISSUED
from ledger.stats import EXPORT, Figures
from ledger.store import Store


def _figures_json(f: Figures) -> dict[str, Any]:
    return {
        "certificates": f.certificates,
        "carats": format_hundredths(f.carats),
        "value_usd": format_hundredths(f.value_usd),
    }


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


#: Public cells with fewer certificates show the count only: a cell of one or two certificates
#: would give away a single shipment's carats and value (statistical disclosure control).
MIN_PUBLIC_CELL = 3


def public_stats(store: Store, year: int, quarter: int | None) -> dict[str, Any]:
    """Per participant (as exporter and as importer) and HS code, as the KP publishes them."""
    table: dict[tuple[str, str, str], Figures] = defaultdict(Figures)
    for key, figures in store.stats(year, quarter):
        table[(key.participant, key.role, key.hs_code)] += figures
    rows = []
    for (participant, role, hs), figures in sorted(table.items()):
        row: dict[str, Any] = {
            "participant": participant,
            "role": "exporter" if role == EXPORT else "importer",
            "hs_code": hs,
            **_figures_json(figures),
        }
        if figures.certificates < MIN_PUBLIC_CELL:
            row.update(carats=None, value_usd=None, suppressed=True)
        rows.append(row)
    return {"year": year, "quarter": quarter, "min_cell": MIN_PUBLIC_CELL, "rows": rows}


def pair_stats(store: Store, year: int, quarter: int | None) -> dict[str, Any]:
    """Exports of A to B against imports of B from A: the loop paper never closes."""
    exports: dict[tuple[str, str], Figures] = defaultdict(Figures)
    imports: dict[tuple[str, str], Figures] = defaultdict(Figures)
    for key, figures in store.stats(year, quarter):
        if key.role == EXPORT:
            exports[(key.participant, key.counterparty)] += figures
        else:
            imports[(key.counterparty, key.participant)] += figures
    rows = []
    for exporter, importer in sorted(set(exports) | set(imports)):
        e, i = exports[(exporter, importer)], imports[(exporter, importer)]
        rows.append(
            {
                "exporting_participant": exporter,
                "importing_participant": importer,
                "exported": _figures_json(e),
                "imported": _figures_json(i),
                "unconfirmed": _figures_json(e + (-i)),
            }
        )
    return {"year": year, "quarter": quarter, "pairs": rows}


def reconcile(store: Store, days: int, year: int | None = None) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    cutoff = (today - timedelta(days=days)).isoformat()
    overdue: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    for record in store.certificates(status=ISSUED, date_to=cutoff, limit=1_000_000):
        item = {
            "number": record.number,
            "exporting_participant": record.facts.exporting_participant,
            "importing_participant": record.facts.importing_participant,
            "issued_on": record.facts.issued_on.isoformat(),
            "expires_on": record.facts.expires_on.isoformat(),
        }
        (expired if record.facts.expires_on < today else overdue).append(item)
    rejected = [
        {
            "number": r.number,
            "exporting_participant": r.facts.exporting_participant,
            "importing_participant": r.facts.importing_participant,
            "issued_on": r.facts.issued_on.isoformat(),
            "reason": r.reason,
        }
        for r in store.certificates(status=IMPORT_REJECTED, limit=1_000_000)
    ]
    return {
        "days": days,
        "not_confirmed_after_days": overdue,
        "expired_unconfirmed": expired,
        "rejected": rejected,
        "pairs": pair_stats(store, year or today.year, None)["pairs"],
    }


def register(app: web.Application, node_key: Any, require_token: Any) -> None:
    async def get_public_stats(request: web.Request) -> web.Response:
        year, quarter = _period(request.query)
        return web.json_response(public_stats(request.app[node_key].store, year, quarter))

    async def get_pair_stats(request: web.Request) -> web.Response:
        require_token(request)
        year, quarter = _period(request.query)
        return web.json_response(pair_stats(request.app[node_key].store, year, quarter))

    async def get_reconcile(request: web.Request) -> web.Response:
        require_token(request)
        try:
            days = int(request.query.get("days", "30"))
        except ValueError as exc:
            raise MalformedInput("days is a whole number") from exc
        if not 0 <= days <= 36500:
            raise MalformedInput("days out of range")
        year = _period(request.query)[0] if request.query.get("year") else None
        return web.json_response(reconcile(request.app[node_key].store, days, year))

    app.router.add_get("/v1/public/stats", get_public_stats)
    app.router.add_get("/v1/stats", get_pair_stats)
    app.router.add_get("/v1/reconcile", get_reconcile)
