"""Every governance rule, refused with its own error, changing nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from ledger import authoring, errors
from ledger import governance as gov
from ledger.consensus import (
    EquivocationEvidence,
)
from ledger.errors import LedgerError, ZoneNotApproved
from ledger.events import Event
from ledger.keys import EncryptionKey, SigningKey
from ledger.registry import EventContext
from ledger.state import Overlay
from ledger.store import Store
from tests.helpers import Member, TestNetwork
from tests.ledger.governance.helpers import (
    GOV_VALIDATORS,
    MONITOR,
    Chain,
    _double_vote,
    _endorse,
    _report,
    _restrict_args,
    _rotate,
    _seed,
    admit_args,
    newcomer,
)

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


@case(errors.EffectiveHeightOutOfRange)
def effective_height_too_soon(c: Chain) -> tuple[list[Event], Event]:
    c.until(3)
    return [], c.propose(gov.SUSPEND, "RU", effective=c.height + 2)  # recorded at height + 1


@case(errors.EffectiveHeightOutOfRange)
def effective_height_too_far(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "RU", effective=1 + gov.MAX_LEAD + 1)


@case(errors.ParticipantExists)
def admit_an_existing_participant(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer("AE", ("AE",))
    return [], c.propose(gov.ADMIT, "AE", admit_args(c, m, name="UAE"))


@case(errors.CountryTaken)
def admit_with_a_country_of_another(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m, countries=["BW", "BE"]))


@case(errors.NodeKeyInUse)
def admit_with_a_node_key_in_use(c: Chain) -> tuple[list[Event], Event]:
    ae = c.net.members["AE"]
    m = dataclasses.replace(newcomer(), node=ae.node)
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m, node=True))


@case(errors.UnknownParticipant)
def suspend_a_stranger(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "BW")


@case(errors.AlreadySuspended, suspended=["RU"])
def suspend_the_suspended(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SUSPEND, "RU")


@case(errors.NotSuspended)
def reinstate_the_active(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REINSTATE, "AE")


@case(errors.AlreadyValidator)
def add_a_validator_twice(c: Chain) -> tuple[list[Event], Event]:
    ae_node = c.net.members["AE"].node.public_bytes
    return [], c.propose(gov.ADD_VALIDATOR, "AE", [ae_node, "http://127.0.0.1:9"])


@case(errors.NotAValidator)
def remove_a_node_that_is_not_a_validator(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REMOVE_VALIDATOR, "AE", [newcomer().node.public_bytes])


@case(errors.LastValidator, participants=[("BE", ("BE",))])
def remove_the_last_validator(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REMOVE_VALIDATOR, "BE", [c.net.members["BE"].node.public_bytes])


@case(errors.NotRestricted)
def lift_an_unrestricted_participant(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.LIFT, "AE")


@case(errors.UnknownParameter)
def set_an_unknown_parameter(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SET_PARAMETER, "", ["block_reward", 10])


@case(errors.ParameterOutOfRange)
def set_a_threshold_of_everyone(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.SET_PARAMETER, "", ["governance_threshold_num", 3])


@case(errors.ParameterOutOfRange)
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
    case(errors.ParameterOutOfRange)(_halting_case(_name, _value))


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


@case(errors.UnknownProposal)
def vote_on_no_proposal(c: Chain) -> tuple[list[Event], Event]:
    return [], c.vote(bytes(32))


@case(errors.AlreadyVoted)
def a_second_different_vote(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal, c.vote(proposal, True, by="AE")])
    return [], c.vote(proposal, False, by="AE")


@case(errors.AlreadyVoted)
def two_votes_in_one_block(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal])
    return [c.vote(proposal, True, by="AE")], c.vote(proposal, False, by="AE")


@case(errors.AlreadyVoted)
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


@case(errors.ProposalExpired)
def a_vote_after_voting_closed(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=5)
    c.commit([proposal])
    c.until(3)  # votes close at 5 - 2 = 3; the next block is 4
    return [], c.vote(proposal, by="AE")


@case(errors.ProposalExpired)
def a_vote_on_an_expired_proposal(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=5)
    c.commit([proposal])
    c.until(6)
    return [], c.vote(proposal, by="AE")


@case(errors.ProposalClosed)
def a_vote_on_a_passed_proposal_after_voting_closed(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=6)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="IN")])
    c.until(4)
    return [], c.vote(proposal, by="RU")


@case(errors.ProposalClosed)
def a_vote_on_an_enacted_proposal(c: Chain) -> tuple[list[Event], Event]:
    proposal = c.propose(gov.SUSPEND, "RU", effective=5)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="IN")])
    c.until(6)
    return [], c.vote(proposal, by="IN")


@case(errors.KeyUnchanged)
def rotate_to_the_same_key(c: Chain) -> tuple[list[Event], Event]:
    key = c.net.key("BE")
    return [], authoring.rotate_key(
        c.net.chain_id, "BE", gov.AUTHORITY, key, key, created_ms=c.net.tick()
    )


@case(errors.RotationPending)
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


@case(errors.KeyInUse)
def rotate_to_another_participants_authority_key(c: Chain) -> tuple[list[Event], Event]:
    """IN takes RU's key, RU colluding (it signs the proof): RU's key would vote twice."""
    return [], _rotate(c, "IN", gov.AUTHORITY, c.net.key("RU"))


@case(errors.KeyInUse)
def rotate_to_another_participants_encryption_key(c: Chain) -> tuple[list[Event], Event]:
    return [], _rotate(c, "IN", gov.ENCRYPTION, c.net.members["RU"].encryption)


@case(errors.KeyInUse)
def rotate_the_authority_key_to_a_node_key(c: Chain) -> tuple[list[Event], Event]:
    return [], _rotate(c, "IN", gov.AUTHORITY, c.net.members["IN"].node)


@case(errors.KeyInUse)
def two_participants_rotate_to_one_key_in_a_block(c: Chain) -> tuple[list[Event], Event]:
    shared = SigningKey.from_seed(_seed("shared"))
    return [_rotate(c, "IN", gov.AUTHORITY, shared)], _rotate(c, "RU", gov.AUTHORITY, shared)


@case(errors.BadKeyProof)
def rotate_without_possession_of_the_new_key(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = c.net.key("IN").prove_possession(c.net.chain_id, "IN", gov.AUTHORITY)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(errors.BadKeyProof)
def rotate_with_a_proof_made_for_another_participant(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = new.prove_possession(c.net.chain_id, "RU", gov.AUTHORITY)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(errors.BadKeyProof)
def rotate_with_a_proof_made_for_another_chain(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = new.prove_possession("another-chain", "IN", gov.AUTHORITY)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(errors.BadKeyProof)
def rotate_with_a_proof_made_for_another_role(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-new"))
    proof = new.prove_possession(c.net.chain_id, "IN", gov.NODE)
    return [], _rotate(c, "IN", gov.AUTHORITY, new.public_bytes, proof=proof)


@case(errors.BadKeyProof)
def rotate_an_encryption_key_without_possession(c: Chain) -> tuple[list[Event], Event]:
    new = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("in-enc-new")))
    other = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("in-enc-other")))
    proof = other.prove_possession(c.net.chain_id, "IN")
    return [], _rotate(c, "IN", gov.ENCRYPTION, new.public_bytes, proof=proof)


@case(errors.KeyInUse)
def admit_with_another_participants_keys(c: Chain) -> tuple[list[Event], Event]:
    """A newcomer with BE's authority and encryption keys (BE colluding: it signs the proofs)."""
    be = c.net.members["BE"]
    m = dataclasses.replace(newcomer(), authority=be.authority, encryption=be.encryption)
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m), by="AE")


