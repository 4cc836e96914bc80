"""Public proofs of a certificate's status and history, checkable offline with genesis alone."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ledger.block import Header, event_leaf
from ledger.certificate import confidential_hash, digest_from_parts
from ledger.consensus.messages import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import InvalidCommitCertificate, InvalidProof, LedgerError, MalformedInput
from ledger.events import CONFIRM_IMPORT, HISTORICAL, ISSUE, REJECT_IMPORT, VOID
from ledger.genesis import Genesis, Validator, validators_hash
from ledger.governance import ENDORSE
from ledger.hashing import TAG_REGISTRY, tagged_hash
from ledger.merkle import inclusion_proof, verify_inclusion
from ledger.records import STATUSES, CertificateRecord, state_key, state_value
from ledger.registry import Registry
from ledger.statetree import NodeReader, StateProof, StateTree, verify_state_proof

if TYPE_CHECKING:  # building a proof reads a store; checking one needs no store (nor plyvel)
    from ledger.store import Store

PROOF_VERSION = 2
REGISTER_PROOF_VERSION = 1
_FINAL_STATUS = {
    ISSUE: "issued",
    ENDORSE: "issued",
    CONFIRM_IMPORT: "import_confirmed",
    REJECT_IMPORT: "import_rejected",
    VOID: "voided",
}


@dataclass(frozen=True)
class FinalHeader:
    """A header with the commit certificate that makes it final."""

    header: Header
    commit: CommitCertificate

    def to_wire(self) -> list[Any]:
        return [self.header.encoded, self.commit.to_wire()]

    @classmethod
    def from_wire(cls, obj: Any) -> FinalHeader:
        if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[0], bytes):
            raise MalformedInput("a final header is [header bytes, commit certificate]")
        return cls(Header.decode(obj[0]), CommitCertificate.from_wire(obj[1]))

    def check(self, genesis: Genesis, validators: Sequence[Validator] | None = None) -> None:
        """Final under `validators`, the set in force at its height (default: genesis's)."""
        h = self.header
        in_force = tuple(genesis.validators if validators is None else validators)
        if h.chain_id != genesis.chain_id:
            raise InvalidProof(f"header {h.height} is of chain {h.chain_id!r}, not this network's")
        if h.validators_hash != validators_hash(in_force):
            known = "genesis does not know" if validators is None else "not in force at its height"
            raise InvalidProof(
                f"header {h.height} names a validator set {known} "
                "(is a validator change missing from the proof?)"
            )
        if self.commit.height != h.height or self.commit.value != h.hash:
            raise InvalidProof(f"the commit certificate is not for header {h.height}")
        try:
            self.commit.verify(genesis.chain_id, [v.node_key for v in in_force])
        except InvalidCommitCertificate as exc:
            raise InvalidProof(f"header {h.height} is not final: {exc.message}") from exc


@dataclass(frozen=True)
class ValidatorChange:
    """A change of validator set: the last header the old set signed, and the set it names next.

    A light client follows these from genesis, as in CometBFT: the header is checked against the
    set in force at its height, and the new set must hash to its `next_validators_hash`.
    """

    final: FinalHeader
    validators: tuple[Validator, ...]

    @property
    def first_height(self) -> int:
        """The first height the new set signs."""
        return self.final.header.height + 1

    def to_wire(self) -> list[Any]:
        return [self.final.to_wire(), [v.to_wire() for v in self.validators]]

    @classmethod
    def from_wire(cls, obj: Any) -> ValidatorChange:
        if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[1], list):
            raise MalformedInput("a validator change is [final header, validators]")
        return cls(FinalHeader.from_wire(obj[0]), tuple(Validator.from_wire(v) for v in obj[1]))


class ValidatorSets:
    """The validator set in force at each height, followed from genesis through checked changes."""

    def __init__(self, genesis: Genesis, changes: Sequence[ValidatorChange], head: int) -> None:
        self.genesis = genesis
        self.sets: list[tuple[int, tuple[Validator, ...]]] = [(1, genesis.validators)]
        for change in changes:
            h = change.final.header
            first, current = self.sets[-1]
            if h.height < first or change.first_height > head:
                raise InvalidProof("the validator changes are out of order or beyond the head")
            change.final.check(genesis, current)
            new_hash = validators_hash(change.validators)
            if h.next_validators_hash != new_hash:
                raise InvalidProof(
                    f"the validator set given for height {change.first_height} is not the one "
                    f"header {h.height} names next (forged validator change)"
                )
            if new_hash == h.validators_hash or not change.validators:
                raise InvalidProof(f"header {h.height} does not change the validator set")
            self.sets.append((change.first_height, change.validators))

    def at(self, height: int) -> tuple[Validator, ...]:
        found = self.sets[0][1]
        for first, validators in self.sets:
            if first <= height:
                found = validators
        return found

    def check(self, final: FinalHeader) -> None:
        validators = self.at(final.header.height)
        final.check(self.genesis, None if validators is self.genesis.validators else validators)


