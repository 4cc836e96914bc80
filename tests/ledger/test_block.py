"""Blocks and headers: links, Merkle roots, re-execution and what makes a block invalid."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ledger.block import (
    Block,
    Header,
    block_wire_bound,
    check_link,
    decode_event_leaf,
    event_leaf,
    events_root,
    leaf_event_id,
)
from ledger.chain import build_block, validate_block
from ledger.encoding import decode, encode
from ledger.errors import InvalidBlock, MalformedInput
from ledger.genesis import Parameters
from ledger.merkle import EMPTY_ROOT, inclusion_proof, verify_inclusion
from ledger.store import Store
from tests.helpers import TestNetwork


@pytest.fixture
def chain(network: TestNetwork, store: Store) -> tuple[TestNetwork, Store, list[Any]]:
    net = network
    a, b = net.issue(), net.issue(exporting="IN", importing="RU")
    net.commit_block(store, [a.event, b.event])
    net.commit_block(store, [net.confirm(a), net.void(b)])
    return net, store, [a, b]


def test_headers_link_to_the_genesis_and_each_other(
    chain: tuple[TestNetwork, Store, list[Any]],
) -> None:
    net, store, _ = chain
    first, second = store.header(1), store.header(2)
    assert first is not None and second is not None
    assert first.prev_hash == net.genesis.hash
    assert second.prev_hash == first.hash
    check_link(first, None, net.genesis.hash, net.chain_id)
    check_link(second, first, net.genesis.hash, net.chain_id)
    assert store.height_of(second.hash) == 2


def test_blocks_round_trip(chain: tuple[TestNetwork, Store, list[Any]]) -> None:
    _, store, _ = chain
    block = store.block(2)
    assert block is not None
    assert Block.decode(block.encode()) == block
    assert Header.decode(block.header.encoded) == block.header
    assert block.header.to_json()["hash"] == block.header.hash.hex()


def test_the_events_root_proves_each_event(chain: tuple[TestNetwork, Store, list[Any]]) -> None:
    _, store, _ = chain
    block = store.block(2)
    assert block is not None
    leaves = [event_leaf(e.event_id, e.type, e.number) for e in block.events]
    for index, event in enumerate(block.events):
        proof = inclusion_proof(leaves, index)
        assert verify_inclusion(leaves[index], index, len(leaves), proof, block.header.events_root)
        assert decode(leaves[index]) == [event.event_id, event.type, event.number]


def test_an_empty_block_has_the_empty_root(network: TestNetwork, store: Store) -> None:
    execution = network.commit_block(store, [])
    assert execution.header.events_root == EMPTY_ROOT == events_root([])
    assert execution.header.event_count == 0
    assert execution.header.state_root == bytes(32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"height": 3}, "expected height 2"),
        ({"prev_hash": bytes(32)}, "does not link"),
        ({"chain_id": "kp-other"}, "block for chain"),
        ({"time_ms": 0}, "does not move forward"),
    ],
)
def test_broken_links_are_refused(
    chain: tuple[TestNetwork, Store, list[Any]], change: dict[str, Any], message: str
) -> None:
    net, store, _ = chain
    first, second = store.header(1), store.header(2)
    assert first is not None and second is not None
    with pytest.raises(InvalidBlock, match=message):
        check_link(dataclasses.replace(second, **change), first, net.genesis.hash, net.chain_id)


def test_a_block_must_match_its_header(chain: tuple[TestNetwork, Store, list[Any]]) -> None:
    _, store, _ = chain
    block = store.block(1)
    assert block is not None
    with pytest.raises(InvalidBlock, match="count"):
        Block(block.header, block.events[:1]).check_body()
    with pytest.raises(InvalidBlock, match="Merkle root"):
        Block(block.header, block.events[::-1]).check_body()
    doubled = dataclasses.replace(block.header, event_count=3)
    with pytest.raises(InvalidBlock, match="twice"):
        Block(doubled, (*block.events, block.events[0])).check_body()


def _next_block(net: TestNetwork, store: Store, events: list[Any]) -> Block:
    return build_block(
        store,
        net.registry,
        net.genesis.hash,
        store.head,
        events,
        chain_id=net.chain_id,
        time_ms=net.tick(),
        proposer=1,
    ).block


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"proposer": 4}, "not a validator"),
        ({"validators_hash": bytes(32)}, "validator set"),
        ({"state_root": bytes(32)}, "state root"),
        ({"height": 1}, "expected height"),
    ],
)
def test_validation_refuses_a_header_that_lies(
    network: TestNetwork, store: Store, change: dict[str, Any], message: str
) -> None:
    net = network
    net.commit_block(store, [net.issue().event])
    block = _next_block(net, store, [net.issue().event])
    forged = Block(dataclasses.replace(block.header, **change), block.events)
    with pytest.raises(InvalidBlock, match=message):
        validate_block(store, net.registry, net.genesis.hash, store.head, forged)
    # The genuine block validates and yields the same header.
    execution = validate_block(store, net.registry, net.genesis.hash, store.head, block)
    assert execution.header == block.header


def test_a_block_over_the_byte_or_event_limits_is_refused(
    make_network: Any, make_store: Any
) -> None:
    """Every final block fits the bound catch-up reads it with (block_wire_bound)."""
    small = Parameters(max_block_bytes=32 * 1024, max_event_bytes=32 * 1024, max_block_events=100)
    net = make_network(parameters=small)
    store = make_store(net)
    events = [net.issue().event for _ in range(101)]
    sizes = [len(e.encoded) for e in events]
    fits = next(i for i in range(len(sizes)) if sum(sizes[: i + 1]) > small.max_block_bytes)
    # A proposer takes what fits (Mempool.take); build_block itself does not cut, so a
    # byzantine proposer could: such a block is refused on both counts.
    for chosen, reason in ((events[: fits + 1], "bytes"), (events[:101], "events")):
        block = _next_block(net, store, chosen)
        assert len(block.events) == len(chosen)
        with pytest.raises(InvalidBlock, match=reason):
            validate_block(store, net.registry, net.genesis.hash, store.head, block)
    block = _next_block(net, store, events[:fits])
    validate_block(store, net.registry, net.genesis.hash, store.head, block)
    assert len(block.encode()) <= block_wire_bound(small.max_block_events, small.max_block_bytes)


def test_a_block_of_another_chain_is_refused(network: TestNetwork, store: Store) -> None:
    """Events signed for another chain (same authority keys) must not replay into this one."""
    net = network
    other = TestNetwork(chain_id="kp-other")  # same seed, so the same keys
    for prev in (None, net.commit_block(store, []).header):
        built = build_block(
            store,
            net.registry,
            net.genesis.hash,
            prev,
            [other.issue().event],
            chain_id=other.chain_id,
            time_ms=net.tick(),
            proposer=1,
        )
        assert len(built.block.events) == 1  # applies under the other chain's id...
        with pytest.raises(InvalidBlock, match="block for chain 'kp-other'"):
            validate_block(
                store, net.registry, net.genesis.hash, prev, built.block, chain_id=net.chain_id
            )
    # From block 2 on, the previous header names the chain even when the caller does not.
    with pytest.raises(InvalidBlock, match="block for chain 'kp-other'"):
        validate_block(store, net.registry, net.genesis.hash, prev, built.block)


def test_block_time_always_moves_forward(network: TestNetwork, store: Store) -> None:
    net = network
    first = net.commit_block(store, [])
    second = net.execute(store, [], time_ms=first.header.time_ms - 5000)
    assert second.header.time_ms == first.header.time_ms + 1


def test_validation_does_not_depend_on_the_proposers_refusals(
    network: TestNetwork, store: Store
) -> None:
    net = network
    issuance = net.issue()
    built = build_block(
        store,
        net.registry,
        net.genesis.hash,
        None,
        [issuance.event, issuance.event, net.confirm(issuance, signer="IN")],
        chain_id=net.chain_id,
        time_ms=net.tick(),
        proposer=0,
    )
    assert len(built.block.events) == 1 and len(built.refused) == 2
    checked = validate_block(store, net.registry, net.genesis.hash, None, built.block)
    assert checked.header == built.header
    assert checked.tree_writes == built.tree_writes


_HEADER_WIRE = [1, "kp-test", 1, bytes(32), 1, 0, bytes(32), 0, *[bytes(32)] * 4]


def test_the_reference_header_wire_is_valid() -> None:
    assert Header.decode(encode(_HEADER_WIRE)).to_wire() == _HEADER_WIRE


@pytest.mark.parametrize(
    ("at", "value"),
    [
        (0, 2),  # version
        (1, 7),  # chain id
        (2, 0),  # height
        (2, True),
        (3, bytes(31)),  # prev_hash
        (4, -1),  # time
        (5, "0"),  # proposer
        (7, None),  # event count
        (8, b""),  # state root
        (11, bytes(33)),  # registry hash
        (12, bytes(32)),  # one field too many
        (-1, None),  # one field too few
    ],
)
def test_malformed_headers_are_refused(at: int, value: Any) -> None:
    wire = list(_HEADER_WIRE)
    if at == len(wire):
        wire.append(value)
    elif at == -1:
        wire.pop()
    else:
        wire[at] = value
    with pytest.raises(MalformedInput):
        Header.decode(encode(wire))


def test_a_block_of_too_many_events_is_refused(network: TestNetwork, store: Store) -> None:
    execution = network.commit_block(store, [network.issue().event, network.issue().event])
    with pytest.raises(InvalidBlock, match="at most 1"):
        Block.decode(execution.block.encode(), max_events=1)


def test_an_event_leaf_reads_back_as_it_was_made() -> None:
    event_id = bytes(range(32))
    leaf = event_leaf(event_id, "certificate.issue", "BE-2026-000001")
    assert decode_event_leaf(leaf) == (event_id, "certificate.issue", "BE-2026-000001")
    assert leaf_event_id(leaf) == event_id


@pytest.mark.parametrize(
    "leaf",
    [
        encode([bytes(31), "certificate.issue", "BE-1"]),
        encode([bytes(32), "certificate.issue"]),
        encode([bytes(32), 7, "BE-1"]),
        encode(bytes(32)),
        b"\x93\xc4\x20",
    ],
)
def test_what_is_no_event_leaf_is_refused(leaf: bytes) -> None:
    with pytest.raises(MalformedInput):
        decode_event_leaf(leaf)


@pytest.mark.parametrize(
    "leaf", [encode([bytes(31), "certificate.issue", "BE-1"]), encode(bytes(32)), b"\x93\xc4\x20"]
)
def test_a_leaf_without_an_event_id_has_none_to_read(leaf: bytes) -> None:
    with pytest.raises(MalformedInput):
        leaf_event_id(leaf)
