"""The governance events' bodies, as signed on the chain, and who their signers are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.certificate import is_participant_code
from ledger.consensus.messages import ConflictingProposals, EquivocationEvidence, message_from_wire
from ledger.errors import MalformedInput
from ledger.events import BODY_TYPES, event_number
from ledger.registry import (
    KEY_KINDS,
    KINDS,
    NODE,
    SET_PARAMETER,
    int_field,
    key_field,
    parse_args,
    proof_field,
)

PROPOSE = "governance.propose"
VOTE = "governance.vote"
ROTATE_KEY = "participant.rotate_key"
ENDORSE = "certificate.endorse"
READY = "validator.ready"
EVIDENCE = "validator.evidence"
#: The emergency recovery of a halted chain, recorded by a node (ledger/governance/recovery.py).
RECOVERY = "governance.recovery"
GOVERNANCE_EVENTS = (PROPOSE, VOTE, ROTATE_KEY, READY, EVIDENCE, RECOVERY)
#: Events a node signs with its node key (signer `node/CODE`).
NODE_EVENTS = (READY, EVIDENCE, RECOVERY)

#: The signer field of an endorsement: the monitoring team of participant CODE is `monitor/CODE`.
MONITOR_PREFIX = "monitor/"
#: The signer field of a readiness attestation: a node of participant CODE is `node/CODE`.
NODE_PREFIX = "node/"


@dataclass(frozen=True)
class ProposeBody:
    """A proposed change to the register, taking effect at `effective_height` if it passes."""

    type: ClassVar[str] = PROPOSE
    kind: str
    subject: str  # the participant concerned ("" for set_parameter)
    args: tuple[Any, ...]
    effective_height: int

    def to_wire(self) -> list[Any]:
        return [self.kind, self.subject, list(self.args), self.effective_height]

    @classmethod
    def from_wire(cls, obj: Any) -> ProposeBody:
        if not isinstance(obj, list) or len(obj) != 4:
            raise MalformedInput("propose: body must be [kind, subject, args, effective_height]")
        kind, subject, args, effective = obj
        if kind not in KINDS:
            raise MalformedInput(f"unknown proposal kind {kind!r}; one of {', '.join(KINDS)}")
        if kind == SET_PARAMETER:
            if subject != "":
                raise MalformedInput("set_parameter concerns no participant: its subject is empty")
        elif not isinstance(subject, str) or not is_participant_code(subject):
            raise MalformedInput(f"subject {subject!r} is not a participant code")
        return cls(kind, subject, parse_args(kind, args), int_field("effective_height", effective))


@dataclass(frozen=True)
class VoteBody:
    type: ClassVar[str] = VOTE
    proposal_id: bytes
    approve: bool

    @property
    def subject(self) -> str:
        return self.proposal_id.hex()

    def to_wire(self) -> list[Any]:
        return [self.proposal_id, self.approve]

    @classmethod
    def from_wire(cls, obj: Any) -> VoteBody:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("vote: body must be [proposal_id, approve]")
        proposal_id, approve = obj
        if not isinstance(proposal_id, bytes) or len(proposal_id) != 32:
            raise MalformedInput("vote: the proposal id is 32 bytes (the proposal's event id)")
        if not isinstance(approve, bool):
            raise MalformedInput("vote: approve must be true or false")
        return cls(proposal_id, approve)


@dataclass(frozen=True)
class RotateKeyBody:
    """A participant replaces one of its own keys, signing with its current authority key."""

    type: ClassVar[str] = ROTATE_KEY
    key_kind: str
    public_key: bytes
    #: The new key's signature of the possession statement (ledger.keys.possession_statement).
    proof: bytes

    def to_wire(self) -> list[Any]:
        return [self.key_kind, self.public_key, self.proof]

    @classmethod
    def from_wire(cls, obj: Any) -> RotateKeyBody:
        if not isinstance(obj, list) or len(obj) != 3:
            raise MalformedInput("rotate_key: body must be [key kind, public key, proof]")
        if obj[0] not in KEY_KINDS:
            raise MalformedInput(f"rotate_key: the key kind is one of {', '.join(KEY_KINDS)}")
        key = key_field("rotate_key public key", obj[1], role=obj[0])
        return cls(obj[0], key, proof_field("rotate_key proof", obj[2]))


@dataclass(frozen=True)
class EndorseBody:
    """A monitoring team vouches for a restricted participant's certificate, by digest."""

    type: ClassVar[str] = ENDORSE
    number: str
    certificate_digest: bytes

    def to_wire(self) -> list[Any]:
        return [self.number, self.certificate_digest]

    @classmethod
    def from_wire(cls, obj: Any) -> EndorseBody:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("endorse: body must be [number, certificate digest]")
        digest = obj[1]
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise MalformedInput("certificate_digest: must be 32 bytes")
        return cls(event_number(obj[0]), digest)


@dataclass(frozen=True)
class ReadyBody:
    """A node governance added to the validators attests that it runs and is synced: signed with
    its node key (signer `node/CODE`), naming a recent final block."""

    type: ClassVar[str] = READY
    node_key: bytes
    height: int
    block_hash: bytes

    def to_wire(self) -> list[Any]:
        return [self.node_key, self.height, self.block_hash]

    @classmethod
    def from_wire(cls, obj: Any) -> ReadyBody:
        if not isinstance(obj, list) or len(obj) != 3:
            raise MalformedInput("ready: body must be [node_key, height, block_hash]")
        node_key, height, block_hash = obj
        if not isinstance(block_hash, bytes) or len(block_hash) != 32:
            raise MalformedInput("ready: the block hash is 32 bytes")
        return cls(
            key_field("ready node_key", node_key, role=NODE),
            int_field("height", height),
            block_hash,
        )


@dataclass(frozen=True)
class EvidenceBody:
    """A node reports a validator's equivocation: two conflicting messages it signed (votes of one
    height, round and kind for different values, or two proposals of one round). Signed with the
    reporting node's key (signer `node/CODE`); the offender leaves the set from the next block."""

    type: ClassVar[str] = EVIDENCE
    node_key: bytes  # the reporter's
    evidence: EquivocationEvidence | ConflictingProposals

    @property
    def height(self) -> int:
        e = self.evidence
        return e.vote_a.height if isinstance(e, EquivocationEvidence) else e.proposal_a.height

    def to_wire(self) -> list[Any]:
        return [self.node_key, self.evidence.to_wire()]

    @classmethod
    def from_wire(cls, obj: Any) -> EvidenceBody:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("evidence: body must be [node_key, evidence]")
        node_key, raw = obj
        message = message_from_wire(raw)
        if not isinstance(message, EquivocationEvidence | ConflictingProposals):
            raise MalformedInput("evidence: two conflicting votes, or two conflicting proposals")
        return cls(key_field("evidence node_key", node_key, role=NODE), message)


BODY_TYPES.update(
    {
        EVIDENCE: EvidenceBody,
        PROPOSE: ProposeBody,
        VOTE: VoteBody,
        ROTATE_KEY: RotateKeyBody,
        ENDORSE: EndorseBody,
        READY: ReadyBody,
    }
)


def node_participant(signer: str) -> str | None:
    """The participant a `node/CODE` signer is a node of, or None."""
    return signer[len(NODE_PREFIX) :] if signer.startswith(NODE_PREFIX) else None


def monitored_participant(signer: str) -> str | None:
    """The participant a `monitor/CODE` signer endorses for, or None for an authority signer."""
    return signer[len(MONITOR_PREFIX) :] if signer.startswith(MONITOR_PREFIX) else None