@dataclass(frozen=True)
class EventInclusion:
    """One event of the certificate's history: its place in a final block's Merkle tree."""

    event_id: bytes
    type: str
    height: int
    index: int
    path: tuple[bytes, ...]

    def to_wire(self) -> list[Any]:
        return [self.event_id, self.type, self.height, self.index, list(self.path)]

    @classmethod
    def from_wire(cls, obj: Any) -> EventInclusion:
        if not isinstance(obj, list) or len(obj) != 5 or not isinstance(obj[4], list):
            raise MalformedInput("an event inclusion is [event_id, type, height, index, path]")
        return cls(obj[0], obj[1], obj[2], obj[3], tuple(obj[4]))


@dataclass(frozen=True)
class StatusLeaf:
    status: str
    digest: bytes
    last_event_id: bytes
    last_height: int

    def to_wire(self) -> list[Any]:
        return [self.status, self.digest, self.last_event_id, self.last_height]


@dataclass(frozen=True)
class CertificateProof:
    """Everything needed to trust one node's answer about one certificate number."""

    number: str
    head: FinalHeader
    leaf: StatusLeaf | None  # None: the number is not on the ledger
    state_proof: StateProof
    events: tuple[EventInclusion, ...]
    headers: tuple[FinalHeader, ...]  # the final headers the events are in
    #: The certificate's public facts and the hash of its confidential half (see certificate.py).
    public_wire: list[Any] | None
    confidential_hash: bytes | None
    #: Every validator set change from genesis up to the head, in height order.
    changes: tuple[ValidatorChange, ...] = ()

    def to_wire(self) -> list[Any]:
        return [
            PROOF_VERSION,
            self.number,
            self.head.to_wire(),
            self.leaf.to_wire() if self.leaf is not None else None,
            self.state_proof.to_wire(),
            [e.to_wire() for e in self.events],
            [h.to_wire() for h in self.headers],
            self.public_wire,
            self.confidential_hash,
            [c.to_wire() for c in self.changes],
        ]

    def encode(self) -> bytes:
        return encode(self.to_wire())

    def to_base64(self) -> str:
        return base64.b64encode(self.encode()).decode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> CertificateProof:
        try:
            obj = decode(data)
            if not isinstance(obj, list) or len(obj) != 10 or obj[0] != PROOF_VERSION:
                raise MalformedInput(f"not a version {PROOF_VERSION} certificate proof")
            _, number, head, leaf, state_proof, events, headers, public, conf, changes = obj
            if (
                not isinstance(number, str)
                or not isinstance(events, list)
                or not isinstance(headers, list)
                or not isinstance(changes, list)
            ):
                raise MalformedInput("malformed proof")
            parsed_leaf = None
            if leaf is not None:
                if not isinstance(leaf, list) or len(leaf) != 4:
                    raise MalformedInput("malformed status leaf")
                parsed_leaf = StatusLeaf(*leaf)
            return cls(
                number=number,
                head=FinalHeader.from_wire(head),
                leaf=parsed_leaf,
                state_proof=StateProof.from_wire(state_proof),
                events=tuple(EventInclusion.from_wire(e) for e in events),
                headers=tuple(FinalHeader.from_wire(h) for h in headers),
                public_wire=public,
                confidential_hash=conf,
                changes=tuple(ValidatorChange.from_wire(c) for c in changes),
            )
        except LedgerError as exc:
            raise InvalidProof(f"the proof is malformed: {exc.message}") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidProof(f"the proof is malformed: {exc}") from exc

    @classmethod
    def from_base64(cls, text: str) -> CertificateProof:
        try:
            return cls.decode(base64.b64decode(text, validate=True))
        except (ValueError, TypeError) as exc:
            raise InvalidProof("the proof is not valid base64") from exc


