"""Governance on the chain: proposals, votes, thresholds, heights, rotations, restrictions, proofs."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pycountry
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import authoring, errors
from ledger import governance as gov
from ledger.audit import verify_chain, verify_public_chain
from ledger.chain import Execution, build_block, validate_block
from ledger.consensus import (
    CommitCertificate,
    ConflictingProposals,
    EquivocationEvidence,
    Proposal,
    Vote,
    VoteKind,
)
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.events import Event
from ledger.genesis import (
    MAX_GOVERNANCE_EVENT_BYTES,
    PARAMETER_BOUNDS,
    Genesis,
    Parameters,
    Validator,
)
from ledger.keys import EncryptionKey, SigningKey
from ledger.proofs import (
    CertificateProof,
    FinalHeader,
    build_certificate_proof,
    verify_certificate_proof,
)
from ledger.state import IMPORT_CONFIRMED, ISSUED, EventContext, Overlay, Registry, ZoneNotApproved
from ledger.store import Store
from tests.helpers import Member, TestNetwork, public_blocks


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


@pytest.fixture
def chain(make_store: Callable[..., Store]) -> Chain:
    net = TestNetwork(validators=GOV_VALIDATORS)
    return Chain(net, make_store(net))


def _restrict_args(monitor: SigningKey) -> list[Any]:
    return [["ZONE-A", "ZONE-B"], monitor.public_bytes]


MONITOR = SigningKey.from_seed(_seed("monitor"))


# -- every rule, refused with its own error, changing nothing ----------------------------------

#: name -> (network factory kwargs, case). A case prepares the chain and returns the events
#: already in the block being built, and the event the ledger must refuse.
Case = Callable[[Chain], tuple[list[Event], Event]]
CASES: dict[str, tuple[type[LedgerError], dict[str, Any], Case]] = {}


def case(expected: type[LedgerError], **network: Any) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[fn.__name__] = (expected, network, fn)
        return fn

    return register


@case(gov.EffectiveHeightOutOfRange)
def effective_height_too_soon(c: Chain) -> tuple[list[Event], Event]:
    c.until(3)
    return [], c.propose(gov.SUSPEND, "RU", effective=c.height + 2)  # recorded at height + 1


@case(gov.EffectiveHeightOutOfRange)
def effective_height_too_far(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "RU", effective=1 + gov.MAX_LEAD + 1)


@case(gov.ParticipantExists)
def admit_an_existing_participant(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer("AE", ("AE",))
    return [], c.propose(gov.ADMIT, "AE", admit_args(c, m, name="UAE"))


@case(gov.CountryTaken)
def admit_with_a_country_of_another(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m, countries=["BW", "BE"]))


@case(gov.NodeKeyInUse)
def admit_with_a_node_key_in_use(c: Chain) -> tuple[list[Event], Event]:
    ae = c.net.members["AE"]
    m = dataclasses.replace(newcomer(), node=ae.node)
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m, node=True))


@case(errors.UnknownParticipant)
def suspend_a_stranger(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "BW")


@case(gov.AlreadySuspended, suspended=["RU"])
def suspend_the_suspended(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "RU")


@case(gov.NotSuspended)
def reinstate_the_active(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REINSTATE, "AE")


@case(gov.AlreadyValidator)
def add_a_validator_twice(c: Chain) -> tuple[list[Event], Event]:
    ae_node = c.net.members["AE"].node.public_bytes
    return [], c.propose(gov.ADD_VALIDATOR, "AE", [ae_node, "http://127.0.0.1:9"])


@case(gov.NotAValidator)
def remove_a_node_that_is_not_a_validator(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REMOVE_VALIDATOR, "AE", [newcomer().node.public_bytes])


@case(gov.LastValidator, participants=[("BE", ("BE",))])
def remove_the_last_validator(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REMOVE_VALIDATOR, "BE", [c.net.members["BE"].node.public_bytes])


@case(gov.NotRestricted)
def lift_an_unrestricted_participant(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.LIFT, "AE")


@case(gov.UnknownParameter)
def set_an_unknown_parameter(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SET_PARAMETER, "", ["block_reward", 10])


@case(gov.ParameterOutOfRange)
def set_a_threshold_of_everyone(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SET_PARAMETER, "", ["governance_threshold_num", 3])


@case(gov.ParameterOutOfRange)
def set_a_parameter_to_zero(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SET_PARAMETER, "", ["max_validity_days", 0])


#: Values an attacker set on a 5-validator network (issue 22), each accepted then: once in force,
#: each stops the chain or the vote that would undo it (2/4 lets half the members decide).
HALTING_PARAMETERS = (
    ("max_event_bytes", 1),
    ("max_event_bytes", 1000),
    ("max_block_bytes", 1),
    ("max_block_bytes", 60_000),  # below max_event_bytes: the largest event fits no block
    ("max_block_events", 1),
    ("timeout_propose_ms", 10**12),
    ("timeout_vote_ms", 0),
    ("max_validity_days", 10**15),
    ("max_clock_drift_ms", 1),
    ("governance_threshold_den", 4),  # 2/4
    ("governance_threshold_num", 1),  # 1/3
    ("governance_threshold_den", 2),  # 2/2: everyone
)


def _halting_case(name: str, value: int) -> Case:
    def make(c: Chain) -> tuple[list[Event], Event]:
        return [], c.propose(gov.SET_PARAMETER, "", [name, value])

    make.__name__ = f"set_{name}_to_{value}"
    return make


for _name, _value in HALTING_PARAMETERS:
    case(gov.ParameterOutOfRange)(_halting_case(_name, _value))


@case(errors.ParticipantNotActive, suspended=["RU"])
def proposal_by_a_suspended_participant(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "AE", by="RU")


@case(errors.UnknownParticipant)
def proposal_by_a_non_participant(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    return [], c.propose(gov.SUSPEND, "AE", by="BW", key=m.authority)


@case(errors.SignedByAnotherParticipant)
def proposal_signed_with_another_participants_key(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "RU", by="BE", key=c.net.key("AE"))


@case(errors.BadSignature)
def proposal_signed_with_an_unregistered_key(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "RU", by="BE", key=SigningKey.from_seed(_seed("nobody")))


@case(errors.ParticipantNotActive, suspended=["RU"])
def vote_by_a_suspended_participant(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.REINSTATE, "RU")
    c.commit([proposal])
    return [], c.vote(proposal, by="RU")


@case(errors.UnknownParticipant)
def vote_by_a_non_participant(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal])
    return [], c.vote(proposal, by="BW", key=newcomer().authority)


@case(gov.UnknownProposal)
def vote_on_no_proposal(c: Chain) -> tuple[list[Event], Event]:
    return [], c.vote(bytes(32))


@case(gov.AlreadyVoted)
def a_second_different_vote(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal, c.vote(proposal, True, by="AE")])
    return [], c.vote(proposal, False, by="AE")


@case(gov.AlreadyVoted)
def two_votes_in_one_block(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal])
    return [c.vote(proposal, True, by="AE")], c.vote(proposal, False, by="AE")


@case(gov.AlreadyVoted)
def the_proposer_votes_again(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal])
    return [], c.vote(proposal, False, by="BE")


@case(errors.DuplicateEvent)
def a_replayed_vote(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU")
    vote = c.vote(proposal, by="AE")
    c.commit([proposal, vote])
    return [], vote


@case(gov.ProposalExpired)
def a_vote_after_voting_closed(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=5)
    c.commit([proposal])
    c.until(3)  # votes close at 5 - 2 = 3; the next block is 4
    return [], c.vote(proposal, by="AE")


@case(gov.ProposalExpired)
def a_vote_on_an_expired_proposal(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=5)
    c.commit([proposal])
    c.until(6)
    return [], c.vote(proposal, by="AE")


@case(gov.ProposalClosed)
def a_vote_on_a_passed_proposal_after_voting_closed(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=6)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="IN")])
    c.until(4)
    return [], c.vote(proposal, by="RU")


@case(gov.ProposalClosed)
def a_vote_on_an_enacted_proposal(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=5)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="IN")])
    c.until(6)
    return [], c.vote(proposal, by="IN")


@case(gov.KeyUnchanged)
def rotate_to_the_same_key(c: Chain) -> tuple[list[Event], Event]:
    key = c.net.key("BE")
    return [], authoring.rotate_key(
        c.net.chain_id, "BE", gov.AUTHORITY, key, key, created_ms=c.net.tick()
    )


@case(gov.RotationPending)
def rotate_twice_in_one_block(c: Chain) -> tuple[list[Event], Event]:
    key = c.net.key("BE")
    first, second = SigningKey.from_seed(_seed("a")), SigningKey.from_seed(_seed("b"))
    rotate = [
        authoring.rotate_key(c.net.chain_id, "BE", gov.AUTHORITY, k, key, created_ms=c.net.tick())
        for k in (first, second)
    ]
    return [rotate[0]], rotate[1]


@case(errors.BadSignature)
def signed_with_a_rotated_key(c: Chain) -> tuple[list[Event], Event]:
    old, new = c.net.key("BE"), SigningKey.from_seed(_seed("new-be"))
    c.commit(
        [
            authoring.rotate_key(
                c.net.chain_id, "BE", gov.AUTHORITY, new, old, created_ms=c.net.tick()
            )
        ]
    )
    return [], c.net.issue(exporting="BE", importing="AE", key=old).event


# -- one key, one role of one participant; proof of possession of every new key -------------


def _rotate(
    c: Chain, by: str, kind: str, new: SigningKey | EncryptionKey | bytes, **kw: Any
) -> Event:
    return authoring.rotate_key(
        c.net.chain_id, by, kind, new, c.net.key(by), created_ms=c.net.tick(), **kw
    )


@case(gov.KeyInUse)
def rotate_to_another_participants_authority_key(c: Chain) -> tuple[list[Event], Event]:
    """IN takes RU's key, RU colluding (it signs the proof): RU's key would vote twice."""
    return [], _rotate(c, "IN", gov.AUTHORITY, c.net.key("RU"))


@case(gov.KeyInUse)
def rotate_to_another_participants_encryption_key(c: Chain) -> tuple[list[Event], Event]:
    return [], _rotate(c, "IN", gov.ENCRYPTION, c.net.members["RU"].encryption)


@case(gov.KeyInUse)
def rotate_the_authority_key_to_a_node_key(c: Chain) -> tuple[list[Event], Event]:
    return [], _rotate(c, "IN", gov.AUTHORITY, c.net.members["IN"].node)


@case(gov.KeyInUse)
def two_participants_rotate_to_one_key_in_a_block(c: Chain) -> tuple[list[Event], Event]:
    shared = SigningKey.from_seed(_seed("shared"))
    return [_rotate(c, "IN", gov.AUTHORITY, shared)], _rotate(c, "RU", gov.AUTHORITY, shared)


@case(gov.BadKeyProof)
def rotate_without_possession_of_the_new_key(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = c.net.key("IN").prove_possession(c.net.chain_id, "IN", gov.AUTHORITY)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(gov.BadKeyProof)
def rotate_with_a_proof_made_for_another_participant(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = new.prove_possession(c.net.chain_id, "RU", gov.AUTHORITY)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(gov.BadKeyProof)
def rotate_with_a_proof_made_for_another_chain(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = new.prove_possession("another-chain", "IN", gov.AUTHORITY)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(gov.BadKeyProof)
def rotate_with_a_proof_made_for_another_role(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = new.prove_possession(c.net.chain_id, "IN", gov.NODE)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(gov.BadKeyProof)
def rotate_an_encryption_key_without_possession(c: Chain) -> tuple[list[Event], Event]:
    new = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("in-enc-new")))
    other = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("in-enc-other")))
    proof = other.prove_possession(c.net.chain_id, "IN")
    return [], _rotate(c, "IN", gov.ENCRYPTION, new.public_bytes, proof=proof)


@case(gov.KeyInUse)
def admit_with_another_participants_keys(c: Chain) -> tuple[list[Event], Event]:
    """A newcomer with BE's authority and encryption keys (BE colluding: it signs the proofs)."""
    be = c.net.members["BE"]
    m = dataclasses.replace(newcomer(), authority=be.authority, encryption=be.encryption)
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m), by="AE")


