"""The certificate state machine: every rule refused with its own error, changing nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from ledger import errors
from ledger.block import Block, Header, events_root
from ledger.chain import Execution, build_block, validate_block
from ledger.confidential import seal
from ledger.errors import (
    DigestMismatch,
    InvalidBlock,
    LedgerError,
    MissingRecipient,
    UnexpectedRecipient,
    WrongChain,
    ZoneNotApproved,
)
from ledger.events import CONFIRM_IMPORT, ISSUE, REJECT_IMPORT, VOID, Event, IssueBody, sign_event
from ledger.genesis import Parameters
from ledger.keys import SigningKey
from ledger.records import (
    IMPORT_CONFIRMED,
    IMPORT_REJECTED,
    ISSUED,
    STATUSES,
    VOIDED,
    CertificateRecord,
    state_key,
)
from ledger.registry import EventContext
from ledger.state import TRANSITIONS, Overlay, date_of
from ledger.statetree import EMPTY, MemoryNodeStore, StateTree
from ledger.store import Store
from tests.helpers import ISSUED_ON, VALIDITY_DAYS, TestNetwork, day_ms

Case = Callable[[TestNetwork, Store], tuple[Event, int | None]]
CASES: dict[str, tuple[Case, type[LedgerError]]] = {}


def case(error: type[LedgerError]) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[fn.__name__] = (fn, error)
        return fn

    return register


# -- issue --------------------------------------------------------------------------------


@case(errors.SignerNotAllowed)
def issue_signed_by_another_participant(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(exporting="BE", importing="AE", signer="IN").event, None


@case(errors.SignerNotAllowed)
def issue_signed_by_the_importer(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(exporting="BE", importing="AE", signer="AE").event, None


@case(errors.SignedByAnotherParticipant)
def issue_signed_with_another_participants_key(
    net: TestNetwork, store: Store
) -> tuple[Event, None]:
    return net.issue(exporting="BE", importing="AE", key=net.key("AE")).event, None


@case(errors.SignedWithNodeKey)
def issue_signed_with_the_exporters_node_key(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(exporting="BE", importing="AE", key=net.members["BE"].node).event, None


@case(errors.BadSignature)
def issue_signed_with_an_unregistered_key(net: TestNetwork, store: Store) -> tuple[Event, None]:
    stranger = SigningKey.from_seed(bytes(32))
    return net.issue(exporting="BE", importing="AE", key=stranger).event, None


@case(errors.IssuedInFuture)
def issue_dated_after_the_block(net: TestNetwork, store: Store) -> tuple[Event, None]:
    tomorrow = net.today + timedelta(days=1)
    return net.issue(issued_on=tomorrow.isoformat()).event, None


@case(errors.BackdatedTooFar)
def issue_dated_too_long_before_the_block(net: TestNetwork, store: Store) -> tuple[Event, None]:
    early = net.today - timedelta(days=Parameters().max_backdating_days + 1)
    return net.issue(issued_on=early.isoformat()).event, None


@case(errors.ExpiredOnIssue)
def issue_already_expired(net: TestNetwork, store: Store) -> tuple[Event, None]:
    yesterday = net.today - timedelta(days=1)
    return net.issue(issued_on=yesterday.isoformat(), expires_on=yesterday.isoformat()).event, None


@case(errors.BadSignature)
def issue_with_a_corrupted_signature(net: TestNetwork, store: Store) -> tuple[Event, None]:
    event = net.issue().event
    forged = event.encoded[:-1] + bytes([event.encoded[-1] ^ 1])
    return Event.decode(forged), None


@case(errors.UnknownParticipant)
def issue_by_an_unknown_participant(net: TestNetwork, store: Store) -> tuple[Event, None]:
    cert = net.certificate("BE", "AE")
    sealed = seal(cert.identities, bytes(32), cert.number, [("BE", net.key("BE").public_bytes)])
    event = sign_event(net.chain_id, "ZA", IssueBody(cert.facts, sealed), SigningKey.generate(), 1)
    return event, None


@case(errors.UnknownParticipant)
def issue_to_an_unknown_participant(net: TestNetwork, store: Store) -> tuple[Event, None]:
    cert = net.certificate("BE", "CA")
    recipients = [("BE", net.members["BE"].encryption.public_bytes)]
    sealed = seal(cert.identities, bytes(32), cert.number, recipients)
    return sign_event(net.chain_id, "BE", IssueBody(cert.facts, sealed), net.key("BE"), 1), None


@case(errors.ParticipantNotActive)
def issue_to_a_suspended_participant(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(exporting="BE", importing="RU").event, None


@case(errors.ParticipantNotActive)
def issue_by_a_suspended_participant(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(exporting="RU", importing="BE").event, None


@case(errors.SameParticipant)
def issue_to_oneself(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(exporting="BE", importing="BE").event, None


@case(errors.CertificateNumberTaken)
def issue_a_number_already_issued(net: TestNetwork, store: Store) -> tuple[Event, None]:
    first = net.issue(exporting="BE", importing="AE")
    net.commit_block(store, [first.event])
    return net.issue(exporting="BE", importing="IN", number=first.event.number).event, None


@case(errors.CertificateNumberTaken)
def issue_a_voided_number_again(net: TestNetwork, store: Store) -> tuple[Event, None]:
    first = net.issue(exporting="BE", importing="AE")
    net.commit_block(store, [first.event, net.void(first)])
    return net.issue(exporting="BE", importing="AE", number=first.event.number).event, None


@case(errors.InvalidCertificate)
def issue_with_another_participants_prefix(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(exporting="BE", importing="AE", number="AE-2026-000001").event, None


@case(errors.ValidityTooLong)
def issue_valid_for_too_long(net: TestNetwork, store: Store) -> tuple[Event, None]:
    expires = ISSUED_ON + timedelta(days=Parameters().max_validity_days + 1)
    return net.issue(expires_on=expires.isoformat()).event, None


@case(MissingRecipient)
def issue_sealed_to_the_exporter_only(net: TestNetwork, store: Store) -> tuple[Event, None]:
    cert = net.certificate("BE", "AE")
    recipients = [("BE", net.members["BE"].encryption.public_bytes)]
    sealed = seal(cert.identities, bytes(32), cert.number, recipients)
    return sign_event(net.chain_id, "BE", IssueBody(cert.facts, sealed), net.key("BE"), 1), None


def _sealed_with_extra_boxes(net: TestNetwork, extra: list[tuple[str, bytes]]) -> Event:
    cert = net.certificate("BE", "AE")
    recipients = net.registry.recipients_for("BE", "AE") + extra
    sealed = seal(cert.identities, bytes(32), cert.number, recipients)
    return sign_event(net.chain_id, "BE", IssueBody(cert.facts, sealed), net.key("BE"), 1)


@case(UnexpectedRecipient)
def issue_sealed_to_a_made_up_recipient_too(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return _sealed_with_extra_boxes(
        net, [("ZZ-MONITOR", net.members["IN"].encryption.public_bytes)]
    ), None


@case(UnexpectedRecipient)
def issue_sealed_to_a_participant_not_party_to_it(
    net: TestNetwork, store: Store
) -> tuple[Event, None]:
    return _sealed_with_extra_boxes(net, [("IN", net.members["IN"].encryption.public_bytes)]), None


@case(errors.ReplacementInvalid)
def issue_replacing_an_unknown_number(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.issue(replaces="BE-2026-999999").event, None


@case(errors.ReplacementInvalid)
def issue_replacing_a_certificate_in_force(net: TestNetwork, store: Store) -> tuple[Event, None]:
    first = net.issue()
    net.commit_block(store, [first.event])
    return net.issue(replaces=first.event.number).event, None


@case(errors.ReplacementInvalid)
def issue_replacing_another_issuers_number(net: TestNetwork, store: Store) -> tuple[Event, None]:
    theirs = net.issue(exporting="AE", importing="IN")
    net.commit_block(store, [theirs.event, net.void(theirs)])
    return net.issue(exporting="BE", importing="IN", replaces=theirs.event.number).event, None


@case(errors.ReplacementInvalid)
def issue_replacing_twice(net: TestNetwork, store: Store) -> tuple[Event, None]:
    first = net.issue()
    net.commit_block(store, [first.event, net.void(first, "replaced")])
    net.commit_block(store, [net.issue(replaces=first.event.number).event])
    return net.issue(replaces=first.event.number).event, None


@case(WrongChain)
def issue_for_another_chain(net: TestNetwork, store: Store) -> tuple[Event, None]:
    other = TestNetwork(chain_id="kp-other")
    return other.issue().event, None


@case(ZoneNotApproved)
def issue_by_a_restricted_participant_without_a_zone(
    net: TestNetwork, store: Store
) -> tuple[Event, None]:
    return net.issue(exporting="IN", importing="AE").event, None


# -- confirm and reject ----------------------------------------------------------------------


def _issued(net: TestNetwork, store: Store, *extra: Callable[[Any], Event]) -> Any:
    issuance = net.issue(exporting="BE", importing="AE")
    net.commit_block(store, [issuance.event, *(make(issuance) for make in extra)])
    return issuance


@case(errors.CertificateNotFound)
def confirm_an_unknown_certificate(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(net.issue()), None


@case(errors.SignerNotAllowed)
def confirm_by_a_third_participant(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store), signer="IN"), None


@case(errors.SignerNotAllowed)
def confirm_by_the_exporter(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store), signer="BE"), None


@case(errors.SignedByAnotherParticipant)
def confirm_signed_with_the_exporters_key(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store), key=net.key("BE")), None


@case(errors.SignedByAnotherParticipant)
def confirm_signed_with_a_third_participants_key(
    net: TestNetwork, store: Store
) -> tuple[Event, None]:
    return net.confirm(_issued(net, store), key=net.key("RU")), None


@case(errors.SignedWithNodeKey)
def confirm_signed_with_the_importers_node_key(
    net: TestNetwork, store: Store
) -> tuple[Event, None]:
    return net.confirm(_issued(net, store), key=net.members["AE"].node), None


@case(errors.BadSignature)
def confirm_signed_with_an_unregistered_key(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store), key=SigningKey.from_seed(bytes(32))), None


@case(errors.CertificateVoided)
def confirm_a_voided_certificate(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store, net.void)), None


@case(errors.ImportAlreadyDecided)
def confirm_twice(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store, net.confirm)), None


@case(errors.ImportAlreadyDecided)
def confirm_after_rejection(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store, net.reject)), None


@case(errors.CertificateExpired)
def confirm_after_expiry(net: TestNetwork, store: Store) -> tuple[Event, int]:
    issuance = _issued(net, store)
    late = day_ms(ISSUED_ON + timedelta(days=VALIDITY_DAYS + 1), hour=0)
    return net.confirm(issuance), late


@case(DigestMismatch)
def confirm_another_document(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.confirm(_issued(net, store), digest=bytes(32)), None


@case(errors.SignerNotAllowed)
def reject_by_a_third_participant(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.reject(_issued(net, store), signer="RU"), None


@case(errors.SignedWithNodeKey)
def reject_signed_with_a_validators_node_key(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.reject(_issued(net, store), key=net.members["IN"].node), None


@case(errors.CertificateVoided)
def reject_a_voided_certificate(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.reject(_issued(net, store, net.void)), None


@case(errors.ImportAlreadyDecided)
def reject_after_confirmation(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.reject(_issued(net, store, net.confirm)), None


@case(errors.ImportAlreadyDecided)
def reject_twice(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.reject(_issued(net, store, net.reject), "second thoughts"), None


@case(DigestMismatch)
def reject_another_document(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.reject(_issued(net, store), digest=bytes(32)), None


@case(errors.CertificateNotFound)
def reject_an_unknown_certificate(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.reject(net.issue()), None


# -- void -----------------------------------------------------------------------------------


@case(errors.CertificateNotFound)
def void_an_unknown_certificate(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.void(net.issue()), None


@case(errors.SignerNotAllowed)
def void_by_the_importer(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.void(_issued(net, store), signer="AE"), None


@case(errors.SignedByAnotherParticipant)
def void_signed_with_the_importers_key(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.void(_issued(net, store), key=net.key("AE")), None


@case(errors.CertificateVoided)
def void_twice(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.void(_issued(net, store, net.void), "stolen"), None


@case(errors.ImportAlreadyDecided)
def void_after_confirmation(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.void(_issued(net, store, net.confirm)), None


@case(errors.ImportAlreadyDecided)
def void_after_rejection(net: TestNetwork, store: Store) -> tuple[Event, None]:
    return net.void(_issued(net, store, net.reject)), None


# -- the same event twice -------------------------------------------------------------------


@case(errors.DuplicateEvent)
def issue_submitted_again(net: TestNetwork, store: Store) -> tuple[Event, None]:
    issuance = _issued(net, store)
    return issuance.event, None


@case(errors.DuplicateEvent)
def confirm_submitted_again(net: TestNetwork, store: Store) -> tuple[Event, None]:
    issuance = net.issue()
    confirmation = net.confirm(issuance)
    net.commit_block(store, [issuance.event, confirmation])
    return confirmation, None


def _case_network(name: str) -> TestNetwork:
    if "suspended" in name:
        return TestNetwork(suspended=["RU"])
    if "restricted" in name:
        net = TestNetwork()
        india = net.registry.participants["IN"]
        restricted = dataclasses.replace(
            india, restricted_zones=("ZONE-A",), monitoring_key=bytes(32)
        )
        net.registry = dataclasses.replace(
            net.registry, participants={**net.registry.participants, "IN": restricted}
        )
        return net
    return TestNetwork()


def _snapshot(store: Store) -> dict[bytes, bytes]:
    return dict(store.kv.items())


def _overlay_state(overlay: Overlay) -> tuple[Any, ...]:
    return dict(overlay.certificates), dict(overlay.events), list(overlay.order)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rule_is_refused_with_its_own_error_and_changes_nothing(
    name: str, make_store: Callable[..., Store]
) -> None:
    make, expected = CASES[name]
    net = _case_network(name)
    store = make_store(net)
    bad, time_ms = make(net, store)
    time_ms = time_ms if time_ms is not None else net.tick()
    ctx = EventContext(height=store.height + 1, time_ms=time_ms, chain_id=net.chain_id)

    # In a block being built that already holds an accepted event.
    overlay = Overlay(store)
    day = date_of(time_ms)
    filler = net.issue(
        exporting="AE",
        importing="IN",
        issued_on=day.isoformat(),
        expires_on=(day + timedelta(days=VALIDITY_DAYS)).isoformat(),
    )
    overlay.apply(net.registry, filler.event, ctx)
    before_store, before_overlay = _snapshot(store), _overlay_state(overlay)
    with pytest.raises(LedgerError) as caught:
        overlay.apply(net.registry, bad, ctx)
    assert type(caught.value) is expected, caught.value
    assert caught.value.code == expected.code
    assert caught.value.message
    assert _overlay_state(overlay) == before_overlay
    assert _snapshot(store) == before_store

    # A proposer drops it, naming the same error, and the block changes nothing.
    built = build_block(
        store,
        net.registry,
        net.genesis.hash,
        store.head,
        [bad],
        chain_id=net.chain_id,
        time_ms=time_ms,
        proposer=0,
    )
    assert [(e.event_id, type(x)) for e, x in built.refused] == [(bad.event_id, expected)]
    assert built.block.events == () and built.records == {} and built.tree_writes == {}
    assert built.header.state_root == store.state_root
    assert _snapshot(store) == before_store

    # A block that holds it anyway is invalid as a whole.
    forged = Block(
        dataclasses.replace(built.header, events_root=events_root([bad]), event_count=1),
        (bad,),
    )
    with pytest.raises(InvalidBlock, match=expected.code):
        validate_block(store, net.registry, net.genesis.hash, store.head, forged)
    assert _snapshot(store) == before_store


def test_the_state_machine_moves_only_as_its_transition_table_says(
    network: TestNetwork, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TRANSITIONS is the truth: a move the table does not list is refused, whatever the rules."""
    net = network
    kept, voided = net.issue(), net.issue()
    net.commit_block(store, [kept.event, voided.event])
    monkeypatch.setitem(TRANSITIONS, VOID, ((IMPORT_CONFIRMED, VOIDED),))
    refused = net.execute(store, [net.void(voided)]).refused
    assert [type(exc) for _, exc in refused] == [errors.ImportAlreadyDecided]
    monkeypatch.setitem(TRANSITIONS, CONFIRM_IMPORT, ((ISSUED, IMPORT_REJECTED),))
    net.commit_block(store, [net.confirm(kept)])
    record = store.get_certificate(kept.event.number)
    assert record is not None and record.status == IMPORT_REJECTED


