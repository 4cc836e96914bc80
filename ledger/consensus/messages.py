"""The consensus wire messages, commit certificates and evidence, with their canonical encodings."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeAlias

from ledger.encoding import encode
from ledger.errors import InvalidCommitCertificate, MalformedInput
from ledger.hashing import TAG_PROPOSAL, TAG_VOTE
from ledger.keys import Signer, verify

#: Values are opaque ids of this size (the node uses block header hashes).
VALUE_BYTES = 32
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
MAX_HEIGHT = 2**63 - 1
#: Rounds grow by one per timeout; 2**31 is far beyond anything a live network reaches.
MAX_ROUND = 2**31 - 1
#: Validator sets are small (a few dozen KP participants); an index field never needs more.
MAX_VALIDATOR_INDEX = 2**16 - 1


def quorum_size(n: int) -> int:
    """Smallest count c with 3c > 2n: any two such sets share an honest validator when f < n/3."""
    return 2 * n // 3 + 1


def weak_quorum_size(n: int) -> int:
    """Smallest count c with 3c > n (f+1): such a set always contains an honest validator."""
    return n // 3 + 1


def proposer_for(height: int, round: int, n: int) -> int:
    """Index of the proposer of (height, round): a round-robin schedule (SPEC section 5)."""
    return (height + round) % n


class VoteKind(enum.IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


class Step(enum.IntEnum):
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


# --- shape checks shared by every from_wire -----------------------------------------------------


def _fields(obj: object, tag: str, count: int) -> list[Any]:
    if not isinstance(obj, list | tuple) or len(obj) != count or obj[0] != tag:
        raise MalformedInput(f"{tag}: expected a list of {count} fields starting with {tag!r}")
    return list(obj)


def _int(obj: object, what: str, low: int, high: int) -> int:
    # bool is an int subclass; a True where a round belongs is malformed, not 1.
    if type(obj) is not int or not low <= obj <= high:
        raise MalformedInput(f"{what}: expected an integer in [{low}, {high}]")
    return obj


def _bytes(obj: object, what: str, length: int) -> bytes:
    if not isinstance(obj, bytes) or len(obj) != length:
        raise MalformedInput(f"{what}: expected {length} bytes")
    return obj


def _optional_value(obj: object, what: str) -> bytes | None:
    return None if obj is None else _bytes(obj, what, VALUE_BYTES)


def _is_value(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == VALUE_BYTES


def _is_signature(signature: object) -> bool:
    return isinstance(signature, bytes) and len(signature) == SIGNATURE_BYTES


def _validator_keys(validators: Sequence[bytes]) -> tuple[bytes, ...]:
    keys = tuple(validators)
    if not keys or any(len(k) != PUBLIC_KEY_BYTES for k in keys):
        raise ValueError("validators must be a non-empty sequence of 32-byte public keys")
    if len(set(keys)) != len(keys):
        raise ValueError("a validator key appears twice")
    return keys


# --- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """The proposer of (height, round) proposes `value`; `pol_round` >= 0 names the earlier round in
    which the value got 2f+1 prevotes (its proof of lock), -1 for none."""

    height: int
    round: int
    value: bytes
    pol_round: int
    proposer: int
    signature: bytes

    WIRE_TAG: ClassVar[str] = "proposal"

    @staticmethod
    def payload(chain_id: str, height: int, round: int, value: bytes, pol_round: int) -> bytes:
        return encode(["proposal", chain_id, height, round, value, pol_round])

    def signing_payload(self, chain_id: str) -> bytes:
        return self.payload(chain_id, self.height, self.round, self.value, self.pol_round)

    @classmethod
    def create(
        cls,
        key: Signer,
        chain_id: str,
        height: int,
        round: int,
        value: bytes,
        pol_round: int,
        proposer: int,
    ) -> Proposal:
        signature = key.sign(TAG_PROPOSAL, cls.payload(chain_id, height, round, value, pol_round))
        return cls(height, round, value, pol_round, proposer, signature)

    def well_formed(self) -> bool:
        return (
            1 <= self.height <= MAX_HEIGHT
            and 0 <= self.round <= MAX_ROUND
            and -1 <= self.pol_round < self.round
            and self.proposer >= 0
            and _is_value(self.value)
            and _is_signature(self.signature)
        )

    def verify(self, chain_id: str, validators: Sequence[bytes]) -> bool:
        """Well formed, from the scheduled proposer of its (height, round), and validly signed."""
        n = len(validators)
        if n == 0 or not self.well_formed() or self.proposer >= n:
            return False
        if self.proposer != proposer_for(self.height, self.round, n):
            return False
        payload = self.signing_payload(chain_id)
        return verify(validators[self.proposer], TAG_PROPOSAL, payload, self.signature)

    def to_wire(self) -> list[Any]:
        return [
            self.WIRE_TAG,
            self.height,
            self.round,
            self.value,
            self.pol_round,
            self.proposer,
            self.signature,
        ]

    @classmethod
    def from_wire(cls, obj: object) -> Self:
        f = _fields(obj, cls.WIRE_TAG, 7)
        round_ = _int(f[2], "proposal round", 0, MAX_ROUND)
        return cls(
            height=_int(f[1], "proposal height", 1, MAX_HEIGHT),
            round=round_,
            value=_bytes(f[3], "proposal value", VALUE_BYTES),
            pol_round=_int(f[4], "proposal pol_round", -1, round_ - 1),
            proposer=_int(f[5], "proposal proposer", 0, MAX_VALIDATOR_INDEX),
            signature=_bytes(f[6], "proposal signature", SIGNATURE_BYTES),
        )


@dataclass(frozen=True, slots=True)
class Vote:
    """A prevote or precommit by validator index `validator`; `value` None is a vote for nil."""

    kind: VoteKind
    height: int
    round: int
    value: bytes | None
    validator: int
    signature: bytes

    WIRE_TAG: ClassVar[str] = "vote"

    @staticmethod
    def payload(
        chain_id: str, kind: VoteKind, height: int, round: int, value: bytes | None
    ) -> bytes:
        return encode(["vote", chain_id, int(kind), height, round, value or b""])

    def signing_payload(self, chain_id: str) -> bytes:
        return self.payload(chain_id, self.kind, self.height, self.round, self.value)

    @classmethod
    def create(
        cls,
        key: Signer,
        chain_id: str,
        kind: VoteKind,
        height: int,
        round: int,
        value: bytes | None,
        validator: int,
    ) -> Vote:
        signature = key.sign(TAG_VOTE, cls.payload(chain_id, kind, height, round, value))
        return cls(kind, height, round, value, validator, signature)

    def well_formed(self) -> bool:
        return (
            isinstance(self.kind, VoteKind)
            and 1 <= self.height <= MAX_HEIGHT
            and 0 <= self.round <= MAX_ROUND
            and self.validator >= 0
            and (self.value is None or _is_value(self.value))
            and _is_signature(self.signature)
        )

    def verify(self, chain_id: str, validators: Sequence[bytes]) -> bool:
        """Well formed, by a validator of the set, and validly signed."""
        if not self.well_formed() or self.validator >= len(validators):
            return False
        payload = self.signing_payload(chain_id)
        return verify(validators[self.validator], TAG_VOTE, payload, self.signature)

    def to_wire(self) -> list[Any]:
        return [
            self.WIRE_TAG,
            int(self.kind),
            self.height,
            self.round,
            self.value,
            self.validator,
            self.signature,
        ]

    @classmethod
    def from_wire(cls, obj: object) -> Self:
        f = _fields(obj, cls.WIRE_TAG, 7)
        return cls(
            kind=VoteKind(_int(f[1], "vote kind", 1, 2)),
            height=_int(f[2], "vote height", 1, MAX_HEIGHT),
            round=_int(f[3], "vote round", 0, MAX_ROUND),
            value=_optional_value(f[4], "vote value"),
            validator=_int(f[5], "vote validator", 0, MAX_VALIDATOR_INDEX),
            signature=_bytes(f[6], "vote signature", SIGNATURE_BYTES),
        )


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """Precommit signatures of more than 2/3 of the validators for `value` at (height, round).

    Each entry is (validator index, signature of that validator's precommit), sorted by index. It
    is exactly the set of precommits, so anyone holding the validator keys can check it.
    """

    height: int
    round: int
    value: bytes
    signatures: tuple[tuple[int, bytes], ...]

    WIRE_TAG: ClassVar[str] = "commit"

    @classmethod
    def from_precommits(cls, precommits: Iterable[Vote]) -> CommitCertificate:
        votes = sorted(precommits, key=lambda v: v.validator)
        value = votes[0].value if votes else None
        if value is None:
            raise ValueError("a commit certificate needs precommits for a value")
        height, round = votes[0].height, votes[0].round
        for v in votes:
            if (v.kind, v.height, v.round, v.value) != (VoteKind.PRECOMMIT, height, round, value):
                raise ValueError("precommits of one certificate must agree")
        return cls(height, round, value, tuple((v.validator, v.signature) for v in votes))

    def precommits(self) -> list[Vote]:
        return [
            Vote(VoteKind.PRECOMMIT, self.height, self.round, self.value, index, signature)
            for index, signature in self.signatures
        ]

    def verify(self, chain_id: str, validators: Sequence[bytes]) -> None:
        """Raise InvalidCommitCertificate saying what is wrong, or return when it is valid."""
        where = f"commit certificate for height {self.height}"
        n = len(validators)
        if not (1 <= self.height <= MAX_HEIGHT and 0 <= self.round <= MAX_ROUND):
            raise InvalidCommitCertificate(f"{where}: height or round out of range")
        if not _is_value(self.value):
            raise InvalidCommitCertificate(f"{where}: the value must be {VALUE_BYTES} bytes")
        previous = -1
        for index, signature in self.signatures:
            if not 0 <= index < n:
                raise InvalidCommitCertificate(
                    f"{where}: signer {index} is not a validator (there are {n})"
                )
            if index == previous:
                raise InvalidCommitCertificate(f"{where}: validator {index} signs twice")
            if index < previous:
                raise InvalidCommitCertificate(
                    f"{where}: signers are not sorted by index ({previous} before {index})"
                )
            if not _is_signature(signature):
                raise InvalidCommitCertificate(
                    f"{where}: the signature of validator {index} is not {SIGNATURE_BYTES} bytes"
                )
            previous = index
        needed = quorum_size(n)
        if len(self.signatures) < needed:
            raise InvalidCommitCertificate(
                f"{where}: too few signers: {len(self.signatures)} of {n} validators, "
                f"{needed} needed"
            )
        payload = Vote.payload(chain_id, VoteKind.PRECOMMIT, self.height, self.round, self.value)
        for index, signature in self.signatures:
            if not verify(validators[index], TAG_VOTE, payload, signature):
                raise InvalidCommitCertificate(
                    f"{where}: bad precommit signature from validator {index}"
                )

    def is_valid(self, chain_id: str, validators: Sequence[bytes]) -> bool:
        try:
            self.verify(chain_id, validators)
        except InvalidCommitCertificate:
            return False
        return True

    def to_wire(self) -> list[Any]:
        return [
            self.WIRE_TAG,
            self.height,
            self.round,
            self.value,
            [[index, signature] for index, signature in self.signatures],
        ]

    @classmethod
    def from_wire(cls, obj: object) -> Self:
        f = _fields(obj, cls.WIRE_TAG, 5)
        entries = f[4]
        if not isinstance(entries, list | tuple):
            raise MalformedInput("commit signatures: expected a list")
        signatures = []
        for entry in entries:
            if not isinstance(entry, list | tuple) or len(entry) != 2:
                raise MalformedInput("commit signatures: expected [index, signature] pairs")
            signatures.append(
                (
                    _int(entry[0], "commit signer", 0, MAX_VALIDATOR_INDEX),
                    _bytes(entry[1], "commit signature", SIGNATURE_BYTES),
                )
            )
        return cls(
            height=_int(f[1], "commit height", 1, MAX_HEIGHT),
            round=_int(f[2], "commit round", 0, MAX_ROUND),
            value=_bytes(f[3], "commit value", VALUE_BYTES),
            signatures=tuple(signatures),
        )


@dataclass(frozen=True, slots=True)
class EquivocationEvidence:
    """Two validly signed votes by one validator at one (height, round, kind) for different values."""

    vote_a: Vote
    vote_b: Vote

    WIRE_TAG: ClassVar[str] = "equivocation"

    @property
    def validator(self) -> int:
        return self.vote_a.validator

    def verify(self, chain_id: str, validators: Sequence[bytes]) -> bool:
        a, b = self.vote_a, self.vote_b
        return (
            (a.kind, a.height, a.round, a.validator) == (b.kind, b.height, b.round, b.validator)
            and a.value != b.value
            and a.verify(chain_id, validators)
            and b.verify(chain_id, validators)
        )

    def to_wire(self) -> list[Any]:
        return [self.WIRE_TAG, self.vote_a.to_wire(), self.vote_b.to_wire()]

    @classmethod
    def from_wire(cls, obj: object) -> Self:
        f = _fields(obj, cls.WIRE_TAG, 3)
        return cls(Vote.from_wire(f[1]), Vote.from_wire(f[2]))


@dataclass(frozen=True, slots=True)
class ConflictingProposals:
    """Two validly signed, different proposals by the proposer of one (height, round)."""

    proposal_a: Proposal
    proposal_b: Proposal

    WIRE_TAG: ClassVar[str] = "conflicting-proposals"

    @property
    def validator(self) -> int:
        return self.proposal_a.proposer

    def verify(self, chain_id: str, validators: Sequence[bytes]) -> bool:
        a, b = self.proposal_a, self.proposal_b
        return (
            (a.height, a.round) == (b.height, b.round)
            and (a.value, a.pol_round) != (b.value, b.pol_round)
            and a.verify(chain_id, validators)
            and b.verify(chain_id, validators)
        )

    def to_wire(self) -> list[Any]:
        return [self.WIRE_TAG, self.proposal_a.to_wire(), self.proposal_b.to_wire()]

    @classmethod
    def from_wire(cls, obj: object) -> Self:
        f = _fields(obj, cls.WIRE_TAG, 3)
        return cls(Proposal.from_wire(f[1]), Proposal.from_wire(f[2]))


Evidence: TypeAlias = EquivocationEvidence | ConflictingProposals
Message: TypeAlias = (
    Proposal | Vote | CommitCertificate | EquivocationEvidence | ConflictingProposals
)

_WIRE_TYPES: dict[str, type[Message]] = {
    t.WIRE_TAG: t
    for t in (Proposal, Vote, CommitCertificate, EquivocationEvidence, ConflictingProposals)
}


def message_from_wire(obj: object) -> Message:
    """Decode any consensus message by the tag in its first field."""
    if not isinstance(obj, list | tuple) or not obj or not isinstance(obj[0], str):
        raise MalformedInput("consensus message: expected a list starting with its kind")
    kind = _WIRE_TYPES.get(obj[0])
    if kind is None:
        raise MalformedInput(f"consensus message: unknown kind {obj[0]!r}")
    return kind.from_wire(obj)
