"""SPEC 3's issuance dates: judged against the block's date, tunable by governance, in force from
a named height so that the certificates already on an older chain stay valid."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import errors
from ledger import governance as gov
from ledger.audit import verify_chain
from ledger.encoding import decode, encode
from ledger.events import Event
from ledger.genesis import LATER_PARAMETERS, Genesis, Parameters
from ledger.registry import EventContext, Registry
from ledger.state import Overlay, check_issuance_dates, date_of
from ledger.store import Store
from tests.helpers import ISSUED_ON, TestNetwork, day_ms
from tests.ledger.governance.helpers import Chain

#: The genesis hash of TestNetwork() before the date rules existed, computed with that code: a
#: network whose genesis does not name the new parameters keeps it.
LEGACY_GENESIS_HASH = "f614be73048ea8455eb03460e1aa562524ff6b03538b85e947fa72b8b7fcfac6"
#: The parameters every genesis named before any was added.
LEGACY_PARAMETER_NAMES = [
    "max_validity_days",
    "max_block_events",
    "max_block_bytes",
    "max_event_bytes",
    "max_clock_drift_ms",
    "timeout_propose_ms",
    "timeout_vote_ms",
    "timeout_delta_ms",
    "governance_threshold_num",
    "governance_threshold_den",
]


def legacy_parameters() -> Parameters:
    """The parameters of a genesis.json written before the date rules: none of the new names."""
    written = {k: v for k, v in Parameters().to_json().items() if k not in LATER_PARAMETERS}
    return Parameters.from_json(written)


def dated(net: TestNetwork, issued: date, expires: date) -> Event:
    return net.issue(issued_on=issued.isoformat(), expires_on=expires.isoformat()).event


def outcome(net: TestNetwork, store: Store, issued: date, expires: date, at_ms: int) -> str:
    """What the ledger answers to an issuance with these dates, in a block at `at_ms`."""
    event = net.issue(issued_on=issued.isoformat(), expires_on=expires.isoformat()).event
    ctx = EventContext(height=store.height + 1, time_ms=at_ms, chain_id=net.chain_id)
    try:
        Overlay(store).apply(net.registry, event, ctx)
    except errors.LedgerError as exc:
        return exc.code
    return "accepted"


# -- the rule, at its edges -----------------------------------------------------------------------


def test_the_edges_of_the_rule(network: TestNetwork, store: Store) -> None:
    today = network.today
    week = timedelta(days=Parameters().max_backdating_days)
    at = network.now_ms
    assert outcome(network, store, today, today, at) == "accepted"  # issued and expiring today
    assert outcome(network, store, today - week, today, at) == "accepted"  # 7 days back
    late = today - week - timedelta(days=1)
    assert outcome(network, store, late, today, at) == "backdated_too_far"
    tomorrow = today + timedelta(days=1)
    assert outcome(network, store, tomorrow, tomorrow, at) == "issued_in_future"
    yesterday = today - timedelta(days=1)
    assert outcome(network, store, yesterday, yesterday, at) == "expired_on_issue"


def test_the_date_is_the_utc_date_of_the_block_time(network: TestNetwork, store: Store) -> None:
    day = ISSUED_ON
    last_ms_of_the_day = day_ms(day + timedelta(days=1), hour=0) - 1
    assert outcome(network, store, day, day, last_ms_of_the_day) == "accepted"
    assert outcome(network, store, day, day, last_ms_of_the_day + 1) == "expired_on_issue"
    next_day = day + timedelta(days=1)
    assert outcome(network, store, next_day, next_day, last_ms_of_the_day) == "issued_in_future"


@settings(max_examples=200, deadline=None)
@given(
    issued=st.integers(-40, 40),
    validity=st.integers(0, 180),
    backdating=st.integers(0, 90),
    recorded=st.dates(date(2003, 1, 1), date(2100, 12, 31)),
)
def test_the_rule_against_its_statement(
    issued: int, validity: int, backdating: int, recorded: date
) -> None:
    """Refused exactly when SPEC 3 says, with the first rule broken named."""
    net = TestNetwork()
    issued_on = recorded + timedelta(days=issued)
    facts = net.certificate(
        issued_on=issued_on.isoformat(),
        expires_on=(issued_on + timedelta(days=validity)).isoformat(),
    ).facts
    if issued_on > recorded:
        expected: type[errors.LedgerError] | None = errors.IssuedInFuture
    elif (recorded - issued_on).days > backdating:
        expected = errors.BackdatedTooFar
    elif facts.expires_on < recorded:
        expected = errors.ExpiredOnIssue
    else:
        expected = None
    if expected is None:
        check_issuance_dates(facts, recorded, backdating)
    else:
        with pytest.raises(expected) as caught:
            check_issuance_dates(facts, recorded, backdating)
        assert facts.number in caught.value.message
        assert recorded.isoformat() in caught.value.message


def test_a_refused_issuance_is_dropped_from_the_block_and_says_why(
    network: TestNetwork, store: Store
) -> None:
    net = network
    next_june = date(net.today.year + 1, 6, 1)
    future = dated(net, next_june, next_june + timedelta(days=60))
    expired = dated(net, net.today - timedelta(days=3), net.today - timedelta(days=1))
    good = net.issue()
    execution = net.commit_block(store, [future, expired, good.event])
    assert [e.event_id for e in execution.block.events] == [good.event.event_id]
    refused = {e.event_id: x for e, x in execution.refused}
    assert type(refused[future.event_id]) is errors.IssuedInFuture
    message = refused[future.event_id].message
    assert f"dated {next_june.isoformat()}, after {net.today.isoformat()}" in message
    assert type(refused[expired.event_id]) is errors.ExpiredOnIssue
    assert "older certificates enter only as history" in refused[expired.event_id].message


# -- from which height -----------------------------------------------------------------------------


def test_a_genesis_without_the_new_parameters_keeps_its_hashes() -> None:
    """An existing network's genesis.json names neither parameter: same genesis, same register."""
    net = TestNetwork(parameters=legacy_parameters())
    assert net.genesis.hash.hex() == LEGACY_GENESIS_HASH
    # The register's parameters are encoded as before too (the register has other fields).
    registry_parameters = Registry.from_genesis(net.genesis).to_wire()[2]
    assert [name for name, _ in registry_parameters] == LEGACY_PARAMETER_NAMES
    assert net.genesis.parameters.issuance_dates_from_height == 0
    assert net.genesis.parameters.max_backdating_days == 7
    # Read back from its JSON, as a node reads genesis.json, it is the same genesis.
    again = Genesis.from_json(net.genesis.to_json())
    assert again.hash == net.genesis.hash
    # A new network names the height (1): its genesis differs from the legacy one.
    assert TestNetwork().genesis.hash.hex() != LEGACY_GENESIS_HASH
    assert Parameters().issuance_dates_from_height == 1


