"""An event's created_ms is bounded by the time of the block that records it: at most the
network's clock drift ahead of it, at most max_event_age_ms behind it (from a named height)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger import authoring, errors
from ledger import governance as gov
from ledger.audit import verify_chain
from ledger.events import Event
from ledger.genesis import Parameters
from ledger.keys import SigningKey
from ledger.registry import EventContext
from ledger.state import Overlay
from ledger.store import Store
from tests.helpers import TestNetwork
from tests.ledger.governance.helpers import Chain

DRIFT = Parameters().max_clock_drift_ms
AGE = Parameters().max_event_age_ms


@pytest.fixture
def net() -> TestNetwork:
    """A network with the rule in force from block 1, as `network init` makes one."""
    return TestNetwork(parameters=Parameters())


@pytest.fixture
def chain_store(net: TestNetwork, make_store: Callable[..., Store]) -> Store:
    return make_store(net)


def outcome(net: TestNetwork, store: Store, event: Event, block_ms: int) -> str:
    ctx = EventContext(height=store.height + 1, time_ms=block_ms, chain_id=net.chain_id)
    try:
        Overlay(store).apply(net.registry, event, ctx)
    except errors.LedgerError as exc:
        return exc.code
    return "accepted"


def issued_at(net: TestNetwork, created_ms: int, **kwargs: object) -> Event:
    return net.issue(created_ms=created_ms, **kwargs).event  # type: ignore[arg-type]


def test_the_edges_of_the_window(net: TestNetwork, chain_store: Store) -> None:
    block = net.now_ms + 60_000
    for created, expected in (
        (block, "accepted"),
        (block + DRIFT, "accepted"),
        (block + DRIFT + 1, "created_in_future"),
        (block - AGE, "accepted"),
        (block - AGE - 1, "created_too_long_ago"),
    ):
        assert outcome(net, chain_store, issued_at(net, created), block) == expected, created


@pytest.mark.parametrize(
    ("created", "error"),
    [(0, errors.CreatedTooLongAgo), (2**53 - 1, errors.CreatedInFuture)],
)
def test_the_extremes_that_used_to_pass(
    net: TestNetwork, chain_store: Store, created: int, error: type[errors.LedgerError]
) -> None:
    execution = net.commit_block(chain_store, [issued_at(net, created)])
    assert execution.block.events == ()
    (refused,) = [x for _, x in execution.refused]
    assert type(refused) is error
    assert refused.http_status == 409 and f"created_ms {created}" in refused.message


def test_messages_say_what_to_do(net: TestNetwork, chain_store: Store) -> None:
    block = net.now_ms
    ctx = EventContext(height=1, time_ms=block, chain_id=net.chain_id)
    with pytest.raises(errors.CreatedInFuture) as ahead:
        Overlay(chain_store).apply(net.registry, issued_at(net, block + 60_000), ctx)
    assert "60.0 s after the time of the block" in ahead.value.message
    assert "10 s of clock drift" in ahead.value.message
    assert "check the signing machine's clock" in ahead.value.message
    with pytest.raises(errors.CreatedTooLongAgo) as old:
        Overlay(chain_store).apply(net.registry, issued_at(net, block - 2 * AGE), ctx)
    assert "more than 24 hours before" in old.value.message
    assert "sign it again" in old.value.message


def test_every_kind_of_event_is_bounded(net: TestNetwork, chain_store: Store) -> None:
    issuance = net.issue()
    net.commit_block(chain_store, [issuance.event])
    old = net.now_ms - AGE - 1
    confirm = net.confirm(issuance, created_ms=old)
    number = issuance.event.number
    void = authoring.void(net.chain_id, "BE", number, "lost", net.key("BE"), created_ms=old)
    propose = authoring.propose(
        net.chain_id,
        "BE",
        gov.SUSPEND,
        "RU",
        (),
        chain_store.height + 10,
        net.key("BE"),
        created_ms=old,
    )
    for event in (confirm, void, propose):
        assert outcome(net, chain_store, event, net.tick()) == "created_too_long_ago"


def test_the_signature_is_judged_first(net: TestNetwork, chain_store: Store) -> None:
    """A forged event with a silly time is a forgery first: the refusal says so."""
    forged = issued_at(net, 0, key=SigningKey.from_seed(bytes(32)))
    assert outcome(net, chain_store, forged, net.tick()) == "bad_signature"


def test_the_drift_is_the_networks_parameter(make_store: Callable[..., Store]) -> None:
    net = TestNetwork(parameters=Parameters(max_clock_drift_ms=120_000))
    store = make_store(net)
    block = net.now_ms
    assert outcome(net, store, issued_at(net, block + 100_000), block) == "accepted"
    assert outcome(net, store, issued_at(net, block + 120_001), block) == "created_in_future"


def test_not_in_force_on_an_older_network(make_store: Callable[..., Store]) -> None:
    net = TestNetwork(parameters=Parameters(event_times_from_height=0))
    store = make_store(net)
    execution = net.commit_block(store, [issued_at(net, 0), issued_at(net, 2**53 - 1)])
    assert not execution.refused and len(execution.block.events) == 2
    assert verify_chain(store, net.genesis).ok


def test_governance_brings_the_bounds_into_force(make_store: Callable[..., Store]) -> None:
    net = TestNetwork(parameters=Parameters(event_times_from_height=0))
    c = Chain(net, make_store(net))
    assert not c.commit([issued_at(net, 0)]).refused
    c.enact(gov.SET_PARAMETER, "", ["event_times_from_height", 1])
    later = c.commit([issued_at(net, 0)])
    assert [x.code for _, x in later.refused] == ["created_too_long_ago"]
    with pytest.raises(errors.ParameterOutOfRange, match="never put off"):
        gov.apply_change(
            gov.draft_of(c.registry), gov.SET_PARAMETER, "", ("event_times_from_height", 10**6)
        )
    with pytest.raises(errors.ParameterOutOfRange, match="never switched off"):
        gov.apply_change(
            gov.draft_of(c.registry), gov.SET_PARAMETER, "", ("event_times_from_height", 0)
        )
    assert verify_chain(c.store, net.genesis).ok


def test_max_event_age_ms_is_governed_within_its_range(make_store: Callable[..., Store]) -> None:
    net = TestNetwork(parameters=Parameters())
    c = Chain(net, make_store(net))
    two_days = 2 * 86_400_000
    assert [x.code for _, x in c.commit([issued_at(net, net.now_ms - two_days)]).refused] == [
        "created_too_long_ago"
    ]
    c.enact(gov.SET_PARAMETER, "", ["max_event_age_ms", 3 * 86_400_000])
    assert not c.commit([issued_at(net, net.now_ms - two_days)]).refused
    for value in (60_000, 31 * 86_400_000):
        with pytest.raises(errors.ParameterOutOfRange):
            gov.apply_change(
                gov.draft_of(c.registry), gov.SET_PARAMETER, "", ("max_event_age_ms", value)
            )
