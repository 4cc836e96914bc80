"""The block Merkle tree against the RFC 6962 reference vectors and the RFC's recursive definitions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import MalformedInput
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    UpperTree,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    verify_inclusion,
)

# The repository's own copy comes first, so that a clone without ../shared still runs the vectors.
LOCAL_VECTORS = Path(__file__).resolve().parent / "vectors" / "rfc6962.json"
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "testvectors" / "rfc6962.json"


def load_vectors() -> dict[str, Any]:
    path = LOCAL_VECTORS if LOCAL_VECTORS.exists() else SHARED_VECTORS
    vectors: dict[str, Any] = json.loads(path.read_text())
    return vectors


VECTORS = load_vectors()
VECTOR_LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves_hex"]]


# The RFC's recursive definitions, written independently of the iterative code under test.
def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return _h(b"\x00" + leaves[0])
    k = _split(len(leaves))
    return _h(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:]))


def reference_path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*reference_path(index, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(index - k, leaves[k:]), reference_root(leaves[:k])]


def path_sides(index: int, size: int) -> list[str]:
    """Which side each proof hash joins on, leaf upward: all a verifier learns from (index, size)."""
    if size == 1:
        return []
    k = _split(size)
    if index < k:
        return [*path_sides(index, k), "right"]
    return [*path_sides(index - k, size - k), "left"]


def test_repository_copy_of_vectors_matches_shared() -> None:
    if not SHARED_VECTORS.exists():
        pytest.skip("no ../shared checkout next to the repository")
    assert json.loads(LOCAL_VECTORS.read_text()) == json.loads(SHARED_VECTORS.read_text())


def test_roots_of_reference_vectors() -> None:
    roots = [bytes.fromhex(root) for root in VECTORS["roots_by_size_hex"]]
    assert len(roots) == len(VECTOR_LEAVES) + 1
    for size, root in enumerate(roots):
        assert merkle_root(VECTOR_LEAVES[:size]) == root


def test_empty_tree_and_single_leaf() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle_root([b"kp"]) == leaf_hash(b"kp") == _h(b"\x00kp")
    assert inclusion_proof([b"kp"], 0) == []
    assert verify_inclusion(b"kp", 0, 1, [], leaf_hash(b"kp"))
    assert not verify_inclusion(b"", 0, 0, [], EMPTY_ROOT)


def test_inclusion_proofs_of_reference_vectors() -> None:
    for case in VECTORS["inclusion_proofs"]:
        index, size = case["index"], case["size"]
        expected = [bytes.fromhex(p) for p in case["proof"]]
        leaves = VECTOR_LEAVES[:size]
        assert inclusion_proof(leaves, index) == expected
        root = bytes.fromhex(VECTORS["roots_by_size_hex"][size])
        assert verify_inclusion(leaves[index], index, size, expected, root)


def test_every_proof_of_the_vector_trees_verifies() -> None:
    for size in range(1, len(VECTOR_LEAVES) + 1):
        leaves = VECTOR_LEAVES[:size]
        root = merkle_root(leaves)
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert proof == reference_path(index, leaves)
            assert verify_inclusion(leaves[index], index, size, proof, root)


def test_ten_thousand_leaves() -> None:
    leaves = [i.to_bytes(4, "big") for i in range(10_000)]
    root = merkle_root(leaves)
    assert root == reference_root(leaves)
    for index in (0, 4_095, 8_192, 9_999):
        assert verify_inclusion(leaves[index], index, 10_000, inclusion_proof(leaves, index), root)


@pytest.mark.parametrize("index", [-1, 3, 4, True])
def test_proof_of_a_missing_leaf_is_refused(index: int) -> None:
    with pytest.raises(MalformedInput):
        inclusion_proof([b"a", b"b", b"c"], index)


def trees(min_size: int) -> st.SearchStrategy[list[bytes]]:
    # Draw the size first: left alone, hypothesis favours short lists and big trees go untested.
    return st.integers(min_size, 300).flatmap(
        lambda n: st.lists(st.binary(max_size=8), min_size=n, max_size=n)
    )


leaf_lists = trees(1)


@settings(deadline=None)
@given(leaves=trees(0))
def test_root_matches_the_rfc_definition(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == reference_root(leaves)


@settings(deadline=None)
@given(leaves=leaf_lists)
def test_every_leaf_proves_inclusion(leaves: list[bytes]) -> None:
    root = merkle_root(leaves)
    for index, data in enumerate(leaves):
        assert verify_inclusion(data, index, len(leaves), inclusion_proof(leaves, index), root)


@settings(deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_proof_matches_the_rfc_path(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    assert inclusion_proof(leaves, index) == reference_path(index, leaves)


@settings(deadline=None)
@given(leaves=trees(0))
def test_a_kept_tree_answers_every_rfc_path_and_the_root(leaves: list[bytes]) -> None:
    tree = MerkleTree(leaves)
    assert tree.root == reference_root(leaves)
    for index in range(len(leaves)):
        assert tree.path(index) == reference_path(index, leaves)
    for outside in (-1, len(leaves), True):
        with pytest.raises(MalformedInput):
            tree.path(outside)


@settings(deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_any_alteration_fails(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    leaf = leaves[index]
    proof = inclusion_proof(leaves, index)
    root = merkle_root(leaves)
    assert verify_inclusion(leaf, index, size, proof, root)

    if leaf:
        at = data.draw(st.integers(0, len(leaf) - 1))
        flip = data.draw(st.integers(1, 255))
        altered = leaf[:at] + bytes([leaf[at] ^ flip]) + leaf[at + 1 :]
    else:
        altered = data.draw(st.binary(min_size=1, max_size=4))
    assert not verify_inclusion(altered, index, size, proof, root)

    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        at = data.draw(st.integers(0, 31))
        flip = data.draw(st.integers(1, 255))
        bad = list(proof)
        bad[which] = bad[which][:at] + bytes([bad[which][at] ^ flip]) + bad[which][at + 1 :]
        assert not verify_inclusion(leaf, index, size, bad, root)
        assert not verify_inclusion(leaf, index, size, proof[:which] + proof[which + 1 :], root)
    extra = data.draw(st.binary(min_size=32, max_size=32))
    at = data.draw(st.integers(0, len(proof)))
    assert not verify_inclusion(leaf, index, size, [*proof[:at], extra, *proof[at:]], root)

    at = data.draw(st.integers(0, 31))
    flip = data.draw(st.integers(1, 255))
    bad_root = root[:at] + bytes([root[at] ^ flip]) + root[at + 1 :]
    assert not verify_inclusion(leaf, index, size, proof, bad_root)

    # Another index verifies only where the same data sits with the very same path (duplicates).
    other = data.draw(st.integers(0, size + 3).filter(lambda i: i != index))
    genuine = other < size and leaves[other] == leaf and inclusion_proof(leaves, other) == proof
    assert verify_inclusion(leaf, other, size, proof, root) == genuine

    # The root does not bind the size: another size verifies exactly when its tree puts the same
    # siblings on the same sides along this path. Headers must authenticate the size.
    other_size = data.draw(st.integers(0, 2 * size + 2).filter(lambda n: n != size))
    same_shape = index < other_size and path_sides(index, other_size) == path_sides(index, size)
    assert verify_inclusion(leaf, index, other_size, proof, root) == same_shape


def test_size_is_not_bound_by_the_root() -> None:
    # Documented above and in verify_inclusion: leaf 0 of 3 has the same path shape as in 4.
    leaves = [b"a", b"b", b"c"]
    proof = inclusion_proof(leaves, 0)
    assert verify_inclusion(b"a", 0, 4, proof, merkle_root(leaves))
    assert not verify_inclusion(b"a", 0, 5, proof, merkle_root(leaves))


JUNK: list[Any] = [None, True, False, -1, 2**64, 1.5, "", "00" * 32, b"", b"\x00" * 31, [], {}]


@settings(deadline=None)
@given(
    leaf=st.sampled_from([b"a", *JUNK]),
    index=st.sampled_from([0, *JUNK]),
    size=st.sampled_from([1, 2, *JUNK]),
    proof=st.sampled_from([[], [b"\x00" * 32], b"\x00" * 32, [b"\x00" * 31], [None], *JUNK]),
    root=st.sampled_from([leaf_hash(b"a"), *JUNK]),
)
def test_bad_input_is_never_a_proof_and_never_raises(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    # type() as well as ==, since True == 1 and a bool is no index.
    valid = (
        leaf == b"a"
        and (type(index), index) == (int, 0)
        and (type(size), size) == (int, 1)
        and proof == []
        and root == leaf_hash(b"a")
    )
    assert verify_inclusion(leaf, index, size, proof, root) == valid


# Up to 700 leaves hashed a draw: on a loaded machine one draw can pass hypothesis's 200 ms.
@settings(deadline=None)
@given(st.integers(1, 700), st.integers(1, 6), st.data())
def test_an_upper_tree_gives_every_path_the_whole_tree_gives(
    size: int, k: int, data: st.DataObject
) -> None:
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    tree = MerkleTree(leaves)
    upper = UpperTree(tree, k)
    for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=10)):
        assert upper.path(index, leaves) == tree.path(index) == inclusion_proof(leaves, index)


def test_an_upper_tree_keeps_a_fraction_of_the_hashes_and_refuses_what_is_not_its_tree() -> None:
    leaves = [i.to_bytes(4, "big") for i in range(2000)]
    upper = UpperTree(MerkleTree(leaves), 6)
    assert sum(len(level) for level in upper._levels) == 32 * (32 + 16 + 8 + 4 + 2 + 1)
    with pytest.raises(MalformedInput, match="not in a tree of 2000 leaves"):
        upper.path(2000, leaves)
    with pytest.raises(MalformedInput, match="1999 leaves given for a tree of 2000"):
        upper.path(5, leaves[:-1])