def test_parameters_have_one_wire_form() -> None:
    for parameters in (Parameters(), legacy_parameters(), Parameters(max_backdating_days=0)):
        wire = decode(encode(parameters.to_wire()))
        assert Parameters.from_wire(wire) == parameters
    legacy = legacy_parameters().to_wire()
    assert [name for name, _ in legacy] == [
        n for n in Parameters.__dataclass_fields__ if n not in LATER_PARAMETERS
    ]
    # A later parameter spelled out at the value its absence means is not canonical.
    with pytest.raises(errors.MalformedInput):
        Parameters.from_wire([*legacy, ["issuance_dates_from_height", 0]])
    with pytest.raises(errors.MalformedInput):
        Parameters.from_wire(list(reversed(Parameters().to_wire())))


def test_an_older_chain_keeps_its_certificates_and_its_audit(
    make_store: Callable[..., Store],
) -> None:
    """On a legacy network the rule is not in force: what it recorded stays valid on replay."""
    net = TestNetwork(parameters=legacy_parameters())
    store = make_store(net)
    next_june = date(net.today.year + 1, 6, 1)
    future = dated(net, next_june, next_june + timedelta(days=30))
    past = dated(net, net.today - timedelta(days=90), net.today - timedelta(days=30))
    execution = net.commit_block(store, [future, past])
    assert not execution.refused and len(execution.block.events) == 2
    report = verify_chain(store, net.genesis)
    assert report.ok, report.fault


