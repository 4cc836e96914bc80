"""Signed events: the only way anything is written to the ledger, and their one canonical form."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.certificate import (
    NUMBER_RULE,
    ShipmentFacts,
    certificate_digest,
    is_certificate_number,
)
from ledger.confidential import SealedIdentities
from ledger.encoding import decode, decode_unchecked, encode
from ledger.errors import InvalidCertificate, LedgerError, MalformedInput
from ledger.hashing import TAG_EVENT, TAG_EVENT_ID, tagged_hash
from ledger.keys import Signer, verify
from ledger.memo import once

EVENT_VERSION = 1

ISSUE = "certificate.issue"
CONFIRM_IMPORT = "certificate.confirm_import"
REJECT_IMPORT = "certificate.reject_import"
VOID = "certificate.void"
#: A certificate from before the network, loaded by `kpledger history import` (SPEC 10).
HISTORICAL = "certificate.historical"
CERTIFICATE_EVENTS = (ISSUE, CONFIRM_IMPORT, REJECT_IMPORT, VOID, HISTORICAL)

#: The final status an authority recorded for a historical certificate (SPEC 10's CSV column).
HISTORICAL_STATUSES = ("confirmed", "voided", "rejected", "expired")

VOID_REASONS = ("lost", "stolen", "error", "replaced")
MAX_REASON = 1000


def _str(field: str, raw: Any, limit: int = 64) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > limit:
        raise MalformedInput(f"{field}: must be a string of 1 to {limit} characters")
    return raw


def event_number(raw: Any) -> str:
    """The certificate number an event names, exactly as SPEC 3 writes one.

    Never normalised: the number is part of what was signed, so a number with a space or a
    trailing newline in it is refused rather than read as another number.
    """
    if not is_certificate_number(raw):
        shown = raw if not isinstance(raw, str) or len(raw) <= 64 else raw[:64] + "..."
        raise MalformedInput(f"number: {shown!r} is not a certificate number ({NUMBER_RULE})")
    number: str = raw
    return number


def event_leaf(event_id: bytes, event_type: str, number: str) -> bytes:
    """The Merkle leaf of an event: its id, type and subject, so a proof shows what kind it was."""
    return encode([event_id, event_type, number])


def _digest(raw: Any) -> bytes:
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise MalformedInput("certificate_digest: must be 32 bytes")
    return raw


@dataclass(frozen=True)
class IssueBody:
    type: ClassVar[str] = ISSUE
    facts: ShipmentFacts
    sealed: SealedIdentities

    @property
    def number(self) -> str:
        return self.facts.number

    @once
    def digest(self) -> bytes:
        """The certificate's digest: worked out once per event (admission, then the block)."""
        return certificate_digest(self.facts, self.sealed.commitment)

    def to_wire(self) -> list[Any]:
        return [self.facts.to_wire(), self.sealed.to_wire()]

    @classmethod
    def from_wire(cls, obj: Any) -> IssueBody:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("issue: body must be [certificate, sealed identities]")
        return cls(ShipmentFacts.from_wire(obj[0]), SealedIdentities.from_wire(obj[1]))


@dataclass(frozen=True)
class ConfirmImportBody:
    """The importing authority confirms receipt of the shipment the digest describes."""

    type: ClassVar[str] = CONFIRM_IMPORT
    number: str
    certificate_digest: bytes

    def to_wire(self) -> list[Any]:
        return [self.number, self.certificate_digest]

    @classmethod
    def from_wire(cls, obj: Any) -> ConfirmImportBody:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("confirm_import: body must be [number, certificate digest]")
        return cls(event_number(obj[0]), _digest(obj[1]))


