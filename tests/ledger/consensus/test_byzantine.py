"""Tests of the core against byzantine and malformed input, buffering and sync."""

from __future__ import annotations

import pytest

from ledger.consensus import (
    Broadcast,
    CommitCertificate,
    ConflictingProposals,
    ConsensusCore,
    Decide,
    EquivocationEvidence,
    Persist,
    Proposal,
    ReportEvidence,
    TimeoutConfig,
    Vote,
    VoteKind,
)
from tests.ledger.consensus.support import (
    CHAIN,
    KEYS,
    OUTSIDER,
    App,
    V,
    W,
    X,
    certificate,
    core,
    feed,
    keys,
    locked_on_v_at_round_0,
    one_vote,
    own_votes,
    precommit,
    prevote,
    proposal,
    sent,
    timeouts,
)

# --- byzantine and malformed input ---------------------------------------------------------------


def test_equivocating_votes_are_reported_once_and_counted_once() -> None:
    c = core(0)
    c.start(0)
    out = feed(c, [prevote(1, V), prevote(1, W), prevote(1, None), prevote(1, W)])
    reports = [a.evidence for a in out if isinstance(a, ReportEvidence)]
    assert len(reports) == 1
    evidence = reports[0]
    assert isinstance(evidence, EquivocationEvidence)
    assert evidence.validator == 1 and evidence.verify(CHAIN, keys())
    # One validator is never two towards "2f+1 prevotes of any value".
    out = c.on_vote(prevote(2, V), 0)
    assert timeouts(out) == []


def test_conflicting_proposals_are_reported() -> None:
    c = core(0)
    c.start(0)
    out = feed(c, [proposal(0, V), proposal(0, W)])
    reports = [a.evidence for a in out if isinstance(a, ReportEvidence)]
    assert len(reports) == 1 and isinstance(reports[0], ConflictingProposals)
    assert reports[0].verify(CHAIN, keys())
    assert one_vote(out, VoteKind.PREVOTE).value == V  # the first one counts


def test_bad_signatures_unknown_validators_and_wrong_proposers_are_ignored() -> None:
    c = core(0)
    c.start(0)
    good = prevote(1, V)
    ignored: list[Proposal | Vote] = [
        Vote(good.kind, 1, 0, V, 1, b"\x01" * 64),  # bad signature
        Vote(good.kind, 1, 0, W, 1, good.signature),  # signature of another vote
        Vote.create(OUTSIDER, CHAIN, VoteKind.PREVOTE, 1, 0, V, 1),  # not 1's key
        Vote.create(KEYS[7], CHAIN, VoteKind.PREVOTE, 1, 0, V, 7),  # not a validator
        Vote.create(KEYS[1], "other-chain", VoteKind.PREVOTE, 1, 0, V, 1),
        Proposal.create(KEYS[2], CHAIN, 1, 0, V, -1, 2),  # 2 is not the proposer of round 0
        Proposal.create(KEYS[2], CHAIN, 1, 0, V, -1, 1),  # claims to be 1
        Proposal(1, 0, V, 0, 1, proposal(0, V).signature),  # pol_round not below its round
        Vote(VoteKind.PREVOTE, 1, 0, V[:8], 1, good.signature),  # not a 32-byte value
    ]
    for m in ignored:
        assert c.on_message(m, 0) == []
    # Had any counted, these two would complete a polka and a precommit would follow.
    out = feed(c, [proposal(0, V), prevote(2, V)])
    assert own_votes(out, VoteKind.PRECOMMIT) == []


def test_old_heights_are_ignored_and_next_heights_replayed_on_advance() -> None:
    c = core(0, height=2)
    assert c.on_vote(prevote(1, V, height=1), 0) == []
    assert not c.running
    c = core(0)
    c.start(0)
    future: list[Proposal | Vote] = [
        proposal(0, W, height=2),
        prevote(1, W, height=2),
        prevote(3, W, height=2),
    ]
    assert feed(c, future) == []
    assert feed(c, [proposal(0, X, height=6)]) == []  # too far ahead: dropped
    feed(c, [precommit(i, V) for i in (1, 2, 3)])
    assert c.decision is not None
    out = c.advance(2, keys(), 100)
    assert c.running  # the replayed messages started the height
    assert one_vote(out, VoteKind.PRECOMMIT).value == W
    out = c.advance(6, keys(), 200)
    assert out == [] and not c.running
    with pytest.raises(ValueError):
        c.advance(6, keys(), 300)


