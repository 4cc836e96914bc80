"""KP statistics and reconciliation over HTTP: public aggregates, pairs and open loops (token)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.certificate import format_hundredths
from ledger.errors import StatisticsNotPublished, StoreCorrupt
from ledger.events import HistoricalBody
from ledger.records import IMPORT_REJECTED, ISSUED, CertificateRecord
from ledger.registry import Registry
from ledger.stats import (
    EXPORT,
    MIN_PUBLIC_CELL,
    Figures,
    PublicCell,
    Quarter,
    cell_of,
    freeze_ms,
)
from ledger.store import Store


def _figures_json(f: Figures) -> dict[str, Any]:
    return {
        "certificates": f.certificates,
        "carats": format_hundredths(f.carats),
        "value_usd": format_hundredths(f.value_usd),
    }


def _cell_row(cell: PublicCell, figures: Figures, *, suppress: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "participant": cell.participant,
        "role": "exporter" if cell.role == EXPORT else "importer",
        "hs_code": cell.hs_code,
        **_figures_json(figures),
    }
    if suppress and figures.certificates < MIN_PUBLIC_CELL:
        row.update(carats=None, value_usd=None, suppressed=True)
    return row


def _day(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).date().isoformat()


def _quarter_publication(
    store: Store, quarter: Quarter, publications: list[tuple[int, Quarter | None, Quarter, int]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One quarter's publication facts and its rows, as published (small cells count only)."""
    freeze_days = _freeze_days(store)
    frozen = next(
        (h, t)
        for h, before, after, t in publications
        if (before is None or before < quarter) and quarter <= after
    )
    cells = store.published(quarter)
    revised = sorted({p.height for p in cells.values() if p.height > frozen[0]})
    info: dict[str, Any] = {
        "quarter": quarter.quarter,
        "published": True,
        "frozen_at": frozen[0],
        "frozen_on": _day(frozen[1]),
        "revised_at": revised,
        "as_of_height": revised[-1] if revised else frozen[0],
    }
    following = store.last_published() or quarter
    info["next_publication_on"] = _day(freeze_ms(following.next(), freeze_days))
    rows = [
        _cell_row(cell, p.figures, suppress=True)
        for cell, p in sorted(cells.items())
        if p.figures.certificates > 0
    ]
    return info, rows


def _freeze_days(store: Store) -> int:
    registry = store.registry() or Registry.from_genesis(store.genesis)
    return registry.parameters.stats_freeze_days


def _not_published(store: Store, quarter: Quarter) -> StatisticsNotPublished:
    days = _freeze_days(store)
    on = _day(freeze_ms(quarter, days))
    return StatisticsNotPublished(
        f"the public statistics of {quarter} are not published yet: they are frozen at the first "
        f"block on or after {on} (UTC), {days} days after the quarter's end; live figures are on "
        "the participant API (GET /v1/stats, token)",
        on,
    )


def public_stats(store: Store, year: int, quarter: int | None) -> dict[str, Any]:
    """Per participant (as exporter and as importer) and HS code, as published (closed quarters).

    One quarter: its figures as frozen at its publication height, with later revisions. A year:
    the rows of its published quarters, each row naming its quarter (never summed across quarters,
    which would undo the small-cell rule), and when the others will be published.
    """
    last = store.last_published()
    publications = store.publications()
    wanted = [Quarter(year, quarter)] if quarter else [Quarter(year, q) for q in range(1, 5)]
    published = [q for q in wanted if last is not None and q <= last]
    if not published:
        raise _not_published(store, wanted[0])
    if quarter:
        info, rows = _quarter_publication(store, wanted[0], publications)
        return {"year": year, **info, "min_cell": MIN_PUBLIC_CELL, "rows": rows}
    quarters: list[dict[str, Any]] = []
    all_rows: list[dict[str, Any]] = []
    for q in wanted:
        if q in published:
            info, rows = _quarter_publication(store, q, publications)
            quarters.append(info)
            all_rows += [{"quarter": q.quarter, **row} for row in rows]
        else:
            error = _not_published(store, q)
            quarters.append(
                {"quarter": q.quarter, "published": False, "publishes_on": error.publishes_on}
            )
    return {
        "year": year,
        "quarter": None,
        "quarters": quarters,
        "min_cell": MIN_PUBLIC_CELL,
        "rows": all_rows,
    }


