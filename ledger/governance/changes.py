"""What a passed change does to the register, and the register in force after each block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ledger.errors import (
    AlreadySuspended,
    AlreadyValidator,
    CountryTaken,
    KeyInUse,
    KeyUnchanged,
    LastValidator,
    LedgerError,
    MalformedInput,
    NodeKeyInUse,
    NotAValidator,
    NotRestricted,
    NotSuspended,
    ParameterOutOfRange,
    ParticipantExists,
    ParticipantNotActive,
    TooFewValidators,
    UnknownParameter,
    UnknownParticipant,
    ValidatorsNotLive,
)
from ledger.genesis import Parameters, Participant, Validator
from ledger.registry import (
    ADD_VALIDATOR,
    ADMIT,
    AUTHORITY,
    ENACTED,
    ENCRYPTION,
    EXPIRED,
    FAILED,
    LIFT,
    MONITORING,
    NODE,
    OPEN,
    PASSED,
    REINSTATE,
    REMOVE_VALIDATOR,
    REPLACE_KEY,
    RESTRICT,
    SET_PARAMETER,
    SUSPEND,
    ProposalRecord,
    Registry,
)

#: Governance never leaves fewer validators than this (3f + 1 with f = 1: one may fail). A
#: genesis may start with fewer (a development network); then no change shrinks it further.
MIN_VALIDATORS = 4


def quorum(n: int) -> int:
    """Precommits that finalise a block of a set of n: more than 2/3."""
    return 2 * n // 3 + 1


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


def require_free(
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


def check_parameter(parameters: Parameters, name: str, value: int) -> Parameters:
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
            require_free(keys, new, role, None)
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
        draft.parameters = check_parameter(draft.parameters, name, value)
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
        require_free(keys, node_key, NODE, (subject, NODE))
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
        require_free(keys, monitoring, MONITORING, (subject, MONITORING))
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
        require_free(keys, key, key_kind, None)
        participants[subject] = with_key(participant, key_kind, key)
        return f"{key_kind} key replaced"
    raise MalformedInput(f"unknown proposal kind {kind!r}")  # pragma: no cover - parsed earlier


def current_key(participant: Participant, key_kind: str) -> bytes:
    return participant.authority_key if key_kind == AUTHORITY else participant.encryption_key


def with_key(participant: Participant, key_kind: str, key: bytes) -> Participant:
    if key_kind == AUTHORITY:
        return replace(participant, authority_key=key)
    return replace(participant, encryption_key=key)


def draft_of(registry: Registry, live: frozenset[bytes] | None = None) -> _Draft:
    return _Draft(
        dict(registry.participants),
        list(registry.validators),
        registry.parameters,
        registry.extra_recipients,
        list(registry.pending_validators),
        live,
    )


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
    draft = draft_of(registry, None if live is None else live | set(readied))
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
