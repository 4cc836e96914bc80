"""The emergency recovery of a halted chain: a document the authorities sign off the chain (a new
validator set and parameters from a stated height on top of a stated final head), its checks,
and the register the block at that height is judged by.

The document is recorded on the chain, in the block at its height (a `governance.recovery` event
that a node of the recovered set signs), so that re-verification needs nothing but the chain: the
block at height H is judged by the register the document makes of the one in force at H.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ledger.encoding import encode
from ledger.errors import (
    BadSignature,
    InvalidBlock,
    LedgerError,
    MalformedInput,
    ParticipantNotActive,
    RecoveryDuplicateSigner,
    RecoveryHeadMismatch,
    RecoveryInvalidValidators,
    RecoveryNotNeeded,
    RecoveryTooFewSignatures,
    UnknownParticipant,
)
from ledger.events import BODY_TYPES, Event
from ledger.genesis import Parameters, Validator
from ledger.governance.bodies import RECOVERY, node_participant
from ledger.governance.changes import check_parameter, key_owners, require_free
from ledger.hashing import TAG_RECOVERY
from ledger.keys import Signer, verify
from ledger.registry import NODE, Registry, int_field, key_field

MAX_REASON = 500
#: More validators than any KP network runs, and more signatures than it has members.
MAX_VALIDATORS = 200
MAX_SIGNATURES = 500


def _text(what: str, raw: Any, high: int) -> str:
    if not isinstance(raw, str) or len(raw) > high:
        raise MalformedInput(f"{what}: must be a string of at most {high} characters")
    return raw


@dataclass(frozen=True)
class RecoveryDocument:
    """What the authorities agree: from `height`, on top of the final block `prev_hash`, the
    chain is signed by `validators` under the parameters changed as `parameters` says."""

    chain_id: str
    height: int
    prev_hash: bytes
    validators: tuple[Validator, ...]
    parameters: tuple[tuple[str, int], ...] = ()
    reason: str = ""

    def to_wire(self) -> list[Any]:
        return [
            self.chain_id,
            self.height,
            self.prev_hash,
            [v.to_wire() for v in self.validators],
            [[name, value] for name, value in self.parameters],
            self.reason,
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> RecoveryDocument:
        if not isinstance(obj, list) or len(obj) != 6:
            raise MalformedInput(
                "a recovery document is [chain_id, height, prev_hash, validators, parameters, "
                "reason]"
            )
        chain_id, height, prev_hash, validators, parameters, reason = obj
        if not isinstance(prev_hash, bytes) or len(prev_hash) != 32:
            raise MalformedInput("recovery prev_hash: the 32-byte hash of the last final header")
        if not isinstance(validators, list) or not 1 <= len(validators) <= MAX_VALIDATORS:
            raise MalformedInput(f"recovery validators: 1 to {MAX_VALIDATORS} validators")
        checked = []
        for raw in validators:
            if not isinstance(raw, list) or len(raw) != 3:
                raise MalformedInput("a recovery validator is [participant, node_key, address]")
            participant, node_key, address = raw
            checked.append(
                Validator(
                    _text("recovery validator participant", participant, 16),
                    key_field("recovery validator node_key", node_key, role=NODE),
                    _text("recovery validator address", address, 200),
                )
            )
        if not isinstance(parameters, list) or len(parameters) > len(
            Parameters.__dataclass_fields__
        ):
            raise MalformedInput("recovery parameters: a list of [name, value]")
        changes = []
        for raw in parameters:
            if not isinstance(raw, list) or len(raw) != 2:
                raise MalformedInput("a recovery parameter is [name, value]")
            changes.append((_text("parameter name", raw[0], 64), int_field("parameter", raw[1])))
        if [name for name, _ in changes] != sorted({name for name, _ in changes}):
            raise MalformedInput("recovery parameters: each name once, in sorted order")
        return cls(
            _text("recovery chain_id", chain_id, 64),
            int_field("recovery height", height),
            prev_hash,
            tuple(checked),
            tuple(changes),
            _text("recovery reason", reason, MAX_REASON),
        )

    @property
    def statement(self) -> bytes:
        """What each authority signs (under the tag kp/recovery/1): the document's encoding."""
        return encode(self.to_wire())

    def sign(self, key: Signer) -> bytes:
        return key.sign(TAG_RECOVERY, self.statement)