def live_rows(store: Store, year: int, quarter: int | None) -> list[dict[str, Any]]:
    """Per participant, role and HS code as of the head: every figure (participant API only)."""
    table: dict[PublicCell, Figures] = defaultdict(Figures)
    for key, figures in store.stats(year, quarter):
        table[cell_of(key)[1]] += figures
    return [_cell_row(cell, f, suppress=False) for cell, f in sorted(table.items())]


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
    return {
        "year": year,
        "quarter": quarter,
        "live": True,
        "height": store.height,
        "rows": live_rows(store, year, quarter),
        "pairs": rows,
    }


def reconcile(
    store: Store, days: int, year: int | None = None, participant: str | None = None
) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    cutoff = (today - timedelta(days=days)).isoformat()
    overdue: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    for record in store.certificates(status=ISSUED, date_to=cutoff, limit=1_000_000):
        if record.historical:  # closed before the network: reconciled below, not an open loop
            continue
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
        if not r.historical
    ]
    return {
        "days": days,
        "not_confirmed_after_days": overdue,
        "expired_unconfirmed": expired,
        "rejected": rejected,
        "pairs": pair_stats(store, year or today.year, None)["pairs"],
        "historical": historical_reconciliation(store, participant),
    }


#: How many numbers each list of the historical reconciliation names at most (the counts are
#: always complete).
HISTORICAL_LIST_LIMIT = 1000


def historical_reconciliation(store: Store, participant: str | None = None) -> dict[str, Any]:
    """Each historical record against its counterpart's account (SPEC 10): per pair of
    participants, how many both recorded alike, differently, or only one of them recorded; and
    the numbers of each kind (the differing ones with what differs). `participant`: only the
    records it is a party to."""
    pairs: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"matched": 0, "differing": 0, "exporter_only": 0, "importer_only": 0}
    )
    lists: dict[str, list[dict[str, Any]]] = {
        "differing": [],
        "exporter_only": [],
        "importer_only": [],
    }
    for record in store.certificates(limit=10**9):
        if not record.historical:
            continue
        f = record.facts
        pair = (f.exporting_participant, f.importing_participant)
        if participant is not None and participant not in pair:
            continue
        item: dict[str, Any] = {
            "number": f.number,
            "exporting_participant": pair[0],
            "importing_participant": pair[1],
            "issued_on": f.issued_on.isoformat(),
        }
        if len(record.accounts) < 2:
            kind = "exporter_only" if record.accounts[0] == pair[0] else "importer_only"
        else:
            accounts = [_account(store, record, i) for i in range(2)]
            by_side = dict(zip(record.accounts, accounts, strict=True))
            exporter, importer = by_side[pair[0]], by_side[pair[1]]
            differs = {
                name: {"exporter": exporter[name], "importer": importer[name]}
                for name in exporter
                if exporter[name] != importer[name]
            }
            kind = "differing" if differs else "matched"
            item["differs"] = differs
        pairs[pair][kind] += 1
        if kind != "matched" and len(lists[kind]) < HISTORICAL_LIST_LIMIT:
            lists[kind].append(item)
    return {
        "pairs": [
            {"exporting_participant": e, "importing_participant": i, **counts}
            for (e, i), counts in sorted(pairs.items())
        ],
        **lists,
        "participant": participant,
        "list_limit": HISTORICAL_LIST_LIMIT,
    }


def _account(store: Store, record: CertificateRecord, index: int) -> dict[str, Any]:
    """What one account of a historical record says: the facts every participant node may read
    (not the parties, which only the two parties' nodes can open) and the status it recorded."""
    stored = store.event(record.history[index].event_id)
    if stored is None or not isinstance(stored.event.body, HistoricalBody):
        raise StoreCorrupt(f"the store lacks an account of historical record {record.number}")
    body = stored.event.body
    f = body.facts
    out: dict[str, Any] = {
        "origin": "+".join(f.origin),
        "hs_code": f.hs_code,
        "carats": format_hundredths(f.carats),
        "value_usd": format_hundredths(f.value_usd),
        "parcels": f.parcels,
        "issued_on": f.issued_on.isoformat(),
        "expires_on": f.expires_on.isoformat(),
        "status": body.status,
    }
    return out