def test_the_rule_applies_from_the_height_genesis_names(make_store: Callable[..., Store]) -> None:
    net = TestNetwork(parameters=Parameters(issuance_dates_from_height=3))
    store = make_store(net)
    tomorrow = net.today + timedelta(days=1)
    for height in (1, 2, 3, 4):
        event = dated(net, tomorrow, tomorrow)
        execution = net.commit_block(store, [event])
        assert execution.header.height == height
        codes = [x.code for _, x in execution.refused]
        assert codes == ([] if height < 3 else ["issued_in_future"]), height
    assert verify_chain(store, net.genesis).ok


def test_governance_brings_the_rule_into_force_on_an_older_chain(
    make_store: Callable[..., Store],
) -> None:
    net = TestNetwork(parameters=legacy_parameters())
    c = Chain(net, make_store(net))
    tomorrow = net.today + timedelta(days=1)
    before = c.commit([dated(net, tomorrow, tomorrow)])
    assert not before.refused
    record = c.enact(gov.SET_PARAMETER, "", ["issuance_dates_from_height", 1])
    assert c.registry.parameters.issuance_dates_from_height == 1
    after = c.commit([dated(net, tomorrow, tomorrow)])
    assert [x.code for _, x in after.refused] == ["issued_in_future"]
    assert after.header.height >= record.effective_height
    # Once set, the height can be brought forward but never put off.
    with pytest.raises(errors.ParameterOutOfRange, match="never put off"):
        gov.apply_change(
            gov.draft_of(c.registry), gov.SET_PARAMETER, "", ("issuance_dates_from_height", 50)
        )
    # The whole chain re-verifies: blocks before the change by the rules of their register.
    assert verify_chain(c.store, net.genesis).ok


def test_governance_changes_max_backdating_days(make_store: Callable[..., Store]) -> None:
    net = TestNetwork()
    c = Chain(net, make_store(net))
    three_weeks_ago = net.today - timedelta(days=21)
    first = c.commit([dated(net, three_weeks_ago, net.today)])
    assert [x.code for _, x in first.refused] == ["backdated_too_far"]
    c.enact(gov.SET_PARAMETER, "", ["max_backdating_days", 30])
    assert c.registry.parameters.max_backdating_days == 30
    later = c.commit([dated(net, net.today - timedelta(days=21), net.today)])
    assert not later.refused
    c.enact(gov.SET_PARAMETER, "", ["max_backdating_days", 0])
    yesterday = net.today - timedelta(days=1)
    strict = c.commit([dated(net, yesterday, net.today), dated(net, net.today, net.today)])
    assert [x.code for _, x in strict.refused] == ["backdated_too_far"]
    assert len(strict.block.events) == 1


@pytest.fixture
def chain(network: TestNetwork, store: Store) -> Chain:
    return Chain(network, store)


@pytest.mark.parametrize("value", [91, 1000])
def test_max_backdating_days_has_a_range(chain: Chain, value: int) -> None:
    proposal = chain.propose(gov.SET_PARAMETER, "", ["max_backdating_days", value])
    refused = chain.commit([proposal]).refused
    assert [type(x) for _, x in refused] == [errors.ParameterOutOfRange]
    assert "must be 0 to 90" in refused[0][1].message


def test_block_dates_follow_the_block_time_not_the_event(
    network: TestNetwork, store: Store
) -> None:
    """created_ms says nothing about the date: a late block is judged on its own day."""
    net = network
    issuance = net.issue(created_ms=net.now_ms)
    eight_days_later = net.now_ms + 8 * 86_400_000
    execution = net.commit_block(store, [issuance.event], time_ms=eight_days_later)
    assert [x.code for _, x in execution.refused] == ["backdated_too_far"]
    assert date_of(execution.header.time_ms) == net.today + timedelta(days=8)
