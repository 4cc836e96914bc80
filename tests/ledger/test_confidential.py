"""Sealed identities: only the parties open them, and any tampering or move is detected."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.certificate import Certificate, Identities, Party, certificate_digest
from ledger.confidential import SealedBox, SealedIdentities, new_salt, open_sealed, seal
from ledger.encoding import decode, encode
from ledger.errors import MalformedInput, NotARecipient, SealBroken
from ledger.events import Event
from ledger.keys import EncryptionKey
from tests.helpers import TestNetwork

NET = TestNetwork(extra_recipients=[("BE", "KP-MONITORING")])
CERT = NET.certificate("BE", "AE")
SALT = bytes(range(32))
RECIPIENTS = NET.registry.recipients_for("BE", "AE")
SEALED = seal(CERT.identities, SALT, CERT.number, RECIPIENTS)


def _key(name: str) -> EncryptionKey:
    if name in NET.members:
        return NET.members[name].encryption
    return NET.extra_keys[name]


def test_the_network_names_both_parties_and_its_extra_recipients() -> None:
    assert [name for name, _ in RECIPIENTS] == ["BE", "AE", "KP-MONITORING"]
    assert SEALED.recipients == ("BE", "AE", "KP-MONITORING")
    assert NET.registry.recipients_for("AE", "BE")[2:] == []  # the extra is BE's only


@pytest.mark.parametrize("recipient", ["BE", "AE", "KP-MONITORING"])
def test_each_recipient_opens_its_box(recipient: str) -> None:
    identities, salt = open_sealed(SEALED, CERT.number, recipient, _key(recipient))
    assert identities == CERT.identities
    assert salt == SALT
    assert CERT.digest(salt) == certificate_digest(CERT.facts, SEALED.commitment)


@pytest.mark.parametrize("recipient", ["BE", "AE"])
@pytest.mark.parametrize("wrong", ["IN", "RU"])
def test_a_wrong_key_cannot_open(recipient: str, wrong: str) -> None:
    with pytest.raises(SealBroken):
        open_sealed(SEALED, CERT.number, recipient, _key(wrong))


@pytest.mark.parametrize("outsider", ["IN", "RU"])
def test_an_outsider_has_no_box(outsider: str) -> None:
    with pytest.raises(NotARecipient) as caught:
        open_sealed(SEALED, CERT.number, outsider, _key(outsider))
    assert caught.value.http_status == 403


def test_a_box_cannot_be_opened_as_another_recipients() -> None:
    # AE's ciphertext relabelled as BE's: the HPKE info names the recipient, so it fails.
    ae_box = SEALED.box_for("AE")
    assert ae_box is not None
    moved = SealedIdentities(SEALED.commitment, (SealedBox("BE", ae_box.ciphertext),))
    with pytest.raises(SealBroken):
        open_sealed(moved, CERT.number, "BE", _key("AE"))
    with pytest.raises(SealBroken):
        open_sealed(moved, CERT.number, "BE", _key("BE"))


@pytest.mark.parametrize("other", ["BE-2026-000999", "AE-2026-000001"])
def test_a_box_moved_to_another_certificate_fails(other: str) -> None:
    for recipient in ("BE", "AE"):
        with pytest.raises(SealBroken):
            open_sealed(SEALED, other, recipient, _key(recipient))


def test_every_one_byte_change_to_a_ciphertext_is_detected() -> None:
    box = SEALED.box_for("AE")
    assert box is not None
    for i in range(len(box.ciphertext)):
        data = bytearray(box.ciphertext)
        data[i] ^= 0x01
        tampered = SealedIdentities(SEALED.commitment, (SealedBox("AE", bytes(data)),))
        with pytest.raises(SealBroken):
            open_sealed(tampered, CERT.number, "AE", _key("AE"))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 31), st.integers(1, 255))
def test_a_tampered_commitment_is_detected(index: int, flip: int) -> None:
    commitment = bytearray(SEALED.commitment)
    commitment[index] ^= flip
    tampered = dataclasses.replace(SEALED, commitment=bytes(commitment))
    with pytest.raises(SealBroken, match="commitment"):
        open_sealed(tampered, CERT.number, "AE", _key("AE"))


def test_a_box_from_another_sealing_does_not_match_the_commitment() -> None:
    """Same certificate, other identities: HPKE opens it, the commitment does not match."""
    other = Identities(Party("Shell Trading Ltd", "PO Box 1"), CERT.identities.importer)
    foreign = seal(other, SALT, CERT.number, RECIPIENTS)
    swapped = SealedIdentities(SEALED.commitment, foreign.boxes)
    with pytest.raises(SealBroken, match="commitment"):
        open_sealed(swapped, CERT.number, "AE", _key("AE"))


@settings(max_examples=20, deadline=None)
@given(
    st.text(min_size=1, max_size=200).filter(str.strip),
    st.text(min_size=1, max_size=500).filter(str.strip),
)
def test_round_trip_of_any_identities(name: str, address: str) -> None:
    identities = Identities(Party(name, address), Party("Almas Gems DMCC", "Dubai"))
    salt = new_salt()
    sealed = seal(identities, salt, CERT.number, RECIPIENTS[:2])
    assert SealedIdentities.from_wire(decode(encode(sealed.to_wire()))) == sealed
    for recipient in ("BE", "AE"):
        assert open_sealed(sealed, CERT.number, recipient, _key(recipient)) == (identities, salt)


def test_salt_makes_commitments_unlinkable() -> None:
    a = seal(CERT.identities, new_salt(), CERT.number, RECIPIENTS)
    b = seal(CERT.identities, new_salt(), CERT.number, RECIPIENTS)
    assert a.commitment != b.commitment
    with pytest.raises(MalformedInput):
        seal(CERT.identities, b"short", CERT.number, RECIPIENTS)


# -- the document digest ---------------------------------------------------------------------


def test_the_document_digest_binds_the_identities() -> None:
    """A holder of the document and the salt checks it against the digest on the ledger."""
    issuance = NET.issue(CERT, salt=SALT)
    event = Event.decode(issuance.event.encoded)
    on_ledger = certificate_digest(event.body.facts, event.body.sealed.commitment)
    assert issuance.digest == on_ledger
    assert Certificate.from_json(CERT.to_json()).digest(SALT) == on_ledger

    altered = CERT.to_json()
    altered["exporter"] = {**altered["exporter"], "name": "Antwerp Rough Trading N.V."}
    assert Certificate.from_json(altered).digest(SALT) != on_ledger
    altered = CERT.to_json()
    altered["importer"] = {**altered["importer"], "address": "Somewhere else"}
    assert Certificate.from_json(altered).digest(SALT) != on_ledger
    altered = CERT.to_json()
    altered["carats"] = "1.00"
    assert Certificate.from_json(altered).digest(SALT) != on_ledger
    # Without the salt, nobody can check a guess at the identities.
    assert CERT.digest(bytes(32)) != on_ledger


@pytest.mark.parametrize(
    "wire",
    [
        [bytes(31), [["BE", b"x"]]],
        [bytes(32), []],
        [bytes(32), [["BE", b"x"], ["BE", b"y"]]],
        [bytes(32), [["BE", "x"]]],
        [bytes(32), [["BE", b"x" * 8193]]],
        [bytes(32), [[b"BE", b"x"]]],
        [bytes(32)],
    ],
)
def test_malformed_sealed_identities_are_refused(wire: list[object]) -> None:
    with pytest.raises(MalformedInput):
        SealedIdentities.from_wire(wire)
