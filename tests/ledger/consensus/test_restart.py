"""Tests of restarts: the signer state persisted before every signature, and restored."""

from __future__ import annotations

import pytest

from ledger.consensus import (
    Action,
    Broadcast,
    Persist,
    Proposal,
    SignerState,
    Step,
    Vote,
    VoteKind,
)
from ledger.encoding import decode, encode
from ledger.errors import MalformedInput
from tests.ledger.consensus.support import (
    App,
    V,
    W,
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
    replaced,
    sent,
    to_round,
)

# --- restarts ------------------------------------------------------------------------------------


def persisted(actions: list[Action]) -> SignerState:
    states = [a.state for a in actions if isinstance(a, Persist)]
    assert states
    # As a node would: through the canonical bytes on disk.
    return SignerState.from_wire(decode(encode(states[-1].to_wire())))


def test_every_new_signature_is_persisted_before_it_is_broadcast() -> None:
    c = core(1)  # the proposer: signs a proposal, a prevote and a precommit
    out = c.start(0)
    out += feed(c, [prevote(0, V), prevote(2, V)])
    signed = [m for m in sent(out) if isinstance(m, Proposal | Vote)]
    assert len(signed) == 3
    for m in signed:
        at = out.index(Broadcast(m))
        assert any(isinstance(a, Persist) and m in a.state.signed for a in out[:at])


def test_restart_resends_the_same_vote_and_never_signs_another() -> None:
    c = core(0)
    c.start(0)
    out = c.on_proposal(proposal(0, V), 0)
    vote = one_vote(out, VoteKind.PREVOTE)
    state = persisted(out)
    assert state.signed == (vote,) and state.step is Step.PREVOTE

    restarted = core(0, state=state, app=App(W))
    out = restarted.start(50)
    assert sent(out) == [vote]
    assert not any(isinstance(a, Persist) for a in out)
    # A propose timeout from before the crash would have made it prevote nil: it is ignored.
    assert restarted.on_timeout(Step.PROPOSE, 1, 0, 1_000) == []
    assert restarted.on_proposal(proposal(0, W), 60) == []  # equivocating proposer, no effect
    assert all(v == vote for v in own_votes(restarted.resend(70), VoteKind.PREVOTE))


def test_restart_with_a_signed_vote_ahead_of_its_step_reuses_the_vote() -> None:
    # Belt and braces: even if the step on disk lags, the signed vote wins.
    vote = prevote(0, V)
    state = SignerState(height=1, round=0, step=Step.PROPOSE, signed=(vote,))
    c = core(0, state=state)
    c.start(0)
    out = c.on_timeout(Step.PROPOSE, 1, 0, 1_000)  # would prevote nil
    assert own_votes(out, VoteKind.PREVOTE) == [vote]
    assert not any(isinstance(a, Persist) for a in out)


def test_restarted_proposer_resends_its_proposal_not_a_new_one() -> None:
    c = core(1, app=App(V))
    out = c.start(0)
    first = [m for m in sent(out) if isinstance(m, Proposal)]
    restarted = core(1, app=App(W), state=persisted(out))
    again = [m for m in sent(restarted.start(10)) if isinstance(m, Proposal)]
    assert again == first


def test_restart_keeps_the_lock() -> None:
    c = core(0)
    out = locked_on_v_at_round_0(c)
    restarted = core(0, state=persisted(out))
    restarted.start(0)
    assert restarted.locked == (0, V)
    to_round(restarted, 1)
    assert one_vote(restarted.on_proposal(proposal(1, W), 0), VoteKind.PREVOTE).value is None


def test_signer_state_of_an_older_height_is_ignored_and_a_later_one_waits() -> None:
    old = SignerState(height=1, round=3, step=Step.PRECOMMIT, signed=(prevote(0, V, 3),))
    c = core(0, height=2, state=old)
    assert c.round == 0
    later = SignerState(height=2, round=0, step=Step.PREVOTE, signed=(prevote(0, V, 0, 2),))
    c = core(0, height=1, state=later)
    assert (c.round, c.step) == (0, Step.PROPOSE)
    c.advance(2, keys(), 0)
    assert (c.round, c.step) == (0, Step.PREVOTE)
    assert sent(c.start(0)) == [prevote(0, V, 0, 2)]


def test_signer_state_wire_checks_its_invariants() -> None:
    state = SignerState(1, 2, Step.PRECOMMIT, 1, V, 2, W, (prevote(0, V, 1), precommit(0, V, 1)))
    assert SignerState.from_wire(decode(encode(state.to_wire()))) == state
    wire = state.to_wire()
    for bad in (
        replaced(wire, 8, [prevote(0, V, 1).to_wire(), prevote(0, W, 1).to_wire()]),
        replaced(wire, 8, [prevote(0, V, 1, height=2).to_wire()]),
        replaced(wire, 8, [prevote(0, V, 3).to_wire()]),
        replaced(wire, 5, None),
        replaced(wire, 6, -1),
        replaced(wire, 3, 4),
        replaced(wire, 8, [certificate([0, 1, 2]).to_wire()]),
    ):
        with pytest.raises(MalformedInput):
            SignerState.from_wire(bad)
