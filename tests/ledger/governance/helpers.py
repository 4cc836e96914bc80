"""The governance tests' chain: a test network with a store, blocks built and committed one
by one, and the helpers that make governance events for it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from ledger import authoring
from ledger import governance as gov
from ledger.chain import Execution, build_block, validate_block
from ledger.consensus import (
    CommitCertificate,
    EquivocationEvidence,
    Vote,
    VoteKind,
)
from ledger.encoding import encode
from ledger.events import Event
from ledger.keys import EncryptionKey, SigningKey
from ledger.registry import Registry
from ledger.store import Store
from tests.helpers import Member, TestNetwork


def _seed(*parts: str) -> bytes:
    return hashlib.sha256("/".join(("gov-test", *parts)).encode()).digest()


def newcomer(code: str = "BW", countries: tuple[str, ...] = ("BW",)) -> Member:
    """Keys for a participant genesis does not list (admitted by governance)."""
    return Member(
        code=code,
        countries=countries,
        authority=SigningKey.from_seed(_seed(code, "authority")),
        encryption=EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed(code, "enc"))),
        node=SigningKey.from_seed(_seed(code, "node")),
    )


class Chain:
    """A store that follows the register from block to block, signed by the set in force."""

    def __init__(self, net: TestNetwork, store: Store) -> None:
        self.net = net
        self.store = store
        self.node_keys = {m.node.public_bytes: m.node for m in net.members.values()}
        #: Participants whose validator nodes are down: they propose no block.
        self.down: set[str] = set()

    @property
    def registry(self) -> Registry:
        return self.net.registry

    @property
    def height(self) -> int:
        return self.store.height

    def add_member(self, member: Member) -> None:
        self.net.members[member.code] = member
        self.node_keys[member.node.public_bytes] = member.node

    def build(self, events: Sequence[Event], time_ms: int | None = None) -> Execution:
        return build_block(
            self.store,
            self.registry,
            self.net.genesis.hash,
            self.store.head,
            events,
            chain_id=self.net.chain_id,
            time_ms=time_ms if time_ms is not None else self.net.tick(),
            proposer=self.proposer(),
        )

    def proposer(self) -> int:
        """Round robin from height + round (consensus.proposer_for), past the nodes down."""
        validators = self.registry.validators
        for round_ in range(len(validators)):
            index = (self.height + 1 + round_) % len(validators)
            if validators[index].participant not in self.down:
                return index
        raise AssertionError("every validator is down")  # pragma: no cover

    def commit(self, events: Sequence[Event] = (), time_ms: int | None = None) -> Execution:
        built = self.build(events, time_ms)
        checked = validate_block(
            self.store,
            self.registry,
            self.net.genesis.hash,
            self.store.head,
            built.block,
            chain_id=self.net.chain_id,
        )
        checked.refused = built.refused
        self.store.commit(checked, encode(self.sign(checked).to_wire()))
        assert checked.next_registry is not None
        self.net.registry = checked.next_registry
        return checked

    def sign(self, execution: Execution, signers: Sequence[int] | None = None) -> CommitCertificate:
        header = execution.header
        keys = [self.node_keys[v.node_key] for v in self.registry.validators]
        chosen = range(len(keys)) if signers is None else signers
        votes = [
            Vote.create(
                keys[i], self.net.chain_id, VoteKind.PRECOMMIT, header.height, 0, header.hash, i
            )
            for i in chosen
        ]
        return CommitCertificate.from_precommits(votes)

    def until(self, height: int) -> None:
        while self.height < height:
            self.commit()

    # -- governance events -------------------------------------------------------------------
    def propose(
        self,
        kind: str,
        subject: str,
        args: Sequence[Any] = (),
        *,
        effective: int | None = None,
        by: str = "BE",
        key: SigningKey | None = None,
    ) -> Event:
        return authoring.propose(
            self.net.chain_id,
            by,
            kind,
            subject,
            args,
            effective if effective is not None else self.height + 10,
            key or self.net.key(by),
            created_ms=self.net.tick(1),
        )

    def vote(
        self,
        proposal: Event | bytes,
        approve: bool = True,
        *,
        by: str = "AE",
        key: SigningKey | None = None,
    ) -> Event:
        pid = proposal.event_id if isinstance(proposal, Event) else proposal
        return authoring.vote(
            self.net.chain_id,
            by,
            pid,
            approve,
            key or self.net.key(by),
            created_ms=self.net.tick(1),
        )

    def ready(self, member: Member, node: SigningKey | None = None) -> Event:
        """`member`'s node attests readiness, naming the head."""
        head = self.store.head
        assert head is not None
        return authoring.ready(
            self.net.chain_id,
            member.code,
            node or member.node,
            head.height,
            head.hash,
            created_ms=self.net.tick(1),
        )

    def add_validator(self, member: Member, address: str = "http://127.0.0.1:7704") -> int:
        """Governance adds `member`'s node, which then attests readiness: the height it signs from."""
        self.enact(gov.ADD_VALIDATOR, member.code, [member.node.public_bytes, address])
        assert member.node.public_bytes in {v.node_key for v in self.registry.pending_validators}
        execution = self.commit([self.ready(member)])
        assert not execution.refused, execution.refused
        assert member.node.public_bytes in {v.node_key for v in self.registry.validators}
        return execution.header.height + 1

    def enact(
        self, kind: str, subject: str, args: Sequence[Any] = (), *, voters: Sequence[str] = ()
    ) -> gov.ProposalRecord:
        """Propose as BE, every other active participant (or `voters`) votes yes; run to its height."""
        proposal = self.propose(kind, subject, args)
        self.commit([proposal])
        voters = voters or [
            code for code, p in self.registry.participants.items() if p.active and code != "BE"
        ]
        self.commit([self.vote(proposal, by=v) for v in voters])
        record = self.store.get_proposal(proposal.event_id)
        assert record is not None and record.status == gov.PASSED, record
        self.until(record.effective_height - 1)
        record = self.store.get_proposal(proposal.event_id)
        assert record is not None and record.status == gov.ENACTED, record
        return record


