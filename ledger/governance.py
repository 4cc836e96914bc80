"""Governance on the chain: proposals, votes, key rotations, endorsements and the register they change."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ledger.certificate import MAX_ZONE, is_country, is_participant_code
from ledger.consensus.messages import ConflictingProposals, EquivocationEvidence, message_from_wire
from ledger.errors import LedgerError, MalformedInput, ParticipantNotActive, UnknownParticipant
from ledger.events import BODY_TYPES, Event, event_number
from ledger.genesis import Parameters, Participant, Validator
from ledger.keys import is_valid_ed25519_public, is_valid_x25519_public, verify_possession

if TYPE_CHECKING:
    from ledger.state import EventContext, Registry

PROPOSE = "governance.propose"
VOTE = "governance.vote"
ROTATE_KEY = "participant.rotate_key"
ENDORSE = "certificate.endorse"
READY = "validator.ready"
EVIDENCE = "validator.evidence"
GOVERNANCE_EVENTS = (PROPOSE, VOTE, ROTATE_KEY, READY, EVIDENCE)
#: Events a node signs with its node key (signer `node/CODE`).
NODE_EVENTS = (READY, EVIDENCE)

ADMIT = "admit"
SUSPEND = "suspend"
REINSTATE = "reinstate"
ADD_VALIDATOR = "add_validator"
REMOVE_VALIDATOR = "remove_validator"
RESTRICT = "restrict"
LIFT = "lift"
SET_PARAMETER = "set_parameter"
REPLACE_KEY = "replace_key"
KINDS = (
    ADMIT,
    SUSPEND,
    REINSTATE,
    ADD_VALIDATOR,
    REMOVE_VALIDATOR,
    RESTRICT,
    LIFT,
    SET_PARAMETER,
    REPLACE_KEY,
)

AUTHORITY = "authority"
ENCRYPTION = "encryption"
KEY_KINDS = (AUTHORITY, ENCRYPTION)
#: The roles a key has on the register; one key has one role of one participant.
NODE = "node"
MONITORING = "monitoring"
KEY_ROLES = (AUTHORITY, ENCRYPTION, NODE, MONITORING)

#: The signer field of an endorsement: the monitoring team of participant CODE is `monitor/CODE`.
MONITOR_PREFIX = "monitor/"
#: The signer field of a readiness attestation: a node of participant CODE is `node/CODE`.
NODE_PREFIX = "node/"

#: Governance never leaves fewer validators than this (3f + 1 with f = 1: one may fail). A
#: genesis may start with fewer (a development network); then no change shrinks it further.
MIN_VALIDATORS = 4
#: A validator counts as live when it proposed one of the last LIVENESS_WINDOW * n final blocks
#: (the proposer schedule gives each live validator n of any n * n heights' round 0 turns).
LIVENESS_WINDOW = 2
#: A readiness attestation names a final block at most this many heights old: the node is
#: synced, not merely running.
READY_MAX_AGE = 100
#: Evidence of equivocation is taken for votes or proposals at most this many heights old.
EVIDENCE_MAX_AGE = 10_000

OPEN = "open"
PASSED = "passed"
ENACTED = "enacted"
FAILED = "failed"
EXPIRED = "expired"
PROPOSAL_STATUSES = (OPEN, PASSED, ENACTED, FAILED, EXPIRED)

#: A proposal takes effect at least this many blocks after the block that records it: votes close
#: at effective_height - 2, and the block in between computes the register the change is in.
MIN_LEAD = 2
#: And at most this many (a proposal does not stay open for ever; nodes produce empty blocks
#: while a passed change waits, so a far effective height would also mean many empty blocks).
MAX_LEAD = 100_000

MAX_NAME = 200
MAX_ADDRESS = 200
MAX_ZONES = 100


# -- errors: one type per rule ----------------------------------------------------------------
class EffectiveHeightOutOfRange(LedgerError):
    """A change takes effect at least 2 and at most MAX_LEAD blocks after its proposal."""

    code = "effective_height_out_of_range"
    http_status = 409


class ParticipantExists(LedgerError):
    code = "participant_exists"
    http_status = 409


class CountryTaken(LedgerError):
    """A country is issued for by one participant only."""

    code = "country_taken"
    http_status = 409


class NodeKeyInUse(LedgerError):
    code = "node_key_in_use"
    http_status = 409


class KeyInUse(LedgerError):
    """A key has one role of one participant: authority, encryption, node or monitoring."""

    code = "key_in_use"
    http_status = 409


class InvalidPublicKey(MalformedInput):
    """Not a usable public key: the identity, a small-order or off-curve point, all zeros."""

    code = "invalid_public_key"
    http_status = 400


class BadKeyProof(LedgerError):
    """The proof of possession of a new key does not verify under that key."""

    code = "bad_key_proof"
    http_status = 401


class AlreadySuspended(LedgerError):
    code = "already_suspended"
    http_status = 409


class NotSuspended(LedgerError):
    code = "not_suspended"
    http_status = 409


class AlreadyValidator(LedgerError):
    code = "already_validator"
    http_status = 409


class NotAValidator(LedgerError):
    code = "not_a_validator"
    http_status = 409


class LastValidator(LedgerError):
    """The network cannot remove its last validator: nobody would sign blocks."""

    code = "last_validator"
    http_status = 409


class TooFewValidators(LedgerError):
    """Governance never leaves fewer than MIN_VALIDATORS validators."""

    code = "too_few_validators"
    http_status = 409


class ValidatorsNotLive(LedgerError):
    """The change would leave fewer live validators than a quorum of the new set: the chain
    would halt. (A readiness attestation is refused for now; the node sends it again.)"""

    code = "validators_not_live"
    http_status = 409


class NotPendingValidator(LedgerError):
    """A readiness attestation for a node that governance did not add (or that is in the set)."""

    code = "not_a_pending_validator"
    http_status = 409


class StaleReadiness(LedgerError):
    """A readiness attestation must name a recent final block, as the chain has it."""

    code = "readiness_stale"
    http_status = 409


class InvalidEvidence(LedgerError):
    """Equivocation evidence that does not prove two conflicting signed messages of a validator
    of the set in force at their height."""

    code = "invalid_evidence"
    http_status = 400


class EvidenceNotNeeded(LedgerError):
    """The offender is no longer a validator (already removed, or evidence in this block)."""

    code = "evidence_not_needed"
    http_status = 409


class NotRestricted(LedgerError):
    code = "not_restricted"
    http_status = 409


class UnknownParameter(LedgerError):
    code = "unknown_parameter"
    http_status = 409


class ParameterOutOfRange(LedgerError):
    code = "parameter_out_of_range"
    http_status = 409


class UnknownProposal(LedgerError):
    code = "unknown_proposal"
    http_status = 404


class ProposalExpired(LedgerError):
    """Voting closed at effective_height - 2 without the proposal passing."""

    code = "proposal_expired"
    http_status = 409


class ProposalClosed(LedgerError):
    """The proposal passed and voting on it has closed (or it already took effect)."""

    code = "proposal_closed"
    http_status = 409


class AlreadyVoted(LedgerError):
    """One vote per participant and proposal; a second, different vote is refused."""

    code = "already_voted"
    http_status = 409


class KeyUnchanged(LedgerError):
    code = "key_unchanged"
    http_status = 409


class RotationPending(LedgerError):
    """One rotation of a kind of key per participant and block: the first takes effect next block."""

    code = "rotation_pending"
    http_status = 409


class EndorsementNotNeeded(LedgerError):
    code = "endorsement_not_needed"
    http_status = 409


class AlreadyEndorsed(LedgerError):
    code = "already_endorsed"
    http_status = 409


class EndorsementRequired(LedgerError):
    """A restricted participant's certificate is confirmed only after its monitoring team endorses it."""

    code = "endorsement_required"
    http_status = 409