def test_next_height_messages_are_checked_against_the_next_validator_set() -> None:
    # Issue 13 F3: validator 1 leaves at height 2 and 4 joins; 2 and 3 move down one index.
    current, following = keys(), [KEYS[i].public_bytes for i in (0, 2, 3, 4)]
    c = ConsensusCore(CHAIN, current, KEYS[0], App(), 1, TimeoutConfig(), next_validators=following)
    c.start(0)
    # The departing key signs as index 1 at height 2 (it is index 1 now), as much as it likes.
    for round in range(8):
        for kind in VoteKind:
            c.on_vote(Vote.create(KEYS[1], CHAIN, kind, 2, round, X, 1), 0)
    # The new index 1 (key 2) and index 2 (key 3, the proposer of height 2 round 0) sign too.
    new = [
        Proposal.create(KEYS[3], CHAIN, 2, 0, W, -1, 2),
        Vote.create(KEYS[2], CHAIN, VoteKind.PREVOTE, 2, 0, W, 1),
        Vote.create(KEYS[3], CHAIN, VoteKind.PREVOTE, 2, 0, W, 2),
    ]
    assert feed(c, new) == []
    feed(c, [precommit(i, V) for i in (1, 2, 3)])
    out = c.advance(2, following, 100)
    # Their messages were kept; with its own prevote they are a polka for W.
    assert one_vote(out, VoteKind.PREVOTE).value == W
    assert one_vote(out, VoteKind.PRECOMMIT).value == W


def test_buffered_messages_are_checked_again_if_the_set_is_not_the_one_expected() -> None:
    c = core(0)
    c.start(0)
    assert feed(c, [prevote(i, W, height=2) for i in (1, 3)]) == []
    feed(c, [precommit(i, V) for i in (1, 2, 3)])
    # Governance changed the set after all: 1's key is gone, so its index now means key 5's.
    changed = [KEYS[i].public_bytes for i in (0, 5, 2, 3)]
    out = c.advance(2, changed, 100)
    assert not c.running  # only 3's prevote still holds: one validator does not start a height
    out += c.on_proposal(Proposal.create(KEYS[2], CHAIN, 2, 0, W, -1, 2), 110)
    assert one_vote(out, VoteKind.PREVOTE).value == W
    assert own_votes(out, VoteKind.PRECOMMIT) == []  # 1's old prevote no longer counts


def test_future_round_bookkeeping_is_bounded() -> None:
    c = core(0)
    c.start(0)
    for round in range(10, 200):
        c.on_vote(prevote(1, None, round), 0)
        c.on_vote(precommit(1, None, round), 0)
    # Validator 1 keeps only its two highest rounds ahead of us.
    assert len(c._rounds) <= 3  # white-box: the point is what it costs in memory
    assert c.round == 0
    c.on_vote(prevote(2, None, 199), 0)
    assert c.round == 199  # its latest round still counts towards a round skip


def test_observer_decides_but_never_signs() -> None:
    for c in (core(None), core(None, signer=OUTSIDER)):
        out = c.start(0)
        out += feed(c, [proposal(0, V)] + [prevote(i, V) for i in (1, 2, 3)])
        out += feed(c, [precommit(i, V) for i in (1, 2, 3)])
        assert not any(isinstance(a, Persist | Broadcast) for a in out)
        assert [a.value for a in out if isinstance(a, Decide)] == [V]


def test_commit_certificate_from_sync_decides_at_once() -> None:
    c = core(0)
    assert c.on_commit(certificate([0, 1]), 0) == []  # too few signers
    assert (
        c.on_commit(
            CommitCertificate.from_precommits([precommit(i, V, 0, 2) for i in (0, 1, 2)]), 0
        )
        == []
    )
    cert = certificate([1, 2, 3], value=W)
    out = c.on_commit(cert, 0)
    assert out == [Decide(1, W, cert)]
    assert c.on_commit(certificate([0, 1, 2]), 0) == []  # already decided


def test_resend_repeats_own_messages_and_relays_the_proof_of_lock() -> None:
    c = core(0)
    out = locked_on_v_at_round_0(c)
    own = [m for m in sent(out) if isinstance(m, Vote)]
    again = sent(c.resend(5_000))
    assert own[0] in again and own[1] in again
    assert prevote(1, V) in again and prevote(2, V) in again  # the proof of lock for V
    assert proposal(0, V) in again
