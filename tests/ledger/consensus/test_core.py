"""Tests of the Tendermint state machine: steps, timeouts, rounds and the lock rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from ledger.consensus import (
    Action,
    Broadcast,
    ConsensusCore,
    Decide,
    Persist,
    Proposal,
    ScheduleTimeout,
    Step,
    Vote,
    VoteKind,
    proposer_for,
)
from tests.ledger.consensus.support import (
    CHAIN,
    App,
    V,
    W,
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
    to_round,
)

# --- the state machine ---------------------------------------------------------------------------


def run_network(cores: list[ConsensusCore], start: Sequence[int] | None = None) -> list[Decide]:
    """Deliver every broadcast to every other core, in order, until nothing is left to send.
    Checks on the way that each new signature was persisted before it was broadcast."""
    persisted: list[set[Any]] = [set() for _ in cores]
    queue: list[tuple[int, list[Action]]] = []
    for i in start if start is not None else range(len(cores)):
        queue.append((i, cores[i].start(0)))
    decisions: list[Decide] = []
    while queue:
        i, actions = queue.pop(0)
        for action in actions:
            if isinstance(action, Persist):
                persisted[i].update(action.state.signed)
            elif isinstance(action, Broadcast):
                m = action.message
                if isinstance(m, Proposal | Vote):
                    signer = m.proposer if isinstance(m, Proposal) else m.validator
                    if signer == cores[i].validator_index:
                        assert m in persisted[i], "broadcast before it was persisted"
                for j, other in enumerate(cores):
                    if j != i:
                        queue.append((j, other.on_message(m, 1)))
            elif isinstance(action, Decide):
                decisions.append(action)
    return decisions


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_validators_decide_the_proposed_value(n: int) -> None:
    cores = [core(i, n=n, app=App(bytes([i]) * 32)) for i in range(n)]
    decisions = run_network(cores)
    assert len(decisions) == n
    proposer = proposer_for(1, 0, n)
    assert {d.value for d in decisions} == {bytes([proposer]) * 32}
    for d in decisions:
        assert d.height == 1 and d.certificate.value == d.value
        d.certificate.verify(CHAIN, keys(n))


def test_one_validator_decides_alone_and_the_next_height_waits_for_start() -> None:
    c = core(0, n=1)
    out = c.start(0)
    assert [type(a) for a in out if not isinstance(a, ScheduleTimeout)] == [
        Persist,
        Broadcast,
        Persist,
        Broadcast,
        Persist,
        Broadcast,
        Decide,
    ]
    assert c.advance(2, keys(1), 10) == []
    assert not c.running
    assert any(isinstance(a, Decide) for a in c.start(20))


def test_a_height_can_start_from_one_message_of_a_peer() -> None:
    # Only the proposer has work; the others join when its proposal arrives.
    cores = [core(i) for i in range(4)]
    decisions = run_network(cores, start=[proposer_for(1, 0, 4)])
    assert len(decisions) == 4


def test_idle_core_does_nothing_until_started_or_a_valid_message_arrives() -> None:
    c = core(0)
    assert c.resend(0) == []
    assert c.on_timeout(Step.PROPOSE, 1, 0, 5_000) == []
    bad = Vote(VoteKind.PREVOTE, 1, 0, V, 1, b"\x00" * 64)
    assert c.on_vote(bad, 0) == [] and not c.running
    # One validator's votes do not start the height: it may be alone in running it.
    assert c.on_vote(prevote(1, V), 50) == [] and not c.running
    assert c.on_vote(precommit(1, None), 60) == [] and not c.running
    # f+1 validators do: one of them is honest and has work.
    out = c.on_vote(prevote(2, V), 100)
    assert c.running
    assert timeouts(out) == [ScheduleTimeout(Step.PROPOSE, 1, 0, 1_100)]


def test_one_validators_future_height_votes_do_not_start_empty_rounds() -> None:
    # Issue 12: a validator's signed votes for the next height, replayed on advance, made the
    # idle network run empty rounds, so the next issuance waited for a late round.
    c = core(0)
    c.start(0)
    for round in (0, 1):
        feed(c, [prevote(3, None, round, height=2), precommit(3, None, round, height=2)])
    feed(c, [precommit(i, V) for i in (1, 2, 3)])
    assert c.decision is not None
    assert c.advance(2, keys(), 100) == [] and not c.running
    assert c.on_timeout(Step.PROPOSE, 2, 0, 2_000) == []
    # A proposal from the scheduled proposer whose block is valid starts it.
    out = c.on_proposal(proposal(0, W, height=2), 3_000)
    assert c.running and one_vote(out, VoteKind.PREVOTE).value == W


def test_invalid_proposal_gets_a_nil_prevote() -> None:
    c = core(0, app=App(invalid=[V]))
    c.start(0)
    assert one_vote(c.on_proposal(proposal(0, V), 0), VoteKind.PREVOTE).value is None


def test_a_proposal_whose_block_is_missing_is_awaited_not_prevoted_nil() -> None:
    # Issue 13 F1: "I do not have the block yet" must not count as "invalid".
    app = App(missing=[V])
    c = core(0, app=app)
    c.start(0)
    out = c.on_proposal(proposal(0, V), 10)
    assert own_votes(out, VoteKind.PREVOTE) == [] and c.step is Step.PROPOSE
    assert c.on_validity(1, V, 20) == []  # still missing: nothing happens
    app.missing.clear()
    assert c.on_validity(1, W, 30) == []  # a value no proposal names: nothing to re-judge
    assert one_vote(c.on_validity(1, V, 40), VoteKind.PREVOTE).value == V


def test_a_missing_block_is_judged_by_the_propose_timeout_then_still_counts() -> None:
    app = App(missing=[V])
    c = core(0, app=app)
    c.start(0)
    c.on_proposal(proposal(0, V), 10)
    assert one_vote(c.on_timeout(Step.PROPOSE, 1, 0, 1_000), VoteKind.PREVOTE).value is None
    # The block comes late, with a polka for it: the node locks on it (line 36) at once.
    out = feed(c, [prevote(i, V) for i in (1, 2, 3)], 1_100)
    assert own_votes(out, VoteKind.PRECOMMIT) == []
    app.missing.clear()
    out = c.on_validity(1, V, 1_200)
    assert one_vote(out, VoteKind.PRECOMMIT).value == V and c.locked == (0, V)


def test_an_idle_height_starts_when_the_proposed_block_arrives_valid() -> None:
    app = App(missing=[V])
    c = core(0, app=app)
    assert c.on_proposal(proposal(0, V), 10) == [] and not c.running
    app.missing.clear()
    out = c.on_validity(1, V, 20)
    assert c.running and one_vote(out, VoteKind.PREVOTE).value == V


def test_propose_timeout_prevotes_nil_then_prevote_timeout_precommits_nil() -> None:
    c = core(0)
    c.start(0)
    out = c.on_timeout(Step.PROPOSE, 1, 0, 2_000)
    assert one_vote(out, VoteKind.PREVOTE).value is None
    # 2f+1 prevotes of mixed values: only the prevote timeout is scheduled (line 34).
    out = feed(c, [prevote(1, V), prevote(2, W)], 2_100)
    assert timeouts(out) == [ScheduleTimeout(Step.PREVOTE, 1, 0, 3_100)]
    assert own_votes(out, VoteKind.PRECOMMIT) == []
    out = c.on_timeout(Step.PREVOTE, 1, 0, 3_100)
    assert one_vote(out, VoteKind.PRECOMMIT).value is None


def test_nil_prevote_quorum_precommits_nil() -> None:
    c = core(0)
    c.start(0)
    c.on_timeout(Step.PROPOSE, 1, 0, 1_000)
    out = feed(c, [prevote(1, None), prevote(2, None)])
    assert one_vote(out, VoteKind.PRECOMMIT).value is None  # line 44
    assert c.locked == (-1, None)


def test_unscheduled_or_stale_timeouts_are_ignored() -> None:
    c = core(0)
    c.start(0)
    assert c.on_timeout(Step.PRECOMMIT, 1, 0, 9_000) == []  # never scheduled
    assert c.on_timeout(Step.PROPOSE, 1, 1, 9_000) == []  # another round
    assert c.on_timeout(Step.PROPOSE, 2, 0, 9_000) == []  # another height
    assert c.round == 0 and c.step is Step.PROPOSE


def test_precommit_quorum_of_any_values_ends_the_round() -> None:
    c = core(0)
    c.start(0)
    out = feed(c, [precommit(1, V), precommit(2, None), precommit(3, W)], 500)
    assert timeouts(out) == [ScheduleTimeout(Step.PRECOMMIT, 1, 0, 1_500)]  # line 47
    out = c.on_timeout(Step.PRECOMMIT, 1, 0, 1_500)
    assert c.round == 1 and c.step is Step.PROPOSE
    assert timeouts(out) == [ScheduleTimeout(Step.PROPOSE, 1, 1, 1_500 + 1_500)]


def test_a_nil_precommit_quorum_ends_the_round_at_once() -> None:
    # 2f+1 nil precommits: no value can be decided in this round, so its timeout is not awaited.
    c = core(0)
    c.start(0)
    out = feed(c, [precommit(1, None), precommit(2, None), precommit(3, None)], 500)
    assert c.round == 1 and c.step is Step.PROPOSE
    assert timeouts(out) == [ScheduleTimeout(Step.PROPOSE, 1, 1, 500 + 1_500)]


def test_a_silent_proposer_gets_a_shorter_propose_timeout_until_it_speaks() -> None:
    # Issue 13 item 7: with validator 2 down, each of its rounds waited out the full timeout.
    c = core(0, app=App(value=None))
    c.start(0)
    to_round(c, 1)  # round 1 of height 1: validator 2 proposes
    out = c.on_timeout(Step.PROPOSE, 1, 1, 10_000)
    assert one_vote(out, VoteKind.PREVOTE).value is None
    feed(c, [precommit(i, V) for i in (1, 2, 3)], 10_100)
    out = c.advance(2, keys(), 10_200)
    out += c.start(10_300)  # round 0 of height 2: validator 2 again
    assert timeouts(out) == [ScheduleTimeout(Step.PROPOSE, 2, 0, 10_300 + 1_000 // 4)]
    # It speaks again, even late: from then on its rounds get the whole timeout.
    c.on_timeout(Step.PROPOSE, 2, 0, 10_550)
    c.on_proposal(proposal(0, W, height=2), 10_600)
    feed(c, [precommit(i, W, height=2) for i in (1, 2, 3)], 10_700)
    assert c.decision is not None
    out = c.advance(6, keys(), 10_800)  # height 6, round 0: validator 2
    out += c.start(10_900)
    assert timeouts(out) == [ScheduleTimeout(Step.PROPOSE, 6, 0, 10_900 + 1_000)]


def test_round_skip_needs_f_plus_one_validators() -> None:
    c = core(0)
    c.start(0)
    c.on_vote(prevote(1, None, round=5), 0)
    assert c.round == 0  # one validator may be byzantine
    c.on_vote(precommit(1, None, round=5), 0)
    assert c.round == 0  # the same validator again
    c.on_vote(prevote(2, V, round=5), 0)
    assert c.round == 5  # line 55


def test_decides_on_precommits_of_any_round_with_a_certificate() -> None:
    c = core(0)
    c.start(0)
    out = feed(c, [precommit(i, W, round=2) for i in (3, 1, 2)])
    decisions = [a for a in out if isinstance(a, Decide)]
    assert [(d.height, d.value) for d in decisions] == [(1, W)]
    cert = decisions[0].certificate
    assert [i for i, _ in cert.signatures] == [1, 2, 3] and cert.round == 2
    cert.verify(CHAIN, keys())
    # Decided: nothing more happens at this height, except re-sending the certificate.
    assert feed(c, [prevote(1, V, round=3)]) == []
    assert sent(c.resend(10)) == [cert]


# --- lock rules (lines 22-44) --------------------------------------------------------------------


def test_polka_locks_and_precommits_the_value() -> None:
    c = core(0)
    out = locked_on_v_at_round_0(c)
    precommit_index = out.index(Broadcast(one_vote(out, VoteKind.PRECOMMIT)))
    persist = out[precommit_index - 1]
    assert isinstance(persist, Persist)
    assert persist.state.locked_round == 0 and persist.state.locked_value == V


def test_locked_validator_prevotes_nil_for_a_different_value() -> None:
    c = core(0)
    locked_on_v_at_round_0(c)
    to_round(c, 1)
    out = c.on_proposal(proposal(1, W), 0)
    assert one_vote(out, VoteKind.PREVOTE).value is None  # line 23: locked on V


def test_locked_validator_prevotes_its_locked_value_again() -> None:
    c = core(0)
    locked_on_v_at_round_0(c)
    to_round(c, 1)
    assert one_vote(c.on_proposal(proposal(1, V), 0), VoteKind.PREVOTE).value == V


def test_newer_proof_of_lock_releases_the_lock() -> None:
    c = core(0)
    locked_on_v_at_round_0(c)
    # W got 2f+1 prevotes in round 1, after our lock in round 0.
    feed(c, [prevote(i, W, round=1) for i in (1, 2, 3)])
    to_round(c, 2)
    out = c.on_proposal(proposal(2, W, pol=1), 0)
    assert one_vote(out, VoteKind.PREVOTE).value == W  # line 29: locked_round 0 <= 1


def test_older_proof_of_lock_does_not_release_the_lock() -> None:
    c = core(0)
    c.start(0)
    feed(c, [prevote(i, W) for i in (1, 2, 3)])  # a polka for W in round 0 ...
    to_round(c, 1)
    out = feed(c, [proposal(1, V), prevote(1, V, 1), prevote(2, V, 1)])
    assert c.locked == (1, V)  # ... but we locked on V in round 1
    assert one_vote(out, VoteKind.PRECOMMIT).value == V
    to_round(c, 2)
    out = c.on_proposal(proposal(2, W, pol=0), 0)
    assert one_vote(out, VoteKind.PREVOTE).value is None


def test_proof_of_lock_is_awaited_and_the_timeout_prevotes_nil() -> None:
    c = core(0)
    c.start(0)
    to_round(c, 2)
    out = c.on_proposal(proposal(2, W, pol=1), 0)
    assert own_votes(out, VoteKind.PREVOTE) == []  # no 2f+1 prevotes for W in round 1 yet
    out = feed(c, [prevote(1, W, round=1), prevote(2, W, round=1)])
    assert own_votes(out, VoteKind.PREVOTE) == []
    out = c.on_vote(prevote(3, W, round=1), 0)
    assert one_vote(out, VoteKind.PREVOTE).value == W
    c2 = core(0)
    c2.start(0)
    to_round(c2, 2)
    c2.on_proposal(proposal(2, W, pol=1), 0)
    out = c2.on_timeout(Step.PROPOSE, 1, 2, 10_000)
    assert one_vote(out, VoteKind.PREVOTE).value is None


def test_polka_seen_after_precommitting_nil_updates_only_the_valid_value() -> None:
    c = core(0)
    c.start(0)
    c.on_timeout(Step.PROPOSE, 1, 0, 1_000)  # prevote nil: the proposal was late
    feed(c, [prevote(1, V), prevote(2, V)])
    out = c.on_timeout(Step.PREVOTE, 1, 0, 2_000)
    assert one_vote(out, VoteKind.PRECOMMIT).value is None
    out = feed(c, [proposal(0, V), prevote(3, V)])  # now V has its polka
    assert c.valid == (0, V)  # line 42
    assert c.locked == (-1, None)  # line 38 only in the prevote step
    assert own_votes(out, VoteKind.PRECOMMIT) == []


def test_proposer_reproposes_its_valid_value_with_its_round() -> None:
    c = core(2, app=App(W))  # 2 proposes round 1 of height 1
    c.start(0)
    out = feed(c, [proposal(0, V), prevote(1, V), prevote(3, V)])
    assert one_vote(out, VoteKind.PRECOMMIT).value == V
    feed(c, [precommit(1, None), precommit(3, None)])
    out = c.on_timeout(Step.PRECOMMIT, 1, 0, 5_000)
    proposals = [m for m in sent(out) if isinstance(m, Proposal)]
    assert [(p.round, p.value, p.pol_round) for p in proposals] == [(1, V, 0)]


def test_nothing_to_propose_still_ends_the_round() -> None:
    c = core(1, app=App(None))
    out = c.start(0)
    assert sent(out) == []
    assert timeouts(out) == [ScheduleTimeout(Step.PROPOSE, 1, 0, 1_000)]
    assert one_vote(c.on_timeout(Step.PROPOSE, 1, 0, 1_000), VoteKind.PREVOTE).value is None