# -- what is allowed ----------------------------------------------------------------------


def test_lifecycles(network: TestNetwork, store: Store) -> None:
    net = network
    confirmed, rejected, voided = net.issue(), net.issue(), net.issue()
    net.commit_block(store, [confirmed.event, rejected.event, voided.event])
    net.commit_block(
        store, [net.confirm(confirmed), net.reject(rejected, "broken seal"), net.void(voided)]
    )
    statuses = {
        i.event.number: store.get_certificate(i.event.number).status  # type: ignore[union-attr]
        for i in (confirmed, rejected, voided)
    }
    assert list(statuses.values()) == [IMPORT_CONFIRMED, IMPORT_REJECTED, VOIDED]
    record = store.get_certificate(rejected.event.number)
    assert record is not None and record.reason == "broken seal"
    assert [h.height for h in record.history] == [1, 2]


def test_replacement_names_the_voided_certificate(network: TestNetwork, store: Store) -> None:
    net = network
    old = net.issue()
    net.commit_block(store, [old.event, net.void(old, "replaced")])
    new = net.issue(replaces=old.event.number)
    execution = net.commit_block(store, [new.event])
    assert set(execution.records) == {old.event.number, new.event.number}
    replaced = store.get_certificate(old.event.number)
    assert replaced is not None and replaced.replaced_by == new.event.number
    assert replaced.status == VOIDED


