"""A certificate as the ledger keeps it: its status, its history, and the value the state tree
commits to; and the read access to the committed certificates that the rules are given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from ledger.certificate import ShipmentFacts
from ledger.encoding import decode, encode
from ledger.governance import ENDORSE
from ledger.hashing import TAG_STATE_VALUE, sha256, tagged_hash

ISSUED = "issued"
IMPORT_CONFIRMED = "import_confirmed"
IMPORT_REJECTED = "import_rejected"
VOIDED = "voided"
EXPIRED = "expired"  # derived from the dates, never stored
STATUSES = (ISSUED, IMPORT_CONFIRMED, IMPORT_REJECTED, VOIDED)


def state_key(number: str) -> bytes:
    """Where a certificate lives in the state tree."""
    return sha256(number.encode("utf-8"))


@dataclass(frozen=True)
class HistoryEntry:
    event_id: bytes
    type: str
    time_ms: int
    height: int

    def to_wire(self) -> list[Any]:
        return [self.event_id, self.type, self.time_ms, self.height]


@dataclass(frozen=True)
class CertificateRecord:
    """A certificate as the ledger knows it now: facts, digest, status and history."""

    facts: ShipmentFacts
    digest: bytes
    status: str
    history: tuple[HistoryEntry, ...]
    reason: str | None = None  # of the last rejection or void
    replaced_by: str | None = None
    #: Issued by a restricted participant: its monitoring team must endorse it before import.
    needs_endorsement: bool = False
    #: A historical record (SPEC 10): the participants whose accounts of it are on the ledger,
    #: in the order recorded (the first account's facts and status are the record's). Empty for
    #: a certificate issued on the ledger.
    accounts: tuple[str, ...] = ()

    @property
    def number(self) -> str:
        return self.facts.number

    @property
    def historical(self) -> bool:
        return bool(self.accounts)

    @property
    def endorsed(self) -> bool:
        return any(h.type == ENDORSE for h in self.history)

    @property
    def issue_event_id(self) -> bytes:
        return self.history[0].event_id

    @property
    def last_event_id(self) -> bytes:
        return self.history[-1].event_id

    @property
    def last_height(self) -> int:
        return self.history[-1].height

    def effective_status(self, today: date) -> str:
        """The status a person sees: an issued certificate past its expiry date is expired."""
        if self.status == ISSUED and today > self.facts.expires_on:
            return EXPIRED
        return self.status

    def leaf_value(self) -> bytes:
        """What the state tree commits to: the status a public proof establishes."""
        return state_value(
            self.number, self.status, self.digest, self.last_event_id, self.last_height
        )

    def to_wire(self) -> list[Any]:
        wire = [
            self.facts.to_wire(),
            self.digest,
            self.status,
            [h.to_wire() for h in self.history],
            self.reason or "",
            self.replaced_by or "",
            self.needs_endorsement,
        ]
        if self.accounts:  # a record issued on the ledger keeps the encoding it always had
            wire.append(list(self.accounts))
        return wire

    @classmethod
    def from_wire(cls, obj: Any) -> CertificateRecord:
        facts, digest, status, history, reason, replaced_by, *rest = obj
        return cls(
            facts=ShipmentFacts.from_wire(facts, trusted=True),
            digest=digest,
            status=status,
            history=tuple(HistoryEntry(*h) for h in history),
            reason=reason or None,
            replaced_by=replaced_by or None,
            needs_endorsement=bool(rest and rest[0]),
            accounts=tuple(rest[1]) if len(rest) > 1 else (),
        )

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> CertificateRecord:
        return cls.from_wire(decode(data))


def state_value(
    number: str, status: str, digest: bytes, last_event_id: bytes, height: int
) -> bytes:
    return tagged_hash(TAG_STATE_VALUE, encode([number, status, digest, last_event_id, height]))


class StateReader(Protocol):
    """Read access to the committed state, implemented by the store (and by test models)."""

    def get_certificate(self, number: str) -> CertificateRecord | None: ...

    def has_event(self, event_id: bytes) -> bool: ...