@case(gov.KeyInUse)
def admit_with_one_key_for_two_roles(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    m = dataclasses.replace(m, node=m.authority)
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m, node=True))


@case(gov.BadKeyProof)
def admit_without_possession_of_the_encryption_key(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    args = admit_args(c, m)
    args[7] = newcomer("ZA").encryption.prove_possession(c.net.chain_id, "BW")
    return [], c.propose(gov.ADMIT, "BW", args)


@case(gov.BadKeyProof)
def admit_without_possession_of_the_node_key(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    args = admit_args(c, m, node=True)
    args[8] = m.authority.prove_possession(c.net.chain_id, "BW", gov.NODE)
    return [], c.propose(gov.ADMIT, "BW", args)


@case(gov.KeyInUse)
def replace_a_key_with_another_participants(c: Chain) -> tuple[list[Event], Event]:
    ru = c.net.key("RU")
    args = [gov.AUTHORITY, ru.public_bytes, ru.prove_possession(c.net.chain_id, "IN", "authority")]
    return [], c.propose(gov.REPLACE_KEY, "IN", args)


@case(gov.BadKeyProof)
def replace_a_key_without_possession(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-replaced"))
    args = [gov.AUTHORITY, new.public_bytes, bytes(64)]
    return [], c.propose(gov.REPLACE_KEY, "IN", args)


@case(gov.KeyUnchanged)
def replace_a_key_with_itself(c: Chain) -> tuple[list[Event], Event]:
    key = c.net.key("IN")
    args = [
        gov.AUTHORITY,
        key.public_bytes,
        key.prove_possession(c.net.chain_id, "IN", "authority"),
    ]
    return [], c.propose(gov.REPLACE_KEY, "IN", args)


@case(gov.KeyInUse)
def add_a_validator_whose_node_key_is_an_authority_key(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.ADD_VALIDATOR, "IN", [c.net.key("RU").public_bytes, "http://x:1"])


@case(gov.KeyInUse)
def restrict_under_another_participants_authority_key(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.RESTRICT, "IN", [["ZONE-A"], c.net.key("IN").public_bytes])


# -- validator changes that keep the set live ------------------------------------------------


@case(gov.TooFewValidators, validators=None)
def remove_a_validator_of_four(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])


@case(gov.TooFewValidators, validators=None)
def suspend_a_validator_of_four(c: Chain) -> tuple[list[Event], Event]:
    """The suspension would take RU's validator out of the set with it."""
    return [], c.propose(gov.SUSPEND, "RU")


def _pending_bw(c: Chain) -> Member:
    bw = newcomer()
    c.add_member(bw)
    c.enact(gov.ADMIT, "BW", admit_args(c, bw, node=True))
    c.enact(gov.ADD_VALIDATOR, "BW", [bw.node.public_bytes, "http://127.0.0.1:7704"])
    return bw


@case(gov.NotPendingValidator)
def ready_for_a_node_governance_did_not_add(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    return [], c.ready(c.net.members["RU"])


@case(gov.AlreadyValidator)
def ready_for_a_validator_in_the_set(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    return [], c.ready(c.net.members["IN"])


@case(gov.StaleReadiness)
def ready_naming_a_block_of_another_chain(c: Chain) -> tuple[list[Event], Event]:
    bw = _pending_bw(c)
    head = c.store.head
    assert head is not None
    event = authoring.ready(
        c.net.chain_id, "BW", bw.node, head.height, bytes(32), created_ms=c.net.tick()
    )
    return [], event


@case(gov.StaleReadiness)
def ready_naming_an_old_block(c: Chain) -> tuple[list[Event], Event]:
    bw = _pending_bw(c)
    c.until(gov.READY_MAX_AGE + 5)
    old = c.store.header(2)
    assert old is not None
    return [], authoring.ready(c.net.chain_id, "BW", bw.node, 2, old.hash, created_ms=1)


@case(errors.SignedWithNodeKey)
def ready_signed_by_another_key(c: Chain) -> tuple[list[Event], Event]:
    bw = _pending_bw(c)
    event = c.ready(bw, node=c.net.members["AE"].node)
    forged = dataclasses.replace(event.body, node_key=bw.node.public_bytes)
    from ledger.events import sign_event

    return [], sign_event(c.net.chain_id, "node/BW", forged, c.net.members["AE"].node, 1)


@case(errors.SignerNotAllowed)
def ready_signed_as_an_authority(c: Chain) -> tuple[list[Event], Event]:
    from ledger.events import sign_event

    bw = _pending_bw(c)
    body = c.ready(bw).body
    return [], sign_event(c.net.chain_id, "BW", body, bw.authority, 1)


@case(errors.SignerNotAllowed)
def a_node_key_signs_something_else(c: Chain) -> tuple[list[Event], Event]:
    from ledger.events import sign_event

    return [], sign_event(
        c.net.chain_id, "node/BE", gov.VoteBody(bytes(32), True), c.net.members["BE"].node, 1
    )


@case(gov.AlreadyValidator)
def ready_twice_in_a_block(c: Chain) -> tuple[list[Event], Event]:
    bw = _pending_bw(c)
    return [c.ready(bw)], c.ready(bw)


# -- equivocation evidence on the chain -------------------------------------------------------


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


@case(gov.InvalidEvidence)
def evidence_of_two_votes_for_one_value(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    proof = _double_vote(c, "IN")
    return [], _report(c, EquivocationEvidence(proof.vote_a, proof.vote_a))


@case(gov.InvalidEvidence)
def evidence_signed_by_someone_else(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    proof = _double_vote(c, "IN")
    forged = dataclasses.replace(proof.vote_b, validator=proof.vote_a.validator - 1)
    return [], _report(
        c,
        EquivocationEvidence(dataclasses.replace(proof.vote_a, validator=forged.validator), forged),
    )


@case(gov.InvalidEvidence)
def evidence_of_a_future_height(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    proof = _double_vote(c, "IN")
    later = [dataclasses.replace(v, height=c.height + 5) for v in (proof.vote_a, proof.vote_b)]
    return [], _report(c, EquivocationEvidence(*later))


@case(gov.EvidenceNotNeeded)
def evidence_twice_in_a_block(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    proof = _double_vote(c, "IN")
    return [_report(c, proof)], _report(c, proof, by="AE")


@case(errors.SignerNotAllowed)
def evidence_signed_with_another_participants_node_key(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    body = gov.EvidenceBody(c.net.members["AE"].node.public_bytes, _double_vote(c, "IN"))
    from ledger.events import sign_event

    return [], sign_event(c.net.chain_id, "node/BE", body, c.net.members["AE"].node, 1)


@case(ZoneNotApproved)
def restricted_issue_without_a_zone(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    return [], c.net.issue(exporting="IN", importing="BE").event


@case(gov.EndorsementRequired)
def confirm_before_the_endorsement(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event])
    return [], c.net.confirm(issuance)


@case(gov.AlreadyEndorsed)
def endorse_twice(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event, _endorse(c, issuance)])
    return [], _endorse(c, issuance)


@case(gov.EndorsementNotNeeded)
def endorse_a_certificate_issued_before_the_restriction(c: Chain) -> tuple[list[Event], Event]:
    issuance = c.net.issue(exporting="IN", importing="BE")
    c.commit([issuance.event])
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    return [], _endorse(c, issuance)


@case(errors.SignerNotAllowed)
def endorse_by_an_unrestricted_participants_monitor(c: Chain) -> tuple[list[Event], Event]:
    issuance = c.net.issue(exporting="IN", importing="BE")
    c.commit([issuance.event])
    return [], _endorse(c, issuance)


@case(errors.SignerNotAllowed)
def endorse_by_another_participants_monitor(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    ru_monitor = SigningKey.from_seed(_seed("monitor", "RU"))
    c.enact(gov.RESTRICT, "RU", _restrict_args(ru_monitor), voters=("AE", "IN"))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event])
    event = authoring.endorse(
        c.net.chain_id,
        "RU",
        issuance.event.number,
        issuance.digest,
        ru_monitor,
        created_ms=c.net.tick(),
    )
    return [], event


@case(errors.SignerNotAllowed)
def a_monitor_signs_something_else(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    issuance = c.net.issue(exporting="BE", importing="IN")
    c.commit([issuance.event])
    from ledger.events import ConfirmImportBody, sign_event

    body = ConfirmImportBody(issuance.event.number, issuance.digest)
    return [], sign_event(c.net.chain_id, "monitor/IN", body, MONITOR, c.net.tick())


@case(errors.ParticipantNotActive)
def a_suspended_participant_issues(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.SUSPEND, "RU")
    return [], c.net.issue(exporting="RU", importing="BE").event


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


def _overlay_state(overlay: Overlay) -> tuple[Any, ...]:
    return (
        dict(overlay.certificates),
        dict(overlay.events),
        list(overlay.order),
        dict(overlay.proposals),
        dict(overlay.rotations),
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rule_is_refused_with_its_own_error_and_changes_nothing(
    name: str, make_store: Callable[..., Store]
) -> None:
    expected, network_kwargs, make = CASES[name]
    net = TestNetwork(**{"validators": GOV_VALIDATORS, **network_kwargs})
    c = Chain(net, make_store(net))
    prelude, bad = make(c)
    time_ms = net.tick()
    ctx = EventContext(c.height + 1, time_ms, net.chain_id)
    before = dict(c.store.kv.items())

    overlay = Overlay(c.store)
    for event in prelude:
        overlay.apply(c.registry, event, ctx)
    state = _overlay_state(overlay)
    with pytest.raises(LedgerError) as caught:
        overlay.apply(c.registry, bad, ctx)
    assert type(caught.value) is expected, caught.value
    assert caught.value.message
    assert _overlay_state(overlay) == state

    # A proposer drops it; the block (header, register, proposals) is as if it never came.
    with_bad = c.build([*prelude, bad], time_ms)
    without = c.build(prelude, time_ms)
    assert [(e.event_id, type(x)) for e, x in with_bad.refused] == [(bad.event_id, expected)]
    assert with_bad.header == without.header
    assert with_bad.proposals == without.proposals
    assert with_bad.next_registry == without.next_registry
    assert dict(c.store.kv.items()) == before


def test_every_governance_error_has_its_own_code() -> None:
    codes = [k.code for k in gov.GOVERNANCE_ERRORS]
    codes += [
        obj.code
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, LedgerError)
    ]
    codes += ["digest_mismatch", "missing_recipient", "zone_not_approved", "wrong_chain"]
    assert len(codes) == len(set(codes)), sorted(codes)


# -- thresholds ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    yes=st.integers(0, 80),
    active=st.integers(1, 80),
    num=st.integers(1, 20),
    den=st.integers(1, 20),
)
def test_passing_is_more_than_the_threshold_share_of_active_participants(
    yes: int, active: int, num: int, den: int
) -> None:
    parameters = Parameters(governance_threshold_num=num, governance_threshold_den=den)
    assert gov.passes(yes, active, parameters) == (Fraction(yes, active) > Fraction(num, den))


@pytest.mark.parametrize(
    ("participants", "num", "den", "needed"),
    [(4, 2, 3, 3), (6, 2, 3, 5), (4, 3, 4, 4), (3, 3, 5, 2), (5, 2, 3, 4)],
)
def test_the_threshold_boundary_on_the_chain(
    participants: int, num: int, den: int, needed: int, make_store: Callable[..., Store]
) -> None:
    codes = ["BE", "AE", "IN", "RU", "CA", "ZA"][:participants]
    net = TestNetwork(
        [(code, (code,)) for code in codes],
        validators=codes[:-1],
        parameters=Parameters(governance_threshold_num=num, governance_threshold_den=den),
    )
    c = Chain(net, make_store(net))
    target = codes[-1]
    proposal = c.propose(gov.SUSPEND, target, effective=8)
    c.commit([proposal])
    voters = codes[1 : needed - 1]  # the proposer's yes plus these: one short
    c.commit([c.vote(proposal, by=v) for v in voters])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.yes == needed - 1 and record.status == gov.OPEN
    # One more yes (from the target itself, still active) reaches it exactly.
    c.commit([c.vote(proposal, by=codes[needed - 1] if needed - 1 < participants else target)])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.yes == needed and record.status == gov.PASSED
    c.until(7)
    assert not c.registry.participants[target].active
    assert c.store.get_proposal(proposal.event_id).status == gov.ENACTED  # type: ignore[union-attr]


def test_a_proposal_short_of_its_threshold_never_takes_effect(chain: Chain) -> None:
    c = chain
    proposal = c.propose(gov.SUSPEND, "RU", effective=7)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, False, by="IN")])
    c.commit([c.vote(proposal, False, by="RU")])
    before = c.registry.participants
    c.until(12)
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.EXPIRED
    assert (record.yes, record.no) == (2, 2)
    assert record.closed_height == 5  # voting closed with block 7 - 2
    assert c.registry.participants == before and not c.registry.proposals


def test_a_replayed_vote_counts_once(chain: Chain) -> None:
    c = chain
    proposal = c.propose(gov.SUSPEND, "RU", effective=12)
    c.commit([proposal])
    vote = c.vote(proposal, by="AE")
    first = c.commit([vote, vote])
    assert [type(x) for _, x in first.refused] == [errors.DuplicateEvent]
    again = c.commit([vote])
    assert [type(x) for _, x in again.refused] == [errors.DuplicateEvent]
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.yes == 2 and record.status == gov.OPEN


def test_expiry_votes_count_until_effective_height_minus_two(chain: Chain) -> None:
    c = chain
    proposal = c.propose(gov.SUSPEND, "RU", effective=6)
    c.commit([proposal])  # height 1
    c.until(3)
    last = c.commit([c.vote(proposal, by="AE")])  # height 4 = 6 - 2: the last that counts
    assert not last.refused
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.EXPIRED and record.yes == 2
    assert c.store.scheduled() == []
    late = c.commit([c.vote(proposal, by="IN")])
    assert [type(x) for _, x in late.refused] == [gov.ProposalExpired]


def test_a_passed_change_takes_effect_exactly_at_its_height(chain: Chain) -> None:
    c = chain
    proposal = c.propose(gov.SUSPEND, "RU", effective=6)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="IN")])  # 1: passed
    assert c.store.scheduled() == [(6, proposal.event_id)]
    c.until(4)
    assert c.registry.participants["RU"].active
    before = c.commit()  # block 5 computes the register of height 6
    assert before.register_changes[0].kind == gov.SUSPEND
    assert not c.registry.participants["RU"].active
    assert c.store.register_history() == [(6, before.register_changes)]
    refused = c.commit([c.net.issue(exporting="RU", importing="BE").event])
    assert [type(x) for _, x in refused.refused] == [errors.ParticipantNotActive]


def test_a_change_that_no_longer_applies_fails_and_changes_nothing(chain: Chain) -> None:
    c = chain
    m = newcomer()
    args = admit_args(c, m)
    first = c.propose(gov.ADMIT, "BW", args, effective=8)
    c.commit([first])
    second = c.propose(gov.ADMIT, "BW", args, effective=8, by="AE")
    c.commit([second])
    c.commit([c.vote(first, by="AE"), c.vote(first, by="IN")])
    c.commit([c.vote(second, by="BE"), c.vote(second, by="IN")])
    c.until(7)
    records = {r.proposal_id: r for r in c.store.proposals()}
    assert records[first.event_id].status == gov.ENACTED
    assert records[second.event_id].status == gov.FAILED
    assert records[second.event_id].note.startswith("participant_exists")
    assert "BW" in c.registry.participants


def test_parameters_are_checked_again_when_they_take_effect(chain: Chain) -> None:
    """Two changes each within bounds on today's register, that together would put a block limit
    below the event limit: the second to take effect fails and changes nothing."""
    c = chain
    smaller_blocks = c.propose(gov.SET_PARAMETER, "", ["max_block_bytes", 64 * 1024], effective=8)
    larger_events = c.propose(
        gov.SET_PARAMETER, "", ["max_event_bytes", 128 * 1024], effective=8, by="AE"
    )
    c.commit([smaller_blocks, larger_events])
    c.commit(
        [
            c.vote(smaller_blocks, by="AE"),
            c.vote(smaller_blocks, by="IN"),
            c.vote(larger_events, by="BE"),
            c.vote(larger_events, by="IN"),
        ]
    )
    c.until(7)
    records = {r.proposal_id: r for r in c.store.proposals()}
    assert records[smaller_blocks.event_id].status == gov.ENACTED
    failed = records[larger_events.event_id]
    assert failed.status == gov.FAILED and failed.note.startswith("parameter_out_of_range")
    assert c.registry.parameters.max_block_bytes == 64 * 1024
    assert c.registry.parameters.max_event_bytes == Parameters().max_event_bytes
    assert c.registry.parameters.violation() is None


def test_a_change_at_the_edge_of_its_range_takes_effect(chain: Chain) -> None:
    bound = PARAMETER_BOUNDS["max_event_bytes"]
    chain.enact(gov.SET_PARAMETER, "", ["max_event_bytes", bound.low])
    assert chain.registry.parameters.max_event_bytes == MAX_GOVERNANCE_EVENT_BYTES == bound.low


def test_genesis_with_parameters_out_of_range_is_refused() -> None:
    with pytest.raises(errors.MalformedInput, match="max_event_bytes"):
        TestNetwork(parameters=Parameters(max_event_bytes=1))
    raw = TestNetwork().genesis.to_json()
    raw["parameters"]["governance_threshold_num"] = 1
    with pytest.raises(errors.MalformedInput, match="threshold"):
        Genesis.from_json(raw)


def test_every_parameter_has_a_bound_and_the_defaults_are_within_them() -> None:
    assert set(PARAMETER_BOUNDS) == set(Parameters.__dataclass_fields__)
    assert Parameters().violation() is None


def test_the_parameter_table_of_the_docs_is_the_one_enforced() -> None:
    text = (Path(__file__).parents[2] / "docs" / "governance.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| (\d+)(?: \([^)]*\))? to (\d+)", text, re.M)
    documented = {name: (int(default), int(low), int(high)) for name, default, low, high in rows}
    defaults = Parameters()
    assert documented == {
        name: (getattr(defaults, name), bound.low, bound.high)
        for name, bound in PARAMETER_BOUNDS.items()
    }


def test_the_largest_governance_event_fits_the_smallest_event_limit(chain: Chain) -> None:
    """Every field at its limit, in four-byte characters: the undoing vote always fits."""
    wide = "\U0001d538"
    m = newcomer()
    countries = sorted(c.alpha_2 for c in pycountry.countries)[:60]
    chain_id = "k" * 64
    largest = [
        authoring.propose(
            chain_id,
            "EU",
            gov.ADMIT,
            "EU",
            authoring.admission(
                chain_id,
                "EU",
                wide * gov.MAX_NAME,
                countries,
                m.authority,
                m.encryption,
                m.node,
                "https://" + wide * (gov.MAX_ADDRESS - 8),
            ),
            2**62,
            m.authority,
            created_ms=2**62,
        ),
        authoring.propose(
            chain_id,
            "EU",
            gov.RESTRICT,
            "EU",
            [[f"{i:02d}" + wide * 62 for i in range(gov.MAX_ZONES)], m.authority.public_bytes],
            2**62,
            m.authority,
            created_ms=2**62,
        ),
    ]
    for event in largest:
        assert len(event.encoded) <= MAX_GOVERNANCE_EVENT_BYTES, (event.type, len(event.encoded))


# -- admission, suspension, validators ---------------------------------------------------------


def test_an_admitted_participant_trades_from_its_effective_height(chain: Chain) -> None:
    c = chain
    bw = newcomer()
    c.add_member(bw)
    args = admit_args(c, bw, node=True, address="http://127.0.0.1:7704")
    proposal = c.propose(gov.ADMIT, "BW", args, effective=5)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="RU")])
    early = c.commit([c.vote(proposal, by="BW", key=bw.authority)])
    assert [type(x) for _, x in early.refused] == [errors.UnknownParticipant]
    c.until(4)
    participant = c.registry.participant("BW")
    assert participant.node_key == bw.node.public_bytes and participant.active
    assert c.registry.active_count == 5
    issuance = c.net.issue(exporting="BW", importing="BE")
    c.commit([issuance.event])
    c.commit([c.net.confirm(issuance)])
    record = c.store.get_certificate(issuance.event.number)
    assert record is not None and record.status == IMPORT_CONFIRMED