def test_rejection_and_void_after_expiry_are_allowed(network: TestNetwork, store: Store) -> None:
    net = network
    a, b = net.issue(), net.issue()
    net.commit_block(store, [a.event, b.event])
    late = day_ms(ISSUED_ON + timedelta(days=VALIDITY_DAYS + 30))
    net.commit_block(store, [net.reject(a, "certificate expired"), net.void(b)], time_ms=late)
    record = store.get_certificate(a.event.number)
    assert record is not None and record.status == IMPORT_REJECTED
    assert record.effective_status(date_of(late)) == IMPORT_REJECTED


def test_confirmation_on_the_expiry_day_is_allowed(network: TestNetwork, store: Store) -> None:
    net = network
    issuance = net.issue()
    net.commit_block(store, [issuance.event])
    last_day = day_ms(ISSUED_ON + timedelta(days=VALIDITY_DAYS), hour=23)
    net.commit_block(store, [net.confirm(issuance)], time_ms=last_day)
    record = store.get_certificate(issuance.event.number)
    assert record is not None and record.status == IMPORT_CONFIRMED


def test_an_issued_certificate_expires_by_its_dates(network: TestNetwork, store: Store) -> None:
    issuance = network.issue()
    network.commit_block(store, [issuance.event])
    record = store.get_certificate(issuance.event.number)
    assert record is not None
    expiry = ISSUED_ON + timedelta(days=VALIDITY_DAYS)
    assert record.effective_status(expiry) == ISSUED
    assert record.effective_status(expiry + timedelta(days=1)) == "expired"


