"""Every key the store writes or reads: the families, and the one way each key is built.

Every key starts with a one-letter family and a slash. A height inside a key (or stored as a
value: the hash index) is 8 bytes big-endian, built by `height` here and nowhere else, so that
heights sort in order.
"""

from __future__ import annotations

import struct

from ledger.hashing import sha256
from ledger.records import CertificateRecord
from ledger.stats import PublicCell, Quarter, StatKey

K_GENESIS = b"m/genesis"
K_HEAD = b"m/head"
K_SIGNER = b"m/signer"
K_REGISTRY = b"m/registry"  # the register in force at the next height
P_BLOCK = b"b/"  # height -> [header bytes, [event Merkle leaves]]
P_COMMIT = b"c/"  # height -> commit certificate bytes
P_HASH = b"h/"  # header hash -> height
P_EVENT = b"e/"  # event id -> [height, index, event bytes]
P_CERT = b"n/"  # certificate number -> record
P_NODE = b"s/"  # state tree node hash -> node
P_IDX = b"x/"  # indexes, values empty
P_STATS = b"t/"  # statistics aggregates: StatKey -> [certificates, carats, value]
P_LOCAL = b"l/"  # this node's own notes (refused events): not part of the chain
P_REFUSED = P_LOCAL + b"r/"  # event id -> [code, message]
P_EVIDENCE = P_LOCAL + b"ev/"  # sha256(evidence) -> evidence
P_API_TOKEN = (
    P_LOCAL + b"t/"
)  # API token name -> its record (a hash, never the token: node/tokens.py)
P_OFFICER = P_LOCAL + b"o/"  # portal officer name -> account record (node/portal/accounts.py)
P_ACTIVITY = P_LOCAL + b"a/"  # 8-byte sequence number -> activity entry (append-only)
#: height + value -> block bytes: the blocks of the values this validator signed for at the height
#: it is voting in (its lock's block above all), durable before the vote; gone with the height.
P_SIGNED_BLOCK = P_LOCAL + b"sb/"
P_PENDING = b"q/"  # event id -> event bytes: accepted here, not yet final or refused (not chain)
P_GOV = b"g/"  # governance: proposals, their schedule, validator sets and the register's history
P_PROPOSAL = P_GOV + b"p/"  # proposal id -> record
P_SCHEDULE = P_GOV + b"s/"  # effective height + proposal id -> b"" (open or passed only)
P_VALIDATORS = P_GOV + b"v/"  # first height in force -> validator list (at each change)
P_REGISTER = P_GOV + b"r/"  # height in force -> the register changes taking effect there
P_ACTIVE = P_GOV + b"a/"  # participant -> block time it last signed an event (or entered)
P_SUSPENDED = P_GOV + b"u/"  # participant -> block time of its last suspension
P_PUB = b"p/"  # public statistics: what was published, when, and what waits (ledger/stats.py)
P_PUB_CELL = P_PUB + b"c/"  # quarter/role/participant/hs -> Published figures
P_PUB_TOUCH = P_PUB + b"t/"  # quarter/role/participant/hs -> certificates that ever changed it
P_PUB_DIRTY = P_PUB + b"d/"  # quarter -> b"": changed since its last publication
P_PUB_AT = P_PUB + b"h/"  # height -> [last quarter published before, last after, block time]

#: The index families: by exporting participant, importing participant, status, and date.
INDEX_EXPORTING = P_IDX + b"e/"
INDEX_IMPORTING = P_IDX + b"i/"
INDEX_STATUS = P_IDX + b"s/"
INDEX_DATE = P_IDX + b"d/"

_HEIGHT = struct.Struct(">Q")


def height(value: int) -> bytes:
    """A height as it appears in keys and in the hash index: 8 bytes big-endian."""
    return _HEIGHT.pack(value)


def read_height(raw: bytes) -> int:
    """The height `height` encoded (the first 8 bytes of `raw`)."""
    return int(_HEIGHT.unpack(raw[: _HEIGHT.size])[0])


def after(key: bytes, prefix: bytes) -> bytes:
    """What follows the family prefix in a key of that family."""
    return key[len(prefix) :]


# -- the chain --------------------------------------------------------------------------------
def block(at: int) -> bytes:
    return P_BLOCK + height(at)


def commit(at: int) -> bytes:
    return P_COMMIT + height(at)


def header_hash(value: bytes) -> bytes:
    return P_HASH + value


def event(event_id: bytes) -> bytes:
    return P_EVENT + event_id


def certificate(number: str) -> bytes:
    return P_CERT + number.encode("utf-8")


def state_node(node_hash: bytes) -> bytes:
    return P_NODE + node_hash