def test_suspension_stops_new_trade_and_keeps_history_and_reinstatement_restores(
    chain: Chain,
) -> None:
    c = chain
    before = c.net.issue(exporting="RU", importing="BE")
    c.commit([before.event])
    c.enact(gov.SUSPEND, "RU")
    refused = c.commit([c.net.issue(exporting="RU", importing="BE").event])
    assert [type(x) for _, x in refused.refused] == [errors.ParticipantNotActive]
    record = c.store.get_certificate(before.event.number)
    assert record is not None and record.status == ISSUED
    c.commit([c.net.confirm(before)])  # the importer still closes the old loop
    # With RU suspended, three participants vote: 2/3 needs all three.
    proposal = c.propose(gov.REINSTATE, "RU")
    c.commit([proposal, c.vote(proposal, by="AE")])
    assert c.store.get_proposal(proposal.event_id).status == gov.OPEN  # type: ignore[union-attr]
    c.commit([c.vote(proposal, by="IN")])
    c.until(c.store.get_proposal(proposal.event_id).effective_height - 1)  # type: ignore[union-attr]
    assert c.registry.participants["RU"].active
    assert not c.commit([c.net.issue(exporting="RU", importing="BE").event]).refused


@pytest.fixture
def full_chain(network: TestNetwork, store: Store) -> Chain:
    """Every one of the four participants runs a validator."""
    return Chain(network, store)


