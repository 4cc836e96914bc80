"""How certificates read in JSON: the participant view and the public view (no trade data)."""

from __future__ import annotations

from datetime import date
from typing import Any

from ledger.certificate import format_hundredths
from ledger.state import CertificateRecord
from ledger.store import Store


def history_json(store: Store, record: CertificateRecord) -> list[dict[str, Any]]:
    out = []
    for entry in record.history:
        out.append(
            {
                "event_id": entry.event_id.hex(),
                "type": entry.type,
                "time_ms": entry.time_ms,
                "time": _iso(entry.time_ms),
                "height": entry.height,
            }
        )
    return out


def _iso(time_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def certificate_facts_json(record: CertificateRecord, *, today: date) -> dict[str, Any]:
    """What every participant node may read: facts, amounts, status (not the parties)."""
    f = record.facts
    out: dict[str, Any] = {
        "number": f.number,
        "status": record.effective_status(today),
        "ledger_status": record.status,
        "exporting_participant": f.exporting_participant,
        "importing_participant": f.importing_participant,
        "origin": list(f.origin),
        "hs_code": f.hs_code,
        "carats": format_hundredths(f.carats),
        "value_usd": format_hundredths(f.value_usd),
        "parcels": f.parcels,
        "issued_on": f.issued_on.isoformat(),
        "expires_on": f.expires_on.isoformat(),
        "digest": record.digest.hex(),
    }
    if f.replaces:
        out["replaces"] = f.replaces
    if f.zone:
        out["zone"] = f.zone
    if record.replaced_by:
        out["replaced_by"] = record.replaced_by
    if record.reason:
        out["reason"] = record.reason
    return out


def public_certificate_json(
    store: Store, record: CertificateRecord, *, today: date
) -> dict[str, Any]:
    """The public view: never the parties, carats, value, origin or parcels of a certificate."""
    f = record.facts
    out: dict[str, Any] = {
        "number": f.number,
        "status": record.effective_status(today),
        "ledger_status": record.status,
        "exporting_participant": f.exporting_participant,
        "importing_participant": f.importing_participant,
        "issued_on": f.issued_on.isoformat(),
        "expires_on": f.expires_on.isoformat(),
        "digest": record.digest.hex(),
        "history": [
            {k: v for k, v in item.items() if k in ("event_id", "type", "time", "height")}
            for item in history_json(store, record)
        ],
    }
    if f.replaces:
        out["replaces"] = f.replaces
    if record.replaced_by:
        out["replaced_by"] = record.replaced_by
    if record.status == "voided" and record.reason:
        out["void_reason"] = record.reason
    return out