GOVERNANCE_ERRORS: tuple[type[LedgerError], ...] = (
    EffectiveHeightOutOfRange,
    ParticipantExists,
    CountryTaken,
    NodeKeyInUse,
    KeyInUse,
    InvalidPublicKey,
    BadKeyProof,
    AlreadySuspended,
    NotSuspended,
    AlreadyValidator,
    NotAValidator,
    LastValidator,
    TooFewValidators,
    ValidatorsNotLive,
    NotPendingValidator,
    StaleReadiness,
    InvalidEvidence,
    EvidenceNotNeeded,
    NotRestricted,
    UnknownParameter,
    ParameterOutOfRange,
    UnknownProposal,
    ProposalExpired,
    ProposalClosed,
    AlreadyVoted,
    KeyUnchanged,
    RotationPending,
    EndorsementNotNeeded,
    AlreadyEndorsed,
    EndorsementRequired,
)


# -- field checks -------------------------------------------------------------------------------
def _text(what: str, raw: Any, low: int, high: int) -> str:
    if not isinstance(raw, str) or not low <= len(raw) <= high:
        raise MalformedInput(f"{what}: must be a string of {low} to {high} characters")
    return raw


def _key(what: str, raw: Any, *, optional: bool = False, role: str | None = None) -> bytes:
    """A 32-byte public key; with its `role`, a valid point of its curve (X25519 for the
    encryption key, Ed25519 for the others)."""
    if optional and raw == b"":
        return b""
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise MalformedInput(f"{what}: must be a 32-byte public key")
    if role is not None:
        valid = is_valid_x25519_public if role == ENCRYPTION else is_valid_ed25519_public
        if not valid(raw):
            curve = "X25519" if role == ENCRYPTION else "Ed25519"
            raise InvalidPublicKey(
                f"{what}: not a valid {curve} public key (the identity, a small-order or "
                "off-curve point, or all zeros)"
            )
    return raw


def _proof(what: str, raw: Any, *, optional: bool = False) -> bytes:
    if optional and raw == b"":
        return b""
    if not isinstance(raw, bytes) or len(raw) != 64:
        raise MalformedInput(f"{what}: a proof of possession is a 64-byte signature")
    return raw


def check_possession(
    chain_id: str, participant: str, role: str, public_key: bytes, proof: bytes
) -> None:
    """The new key's holder signed that it is `participant`'s `role` key on this chain."""
    if not verify_possession(public_key, role, chain_id, participant, proof):
        raise BadKeyProof(
            f"the proof of possession of {participant}'s new {role} key does not verify "
            f"under that key (it signs chain {chain_id!r}, {participant}, {role} and the key)"
        )


def _address(what: str, raw: Any, *, optional: bool = False) -> str:
    text = _text(what, raw, 0 if optional else 1, MAX_ADDRESS)
    if text and not text.startswith(("http://", "https://")):
        raise MalformedInput(f"{what}: must be an http:// or https:// URL")
    return text


