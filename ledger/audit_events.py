"""The checks of a block's stored events that need no state: canonical bytes and signatures,
run by the audit (ledger/audit.py) in its own process or its workers (node/audit_pool.py)."""

from __future__ import annotations

from typing import Any

from ledger.encoding import check_canonical, decode_unchecked, encode
from ledger.errors import LedgerError
from ledger.hashing import TAG_EVENT
from ledger.keys import verify

# A canonical signed event is [unsigned, signature]: a fixarray(2) byte, the unsigned event's own
# canonical bytes, then bin8(64) and the signature. So the signed message is a slice of what is
# stored, and need not be re-encoded for each of millions of signatures.
_ARRAY2 = 0x92
_SIGNATURE_TRAILER = b"\xc4\x40"


#: What the workers find in one block's stored events (`check_events`): the first event whose
#: bytes are not the canonical encoding of what they hold, with the refusal `decode` gives
#: (None: all are), and the position of the first event whose signature does not verify under
#: the key it was given (-1: none).
EventsVerdict = tuple[tuple[int, str] | None, int]


def check_events(encoded: list[bytes], keys: list[bytes | None]) -> EventsVerdict:
    """The checks of one block's stored events that need no state, pure, run here or in a worker
    process (node/audit_pool.py): each event's bytes are canonical (`ledger.encoding.decode`'s
    last step, which the audit's own process skips: `Event.decode_unchecked`), in order, up to
    the first that is not; and each signature verifies under `keys[i]` (None: not checked)."""
    bad = -1
    for index, data in enumerate(encoded):
        try:
            obj = decode_unchecked(data)
            check_canonical(obj, data)
        except LedgerError as exc:
            return (index, str(exc)), bad
        key = keys[index] if index < len(keys) else None
        if bad < 0 and key is not None and not verify(key, TAG_EVENT, *signed_parts(data, obj)):
            bad = index
    return None, bad


def signed_parts(data: bytes, obj: Any) -> tuple[bytes, bytes]:
    """The message a stored event's signature covers, and the signature: slices of its canonical
    bytes `data` (decoded: `obj`, [unsigned, signature]), not a re-encoding."""
    if data[0] == _ARRAY2 and data[-66:-64] == _SIGNATURE_TRAILER:
        return data[1:-66], data[-64:]
    return encode(obj[0]), obj[1]  # pragma: no cover - every canonical event has that layout