def test_the_same_event_twice_in_one_block_is_recorded_once(
    network: TestNetwork, store: Store
) -> None:
    net = network
    issuance = net.issue()
    confirmation = net.confirm(issuance)
    execution = net.commit_block(
        store, [issuance.event, issuance.event, confirmation, confirmation]
    )
    assert [e.event_id for e in execution.block.events] == [
        issuance.event.event_id,
        confirmation.event_id,
    ]
    assert {type(x) for _, x in execution.refused} == {errors.DuplicateEvent}
    record = store.get_certificate(issuance.event.number)
    assert record is not None and len(record.history) == 2
    # And again in a later block: refused as a duplicate, the record untouched.
    again = net.commit_block(store, [issuance.event, confirmation])
    assert again.block.events == ()
    assert [type(x) for _, x in again.refused] == [errors.DuplicateEvent] * 2
    assert store.get_certificate(issuance.event.number) == record


# -- random sequences against an independent reference model ---------------------------


class MemoryChain:
    """Committed state in dicts: what a node's store holds, minus LevelDB."""

    def __init__(self) -> None:
        self.records: dict[str, CertificateRecord] = {}
        self.events: set[bytes] = set()
        self.nodes = MemoryNodeStore()
        self.head: Header | None = None

    def get_certificate(self, number: str) -> CertificateRecord | None:
        return self.records.get(number)

    def has_event(self, event_id: bytes) -> bool:
        return event_id in self.events

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self.nodes.get_node(node_hash)

    def commit(self, execution: Execution) -> None:
        self.records.update(execution.records)
        self.events.update(e.event_id for e in execution.block.events)
        self.nodes.apply(execution.tree_writes)
        self.head = execution.header


