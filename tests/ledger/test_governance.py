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
from ledger.consensus import CommitCertificate, Vote, VoteKind
from ledger.encoding import encode
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
            proposer=(self.height + 1) % len(self.registry.validators),
        )

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


@pytest.fixture
def chain(network: TestNetwork, store: Store) -> Chain:
    return Chain(network, store)


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
    args = ["UAE", ["AE"], m.authority.public_bytes, m.encryption.public_bytes, b"", ""]
    return [], c.propose(gov.ADMIT, "AE", args)


@case(gov.CountryTaken)
def admit_with_a_country_of_another(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    args = ["Botswana", ["BW", "BE"], m.authority.public_bytes, m.encryption.public_bytes, b"", ""]
    return [], c.propose(gov.ADMIT, "BW", args)


@case(gov.NodeKeyInUse)
def admit_with_a_node_key_in_use(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    ae_node = c.net.members["AE"].node.public_bytes
    args = ["Botswana", ["BW"], m.authority.public_bytes, m.encryption.public_bytes, ae_node]
    return [], c.propose(gov.ADMIT, "BW", [*args, "http://127.0.0.1:9"])


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


@case(errors.BadSignature)
def proposal_signed_with_another_key(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "RU", by="BE", key=c.net.key("AE"))


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
    proposal = c.propose(gov.SUSPEND, "IN", effective=5)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="RU")])
    c.until(6)
    return [], c.vote(proposal, by="RU")


@case(gov.KeyUnchanged)
def rotate_to_the_same_key(c: Chain) -> tuple[list[Event], Event]:
    key = c.net.key("BE")
    return [], authoring.rotate_key(
        c.net.chain_id, "BE", gov.AUTHORITY, key.public_bytes, key, created_ms=c.net.tick()
    )


@case(gov.RotationPending)
def rotate_twice_in_one_block(c: Chain) -> tuple[list[Event], Event]:
    key = c.net.key("BE")
    first, second = SigningKey.from_seed(_seed("a")), SigningKey.from_seed(_seed("b"))
    rotate = [
        authoring.rotate_key(
            c.net.chain_id, "BE", gov.AUTHORITY, k.public_bytes, key, created_ms=c.net.tick()
        )
        for k in (first, second)
    ]
    return [rotate[0]], rotate[1]


@case(errors.BadSignature)
def signed_with_a_rotated_key(c: Chain) -> tuple[list[Event], Event]:
    old, new = c.net.key("BE"), SigningKey.from_seed(_seed("new-be"))
    c.commit(
        [
            authoring.rotate_key(
                c.net.chain_id, "BE", gov.AUTHORITY, new.public_bytes, old, created_ms=c.net.tick()
            )
        ]
    )
    return [], c.net.issue(exporting="BE", importing="AE", key=old).event


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
    c.enact(gov.RESTRICT, "RU", _restrict_args(MONITOR), voters=("AE", "IN"))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event])
    event = authoring.endorse(
        c.net.chain_id,
        "RU",
        issuance.event.number,
        issuance.digest,
        MONITOR,
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
    net = TestNetwork(**network_kwargs)
    c = Chain(net, make_store(net))
    prelude, bad = make(c)
    time_ms = net.tick()
    ctx = EventContext(c.height + 1, time_ms, net.chain_id)
    before = dict(c.store.raw().iterator())

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
    assert dict(c.store.raw().iterator()) == before


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
    args = ["Botswana", ["BW"], m.authority.public_bytes, m.encryption.public_bytes, b"", ""]
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
            [
                wide * gov.MAX_NAME,
                countries,
                m.authority.public_bytes,
                m.encryption.public_bytes,
                m.node.public_bytes,
                "https://" + wide * (gov.MAX_ADDRESS - 8),
            ],
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
    args = [
        "Botswana",
        ["BW"],
        bw.authority.public_bytes,
        bw.encryption.public_bytes,
        bw.node.public_bytes,
        "http://127.0.0.1:7704",
    ]
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


def test_validator_changes_follow_the_register_and_headers_name_the_next_set(
    chain: Chain,
) -> None:
    c = chain
    bw = newcomer()
    c.add_member(bw)
    admit = [
        "Botswana",
        ["BW"],
        bw.authority.public_bytes,
        bw.encryption.public_bytes,
        bw.node.public_bytes,
        "http://127.0.0.1:7704",
    ]
    c.enact(gov.ADMIT, "BW", admit)
    record = c.enact(gov.ADD_VALIDATOR, "BW", [bw.node.public_bytes, "http://127.0.0.1:7704"])
    change_height = record.effective_height
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
        c.net.chain_id, "BE", gov.AUTHORITY, new.public_bytes, old, created_ms=c.net.tick()
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
    proposal = c.propose(gov.REPLACE_KEY, "IN", [gov.AUTHORITY, rightful.public_bytes], by="AE")
    c.commit([proposal, c.vote(proposal, by="BE"), c.vote(proposal, by="RU")])
    c.until(proposal.body.effective_height - 2)
    rotation = authoring.rotate_key(
        c.net.chain_id, "IN", gov.AUTHORITY, thief.public_bytes, c.net.key("IN"), created_ms=1
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
        new.public_bytes,
        c.net.key("AE"),
        created_ms=c.net.tick(),
    )
    c.commit([rotate])
    assert dict(c.registry.recipients_for("BE", "AE"))["AE"] == new.public_bytes


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
def changed(chain: Chain) -> dict[str, Any]:
    """A certificate issued by genesis validators; then BW admitted and made a validator, RU
    removed, BE's key rotated; then a second certificate. Proofs of both."""
    c = chain
    early = c.net.issue(exporting="BE", importing="AE")
    c.commit([early.event])
    bw = newcomer()
    c.add_member(bw)
    address = "http://127.0.0.1:7704"
    admit = [
        "Botswana",
        ["BW"],
        bw.authority.public_bytes,
        bw.encryption.public_bytes,
        bw.node.public_bytes,
        address,
    ]
    c.enact(gov.ADMIT, "BW", admit)
    c.enact(gov.ADD_VALIDATOR, "BW", [bw.node.public_bytes, address])
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    new = SigningKey.from_seed(_seed("be-3"))
    c.commit(
        [
            authoring.rotate_key(
                c.net.chain_id,
                "BE",
                gov.AUTHORITY,
                new.public_bytes,
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
            ["B", ["BW"], m.authority.public_bytes, m.encryption.public_bytes, b"", ""],
        ),
        (gov.SUSPEND, "RU", []),
        (gov.RESTRICT, "IN", [["Z1"], MONITOR.public_bytes]),
        (gov.SET_PARAMETER, "", ["max_validity_days", 10]),
        (gov.REPLACE_KEY, "IN", [gov.ENCRYPTION, bytes(range(32))]),
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
