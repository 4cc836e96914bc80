"""What an officer does, as the node does it: the issue form's fields made into a certificate,
each action signed with the participant's authority key and admitted through the node's own
admission path (the rules and refusals of POST /v1/events), then awaited until final."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger import authoring
from ledger.certificate import Certificate
from ledger.errors import (
    BackdatedTooFar,
    CertificateNumberTaken,
    ExpiredOnIssue,
    InvalidCertificate,
    IssuedInFuture,
    LedgerError,
    ParticipantNotActive,
    ReplacementInvalid,
    SameParticipant,
    UnknownParticipant,
    ValidityTooLong,
    ZoneNotApproved,
)
from ledger.events import Event
from ledger.keys import Signer
from ledger.records import CertificateRecord
from node.service import LedgerNode, now_ms

#: The issue form's fields, in the order of SPEC 7's labels.
ISSUE_FIELDS = (
    "number",
    "importing_participant",
    "origin",
    "hs_code",
    "carats",
    "value_usd",
    "parcels",
    "exporter_name",
    "exporter_address",
    "importer_name",
    "importer_address",
    "issued_on",
    "expires_on",
)
#: Where a refusal shows when it names no field of the form.
FORM = "form"

#: The certificate's own field names (ledger/certificate.py) -> the form's.
_FIELD_OF = {
    "exporter.name": "exporter_name",
    "exporter.address": "exporter_address",
    "importer.name": "importer_name",
    "importer.address": "importer_address",
    "exporter": "exporter_name",
    "importer": "importer_name",
    "exporting_participant": FORM,
}
#: The ledger's state rules of an issuance (ledger/state.py) -> the field at fault.
_FIELD_OF_RULE: tuple[tuple[type[LedgerError], str], ...] = (
    (CertificateNumberTaken, "number"),
    (ReplacementInvalid, "number"),
    (UnknownParticipant, "importing_participant"),
    (SameParticipant, "importing_participant"),
    (ParticipantNotActive, "importing_participant"),
    (IssuedInFuture, "issued_on"),
    (BackdatedTooFar, "issued_on"),
    (ExpiredOnIssue, "expires_on"),
    (ValidityTooLong, "expires_on"),
    (ZoneNotApproved, "origin"),
)

#: How long an action waits for its block before the page says "sent, not yet final".
FINAL_WAIT_S = 20.0


class FieldRefused(Exception):
    """The ledger's refusal, and the form field it is about (FORM for the form as a whole)."""

    def __init__(self, field: str, error: LedgerError) -> None:
        super().__init__(error.message)
        self.field = field
        self.error = error


def field_of(error: LedgerError) -> str:
    """The issue form's field a refusal is about."""
    if isinstance(error, InvalidCertificate):
        field = _FIELD_OF.get(error.field, error.field)
        return field if field in ISSUE_FIELDS else FORM
    for kind, field in _FIELD_OF_RULE:
        if isinstance(error, kind):
            return field
    return FORM


def _origin(text: str) -> list[str]:
    return [part.strip().upper() for part in text.replace(";", ",").split(",") if part.strip()]


def certificate_document(exporting: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The certificate JSON (SPEC 3) that the form's fields say. Only the shape is made here:
    every rule is the ledger's (Certificate.from_json, then admission)."""
    parcels: Any = form.get("parcels", "").strip()
    if parcels.isdigit():
        parcels = int(parcels)
    return {
        "number": form.get("number", "").strip().upper(),
        "exporting_participant": exporting,
        "importing_participant": form.get("importing_participant", "").strip().upper(),
        "origin": _origin(form.get("origin", "")),
        "hs_code": form.get("hs_code", "").strip(),
        "carats": form.get("carats", "").strip(),
        "value_usd": form.get("value_usd", "").strip(),
        "parcels": parcels,
        "exporter": {
            "name": form.get("exporter_name", ""),
            "address": form.get("exporter_address", ""),
        },
        "importer": {
            "name": form.get("importer_name", ""),
            "address": form.get("importer_address", ""),
        },
        "issued_on": form.get("issued_on", "").strip(),
        "expires_on": form.get("expires_on", "").strip(),
    }


@dataclass(frozen=True)
class Outcome:
    """What became of an officer's event: `final` (with its height), `pending` (not final
    within FINAL_WAIT_S) or `refused` (with the ledger's error)."""

    event_id: str
    state: str
    height: int | None = None
    error: LedgerError | None = None


async def wait_final(node: LedgerNode, event: Event) -> Outcome:
    """After admission (node.submit, as POST /v1/events does): the event made durable, then
    its block awaited; a refusal at block time comes back as `refused`."""
    await node.durable(event.event_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FINAL_WAIT_S
    while True:
        status = node.event_status(event.event_id)
        if status is not None and status.status == "final":
            return Outcome(event.event_id.hex(), "final", status.height)
        if status is not None and status.status == "rejected":
            error = LedgerError(status.message or "refused at block time")
            error.code = status.error or "refused"
            return Outcome(event.event_id.hex(), "refused", error=error)
        if loop.time() >= deadline:
            return Outcome(event.event_id.hex(), "pending")
        await asyncio.sleep(0.05)


def issue_event(node: LedgerNode, signer: Signer, form: Mapping[str, str]) -> tuple[str, Event]:
    """The signed issuance the form describes; FieldRefused names the field at fault."""
    document = certificate_document(node.participant, form)
    try:
        certificate = Certificate.from_json(document)
        issuance = authoring.issue(
            node.registry, node.chain_id, certificate, signer, created_ms=now_ms()
        )
    except LedgerError as exc:
        raise FieldRefused(field_of(exc), exc) from exc
    return certificate.facts.number, issuance.event


def admit_issue(node: LedgerNode, event: Event) -> None:
    """Admission's check of an issuance, its refusal tied to the field at fault."""
    try:
        node.submit(event)
    except LedgerError as exc:
        raise FieldRefused(field_of(exc), exc) from exc


def decision_event(
    node: LedgerNode, signer: Signer, record: CertificateRecord, action: str, reason: str
) -> Event:
    """The confirm_import, reject_import or void event of an officer's button."""
    number, created = record.number, now_ms()
    if action == "confirm":
        return authoring.confirm_import(
            node.chain_id, node.participant, number, record.digest, signer, created_ms=created
        )
    if action == "reject":
        return authoring.reject_import(
            node.chain_id,
            node.participant,
            number,
            record.digest,
            reason,
            signer,
            created_ms=created,
        )
    return authoring.void(
        node.chain_id, node.participant, number, reason, signer, created_ms=created
    )