@dataclass(frozen=True)
class RejectImportBody:
    type: ClassVar[str] = REJECT_IMPORT
    number: str
    certificate_digest: bytes
    reason: str

    def to_wire(self) -> list[Any]:
        return [self.number, self.certificate_digest, self.reason]

    @classmethod
    def from_wire(cls, obj: Any) -> RejectImportBody:
        if not isinstance(obj, list) or len(obj) != 3:
            raise MalformedInput("reject_import: body must be [number, certificate digest, reason]")
        reason = _str("reason", obj[2], MAX_REASON)
        if not reason.strip():
            raise MalformedInput("reason: must say why the import is rejected")
        return cls(event_number(obj[0]), _digest(obj[1]), reason)


@dataclass(frozen=True)
class VoidBody:
    type: ClassVar[str] = VOID
    number: str
    reason: str

    def to_wire(self) -> list[Any]:
        return [self.number, self.reason]

    @classmethod
    def from_wire(cls, obj: Any) -> VoidBody:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("void: body must be [number, reason]")
        reason = obj[1]
        if reason not in VOID_REASONS:
            raise InvalidCertificate("reason", f"a void reason is one of {', '.join(VOID_REASONS)}")
        return cls(event_number(obj[0]), reason)


@dataclass(frozen=True)
class HistoricalBody:
    """One participant's account of a certificate from before the network, with the final status
    its authority recorded; the parties sealed exactly as for an issue (docs/history.md)."""

    type: ClassVar[str] = HISTORICAL
    facts: ShipmentFacts
    sealed: SealedIdentities
    status: str

    @property
    def number(self) -> str:
        return self.facts.number

    @once
    def digest(self) -> bytes:
        """The certificate's digest: worked out once per event (admission, then the block)."""
        return certificate_digest(self.facts, self.sealed.commitment)

    def to_wire(self) -> list[Any]:
        return [self.facts.to_wire(), self.sealed.to_wire(), self.status]

    @classmethod
    def from_wire(cls, obj: Any) -> HistoricalBody:
        if not isinstance(obj, list) or len(obj) != 3:
            raise MalformedInput(
                "historical: body must be [certificate, sealed identities, status]"
            )
        status = obj[2]
        if status not in HISTORICAL_STATUSES:
            raise InvalidCertificate(
                "status", f"a historical status is one of {', '.join(HISTORICAL_STATUSES)}"
            )
        facts = ShipmentFacts.from_wire(obj[0])
        if facts.replaces is not None:
            raise InvalidCertificate(
                "replaces", "a historical record names no replacement (it is recorded as it ended)"
            )
        return cls(facts, SealedIdentities.from_wire(obj[1]), status)


Body = IssueBody | ConfirmImportBody | RejectImportBody | VoidBody | HistoricalBody

#: Body parsers by event type. Other subsystems (governance) register theirs here.
BODY_TYPES: dict[str, Any] = {
    ISSUE: IssueBody,
    CONFIRM_IMPORT: ConfirmImportBody,
    REJECT_IMPORT: RejectImportBody,
    VOID: VoidBody,
    HISTORICAL: HistoricalBody,
}