@dataclasses.dataclass
class ModelCert:
    number: str
    exporting: str
    importing: str
    digest: bytes
    expires_ms: int  # the first block time at which it has expired
    status: str
    replaced: bool = False


class ReferenceModel:
    """The rules of SPEC section 3, re-implemented plainly, in the order the ledger checks them."""

    def __init__(self, net: TestNetwork) -> None:
        self.net = net
        self.certs: dict[str, ModelCert] = {}
        self.seen: set[bytes] = set()

    def predict(self, event: Event, key_owner: str, time_ms: int) -> str | None:
        """The error code the ledger must answer, or None when the event applies."""
        participants = self.net.registry.participants
        if event.event_id in self.seen:
            return "duplicate_event"
        if event.signer not in participants:
            return "unknown_participant"
        if key_owner == STRANGER:
            return "bad_signature"
        if key_owner.endswith(NODE):
            return "signed_with_node_key"
        if key_owner != event.signer:
            return "signed_by_another_participant"
        if event.type == ISSUE:
            facts = event.body.facts
            if event.signer != facts.exporting_participant:
                return "signer_not_allowed"
            if facts.importing_participant not in participants:
                return "unknown_participant"
            if facts.exporting_participant == facts.importing_participant:
                return "same_participant"
            if facts.prefix not in participants[facts.exporting_participant].countries:
                return "invalid_certificate"
            if (facts.expires_on - facts.issued_on).days > 180:
                return "validity_too_long"
            recorded_on = date_of(time_ms)
            if facts.issued_on > recorded_on:
                return "issued_in_future"
            if (recorded_on - facts.issued_on).days > 7:
                return "backdated_too_far"
            if facts.expires_on < recorded_on:
                return "expired_on_issue"
            if facts.number in self.certs:
                return "certificate_number_taken"
            if facts.replaces is not None:
                old = self.certs.get(facts.replaces)
                if old is None or old.exporting != facts.exporting_participant:
                    return "replacement_invalid"
                if old.status != VOIDED or old.replaced:
                    return "replacement_invalid"
            return None
        cert = self.certs.get(event.number)
        if cert is None:
            return "certificate_not_found"
        if event.type == VOID:
            if event.signer != cert.exporting:
                return "signer_not_allowed"
            if cert.status == VOIDED:
                return "certificate_voided"
            if cert.status != ISSUED:
                return "import_already_decided"
            return None
        if event.signer != cert.importing:
            return "signer_not_allowed"
        if cert.status == VOIDED:
            return "certificate_voided"
        if cert.status != ISSUED:
            return "import_already_decided"
        if event.body.certificate_digest != cert.digest:
            return "digest_mismatch"
        if event.type == CONFIRM_IMPORT and time_ms >= cert.expires_ms:
            return "certificate_expired"
        return None

    def apply(self, event: Event, digest: bytes | None) -> None:
        self.seen.add(event.event_id)
        if event.type == ISSUE:
            facts = event.body.facts
            assert digest is not None
            self.certs[facts.number] = ModelCert(
                facts.number,
                facts.exporting_participant,
                facts.importing_participant,
                digest,
                day_ms(facts.expires_on + timedelta(days=1), hour=0),
                ISSUED,
            )
            if facts.replaces is not None:
                self.certs[facts.replaces].replaced = True
            return
        new_status = {CONFIRM_IMPORT: IMPORT_CONFIRMED, REJECT_IMPORT: IMPORT_REJECTED}
        self.certs[event.number].status = new_status.get(event.type, VOIDED)