@dataclass(frozen=True)
class SignedRecovery:
    """A recovery document with the authorities' signatures: (participant, signature)."""

    document: RecoveryDocument
    signatures: tuple[tuple[str, bytes], ...]

    def to_wire(self) -> list[Any]:
        return [self.document.to_wire(), [[code, sig] for code, sig in self.signatures]]

    @classmethod
    def from_wire(cls, obj: Any) -> SignedRecovery:
        if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[1], list):
            raise MalformedInput("a signed recovery is [document, [[participant, signature]...]]")
        if len(obj[1]) > MAX_SIGNATURES:
            raise MalformedInput(f"a signed recovery has at most {MAX_SIGNATURES} signatures")
        signatures = []
        for raw in obj[1]:
            if not isinstance(raw, list) or len(raw) != 2:
                raise MalformedInput("a recovery signature is [participant, signature]")
            code, sig = raw
            if not isinstance(sig, bytes) or len(sig) != 64:
                raise MalformedInput("a recovery signature is 64 bytes (Ed25519)")
            signatures.append((_text("recovery signer", code, 16), sig))
        return cls(RecoveryDocument.from_wire(obj[0]), tuple(signatures))

    def with_signature(self, code: str, signature: bytes) -> SignedRecovery:
        return replace(self, signatures=(*self.signatures, (code, signature)))


def check_signatures(signed: SignedRecovery, registry: Registry) -> list[str]:
    """The participants whose authority keys signed the document: more than 2/3 of the active
    participants, each once, each signature over this very document. Raises otherwise."""
    statement = signed.document.statement
    seen: set[str] = set()
    keys: set[bytes] = set()
    for code, signature in signed.signatures:
        participant = registry.participant(code)
        if not participant.active:
            raise ParticipantNotActive(f"{code} is suspended: it does not sign a recovery")
        if code in seen or participant.authority_key in keys:
            raise RecoveryDuplicateSigner(
                f"{code}'s authority key signs the recovery twice: one key, one signature"
            )
        if not verify(participant.authority_key, TAG_RECOVERY, statement, signature):
            raise BadSignature(
                f"{code}'s signature does not verify over this recovery document under its "
                "authority key (it signs another document, or another key made it)"
            )
        seen.add(code)
        keys.add(participant.authority_key)
    active = registry.active_count
    if 3 * len(seen) <= 2 * active:
        raise RecoveryTooFewSignatures(
            f"{len(seen)} of {active} active participants signed the recovery; more than 2/3 "
            f"({2 * active // 3 + 1}) must"
        )
    return sorted(seen)


def recovered_registry(registry: Registry, document: RecoveryDocument) -> Registry:
    """The register `document` makes of `registry`: its validators, and its parameters changed
    (each within its bounds, and the set as a whole: PARAMETER_BOUNDS, Parameters.violation)."""
    owners = key_owners(registry.participants, (), registry.extra_recipients)
    node_keys: set[bytes] = set()
    for v in document.validators:
        participant = registry.participants.get(v.participant)
        if participant is None:
            raise UnknownParticipant(f"{v.participant} is not a KP participant on this network")
        if not participant.active:
            raise ParticipantNotActive(f"{v.participant} is suspended: it runs no validator")
        if v.node_key in node_keys:
            raise RecoveryInvalidValidators("a node key is listed twice in the recovered set")
        if not v.address.startswith(("http://", "https://")):
            raise RecoveryInvalidValidators(f"{v.participant}'s validator address is no URL")
        require_free(owners, v.node_key, NODE, (v.participant, NODE))
        node_keys.add(v.node_key)
    parameters = registry.parameters
    for name, value in document.parameters:
        parameters = check_parameter(parameters, name, value)
    pending = tuple(v for v in registry.pending_validators if v.node_key not in node_keys)
    return registry.evolve(
        participants=registry.participants,
        validators=document.validators,
        parameters=parameters,
        proposals=registry.proposals,
        pending_validators=pending,
    )


