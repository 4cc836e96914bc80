"""The public route's caches give exactly the bytes the uncached proof builder gives."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.block import event_leaf
from ledger.errors import InvalidProof
from ledger.merkle import inclusion_proof
from ledger.proofs import FinalHeader, build_certificate_proof
from ledger.store import Store
from node.http.caches import BlockCache, PublicAnswer, _FinalBlock
from node.http.public import proof_base64
from tests.helpers import TestNetwork


def _leaves(n: int) -> list[bytes]:
    return [event_leaf(i.to_bytes(32, "big"), "certificate.issue", f"BE-{i}") for i in range(n)]


@given(st.integers(1, 300), st.data())
def test_cached_paths_are_rfc_9162_paths(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    block = _FinalBlock(None, leaves)  # type: ignore[arg-type]  # the header is not used here
    for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=8)):
        assert list(block.path(index)) == inclusion_proof(leaves, index)
        assert block.index_of(index.to_bytes(32, "big")) == index


def test_an_id_found_across_two_ids_is_not_taken_for_one() -> None:
    target = bytes(range(32))
    straddle = bytes(16) + target[:16]
    after = target[16:] + bytes(16)
    leaves = [event_leaf(i, "certificate.void", "BE-1") for i in (straddle, after, target)]
    final = SimpleNamespace(header=SimpleNamespace(height=7))
    block = _FinalBlock(final, leaves)  # type: ignore[arg-type]
    assert block.index_of(target) == 2
    with pytest.raises(InvalidProof, match="block 7 holds no event"):
        block.index_of(b"\x09" * 32)


def test_proofs_built_through_the_cache_are_the_same_bytes(tmp_path: Path) -> None:
    net = TestNetwork()
    store = Store(tmp_path / "chain", net.genesis)
    try:
        issued = [net.issue(exporting="BE", importing=imp) for imp in ("AE", "IN", "RU") * 5]
        net.commit_block(store, [i.event for i in issued[:7]])
        net.commit_block(store, [i.event for i in issued[7:]])
        net.commit_block(store, [net.confirm(issued[0]), net.void(issued[8])])
        net.commit_block(store, [])
        cache = BlockCache(store, size=2)  # smaller than the chain: entries come and go
        numbers = [i.event.body.number for i in issued] + ["BE-NOT-THERE"]
        for _round in range(2):
            for number in numbers:
                cached = build_certificate_proof(store, number, cache)
                plain = build_certificate_proof(store, number)
                assert cached.encode() == plain.encode()
                assert proof_base64(cached) == plain.to_base64()
        assert len(cache.blocks) == 2
        assert isinstance(cache.final_header(1), FinalHeader)
    finally:
        store.close()


def test_blocks_past_the_whole_tree_cache_keep_their_upper_levels_and_the_same_proofs(
    tmp_path: Path,
) -> None:
    net = TestNetwork()
    store = Store(tmp_path / "chain", net.genesis)
    try:
        # Blocks of 1 to 150 events: trees of one subtree and of several, a partial last one.
        issued = [net.issue(exporting="BE", importing=imp) for imp in ("AE", "IN", "RU") * 60]
        sizes = [1, 150, 64, 29]
        start = 0
        for size in sizes:
            net.commit_block(store, [i.event for i in issued[start : start + size]])
            start += size
        cache = BlockCache(store, size=1, upper_size=3)
        numbers = [i.event.body.number for i in issued[:start]]
        for _round in range(2):
            for number in numbers:
                cached = build_certificate_proof(store, number, cache)
                assert cached.encode() == build_certificate_proof(store, number).encode()
        # The second round's proofs of blocks 1 to 3 came from their upper levels: no whole
        # tree was made again for them (it would have pushed block 4 out).
        assert list(cache.blocks) == [4] and sorted(cache.uppers) == [1, 2, 3]
        for height in list(cache.uppers):
            assert cache.final_header(height).header.height == height
    finally:
        store.close()


def test_the_digest_check_is_spliced_into_the_answer() -> None:
    import json

    answer = PublicAnswer(
        200, json.dumps({"number": "BE-1", "digest": "ab" * 32}).encode(), "ab" * 32
    )
    assert json.loads(answer.with_digest_check("ab" * 32)) == {
        "digest_matches": True,
        "number": "BE-1",
        "digest": "ab" * 32,
    }
    assert json.loads(answer.with_digest_check("cd" * 32))["digest_matches"] is False
