"""What a validator must find on disk after a crash to stay safe: its signer state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ledger.consensus.messages import (
    MAX_HEIGHT,
    MAX_ROUND,
    Proposal,
    Step,
    Vote,
    _fields,
    _int,
    _optional_value,
    message_from_wire,
)
from ledger.errors import MalformedInput


@dataclass(frozen=True, slots=True)
class SignerState:
    """Everything a validator must find on disk after a crash to stay safe at `height`.

    `signed` holds the proposals and votes it signed at this height, in signing order: after a
    restart it re-sends exactly those and never signs a different one at a (round, kind).
    """

    height: int
    round: int = 0
    step: Step = Step.PROPOSE
    locked_round: int = -1
    locked_value: bytes | None = None
    valid_round: int = -1
    valid_value: bytes | None = None
    signed: tuple[Proposal | Vote, ...] = ()

    WIRE_TAG: ClassVar[str] = "signer-state"

    def to_wire(self) -> list[Any]:
        return [
            self.WIRE_TAG,
            self.height,
            self.round,
            int(self.step),
            self.locked_round,
            self.locked_value,
            self.valid_round,
            self.valid_value,
            [m.to_wire() for m in self.signed],
        ]

    @classmethod
    def from_wire(cls, obj: object) -> Self:
        f = _fields(obj, cls.WIRE_TAG, 9)
        height = _int(f[1], "signer state height", 1, MAX_HEIGHT)
        round_ = _int(f[2], "signer state round", 0, MAX_ROUND)
        step = Step(_int(f[3], "signer state step", 1, 3))
        locked_round = _int(f[4], "signer state locked_round", -1, round_)
        locked_value = _optional_value(f[5], "signer state locked_value")
        valid_round = _int(f[6], "signer state valid_round", -1, round_)
        valid_value = _optional_value(f[7], "signer state valid_value")
        if (locked_round == -1) != (locked_value is None):
            raise MalformedInput("signer state: locked_round and locked_value disagree")
        if (valid_round == -1) != (valid_value is None):
            raise MalformedInput("signer state: valid_round and valid_value disagree")
        if not isinstance(f[8], list | tuple):
            raise MalformedInput("signer state: signed messages must be a list")
        signed: list[Proposal | Vote] = []
        seen: set[tuple[int, int]] = set()
        for item in f[8]:
            message = message_from_wire(item)
            if not isinstance(message, Proposal | Vote):
                raise MalformedInput("signer state: only proposals and votes are signed")
            if message.height != height or message.round > round_:
                raise MalformedInput("signer state: a signed message is not of this height")
            slot = _slot(message)
            if slot in seen:
                raise MalformedInput("signer state: two signed messages for one round and kind")
            seen.add(slot)
            signed.append(message)
        return cls(
            height,
            round_,
            step,
            locked_round,
            locked_value,
            valid_round,
            valid_value,
            tuple(signed),
        )


def _slot(message: Proposal | Vote) -> tuple[int, int]:
    """(round, kind) with kind 0 for a proposal: a validator signs at most one message per slot."""
    return (message.round, 0 if isinstance(message, Proposal) else int(message.kind))