@dataclass(frozen=True)
class VerifiedCertificate:
    """What a checked proof establishes."""

    number: str
    found: bool
    status: str | None
    digest: bytes | None
    history: tuple[tuple[str, int, bytes], ...]  # (event type, height, event id)
    head_height: int
    head_time_ms: int
    exporting_participant: str | None
    importing_participant: str | None
    issued_on: str | None
    expires_on: str | None
    #: The number this certificate replaces ("" for none), as the public facts bind it.
    replaces: str | None = None
    #: The block time (ms) of each history event, from its final header.
    history_times_ms: tuple[int, ...] = ()
    #: A record from before the network (`certificate.historical`), as its authority entered it.
    historical: bool = False


def verify_certificate_proof(
    proof: CertificateProof, genesis: Genesis, number: str | None = None
) -> VerifiedCertificate:
    """Check a proof against genesis alone. Raises InvalidProof naming the first thing wrong."""
    if number is not None and proof.number != number:
        raise InvalidProof(f"the proof is about {proof.number}, not {number}")
    sets = ValidatorSets(genesis, proof.changes, proof.head.header.height)
    sets.check(proof.head)
    head = proof.head.header
    key = state_key(proof.number)
    leaf = proof.leaf
    if leaf is None:
        if not verify_state_proof(head.state_root, key, None, proof.state_proof):
            raise InvalidProof("the proof of absence does not match the state root")
        # Nothing rides along unchecked: a proof of absence has no history and no facts.
        extra = (proof.events, proof.headers, proof.public_wire, proof.confidential_hash)
        if any(item not in (None, ()) for item in extra):
            raise InvalidProof("a proof of absence carries no history or facts")
        return VerifiedCertificate(
            proof.number, False, None, None, (), head.height, head.time_ms, None, None, None, None
        )
    if leaf.status not in STATUSES:
        raise InvalidProof(f"unknown status {leaf.status!r}")
    value = state_value(
        proof.number, leaf.status, leaf.digest, leaf.last_event_id, leaf.last_height
    )
    if not verify_state_proof(head.state_root, key, value, proof.state_proof):
        raise InvalidProof(
            "the status does not match the state root of the latest final header "
            "(stale or altered status)"
        )
    if leaf.last_height > head.height:
        raise InvalidProof("the status claims a height after the head")
    headers: dict[int, Header] = {head.height: head}
    for final in proof.headers:
        sets.check(final)
        headers[final.header.height] = final.header
    history = []
    times = []
    previous_height = 0
    for position, item in enumerate(proof.events):
        header = headers.get(item.height)
        if header is None:
            raise InvalidProof(f"no final header is given for height {item.height}")
        if item.height < previous_height:
            raise InvalidProof("the history is out of order")
        previous_height = item.height
        leaf_data = event_leaf(item.event_id, item.type, proof.number)
        if not verify_inclusion(
            leaf_data, item.index, header.event_count, item.path, header.events_root
        ):
            raise InvalidProof(f"event {position + 1} of the history is not in block {item.height}")
        history.append((item.type, item.height, item.event_id))
        times.append(header.time_ms)
    _check_history(history, leaf)
    public = proof.public_wire
    if (
        not isinstance(public, list)
        or len(public) != 6
        or not all(isinstance(x, str) for x in public)
        or not isinstance(proof.confidential_hash, bytes)
    ):
        raise InvalidProof("the proof lacks the certificate's public facts")
    if (
        digest_from_parts(public, proof.confidential_hash) != leaf.digest
        or public[0] != proof.number
    ):
        raise InvalidProof("the public facts do not match the certificate digest")
    return VerifiedCertificate(
        number=proof.number,
        found=True,
        status=leaf.status,
        digest=leaf.digest,
        history=tuple(history),
        head_height=head.height,
        head_time_ms=head.time_ms,
        exporting_participant=public[1],
        importing_participant=public[2],
        issued_on=public[3],
        expires_on=public[4],
        replaces=public[5],
        history_times_ms=tuple(times),
        historical=history[0][0] == HISTORICAL,
    )


def _check_history(history: Sequence[tuple[str, int, bytes]], leaf: StatusLeaf) -> None:
    if not history:
        raise InvalidProof("the proof carries no history")
    if history[0][0] == HISTORICAL:
        _check_historical(history, leaf)
        return
    if any(t not in _FINAL_STATUS for t, _, _ in history):
        raise InvalidProof("the history holds an event that is not about a certificate")
    if history[0][0] != ISSUE or any(t == ISSUE for t, _, _ in history[1:]):
        raise InvalidProof("the history must start with the issue, and only once")
    # A restricted participant's certificate is endorsed right after its issue, before any decision.
    decisions = history[2:] if len(history) > 1 and history[1][0] == ENDORSE else history[1:]
    if len(decisions) > 1 or any(t == ENDORSE for t, _, _ in decisions):
        raise InvalidProof("a certificate has at most one event after its issue and endorsement")
    last_type, last_height, last_id = history[-1]
    if last_id != leaf.last_event_id or last_height != leaf.last_height:
        raise InvalidProof("the history does not end with the event the status names (incomplete)")
    if _FINAL_STATUS[last_type] != leaf.status:
        raise InvalidProof("the history does not lead to the status")


