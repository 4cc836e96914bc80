"""The one canonical byte encoding (msgpack) used for hashing, signing, storage and the wire."""

from __future__ import annotations

from typing import Any

import msgpack

from ledger.errors import MalformedInput, NonCanonicalEncoding

#: Largest byte string decoded as one object unless the caller names a smaller bound (every
#: peer answer does: see node/peers.py). The largest block the parameters allow fits well under.
MAX_DECODE_BYTES = 64 * 1024 * 1024


_LEAF_TYPES = frozenset((type(None), bool, bytes, str))
_INT_LOW, _INT_HIGH = -(2**63), 2**64


def _check(obj: Any, depth: int = 0) -> None:
    if depth > 32:
        raise MalformedInput("object nested too deeply")
    # Fast path for the exact types msgpack hands back (every event passes here several times);
    # anything else (subclasses, floats, maps) takes the general path below.
    kind = type(obj)
    if kind is list or kind is tuple:
        if depth == 32 and obj:
            raise MalformedInput("object nested too deeply")
        for item in obj:
            item_kind = type(item)
            if item_kind in _LEAF_TYPES:
                continue
            if item_kind is int:
                if not _INT_LOW <= item < _INT_HIGH:
                    raise MalformedInput("integer out of the 64-bit range")
                continue
            _check(item, depth + 1)
        return
    if obj is None or isinstance(obj, bool | bytes | str):
        return
    if isinstance(obj, int):
        if not -(2**63) <= obj < 2**64:
            raise MalformedInput("integer out of the 64-bit range")
        return
    if isinstance(obj, list | tuple):
        for item in obj:
            _check(item, depth + 1)
        return
    if isinstance(obj, float):
        raise MalformedInput(
            "floats are never encoded: money and weight are integers of hundredths"
        )
    raise MalformedInput(f"cannot encode a value of type {type(obj).__name__}")


def encode(obj: Any) -> bytes:
    """Encode nested lists/tuples of None, bool, int, str and bytes. No maps, no floats.

    msgpack always picks the shortest form for ints, strs and arrays, so one value has one encoding.
    """
    _check(obj)
    packed: bytes = msgpack.packb(obj, use_bin_type=True, strict_types=False)
    return packed


def decode(data: bytes, max_bytes: int = MAX_DECODE_BYTES) -> Any:
    """Decode canonical bytes; refuse anything that does not re-encode to exactly the same bytes.

    `max_bytes` bounds the input (and so every string in it); at most MAX_DECODE_BYTES.
    """
    obj = decode_unchecked(data, max_bytes)
    check_canonical(obj, bytes(data))
    return obj


def check_canonical(obj: Any, data: bytes) -> None:
    """The last step of `decode`: `data`, which decoded to `obj`, is its one canonical encoding
    (MalformedInput or NonCanonicalEncoding otherwise, as `decode` raises them)."""
    if encode(obj) != data:
        raise NonCanonicalEncoding("the bytes are not the canonical encoding of their content")


def decode_unchecked(data: bytes, max_bytes: int = MAX_DECODE_BYTES) -> Any:
    """`decode` without `check_canonical`: for bytes whose canonical check runs elsewhere (the
    audit checks stored events' in its worker processes, ledger/audit.py). It takes every byte
    string `decode` takes, to the same object, and refuses some of those `decode` refuses."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedInput("expected bytes")
    data = bytes(data)
    max_bytes = min(max_bytes, MAX_DECODE_BYTES)
    if len(data) > max_bytes:
        raise MalformedInput(f"encoded object too large ({len(data)} bytes; at most {max_bytes})")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=1_000_000,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise MalformedInput(f"not a single msgpack object: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise MalformedInput("a string is not valid UTF-8") from exc
    return obj