def index_keys(record: CertificateRecord) -> list[bytes]:
    """The index entries a certificate record implies (the audit recomputes and compares them)."""
    f = record.facts
    tail = f.issued_on.isoformat().encode() + b"\x00" + f.number.encode()
    return [
        INDEX_EXPORTING + f.exporting_participant.encode() + b"\x00" + tail,
        INDEX_IMPORTING + f.importing_participant.encode() + b"\x00" + tail,
        INDEX_STATUS + record.status.encode() + b"\x00" + tail,
        INDEX_DATE + tail,
    ]


def index_prefix(
    *, exporting: str | None = None, importing: str | None = None, status: str | None = None
) -> bytes:
    """The index a certificate query walks: the most selective one it names (date otherwise)."""
    if exporting:
        return INDEX_EXPORTING + exporting.encode() + b"\x00"
    if importing:
        return INDEX_IMPORTING + importing.encode() + b"\x00"
    if status:
        return INDEX_STATUS + status.encode() + b"\x00"
    return INDEX_DATE


def index_entry(prefix: bytes, issued_on: str, number: str) -> bytes:
    """The entry of `prefix`'s index for one certificate (issued_on as ISO text)."""
    return prefix + issued_on.encode() + b"\x00" + number.encode()


# -- statistics -------------------------------------------------------------------------------
def stat(key: StatKey) -> bytes:
    return P_STATS + key.encode()


def stats_prefix(year: int, quarter: int | None = None) -> bytes:
    return P_STATS + (f"{year:04d}{quarter}" if quarter else f"{year:04d}").encode()


def public_cell(quarter: Quarter, cell: PublicCell) -> bytes:
    return P_PUB_CELL + cell.encode(quarter)


def public_cells(quarter: Quarter) -> bytes:
    """The prefix of one quarter's published cells."""
    return P_PUB_CELL + quarter.prefix().encode() + b"/"


def public_touch(quarter: Quarter, cell: PublicCell) -> bytes:
    return P_PUB_TOUCH + cell.encode(quarter)


def public_touches(quarter: Quarter) -> bytes:
    """The prefix of one quarter's change counts."""
    return P_PUB_TOUCH + quarter.prefix().encode() + b"/"


def public_dirty(quarter: Quarter) -> bytes:
    return P_PUB_DIRTY + quarter.prefix().encode()


def publication(at: int) -> bytes:
    return P_PUB_AT + height(at)


# -- governance -------------------------------------------------------------------------------
def proposal(proposal_id: bytes) -> bytes:
    return P_PROPOSAL + proposal_id


def schedule(effective_height: int, proposal_id: bytes) -> bytes:
    return P_SCHEDULE + height(effective_height) + proposal_id


def validators(first_height: int) -> bytes:
    return P_VALIDATORS + height(first_height)


def register(in_force: int) -> bytes:
    return P_REGISTER + height(in_force)


def active(code: str) -> bytes:
    return P_ACTIVE + code.encode()


def suspended(code: str) -> bytes:
    return P_SUSPENDED + code.encode()


# -- this node's own ----------------------------------------------------------------------------
def pending(event_id: bytes) -> bytes:
    return P_PENDING + event_id


def refused(event_id: bytes) -> bytes:
    return P_REFUSED + event_id


def evidence(data: bytes) -> bytes:
    return P_EVIDENCE + sha256(data)


def signed_block(at: int, value: bytes) -> bytes:
    """The key of the block of `value`, a value this validator signed for at height `at`."""
    return P_SIGNED_BLOCK + height(at) + value


def signed_blocks(at: int) -> bytes:
    """The prefix of the blocks kept for height `at`."""
    return P_SIGNED_BLOCK + height(at)


def api_token(name: str) -> bytes:
    return P_API_TOKEN + name.encode("utf-8")


# -- webhooks (node/notify/outbox.py): this node's own, not chain -----------------------------
#: Each webhook's keys start with its id: w/<id>/h its settings, w/<id>/p its progress,
#: w/<id>/d/<height><index> one delivery.
P_WEBHOOK = b"w/"


def webhook(webhook_id: str) -> bytes:
    """The prefix of every key of one webhook."""
    return P_WEBHOOK + webhook_id.encode() + b"/"


def webhook_settings(webhook_id: str) -> bytes:
    return webhook(webhook_id) + b"h"


def webhook_progress(webhook_id: str) -> bytes:
    return webhook(webhook_id) + b"p"


def webhook_deliveries(webhook_id: str) -> bytes:
    return webhook(webhook_id) + b"d/"


def webhook_delivery(webhook_id: str, at: int, index: int) -> bytes:
    return webhook_deliveries(webhook_id) + height(at) + index.to_bytes(4, "big")


def officer(name: str) -> bytes:
    return P_OFFICER + name.encode("utf-8")


def activity(seq: int) -> bytes:
    """An activity log entry's key: its sequence number, 8 bytes big-endian (in order)."""
    return P_ACTIVITY + height(seq)
