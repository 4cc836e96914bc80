"""Keys, a stand-in application and message builders shared by the consensus core tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.consensus import (
    Action,
    Broadcast,
    CommitCertificate,
    ConsensusCore,
    Proposal,
    ScheduleTimeout,
    SignerState,
    TimeoutConfig,
    Vote,
    VoteKind,
    proposer_for,
)
from ledger.keys import SigningKey

CHAIN = "kp-test"
KEYS = [SigningKey.from_seed(bytes([i + 1]) * 32) for i in range(10)]
OUTSIDER = SigningKey.from_seed(b"\xee" * 32)
V = b"\xaa" * 32
W = b"\xbb" * 32
X = b"\xcc" * 32


def keys(n: int = 4) -> list[bytes]:
    return [k.public_bytes for k in KEYS[:n]]


class App:
    def __init__(
        self, value: bytes | None = V, invalid: Sequence[bytes] = (), missing: Sequence[bytes] = ()
    ) -> None:
        self.value = value
        self.invalid = set(invalid)
        #: Values whose block has not arrived: the application cannot judge them yet.
        self.missing = set(missing)

    def propose_value(self, height: int, round: int) -> bytes | None:
        return self.value

    def is_valid(self, height: int, value: bytes) -> bool | None:
        if value in self.missing:
            return None
        return value not in self.invalid


def core(
    index: int | None = 0,
    n: int = 4,
    app: App | None = None,
    height: int = 1,
    state: SignerState | None = None,
    signer: SigningKey | None = None,
) -> ConsensusCore:
    key = signer if signer is not None else (None if index is None else KEYS[index])
    return ConsensusCore(CHAIN, keys(n), key, app or App(), height, TimeoutConfig(), state)


def prevote(i: int, value: bytes | None, round: int = 0, height: int = 1) -> Vote:
    return Vote.create(KEYS[i], CHAIN, VoteKind.PREVOTE, height, round, value, i)


def precommit(i: int, value: bytes | None, round: int = 0, height: int = 1) -> Vote:
    return Vote.create(KEYS[i], CHAIN, VoteKind.PRECOMMIT, height, round, value, i)


def proposal(round: int, value: bytes, pol: int = -1, height: int = 1, n: int = 4) -> Proposal:
    p = proposer_for(height, round, n)
    return Proposal.create(KEYS[p], CHAIN, height, round, value, pol, p)


def sent(actions: list[Action]) -> list[Any]:
    return [a.message for a in actions if isinstance(a, Broadcast)]


def own_votes(actions: list[Action], kind: VoteKind) -> list[Vote]:
    return [m for m in sent(actions) if isinstance(m, Vote) and m.kind is kind]


def one_vote(actions: list[Action], kind: VoteKind) -> Vote:
    votes = own_votes(actions, kind)
    assert len(votes) == 1, actions
    return votes[0]


def timeouts(actions: list[Action]) -> list[ScheduleTimeout]:
    return [a for a in actions if isinstance(a, ScheduleTimeout)]


def feed(c: ConsensusCore, messages: Sequence[Proposal | Vote], now: int = 0) -> list[Action]:
    out: list[Action] = []
    for m in messages:
        out += c.on_message(m, now)
    return out


def locked_on_v_at_round_0(c: ConsensusCore) -> list[Action]:
    """Core 0 of four sees V proposed and prevoted by 1 and 2: it precommits V and locks."""
    out = c.start(0)
    out += feed(c, [proposal(0, V), prevote(1, V), prevote(2, V)])
    assert one_vote(out, VoteKind.PRECOMMIT).value == V
    assert c.locked == (0, V) and c.valid == (0, V)
    return out


def to_round(c: ConsensusCore, round: int, now: int = 0) -> list[Action]:
    """f+1 = 2 validators with messages in `round` pull the core there (line 55)."""
    out = feed(c, [precommit(2, None, round), precommit(3, None, round)], now)
    assert c.round == round
    return out


def certificate(signers: Sequence[int], value: bytes = V) -> CommitCertificate:
    return CommitCertificate.from_precommits([precommit(i, value) for i in signers])


def replaced(wire: list[Any], index: int, value: Any) -> list[Any]:
    changed = list(wire)
    changed[index] = value
    return changed
