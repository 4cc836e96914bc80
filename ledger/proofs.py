"""Public proofs of a certificate's status and history, checkable offline with genesis alone."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.block import Header, event_leaf
from ledger.certificate import confidential_hash, digest_from_parts
from ledger.consensus import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import InvalidCommitCertificate, InvalidProof, LedgerError, MalformedInput
from ledger.events import CONFIRM_IMPORT, ISSUE, REJECT_IMPORT, VOID
from ledger.genesis import Genesis, validators_hash
from ledger.merkle import inclusion_proof, verify_inclusion
from ledger.state import STATUSES, state_key, state_value
from ledger.statetree import StateProof, StateTree, verify_state_proof
from ledger.store import Store

PROOF_VERSION = 1
_FINAL_STATUS = {
    ISSUE: "issued",
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

    def check(self, genesis: Genesis) -> None:
        h = self.header
        validators = [v.node_key for v in genesis.validators]
        if h.chain_id != genesis.chain_id:
            raise InvalidProof(f"header {h.height} is of chain {h.chain_id!r}, not this network's")
        if h.validators_hash != validators_hash(genesis.validators):
            raise InvalidProof(f"header {h.height} names a validator set genesis does not know")
        if self.commit.height != h.height or self.commit.value != h.hash:
            raise InvalidProof(f"the commit certificate is not for header {h.height}")
        try:
            self.commit.verify(genesis.chain_id, validators)
        except InvalidCommitCertificate as exc:
            raise InvalidProof(f"header {h.height} is not final: {exc.message}") from exc


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
        ]

    def encode(self) -> bytes:
        return encode(self.to_wire())

    def to_base64(self) -> str:
        return base64.b64encode(self.encode()).decode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> CertificateProof:
        try:
            obj = decode(data)
            if not isinstance(obj, list) or len(obj) != 9 or obj[0] != PROOF_VERSION:
                raise MalformedInput("not a version 1 certificate proof")
            _, number, head, leaf, state_proof, events, headers, public, conf = obj
            if (
                not isinstance(number, str)
                or not isinstance(events, list)
                or not isinstance(headers, list)
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


def verify_certificate_proof(
    proof: CertificateProof, genesis: Genesis, number: str | None = None
) -> VerifiedCertificate:
    """Check a proof against genesis alone. Raises InvalidProof naming the first thing wrong."""
    if number is not None and proof.number != number:
        raise InvalidProof(f"the proof is about {proof.number}, not {number}")
    proof.head.check(genesis)
    head = proof.head.header
    key = state_key(proof.number)
    leaf = proof.leaf
    if leaf is None:
        if not verify_state_proof(head.state_root, key, None, proof.state_proof):
            raise InvalidProof("the proof of absence does not match the state root")
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
        final.check(genesis)
        headers[final.header.height] = final.header
    history = []
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
    )


def _check_history(history: Sequence[tuple[str, int, bytes]], leaf: StatusLeaf) -> None:
    if not history:
        raise InvalidProof("the proof carries no history")
    if history[0][0] != ISSUE or any(t == ISSUE for t, _, _ in history[1:]):
        raise InvalidProof("the history must start with the issue, and only once")
    if len(history) > 2:
        raise InvalidProof("a certificate has at most one event after its issue")
    last_type, last_height, last_id = history[-1]
    if last_id != leaf.last_event_id or last_height != leaf.last_height:
        raise InvalidProof("the history does not end with the event the status names (incomplete)")
    if _FINAL_STATUS[last_type] != leaf.status:
        raise InvalidProof("the history does not lead to the status")


def build_certificate_proof(store: Store, number: str) -> CertificateProof:
    """The proof a node serves for `number`, against its latest final header."""
    head = store.head
    if head is None:
        raise InvalidProof("the ledger has no final block yet")
    final_head = _final_header(store, head.height)
    tree = StateTree(store, head.state_root)
    state_proof = tree.prove(state_key(number))
    record = store.get_certificate(number)
    if record is None:
        return CertificateProof(number, final_head, None, state_proof, (), (), None, None)
    events = []
    heights = []
    for entry in record.history:
        stored = store.event(entry.event_id)
        if stored is None:
            raise InvalidProof(f"the store lacks event {entry.event_id.hex()}")
        leaves = store.event_leaves(entry.height)
        events.append(
            EventInclusion(
                entry.event_id,
                entry.type,
                entry.height,
                stored.index,
                tuple(inclusion_proof(leaves, stored.index)),
            )
        )
        if entry.height != head.height and entry.height not in heights:
            heights.append(entry.height)
    issue = store.event(record.issue_event_id)
    assert issue is not None
    body = issue.event.body
    return CertificateProof(
        number=number,
        head=final_head,
        leaf=StatusLeaf(record.status, record.digest, record.last_event_id, record.last_height),
        state_proof=state_proof,
        events=tuple(events),
        headers=tuple(_final_header(store, h) for h in heights),
        public_wire=record.facts.public_wire(),
        confidential_hash=confidential_hash(record.facts, body.sealed.commitment),
    )


def _final_header(store: Store, height: int) -> FinalHeader:
    header = store.header(height)
    cert = store.commit_certificate_bytes(height)
    if header is None or cert is None:
        raise InvalidProof(f"the store lacks final header {height}")
    return FinalHeader(header, CommitCertificate.from_wire(decode(cert)))