CODES = ("BE", "AE", "IN", "RU")
#: Key owners besides the participants' authority keys: a key the register does not list, and
#: a participant's node key ("AE/node").
STRANGER = "stranger"
NODE = "/node"


def signing_key(net: TestNetwork, owner: str) -> SigningKey:
    if owner == STRANGER:
        return SigningKey.from_seed(bytes(32))
    if owner.endswith(NODE):
        return net.members[owner.removesuffix(NODE)].node
    return net.key(owner)


class CertificateLifecycles(RuleBasedStateMachine):
    """Random events by random signers, in random blocks, against the reference model."""

    issuances = Bundle("issuances")

    @initialize()
    def start(self) -> None:
        self.net = TestNetwork()
        self.chain = MemoryChain()
        self.model = ReferenceModel(self.net)
        # (event, whose key signed it, the digest an issue implies)
        self.pending: list[tuple[Event, str, bytes | None]] = []
        self.submitted: list[tuple[Event, str, bytes | None]] = []

    def _submit(self, event: Event, key_owner: str, digest: bytes | None = None) -> None:
        self.pending.append((event, key_owner, digest))
        self.submitted.append((event, key_owner, digest))

    @rule(
        target=issuances,
        exporting=st.sampled_from(CODES),
        # Mostly another participant; now and then itself.
        offset=st.sampled_from([1, 1, 2, 2, 3, 3, 0]),
        days=st.sampled_from([0, 1, 30, 60, 90, 180, 181]),
        # Dated on the network's day, or some days before or after it.
        dated=st.sampled_from([0, 0, 0, -1, -7, -8, -30, 1]),
        forged=st.integers(0, 11),
        foreign_prefix=st.integers(0, 9),
        end_block=st.booleans(),
    )
    def issue(
        self,
        exporting: str,
        offset: int,
        days: int,
        dated: int,
        forged: int,
        foreign_prefix: int,
        end_block: bool,
    ) -> Any:
        net = self.net
        importing = CODES[(CODES.index(exporting) + offset) % len(CODES)]
        key_owner = {0: "AE", 1: STRANGER, 2: exporting + NODE}.get(forged, exporting)
        issued_on = date_of(net.now_ms) + timedelta(days=dated)
        number = net.next_number(exporting)
        if foreign_prefix == 0:
            number = "IN" + number[2:]
        issuance = net.issue(
            net.certificate(
                exporting,
                importing,
                number=number,
                issued_on=issued_on.isoformat(),
                expires_on=(issued_on + timedelta(days=days)).isoformat(),
            ),
            signer=exporting,
            key=signing_key(net, key_owner),
        )
        self._submit(issuance.event, key_owner, issuance.digest)
        if end_block:
            self.end_block(0)
        return issuance

    @rule(old=issuances, offset=st.sampled_from([1, 2, 3, 0]), reuse=st.booleans())
    def issue_replacement_or_reuse_number(self, old: Any, offset: int, reuse: bool) -> None:
        """Replace an earlier certificate (legal once it is voided) or reuse its number."""
        net = self.net
        exporting = old.event.body.facts.exporting_participant
        if offset == 0:
            exporting = CODES[(CODES.index(exporting) + 1) % len(CODES)]
        importing = CODES[(CODES.index(exporting) + max(offset, 1)) % len(CODES)]
        today = date_of(net.now_ms).isoformat()
        fields: dict[str, Any] = {"issued_on": today, "expires_on": today}
        if reuse and old.event.number[:2] in net.members[exporting].countries:
            fields["number"] = old.event.number
        else:
            fields["replaces"] = old.event.number
        issuance = net.issue(net.certificate(exporting, importing, **fields))
        self._submit(issuance.event, exporting, issuance.digest)

    @rule(
        issuance=issuances,
        kind=st.sampled_from([CONFIRM_IMPORT, REJECT_IMPORT, VOID]),
        signer=st.sampled_from([None, None, None, None, *CODES]),
        wrong_digest=st.integers(0, 9),
        forged=st.integers(0, 11),
    )
    def decide(
        self, issuance: Any, kind: str, signer: str | None, wrong_digest: int, forged: int
    ) -> None:
        net = self.net
        facts = issuance.event.body.facts
        digest = bytes(32) if wrong_digest == 0 and kind != VOID else None
        signer = signer or (
            facts.exporting_participant if kind == VOID else facts.importing_participant
        )
        key_owner = {0: "RU", 1: STRANGER, 2: signer + NODE}.get(forged, signer)
        key = signing_key(net, key_owner)
        if kind == CONFIRM_IMPORT:
            event = net.confirm(issuance, signer=signer, digest=digest, key=key)
        elif kind == REJECT_IMPORT:
            event = net.reject(issuance, signer=signer, digest=digest, key=key)
        else:
            event = net.void(issuance, signer=signer, key=key)
        self._submit(event, key_owner)

    @rule(data=st.data())
    def resubmit(self, data: st.DataObject) -> None:
        if self.submitted:
            self.pending.append(data.draw(st.sampled_from(self.submitted)))

    @rule(days=st.sampled_from([0, 1, 31, 200]))
    def end_block(self, days: int) -> None:
        time_ms = self.net.tick(1000 + days * 86_400_000)
        candidates = [event for event, _, _ in self.pending]
        built = build_block(
            self.chain,
            self.net.registry,
            self.net.genesis.hash,
            self.chain.head,
            candidates,
            chain_id=self.net.chain_id,
            time_ms=time_ms,
            proposer=0,
        )
        # Refusals come in the order of the candidates; so must the model's.
        refused = [(event.event_id, exc.code) for event, exc in built.refused]
        predicted = []
        for event, key_owner, digest in self.pending:
            expected = self.model.predict(event, key_owner, time_ms)
            if expected is None:
                self.model.apply(event, digest)
            else:
                predicted.append((event.event_id, expected))
        assert refused == predicted
        checked = validate_block(
            self.chain, self.net.registry, self.net.genesis.hash, self.chain.head, built.block
        )
        assert checked.header == built.header
        self.chain.commit(checked)
        self.pending = []

    @invariant()
    def only_legal_transitions(self) -> None:
        for record in self.chain.records.values():
            assert record.status in STATUSES
            status: str | None = None
            for entry in record.history:
                moves = dict(TRANSITIONS[entry.type])
                assert status in moves, (record.number, status, entry.type)
                status = moves[status]
            assert status == record.status

    @invariant()
    def agrees_with_the_model(self) -> None:
        committed = {n: r.status for n, r in self.chain.records.items()}
        modelled = {n: c.status for n, c in self.model.certs.items()}
        assert committed == modelled
        replaced = {n for n, r in self.chain.records.items() if r.replaced_by}
        assert replaced == {n for n, c in self.model.certs.items() if c.replaced}

    @invariant()
    def state_root_is_a_function_of_the_records(self) -> None:
        if self.chain.head is None:
            return
        fresh = StateTree(MemoryNodeStore(), EMPTY).update(
            {state_key(n): r.leaf_value() for n, r in self.chain.records.items()}
        )[0]
        assert fresh == self.chain.head.state_root


