"""Decoding's fast paths (issue 21) take and refuse exactly what the paths they replace did."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pycountry
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import certificate
from ledger.certificate import is_country
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.events import Event, event_id_of
from tests.helpers import TestNetwork


def pycountry_is_country(code: str) -> bool:
    """is_country as it was: a lookup in pycountry for each code."""
    return (
        isinstance(code, str)
        and len(code) == 2
        and code.isupper()
        and pycountry.countries.get(alpha_2=code) is not None
    )


# Letters whose case mapping lands on A-Z (the Kelvin sign lower-cases to "k", dotted I to "i̇"),
# some ASCII, and others: what a hostile event could put where a country code goes.
ODD_LETTERS = "ABEKSUZaekz\u212a\u0130\u017f\u00df\u01c5-0 \n"
CODES = st.one_of(
    st.text(alphabet=ODD_LETTERS, max_size=3),
    st.sampled_from(sorted(c.alpha_2 for c in pycountry.countries)),
    st.text(max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(CODES)
def test_is_country_answers_as_pycountry_does(code: str) -> None:
    assert is_country(code) == pycountry_is_country(code)


def test_is_country_on_every_code_and_on_values_that_are_not_strings() -> None:
    for country in pycountry.countries:
        assert is_country(country.alpha_2)
        assert not is_country(country.alpha_2.lower())
    assert is_country("\u212aE") == pycountry_is_country("\u212aE")  # Kelvin sign + E
    for value in (None, 42, b"BE", ["BE"], ("B", "E")):
        assert is_country(value) == pycountry_is_country(value)  # type: ignore[arg-type]


def outcome(data: bytes) -> tuple[Any, ...]:
    try:
        event = Event.decode(data)
    except LedgerError as exc:
        return ("refused", type(exc).__name__, exc.code, exc.message)
    return ("taken", event.encoded, event.event_id, event.body)


def both_ways(data: bytes) -> None:
    fast = outcome(data)
    with mock.patch.object(certificate, "is_country", pycountry_is_country):
        slow = outcome(data)
    assert fast == slow


_NET = TestNetwork()
_ISSUED = _NET.issue()
_EVENTS = [_ISSUED.event, _NET.confirm(_ISSUED), _NET.void(_NET.issue()), _NET.historical().event]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_EVENTS), st.data())
def test_decoding_mutated_bytes_takes_and_refuses_as_before(event: Event, data: Any) -> None:
    raw = bytearray(event.encoded)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    both_ways(bytes(raw))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_decoding_events_with_other_country_codes_takes_and_refuses_as_before(data: Any) -> None:
    """Every place a facts list holds a country code, given another: the number's prefix, the
    participants, the origin."""
    event = data.draw(st.sampled_from([_ISSUED.event, _EVENTS[3]]))
    unsigned, signature = decode(event.encoded)
    facts = unsigned[5][0]
    where = data.draw(st.sampled_from(["prefix", "exporter", "importer", "origin", "replaces"]))
    code = data.draw(CODES)
    if where == "prefix":
        facts[0] = code + facts[0][2:]
    elif where == "exporter":
        facts[1] = code
    elif where == "importer":
        facts[2] = code
    elif where == "origin":
        facts[3] = [*facts[3], code] if data.draw(st.booleans()) else [code]
    else:
        facts[10] = code + "-1"
    both_ways(encode([unsigned, signature]))


def test_an_events_id_is_the_hash_of_its_bytes() -> None:
    for event in _EVENTS:
        assert event_id_of(event.encoded) == event.event_id