def test_validator_changes_follow_the_register_and_headers_name_the_next_set(
    full_chain: Chain,
) -> None:
    c = full_chain
    bw = newcomer()
    c.add_member(bw)
    admit = admit_args(c, bw, node=True, address="http://127.0.0.1:7704")
    c.enact(gov.ADMIT, "BW", admit)
    change_height = c.add_validator(bw)
    header = c.store.header(change_height - 1)
    assert header is not None and header.validators_hash != header.next_validators_hash
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "RU", "BW"]
    assert c.store.validator_sets() == [(change_height, c.registry.validators)]
    # Block signed by the four old validators only is not enough for five.
    execution = c.build([])
    with pytest.raises(errors.InvalidCommitCertificate):
        c.sign(execution, signers=[0, 1]).verify(
            c.net.chain_id, [v.node_key for v in c.registry.validators]
        )
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "BW"]
    assert len(c.store.validator_sets()) == 2
    # A light client (the public audit) follows both changes from genesis, and only those.
    c.commit([])
    blocks, sets = public_blocks(c.store), dict(c.store.validator_sets())
    report = verify_public_chain(c.net.genesis, blocks, sets, c.height)
    assert report.ok and report.height_checked == c.height, report.fault
    forged = dict(sets)
    forged[change_height] = (*c.net.genesis.validators, Validator("XX", bytes(32), ""))
    report = verify_public_chain(c.net.genesis, blocks, forged, c.height)
    assert not report.ok and report.height_checked == change_height - 1
    assert f"header {change_height - 1} names next" in (report.fault or "")
    assert not verify_public_chain(c.net.genesis, blocks, {}, c.height).ok


