"""Certificate numbers: what a person types is normalised in one place; what is signed is exact."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ledger.certificate import Certificate, ShipmentFacts, is_certificate_number, normalise_number
from ledger.confidential import seal
from ledger.errors import InvalidCertificate, InvalidCertificateNumber, MalformedInput
from ledger.events import IssueBody, sign_event
from ledger.governance import EndorseBody
from tests.helpers import TestNetwork

NET = TestNetwork()


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("BE-2026-000123", "BE-2026-000123"),
        ("be-2026-000123", "BE-2026-000123"),
        ("BE-2026-000123 ", "BE-2026-000123"),
        ("  be-2026-00012a\n", "BE-2026-00012A"),
        ("\tBe-X\r\n", "BE-X"),
    ],
)
def test_a_typed_or_pasted_number_is_trimmed_and_upper_cased(typed: str, number: str) -> None:
    assert normalise_number(typed) == number


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("BE 2026 000123", "is not a certificate number"),
        ("BE-2026 000123", "is not a certificate number"),
        ("BE-2026-000123\nX", "is not a certificate number"),
        ("BE-", "is not a certificate number"),
        ("BE-" + "1" * 21, "is not a certificate number"),
        ("", "is not a certificate number"),
        ("   ", "is not a certificate number"),
        ("../BE-1", "is not a certificate number"),
        ("XX-2026-1", "not an ISO 3166-1 country"),
        ("EU-2026-1", "not an ISO 3166-1 country"),
        # U+017F upper-cases to "S": a number that is not ASCII is never turned into one.
        ("BE-\u017f1", "is not a certificate number"),
        ("BE-" + "A" * 10_000, "is not a certificate number"),
    ],
)
def test_a_malformed_number_is_refused_saying_what_a_number_is(typed: str, why: str) -> None:
    with pytest.raises(InvalidCertificateNumber) as caught:
        normalise_number(typed)
    assert why in caught.value.message
    assert "BE-2026-000123" in caught.value.message or "country" in caught.value.message
    assert caught.value.code == "invalid_certificate_number" and caught.value.http_status == 400
    assert len(caught.value.message) < 300  # a huge paste is not echoed whole


def test_the_exact_form_has_no_surrounding_space_or_newline() -> None:
    assert is_certificate_number("BE-2026-000123")
    for bad in ("BE-2026-000123\n", " BE-2026-000123", "be-2026-000123", None, 5, b"BE-1"):
        assert not is_certificate_number(bad), bad


# -- in signed events, numbers are exact: a trailing newline is refused, never normalised -------
def _facts(**changes: Any) -> ShipmentFacts:
    facts = NET.certificate("BE", "AE", number="BE-2026-000777").facts
    return dataclasses.replace(facts, **changes)


@pytest.mark.parametrize("number", ["BE-2026-000777\n", "BE-2026-000777 ", " BE-2026-000777"])
def test_an_issuance_whose_number_ends_in_a_newline_is_refused(number: str) -> None:
    facts = _facts(number=number)
    with pytest.raises(InvalidCertificate) as caught:
        ShipmentFacts.from_wire(facts.to_wire())
    assert caught.value.field == "number"
    cert = NET.certificate("BE", "AE", number="BE-2026-000777")
    recipients = NET.registry.recipients_for("BE", "AE")
    sealed = seal(cert.identities, b"\x01" * 32, number, recipients)
    with pytest.raises(InvalidCertificate):
        sign_event(NET.chain_id, "BE", IssueBody(facts, sealed), NET.key("BE"), NET.tick())


@pytest.mark.parametrize("replaces", ["BE-2026-000100\n", "BE-2026-000100 "])
def test_replaces_is_matched_in_full(replaces: str) -> None:
    with pytest.raises(InvalidCertificate) as caught:
        ShipmentFacts.from_wire(_facts(replaces=replaces).to_wire())
    assert caught.value.field == "replaces"
    # In a document a person wrote, it is trimmed like the number.
    raw = NET.certificate_json("BE", "AE", number="BE-2026-000778", replaces=replaces)
    assert Certificate.from_json(raw).facts.replaces == "BE-2026-000100"


@pytest.mark.parametrize("number", ["BE-2026-000777\n", "be-2026-000777", "BE 2026", "XX-1"])
def test_decisions_naming_an_inexact_number_are_refused(number: str) -> None:
    issuance = NET.issue(exporting="BE", importing="AE")
    digest = issuance.digest
    bodies = [
        ("AE", "certificate.confirm_import", [number, digest]),
        ("AE", "certificate.reject_import", [number, digest, "seal broken"]),
        ("BE", "certificate.void", [number, "lost"]),
    ]
    from ledger.events import BODY_TYPES

    for _, kind, wire in bodies:
        with pytest.raises(MalformedInput, match="not a certificate number"):
            BODY_TYPES[kind].from_wire(wire)
    with pytest.raises(MalformedInput, match="not a certificate number"):
        EndorseBody.from_wire([number, digest])
