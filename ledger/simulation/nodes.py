"""The simulated nodes: their keys and values, their application, and the events scheduled for them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ledger.consensus import CommitCertificate, ConsensusCore, Proposal, Step, Vote
from ledger.encoding import encode
from ledger.events import Event
from ledger.keys import SigningKey
from ledger.simulation.config import INVALID_BELOW


def value_for(seed: int, node: int, height: int, round: int) -> bytes:
    return hashlib.sha256(encode(["value", seed, node, height, round])).digest()


def is_acceptable(value: bytes) -> bool:
    return len(value) == 32 and value[0] >= INVALID_BELOW


def byzantine_value(seed: int, height: int, round: int) -> bytes:
    # Always valid: the attack is more dangerous when honest nodes accept both values.
    attempt = 0
    while True:
        value = hashlib.sha256(encode(["byzantine", seed, height, round, attempt])).digest()
        if is_acceptable(value):
            return value
        attempt += 1


_KEYS: list[SigningKey] = []


def validator_keys(n: int) -> list[SigningKey]:
    while len(_KEYS) < n:
        seed = hashlib.sha256(b"kpledger simulation validator %d" % len(_KEYS)).digest()
        _KEYS.append(SigningKey.from_seed(seed))
    return _KEYS[:n]


class OpaqueApp:
    """A node's application: its values are valid by their first byte, once it has their block."""

    def __init__(self, seed: int, node: Node, missing_blocks: bool) -> None:
        self._seed = seed
        self._node = node
        self._missing_blocks = missing_blocks

    def propose_value(self, height: int, round: int) -> bytes | None:
        value = value_for(self._seed, self._node.index, height, round)
        self._node.blocks.add(value)
        return value

    def is_valid(self, height: int, value: bytes) -> bool | None:
        if self._missing_blocks and value not in self._node.blocks:
            return None  # the block is not here (yet)
        return is_acceptable(value)


@dataclass(frozen=True, slots=True)
class Deliver:
    to: int
    sender: int
    message: Proposal | Vote | CommitCertificate | Event
    #: For a proposal: whether its block comes with it.
    with_block: bool = True


@dataclass(frozen=True, slots=True)
class BlockArrives:
    """A block reaches a node on its own: late, or fetched from a peer that has it."""

    node: int
    incarnation: int
    height: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Timer:
    node: int
    incarnation: int
    step: Step
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class Resend:
    node: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class Start:
    node: int
    incarnation: int
    height: int


@dataclass(frozen=True, slots=True)
class Restart:
    node: int


@dataclass(frozen=True, slots=True)
class Gst:
    pass


ScheduledEvent = Deliver | BlockArrives | Timer | Resend | Start | Restart | Gst


class Node:
    def __init__(self, index: int, key: SigningKey, byzantine: bool) -> None:
        self.index = index
        self.key = key
        self.byzantine = byzantine
        self.core: ConsensusCore | None = None
        self.chain: list[CommitCertificate] = []
        # What is on this node's disk: the encoded SignerState of its last Persist.
        self.persisted: bytes | None = None
        self.up = False
        self.incarnation = 0
        self.cert_replies: dict[tuple[int, int], int] = {}
        #: Values whose block this node holds (lost in a crash), and those it is fetching.
        self.blocks: set[bytes] = set()
        self.fetching: set[bytes] = set()


def signer_of(message: Proposal | Vote) -> int:
    return message.proposer if isinstance(message, Proposal) else message.validator


def describe(message: Proposal | Vote | CommitCertificate | Event) -> str:
    if isinstance(message, Event):
        return f"event {message.type} by {message.signer} {message.event_id.hex()[:8]}"
    if isinstance(message, Proposal):
        return (
            f"proposal h{message.height} r{message.round} {message.value.hex()[:8]} "
            f"pol {message.pol_round} by {message.proposer}"
        )
    if isinstance(message, Vote):
        value = "nil" if message.value is None else message.value.hex()[:8]
        return (
            f"{message.kind.name.lower()} h{message.height} r{message.round} {value} "
            f"by {message.validator}"
        )
    return f"commit h{message.height} r{message.round} {message.value.hex()[:8]}"
