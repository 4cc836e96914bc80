"""The register: who may do what at a given height (participants, validators, parameters and the
proposals pending on it), the proposal records it holds, and the context an event is judged in.

Below both the certificate state machine (ledger/state.py) and governance (ledger/governance/):
each reads the register; neither is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ledger.certificate import MAX_ZONE, is_country
from ledger.encoding import encode
from ledger.errors import InvalidPublicKey, MalformedInput, UnknownParticipant
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.hashing import TAG_REGISTRY, tagged_hash
from ledger.keys import is_valid_ed25519_public, is_valid_x25519_public

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


# -- the shape of a proposal's fields ---------------------------------------------------------
def _text(what: str, raw: Any, low: int, high: int) -> str:
    if not isinstance(raw, str) or not low <= len(raw) <= high:
        raise MalformedInput(f"{what}: must be a string of {low} to {high} characters")
    return raw


def key_field(what: str, raw: Any, *, optional: bool = False, role: str | None = None) -> bytes:
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


def proof_field(what: str, raw: Any, *, optional: bool = False) -> bytes:
    if optional and raw == b"":
        return b""
    if not isinstance(raw, bytes) or len(raw) != 64:
        raise MalformedInput(f"{what}: a proof of possession is a 64-byte signature")
    return raw


def _address(what: str, raw: Any, *, optional: bool = False) -> str:
    text = _text(what, raw, 0 if optional else 1, MAX_ADDRESS)
    if text and not text.startswith(("http://", "https://")):
        raise MalformedInput(f"{what}: must be an http:// or https:// URL")
    return text


def int_field(what: str, raw: Any) -> int:
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
        node_key = key_field("admit node_key", node_key, optional=True, role=NODE)
        address = _address("admit address", address, optional=True)
        if bool(node_key) != bool(address):
            raise MalformedInput("admit: a node key and its address go together")
        authority_proof, encryption_proof, node_proof = proofs
        node_proof = proof_field("admit node_proof", node_proof, optional=True)
        if bool(node_key) != bool(node_proof):
            raise MalformedInput("admit: a node key and its proof of possession go together")
        return (
            _text("admit name", name, 1, MAX_NAME),
            tuple(countries),
            key_field("admit authority_key", authority, role=AUTHORITY),
            key_field("admit encryption_key", encryption, role=ENCRYPTION),
            node_key,
            address,
            proof_field("admit authority_proof", authority_proof),
            proof_field("admit encryption_proof", encryption_proof),
            node_proof,
        )
    if kind in (SUSPEND, REINSTATE, LIFT):
        _args(kind, raw, 0, "[]")
        return ()
    if kind == ADD_VALIDATOR:
        node_key, address = _args(kind, raw, 2, "[node_key, address]")
        return (key_field("node_key", node_key, role=NODE), _address("address", address))
    if kind == REMOVE_VALIDATOR:
        (node_key,) = _args(kind, raw, 1, "[node_key]")
        return (key_field("node_key", node_key),)
    if kind == RESTRICT:
        zones, monitoring = _args(kind, raw, 2, "[zones, monitoring_key]")
        if not isinstance(zones, list | tuple) or not 1 <= len(zones) <= MAX_ZONES:
            raise MalformedInput(f"restrict: zones must list 1 to {MAX_ZONES} approved zones")
        checked = tuple(_text("restrict zone", z, 1, MAX_ZONE) for z in zones)
        if len(set(checked)) != len(checked):
            raise MalformedInput("restrict: a zone is listed twice")
        return (checked, key_field("monitoring_key", monitoring, role=MONITORING))
    if kind == SET_PARAMETER:
        name, value = _args(kind, raw, 2, "[name, value]")
        return (_text("parameter name", name, 1, 64), int_field("parameter value", value))
    if kind == REPLACE_KEY:
        key_kind, key, proof = _args(kind, raw, 3, "[key kind, public key, proof]")
        if key_kind not in KEY_KINDS:
            raise MalformedInput(f"replace_key: the key kind is one of {', '.join(KEY_KINDS)}")
        return (
            key_kind,
            key_field("replace_key key", key, role=key_kind),
            proof_field("proof", proof),
        )
    raise MalformedInput(f"unknown proposal kind {kind!r}; one of {', '.join(KINDS)}")


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


# -- the register and the context an event is judged in ----------------------------------------
@dataclass(frozen=True)
class EventContext:
    height: int
    time_ms: int
    chain_id: str


@dataclass(frozen=True)
class Registry:
    """Who may do what at a given height: participants, validators, parameters, open proposals."""

    participants: Mapping[str, Participant]
    validators: tuple[Validator, ...]
    parameters: Parameters
    extra_recipients: tuple[tuple[str, str, bytes], ...] = ()
    country_owner: Mapping[str, str] = field(default_factory=dict)
    #: Proposals still open or passed and waiting for their effective height, by id.
    proposals: Mapping[bytes, ProposalRecord] = field(default_factory=dict)
    #: Validators governance added (or a suspension set aside) that are not in the set yet: each
    #: enters it once its node attests readiness on the chain (a `validator.ready` event).
    pending_validators: tuple[Validator, ...] = ()

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> Registry:
        return cls.build(
            {p.code: p for p in genesis.participants},
            genesis.validators,
            genesis.parameters,
            genesis.extra_recipients,
        )

    @classmethod
    def build(
        cls,
        participants: Mapping[str, Participant],
        validators: tuple[Validator, ...],
        parameters: Parameters,
        extra_recipients: tuple[tuple[str, str, bytes], ...],
        proposals: Mapping[bytes, ProposalRecord] | None = None,
        pending_validators: tuple[Validator, ...] = (),
    ) -> Registry:
        owners = {c: p.code for p in participants.values() for c in p.countries}
        return cls(
            dict(participants),
            validators,
            parameters,
            extra_recipients,
            owners,
            dict(proposals or {}),
            pending_validators,
        )

    def evolve(
        self,
        *,
        participants: Mapping[str, Participant],
        validators: tuple[Validator, ...],
        parameters: Parameters,
        proposals: Mapping[bytes, ProposalRecord],
        pending_validators: tuple[Validator, ...] = (),
    ) -> Registry:
        """The next register: the same network (extra recipients) with these changes."""
        return Registry.build(
            participants,
            validators,
            parameters,
            self.extra_recipients,
            proposals,
            pending_validators,
        )

    def to_wire(self) -> list[Any]:
        return [
            [self.participants[code].to_wire() for code in sorted(self.participants)],
            [v.to_wire() for v in self.validators],
            self.parameters.to_wire(),
            [[exp, name, key] for exp, name, key in self.extra_recipients],
            [self.proposals[pid].to_wire() for pid in sorted(self.proposals)],
            # Only when some wait: a register without pending validators keeps the hash it had
            # before they existed (older chains keep their headers' registry hashes).
            *([[v.to_wire() for v in self.pending_validators]] if self.pending_validators else []),
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> Registry:
        if not isinstance(obj, list) or len(obj) not in (5, 6) or (len(obj) == 6 and not obj[5]):
            raise MalformedInput(
                "a registry is [participants, validators, parameters, extras, proposals, "
                "pending validators (only when some wait)]"
            )
        participants, validators, parameters, extras, proposals, *rest = obj
        pending = rest[0] if rest else []
        records = [ProposalRecord.from_wire(p) for p in proposals]
        return cls.build(
            {p.code: p for p in (Participant.from_wire(raw) for raw in participants)},
            tuple(Validator.from_wire(v) for v in validators),
            Parameters.from_wire(parameters),
            tuple((exp, name, key) for exp, name, key in extras),
            {r.proposal_id: r for r in records},
            tuple(Validator.from_wire(v) for v in pending),
        )

    @cached_property
    def hash(self) -> bytes:
        """Committed in every header: the register as it stands after that block."""
        return tagged_hash(TAG_REGISTRY, encode(self.to_wire()))

    @property
    def active_count(self) -> int:
        """How many participants vote on governance (the threshold's denominator)."""
        return sum(1 for p in self.participants.values() if p.active)

    def participant(self, code: str) -> Participant:
        found = self.participants.get(code)
        if found is None:
            raise UnknownParticipant(f"{code} is not a KP participant on this network")
        return found

    def recipients_for(self, exporting: str, importing: str) -> list[tuple[str, bytes]]:
        """Who must be able to read a certificate's identities: both parties and named extras."""
        out = [
            (exporting, self.participant(exporting).encryption_key),
            (importing, self.participant(importing).encryption_key),
        ]
        out += [(name, key) for exp, name, key in self.extra_recipients if exp == exporting]
        # One box per recipient: a certificate naming one participant twice (refused later as
        # SameParticipant) must still seal to an event that decodes.
        return list(dict(out).items())

    def recipient_names(self, exporting: str, importing: str) -> frozenset[str]:
        """The names of recipients_for, kept per pair: a register never changes, and every
        issuance asks it at admission and again in its block."""
        pair = (exporting, importing)
        names = self._recipient_names.get(pair)
        if names is None:
            names = frozenset(name for name, _ in self.recipients_for(exporting, importing))
            self._recipient_names[pair] = names
        return names

    @cached_property
    def _recipient_names(self) -> dict[tuple[str, str], frozenset[str]]:
        return {}