def admit_args(
    c: Chain,
    m: Member,
    *,
    node: bool = False,
    name: str = "Botswana",
    countries: Sequence[str] | None = None,
    address: str = "http://127.0.0.1:7704",
    code: str | None = None,
) -> list[Any]:
    """The args of `admit` for `m`'s keys, with the proofs of possession their holder makes."""
    return authoring.admission(
        c.net.chain_id,
        code or m.code,
        name,
        list(countries or m.countries),
        m.authority,
        m.encryption,
        m.node if node else None,
        address,
    )


#: The governance tests' network: BE, AE, IN and RU; RU runs no validator, so that suspending it
#: (the tests' usual change) leaves the set as it is. (A suspension that takes validators away
#: has its own tests: the set never shrinks below MIN_VALIDATORS.)
GOV_VALIDATORS = ("BE", "AE", "IN")


def _restrict_args(monitor: SigningKey) -> list[Any]:
    return [["ZONE-A", "ZONE-B"], monitor.public_bytes]


MONITOR = SigningKey.from_seed(_seed("monitor"))


def _double_vote(c: Chain, code: str, height: int | None = None) -> EquivocationEvidence:
    """Two precommits of `code`'s validator for different blocks at one height and round."""
    at = height if height is not None else c.height + 1
    validators = c.registry.validators if height is None else c.store.validators_at(at)
    index = next(i for i, v in enumerate(validators) if v.participant == code)
    key = c.node_keys[validators[index].node_key]
    a, b = (
        Vote.create(key, c.net.chain_id, VoteKind.PRECOMMIT, at, 0, bytes([n]) * 32, index)
        for n in (1, 2)
    )
    return EquivocationEvidence(a, b)


def _report(c: Chain, proof: Any, by: str = "BE") -> Event:
    return authoring.evidence(
        c.net.chain_id, by, c.net.members[by].node, proof, created_ms=c.net.tick(1)
    )


def _rotate(
    c: Chain, by: str, kind: str, new: SigningKey | EncryptionKey | bytes, **kw: Any
) -> Event:
    return authoring.rotate_key(
        c.net.chain_id, by, kind, new, c.net.key(by), created_ms=c.net.tick(), **kw
    )


def _endorse(c: Chain, issuance: authoring.Issuance) -> Event:
    facts = issuance.event.body.facts
    return authoring.endorse(
        c.net.chain_id,
        facts.exporting_participant,
        facts.number,
        issuance.digest,
        MONITOR,
        created_ms=c.net.tick(),
    )


@pytest.fixture
def chain(make_store: Callable[..., Store]) -> Chain:
    net = TestNetwork(validators=GOV_VALIDATORS)
    return Chain(net, make_store(net))


@pytest.fixture
def full_chain(network: TestNetwork, store: Store) -> Chain:
    """Every one of the four participants runs a validator."""
    return Chain(network, store)