def _network_of(codes: Sequence[str], make_store: Callable[..., Store]) -> Chain:
    net = TestNetwork([(code, (code,)) for code in codes])
    return Chain(net, make_store(net))


def test_a_validator_added_while_its_node_is_down_never_halts_the_chain(
    make_store: Callable[..., Store],
) -> None:
    """Issue 22: five validators, RU stopped, a sixth added whose node never started. Six would
    need five signatures with four live. Now the sixth waits, pending, and the set stays five."""
    c = _network_of(["BE", "AE", "IN", "RU", "CA"], make_store)
    c.down = {"RU"}
    bw = newcomer()
    c.add_member(bw)
    c.enact(gov.ADMIT, "BW", admit_args(c, bw, node=True))
    c.enact(gov.ADD_VALIDATOR, "BW", [bw.node.public_bytes, "http://127.0.0.1:7704"])
    assert len(c.registry.validators) == 5
    assert [v.participant for v in c.registry.pending_validators] == ["BW"]
    # The four live validators still finalise: a commit of four of five.
    execution = c.commit([c.net.issue(exporting="BE", importing="AE").event])
    live = [i for i, v in enumerate(c.registry.validators) if v.participant != "RU"]
    c.sign(execution, signers=live).verify(
        c.net.chain_id, [v.node_key for v in c.registry.validators]
    )
    # With IN down too, BW's readiness would make six with four live: it waits.
    c.down = {"RU", "IN"}
    c.until(c.height + 12)
    refused = c.commit([c.ready(bw)]).refused
    assert [type(x) for _, x in refused] == [gov.ValidatorsNotLive], refused
    assert len(c.registry.validators) == 5
    # IN back: four live of five, and BW's node: five of six. It enters the set.
    c.down = {"RU"}
    c.until(c.height + 12)
    entered = c.commit([c.ready(bw)])
    assert not entered.refused
    assert [v.participant for v in c.registry.validators][-1] == "BW"
    assert entered.register_changes[0].kind == "validator_ready"
    assert entered.header.next_validators_hash != entered.header.validators_hash
    assert not c.registry.pending_validators
    report = verify_chain(c.store, c.net.genesis)
    assert report.ok, report.fault


def test_no_removal_leaves_fewer_live_validators_than_a_quorum(
    make_store: Callable[..., Store],
) -> None:
    c = _network_of(["BE", "AE", "IN", "RU", "CA", "ZA", "NA"], make_store)
    c.down = {"RU", "CA"}  # five live of seven: quorum(7) = 5
    c.until(20)
    refused = c.commit(
        [c.propose(gov.REMOVE_VALIDATOR, "BE", [c.net.members["BE"].node.public_bytes])]
    )
    assert [type(x) for _, x in refused.refused] == [gov.ValidatorsNotLive]
    # Removing a validator that is down leaves five live of six: allowed.
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    assert "RU" not in [v.participant for v in c.registry.validators]


def test_a_removal_checked_again_when_it_takes_effect(make_store: Callable[..., Store]) -> None:
    """Proposed while all were live; by its height two validators are down: it fails."""
    c = _network_of(["BE", "AE", "IN", "RU", "CA", "ZA", "NA"], make_store)
    proposal = c.propose(
        gov.REMOVE_VALIDATOR, "BE", [c.net.members["BE"].node.public_bytes], effective=40
    )
    c.commit([proposal])
    c.commit([c.vote(proposal, by=v) for v in ("AE", "IN", "RU", "CA", "ZA")])
    c.down = {"RU", "CA"}
    c.until(39)
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.FAILED
    assert record.note.startswith("validators_not_live"), record.note
    assert len(c.registry.validators) == 7


