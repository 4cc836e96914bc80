"""The chain audit: a clean chain passes, and each kind of corruption is caught and named."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

import pytest

from ledger.audit import (
    AuditReport,
    EventsVerdict,
    PublicBlock,
    StateKeeper,
    check_events,
    verify_chain,
    verify_public_chain,
)
from ledger.block import Block, events_root
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.events import Event
from ledger.records import VOIDED
from ledger.store import Store, index_keys, keys
from tests.helpers import TestNetwork, erase, poke, public_blocks


def _chain(net: TestNetwork, store: Store) -> None:
    """Five blocks with every kind of event, a replacement among them."""
    a = net.issue(exporting="BE", importing="AE")
    b = net.issue(exporting="IN", importing="RU")
    c = net.issue(exporting="AE", importing="IN")
    net.commit_block(store, [a.event, b.event, c.event])
    d = net.issue(exporting="RU", importing="BE")
    net.commit_block(store, [net.confirm(a), d.event])
    e = net.issue(exporting="BE", importing="IN")
    net.commit_block(store, [net.void(b, "stolen"), net.reject(c, "seal broken"), e.event])
    f = net.issue(exporting="RU", importing="BE", replaces=d.event.number)
    net.commit_block(store, [net.void(d, "replaced"), f.event])
    net.commit_block(store, [net.confirm(e)])


@pytest.fixture
def chain(network: TestNetwork, store: Store) -> tuple[TestNetwork, Store]:
    _chain(network, store)
    return network, store


def _audit(net: TestNetwork, store: Store, **kwargs: Any) -> AuditReport:
    return verify_chain(store, net.genesis, **kwargs)


def _flip(data: bytes, at: int, bits: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ bits]) + data[at + 1 :]


def _event_entry(store: Store, height: int, index: int) -> tuple[bytes, list[Any]]:
    event_id = store.event_ids(height)[index]
    return keys.event(event_id), decode(store.kv.get(keys.event(event_id)))


def test_a_clean_chain_passes(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    seen: list[tuple[int, int]] = []
    report = _audit(net, store, progress=lambda h, n: seen.append((h, n)))
    assert report == AuditReport(True, 5, 11, None)
    assert seen == [(h, 5) for h in range(1, 6)]


def test_signatures_are_checked_over_the_canonical_unsigned_bytes(
    chain: tuple[TestNetwork, Store],
) -> None:
    from ledger.audit_events import signed_parts

    _, store = chain
    for height in range(1, store.height + 1):
        block = store.block(height)
        assert block is not None
        for event in block.events:
            payload, signature = signed_parts(event.encoded, decode(event.encoded))
            assert payload == encode(event.unsigned_wire)
            assert signature == event.signature


def test_an_empty_chain_passes(network: TestNetwork, store: Store) -> None:
    assert _audit(network, store) == AuditReport(True, 0, 0, None)


class InlinePool:
    """A SignaturePool that runs each block's check at once, in this thread, and counts them."""

    workers = 2

    def __init__(self) -> None:
        self.submitted: list[int] = []

    def submit(self, encoded: list[bytes], keys: list[bytes | None]) -> Future[EventsVerdict]:
        self.submitted.append(len(encoded))
        done: Future[EventsVerdict] = Future()
        done.set_result(check_events(encoded, keys))
        return done


