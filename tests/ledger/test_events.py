"""Signed events: their canonical form, ids, envelopes, signatures and malformed bodies."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.errors import InvalidCertificate, MalformedInput
from ledger.events import (
    CONFIRM_IMPORT,
    ISSUE,
    REJECT_IMPORT,
    VOID,
    ConfirmImportBody,
    Event,
    RejectImportBody,
    VoidBody,
    sign_event,
)
from ledger.hashing import TAG_EVENT, TAG_EVENT_ID, TAG_VOTE, tagged_hash
from ledger.keys import verify
from tests.helpers import TestNetwork

NET = TestNetwork()
ISSUANCE = NET.issue(exporting="BE", importing="AE")
EVENTS = {
    ISSUE: ISSUANCE.event,
    CONFIRM_IMPORT: NET.confirm(ISSUANCE),
    REJECT_IMPORT: NET.reject(ISSUANCE, "parcel count differs from the certificate"),
    VOID: NET.void(ISSUANCE, "lost"),
}


@pytest.mark.parametrize("kind", list(EVENTS))
def test_an_event_decodes_to_itself(kind: str) -> None:
    event = EVENTS[kind]
    assert event.type == kind
    again = Event.decode(event.encoded)
    assert again == event
    assert again.encoded == event.encoded


@pytest.mark.parametrize("kind", list(EVENTS))
def test_the_id_is_the_hash_of_the_signed_encoding(kind: str) -> None:
    event = EVENTS[kind]
    assert event.event_id == tagged_hash(TAG_EVENT_ID, event.encoded)
    assert encode([event.unsigned_wire, event.signature]) == event.encoded


@pytest.mark.parametrize("kind", list(EVENTS))
def test_the_envelope_round_trips(kind: str) -> None:
    event = EVENTS[kind]
    envelope = event.to_envelope()
    assert set(envelope) == {"event", "signature"}
    assert Event.from_envelope(envelope) == event


@pytest.mark.parametrize("kind", list(EVENTS))
def test_signatures_verify_only_under_the_signer_and_the_event_tag(kind: str) -> None:
    event = EVENTS[kind]
    signer = NET.registry.participant(event.signer)
    assert event.signature_valid(signer.authority_key)
    for other in NET.registry.participants.values():
        if other.code != event.signer:
            assert not event.signature_valid(other.authority_key)
    # Domain separation: the same bytes signed as an event are no vote.
    payload = encode(event.unsigned_wire)
    assert verify(signer.authority_key, TAG_EVENT, payload, event.signature)
    assert not verify(signer.authority_key, TAG_VOTE, payload, event.signature)


def test_signing_is_deterministic_and_created_time_matters() -> None:
    body = VoidBody("BE-2026-000001", "error")
    a = sign_event(NET.chain_id, "BE", body, NET.key("BE"), 1)
    b = sign_event(NET.chain_id, "BE", body, NET.key("BE"), 1)
    c = sign_event(NET.chain_id, "BE", body, NET.key("BE"), 2)
    assert a.event_id == b.event_id
    assert a.event_id != c.event_id


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.text(min_size=1, max_size=200).filter(str.strip),
    st.binary(min_size=32, max_size=32),
)
def test_decision_events_round_trip(created_ms: int, reason: str, digest: bytes) -> None:
    for body in (
        ConfirmImportBody("BE-2026-000001", digest),
        RejectImportBody("BE-2026-000001", digest, reason),
    ):
        event = sign_event(NET.chain_id, "AE", body, NET.key("AE"), created_ms)
        assert Event.decode(event.encoded) == event
        assert event.body == body
        assert event.number == "BE-2026-000001"


def _resign(unsigned: list[Any]) -> bytes:
    signature = NET.key("BE").sign(TAG_EVENT, encode(unsigned))
    return encode([unsigned, signature])


def _unsigned(kind: str) -> list[Any]:
    unsigned: list[Any] = decode(EVENTS[kind].encoded)[0]
    return unsigned


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda u: u.__setitem__(0, 2), "version"),
        (lambda u: u.__setitem__(1, ""), "chain_id"),
        (lambda u: u.__setitem__(2, "certificate.burn"), "unknown event type"),
        (lambda u: u.__setitem__(3, "B" * 17), "signer"),
        (lambda u: u.__setitem__(4, -1), "created_ms"),
        (lambda u: u.__setitem__(4, True), "created_ms"),
        (lambda u: u.__setitem__(5, ["BE-2026-000001"]), "void"),
        (lambda u: u.__setitem__(5, ["BE-2026-000001", "melted"]), "void reason"),
        (lambda u: u.append(0), "unsigned event"),
    ],
)
def test_malformed_events_are_refused(change: Any, message: str) -> None:
    unsigned = _unsigned(VOID)
    change(unsigned)
    with pytest.raises((MalformedInput, InvalidCertificate)):
        Event.decode(_resign(unsigned))


def test_a_rejection_must_say_why() -> None:
    unsigned = _unsigned(REJECT_IMPORT)
    unsigned[5][2] = "   "
    with pytest.raises(MalformedInput, match="reason"):
        Event.decode(_resign(unsigned))


def test_a_digest_is_32_bytes() -> None:
    unsigned = _unsigned(CONFIRM_IMPORT)
    unsigned[5][1] = bytes(31)
    with pytest.raises(MalformedInput, match="digest"):
        Event.decode(_resign(unsigned))


@pytest.mark.parametrize("signature", [bytes(63), bytes(65), "sig", None])
def test_a_signature_is_64_bytes(signature: Any) -> None:
    with pytest.raises(MalformedInput):
        Event.decode(encode([_unsigned(VOID), signature]))


@pytest.mark.parametrize(
    "envelope",
    [
        {},
        {"event": "!!!", "signature": "AA=="},
        {"event": base64.b64encode(b"\x90").decode(), "signature": "AA=="},
        {"event": "AA==", "signature": "AA==", "extra": 1},
        [],
    ],
)
def test_bad_envelopes_are_malformed(envelope: Any) -> None:
    with pytest.raises(MalformedInput):
        Event.from_envelope(envelope)


def test_an_envelope_with_a_non_canonical_event_is_refused() -> None:
    envelope = EVENTS[VOID].to_envelope()
    raw = base64.b64decode(envelope["event"])
    # Re-encode the leading fixarray header as array16: same content, other bytes.
    widened = b"\xdc\x00" + bytes([raw[0] & 0x0F]) + raw[1:]
    envelope["event"] = base64.b64encode(widened).decode()
    with pytest.raises(MalformedInput):
        Event.from_envelope(envelope)
