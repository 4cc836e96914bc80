"""How certificates read in JSON: the participant view and the public view (no trade data)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ledger.certificate import format_hundredths
from ledger.consensus.messages import CommitCertificate
from ledger.encoding import decode
from ledger.errors import MalformedInput
from ledger.genesis import Participant
from ledger.proofs import VerifiedCertificate
from ledger.records import CertificateRecord
from ledger.registry import Registry
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


def final_header_json(store: Store, height: int) -> dict[str, Any] | None:
    """A final header and its commit certificate, as /v1/public/head and the public stream
    show them (None: no final block there)."""
    header = store.header(height)
    cert = store.commit_certificate_bytes(height)
    if header is None or cert is None:
        return None
    commit = CommitCertificate.from_wire(decode(cert))
    return {
        "header": header.to_json(),
        "commit_certificate": {
            "height": commit.height,
            "round": commit.round,
            "block_hash": commit.value.hex(),
            "signatures": [{"validator": i, "signature": s.hex()} for i, s in commit.signatures],
            "encoded": cert.hex(),
        },
    }


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
    if record.historical:
        # From before the network: the participants whose accounts of it are on the ledger.
        out["historical"] = True
        out["accounts"] = list(record.accounts)
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
    if record.historical:
        out["historical"] = True  # the proof binds it: its history is certificate.historical
    return out


#: Fields of the public view that a proof binds, and how the checked proof states each.
_BOUND_FACTS = ("exporting_participant", "importing_participant", "issued_on", "expires_on")


def public_answer_contradictions(
    http_status: int, body: dict[str, Any], checked: VerifiedCertificate, *, today: date
) -> list[str]:
    """Where the plain JSON fields of a public answer say otherwise than its checked proof.

    A verifier believes the proof; a node whose JSON fields contradict it is lying (or broken),
    and its answer is refused rather than shown beside the proof's verdict. Fields the proof
    does not bind (`void_reason`, `replaced_by`) are not judged here. The status may read
    `expired` for an issued certificate past its expiry date; the node's date may differ from
    the verifier's by one day either way around midnight.
    """
    found: list[str] = []

    def differs(field: str, stated: Any, proven: Any) -> None:
        found.append(f"{field} {stated!r} where the proof says {proven!r}")

    if "number" in body and body["number"] != checked.number:
        differs("number", body["number"], checked.number)
    if not checked.found:
        if http_status != 404 or body.get("error") != "certificate_not_found":
            found.append(
                f"the answer ({http_status}) describes a certificate the proof shows is not on "
                "the ledger"
            )
        for field in ("status", "ledger_status", "digest", "history"):
            if field in body:
                found.append(f"{field} is given for a number the proof shows is not on the ledger")
        return found
    if http_status != 200 or "error" in body:
        said = " ".join(str(x) for x in (http_status, body.get("error")) if x is not None)
        found.append(f"the answer ({said}) denies a certificate the proof shows on the ledger")
    if "ledger_status" in body and body["ledger_status"] != checked.status:
        differs("ledger_status", body["ledger_status"], checked.status)
    if "status" in body and not _status_agrees(body["status"], checked, today):
        differs("status", body["status"], checked.status)
    if "digest" in body:
        stated = body["digest"]
        proven = checked.digest.hex() if checked.digest is not None else None
        if not isinstance(stated, str) or stated.lower() != proven:
            differs("digest", stated, proven)
    proven_facts = {
        "exporting_participant": checked.exporting_participant,
        "importing_participant": checked.importing_participant,
        "issued_on": checked.issued_on,
        "expires_on": checked.expires_on,
    }
    for field in _BOUND_FACTS:
        if field in body and body[field] != proven_facts[field]:
            differs(field, body[field], proven_facts[field])
    replaces = checked.replaces or None
    if body.get("replaces") != replaces and ("replaces" in body or replaces is not None):
        differs("replaces", body.get("replaces"), replaces)
    if bool(body.get("historical", False)) != checked.historical:
        differs("historical", body.get("historical", False), checked.historical)
    if "history" in body:
        found += _history_contradictions(body["history"], checked)
    return found


def _status_agrees(stated: Any, checked: VerifiedCertificate, today: date) -> bool:
    if stated == checked.status:
        if stated != "issued" or checked.expires_on is None:
            return True
        # "issued" past the expiry date by more than a day of clock difference is a lie.
        return today - timedelta(days=1) <= date.fromisoformat(checked.expires_on)
    if stated == "expired" and checked.status == "issued" and checked.expires_on is not None:
        return date.fromisoformat(checked.expires_on) < today + timedelta(days=1)
    return False


def _history_contradictions(stated: Any, checked: VerifiedCertificate) -> list[str]:
    proven = [
        {"event_id": event_id.hex(), "type": kind, "height": height}
        for kind, height, event_id in checked.history
    ]
    if not isinstance(stated, list) or len(stated) != len(proven):
        count = len(stated) if isinstance(stated, list) else "no"
        return [f"history has {count} entries where the proof has {len(proven)}"]
    out = []
    times = checked.history_times_ms
    for position, (item, want) in enumerate(zip(stated, proven, strict=True)):
        if not isinstance(item, dict):
            out.append(f"history entry {position + 1} is not an object")
            continue
        for field, value in want.items():
            if item.get(field) != value:
                out.append(
                    f"history entry {position + 1}: {field} {item.get(field)!r} where the proof says {value!r}"
                )
        if "time" in item and position < len(times) and item["time"] != _iso(times[position]):
            out.append(
                f"history entry {position + 1}: time {item['time']!r} where its final header "
                f"says {_iso(times[position])!r}"
            )
    return out


def register_answer_contradictions(body: dict[str, Any], registry: Registry) -> list[str]:
    """Where the plain JSON fields of `GET /v1/public/participants` say otherwise than the
    register its proof establishes: another key, status, restriction, validator or recipient.

    Hex is read in either case and a participant's field left out takes the value its absence
    means (as Participant.from_json reads it), so only a real difference counts.
    """
    found: list[str] = []
    listed = body.get("participants")
    if not isinstance(listed, list):
        return ["participants is not a list"]
    seen = set()
    for raw in listed:
        try:
            stated = Participant.from_json(raw)
        except MalformedInput as exc:
            found.append(f"a participant cannot be read: {exc.message}")
            continue
        seen.add(stated.code)
        proven = registry.participants.get(stated.code)
        if proven is None:
            found.append(f"participant {stated.code} is not in the proven register")
        elif stated != proven:
            said, want = stated.to_json(), proven.to_json()
            fields = sorted(k for k in {*said, *want} if said.get(k) != want.get(k))
            found.append(
                f"participant {stated.code}: "
                + ", ".join(
                    f"{k} {said.get(k)!r} where the proof says {want.get(k)!r}" for k in fields
                )
            )
    for code in sorted(set(registry.participants) - seen):
        found.append(f"participant {code} of the proven register is left out")
    proven_json: dict[str, Any] = {
        "validators": [v.to_json() for v in registry.validators],
        "pending_validators": [v.to_json() for v in registry.pending_validators],
        "parameters": registry.parameters.to_json(),
        "extra_recipients": [
            {"exporting_participant": exp, "name": name, "encryption_key": key.hex()}
            for exp, name, key in registry.extra_recipients
        ],
    }
    for field, want in proven_json.items():
        if field in body and _lower_hex(body[field]) != want:
            found.append(f"{field} differ from the proven register's")
    return found


def _lower_hex(value: Any) -> Any:
    """JSON with every string that is hex (a key) in lower case, to compare keys in any case."""
    if isinstance(value, list):
        return [_lower_hex(v) for v in value]
    if isinstance(value, dict):
        return {k: _lower_hex(v) for k, v in value.items()}
    if isinstance(value, str) and len(value) == 64:
        try:
            bytes.fromhex(value)
        except ValueError:
            return value
        return value.lower()
    return value
