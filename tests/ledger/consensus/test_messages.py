"""Tests of the consensus arithmetic, the wire messages and commit certificates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger.consensus import (
    CommitCertificate,
    ConflictingProposals,
    EquivocationEvidence,
    Proposal,
    ScheduleTimeout,
    Step,
    TimeoutConfig,
    Vote,
    VoteKind,
    message_from_wire,
    proposer_for,
    quorum_size,
    weak_quorum_size,
)
from ledger.encoding import decode, encode
from ledger.errors import InvalidCommitCertificate, MalformedInput
from ledger.hashing import TAG_PROPOSAL, TAG_VOTE
from ledger.keys import verify
from tests.ledger.consensus.support import (
    CHAIN,
    KEYS,
    OUTSIDER,
    V,
    W,
    certificate,
    core,
    keys,
    precommit,
    prevote,
    proposal,
    replaced,
    sent,
    timeouts,
    to_round,
)

# --- arithmetic and schedule ---------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 11))
def test_quorum_arithmetic(n: int) -> None:
    q = quorum_size(n)
    assert 3 * q > 2 * n and not 3 * (q - 1) > 2 * n
    weak = weak_quorum_size(n)
    assert 3 * weak > n and not 3 * (weak - 1) > n
    f = (n - 1) // 3  # the most faulty validators n tolerates: 3f < n
    assert weak > f  # so `weak` validators always include an honest one
    # Two quorums share more than f validators, so at least one honest one.
    assert 2 * q - n > f
    # The honest validators alone form a quorum: liveness with f silent.
    assert n - f >= q


def test_quorum_examples() -> None:
    assert [quorum_size(n) for n in range(1, 11)] == [1, 2, 3, 3, 4, 5, 5, 6, 7, 7]
    assert [weak_quorum_size(n) for n in range(1, 11)] == [1, 1, 2, 2, 2, 3, 3, 3, 4, 4]


def test_proposer_schedule_is_round_robin() -> None:
    assert [proposer_for(1, r, 4) for r in range(6)] == [1, 2, 3, 0, 1, 2]
    assert [proposer_for(h, 0, 7) for h in range(1, 9)] == [1, 2, 3, 4, 5, 6, 0, 1]


@pytest.mark.parametrize("height", [1, 2, 3, 4, 5])
def test_only_the_scheduled_proposer_proposes(height: int) -> None:
    for i in range(4):
        proposals = [m for m in sent(core(i, height=height).start(0)) if isinstance(m, Proposal)]
        if i == proposer_for(height, 0, 4):
            assert [(p.height, p.round, p.value, p.pol_round, p.proposer) for p in proposals] == [
                (height, 0, V, -1, i)
            ]
        else:
            assert proposals == []


def test_timeouts_grow_with_the_round() -> None:
    c = core(0)
    assert timeouts(c.start(1_000)) == [ScheduleTimeout(Step.PROPOSE, 1, 0, 1_000 + 1_000)]
    out = to_round(c, 3, now=5_000)
    assert timeouts(out) == [ScheduleTimeout(Step.PROPOSE, 1, 3, 5_000 + 1_000 + 3 * 500)]
    config = TimeoutConfig(propose_ms=10, propose_delta_ms=1)
    assert config.duration(Step.PROPOSE, 7) == 17


# --- messages ------------------------------------------------------------------------------------


def test_signing_payloads_are_the_documented_encodings() -> None:
    v = prevote(1, None, round=2, height=5)
    assert v.signing_payload(CHAIN) == encode(["vote", CHAIN, 1, 5, 2, b""])
    assert verify(KEYS[1].public_bytes, TAG_VOTE, v.signing_payload(CHAIN), v.signature)
    c = precommit(1, V)
    assert c.signing_payload(CHAIN) == encode(["vote", CHAIN, 2, 1, 0, V])
    p = proposal(1, V, pol=0)
    assert p.signing_payload(CHAIN) == encode(["proposal", CHAIN, 1, 1, V, 0])
    assert verify(KEYS[2].public_bytes, TAG_PROPOSAL, p.signing_payload(CHAIN), p.signature)
    # The chain id is signed: a vote of another chain does not verify here.
    assert not Vote(c.kind, c.height, c.round, c.value, 1, c.signature).verify("other", keys())


def test_messages_survive_the_wire() -> None:
    votes = [prevote(1, V), prevote(2, None), precommit(3, W, round=4)]
    cert = CommitCertificate.from_precommits([precommit(i, V) for i in (2, 0, 1)])
    messages: list[Any] = [
        proposal(0, V),
        proposal(3, W, pol=1),
        *votes,
        cert,
        EquivocationEvidence(prevote(1, V), prevote(1, W)),
        ConflictingProposals(proposal(0, V), proposal(0, W)),
    ]
    for m in messages:
        wire = decode(encode(m.to_wire()))
        assert type(m).from_wire(wire) == m
        assert message_from_wire(wire) == m
    assert [i for i, _ in cert.signatures] == [0, 1, 2]


GOOD_VOTE = prevote(1, V).to_wire()
GOOD_PROPOSAL = proposal(1, V, pol=0).to_wire()


@pytest.mark.parametrize(
    "wire",
    [
        None,
        "vote",
        [],
        GOOD_VOTE[:-1],
        [*GOOD_VOTE, 0],
        replaced(GOOD_VOTE, 0, "proposal"),
        replaced(GOOD_VOTE, 1, 3),
        replaced(GOOD_VOTE, 1, True),
        replaced(GOOD_VOTE, 2, 0),
        replaced(GOOD_VOTE, 3, -1),
        replaced(GOOD_VOTE, 3, True),
        replaced(GOOD_VOTE, 4, V[:31]),
        replaced(GOOD_VOTE, 4, b""),
        replaced(GOOD_VOTE, 4, "aa" * 32),
        replaced(GOOD_VOTE, 5, -1),
        replaced(GOOD_VOTE, 6, b"\x00" * 63),
    ],
)
def test_vote_from_wire_refuses_bad_shapes(wire: Any) -> None:
    with pytest.raises(MalformedInput):
        Vote.from_wire(wire)


@pytest.mark.parametrize(
    "wire",
    [
        replaced(GOOD_PROPOSAL, 2, -1),
        replaced(GOOD_PROPOSAL, 3, None),
        replaced(GOOD_PROPOSAL, 4, 1),  # pol_round must be below the round
        replaced(GOOD_PROPOSAL, 4, -2),
        replaced(GOOD_PROPOSAL, 5, False),
        replaced(GOOD_PROPOSAL, 1, 2**64),
    ],
)
def test_proposal_from_wire_refuses_bad_shapes(wire: Any) -> None:
    with pytest.raises(MalformedInput):
        Proposal.from_wire(wire)


def test_message_from_wire_refuses_unknown_kinds() -> None:
    for wire in (["block", 1], [b"vote"], [], 7):
        with pytest.raises(MalformedInput):
            message_from_wire(wire)
    with pytest.raises(MalformedInput):
        CommitCertificate.from_wire(["commit", 1, 0, V, [[0]]])


def test_verify_checks_signer_schedule_and_signature() -> None:
    validators = keys()
    assert prevote(1, V).verify(CHAIN, validators)
    assert not prevote(1, V).verify(CHAIN, keys(1))  # index out of range
    forged = Vote.create(OUTSIDER, CHAIN, VoteKind.PREVOTE, 1, 0, V, 1)
    assert not forged.verify(CHAIN, validators)
    assert proposal(0, V).verify(CHAIN, validators)
    not_scheduled = Proposal.create(KEYS[2], CHAIN, 1, 0, V, -1, 2)
    assert not not_scheduled.verify(CHAIN, validators)
    # A prevote signature is not a precommit signature.
    v = prevote(1, V)
    assert not Vote(VoteKind.PRECOMMIT, 1, 0, V, 1, v.signature).verify(CHAIN, validators)


def test_evidence_verifies_only_real_equivocation() -> None:
    validators = keys()
    assert EquivocationEvidence(prevote(1, V), prevote(1, None)).verify(CHAIN, validators)
    assert not EquivocationEvidence(prevote(1, V), prevote(1, V)).verify(CHAIN, validators)
    assert not EquivocationEvidence(prevote(1, V), prevote(2, W)).verify(CHAIN, validators)
    assert not EquivocationEvidence(prevote(1, V), precommit(1, W)).verify(CHAIN, validators)
    assert not EquivocationEvidence(prevote(1, V), prevote(1, W, round=1)).verify(CHAIN, validators)
    assert ConflictingProposals(proposal(0, V), proposal(0, W)).verify(CHAIN, validators)
    assert not ConflictingProposals(proposal(0, V), proposal(0, V)).verify(CHAIN, validators)


# --- commit certificates -------------------------------------------------------------------------


def test_certificate_verifies_with_nothing_but_validator_keys() -> None:
    cert = certificate([0, 1, 3])
    cert.verify(CHAIN, keys())
    assert cert.is_valid(CHAIN, keys())
    assert certificate([0, 1, 2, 3]).is_valid(CHAIN, keys())
    assert [v.verify(CHAIN, keys()) for v in cert.precommits()] == [True] * 3


def _sigs(cert: CommitCertificate) -> dict[int, bytes]:
    return dict(cert.signatures)


@pytest.mark.parametrize(
    ("signatures", "message"),
    [
        (lambda s: ((0, s[0]), (1, s[1])), "too few signers: 2 of 4 validators, 3 needed"),
        (lambda s: (), "too few signers: 0 of 4 validators, 3 needed"),
        (lambda s: ((0, s[0]), (0, s[0]), (1, s[1])), "validator 0 signs twice"),
        (lambda s: ((0, s[0]), (1, s[1]), (7, s[2])), "signer 7 is not a validator (there are 4)"),
        (lambda s: ((-1, s[0]), (1, s[1]), (2, s[2])), "signer -1 is not a validator"),
        (
            lambda s: ((1, s[1]), (0, s[0]), (2, s[2])),
            "signers are not sorted by index (1 before 0)",
        ),
        (lambda s: ((0, s[0]), (1, s[2]), (2, s[2])), "bad precommit signature from validator 1"),
        (lambda s: ((0, s[0]), (1, s[1]), (2, s[2][:10])), "validator 2 is not 64 bytes"),
    ],
)
def test_certificate_failures_say_what_is_wrong(
    signatures: Callable[[dict[int, bytes]], tuple[tuple[int, bytes], ...]], message: str
) -> None:
    good = certificate([0, 1, 2])
    bad = CommitCertificate(good.height, good.round, good.value, signatures(_sigs(good)))
    with pytest.raises(InvalidCommitCertificate) as caught:
        bad.verify(CHAIN, keys())
    assert str(caught.value).startswith("commit certificate for height 1: ")
    assert message in str(caught.value)
    assert not bad.is_valid(CHAIN, keys())


def test_certificate_binds_value_round_chain_and_kind() -> None:
    good = certificate([0, 1, 2])
    for bad in (
        CommitCertificate(1, 0, W, good.signatures),
        CommitCertificate(1, 1, V, good.signatures),
        CommitCertificate(2, 0, V, good.signatures),
    ):
        with pytest.raises(InvalidCommitCertificate, match="bad precommit signature"):
            bad.verify(CHAIN, keys())
    with pytest.raises(InvalidCommitCertificate, match="bad precommit signature"):
        good.verify("another-chain", keys())
    prevotes = tuple((i, prevote(i, V).signature) for i in range(3))
    assert not CommitCertificate(1, 0, V, prevotes).is_valid(CHAIN, keys())
    with pytest.raises(InvalidCommitCertificate, match="value must be 32 bytes"):
        CommitCertificate(1, 0, V[:5], good.signatures).verify(CHAIN, keys())
    with pytest.raises(ValueError):
        CommitCertificate.from_precommits([precommit(0, None), precommit(1, None)])
    with pytest.raises(ValueError):
        CommitCertificate.from_precommits([precommit(0, V), precommit(1, W)])
