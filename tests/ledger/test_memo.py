"""Values an event computes once (ledger/memo.py) are the values the functions give, byte for byte."""

from __future__ import annotations

from ledger.block import events_root
from ledger.certificate import certificate_digest
from ledger.encoding import encode
from ledger.events import IssueBody, event_leaf
from ledger.memo import once
from ledger.merkle import merkle_root
from tests.helpers import TestNetwork


def test_once_computes_a_value_once_per_object() -> None:
    calls: list[int] = []

    class Thing:
        def __init__(self, n: int) -> None:
            self.n = n

        @once
        def double(self) -> int:
            calls.append(self.n)
            return 2 * self.n

    a, b = Thing(1), Thing(5)
    assert (a.double, a.double, b.double, b.double) == (2, 2, 10, 10)
    assert calls == [1, 5]
    assert isinstance(Thing.__dict__["double"], once)


def test_an_events_leaf_is_its_event_leaf() -> None:
    net = TestNetwork()
    issued = net.issue()
    event = issued.event
    confirm = net.confirm(issued)
    for e in (event, confirm):
        assert e.leaf == event_leaf(e.event_id, e.type, e.number)
        assert e.leaf == encode([e.event_id, e.type, e.number])
    assert events_root([event, confirm]) == merkle_root([event.leaf, confirm.leaf])


def test_an_issuances_digest_is_its_certificates_digest() -> None:
    net = TestNetwork()
    issued = net.issue()
    body = issued.event.body
    assert isinstance(body, IssueBody)
    assert body.digest == certificate_digest(body.facts, body.sealed.commitment)
    assert body.digest == issued.digest
    historical = net.historical().event.body
    assert historical.digest == certificate_digest(historical.facts, historical.sealed.commitment)


def test_recipient_names_are_recipients_fors_names() -> None:
    net = TestNetwork(extra_recipients=[("BE", "MONITOR")])
    registry = net.registry
    for exporting, importing in (("BE", "AE"), ("AE", "BE"), ("BE", "BE")):
        names = registry.recipient_names(exporting, importing)
        assert names == {name for name, _ in registry.recipients_for(exporting, importing)}
        assert registry.recipient_names(exporting, importing) is names  # kept
    assert "MONITOR" in registry.recipient_names("BE", "AE")
    assert "MONITOR" not in registry.recipient_names("AE", "BE")
    sealed = net.issue().event.body.sealed
    assert sealed.recipient_names == frozenset(sealed.recipients)
