"""Canonical encoding: round-trips, one byte string per value, and tampering always detected."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.block import Block, Header
from ledger.encoding import decode, encode
from ledger.errors import LedgerError, MalformedInput, NonCanonicalEncoding
from ledger.events import Event
from tests.helpers import TestNetwork

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = st.none() | st.booleans() | ints | st.text(max_size=300) | st.binary(max_size=300)
values = st.recursive(scalars, lambda children: st.lists(children, max_size=20), max_leaves=60)


def _as_lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_as_lists(item) for item in value]
    return value


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip(value: Any) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@settings(max_examples=50, deadline=None)
@given(st.recursive(scalars, lambda c: st.tuples(c, c) | st.lists(c, max_size=4), max_leaves=20))
def test_tuples_encode_as_arrays(value: Any) -> None:
    assert encode(value) == encode(_as_lists(value))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_only_to_their_canonical_value(data: bytes) -> None:
    """Whatever the bytes, decode either refuses them (MalformedInput) or they are canonical."""
    try:
        value = decode(data)
    except MalformedInput:
        return
    assert encode(value) == data


def _wider_int_forms(n: int) -> list[bytes]:
    """Every msgpack encoding of integer n (all fixed-width forms it fits in)."""
    forms = []
    for fmt, marker, lo, hi in (
        (">B", 0xCC, 0, 2**8 - 1),
        (">H", 0xCD, 0, 2**16 - 1),
        (">I", 0xCE, 0, 2**32 - 1),
        (">Q", 0xCF, 0, 2**64 - 1),
        (">b", 0xD0, -(2**7), 2**7 - 1),
        (">h", 0xD1, -(2**15), 2**15 - 1),
        (">i", 0xD2, -(2**31), 2**31 - 1),
        (">q", 0xD3, -(2**63), 2**63 - 1),
    ):
        if lo <= n <= hi:
            forms.append(bytes([marker]) + struct.pack(fmt, n))
    if 0 <= n <= 0x7F:
        forms.append(bytes([n]))
    if -32 <= n < 0:
        forms.append(struct.pack(">b", n))
    return forms


@settings(max_examples=300, deadline=None)
@given(ints)
def test_an_integer_has_exactly_one_accepted_form(n: int) -> None:
    accepted = []
    for form in _wider_int_forms(n):
        try:
            assert decode(form) == n
            accepted.append(form)
        except NonCanonicalEncoding:
            pass
    assert accepted == [encode(n)]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_a_string_has_exactly_one_accepted_form(text: str) -> None:
    raw = text.encode()
    forms = [b"\xd9" + bytes([len(raw)]) + raw, b"\xda" + struct.pack(">H", len(raw)) + raw]
    forms.append(b"\xdb" + struct.pack(">I", len(raw)) + raw)
    if len(raw) < 32:
        forms.append(bytes([0xA0 | len(raw)]) + raw)
    accepted = [f for f in forms if _decodes(f)]
    assert accepted == [encode(text)]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40))
def test_bytes_have_exactly_one_accepted_form(data: bytes) -> None:
    forms = [
        b"\xc4" + bytes([len(data)]) + data,
        b"\xc5" + struct.pack(">H", len(data)) + data,
        b"\xc6" + struct.pack(">I", len(data)) + data,
    ]
    assert [f for f in forms if _decodes(f)] == [encode(data)]


def _decodes(data: bytes) -> bool:
    try:
        decode(data)
    except NonCanonicalEncoding:
        return False
    return True


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xcc\x05", "uint8 for a fixint"),
        (b"\xcd\x00\x05", "uint16 for a fixint"),
        (b"\xd0\x05", "int8 for a positive fixint"),
        (b"\xd1\xff\xff", "int16 for -1"),
        (b"\xd3" + struct.pack(">q", 1000), "int64 for 1000"),
        (b"\xd9\x03abc", "str8 for a short string"),
        (b"\xda\x00\x03abc", "str16 for a short string"),
        (b"\xc5\x00\x01x", "bin16 for one byte"),
        (b"\xdc\x00\x01\x01", "array16 for one item"),
        (b"\xdd\x00\x00\x00\x00", "array32 for none"),
    ],
)
def test_non_minimal_forms_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(NonCanonicalEncoding):
        decode(data)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x80", "an empty map"),
        (b"\x81\x01\x02", "a map"),
        (b"\x91\x81\xa1a\x01", "a map inside an array"),
        (b"\xca\x3f\xc0\x00\x00", "a float32"),
        (b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", "a float64"),
        (b"\x01\x02", "trailing bytes"),
        (b"\x92\x01", "a truncated array"),
        (b"", "nothing"),
        (b"\xa2\xff\xfe", "invalid UTF-8"),
        (b"\xd4\x01\x00", "an ext type"),
        (b"\xd6\xff\x00\x00\x00\x00", "a timestamp"),
        (b"\xc1", "the never-used byte"),
        (b"\x91" * 40 + b"\x90", "nesting too deep"),
    ],
)
def test_other_forms_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(MalformedInput):
        decode(data)


@pytest.mark.parametrize("value", [1.5, 0.0, {"a": 1}, {1: 2}, object(), 2**64, -(2**63) - 1])
def test_encode_refuses_what_has_no_canonical_form(value: Any) -> None:
    with pytest.raises(MalformedInput):
        encode(value)


def test_money_is_never_a_float() -> None:
    with pytest.raises(MalformedInput, match="floats"):
        encode(["BE-2026-000001", 1250.5])


# -- any one-byte change to a signed object is detected -----------------------------------


def _mutations(data: bytes) -> list[bytes]:
    out = []
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            out.append(data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :])
    return out


def _event_accepted(net: TestNetwork, data: bytes, original: Event) -> bool:
    """Would a node take these bytes as the original event? Decode, id and signature all pass."""
    try:
        event = Event.decode(data)
    except LedgerError:
        return False
    participant = net.registry.participants.get(event.signer)
    if participant is None or not event.signature_valid(participant.authority_key):
        return False
    return event.event_id == original.event_id


@pytest.fixture(scope="module")
def signed_events() -> tuple[TestNetwork, list[Event]]:
    net = TestNetwork()
    issuance = net.issue(exporting="BE", importing="AE")
    return net, [
        issuance.event,
        net.confirm(issuance),
        net.reject(issuance, "container seal broken"),
        net.void(issuance, "stolen"),
    ]


def test_every_one_byte_change_to_an_event_is_detected(
    signed_events: tuple[TestNetwork, list[Event]],
) -> None:
    net, events = signed_events
    for event in events:
        assert _event_accepted(net, event.encoded, event)
        for mutated in _mutations(event.encoded):
            assert not _event_accepted(net, mutated, event)
            # Nor does any change keep the event's id: the id names exactly these bytes.
            try:
                assert Event.decode(mutated).event_id != event.event_id
            except LedgerError:
                pass


def test_every_one_byte_change_to_a_header_is_detected(network: TestNetwork, store: Any) -> None:
    issuance = network.issue()
    execution = network.commit_block(store, [issuance.event])
    header = execution.header
    assert Header.decode(header.encoded) == header
    for mutated in _mutations(header.encoded):
        try:
            other = Header.decode(mutated)
        except LedgerError:
            continue
        # The commit certificate signs the header hash: a changed header is not what was signed.
        assert other.hash != header.hash


def test_every_one_byte_change_to_a_block_is_detected(network: TestNetwork, store: Any) -> None:
    first = network.issue()
    events = [first.event, network.issue(exporting="IN", importing="RU").event]
    network.commit_block(store, events)
    execution = network.commit_block(store, [network.confirm(first)])
    block = execution.block
    data = block.encode()
    assert Block.decode(data).encode() == data
    for i in range(len(data)):
        mutated = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
        try:
            other = Block.decode(mutated)
        except LedgerError:
            continue
        signatures_hold = all(
            e.signature_valid(network.registry.participant(e.signer).authority_key)
            for e in other.events
            if e.signer in network.registry.participants
        )
        assert other.header.hash != block.header.hash or not signatures_hold


def test_decode_refuses_input_over_the_bound_it_is_given() -> None:
    data = encode([b"x" * 1000, "y"])
    assert decode(data, max_bytes=len(data)) == [b"x" * 1000, "y"]
    with pytest.raises(MalformedInput, match="too large"):
        decode(data, max_bytes=len(data) - 1)
