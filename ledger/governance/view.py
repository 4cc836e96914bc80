"""What the rules of a governance event read (the block being built, the register, history)
and what one event changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ledger.genesis import Validator
from ledger.registry import ProposalRecord, Registry


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

    def events_before(self) -> int:
        """How many events of this block were applied before the one being checked."""
        ...


@dataclass(frozen=True)
class GovernanceChange:
    """What one governance event changes: a proposal record, or a pending key rotation."""

    proposal: ProposalRecord | None = None
    rotation: tuple[str, str, bytes] | None = None  # (participant, key kind, new key)
    ready: tuple[str, bytes] | None = None  # (participant, node key) entering the set
    offender: bytes | None = None  # the node key equivocation evidence removes from the set
    recovery: bool = False  # the block records the emergency recovery it is judged by
