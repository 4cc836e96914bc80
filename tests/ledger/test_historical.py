"""certificate.historical: a participant's account of a certificate from before the network
(docs/rules.md 2.6): its rules, its place in the state machine, proofs, statistics and audit."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ledger import errors
from ledger.audit import verify_chain
from ledger.chain import build_block, validate_block
from ledger.events import HISTORICAL, HISTORICAL_STATUSES, Event
from ledger.genesis import Genesis, Parameters
from ledger.proofs import build_certificate_proof, verify_certificate_proof
from ledger.records import (
    EXPIRED,
    IMPORT_CONFIRMED,
    IMPORT_REJECTED,
    ISSUED,
    STATUSES,
    VOIDED,
    CertificateRecord,
)
from ledger.state import HISTORICAL_STATUS, TRANSITIONS
from ledger.stats import EXPORT, IMPORT, StatKey, contributions
from ledger.store import Store
from tests.helpers import TestNetwork, day_ms
from tests.ledger.test_state import MemoryChain


def _refused(net: TestNetwork, store: Store, events: list[Event]) -> list[str]:
    return [exc.code for _, exc in net.execute(store, events).refused]


def _record(store: Store, number: str) -> CertificateRecord:
    record = store.get_certificate(number)
    assert record is not None
    return record


@pytest.mark.parametrize(
    ("status", "stored"),
    [
        ("confirmed", IMPORT_CONFIRMED),
        ("rejected", IMPORT_REJECTED),
        ("voided", VOIDED),
        ("expired", ISSUED),
    ],
)
def test_a_historical_record_enters_in_its_final_status(
    network: TestNetwork, store: Store, status: str, stored: str
) -> None:
    account = network.historical(status)
    network.commit_block(store, [account.event])
    record = _record(store, account.event.number)
    assert record.status == stored and record.historical
    assert record.accounts == ("BE",)
    assert [h.type for h in record.history] == [HISTORICAL]
    shown = record.effective_status(network.today)
    assert shown == (EXPIRED if status == "expired" else stored)


def test_the_counterparts_account_is_recorded_beside_the_first(
    network: TestNetwork, store: Store
) -> None:
    cert = network.certificate(issued_on="2018-02-01", expires_on="2018-04-01")
    first = network.historical("confirmed", cert)
    network.commit_block(store, [first.event])
    # The importer's account may differ (that is what reconcile shows); the first one stands.
    theirs = network.historical("rejected", cert, signer="AE")
    network.commit_block(store, [theirs.event])
    record = _record(store, cert.number)
    assert record.accounts == ("BE", "AE")
    assert record.status == IMPORT_CONFIRMED
    assert record.digest == first.digest
    assert [h.event_id for h in record.history] == [first.event.event_id, theirs.event.event_id]
    # Each side once: a second account of the same side is refused with its own code, which
    # `kpledger history import` reads as "already on the ledger".
    again = network.historical("confirmed", cert, signer="AE")
    assert _refused(network, store, [again.event]) == ["historical_record_exists"]
    again = network.historical("confirmed", cert)
    assert _refused(network, store, [again.event]) == ["historical_record_exists"]


def test_the_importer_may_record_first(network: TestNetwork, store: Store) -> None:
    cert = network.certificate(issued_on="2018-02-01", expires_on="2018-04-01")
    network.commit_block(store, [network.historical("voided", cert, signer="AE").event])
    network.commit_block(store, [network.historical("voided", cert).event])
    assert _record(store, cert.number).accounts == ("AE", "BE")


def test_two_accounts_of_one_side_in_one_block_are_one(network: TestNetwork, store: Store) -> None:
    cert = network.certificate(issued_on="2018-02-01", expires_on="2018-04-01")
    one, two = network.historical("confirmed", cert), network.historical("confirmed", cert)
    assert _refused(network, store, [one.event, two.event]) == ["historical_record_exists"]


def _expect(net: TestNetwork, store: Store, event: Event, code: str) -> None:
    assert _refused(net, store, [event]) == [code]


def test_the_rules_of_a_historical_record(network: TestNetwork, store: Store) -> None:
    net = network
    # T2: only one of its two participants records it.
    _expect(net, store, net.historical(signer="IN").event, "signer_not_allowed")
    # T4: two different participants.
    cert = net.certificate("BE", "BE", issued_on="2019-01-01", expires_on="2019-02-01")
    _expect(net, store, net.historical(certificate=cert).event, "same_participant")
    # T5: the number's prefix is one of the exporter's countries.
    _expect(net, store, net.historical(number="IN-2019-1").event, "invalid_certificate")
    # T6: not before history_from (2003-01-01 by default).
    _expect(net, store, net.historical(issued_on=date(2002, 12, 31)).event, "backdated_too_far")
    assert _refused(net, store, [net.historical(issued_on=date(2003, 1, 1)).event]) == []
    # T7: not after the date of the block.
    _expect(net, store, net.historical(issued_on=net.today + timedelta(days=2)).event,
            "issued_in_future")  # fmt: skip
    # T8: "expired" only once the expiry date is past.
    recent = net.certificate(
        issued_on=(net.today - timedelta(days=10)).isoformat(),
        expires_on=(net.today + timedelta(days=1)).isoformat(),
    )
    _expect(net, store, net.historical("expired", recent).event, "not_yet_expired")
    # ... while a confirmed one that has not expired yet is history too.
    assert _refused(net, store, [net.historical("confirmed", recent).event]) == []


def test_a_number_issued_on_the_ledger_is_no_history(network: TestNetwork, store: Store) -> None:
    net = network
    live = net.issue()
    net.commit_block(store, [live.event])
    cert = net.certificate(
        number=live.event.number, issued_on="2019-01-01", expires_on="2019-02-01"
    )
    _expect(net, store, net.historical(certificate=cert).event, "certificate_number_taken")
    old = net.historical()
    net.commit_block(store, [old.event])
    reissue = net.issue(number=old.event.number)
    _expect(net, store, reissue.event, "certificate_number_taken")
    # The counterpart's account names the same two participants, or it is another certificate.
    other = net.certificate(
        "BE", "IN", number=old.event.number, issued_on="2019-05-06", expires_on="2019-07-05"
    )
    _expect(net, store, net.historical(certificate=other).event, "certificate_number_taken")


def test_the_parties_are_sealed_exactly_as_for_an_issue(make_network: Any, make_store: Any) -> None:
    net = make_network(extra_recipients=[("BE", "KP-MONITOR")])
    store = make_store(net)
    plain = TestNetwork()  # seals to BE and AE only, as if the register named no extra recipient
    cert = plain.certificate(issued_on="2019-01-01", expires_on="2019-02-01")
    event = plain.historical(certificate=cert, key=net.key("BE")).event
    # The same keys (the same seed): only the recipients differ.
    assert _refused(net, store, [event]) == ["missing_recipient"]
    assert _refused(net, store, [net.historical(certificate=cert).event]) == []


def test_no_event_follows_a_historical_record(network: TestNetwork, store: Store) -> None:
    net = network
    voided = net.historical("voided")
    expired = net.historical("expired")
    net.commit_block(store, [voided.event, expired.event])
    for event in (net.confirm(expired), net.reject(expired), net.void(expired)):
        _expect(net, store, event, "certificate_historical")
    # Nor is a voided historical record replaced: a replacement is a live certificate's.
    _expect(net, store, net.issue(replaces=voided.event.number).event, "replacement_invalid")


def test_a_historical_body_names_a_final_status_and_no_replacement(network: TestNetwork) -> None:
    account = network.historical()
    wire = account.event.body.to_wire()
    body_type = type(account.event.body)
    with pytest.raises(errors.InvalidCertificate, match="status"):
        body_type.from_wire([wire[0], wire[1], "issued"])
    facts = list(wire[0])
    facts[10] = "BE-2018-1"
    with pytest.raises(errors.InvalidCertificate, match="replaces"):
        body_type.from_wire([facts, wire[1], "voided"])
    with pytest.raises(errors.MalformedInput):
        body_type.from_wire(wire[:2])
    assert body_type.from_wire(wire) == account.event.body
    assert set(HISTORICAL_STATUSES) == set(HISTORICAL_STATUS)


def test_history_from_is_a_parameter(make_network: Any, make_store: Any) -> None:
    net = make_network(parameters=Parameters(event_times_from_height=0, history_from=19990301))
    store = make_store(net)
    _expect(net, store, net.historical(issued_on=date(1999, 2, 28)).event, "backdated_too_far")
    assert _refused(net, store, [net.historical(issued_on=date(1999, 3, 1)).event]) == []
    raw = net.genesis.to_json()
    raw["parameters"]["history_from"] = 20030230
    with pytest.raises(errors.MalformedInput, match="history_from"):
        Genesis.from_json(raw)
    # A genesis that does not name it means 2003-01-01, and keeps its hash.
    default = TestNetwork(parameters=Parameters(event_times_from_height=0))
    raw = default.genesis.to_json()
    del raw["parameters"]["history_from"]
    assert Genesis.from_json(raw).hash == default.genesis.hash
    assert Genesis.from_json(raw).parameters.history_from == 20030101


def test_a_historical_proof_checks_and_says_so(network: TestNetwork, store: Store) -> None:
    net = network
    cert = net.certificate(issued_on="2017-08-01", expires_on="2017-10-01")
    net.commit_block(store, [net.historical("expired", cert).event])
    checked = verify_certificate_proof(build_certificate_proof(store, cert.number), net.genesis)
    assert checked.historical and checked.status == ISSUED
    assert checked.history[0][0] == HISTORICAL
    net.commit_block(store, [net.historical("expired", cert, signer="AE").event])
    checked = verify_certificate_proof(build_certificate_proof(store, cert.number), net.genesis)
    assert checked.historical and len(checked.history) == 2
    live = net.issue()
    net.commit_block(store, [live.event])
    checked = verify_certificate_proof(
        build_certificate_proof(store, live.event.number), net.genesis
    )
    assert not checked.historical


def test_a_historical_record_counts_under_its_own_date(network: TestNetwork, store: Store) -> None:
    net = network
    confirmed = net.historical("confirmed", issued_on=date(2011, 11, 30))
    rejected = net.historical("rejected", issued_on=date(2011, 11, 30))
    voided = net.historical("voided", issued_on=date(2011, 11, 30))
    net.commit_block(store, [confirmed.event, rejected.event, voided.event])
    keys = {
        key
        for account in (confirmed, rejected, voided)
        for key, _ in contributions(_record(store, account.event.number))
    }
    assert {(k.year, k.quarter) for k in keys} == {(2011, 4)}
    figures = dict(store.stats(2011, 4))
    hs = {confirmed.event.body.facts.hs_code, rejected.event.body.facts.hs_code}
    exports = sum(f.certificates for k, f in figures.items() if k.role == EXPORT)
    imports = sum(f.certificates for k, f in figures.items() if k.role == IMPORT)
    assert (exports, imports) == (2, 1)  # a voided certificate counts nowhere
    assert all(isinstance(k, StatKey) and k.hs_code in hs for k in figures)


def test_the_audit_replays_historical_records(network: TestNetwork, store: Store) -> None:
    net = network
    cert = net.certificate(issued_on="2016-03-01", expires_on="2016-05-01")
    net.commit_block(store, [net.historical("confirmed", cert).event, net.issue().event])
    net.commit_block(store, [net.historical("confirmed", cert, signer="AE").event])
    report = verify_chain(store, net.genesis)
    assert report.ok, report


# -- the state machine never reaches an illegal state ---------------------------------------------

CODES = ("BE", "AE", "IN")


class HistoricalRecords(RuleBasedStateMachine):
    """Random historical accounts from random signers, mixed with live events naming them."""

    numbers = Bundle("numbers")

    @initialize()
    def start(self) -> None:
        self.net = TestNetwork()
        self.chain = MemoryChain()
        self.pending: list[Event] = []
        #: number -> the status and accounts the first committed account gave it
        self.first: dict[str, tuple[str, str]] = {}

    @rule(target=numbers, exporting=st.sampled_from(CODES), offset=st.sampled_from([1, 2]))
    def new_number(self, exporting: str, offset: int) -> Any:
        importing = CODES[(CODES.index(exporting) + offset) % len(CODES)]
        return (self.net.next_number(exporting), exporting, importing)

    @rule(
        number=numbers,
        status=st.sampled_from(HISTORICAL_STATUSES),
        side=st.sampled_from([0, 0, 1, 1, 2]),
        year=st.sampled_from([2002, 2003, 2015, 2026]),
    )
    def account(self, number: Any, status: str, side: int, year: int) -> None:
        code, exporting, importing = number
        signer = (exporting, importing, "RU")[side]
        issued = date(year, 3, 1)
        cert = self.net.certificate(
            exporting,
            importing,
            number=code,
            issued_on=issued.isoformat(),
            expires_on=(issued + timedelta(days=30)).isoformat(),
        )
        self.pending.append(self.net.historical(status, cert, signer=signer).event)

    @rule(number=numbers, kind=st.sampled_from(["confirm", "reject", "void", "issue"]))
    def live_event(self, number: Any, kind: str) -> None:
        code, exporting, importing = number
        issuance = self.net.issue(self.net.certificate(exporting, importing, number=code))
        event = {
            "issue": issuance.event,
            "confirm": self.net.confirm(issuance),
            "reject": self.net.reject(issuance),
            "void": self.net.void(issuance),
        }[kind]
        self.pending.append(event)

    @precondition(lambda self: self.pending)
    @rule()
    def end_block(self) -> None:
        built = build_block(
            self.chain,
            self.net.registry,
            self.net.genesis.hash,
            self.chain.head,
            self.pending,
            chain_id=self.net.chain_id,
            time_ms=self.net.tick(60_000),
            proposer=0,
        )
        checked = validate_block(
            self.chain, self.net.registry, self.net.genesis.hash, self.chain.head, built.block
        )
        self.chain.commit(checked)
        self.pending = []

    @invariant()
    def only_legal_states(self) -> None:
        for number, record in self.chain.records.items():
            assert record.status in STATUSES
            if not record.historical:
                assert all(h.type != HISTORICAL for h in record.history)
                continue
            # Only historical accounts, one or two, one per party of the certificate.
            assert all(h.type == HISTORICAL for h in record.history)
            assert len(record.accounts) == len(record.history) <= 2
            assert len(set(record.accounts)) == len(record.accounts)
            parties = {record.facts.exporting_participant, record.facts.importing_participant}
            assert set(record.accounts) <= parties
            moves = TRANSITIONS[HISTORICAL]
            assert (None, record.status) in moves and (record.status, record.status) in moves
            # The first account stands: its status never changes.
            first = self.first.setdefault(number, (record.status, record.accounts[0]))
            assert first == (record.status, record.accounts[0])
            assert record.facts.issued_on >= date(2003, 1, 1)


HistoricalRecords.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestHistoricalRecords = HistoricalRecords.TestCase


def test_history_is_published_under_its_own_quarter_by_the_freeze_rules(
    network: TestNetwork, store: Store
) -> None:
    """A closed quarter is published at the first publication after its freeze (the network's
    first block, for quarters long closed); history loaded later changes a published quarter
    only by a revision at the next publication, like any late change (docs/statistics.md)."""
    from ledger.stats import PublicCell, Quarter

    net = network

    def three(day: date) -> list[Event]:
        return [
            net.historical("confirmed", issued_on=day + timedelta(days=i), hs_code="7102.10").event
            for i in range(3)
        ]

    net.commit_block(store, three(date(2011, 11, 1)))  # 2026-03-02: 2025 Q4 and before are due
    first = store.published(Quarter(2011, 4))
    assert first[PublicCell(EXPORT, "BE", "7102.10")].figures.certificates == 3
    assert first[PublicCell(IMPORT, "AE", "7102.10")].figures.certificates == 3
    net.commit_block(store, three(date(2012, 1, 10)))
    assert store.published(Quarter(2012, 1)) == {}  # waits for the next publication
    net.commit_block(store, [], time_ms=day_ms(date(2026, 5, 1), hour=1))  # 2026 Q1's
    revised = store.published(Quarter(2012, 1))[PublicCell(EXPORT, "BE", "7102.10")]
    assert revised.figures.certificates == 3 and revised.height == 3


def test_governance_may_move_history_from_to_a_calendar_date() -> None:
    from ledger.governance.changes import check_parameter

    moved = check_parameter(Parameters(), "history_from", 19990301)
    assert moved.history_from_date() == date(1999, 3, 1)
    for value in (20030230, 20031301, 18991231):
        with pytest.raises(errors.ParameterOutOfRange):
            check_parameter(Parameters(), "history_from", value)
