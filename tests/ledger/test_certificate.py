"""The certificate model: every field rule of SPEC section 3, exact amounts, EU participants."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.certificate import (
    Certificate,
    ShipmentFacts,
    format_hundredths,
    parse_hundredths,
)
from ledger.encoding import encode
from ledger.errors import InvalidCertificate, MalformedInput
from ledger.genesis import Genesis
from ledger.registry import EventContext
from ledger.state import Overlay
from tests.helpers import DEFAULT_PARTICIPANTS, EU_PARTICIPANTS, TestNetwork


def _valid(**overrides: Any) -> dict[str, Any]:
    raw = TestNetwork().certificate_json("BE", "AE", number="BE-2026-000123")
    raw.update(overrides)
    return raw


def _field_error(raw: dict[str, Any]) -> str:
    with pytest.raises(InvalidCertificate) as caught:
        Certificate.from_json(raw)
    assert caught.value.code == "invalid_certificate"
    return caught.value.field


def test_a_realistic_certificate_parses() -> None:
    cert = Certificate.from_json(_valid(carats="1250.50", value_usd="350000.00", parcels=3))
    assert cert.number == "BE-2026-000123"
    assert cert.facts.carats == 125050
    assert cert.facts.value_usd == 35000000
    assert cert.facts.parcels == 3
    assert cert.facts.prefix == "BE"


def test_json_round_trip_keeps_the_digest() -> None:
    cert = Certificate.from_json(_valid(replaces="BE-2026-000100"))
    again = Certificate.from_json(cert.to_json())
    assert again == cert
    salt = bytes(32)
    assert again.digest(salt) == cert.digest(salt)


def test_wire_round_trip_is_canonical() -> None:
    facts = Certificate.from_json(_valid()).facts
    assert ShipmentFacts.from_wire(facts.to_wire()) == facts
    wire = facts.to_wire()
    wire[10] = None  # "no replacement" has one form on the wire: the empty string
    with pytest.raises(InvalidCertificate):
        ShipmentFacts.from_wire(wire)


# -- one error, naming its field, per rule --------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "BE2026000123",  # no dash
        "be-2026-000123",  # lower case
        "BE-",  # nothing after the dash
        "BE-" + "1" * 21,  # more than 20 characters
        "BE-2026/000123",  # a slash
        "BE-2026 000123",  # a space
        "BEL-2026-000123",  # alpha-3
        "XX-2026-000123",  # not an ISO country
        "EU-2026-000123",  # EU is a participant, not a country
        "",
    ],
)
def test_number_rules(number: str) -> None:
    assert _field_error(_valid(number=number)) == "number"


@pytest.mark.parametrize("suffix", ["1", "A", "-", "2026-000123", "A" * 20, "0-0-0"])
def test_number_suffix_accepts_1_to_20_of_letters_digits_and_dashes(suffix: str) -> None:
    assert Certificate.from_json(_valid(number=f"BE-{suffix}")).number == f"BE-{suffix}"


def test_number_must_be_a_string() -> None:
    assert _field_error(_valid(number=123)) == "number"


@pytest.mark.parametrize("field", ["exporting_participant", "importing_participant"])
@pytest.mark.parametrize("code", ["XX", "be", "EUR", "BEL", "", "E"])
def test_participant_codes(field: str, code: str) -> None:
    assert _field_error(_valid(**{field: code})) == field


@pytest.mark.parametrize("field", ["exporting_participant", "importing_participant"])
def test_participant_may_be_eu(field: str) -> None:
    assert getattr(Certificate.from_json(_valid(**{field: "EU"})).facts, field) == "EU"


@pytest.mark.parametrize(
    "origin",
    [[], ["MIXED", "CD"], ["XX"], ["CD", "CD"], ["cd"], [1], {"CD": 1}, ["CD"] * 51, None],
)
def test_origin_rules(origin: Any) -> None:
    raw = _valid(origin=origin)
    if origin is None:
        del raw["origin"]
    assert _field_error(raw) == "origin"


@pytest.mark.parametrize("origin", [["MIXED"], ["CD"], ["AO", "NA", "BW"], "ZA"])
def test_origin_accepted(origin: Any) -> None:
    cert = Certificate.from_json(_valid(origin=origin))
    assert list(cert.facts.origin) == (origin if isinstance(origin, list) else [origin])


@pytest.mark.parametrize("hs", ["7102.39", "7102.1", "710210", "7103.10", "", 7102.10])
def test_hs_code_rules(hs: Any) -> None:
    assert _field_error(_valid(hs_code=hs)) == "hs_code"


@pytest.mark.parametrize("hs", ["7102.10", "7102.21", "7102.31"])
def test_hs_codes_accepted(hs: str) -> None:
    assert Certificate.from_json(_valid(hs_code=hs)).facts.hs_code == hs


@pytest.mark.parametrize(
    "carats",
    [
        1250.5,  # a float, even an exact one
        0.5,
        "1250.505",  # three places
        "0",
        "0.00",
        "-1.00",
        "1e3",
        "1,250.50",
        "",
        "abc",
        ".5",
        "5.",
        "01.5",
        "NaN",
        "Infinity",
        True,
        None,
        ["1"],
    ],
)
def test_carats_rules(carats: Any) -> None:
    assert _field_error(_valid(carats=carats)) == "carats"


@pytest.mark.parametrize(
    "value", [350000.0, "1.001", "-0.01", "-5", "1e6", "$100", True, "", "00", None]
)
def test_value_rules(value: Any) -> None:
    assert _field_error(_valid(value_usd=value)) == "value_usd"


def test_value_may_be_zero_but_carats_may_not() -> None:
    assert Certificate.from_json(_valid(value_usd="0")).facts.value_usd == 0
    assert Certificate.from_json(_valid(carats="0.01")).facts.carats == 1


@pytest.mark.parametrize("parcels", [0, -1, "3", 3.0, True, None, 1_000_001])
def test_parcels_rules(parcels: Any) -> None:
    assert _field_error(_valid(parcels=parcels)) == "parcels"


@pytest.mark.parametrize("party", ["exporter", "importer"])
@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("Antwerp Rough NV", ""),
        ({"name": "Antwerp Rough NV"}, ".address"),
        ({"address": "Antwerp"}, ".name"),
        ({"name": "", "address": "Antwerp"}, ".name"),
        ({"name": "   ", "address": "Antwerp"}, ".name"),
        ({"name": "A\x00B", "address": "Antwerp"}, ".name"),
        ({"name": "A" * 201, "address": "Antwerp"}, ".name"),
        ({"name": "A", "address": "B" * 501}, ".address"),
        ({"name": "A", "address": "B", "vat": "BE0123"}, ""),
        (None, ""),
    ],
)
def test_party_rules(party: str, value: Any, field: str) -> None:
    assert _field_error(_valid(**{party: value})) == party + field


@pytest.mark.parametrize("field", ["issued_on", "expires_on"])
@pytest.mark.parametrize(
    "value", ["2026-3-2", "02/03/2026", "2026-02-30", "20260302", 20260302, "", None]
)
def test_date_rules(field: str, value: Any) -> None:
    assert _field_error(_valid(**{field: value})) == field


def test_expiry_not_before_issue() -> None:
    assert _field_error(_valid(issued_on="2026-03-02", expires_on="2026-03-01")) == "expires_on"
    same_day = Certificate.from_json(_valid(issued_on="2026-03-02", expires_on="2026-03-02"))
    assert same_day.facts.issued_on == same_day.facts.expires_on


@pytest.mark.parametrize("replaces", ["nonsense", "BE-2026-000123", 5, "be-1"])
def test_replaces_rules(replaces: Any) -> None:
    assert _field_error(_valid(replaces=replaces)) == "replaces"


@pytest.mark.parametrize(
    "field",
    [
        "number",
        "exporting_participant",
        "importing_participant",
        "origin",
        "hs_code",
        "carats",
        "value_usd",
        "parcels",
        "exporter",
        "importer",
        "issued_on",
        "expires_on",
    ],
)
def test_every_required_field_is_named_when_missing(field: str) -> None:
    raw = _valid()
    del raw[field]
    assert _field_error(raw) == field


def test_unknown_fields_and_non_objects_are_refused() -> None:
    assert _field_error(_valid(colour="D")) == "certificate"
    assert _field_error([]) == "certificate"  # type: ignore[arg-type]


# -- amounts are exact ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10**17 - 1))
def test_amounts_round_trip_exactly(hundredths: int) -> None:
    text = format_hundredths(hundredths)
    assert parse_hundredths("carats", text, positive=True) == hundredths
    assert Decimal(text) * 100 == hundredths


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=9))
def test_one_decimal_place_is_tenths(units: int, tenth: int) -> None:
    assert parse_hundredths("value_usd", f"{units}.{tenth}", positive=False) == units * 100 + (
        tenth * 10
    )


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=10**12, places=3, allow_nan=False))
def test_three_places_are_refused_unless_they_are_none(amount: Decimal) -> None:
    text = f"{amount:.3f}"
    with pytest.raises(InvalidCertificate):
        parse_hundredths("value_usd", text, positive=False)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_always_refused(amount: float) -> None:
    with pytest.raises(InvalidCertificate, match="never a binary float"):
        parse_hundredths("carats", amount, positive=True)


def test_sums_of_amounts_are_exact() -> None:
    """0.10 + 0.20 is exactly 0.30 in hundredths, which binary floats never manage."""
    a = parse_hundredths("value_usd", "0.10", positive=False)
    b = parse_hundredths("value_usd", "0.20", positive=False)
    assert format_hundredths(a + b) == "0.30"
    big = [parse_hundredths("carats", "33333333.33", positive=True)] * 3
    assert format_hundredths(sum(big)) == "99999999.99"


def test_amounts_on_the_wire_are_integers() -> None:
    facts = Certificate.from_json(_valid(carats="1250.50", value_usd="0.07")).facts
    wire = facts.to_wire()
    assert wire[5] == 125050 and wire[6] == 7
    assert b"1250.5" not in encode(wire)


# -- EU-style multi-country participants ----------------------------------------------------


class _Empty:
    def get_certificate(self, number: str) -> None:
        return None

    def has_event(self, event_id: bytes) -> bool:
        return False


def _ctx(net: TestNetwork) -> EventContext:
    return EventContext(height=1, time_ms=net.now_ms, chain_id=net.chain_id)


@pytest.mark.parametrize("country", ["DE", "CZ", "FR"])
def test_eu_issues_for_each_of_its_countries(eu_network: TestNetwork, country: str) -> None:
    net = eu_network
    issuance = net.issue(exporting="EU", importing="IN", number=f"{country}-2026-000001")
    overlay = Overlay(_Empty())
    [record] = overlay.apply(net.registry, issuance.event, _ctx(net))
    assert record.facts.exporting_participant == "EU"
    assert record.facts.prefix == country


@pytest.mark.parametrize("prefix", ["BE", "IT", "AE"])
def test_eu_cannot_issue_for_a_country_it_does_not_stand_for(
    eu_network: TestNetwork, prefix: str
) -> None:
    net = eu_network
    issuance = net.issue(exporting="EU", importing="IN", number=f"{prefix}-2026-000001")
    with pytest.raises(InvalidCertificate) as caught:
        Overlay(_Empty()).apply(net.registry, issuance.event, _ctx(net))
    assert caught.value.field == "number"


def test_eu_can_import_and_confirm(eu_network: TestNetwork) -> None:
    net = eu_network
    issuance = net.issue(exporting="RU", importing="EU")
    overlay = Overlay(_Empty())
    overlay.apply(net.registry, issuance.event, _ctx(net))
    [record] = overlay.apply(net.registry, net.confirm(issuance), _ctx(net))
    assert record.status == "import_confirmed"


def test_countries_of_participants_must_not_overlap() -> None:
    raw = TestNetwork(EU_PARTICIPANTS).genesis.to_json()
    raw["participants"][-1]["countries"] = ["DE", "BE"]
    with pytest.raises(MalformedInput, match="country belongs to two participants"):
        Genesis.from_json(raw)
    with pytest.raises(MalformedInput, match="country belongs to two participants"):
        TestNetwork((*DEFAULT_PARTICIPANTS, ("EU", ("DE", "BE"))))
