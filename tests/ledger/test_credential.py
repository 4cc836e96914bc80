"""Certificates as W3C Verifiable Credentials: a genuine one checks, and any change is caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.certificate import Certificate
from ledger.credential import (
    KP,
    KPLEDGER_CONTEXT,
    LedgerEvidence,
    _canonical,
    base58btc,
    build_credential,
    did_key,
    from_base58btc,
    public_key_of,
    sign_credential,
    verify_credential,
)
from ledger.errors import InvalidCredential
from node.credentials import kpledger_context_document, load_context
from tests.helpers import TestNetwork
from tests.interop.vcjs import third_party_verdicts

EVIDENCE = LedgerEvidence("kp-test", "AAAA", None)
CREATED_MS = 1_764_590_400_000  # 2025-12-01T12:00:00Z


def credential(
    network: TestNetwork, certificate: Certificate, *, include_parties: bool = False
) -> dict[str, Any]:
    salt = bytes(range(32))
    unsigned = build_credential(certificate, salt, EVIDENCE, include_parties=include_parties)
    key = network.key("BE")
    return sign_credential(unsigned, key.public_bytes, key.sign_raw, CREATED_MS, load_context)


@pytest.fixture(scope="module")
def network() -> TestNetwork:
    return TestNetwork()


@pytest.fixture(scope="module")
def certificate(network: TestNetwork) -> Certificate:
    return network.certificate()


@pytest.fixture(scope="module")
def genuine(network: TestNetwork, certificate: Certificate) -> dict[str, Any]:
    return credential(network, certificate, include_parties=True)


def test_a_genuine_credential_checks(
    network: TestNetwork, certificate: Certificate, genuine: dict[str, Any]
) -> None:
    checked = verify_credential(genuine, load_context)
    assert checked.issuer_key == network.key("BE").public_bytes
    assert checked.includes_parties
    assert checked.certificate["certificateNumber"] == certificate.number
    assert checked.digest == certificate.digest(bytes(range(32)))
    assert genuine["issuer"].startswith("did:key:z6Mk")
    assert genuine["proof"]["cryptosuite"] == "eddsa-rdfc-2022"


def test_the_parties_are_left_out_unless_asked(
    network: TestNetwork, certificate: Certificate
) -> None:
    withheld = credential(network, certificate)
    text = json.dumps(withheld)
    party = certificate.identities.exporter
    assert party.name not in text and party.address not in text
    assert "identitySalt" not in withheld["credentialSubject"]
    # Without the parties the digest still binds them, through the commitment.
    assert verify_credential(withheld, load_context).digest == certificate.digest(bytes(range(32)))


def test_every_field_is_under_the_signature(genuine: dict[str, Any]) -> None:
    # A term that no context defines in scope drops out of the canonical form, unsigned.
    unsecured = {k: v for k, v in genuine.items() if k != "proof"}
    nquads = _canonical(unsecured, load_context)
    subject = genuine["credentialSubject"]
    names = [k for k in subject if k != "type"] + ["partyName", "partyAddress"]
    names += [k for k in genuine["evidence"][0] if k != "type"]
    missing = [name for name in names if f"{KP}{name}>" not in nquads]
    assert missing == []


def test_amounts_are_decimal_strings_never_floats(genuine: dict[str, Any]) -> None:
    subject = genuine["credentialSubject"]
    assert isinstance(subject["caratWeight"], str) and "." in subject["caratWeight"]
    assert isinstance(subject["valueUSD"], str)
    assert isinstance(subject["numberOfParcels"], int)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _paths(v, (*prefix, i))]
    return [prefix]


def _altered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "0" if value else "x"
    return "x"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_change_to_a_signed_value_is_caught(
    genuine: dict[str, Any], data: st.DataObject
) -> None:
    # Every leaf but the inline context's own spellings: changing a term's IRI is a change of
    # meaning too, but one the context's @protected rules (not the signature) may refuse first.
    paths = [p for p in _paths(genuine) if p[:1] != ("@context",)]
    path = data.draw(st.sampled_from(paths))
    tampered = copy.deepcopy(genuine)
    target = tampered
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = _altered(target[path[-1]])
    with pytest.raises(InvalidCredential):
        verify_credential(tampered, load_context)


def test_an_added_claim_is_caught(genuine: dict[str, Any]) -> None:
    tampered = copy.deepcopy(genuine)
    tampered["credentialSubject"]["replaces"] = "BE-2026-999999"
    with pytest.raises(InvalidCredential):
        verify_credential(tampered, load_context)


def test_an_undefined_term_is_refused_rather_than_dropped(genuine: dict[str, Any]) -> None:
    # JSON-LD would silently drop a term no context defines, and so leave it unsigned.
    tampered = copy.deepcopy(genuine)
    tampered["credentialSubject"]["carats"] = "999.00"
    with pytest.raises(InvalidCredential, match="no context defines"):
        verify_credential(tampered, load_context)


def test_a_context_not_shipped_is_refused_and_not_fetched(genuine: dict[str, Any]) -> None:
    tampered = copy.deepcopy(genuine)
    tampered["@context"].append("https://example.org/contexts/other.jsonld")
    with pytest.raises(InvalidCredential, match="does not ship"):
        verify_credential(tampered, load_context)


def test_a_credential_signed_by_another_key_names_that_key(
    network: TestNetwork, certificate: Certificate
) -> None:
    unsigned = build_credential(certificate, bytes(32), EVIDENCE, include_parties=False)
    other = network.key("AE")
    signed = sign_credential(unsigned, other.public_bytes, other.sign_raw, CREATED_MS, load_context)
    assert public_key_of(signed["issuer"]) == other.public_bytes
    # Its own proof checks: that AE is not BE's authority is what node/credentials.py finds.
    assert verify_credential(signed, load_context).issuer_key == other.public_bytes
    signed["issuer"] = did_key(network.key("BE").public_bytes)
    with pytest.raises(InvalidCredential, match="not made by the issuer's key"):
        verify_credential(signed, load_context)


@given(st.binary(max_size=40))
def test_base58_round_trips(data: bytes) -> None:
    assert from_base58btc(base58btc(data)) == data


def test_did_key_is_the_published_form() -> None:
    # W3C did:key test vector (did-method-key spec, Ed25519 example).
    public = bytes.fromhex("2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6")
    assert did_key(public) == "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    assert public_key_of(did_key(public)) == public
    with pytest.raises(InvalidCredential):
        public_key_of("did:web:example.org")


def test_the_shipped_kpledger_context_is_the_one_credentials_carry() -> None:
    shipped = (
        Path(__file__).resolve().parents[2] / "node" / "web" / "contexts" / "kpledger-v1.jsonld"
    )
    assert json.loads(shipped.read_text()) == {"@context": KPLEDGER_CONTEXT}
    assert kpledger_context_document() == {"@context": KPLEDGER_CONTEXT}


def test_a_third_party_library_verifies_it_and_refuses_an_altered_one(
    network: TestNetwork, certificate: Certificate, genuine: dict[str, Any], tmp_path: Path
) -> None:
    withheld = credential(network, certificate)
    altered = copy.deepcopy(genuine)
    altered["credentialSubject"]["caratWeight"] = "1.00"
    moved = copy.deepcopy(withheld)
    moved["credentialSubject"]["importingParticipant"] = "IN"
    files = []
    for name, doc in (
        ("full", genuine),
        ("withheld", withheld),
        ("altered", altered),
        ("moved", moved),
    ):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(doc))
    # As of a day the certificate is valid: the library checks validFrom and validUntil.
    now = f"{certificate.facts.issued_on.isoformat()}T12:00:00Z"
    verdicts = third_party_verdicts(files, now=now)
    assert [v["verified"] for v in verdicts] == [True, True, False, False], verdicts
