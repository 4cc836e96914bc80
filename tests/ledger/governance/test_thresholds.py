"""Thresholds, voting windows, effective heights and parameter bounds."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import authoring, errors
from ledger import governance as gov
from ledger.genesis import (
    MAX_GOVERNANCE_EVENT_BYTES,
    PARAMETER_BOUNDS,
    Genesis,
    Parameters,
)
from ledger.store import Store
from tests.helpers import TestNetwork
from tests.ledger.governance.helpers import (
    Chain,
    admit_args,
    newcomer,
)

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
    assert [type(x) for _, x in late.refused] == [errors.ProposalExpired]


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
    text = (Path(__file__).parents[3] / "docs" / "governance.md").read_text(encoding="utf-8")
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