def _int(what: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise MalformedInput(f"{what}: must be a non-negative integer")
    return raw


def _args(kind: str, raw: Any, count: int, shape: str) -> list[Any]:
    if not isinstance(raw, list | tuple) or len(raw) != count:
        raise MalformedInput(f"{kind}: args must be {shape}")
    return list(raw)


def parse_args(kind: str, raw: Any) -> tuple[Any, ...]:
    """Check a proposal's kind-specific args (their shape only); returns them as a tuple."""
    if kind == ADMIT:
        name, countries, authority, encryption, node_key, address, *proofs = _args(
            kind,
            raw,
            9,
            "[name, countries, authority_key, encryption_key, node_key, address, "
            "authority_proof, encryption_proof, node_proof]",
        )
        if not isinstance(countries, list | tuple) or not 1 <= len(countries) <= 60:
            raise MalformedInput("admit: countries must list 1 to 60 ISO 3166-1 alpha-2 codes")
        if not all(isinstance(c, str) and is_country(c) for c in countries):
            raise MalformedInput("admit: countries must be ISO 3166-1 alpha-2 codes")
        if len(set(countries)) != len(countries):
            raise MalformedInput("admit: a country is listed twice")
        node_key = _key("admit node_key", node_key, optional=True, role=NODE)
        address = _address("admit address", address, optional=True)
        if bool(node_key) != bool(address):
            raise MalformedInput("admit: a node key and its address go together")
        authority_proof, encryption_proof, node_proof = proofs
        node_proof = _proof("admit node_proof", node_proof, optional=True)
        if bool(node_key) != bool(node_proof):
            raise MalformedInput("admit: a node key and its proof of possession go together")
        return (
            _text("admit name", name, 1, MAX_NAME),
            tuple(countries),
            _key("admit authority_key", authority, role=AUTHORITY),
            _key("admit encryption_key", encryption, role=ENCRYPTION),
            node_key,
            address,
            _proof("admit authority_proof", authority_proof),
            _proof("admit encryption_proof", encryption_proof),
            node_proof,
        )
    if kind in (SUSPEND, REINSTATE, LIFT):
        _args(kind, raw, 0, "[]")
        return ()
    if kind == ADD_VALIDATOR:
        node_key, address = _args(kind, raw, 2, "[node_key, address]")
        return (_key("node_key", node_key, role=NODE), _address("address", address))
    if kind == REMOVE_VALIDATOR:
        (node_key,) = _args(kind, raw, 1, "[node_key]")
        return (_key("node_key", node_key),)
    if kind == RESTRICT:
        zones, monitoring = _args(kind, raw, 2, "[zones, monitoring_key]")
        if not isinstance(zones, list | tuple) or not 1 <= len(zones) <= MAX_ZONES:
            raise MalformedInput(f"restrict: zones must list 1 to {MAX_ZONES} approved zones")
        checked = tuple(_text("restrict zone", z, 1, MAX_ZONE) for z in zones)
        if len(set(checked)) != len(checked):
            raise MalformedInput("restrict: a zone is listed twice")
        return (checked, _key("monitoring_key", monitoring, role=MONITORING))
    if kind == SET_PARAMETER:
        name, value = _args(kind, raw, 2, "[name, value]")
        return (_text("parameter name", name, 1, 64), _int("parameter value", value))
    if kind == REPLACE_KEY:
        key_kind, key, proof = _args(kind, raw, 3, "[key kind, public key, proof]")
        if key_kind not in KEY_KINDS:
            raise MalformedInput(f"replace_key: the key kind is one of {', '.join(KEY_KINDS)}")
        return (key_kind, _key("replace_key key", key, role=key_kind), _proof("proof", proof))
    raise MalformedInput(f"unknown proposal kind {kind!r}; one of {', '.join(KINDS)}")


# -- event bodies -------------------------------------------------------------------------------
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
        return cls(kind, subject, parse_args(kind, args), _int("effective_height", effective))


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
        key = _key("rotate_key public key", obj[1], role=obj[0])
        return cls(obj[0], key, _proof("rotate_key proof", obj[2]))


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
        return cls(_key("ready node_key", node_key, role=NODE), _int("height", height), block_hash)


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
        return cls(_key("evidence node_key", node_key, role=NODE), message)


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


def quorum(n: int) -> int:
    """Precommits that finalise a block of a set of n: more than 2/3."""
    return 2 * n // 3 + 1


def monitored_participant(signer: str) -> str | None:
    """The participant a `monitor/CODE` signer endorses for, or None for an authority signer."""
    return signer[len(MONITOR_PREFIX) :] if signer.startswith(MONITOR_PREFIX) else None


# -- proposals ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProposalRecord:
    """A proposal as the ledger knows it now: the change, the votes cast and where it stands."""

    proposal_id: bytes
    kind: str
    subject: str
    args: tuple[Any, ...]
    effective_height: int
    proposer: str
    proposed_height: int
    #: (participant, approve, height) in the order cast; the proposer's own yes comes first.
    votes: tuple[tuple[str, bool, int], ...]
    status: str = OPEN
    passed_height: int = 0
    #: Enacted or failed: the height from which it is in force; expired: the last voting height.
    closed_height: int = 0
    note: str = ""  # why an enactment failed

    @property
    def yes(self) -> int:
        return sum(1 for _, approve, _ in self.votes if approve)

    @property
    def no(self) -> int:
        return sum(1 for _, approve, _ in self.votes if not approve)

    @property
    def voting_closes(self) -> int:
        """The last height at which a vote counts."""
        return self.effective_height - MIN_LEAD

    def voted(self, participant: str) -> bool:
        return any(code == participant for code, _, _ in self.votes)

    def to_wire(self) -> list[Any]:
        return [
            self.proposal_id,
            self.kind,
            self.subject,
            list(self.args),
            self.effective_height,
            self.proposer,
            self.proposed_height,
            [list(v) for v in self.votes],
            self.status,
            self.passed_height,
            self.closed_height,
            self.note,
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> ProposalRecord:
        if not isinstance(obj, list) or len(obj) != 12:
            raise MalformedInput("a proposal record has 12 fields")
        (pid, kind, subject, args, effective, proposer, proposed, votes, status, *rest) = obj
        passed, closed, note = rest
        return cls(
            pid,
            kind,
            subject,
            parse_args(kind, args),
            effective,
            proposer,
            proposed,
            tuple((v[0], v[1], v[2]) for v in votes),
            status,
            passed,
            closed,
            note,
        )

    def to_json(self, active_participants: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "proposal_id": self.proposal_id.hex(),
            "kind": self.kind,
            "subject": self.subject,
            "args": args_json(self.kind, self.args),
            "effective_height": self.effective_height,
            "voting_closes": self.voting_closes,
            "proposer": self.proposer,
            "proposed_height": self.proposed_height,
            "status": self.status,
            "tally": {"yes": self.yes, "no": self.no},
            "votes": [
                {"participant": code, "approve": approve, "height": height}
                for code, approve, height in self.votes
            ],
        }
        if active_participants is not None:
            out["tally"]["active_participants"] = active_participants
        if self.passed_height:
            out["passed_height"] = self.passed_height
        if self.closed_height:
            out["closed_height"] = self.closed_height
        if self.note:
            out["note"] = self.note
        return out


def args_json(kind: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """A proposal's args with their names, keys in hex: what a person reads."""
    if kind == ADMIT:
        name, countries, authority, encryption, node_key, address, *_ = args
        return {
            "name": name,
            "countries": list(countries),
            "authority_key": authority.hex(),
            "encryption_key": encryption.hex(),
            "node_key": node_key.hex(),
            "address": address,
        }
    if kind == ADD_VALIDATOR:
        return {"node_key": args[0].hex(), "address": args[1]}
    if kind == REMOVE_VALIDATOR:
        return {"node_key": args[0].hex()}
    if kind == RESTRICT:
        return {"zones": list(args[0]), "monitoring_key": args[1].hex()}
    if kind == SET_PARAMETER:
        return {"name": args[0], "value": args[1]}
    if kind == REPLACE_KEY:
        return {"key_kind": args[0], "key": args[1].hex()}
    return {}


def passes(yes: int, active: int, parameters: Parameters) -> bool:
    """yes / active > num / den, in integers."""
    return yes * parameters.governance_threshold_den > parameters.governance_threshold_num * active


#: However many members are dormant, a proposal needs at least this many yes votes.
MIN_YES = 3
DAY_MS = 86_400_000


def electorate(
    registry: Registry,
    kind: str,
    time_ms: int,
    last_active: Callable[[str], int | None],
    last_suspended: Callable[[str], int | None],
) -> int:
    """How many members a threshold counts (docs/governance.md, "Thresholds"): the active
    participants that signed something in the last `governance_dormant_days` days (or entered
    or returned then), never fewer than 2/3 of the active ones; for a suspension, plus those
    suspended in that period (a coalition does not make each suspension easier than the last)."""
    active = [p.code for p in registry.participants.values() if p.active]
    days = registry.parameters.governance_dormant_days
    if days == 0:
        return len(active)
    since = time_ms - days * DAY_MS
    awake = 0
    for code in active:
        last = last_active(code)
        awake += last is None or last >= since
    count = max(awake, -(-2 * len(active) // 3))
    if kind == SUSPEND:
        for p in registry.participants.values():
            suspended = last_suspended(p.code) if not p.active else None
            count += suspended is not None and suspended >= since
    return count


def _tally(
    view: ProposalView, record: ProposalRecord, registry: Registry, ctx: EventContext
) -> ProposalRecord:
    if record.status != OPEN:
        return record
    count = electorate(registry, record.kind, ctx.time_ms, view.last_active, view.last_suspended)
    if record.yes >= min(MIN_YES, (registry.active_count + 1) // 2) and passes(
        record.yes, count, registry.parameters
    ):
        return replace(record, status=PASSED, passed_height=ctx.height)
    return record


# -- what a change does to the register --------------------------------------------------------
@dataclass(frozen=True)
class RegisterChange:
    """One line of the register's history: what changed, for whom, and which event decided it."""

    kind: str
    subject: str
    detail: str
    source: bytes  # the proposal id, or the rotation's event id

    def to_wire(self) -> list[Any]:
        return [self.kind, self.subject, self.detail, self.source]

    @classmethod
    def from_wire(cls, obj: Any) -> RegisterChange:
        kind, subject, detail, source = obj
        return cls(kind, subject, detail, source)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "source": self.source.hex(),
        }


@dataclass
class _Draft:
    """The register being changed at a block boundary (plain dicts, turned into a Registry)."""

    participants: dict[str, Participant]
    validators: list[Validator]
    parameters: Parameters
    extra_recipients: tuple[tuple[str, str, bytes], ...] = ()
    pending: list[Validator] = field(default_factory=list)
    #: Node keys of the validators seen live lately (None: the reader keeps no headers).
    live: frozenset[bytes] | None = None

    def copy(self) -> _Draft:
        return _Draft(
            dict(self.participants),
            list(self.validators),
            self.parameters,
            self.extra_recipients,
            list(self.pending),
            self.live,
        )


def _check_remaining(draft: _Draft, remaining: list[Validator]) -> None:
    """A set that loses validators keeps at least MIN_VALIDATORS, and a live quorum of itself."""
    if not remaining:
        raise LastValidator("the network's last validator cannot be removed")
    if len(remaining) < MIN_VALIDATORS and len(remaining) < len(draft.validators):
        raise TooFewValidators(
            f"the network keeps at least {MIN_VALIDATORS} validators; this leaves {len(remaining)}"
        )
    if draft.live is not None:
        alive = sum(1 for v in remaining if v.node_key in draft.live)
        if alive < quorum(len(remaining)):
            raise ValidatorsNotLive(
                f"this leaves {alive} live validators of {len(remaining)}; a block needs "
                f"{quorum(len(remaining))}: the chain would halt"
            )


def key_owners(
    participants: Mapping[str, Participant],
    validators: Sequence[Validator],
    extra_recipients: Sequence[tuple[str, str, bytes]] = (),
    pending: Sequence[Validator] = (),
) -> dict[bytes, tuple[str, str]]:
    """Every key on the register: key -> (whose, role)."""
    owners: dict[bytes, tuple[str, str]] = {}
    for p in participants.values():
        owners[p.authority_key] = (p.code, AUTHORITY)
        owners[p.encryption_key] = (p.code, ENCRYPTION)
        if p.node_key:
            owners[p.node_key] = (p.code, NODE)
        if p.monitoring_key:
            owners[p.monitoring_key] = (p.code, MONITORING)
    for v in validators:
        owners.setdefault(v.node_key, (v.participant, NODE))
    for v in pending:
        owners.setdefault(v.node_key, (v.participant, NODE))
    for exporting, name, key in extra_recipients:
        owners.setdefault(key, (f"{name} (extra recipient of {exporting})", ENCRYPTION))
    return owners


def _require_free(
    owners: Mapping[bytes, tuple[str, str]], key: bytes, role: str, mine: tuple[str, str] | None
) -> None:
    """`key` may take `role`: it is no key of the register, or already exactly `mine`."""
    found = owners.get(key)
    if found is None or found == mine:
        return
    code, held = found
    error = NodeKeyInUse if role == NODE and held == NODE else KeyInUse
    raise error(f"that {role} key is already {code}'s {held} key: one key, one role")


def _node_keys_in_use(draft: _Draft) -> set[bytes]:
    keys = {v.node_key for v in (*draft.validators, *draft.pending)}
    keys |= {p.node_key for p in draft.participants.values() if p.node_key}
    return keys


#: Parameters that name the height from which a rule applies, and the rule.
RULE_HEIGHTS = {
    "issuance_dates_from_height": "issuance date rules",
    "event_times_from_height": "bounds on an event's created_ms",
}


def _check_parameter(parameters: Parameters, name: str, value: int) -> Parameters:
    if name not in Parameters.__dataclass_fields__:
        raise UnknownParameter(
            f"{name!r} is not a network parameter; one of "
            f"{', '.join(Parameters.__dataclass_fields__)}"
        )
    if name in RULE_HEIGHTS:
        current = getattr(parameters, name)
        if value < 1:
            raise ParameterOutOfRange(
                f"{name} names the first height of the {RULE_HEIGHTS[name]} (at least 1); a "
                "rule is never switched off"
            )
        if current and value > current:
            # Brought forward, never put off: a rule announced or in force stays so.
            raise ParameterOutOfRange(
                f"the {RULE_HEIGHTS[name]} apply from height {current}; that height may be "
                "brought forward, never put off"
            )
    changed = replace(parameters, **{name: value})
    # Checked on the register in force when proposed, and again on the one it enters when it
    # takes effect (another change may have moved a related parameter in between).
    problem = changed.violation()
    if problem is not None:
        raise ParameterOutOfRange(f"{name} = {value} is refused: {problem}")
    return changed


def apply_change(draft: _Draft, kind: str, subject: str, args: tuple[Any, ...]) -> str:
    """Change `draft` as the proposal says, or raise (changing nothing). Returns a description."""
    participants = draft.participants
    keys = key_owners(participants, draft.validators, draft.extra_recipients, draft.pending)
    if kind == ADMIT:
        name, countries, authority, encryption, node_key, address, *_ = args
        if subject in participants:
            raise ParticipantExists(f"{subject} is already a participant")
        owners = {c: p.code for p in participants.values() for c in p.countries}
        taken = [c for c in countries if c in owners]
        if taken:
            raise CountryTaken(f"{taken[0]} is already issued for by {owners[taken[0]]}")
        if node_key and node_key in _node_keys_in_use(draft):
            raise NodeKeyInUse("that node key is already another node's")
        new_keys = [(authority, AUTHORITY), (encryption, ENCRYPTION)]
        new_keys += [(node_key, NODE)] if node_key else []
        for new, role in new_keys:
            _require_free(keys, new, role, None)
        if len({new for new, _ in new_keys}) != len(new_keys):
            raise KeyInUse(f"{subject}'s keys must differ: one key, one role")
        participants[subject] = Participant(
            code=subject,
            name=name,
            countries=tuple(countries),
            authority_key=authority,
            encryption_key=encryption,
            node_key=node_key or None,
            address=address,
        )
        return f"admitted {name} ({', '.join(countries)})"
    if kind == SET_PARAMETER:
        name, value = args
        draft.parameters = _check_parameter(draft.parameters, name, value)
        return f"{name} = {value}"
    participant = participants.get(subject)
    if participant is None:
        raise UnknownParticipant(f"{subject} is not a KP participant on this network")
    if kind == SUSPEND:
        if not participant.active:
            raise AlreadySuspended(f"{subject} is already suspended")
        # Its validators leave the set with it; they wait, pending, for a reinstatement and
        # their nodes' readiness.
        theirs = [v for v in draft.validators if v.participant == subject]
        if theirs:
            remaining = [v for v in draft.validators if v.participant != subject]
            _check_remaining(draft, remaining)
            draft.validators[:] = remaining
            draft.pending.extend(theirs)
        participants[subject] = replace(participant, active=False)
        return "suspended" + (f" ({len(theirs)} validator(s) set aside)" if theirs else "")
    if kind == REINSTATE:
        if participant.active:
            raise NotSuspended(f"{subject} is not suspended")
        participants[subject] = replace(participant, active=True)
        return "reinstated"
    if kind == ADD_VALIDATOR:
        node_key, address = args
        if not participant.active:
            raise ParticipantNotActive(f"{subject} is suspended and cannot become a validator")
        if any(v.node_key == node_key for v in (*draft.validators, *draft.pending)):
            raise AlreadyValidator("that node key is already a validator's")
        if any(p.node_key == node_key and p.code != subject for p in participants.values()):
            raise NodeKeyInUse("that node key is another participant's node")
        _require_free(keys, node_key, NODE, (subject, NODE))
        # In the set only once its node attests readiness on the chain (validator.ready).
        draft.pending.append(Validator(subject, node_key, address))
        return f"validator {node_key.hex()[:16]} at {address}, pending its readiness"
    if kind == REMOVE_VALIDATOR:
        (node_key,) = args

        def other(v: Validator) -> bool:
            return not (v.participant == subject and v.node_key == node_key)

        pending = [v for v in draft.pending if other(v)]
        if len(pending) != len(draft.pending):
            draft.pending[:] = pending
            return f"pending validator {node_key.hex()[:16]} removed"
        kept = [v for v in draft.validators if other(v)]
        if len(kept) == len(draft.validators):
            raise NotAValidator(f"{node_key.hex()[:16]} is not a validator node of {subject}")
        _check_remaining(draft, kept)
        draft.validators[:] = kept
        return f"validator {node_key.hex()[:16]} removed"
    if kind == RESTRICT:
        zones, monitoring = args
        _require_free(keys, monitoring, MONITORING, (subject, MONITORING))
        participants[subject] = replace(
            participant, restricted_zones=tuple(zones), monitoring_key=monitoring
        )
        return f"restricted to zones {', '.join(zones)}"
    if kind == LIFT:
        if participant.monitoring_key is None:
            raise NotRestricted(f"{subject} is not restricted")
        participants[subject] = replace(participant, restricted_zones=(), monitoring_key=None)
        return "restriction lifted"
    if kind == REPLACE_KEY:
        key_kind, key, _ = args
        if key == current_key(participant, key_kind):
            raise KeyUnchanged(f"that is already {subject}'s {key_kind} key")
        _require_free(keys, key, key_kind, None)
        participants[subject] = with_key(participant, key_kind, key)
        return f"{key_kind} key replaced"
    raise MalformedInput(f"unknown proposal kind {kind!r}")  # pragma: no cover - parsed earlier


def current_key(participant: Participant, key_kind: str) -> bytes:
    return participant.authority_key if key_kind == AUTHORITY else participant.encryption_key


def with_key(participant: Participant, key_kind: str, key: bytes) -> Participant:
    if key_kind == AUTHORITY:
        return replace(participant, authority_key=key)
    return replace(participant, encryption_key=key)


def _draft(registry: Registry, live: frozenset[bytes] | None = None) -> _Draft:
    return _Draft(
        dict(registry.participants),
        list(registry.validators),
        registry.parameters,
        registry.extra_recipients,
        list(registry.pending_validators),
        live,
    )


# -- the rules of each governance event ---------------------------------------------------------
class ProposalView(Protocol):
    """Where the rules look proposals up: this block's changes, then the register, then history."""

    def proposal(self, proposal_id: bytes) -> ProposalRecord | None: ...

    def closed_proposal(self, proposal_id: bytes) -> ProposalRecord | None: ...

    def rotation(self, code: str, key_kind: str) -> bytes | None: ...

    def rotated_keys(self) -> set[bytes]: ...

    def readied(self) -> set[bytes]:
        """Node keys whose readiness this block records."""
        ...

    def live_validators(self, registry: Registry, height: int) -> frozenset[bytes] | None:
        """Node keys of the validators seen live before `height` (see live_validators)."""
        ...

    def header_hash(self, height: int) -> bytes | None:
        """The hash of the final header at `height`, None if unknown."""
        ...

    def validators_at(self, registry: Registry, height: int) -> tuple[Validator, ...]:
        """The set that signs `height` (the registry's for the height being built)."""
        ...

    def offenders(self) -> set[bytes]:
        """Node keys this block's evidence removes."""
        ...

    def last_active(self, code: str) -> int | None:
        """When `code` last signed an event (or entered the register), block time; None unknown."""
        ...

    def last_suspended(self, code: str) -> int | None:
        """When `code`'s last suspension took effect (block time), None if never or unknown."""
        ...


@dataclass(frozen=True)
class GovernanceChange:
    """What one governance event changes: a proposal record, or a pending key rotation."""

    proposal: ProposalRecord | None = None
    rotation: tuple[str, str, bytes] | None = None  # (participant, key kind, new key)
    ready: tuple[str, bytes] | None = None  # (participant, node key) entering the set
    offender: bytes | None = None  # the node key equivocation evidence removes from the set


def _active_signer(registry: Registry, event: Event, verb: str) -> Participant:
    participant = registry.participant(event.signer)
    if not participant.active:
        raise ParticipantNotActive(f"{event.signer} is suspended and cannot {verb}")
    return participant


def check_governance(
    view: ProposalView, registry: Registry, event: Event, ctx: EventContext
) -> GovernanceChange:
    """The rules of propose, vote, rotate_key and ready (the signature is already checked). Pure."""
    body = event.body
    if isinstance(body, ProposeBody):
        return GovernanceChange(proposal=_propose(view, registry, event, body, ctx))
    if isinstance(body, ReadyBody):
        return GovernanceChange(ready=_ready(view, registry, event, body, ctx))
    if isinstance(body, EvidenceBody):
        return GovernanceChange(offender=_evidence(view, registry, body, ctx))
    if isinstance(body, VoteBody):
        return GovernanceChange(proposal=_vote(view, registry, event, body, ctx))
    if isinstance(body, RotateKeyBody):
        return GovernanceChange(rotation=_rotate(view, registry, event, body, ctx))
    raise MalformedInput(f"{event.type} is not a governance event")  # pragma: no cover


def _propose(
    view: ProposalView, registry: Registry, event: Event, body: ProposeBody, ctx: EventContext
) -> ProposalRecord:
    _active_signer(registry, event, "propose changes")
    lead = body.effective_height - ctx.height
    if not MIN_LEAD <= lead <= MAX_LEAD:
        raise EffectiveHeightOutOfRange(
            f"effective height {body.effective_height} must be {ctx.height + MIN_LEAD} to "
            f"{ctx.height + MAX_LEAD} for a proposal recorded at height {ctx.height}"
        )
    if body.kind == ADMIT:
        _, _, authority, encryption, node_key, _, *proofs = body.args
        check_possession(ctx.chain_id, body.subject, AUTHORITY, authority, proofs[0])
        check_possession(ctx.chain_id, body.subject, ENCRYPTION, encryption, proofs[1])
        if node_key:
            check_possession(ctx.chain_id, body.subject, NODE, node_key, proofs[2])
    elif body.kind == REPLACE_KEY:
        key_kind, key, proof = body.args
        check_possession(ctx.chain_id, body.subject, key_kind, key, proof)
    # Refused now if it could not take effect on today's register (it is checked again then).
    live = view.live_validators(registry, ctx.height)
    apply_change(_draft(registry, live), body.kind, body.subject, body.args)
    record = ProposalRecord(
        proposal_id=event.event_id,
        kind=body.kind,
        subject=body.subject,
        args=body.args,
        effective_height=body.effective_height,
        proposer=event.signer,
        proposed_height=ctx.height,
        votes=((event.signer, True, ctx.height),),
    )
    return _tally(view, record, registry, ctx)


def _vote(
    view: ProposalView, registry: Registry, event: Event, body: VoteBody, ctx: EventContext
) -> ProposalRecord:
    _active_signer(registry, event, "vote")
    pid = body.proposal_id.hex()[:16]
    record = view.proposal(body.proposal_id)
    if record is None:
        closed = view.closed_proposal(body.proposal_id)
        if closed is None:
            raise UnknownProposal(f"no proposal {pid} is on the ledger")
        if closed.status == EXPIRED:
            raise ProposalExpired(f"proposal {pid} expired at height {closed.closed_height}")
        raise ProposalClosed(f"proposal {pid} is closed: it {closed.status}")
    if ctx.height > record.voting_closes:
        if record.status == OPEN:
            raise ProposalExpired(
                f"voting on proposal {pid} closed at height {record.voting_closes}"
            )
        raise ProposalClosed(f"proposal {pid} passed; voting closed at {record.voting_closes}")
    if record.voted(event.signer):
        raise AlreadyVoted(f"{event.signer} already voted on proposal {pid}")
    voted = replace(record, votes=(*record.votes, (event.signer, body.approve, ctx.height)))
    return _tally(view, voted, registry, ctx)


def _rotate(
    view: ProposalView, registry: Registry, event: Event, body: RotateKeyBody, ctx: EventContext
) -> tuple[str, str, bytes]:
    participant = registry.participant(event.signer)
    if body.public_key == current_key(participant, body.key_kind):
        raise KeyUnchanged(f"that is already {event.signer}'s {body.key_kind} key")
    if view.rotation(event.signer, body.key_kind) is not None:
        raise RotationPending(
            f"{event.signer}'s {body.key_kind} key is already being rotated in this block"
        )
    owners = key_owners(
        registry.participants,
        registry.validators,
        registry.extra_recipients,
        registry.pending_validators,
    )
    _require_free(owners, body.public_key, body.key_kind, None)
    if body.public_key in view.rotated_keys():
        raise KeyInUse(f"another participant rotates to that {body.key_kind} key in this block")
    check_possession(ctx.chain_id, event.signer, body.key_kind, body.public_key, body.proof)
    return (event.signer, body.key_kind, body.public_key)


def _ready(
    view: ProposalView, registry: Registry, event: Event, body: ReadyBody, ctx: EventContext
) -> tuple[str, bytes]:
    code = node_participant(event.signer) or event.signer
    participant = registry.participant(code)
    if not participant.active:
        raise ParticipantNotActive(f"{code} is suspended: its validators stay out of the set")
    key = body.node_key.hex()[:16]
    if any(v.node_key == body.node_key for v in registry.validators):
        raise AlreadyValidator(f"{key} is already a validator")
    if not any(
        v.participant == code and v.node_key == body.node_key for v in registry.pending_validators
    ):
        raise NotPendingValidator(f"{key} is no validator of {code} waiting to enter the set")
    if body.node_key in view.readied():
        raise AlreadyValidator(f"{key} enters the set with this block already")
    if not ctx.height - READY_MAX_AGE <= body.height < ctx.height:
        raise StaleReadiness(
            f"the attestation names block {body.height}; it must be one of the last "
            f"{READY_MAX_AGE} final blocks before {ctx.height}"
        )
    known = view.header_hash(body.height)
    if known is not None and known != body.block_hash:
        raise StaleReadiness(f"block {body.height} of this chain has another hash")
    live = view.live_validators(registry, ctx.height)
    if live is not None:
        joining = len(view.readied()) + 1
        size = len(registry.validators) + joining
        alive = sum(1 for v in registry.validators if v.node_key in live) + joining
        if alive < quorum(size):
            raise ValidatorsNotLive(
                f"with {key} the set would have {size} validators of which {alive} are live; "
                f"a block needs {quorum(size)}: it waits until more validators are live"
            )
    return (code, body.node_key)


def _evidence(
    view: ProposalView, registry: Registry, body: EvidenceBody, ctx: EventContext
) -> bytes:
    height = body.height
    if not ctx.height - EVIDENCE_MAX_AGE <= height <= ctx.height:
        raise InvalidEvidence(
            f"the evidence is of height {height}; it is taken for heights "
            f"{max(1, ctx.height - EVIDENCE_MAX_AGE)} to {ctx.height}"
        )
    in_force = view.validators_at(registry, height)
    if not body.evidence.verify(ctx.chain_id, [v.node_key for v in in_force]):
        raise InvalidEvidence(
            "the two messages are not conflicting messages validly signed by one validator of "
            f"the set in force at height {height}"
        )
    offender = in_force[body.evidence.validator].node_key
    if offender in view.offenders() or not any(v.node_key == offender for v in registry.validators):
        raise EvidenceNotNeeded(f"{offender.hex()[:16]} is no longer a validator")
    return offender


def activity(
    events: Sequence[Event],
    changes: Sequence[RegisterChange],
    height: int,
    time_ms: int,
    participants: Sequence[str],
) -> tuple[dict[str, int], dict[str, int]]:
    """What a block tells of members' activity: (code -> last active time, code -> suspension
    time). Active: signed one of its events, or entered (genesis's at block 1, `admit`) or
    returned (`reinstate`) with it. The store and the audit keep these alike."""
    active = dict.fromkeys(participants, time_ms) if height == 1 else {}
    for event in events:
        if is_participant_code(event.signer):
            active[event.signer] = time_ms
    for change in changes:
        if change.kind in (ADMIT, REINSTATE):
            active[change.subject] = time_ms
    suspended = {c.subject: time_ms for c in changes if c.kind == SUSPEND}
    return active, suspended


def live_validators(
    reader: Any, validators: Sequence[Validator], height: int
) -> frozenset[bytes] | None:
    """Node keys of `validators` seen live before `height`: each proposed one of the last
    LIVENESS_WINDOW * n final blocks (its proposer index read in the set in force at that
    height), or has not been in the set for that long (at the chain's start, or just entered
    after attesting readiness): not judged yet. None when the reader keeps no headers (a model)."""
    header = getattr(reader, "header", None)
    validators_at = getattr(reader, "validators_at", None)
    if header is None or validators_at is None:
        return None
    window = range(height - LIVENESS_WINDOW * len(validators), height)
    wanted = {v.node_key for v in validators}
    seen: set[bytes] = set()
    judged = set(wanted) if window.start >= 1 else set()
    for h in reversed(window):
        if h < 1:
            break
        in_force = validators_at(h)
        judged &= {v.node_key for v in in_force}
        found = header(h)
        if found is not None and found.proposer < len(in_force):
            seen.add(in_force[found.proposer].node_key)
    return frozenset((seen & wanted) | (wanted - judged))


# -- block boundaries ---------------------------------------------------------------------------
@dataclass
class Transition:
    """The register in force after a block, with the proposal records and history it changed."""

    registry: Registry
    proposals: dict[bytes, ProposalRecord] = field(default_factory=dict)
    changes: list[RegisterChange] = field(default_factory=list)


def next_registry(
    registry: Registry,
    proposals: Mapping[bytes, ProposalRecord],
    rotations: Mapping[tuple[str, str], tuple[bytes, bytes]],
    height: int,
    readied: Mapping[bytes, tuple[str, bytes]] | None = None,
    live: frozenset[bytes] | None = None,
    offenders: Mapping[bytes, bytes] | None = None,
) -> Transition:
    """The register in force at height + 1, after block `height` changed `proposals` and rotated
    keys (`rotations`: (participant, key kind) -> (new key, event id)).

    Rotations apply first and then the passed proposals due at height + 1, in the order they
    were proposed: a key replaced by governance (it was stolen) wins over a rotation signed
    with it. An open proposal whose voting closed with this block expires.
    """
    merged = {**registry.proposals, **proposals}
    due = [
        r
        for r in merged.values()
        if (r.status == PASSED and r.effective_height <= height + 1)
        or (r.status == OPEN and height >= r.voting_closes)
    ]
    readied = readied or {}
    offenders = offenders or {}
    if not proposals and not rotations and not due and not readied and not offenders:
        return Transition(registry)
    draft = _draft(registry, None if live is None else live | set(readied))
    changes = []
    for (code, key_kind), (key, event_id) in sorted(rotations.items()):
        draft.participants[code] = with_key(draft.participants[code], key_kind, key)
        changes.append(
            RegisterChange("rotate_key", code, f"{key_kind} key {key.hex()[:16]}", event_id)
        )
    for node_key, (code, event_id) in readied.items():  # in the order the block records them
        entering = [v for v in draft.pending if v.node_key == node_key]
        draft.pending[:] = [v for v in draft.pending if v.node_key != node_key]
        draft.validators.extend(entering)
        changes.append(
            RegisterChange("validator_ready", code, f"validator {node_key.hex()[:16]}", event_id)
        )
    # Proven equivocators leave the set (as CometBFT jails them), whatever the size: a validator
    # that signs two conflicting messages endangers safety; governance adds another.
    for node_key, event_id in offenders.items():
        gone = [v for v in draft.validators if v.node_key == node_key]
        kept = [v for v in draft.validators if v.node_key != node_key]
        if gone and kept:
            draft.validators[:] = kept
            changes.append(
                RegisterChange(
                    "evidence",
                    gone[0].participant,
                    f"validator {node_key.hex()[:16]} removed: equivocation",
                    event_id,
                )
            )
    if draft.live is not None:
        draft.live = draft.live - set(offenders)
    records = dict(proposals)
    for record in sorted(due, key=lambda r: (r.proposed_height, r.proposal_id)):
        if record.status == OPEN:
            records[record.proposal_id] = replace(record, status=EXPIRED, closed_height=height)
            continue
        trial = draft.copy()
        try:
            detail = apply_change(trial, record.kind, record.subject, record.args)
        except LedgerError as exc:
            records[record.proposal_id] = replace(
                record, status=FAILED, closed_height=height + 1, note=f"{exc.code}: {exc.message}"
            )
            continue
        draft = trial
        records[record.proposal_id] = replace(record, status=ENACTED, closed_height=height + 1)
        changes.append(RegisterChange(record.kind, record.subject, detail, record.proposal_id))
    still_open = {pid: r for pid, r in {**merged, **records}.items() if r.status in (OPEN, PASSED)}
    evolved = registry.evolve(
        participants=draft.participants,
        validators=tuple(draft.validators),
        parameters=draft.parameters,
        proposals=still_open,
        pending_validators=tuple(draft.pending),
    )
    return Transition(evolved, records, changes)