def test_suspension_takes_the_validators_out_and_reinstatement_brings_them_back(
    make_store: Callable[..., Store],
) -> None:
    c = _network_of(["BE", "AE", "IN", "RU", "CA"], make_store)
    ca = c.net.members["CA"]
    c.enact(gov.SUSPEND, "CA")
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "RU"]
    assert [v.participant for v in c.registry.pending_validators] == ["CA"]
    wire = c.registry.to_wire()
    assert len(wire) == 6 and Registry.from_wire(decode(encode(wire))) == c.registry
    assert c.store.registry() == c.registry  # stored and reloaded, pending ones included
    c.down = {"CA"}
    c.commit()
    # Its node cannot bring it back while it is suspended.
    refused = c.commit([c.ready(ca)]).refused
    assert [type(x) for _, x in refused] == [errors.ParticipantNotActive]
    c.enact(gov.REINSTATE, "CA", voters=["AE", "IN", "RU"])
    assert len(c.registry.validators) == 4  # back once its node attests readiness
    c.down = set()
    assert not c.commit([c.ready(ca)]).refused
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "RU", "CA"]
    assert verify_chain(c.store, c.net.genesis).ok


def test_equivocation_evidence_removes_the_offender_from_the_next_height(
    make_store: Callable[..., Store],
) -> None:
    """Issue 22: evidence was stored and never used. Now it is an event every node checks; the
    offender leaves the set from the block after the one that records it."""
    c = _network_of(["BE", "AE", "IN", "RU", "CA"], make_store)
    c.until(3)
    recorded = c.commit([_report(c, _double_vote(c, "IN"))])
    assert [ch.kind for ch in recorded.register_changes] == ["evidence"]
    assert recorded.register_changes[0].subject == "IN"
    assert "IN" not in [v.participant for v in c.registry.validators]
    assert c.registry.participants["IN"].active  # the validator is jailed, not the participant
    assert recorded.header.next_validators_hash != recorded.header.validators_hash
    # Evidence of a past height is judged against the set of that height; RU's double
    # proposal at height 2 removes it too.
    validators = c.store.validators_at(2)
    index = next(i for i, v in enumerate(validators) if v.participant == "RU")
    key = c.net.members["RU"].node
    proposals = [
        Proposal.create(key, c.net.chain_id, 2, (index - 2) % 5, bytes([n]) * 32, -1, index)
        for n in (3, 4)
    ]
    second = c.commit([_report(c, ConflictingProposals(*proposals), by="AE")])
    assert not second.refused, second.refused
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "CA"]
    # The chain re-verified from genesis (the audit) reaches the same register.
    report = verify_chain(c.store, c.net.genesis)
    assert report.ok, report.fault
    again = c.commit([_report(c, _double_vote(c, "IN", height=3), by="CA")]).refused
    assert [type(x) for _, x in again] == [gov.EvidenceNotNeeded]


SEVEN = ["BE", "AE", "IN", "RU", "CA", "ZA", "NA"]


def _seven(make_store: Callable[..., Store]) -> Chain:
    net = TestNetwork([(code, (code,)) for code in SEVEN], validators=SEVEN[:4])
    return Chain(net, make_store(net))


def test_dormant_members_do_not_block_a_proposal(make_store: Callable[..., Store]) -> None:
    """Issue 22: the threshold counted every registered member; with some that never sign,
    nothing could pass. CA, ZA and NA signed nothing for 200 days: 4 yes of the 4 awake pass
    (without the rule 5 of 7 were needed)."""
    c = _seven(make_store)
    c.commit()  # block 1: every member enters
    c.net.now_ms += 200 * gov.DAY_MS
    proposal = c.propose(gov.REPLACE_KEY, "IN", _replacement(c, "IN"))
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="RU")])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.OPEN and record.yes == 3
    c.commit([c.vote(proposal, by="IN")])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.PASSED and record.yes == 4
    assert verify_chain(c.store, c.net.genesis).ok


def test_the_electorate_never_falls_below_two_thirds_and_a_member_returns_by_signing(
    make_store: Callable[..., Store],
) -> None:
    c = _seven(make_store)
    c.commit()
    c.net.now_ms += 200 * gov.DAY_MS
    # Only BE and AE are awake: the electorate is still 5 of 7 (2/3, rounded up): 4 yes needed.
    proposal = c.propose(gov.REPLACE_KEY, "IN", _replacement(c, "IN"))
    c.commit([proposal, c.vote(proposal, by="AE")])
    c.commit([c.vote(proposal, by="RU")])  # RU returns by voting: 3 yes of 5, not enough
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.OPEN and record.yes == 3
    c.commit([c.vote(proposal, by="CA")])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.PASSED and record.yes == 4


def test_suspending_opponents_one_by_one_gets_no_easier(make_store: Callable[..., Store]) -> None:
    """Issue 22: suspension shrank the count, each step easier than the last. With CA and ZA
    suspended, suspending NA still needs 5 yes (of 7), not 4 (of the 5 active)."""
    c = _seven(make_store)
    c.enact(gov.SUSPEND, "CA", voters=["AE", "IN", "RU", "ZA"])
    c.enact(gov.SUSPEND, "ZA", voters=["AE", "IN", "RU", "NA"])
    proposal = c.propose(gov.SUSPEND, "NA")
    c.commit([proposal, *(c.vote(proposal, by=v) for v in ("AE", "IN", "RU"))])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.yes == 4 and record.status == gov.OPEN
    # Other changes count the five active members: 4 yes pass a reinstatement.
    back = c.propose(gov.REINSTATE, "CA")
    c.commit([back, *(c.vote(back, by=v) for v in ("AE", "IN", "RU"))])
    assert c.store.get_proposal(back.event_id).status == gov.PASSED  # type: ignore[union-attr]


def test_older_chains_keep_counting_every_active_member() -> None:
    raw = TestNetwork().genesis.to_json()
    del raw["parameters"]["governance_dormant_days"]
    assert Genesis.from_json(raw).parameters.governance_dormant_days == 0
    with pytest.raises(errors.MalformedInput, match="governance_dormant_days"):
        TestNetwork(parameters=Parameters(governance_dormant_days=7))


def _replacement(c: Chain, code: str) -> list[Any]:
    new = SigningKey.from_seed(_seed("replacement", code))
    return [
        gov.AUTHORITY,
        new.public_bytes,
        new.prove_possession(c.net.chain_id, code, "authority"),
    ]


def test_the_register_is_stored_and_reloaded(chain: Chain, tmp_path: Path) -> None:
    c = chain
    c.enact(gov.SET_PARAMETER, "", ["max_validity_days", 90])
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal])
    assert c.registry.parameters.max_validity_days == 90
    c.store.close()
    reopened = Store(c.store.path, c.net.genesis)
    try:
        assert reopened.registry() == c.registry
        assert reopened.registry().hash == reopened.head.registry_hash  # type: ignore[union-attr]
        assert proposal.event_id in reopened.registry().proposals  # type: ignore[union-attr]
        assert [r.kind for r in reopened.proposals()] == [gov.SET_PARAMETER, gov.SUSPEND]
    finally:
        reopened.close()


# -- key rotation --------------------------------------------------------------------------------


def test_a_rotated_key_is_refused_after_the_change_and_old_events_stay_valid(
    chain: Chain,
) -> None:
    c = chain
    old, new = c.net.key("BE"), SigningKey.from_seed(_seed("be-2"))
    early = c.net.issue(exporting="BE", importing="AE")
    c.commit([early.event])
    rotate = authoring.rotate_key(
        c.net.chain_id, "BE", gov.AUTHORITY, new, old, created_ms=c.net.tick()
    )
    same_block = c.net.issue(exporting="BE", importing="IN", key=old)
    rotation_block = c.commit([rotate, same_block.event])
    assert not rotation_block.refused  # the old key is in force until the block ends
    assert c.registry.participants["BE"].authority_key == new.public_bytes
    assert [ch.kind for ch in rotation_block.register_changes] == ["rotate_key"]
    late = c.commit([c.net.issue(exporting="BE", importing="AE", key=old).event])
    assert [type(x) for _, x in late.refused] == [errors.BadSignature]
    assert not c.commit([c.net.issue(exporting="BE", importing="AE", key=new).event]).refused
    # The whole chain, re-verified from genesis, holds: old events checked under the old key.
    report = verify_chain(c.store, c.net.genesis)
    assert report.ok, report.fault
    assert report.height_checked == c.height
    # And an offline proof of the certificate issued before the rotation still checks.
    checked = verify_certificate_proof(
        build_certificate_proof(c.store, early.event.number), c.net.genesis
    )
    assert checked.status == ISSUED