def _check_historical(history: Sequence[tuple[str, int, bytes]], leaf: StatusLeaf) -> None:
    """A historical record: its first account, and at most the counterpart's beside it; it
    enters in any final status and no other event follows (docs/rules.md 2.6)."""
    if len(history) > 2 or any(t != HISTORICAL for t, _, _ in history):
        raise InvalidProof(
            "a historical record's history is its one or two accounts, and nothing else"
        )
    _, last_height, last_id = history[-1]
    if last_id != leaf.last_event_id or last_height != leaf.last_height:
        raise InvalidProof("the history does not end with the event the status names (incomplete)")


class FinalBlocks(Protocol):
    """Where a proof's final headers and inclusion paths come from: the store, or a node's cache."""

    def final_header(self, height: int) -> FinalHeader: ...

    def inclusion(self, height: int, event_id: bytes) -> tuple[int, tuple[bytes, ...]]:
        """The event's index in block `height` and its Merkle inclusion path."""
        ...


class StoreBlocks:
    """Reads every final header and recomputes every inclusion path from the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def final_header(self, height: int) -> FinalHeader:
        return _final_header(self.store, height)

    def inclusion(self, height: int, event_id: bytes) -> tuple[int, tuple[bytes, ...]]:
        stored = self.store.readers.events.get(event_id)
        if stored is None or stored.height != height:
            raise InvalidProof(f"the store lacks event {event_id.hex()} at height {height}")
        leaves = self.store.readers.blocks.event_leaves(height)
        return stored.index, tuple(inclusion_proof(leaves, stored.index))


def build_certificate_proof(
    store: Store, number: str, blocks: FinalBlocks | None = None
) -> CertificateProof:
    """The proof a node serves for `number`, against its latest final header."""
    return _certificate_proof(store, number, blocks, store.readers.state_nodes)[0]


def build_served_certificate(
    store: Store, number: str, blocks: FinalBlocks | None, nodes: NodeReader
) -> tuple[CertificateProof, CertificateRecord | None]:
    """The proof of `number` and its record as `Store.served_certificate` checks it, from one
    reading: the record against the proof's own state leaf, its digest against the proof's
    public half and confidential hash (which the issue event's commitment made). Walking the
    tree and reading the record, the issue event and the digest once, not twice, is most of
    what a public answer costs. `nodes` reads the state tree (the node's cache of it)."""
    proof, record = _certificate_proof(store, number, blocks, nodes)
    key = state_key(number)
    leaf = proof.state_proof.leaf
    committed = leaf[1] if leaf is not None and leaf[0] == key else None
    derived = None
    if proof.public_wire is not None and proof.confidential_hash is not None:
        derived = digest_from_parts(proof.public_wire, proof.confidential_hash)
    return proof, store.check_served(number, record, committed, derived)


def _certificate_proof(
    store: Store, number: str, blocks: FinalBlocks | None, nodes: NodeReader
) -> tuple[CertificateProof, CertificateRecord | None]:
    head = store.head
    if head is None:
        raise InvalidProof("the ledger has no final block yet")
    blocks = blocks if blocks is not None else StoreBlocks(store)
    final_head = blocks.final_header(head.height)
    tree = StateTree(nodes, head.state_root)
    state_proof = tree.prove(state_key(number))
    changes = validator_changes(store, head.height)
    record = store.readers.certificates.get(number)
    if record is None:
        empty = CertificateProof(number, final_head, None, state_proof, (), (), None, None, changes)
        return empty, None
    events = []
    heights = []
    for entry in record.history:
        index, path = blocks.inclusion(entry.height, entry.event_id)
        events.append(EventInclusion(entry.event_id, entry.type, entry.height, index, path))
        if entry.height != head.height and entry.height not in heights:
            heights.append(entry.height)
    commitment = store.readers.events.issue_commitment(record.issue_event_id)
    if commitment is None:
        raise InvalidProof(f"the store lacks the issue event of {number}")
    proof = CertificateProof(
        number=number,
        head=final_head,
        leaf=StatusLeaf(record.status, record.digest, record.last_event_id, record.last_height),
        state_proof=state_proof,
        events=tuple(events),
        headers=tuple(blocks.final_header(h) for h in heights),
        public_wire=record.facts.public_wire(),
        confidential_hash=confidential_hash(record.facts, commitment),
        changes=changes,
    )
    return proof, record


def validator_changes(store: Store, head: int) -> tuple[ValidatorChange, ...]:
    """Each validator set change in force by `head`: what a light client needs from genesis on."""
    return tuple(
        ValidatorChange(_final_header(store, first - 1), validators)
        for first, validators in store.validator_sets()
        if first <= head
    )


def _final_header(store: Store, height: int) -> FinalHeader:
    header = store.readers.blocks.header(height)
    cert = store.readers.blocks.commit_certificate_bytes(height)
    if header is None or cert is None:
        raise InvalidProof(f"the store lacks final header {height}")
    return FinalHeader(header, CommitCertificate.from_wire(decode(cert)))


# -- the participant register -------------------------------------------------------------------
@dataclass(frozen=True)
class RegisterProof:
    """The participant register in force at the next height, against a final header.

    `register` is `encode(Registry.to_wire())`, whose tagged hash the head's `registry_hash` is;
    `changes` let a client follow the validator sets from genesis to the head, as in a
    certificate proof. With it an issuer trusts the encryption keys it seals identities to
    because a quorum of validators signed them, not because one node said so.
    """

    head: FinalHeader
    register: bytes
    changes: tuple[ValidatorChange, ...] = ()

    def to_wire(self) -> list[Any]:
        return [
            REGISTER_PROOF_VERSION,
            self.head.to_wire(),
            self.register,
            [c.to_wire() for c in self.changes],
        ]

    def encode(self) -> bytes:
        return encode(self.to_wire())

    def to_base64(self) -> str:
        return base64.b64encode(self.encode()).decode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> RegisterProof:
        try:
            obj = decode(data)
            if not isinstance(obj, list) or len(obj) != 4 or obj[0] != REGISTER_PROOF_VERSION:
                raise MalformedInput(f"not a version {REGISTER_PROOF_VERSION} register proof")
            _, head, register, changes = obj
            if not isinstance(register, bytes) or not isinstance(changes, list):
                raise MalformedInput("a register proof is [1, final header, bin, [changes...]]")
            return cls(
                FinalHeader.from_wire(head),
                register,
                tuple(ValidatorChange.from_wire(c) for c in changes),
            )
        except LedgerError as exc:
            raise InvalidProof(f"the register proof is malformed: {exc.message}") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidProof(f"the register proof is malformed: {exc}") from exc

    @classmethod
    def from_base64(cls, text: Any) -> RegisterProof:
        if not isinstance(text, str):
            raise InvalidProof("the register proof is missing")
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise InvalidProof("the register proof is not valid base64") from exc
        return cls.decode(data)


@dataclass(frozen=True)
class VerifiedRegister:
    """What a checked register proof establishes: the register in force after `head_height`."""

    registry: Registry
    head_height: int
    head_time_ms: int


def verify_register_proof(proof: RegisterProof, genesis: Genesis) -> VerifiedRegister:
    """Check a register proof against genesis alone; InvalidProof names the first thing wrong."""
    sets = ValidatorSets(genesis, proof.changes, proof.head.header.height)
    sets.check(proof.head)
    head = proof.head.header
    if tagged_hash(TAG_REGISTRY, proof.register) != head.registry_hash:
        raise InvalidProof(
            f"the register does not match the registry_hash of final header {head.height} "
            "(altered register)"
        )
    try:
        registry = Registry.from_wire(decode(proof.register))
    except LedgerError as exc:
        raise InvalidProof(f"the register is malformed: {exc.message}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidProof(f"the register is malformed: {exc}") from exc
    if validators_hash(registry.validators) != head.next_validators_hash:
        raise InvalidProof(
            f"the register's validators are not the set header {head.height} names next"
        )
    return VerifiedRegister(registry, head.height, head.time_ms)


def build_register_proof(store: Store, registry: Registry) -> RegisterProof:
    """The proof a node serves with its register: `registry` must be the one in force after the
    head (what the head's registry_hash commits to)."""
    head = store.head
    if head is None:
        raise InvalidProof("the ledger has no final block yet")
    register = encode(registry.to_wire())
    if tagged_hash(TAG_REGISTRY, register) != head.registry_hash:
        raise InvalidProof(f"the register is not the one final header {head.height} commits to")
    return RegisterProof(
        _final_header(store, head.height), register, validator_changes(store, head.height)
    )