CertificateLifecycles.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCertificateLifecycles = CertificateLifecycles.TestCase


def test_an_issuance_carries_exactly_the_boxes_the_register_requires(network: TestNetwork) -> None:
    """Seven 8 KiB boxes for made-up recipients were accepted (issue 12): no more, no fewer."""
    from ledger.confidential import MAX_BOXES, SealedIdentities

    padding = [(f"X{i}", network.members["IN"].encryption.public_bytes) for i in range(7)]
    event = _sealed_with_extra_boxes(network, padding)
    overlay = Overlay(_EmptyReader())
    ctx = EventContext(height=1, time_ms=network.tick(), chain_id=network.chain_id)
    with pytest.raises(UnexpectedRecipient, match="X0, X1"):
        overlay.apply(network.registry, event, ctx)
    # The exact set is accepted.
    overlay.apply(network.registry, network.issue().event, ctx)
    # Boxes of unequal length cannot all seal the one plaintext: refused when decoded.
    good = network.issue().event.body.sealed.to_wire()
    commitment, boxes = good
    boxes[1][1] = boxes[1][1] + bytes(16)
    with pytest.raises(errors.MalformedInput, match="one length"):
        SealedIdentities.from_wire([commitment, boxes])
    assert len(network.registry.recipients_for("BE", "AE")) <= MAX_BOXES


class _EmptyReader:
    def get_certificate(self, number: str) -> None:
        return None

    def has_event(self, event_id: bytes) -> bool:
        return False

    def get_node(self, node_hash: bytes) -> None:
        return None