def test_a_pool_agrees_with_checking_here(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    pool = InlinePool()
    assert _audit(net, store, pool=pool) == AuditReport(True, 5, 11, None)
    assert sum(pool.submitted) == 11  # every signature went through the pool
    key, (height, index, encoded) = _event_entry(store, 4, 1)
    poke(store, key, encode([height, index, _flip(encoded, len(encoded) - 1)]))
    one, two = _audit(net, store), _audit(net, store, pool=InlinePool())
    assert one == two
    assert not one.ok and one.height_checked == 3 and one.events_checked == 8


def test_a_fault_read_ahead_waits_for_the_blocks_before_it(
    chain: tuple[TestNetwork, Store],
) -> None:
    net, store = chain
    erase(store, keys.block(5))  # read ahead while blocks 1-4 are still to be checked
    report = _audit(net, store, pool=InlinePool())
    assert report == AuditReport(False, 4, 10, "block 5 is missing from the store")


# -- events --------------------------------------------------------------------------------


def test_a_flipped_byte_in_a_stored_event(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    key, (height, index, encoded) = _event_entry(store, 3, 2)
    original = store.kv.get(key)
    # A sample of positions all over the event, the signature excepted (tested below).
    for at in range(0, len(encoded) - 64, 5):
        poke(store, key, encode([height, index, _flip(encoded, at)]))
        report = _audit(net, store)
        assert not report.ok and report.height_checked == 2, (at, report)
        assert report.fault is not None and report.fault.startswith("block 3 event 2"), report
    poke(store, key, original)
    assert _audit(net, store).ok


def _as_event_decode_finds_it(net: TestNetwork, where: str, event_id: bytes, data: bytes) -> str:
    """The fault the audit named for altered stored event bytes when it decoded them with
    Event.decode (the canonical check first), before that check moved to `check_events`."""
    try:
        event = Event.decode(data)
    except LedgerError as exc:
        return f"{where}: the stored event does not decode ({exc})"
    if event.event_id != event_id:
        member = net.members.get(event.signer)
        if member is not None and not event.signature_valid(member.authority.public_bytes):
            return (
                f"{where}: the signature does not verify under {event.signer}'s authority "
                "key (the stored event was altered: it no longer hashes to its id)"
            )
        return f"{where}: the stored event does not hash to the id the block names"
    return "(no fault in the event itself)"


@pytest.mark.parametrize("pool", [None, InlinePool], ids=["here", "pool"])
def test_altered_event_bytes_are_named_as_event_decode_named_them(
    chain: tuple[TestNetwork, Store], pool: type[InlinePool] | None
) -> None:
    net, store = chain
    key, (height, index, encoded) = _event_entry(store, 3, 2)
    event_id = store.event_ids(3)[2]
    where = f"block 3 event 2 ({event_id.hex()[:16]})"
    flips = [_flip(encoded, at, bits) for at in range(len(encoded)) for bits in (0x01, 0x80)]
    for data in [*flips[::3], _loose(encoded), encoded[:-1], encoded + b"\x00"]:
        poke(store, key, encode([height, index, data]))
        report = _audit(net, store, pool=None if pool is None else pool())
        assert report.fault == _as_event_decode_finds_it(net, where, event_id, data), data.hex()


def _loose(encoded: bytes) -> bytes:
    """The same signed event, its signature's length as bin16 where canonical msgpack has bin8."""
    return b"\x92" + encoded[1:-66] + b"\xc5\x00\x40" + encoded[-64:]


@pytest.mark.parametrize("pool", [None, InlinePool], ids=["here", "pool"])
def test_a_non_canonical_event_is_named_before_what_follows_from_it(
    chain: tuple[TestNetwork, Store], pool: type[InlinePool] | None
) -> None:
    """The audit's process decodes events without the canonical check, which runs with the
    signatures' (`check_events`): a fault found meanwhile, in the event itself (its id) or after
    it (a later event's signature, the block's leaves), waits for it, as Event.decode found it
    first. A fault before the event (a missing one) still comes first."""
    net, store = chain
    key, (height, index, encoded) = _event_entry(store, 3, 1)
    poke(store, key, encode([height, index, _loose(encoded)]))
    event_id = store.event_ids(3)[1]
    expected = AuditReport(
        False,
        2,
        5,
        f"block 3 event 1 ({event_id.hex()[:16]}): the stored event does not decode (the bytes "
        "are not the canonical encoding of their content)",
    )

    def audit() -> AuditReport:
        return _audit(net, store, pool=None if pool is None else pool())

    assert audit() == expected
    later, (h2, i2, encoded2) = _event_entry(store, 3, 2)
    poke(store, later, encode([h2, i2, _flip(encoded2, len(encoded2) - 1)]))  # its signature
    assert audit() == expected
    erase(store, _event_entry(store, 3, 0)[0])
    report = audit()
    assert report.fault is not None and report.fault.endswith("the event is missing from the store")


def test_a_flipped_byte_in_an_event_signature(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    key, (height, index, encoded) = _event_entry(store, 2, 0)
    poke(store, key, encode([height, index, _flip(encoded, len(encoded) - 10)]))
    report = _audit(net, store)
    assert (report.ok, report.height_checked, report.events_checked) == (False, 1, 3)
    assert report.fault is not None
    assert report.fault.startswith("block 2 event 0")
    assert "signature does not verify under AE's authority key" in report.fault


def test_a_missing_event(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    key, _ = _event_entry(store, 5, 0)
    erase(store, key)
    report = _audit(net, store)
    assert report.height_checked == 4
    assert report.fault is not None and "block 5 event 0" in report.fault
    assert "missing" in report.fault


def test_a_stray_event(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    stray = net.issue()
    poke(store, keys.event(stray.event.event_id), encode([9, 0, stray.event.encoded]))
    report = _audit(net, store)
    assert report.height_checked == 5
    assert report.fault == "the store holds 12 events, but its blocks hold 11"


# -- headers and blocks --------------------------------------------------------------------


def test_a_flipped_byte_in_a_header(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    raw = store.kv.get(keys.block(3))
    header_bytes, ids = decode(raw)
    for at in range(len(header_bytes)):
        poke(store, keys.block(3), encode([_flip(header_bytes, at), ids]))
        report = _audit(net, store)
        assert not report.ok and report.height_checked == 2, (at, report)
        assert report.fault is not None and report.fault.startswith("block 3"), report
        assert "header" in report.fault, report
    poke(store, keys.block(3), raw)
    assert _audit(net, store).ok


def test_a_leaf_that_misdescribes_its_event(chain: tuple[TestNetwork, Store]) -> None:
    """A block's leaf names the stored event but another type: found before the events root."""
    net, store = chain
    header_bytes, leaves = decode(store.kv.get(keys.block(3)))
    event_id, kind, number = decode(leaves[1])
    leaves[1] = encode([event_id, "confirm_import" if kind != "confirm_import" else "void", number])
    poke(store, keys.block(3), encode([header_bytes, leaves]))
    for pool in (None, InlinePool()):
        assert _audit(net, store, pool=pool) == AuditReport(
            False,
            2,
            5,
            f"block 3 event 1 ({event_id.hex()[:16]}): the block's Merkle leaf does not describe "
            "the stored event",
        )


def test_a_missing_block(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    erase(store, keys.block(4))
    report = _audit(net, store)
    assert (report.height_checked, report.fault) == (3, "block 4 is missing from the store")


def test_events_reordered_in_a_block(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    header_bytes, ids = decode(store.kv.get(keys.block(1)))
    poke(store, keys.block(1), encode([header_bytes, ids[::-1]]))
    report = _audit(net, store)
    assert report.height_checked == 0
    assert report.fault is not None and report.fault.startswith("block 1 event 0")


# -- commit certificates -------------------------------------------------------------------


def _replace_commit(net: TestNetwork, store: Store, height: int, **kwargs: Any) -> None:
    header = store.header(height)
    assert header is not None
    poke(store, keys.commit(height), net.commit_certificate_bytes(header, **kwargs))


@pytest.mark.parametrize(
    ("kwargs", "fault"),
    [
        ({"signers": [0, 1]}, "too few signers: 2 of 4 validators, 3 needed"),
        ({"signers": []}, "too few signers: 0 of 4 validators, 3 needed"),
        ({"signers": [0, 1, 1]}, "validator 1 signs twice"),
        ({"signers": [0, 2, 2, 3]}, "validator 2 signs twice"),
        ({"signers": [2, 0, 1]}, "not sorted"),
        ({"value": bytes(32)}, "the commit certificate signs header 0000000000000000"),
    ],
)
def test_a_bad_commit_certificate(
    chain: tuple[TestNetwork, Store], kwargs: dict[str, Any], fault: str
) -> None:
    net, store = chain
    _replace_commit(net, store, 3, **kwargs)
    report = _audit(net, store)
    assert (report.ok, report.height_checked) == (False, 2)
    assert report.fault is not None and report.fault.startswith("block 3: ")
    assert fault in report.fault


def test_three_of_four_signers_are_enough(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    _replace_commit(net, store, 3, signers=[0, 1, 3])
    _replace_commit(net, store, 4, signers=[1, 2, 3], round_=7)
    assert _audit(net, store).ok


def test_a_flipped_byte_in_a_commit_signature(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    raw = store.kv.get(keys.commit(2))
    poke(store, keys.commit(2), _flip(raw, len(raw) - 1))
    report = _audit(net, store)
    assert report.height_checked == 1
    assert report.fault == (
        "block 2: commit certificate for height 2: bad precommit signature from validator 3"
    )


def test_a_commit_certificate_by_other_keys(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    impostor = TestNetwork(seed="impostors")
    header = store.header(5)
    assert header is not None
    poke(store, keys.commit(5), impostor.commit_certificate_bytes(header))
    report = _audit(net, store)
    assert report.height_checked == 4
    assert report.fault is not None and "bad precommit signature from validator 0" in report.fault


@pytest.mark.parametrize("value", [None, b"", b"\x93\x01\x02\x03"])
def test_a_missing_or_malformed_commit_certificate(
    chain: tuple[TestNetwork, Store], value: bytes | None
) -> None:
    net, store = chain
    if value is None:
        erase(store, keys.commit(1))
    else:
        poke(store, keys.commit(1), value)
    report = _audit(net, store)
    assert report.height_checked == 0 and report.fault is not None
    assert report.fault.startswith("block 1: ") and "commit certificate" in report.fault


# -- state transitions a byzantine majority signed -----------------------------------------


def _forge_block(net: TestNetwork, store: Store, events: list[Any], **header_changes: Any) -> None:
    """Store a block the validators signed although the ledger refuses it."""
    execution = net.execute(store, [])
    header = dataclasses.replace(
        execution.header,
        events_root=events_root(events),
        event_count=len(events),
        **header_changes,
    )
    execution.block = Block(header, tuple(events))
    store.commit(execution, net.commit_certificate_bytes(header))


def test_a_refused_transition_in_a_signed_block(network: TestNetwork, store: Store) -> None:
    net = network
    issuance = net.issue()
    net.commit_block(store, [issuance.event])
    _forge_block(net, store, [net.confirm(issuance, signer="IN")])
    report = _audit(net, store)
    assert (report.height_checked, report.events_checked) == (1, 1)
    assert report.fault is not None
    assert report.fault.startswith("block 2: re-execution fails: ")
    assert "signer_not_allowed" in report.fault


def test_a_block_of_another_chain(network: TestNetwork, store: Store) -> None:
    net = network
    net.commit_block(store, [net.issue().event])
    _forge_block(net, store, [], chain_id="kp-other")
    report = _audit(net, store)
    assert report.height_checked == 1
    assert report.fault == (
        "block 2: the header does not link: block for chain 'kp-other', not 'kp-test'"
    )


def test_a_state_root_that_lies(network: TestNetwork, store: Store) -> None:
    net = network
    net.commit_block(store, [net.issue().event])
    _forge_block(net, store, [net.issue().event], state_root=bytes(range(32)))
    report = _audit(net, store)
    assert report == AuditReport(False, 1, 1, _LYING_ROOT_AT_2)


_LYING_ROOT_AT_2 = "block 2: re-execution fails: block 2's state root does not match its events"


class LaggingRoots:
    """StateRoots that work each root out only when it is asked for, as a worker process gives
    them back late: what was submitted after a block is never looked at before its root."""

    def __init__(self) -> None:
        self.keeper = StateKeeper()
        self.waiting: list[dict[bytes, bytes]] = []
        self.asked = 0

    def submit(self, leaves: dict[bytes, bytes]) -> None:
        self.waiting.append(leaves)

    def next_root(self) -> bytes:
        self.asked += 1
        return self.keeper.update(self.waiting.pop(0))

    def nodes_fault(self, stored: Iterable[tuple[bytes, bytes]]) -> str | None:
        return self.keeper.nodes_fault(stored)


def _lying_root_then(net: TestNetwork, store: Store, empty_blocks: int) -> None:
    """Block 1, block 2 with a state root that lies, then empty blocks (whose roots repeat it)."""
    net.commit_block(store, [net.issue().event])
    _forge_block(net, store, [net.issue().event], state_root=bytes(range(32)))
    for _ in range(empty_blocks):
        net.commit_block(store, [])


@pytest.mark.parametrize("roots", [None, LaggingRoots], ids=["here", "lagging"])
def test_a_lying_root_comes_before_any_later_fault(
    network: TestNetwork, store: Store, roots: type[LaggingRoots] | None
) -> None:
    """Roots are checked a few blocks late (`_ROOTS_AHEAD`): a fault found meanwhile, in a later
    block or in the data the store derived, waits for the roots of the blocks before it."""
    net = network
    _lying_root_then(net, store, 6)

    def audit() -> AuditReport:
        return _audit(net, store, state=None if roots is None else roots())

    assert audit() == AuditReport(False, 1, 1, _LYING_ROOT_AT_2)
    erase(store, keys.block(5))  # found while block 2's root is still out
    assert audit() == AuditReport(False, 1, 1, _LYING_ROOT_AT_2)
    erase(store, keys.block(3))
    assert audit() == AuditReport(False, 1, 1, _LYING_ROOT_AT_2)


def test_a_lying_root_of_the_last_block_comes_before_the_derived_data(
    network: TestNetwork, store: Store
) -> None:
    net = network
    _lying_root_then(net, store, 0)
    key, record = _some_record(store)
    poke(store, key, dataclasses.replace(record, status=VOIDED).encode())
    for roots in (None, LaggingRoots()):
        assert _audit(net, store, state=roots) == AuditReport(False, 1, 1, _LYING_ROOT_AT_2)


def test_a_lying_root_comes_before_the_rest_of_its_header(
    network: TestNetwork, store: Store
) -> None:
    """validate_block compares the root before the rest of the header, so a block wrong in
    both is named for its root, wherever the root is worked out."""
    net = network
    net.commit_block(store, [net.issue().event])
    _forge_block(
        net, store, [net.issue().event], state_root=bytes(range(32)), registry_hash=bytes(32)
    )
    for roots in (None, LaggingRoots()):
        assert _audit(net, store, state=roots) == AuditReport(False, 1, 1, _LYING_ROOT_AT_2)


def test_the_audit_tree_is_the_stores(chain: tuple[TestNetwork, Store]) -> None:
    """The StateKeeper, fed each block's leaves, makes every header's root and exactly the
    stored nodes; and the roots come back in order, one a block, however late they are asked."""
    net, store = chain
    roots = LaggingRoots()
    assert _audit(net, store, state=roots) == AuditReport(True, 5, 11, None)
    assert roots.asked == 5 and not roots.waiting
    head = store.head
    assert head is not None and roots.keeper.root == head.state_root
    stored = list(store.readers.state_nodes.entries())
    assert roots.keeper.nodes.nodes == dict(stored)
    assert roots.keeper.nodes_fault(stored) is None


# -- what the store derived from the events ------------------------------------------------


def _some_record(store: Store) -> tuple[bytes, Any]:
    key, raw = next(iter(store.kv.items(keys.P_CERT)))
    from ledger.records import CertificateRecord

    return key, CertificateRecord.decode(raw)


def test_a_tampered_record(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    key, record = _some_record(store)
    poke(store, key, dataclasses.replace(record, status=VOIDED, reason="error").encode())
    report = _audit(net, store)
    assert report.height_checked == 5
    assert report.fault == (
        f"the stored record of {record.number} differs from what its events imply"
    )


def test_a_deleted_and_an_invented_record(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    key, record = _some_record(store)
    erase(store, key)
    report = _audit(net, store)
    assert report.fault == f"the record of {record.number} is missing from the store"
    poke(store, key, record.encode())
    invented = dataclasses.replace(
        record, facts=dataclasses.replace(record.facts, number="BE-2026-FAKE")
    )
    poke(store, keys.certificate("BE-2026-FAKE"), invented.encode())
    report = _audit(net, store)
    assert report.fault == "the store holds a record of BE-2026-FAKE that no event implies"


@pytest.mark.parametrize("which", range(4))
def test_a_deleted_index_entry(chain: tuple[TestNetwork, Store], which: int) -> None:
    net, store = chain
    _, record = _some_record(store)
    missing = index_keys(record)[which]
    erase(store, missing)
    report = _audit(net, store)
    assert report.ok is False and report.height_checked == 5
    assert report.fault is not None
    assert report.fault.startswith("an index entry is missing from the store: x/")
    assert record.number in report.fault


@pytest.mark.parametrize(
    "extra",
    [
        keys.P_IDX + b"s/voided\x002026-03-02\x00BE-2026-000001",
        keys.P_IDX + b"e/BE\x002026-03-02\x00BE-2026-999999",
        keys.P_IDX + b"d/garbage",
    ],
)
def test_an_extra_index_entry(chain: tuple[TestNetwork, Store], extra: bytes) -> None:
    net, store = chain
    poke(store, extra, b"")
    report = _audit(net, store)
    assert report.fault is not None
    assert report.fault.startswith("the store holds an index entry no record implies: x/")


def test_a_stale_status_entry(chain: tuple[TestNetwork, Store]) -> None:
    """What a store that forgot to drop the old status entry on a transition would hold."""
    net, store = chain
    _, record = _some_record(store)
    stale = dataclasses.replace(record, status="issued")
    [status_key] = [k for k in index_keys(stale) if k.startswith(keys.P_IDX + b"s/")]
    if record.status == "issued":
        stale = dataclasses.replace(record, status=VOIDED)
        [status_key] = [k for k in index_keys(stale) if k.startswith(keys.P_IDX + b"s/")]
    poke(store, status_key, b"")
    assert "no record implies" in (_audit(net, store).fault or "")


def test_tampered_statistics(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    key, value = next(iter(store.kv.items(keys.P_STATS)))
    certificates, carats, usd = decode(value)
    poke(store, key, encode([certificates, carats, usd + 100]))
    report = _audit(net, store)
    assert report.fault is not None and report.fault.startswith("the stored statistics t/")
    erase(store, key)
    report = _audit(net, store)
    assert report.fault is not None and report.fault.startswith("statistics are missing")
    poke(store, key, value)
    poke(store, keys.P_STATS + b"20261/e/BE/AE/7102.10", encode([1, 100, 100]))
    report = _audit(net, store)
    assert report.fault is not None and "statistics no record implies" in report.fault


def test_a_tampered_state_tree_node(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    key, node = next(iter(store.kv.items(keys.P_NODE)))
    poke(store, key, _flip(node, 40))
    report = _audit(net, store)
    assert report.fault is not None and "state tree node" in report.fault


# -- the public (light-client) audit ----------------------------------------------------------
def _public(net: TestNetwork, blocks: list[PublicBlock], head: int | None = None) -> AuditReport:
    return verify_public_chain(net.genesis, blocks, {}, len(blocks) if head is None else head)


def test_the_public_audit_passes_a_clean_chain(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    seen: list[int] = []
    report = verify_public_chain(
        net.genesis, public_blocks(store), {}, 5, progress=lambda h, _: seen.append(h)
    )
    assert report == AuditReport(True, 5, 11, None)
    assert seen == [1, 2, 3, 4, 5]


def test_the_public_audit_catches_each_fault(chain: tuple[TestNetwork, Store]) -> None:
    net, store = chain
    blocks = public_blocks(store)

    def at(index: int, **changes: Any) -> list[PublicBlock]:
        return [
            dataclasses.replace(b, **changes) if i == index else b for i, b in enumerate(blocks)
        ]

    flipped_header = at(2, header=_flip(blocks[2].header, 20))
    assert "block 3" in (_public(net, flipped_header).fault or "")
    # A header altered after it was signed: block 4 no longer links to it, or its certificate
    # no longer signs it.
    assert not _public(net, flipped_header).ok
    # Too few signers.
    header = store.header(2)
    assert header is not None
    weak = encode(net.commit_certificate(header, signers=[0, 1]).to_wire())
    report = _public(net, at(1, commit=weak))
    assert not report.ok and report.height_checked == 1 and "block 2" in (report.fault or "")
    # A certificate of another block.
    report = _public(net, at(1, commit=blocks[2].commit))
    assert not report.ok and "not for header 2" in (report.fault or "")
    # Events that are not the ones the header commits to.
    report = _public(net, at(2, leaves=list(reversed(blocks[2].leaves))))
    assert not report.ok and "events root" in (report.fault or "")
    report = _public(net, at(2, leaves=blocks[2].leaves[:-1]))
    assert not report.ok and "the header says" in (report.fault or "")
    # A missing block, and a chain that stops short of the head it claims.
    report = _public(net, blocks[:2] + blocks[3:])
    assert not report.ok and report.height_checked == 2
    report = _public(net, blocks[:3], head=5)
    assert not report.ok and "before its head 5" in (report.fault or "")
    # Another network's genesis.
    other = TestNetwork(seed="another")
    assert not verify_public_chain(other.genesis, blocks, {}, 5).ok