@dataclass(frozen=True)
class Event:
    """A signed event. `encoded` is its one canonical byte string; `event_id` hashes it."""

    chain_id: str
    type: str
    signer: str
    created_ms: int
    body: Any
    signature: bytes
    encoded: bytes
    event_id: bytes

    @property
    def number(self) -> str:
        """The certificate (or other subject) the event is about."""
        return str(getattr(self.body, "number", "") or getattr(self.body, "subject", ""))

    @once
    def leaf(self) -> bytes:
        """The event's leaf in its block's events tree (event_leaf): encoded once per event,
        though the block is built or checked, then stored."""
        return event_leaf(self.event_id, self.type, self.number)

    @property
    def unsigned_wire(self) -> list[Any]:
        return unsigned_wire(self.chain_id, self.type, self.signer, self.created_ms, self.body)

    def signature_valid(self, public_key: bytes) -> bool:
        # The signed encoding is 0x92, the unsigned event, then bin8(64) = 0xc4 0x40 + signature:
        # slicing gives the signed bytes without re-encoding (a third of the cost of a check).
        return verify(public_key, TAG_EVENT, self.encoded[1:-66], self.signature)

    @classmethod
    def decode(cls, data: bytes) -> Event:
        """Parse the canonical signed encoding; refuses any other byte string for the same event."""
        return cls._from_signed(decode(data), data)

    @classmethod
    def decode_unchecked(cls, data: bytes) -> Event:
        """`decode` without the encoding's canonical check (ledger.encoding.decode_unchecked), for
        bytes whose check runs elsewhere: the same event for every byte string `decode` takes."""
        return cls._from_signed(decode_unchecked(data), data)

    @classmethod
    def _from_signed(cls, obj: Any, data: bytes) -> Event:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("an event is [unsigned event, signature]")
        unsigned, signature = obj
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise MalformedInput("the signature must be 64 bytes (Ed25519)")
        return cls._from_unsigned(unsigned, signature, bytes(data))

    @classmethod
    def from_parts(cls, unsigned_bytes: bytes, signature: bytes) -> Event:
        """Build from the canonical unsigned encoding and a detached signature (the JSON envelope)."""
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise MalformedInput("the signature must be 64 bytes (Ed25519)")
        unsigned = decode(unsigned_bytes)
        return cls._from_unsigned(unsigned, signature, encode([unsigned, signature]))

    @classmethod
    def _from_unsigned(cls, unsigned: Any, signature: bytes, encoded: bytes) -> Event:
        if not isinstance(unsigned, list) or len(unsigned) != 6:
            raise MalformedInput(
                "an unsigned event is [version, chain_id, type, signer, created_ms, body]"
            )
        version, chain_id, type_, signer, created_ms, body = unsigned
        if version != EVENT_VERSION:
            raise MalformedInput(f"unsupported event version {version!r}")
        _str("chain_id", chain_id)
        if type_ not in BODY_TYPES:
            raise MalformedInput(f"unknown event type {type_!r}")
        _str("signer", signer, 16)
        if isinstance(created_ms, bool) or not isinstance(created_ms, int) or created_ms < 0:
            raise MalformedInput("created_ms: must be a non-negative integer")
        try:
            parsed = BODY_TYPES[type_].from_wire(body)
        except LedgerError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise MalformedInput(f"{type_}: malformed body ({exc})") from exc
        return cls(
            chain_id=chain_id,
            type=type_,
            signer=signer,
            created_ms=created_ms,
            body=parsed,
            signature=signature,
            encoded=encoded,
            event_id=event_id_of(encoded),
        )

    def to_envelope(self) -> dict[str, str]:
        """The JSON envelope of POST /v1/events."""
        return {
            "event": base64.b64encode(encode(self.unsigned_wire)).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_envelope(cls, raw: Any) -> Event:
        if not isinstance(raw, dict) or set(raw) - {"event", "signature"}:
            raise MalformedInput('the envelope is {"event": base64, "signature": base64}')
        try:
            unsigned_bytes = base64.b64decode(raw["event"], validate=True)
            signature = base64.b64decode(raw["signature"], validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedInput('the envelope is {"event": base64, "signature": base64}') from exc
        return cls.from_parts(unsigned_bytes, signature)


def event_id_of(encoded: bytes) -> bytes:
    """The id of the event whose canonical signed encoding is `encoded` (Event.event_id)."""
    return tagged_hash(TAG_EVENT_ID, encoded)


def unsigned_wire(chain_id: str, type_: str, signer: str, created_ms: int, body: Any) -> list[Any]:
    return [EVENT_VERSION, chain_id, type_, signer, created_ms, body.to_wire()]


def sign_event(chain_id: str, signer: str, body: Any, key: Signer, created_ms: int) -> Event:
    """Sign a body as `signer`'s authority. The result decodes back to itself."""
    unsigned = unsigned_wire(chain_id, body.type, signer, created_ms, body)
    signature = key.sign(TAG_EVENT, encode(unsigned))
    return Event.decode(encode([unsigned, signature]))