def test_replace_key_by_governance_wins_over_a_rotation_in_the_same_block(chain: Chain) -> None:
    c = chain
    thief = SigningKey.from_seed(_seed("thief"))
    rightful = SigningKey.from_seed(_seed("rightful"))
    replace = [
        gov.AUTHORITY,
        rightful.public_bytes,
        authoring.prove(rightful, "kp-test", "IN", "authority"),
    ]
    proposal = c.propose(gov.REPLACE_KEY, "IN", replace, by="AE")
    c.commit([proposal, c.vote(proposal, by="BE"), c.vote(proposal, by="RU")])
    c.until(proposal.body.effective_height - 2)
    rotation = authoring.rotate_key(
        c.net.chain_id, "IN", gov.AUTHORITY, thief, c.net.key("IN"), created_ms=1
    )
    c.commit([rotation])
    assert c.registry.participants["IN"].authority_key == rightful.public_bytes


def test_an_encryption_key_rotation_changes_who_new_identities_are_sealed_to(
    chain: Chain,
) -> None:
    c = chain
    new = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("ae-enc-2")))
    rotate = authoring.rotate_key(
        c.net.chain_id,
        "AE",
        gov.ENCRYPTION,
        new,
        c.net.key("AE"),
        created_ms=c.net.tick(),
    )
    c.commit([rotate])
    assert dict(c.registry.recipients_for("BE", "AE"))["AE"] == new.public_bytes


def test_one_key_cannot_vote_twice(chain: Chain) -> None:
    """The attack of issue 22: IN rotates to RU's key, then RU's key signs IN's vote."""
    c = chain
    refused = c.commit([_rotate(c, "IN", gov.AUTHORITY, c.net.key("RU"))]).refused
    assert [type(x) for _, x in refused] == [gov.KeyInUse]
    assert c.registry.participants["IN"].authority_key == c.net.key("IN").public_bytes
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal, c.vote(proposal, by="AE")])
    late = c.commit([c.vote(proposal, by="IN", key=c.net.key("RU"))])
    assert [type(x) for _, x in late.refused] == [errors.SignedByAnotherParticipant]
    assert late.refused[0][1].message.startswith("signed by RU's authority key;")
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.yes == 2 and record.status == gov.OPEN


def test_a_passed_admission_fails_when_its_key_was_taken_in_between(chain: Chain) -> None:
    """Checked when proposed, and again when it takes effect: a rotation took the key since."""
    c = chain
    m = newcomer()
    proposal = c.propose(gov.ADMIT, "BW", admit_args(c, m), effective=6)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="IN")])
    # RU gets the newcomer's private key and rotates to it before the admission is in force.
    c.commit([_rotate(c, "RU", gov.AUTHORITY, m.authority)])
    c.until(5)
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.FAILED
    assert record.note.startswith("key_in_use"), record.note
    assert "BW" not in c.registry.participants


def _off_curve_y() -> bytes:
    """An Ed25519 encoding whose y has no x on the curve."""
    p, d = 2**255 - 19, -121665 * pow(121666, 2**255 - 21, 2**255 - 19)
    for y in range(2, 100):
        x2 = (y * y - 1) * pow(d * y * y + 1, p - 2, p) % p
        if pow(x2, (p - 1) // 2, p) == p - 1:
            return y.to_bytes(32, "little")
    raise AssertionError("no off-curve y below 100")  # pragma: no cover


def _twist_u() -> bytes:
    """A u-coordinate on the twist of Curve25519, not on the curve."""
    p = 2**255 - 19
    for u in range(2, 100):
        if pow((u**3 + 486662 * u * u + u) % p, (p - 1) // 2, p) == p - 1:
            return u.to_bytes(32, "little")
    raise AssertionError("no twist point below 100")  # pragma: no cover


ED25519_BAD = {
    "identity": bytes([1]) + bytes(31),
    "all zeros (order 4)": bytes(32),
    "order 2": bytes.fromhex("ec" + "ff" * 30 + "7f"),
    "order 8": bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    "non-canonical y >= p": bytes.fromhex("ed" + "ff" * 30 + "7f"),
    "off the curve": _off_curve_y(),
}
X25519_BAD = {
    "all zeros": bytes(32),
    "u = 1 (order 4)": bytes([1]) + bytes(31),
    "order 8": (
        325606250916557431795983626356110631294008115727848805560023387167927233504
    ).to_bytes(32, "little"),
    "u = p - 1": (2**255 - 20).to_bytes(32, "little"),
    "non-canonical u = p": (2**255 - 19).to_bytes(32, "little"),
    "on the twist": _twist_u(),
}


@pytest.mark.parametrize(
    ("kind", "what"),
    [(gov.AUTHORITY, w) for w in ED25519_BAD] + [(gov.ENCRYPTION, w) for w in X25519_BAD],
)
def test_a_rotation_to_an_invalid_point_is_refused(chain: Chain, kind: str, what: str) -> None:
    bad = (ED25519_BAD if kind == gov.AUTHORITY else X25519_BAD)[what]
    with pytest.raises(gov.InvalidPublicKey) as caught:
        _rotate(chain, "IN", kind, bad, proof=bytes(64))
    assert caught.value.code == "invalid_public_key" and caught.value.http_status == 400
    # Nor can governance bring one in, as a replacement, a new participant's or a validator's.
    with pytest.raises(gov.InvalidPublicKey):
        chain.propose(gov.REPLACE_KEY, "IN", [kind, bad, bytes(64)])
    if kind == gov.AUTHORITY:
        with pytest.raises(gov.InvalidPublicKey):
            chain.propose(gov.ADD_VALIDATOR, "IN", [bad, "http://127.0.0.1:9"])
        with pytest.raises(gov.InvalidPublicKey):
            chain.propose(gov.RESTRICT, "IN", [["ZONE-A"], bad])


def test_generated_keys_are_valid_points_and_prove_possession() -> None:
    import nacl.bindings

    from ledger.keys import (
        _montgomery_to_edwards,
        is_valid_ed25519_public,
        is_valid_x25519_public,
        verify_possession,
    )

    for i in range(20):
        signing = SigningKey.from_seed(_seed("valid", str(i)))
        encryption = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("x", str(i))))
        assert is_valid_ed25519_public(signing.public_bytes)
        assert is_valid_x25519_public(encryption.public_bytes)
        # XEdDSA: our u's Edwards form is the point libsodium maps back to the same u.
        edwards = _montgomery_to_edwards(encryption.public_bytes)
        assert (
            nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(edwards) == encryption.public_bytes
        )
        for key, role in ((signing, gov.AUTHORITY), (encryption, gov.ENCRYPTION)):
            proof = key.prove_possession("kp-test", "BW", role)
            assert verify_possession(key.public_bytes, role, "kp-test", "BW", proof)
            assert not verify_possession(key.public_bytes, role, "kp-test", "BE", proof)
            assert not verify_possession(key.public_bytes, role, "kp-other", "BW", proof)
            flipped = bytes([proof[0] ^ 1]) + proof[1:]
            assert not verify_possession(key.public_bytes, role, "kp-test", "BW", flipped)
        assert not verify_possession(
            signing.public_bytes,
            gov.NODE,
            "kp-test",
            "BW",
            signing.prove_possession("kp-test", "BW", gov.AUTHORITY),
        )