def check_recovery(
    signed: SignedRecovery, registry: Registry, chain_id: str, height: int, prev_hash: bytes
) -> Registry:
    """Every check of a recovery for the block at `height` on top of `prev_hash`, against the
    register in force at that height: the register the block is then judged by."""
    document = signed.document
    if document.chain_id != chain_id:
        raise RecoveryHeadMismatch(
            f"the recovery is for chain {document.chain_id!r}, not {chain_id!r}"
        )
    if document.height != height or document.prev_hash != prev_hash:
        raise RecoveryHeadMismatch(
            f"the recovery is for height {document.height} on top of final block "
            f"{document.prev_hash.hex()[:16]}; this chain's next height is {height}, on top of "
            f"{prev_hash.hex()[:16]}"
        )
    check_signatures(signed, registry)
    return recovered_registry(registry, document)


# -- on the chain ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecoveryBody:
    """The signed recovery, recorded in the block at its height by a node of the recovered set
    (signer `node/CODE`, its node key)."""

    type: ClassVar[str] = RECOVERY
    node_key: bytes
    recovery: SignedRecovery

    @property
    def subject(self) -> str:
        return str(self.recovery.document.height)

    def to_wire(self) -> list[Any]:
        return [self.node_key, self.recovery.to_wire()]

    @classmethod
    def from_wire(cls, obj: Any) -> RecoveryBody:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("recovery: body must be [node_key, signed recovery]")
        return cls(
            key_field("recovery node_key", obj[0], role=NODE), SignedRecovery.from_wire(obj[1])
        )


BODY_TYPES[RECOVERY] = RecoveryBody


def recovery_of(events: Sequence[Event]) -> SignedRecovery | None:
    """The recovery a block records (its first event), or None."""
    if events and isinstance(events[0].body, RecoveryBody):
        return events[0].body.recovery
    return None


def register_for_block(
    registry: Registry, events: Sequence[Event], chain_id: str, height: int, prev_hash: bytes
) -> Registry:
    """The register a block is judged by: the one in force at its height, or, when the block
    records a recovery, the one the recovery makes of it (the recovery checked: InvalidBlock)."""
    signed = recovery_of(events)
    if signed is None:
        return registry
    try:
        return check_recovery(signed, registry, chain_id, height, prev_hash)
    except LedgerError as exc:
        raise InvalidBlock(
            f"block {height}'s recovery is refused: {exc.code}: {exc.message}"
        ) from exc


def check_recovery_event(
    registry: Registry,
    event: Event,
    body: RecoveryBody,
    height: int,
    prev_hash: bytes | None,
    first: bool,
) -> None:
    """A recovery event applies only as the first event of the block at its height, which is
    judged by the register it makes (the rules of a block check that it is)."""
    if not first:
        raise RecoveryNotNeeded("a recovery is the first event of its block, and its only one")
    document = body.recovery.document
    if prev_hash is None:
        raise RecoveryHeadMismatch("a recovery is for a height after a final block")
    recovered = check_recovery(body.recovery, registry, event.chain_id, height, prev_hash)
    if recovered.hash != registry.hash:
        raise RecoveryNotNeeded(
            f"the recovery of height {document.height} is recorded only in a block judged by "
            "the register it makes"
        )
    code = node_participant(event.signer)
    if not any(v.node_key == body.node_key and v.participant == code for v in registry.validators):
        raise RecoveryInvalidValidators(
            "a recovery is recorded by a node of the recovered validator set, with its key"
        )