@case(errors.KeyInUse)
def admit_with_one_key_for_two_roles(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    m = dataclasses.replace(m, node=m.authority)
    return [], c.propose(gov.ADMIT, "BW", admit_args(c, m, node=True))


@case(errors.BadKeyProof)
def admit_without_possession_of_the_encryption_key(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    args = admit_args(c, m)
    args[7] = newcomer("ZA").encryption.prove_possession(c.net.chain_id, "BW")
    return [], c.propose(gov.ADMIT, "BW", args)


@case(errors.BadKeyProof)
def admit_without_possession_of_the_node_key(c: Chain) -> tuple[list[Event], Event]:
    m = newcomer()
    args = admit_args(c, m, node=True)
    args[8] = m.authority.prove_possession(c.net.chain_id, "BW", gov.NODE)
    return [], c.propose(gov.ADMIT, "BW", args)


@case(errors.KeyInUse)
def replace_a_key_with_another_participants(c: Chain) -> tuple[list[Event], Event]:
    ru = c.net.key("RU")
    args = [gov.AUTHORITY, ru.public_bytes, ru.prove_possession(c.net.chain_id, "IN", "authority")]
    return [], c.propose(gov.REPLACE_KEY, "IN", args)


@case(errors.BadKeyProof)
def replace_a_key_without_possession(c: Chain) -> tuple[list[Event], Event]:
    new = SigningKey.from_seed(_seed("in-replaced"))
    args = [gov.AUTHORITY, new.public_bytes, bytes(64)]
    return [], c.propose(gov.REPLACE_KEY, "IN", args)


@case(errors.KeyUnchanged)
def replace_a_key_with_itself(c: Chain) -> tuple[list[Event], Event]:
    key = c.net.key("IN")
    args = [
        gov.AUTHORITY,
        key.public_bytes,
        key.prove_possession(c.net.chain_id, "IN", "authority"),
    ]
    return [], c.propose(gov.REPLACE_KEY, "IN", args)


@case(errors.KeyInUse)
def add_a_validator_whose_node_key_is_an_authority_key(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.ADD_VALIDATOR, "IN", [c.net.key("RU").public_bytes, "http://x:1"])


@case(errors.KeyInUse)
def restrict_under_another_participants_authority_key(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.RESTRICT, "IN", [["ZONE-A"], c.net.key("IN").public_bytes])


# -- validator changes that keep the set live ------------------------------------------------


@case(errors.TooFewValidators, validators=None)
def remove_a_validator_of_four(c: Chain) -> tuple[list[Event], Event]:
    return [], c.propose(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])


@case(errors.TooFewValidators, validators=None)
def suspend_a_validator_of_four(c: Chain) -> tuple[list[Event], Event]:
    """The suspension would take RU's validator out of the set with it."""
    return [], c.propose(gov.SUSPEND, "RU")


def _pending_bw(c: Chain) -> Member:
    bw = newcomer()
    c.add_member(bw)
    c.enact(gov.ADMIT, "BW", admit_args(c, bw, node=True))
    c.enact(gov.ADD_VALIDATOR, "BW", [bw.node.public_bytes, "http://127.0.0.1:7704"])
    return bw


@case(errors.NotPendingValidator)
def ready_for_a_node_governance_did_not_add(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    return [], c.ready(c.net.members["RU"])


@case(errors.AlreadyValidator)
def ready_for_a_validator_in_the_set(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    return [], c.ready(c.net.members["IN"])


@case(errors.StaleReadiness)
def ready_naming_a_block_of_another_chain(c: Chain) -> tuple[list[Event], Event]:
    bw = _pending_bw(c)
    head = c.store.head
    assert head is not None
    event = authoring.ready(
        c.net.chain_id, "BW", bw.node, head.height, bytes(32), created_ms=c.net.tick()
    )
    return [], event


@case(errors.StaleReadiness)
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


@case(errors.AlreadyValidator)
def ready_twice_in_a_block(c: Chain) -> tuple[list[Event], Event]:
    bw = _pending_bw(c)
    return [c.ready(bw)], c.ready(bw)


# -- equivocation evidence on the chain -------------------------------------------------------


@case(errors.InvalidEvidence)
def evidence_of_two_votes_for_one_value(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    proof = _double_vote(c, "IN")
    return [], _report(c, EquivocationEvidence(proof.vote_a, proof.vote_a))


@case(errors.InvalidEvidence)
def evidence_signed_by_someone_else(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    proof = _double_vote(c, "IN")
    forged = dataclasses.replace(proof.vote_b, validator=proof.vote_a.validator - 1)
    return [], _report(
        c,
        EquivocationEvidence(dataclasses.replace(proof.vote_a, validator=forged.validator), forged),
    )


@case(errors.InvalidEvidence)
def evidence_of_a_future_height(c: Chain) -> tuple[list[Event], Event]:
    c.commit()
    proof = _double_vote(c, "IN")
    later = [dataclasses.replace(v, height=c.height + 5) for v in (proof.vote_a, proof.vote_b)]
    return [], _report(c, EquivocationEvidence(*later))


@case(errors.EvidenceNotNeeded)
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


@case(errors.EndorsementRequired)
def confirm_before_the_endorsement(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event])
    return [], c.net.confirm(issuance)


@case(errors.AlreadyEndorsed)
def endorse_twice(c: Chain) -> tuple[list[Event], Event]:
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event, _endorse(c, issuance)])
    return [], _endorse(c, issuance)


@case(errors.EndorsementNotNeeded)
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
