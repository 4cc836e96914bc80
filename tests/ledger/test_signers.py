"""A refusal of the wrong signer names the rule in the signer's terms: who signed, who may."""

from __future__ import annotations

import dataclasses

import pytest

from ledger import errors
from ledger.authoring import Issuance
from ledger.events import Event
from ledger.keys import SigningKey
from ledger.registry import EventContext
from ledger.signers import key_holder
from ledger.state import Overlay
from ledger.store import Store
from tests.helpers import TestNetwork

STRANGER = SigningKey.from_seed(b"\x07" * 32)
MONITOR = SigningKey.from_seed(b"\x08" * 32)


def refusal(net: TestNetwork, store: Store, event: Event) -> errors.LedgerError:
    ctx = EventContext(height=store.height + 1, time_ms=net.tick(), chain_id=net.chain_id)
    with pytest.raises(errors.LedgerError) as caught:
        Overlay(store).apply(net.registry, event, ctx)
    return caught.value


@pytest.fixture
def issued(network: TestNetwork, store: Store) -> Issuance:
    """BE-2026-000001, issued by BE to AE."""
    issuance = network.issue(exporting="BE", importing="AE")
    network.commit_block(store, [issuance.event])
    return issuance


def test_confirming_with_another_participants_key(
    network: TestNetwork, store: Store, issued: Issuance
) -> None:
    # What `kpledger cert confirm BE-2026-000001 --key RU/authority.pem` sends: the importer of
    # the certificate as the signer, RU's signature.
    error = refusal(network, store, network.confirm(issued, key=network.key("RU")))
    assert type(error) is errors.SignedByAnotherParticipant
    assert (error.code, error.http_status) == ("signed_by_another_participant", 403)
    assert error.message == (
        "signed by RU's authority key; only AE, the importing authority, may confirm BE-2026-000001"
    )


def test_confirming_with_the_importers_own_node_key(
    network: TestNetwork, store: Store, issued: Issuance
) -> None:
    error = refusal(network, store, network.confirm(issued, key=network.members["AE"].node))
    assert (error.code, error.http_status) == ("signed_with_node_key", 403)
    assert error.message.startswith("signed with AE's node key, not its authority key")
    assert "only AE, the importing authority, may confirm BE-2026-000001" in error.message


def test_confirming_with_another_node_key(
    network: TestNetwork, store: Store, issued: Issuance
) -> None:
    error = refusal(network, store, network.confirm(issued, key=network.members["RU"].node))
    assert error.code == "signed_with_node_key"
    assert error.message.startswith("signed with RU's node key:")
    assert "only AE, the importing authority, may confirm BE-2026-000001" in error.message


@pytest.mark.parametrize(
    ("kind", "key_of", "rule"),
    [
        ("reject", "IN", "only AE, the importing authority, may reject BE-2026-000001"),
        ("void", "AE", "only BE, the exporting authority, may void BE-2026-000001"),
        ("void", "RU", "only BE, the exporting authority, may void BE-2026-000001"),
    ],
)
def test_each_decision_names_who_may_make_it(
    network: TestNetwork, store: Store, issued: Issuance, kind: str, key_of: str, rule: str
) -> None:
    key = network.key(key_of)
    event = network.reject(issued, key=key) if kind == "reject" else network.void(issued, key=key)
    error = refusal(network, store, event)
    assert error.code == "signed_by_another_participant"
    assert error.message == f"signed by {key_of}'s authority key; {rule}"


def test_issuing_with_another_participants_key(network: TestNetwork, store: Store) -> None:
    issuance = network.issue(exporting="BE", importing="AE", key=network.key("IN"))
    error = refusal(network, store, issuance.event)
    assert error.code == "signed_by_another_participant"
    number = issuance.event.number
    assert error.message == (
        f"signed by IN's authority key; only BE, the exporting authority, may issue {number}"
    )


def test_a_participant_that_names_itself_but_may_not(
    network: TestNetwork, store: Store, issued: Issuance
) -> None:
    """A good signature by RU, as RU: the signer is honest, the rule still says no."""
    error = refusal(network, store, network.confirm(issued, signer="RU"))
    assert (error.code, error.http_status) == ("signer_not_allowed", 403)
    assert error.message == (
        "signed by RU; only AE, the importing authority, may confirm BE-2026-000001"
    )
    void = refusal(network, store, network.void(issued, signer="AE"))
    assert void.message == "signed by AE; only BE, the exporting authority, may void BE-2026-000001"


def test_the_right_key_under_another_signers_name(
    network: TestNetwork, store: Store, issued: Issuance
) -> None:
    error = refusal(network, store, network.confirm(issued, signer="RU", key=network.key("AE")))
    assert error.code == "signed_by_another_participant"
    assert error.message.startswith("signed by AE's authority key, but the event names RU")


def test_a_monitoring_key_is_named(network: TestNetwork, store: Store, issued: Issuance) -> None:
    india = dataclasses.replace(
        network.registry.participants["IN"],
        restricted_zones=("ZONE-A",),
        monitoring_key=MONITOR.public_bytes,
    )
    network.registry = dataclasses.replace(
        network.registry, participants={**network.registry.participants, "IN": india}
    )
    error = refusal(network, store, network.confirm(issued, key=MONITOR))
    assert (error.code, error.http_status) == ("signed_with_monitoring_key", 403)
    assert error.message.startswith("signed with the monitoring key of IN's team")
    assert error.message.endswith("only AE, the importing authority, may confirm BE-2026-000001")


def test_a_key_nobody_registered_is_a_bad_signature(
    network: TestNetwork, store: Store, issued: Issuance
) -> None:
    error = refusal(network, store, network.confirm(issued, key=STRANGER))
    assert (error.code, error.http_status) == ("bad_signature", 401)
    assert "does not verify under AE's registered authority key" in error.message
    corrupt = network.confirm(issued)
    tampered = Event.decode(corrupt.encoded[:-1] + bytes([corrupt.encoded[-1] ^ 1]))
    assert refusal(network, store, tampered).code == "bad_signature"


def test_key_holder_finds_every_kind_of_registered_key(network: TestNetwork) -> None:
    for code, member in network.members.items():
        for kind, key in (("authority", member.authority), ("node", member.node)):
            event = network.confirm(network.issue(), signer="AE", key=key)
            assert key_holder(network.registry, event) == (code, kind)
    assert key_holder(network.registry, network.confirm(network.issue(), key=STRANGER)) is None


def test_without_attribution_a_wrong_key_is_a_plain_bad_signature_after_one_verification(
    network: TestNetwork, store: Store, issued: Issuance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node grants the search for whose key signed from a budget: past it, one verification."""
    event = network.confirm(issued, key=network.key("RU"))
    checks: list[bytes] = []
    original = Event.signature_valid

    def counted(self: Event, key: bytes) -> bool:
        checks.append(key)
        return original(self, key)

    monkeypatch.setattr(Event, "signature_valid", counted)
    ctx = EventContext(height=store.height + 1, time_ms=network.tick(), chain_id=network.chain_id)
    with pytest.raises(errors.LedgerError) as caught:
        Overlay(store).apply(network.registry, event, ctx, attribute=False)
    assert type(caught.value) is errors.BadSignature
    assert (
        caught.value.message == "the signature does not verify under AE's registered authority key"
    )
    assert len(checks) == 1
    checks.clear()
    assert refusal(network, store, event).code == "signed_by_another_participant"
    assert len(checks) > 1  # the search: the register's other keys