# -- restriction and endorsement -----------------------------------------------------------------


def test_restricted_exports_need_an_approved_zone_and_an_endorsement_before_import(
    chain: Chain,
) -> None:
    c = chain
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    without_zone = c.commit([c.net.issue(exporting="IN", importing="BE").event])
    assert [type(x) for _, x in without_zone.refused] == [ZoneNotApproved]
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-B")
    c.commit([issuance.event])
    record = c.store.get_certificate(issuance.event.number)
    assert record is not None and record.needs_endorsement and not record.endorsed
    early = c.commit([c.net.confirm(issuance)])
    assert [type(x) for _, x in early.refused] == [gov.EndorsementRequired]
    c.commit([_endorse(c, issuance)])
    record = c.store.get_certificate(issuance.event.number)
    assert record is not None and record.endorsed and record.status == ISSUED
    assert not c.commit([c.net.confirm(issuance)]).refused
    checked = verify_certificate_proof(
        build_certificate_proof(c.store, issuance.event.number), c.net.genesis
    )
    assert [t for t, _, _ in checked.history] == [
        "certificate.issue",
        gov.ENDORSE,
        "certificate.confirm_import",
    ]
    # Lifting the restriction frees new certificates from both rules.
    c.enact(gov.LIFT, "IN")
    free = c.net.issue(exporting="IN", importing="BE")
    c.commit([free.event])
    c.commit([c.net.confirm(free)])
    assert c.store.get_certificate(free.event.number).status == IMPORT_CONFIRMED  # type: ignore[union-attr]
    assert verify_chain(c.store, c.net.genesis).ok


def test_a_rejection_needs_no_endorsement(chain: Chain) -> None:
    c = chain
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event])
    assert not c.commit([c.net.reject(issuance, "zone not credible")]).refused


# -- proofs across changes -----------------------------------------------------------------------


@pytest.fixture
def changed(full_chain: Chain) -> dict[str, Any]:
    """A certificate issued by genesis validators; then BW admitted and made a validator, RU
    removed, BE's key rotated; then a second certificate. Proofs of both."""
    c = full_chain
    early = c.net.issue(exporting="BE", importing="AE")
    c.commit([early.event])
    bw = newcomer()
    c.add_member(bw)
    address = "http://127.0.0.1:7704"
    admit = admit_args(c, bw, node=True, address=address)
    c.enact(gov.ADMIT, "BW", admit)
    c.add_validator(bw, address)
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    new = SigningKey.from_seed(_seed("be-3"))
    c.commit(
        [
            authoring.rotate_key(
                c.net.chain_id,
                "BE",
                gov.AUTHORITY,
                new,
                c.net.key("BE"),
                created_ms=c.net.tick(),
            )
        ]
    )
    late = c.net.issue(exporting="BW", importing="BE")
    c.commit([late.event])
    c.commit([c.net.confirm(early)])
    c.until(c.height + 2)
    return {
        "chain": c,
        "early": build_certificate_proof(c.store, early.event.number),
        "late": build_certificate_proof(c.store, late.event.number),
        "absent": build_certificate_proof(c.store, "BE-NOPE-9"),
    }


def _verify(proof: CertificateProof, c: Chain) -> Any:
    return verify_certificate_proof(CertificateProof.from_base64(proof.to_base64()), c.net.genesis)


def test_proofs_across_validator_changes_and_rotations_check_with_genesis_alone(
    changed: dict[str, Any],
) -> None:
    c = changed["chain"]
    early = _verify(changed["early"], c)
    assert early.status == IMPORT_CONFIRMED and early.history[0][1] == 1
    assert len(changed["early"].changes) == 2
    assert _verify(changed["late"], c).status == ISSUED
    assert not _verify(changed["absent"], c).found
    assert verify_chain(c.store, c.net.genesis).ok


@pytest.mark.parametrize("which", ["early", "late", "absent"])
def test_a_proof_without_a_validator_change_fails(changed: dict[str, Any], which: str) -> None:
    c, proof = changed["chain"], changed[which]
    for kept in (proof.changes[:1], proof.changes[1:], ()):
        with pytest.raises(errors.InvalidProof, match="validator"):
            _verify(dataclasses.replace(proof, changes=kept), c)


def test_a_forged_validator_change_fails(changed: dict[str, Any]) -> None:
    c, proof = changed["chain"], changed["early"]
    first = proof.changes[0]
    stranger = newcomer("ZA", ("ZA",)).node
    forged_set = (
        *first.validators[:-1],
        dataclasses.replace(first.validators[-1], node_key=stranger.public_bytes),
    )
    forged = dataclasses.replace(first, validators=forged_set)
    with pytest.raises(errors.InvalidProof, match="forged validator change"):
        _verify(dataclasses.replace(proof, changes=(forged, *proof.changes[1:])), c)
    # A change header re-signed by strangers is not final under the set in force.
    header = first.final.header
    votes = [
        Vote.create(stranger, c.net.chain_id, VoteKind.PRECOMMIT, header.height, 0, header.hash, i)
        for i in range(4)
    ]
    resigned = dataclasses.replace(
        first, final=FinalHeader(header, CommitCertificate.from_precommits(votes))
    )
    with pytest.raises(errors.InvalidProof, match="not final"):
        _verify(dataclasses.replace(proof, changes=(resigned, *proof.changes[1:])), c)
    # Changes out of order.
    with pytest.raises(errors.InvalidProof):
        _verify(dataclasses.replace(proof, changes=tuple(reversed(proof.changes))), c)


# -- bodies on the wire --------------------------------------------------------------------------


def test_governance_bodies_round_trip_and_malformed_ones_are_refused(chain: Chain) -> None:
    c = chain
    m = newcomer()
    for kind, subject, args in [
        (
            gov.ADMIT,
            "BW",
            admit_args(c, m, name="B"),
        ),
        (gov.SUSPEND, "RU", []),
        (gov.RESTRICT, "IN", [["Z1"], MONITOR.public_bytes]),
        (gov.SET_PARAMETER, "", ["max_validity_days", 10]),
        (
            gov.REPLACE_KEY,
            "IN",
            [gov.ENCRYPTION, m.encryption.public_bytes, m.encryption.prove_possession("c", "IN")],
        ),
    ]:
        event = c.propose(kind, subject, args)
        assert Event.decode(event.encoded) == event
        assert event.number == subject
    bad_bodies = [
        (gov.PROPOSE, ["nope", "RU", [], 9]),
        (gov.PROPOSE, [gov.SUSPEND, "XX", [], 9]),
        (gov.PROPOSE, [gov.SUSPEND, "RU", ["extra"], 9]),
        (gov.PROPOSE, [gov.SET_PARAMETER, "RU", ["max_validity_days", 1], 9]),
        (gov.PROPOSE, [gov.RESTRICT, "IN", [[], MONITOR.public_bytes], 9]),
        (gov.PROPOSE, [gov.ADD_VALIDATOR, "IN", [bytes(32), "ftp://x"], 9]),
        (gov.PROPOSE, [gov.SUSPEND, "RU", [], -1]),
        (gov.VOTE, [bytes(31), True]),
        (gov.VOTE, [bytes(32), 1]),
        (gov.ROTATE_KEY, ["node", bytes(32)]),
        (gov.ENDORSE, ["IN-1", bytes(31)]),
    ]
    from ledger.events import unsigned_wire
    from ledger.hashing import TAG_EVENT

    for type_, body in bad_bodies:

        class Raw:
            def __init__(self, wire: Any) -> None:
                self.wire = wire

            def to_wire(self) -> Any:
                return self.wire

        unsigned = unsigned_wire(c.net.chain_id, type_, "BE", 1, Raw(body))
        signature = c.net.key("BE").sign(TAG_EVENT, encode(unsigned))
        with pytest.raises(errors.MalformedInput):
            Event.decode(encode([unsigned, signature]))
