"""Peer request signing and checking, in process: recipient, nonce, replay cache, body hash."""

from __future__ import annotations

import pytest

from ledger.errors import (
    BadSignature,
    LedgerError,
    PeerNotAllowed,
    PeerReplayed,
    PeerStale,
    PeerUnauthenticated,
    PeerWrongRecipient,
)
from ledger.genesis import Parameters
from ledger.hashing import sha256
from ledger.keys import SigningKey
from node.peers import (
    MAX_SKEW_MS,
    PeerGate,
    ReplayCache,
    consensus_body_bound,
    events_body_bound,
    final_block_bound,
    page_bound,
    sign_request,
)

CHAIN = "kp-peers"
NOW = 1_800_000_000_000
ALICE = SigningKey.from_seed(b"\x01" * 32)  # the sender
BOB = SigningKey.from_seed(b"\x02" * 32)  # the recipient
CAROL = SigningKey.from_seed(b"\x03" * 32)  # another node


def gate(node: SigningKey = BOB, entries: int = 1000) -> PeerGate:
    return PeerGate(CHAIN, node.public_bytes, entries)


def check(
    g: PeerGate,
    headers: dict[str, str],
    method: str = "POST",
    path: str = "/peer/events",
    now: int = NOW,
) -> bytes:
    allowed = {ALICE.public_bytes, BOB.public_bytes, CAROL.public_bytes}
    return g.check_headers(headers, allowed, method, path, now).node_key


def headers(body: bytes = b"[]", to: SigningKey = BOB, at: int = NOW, **kw: str) -> dict[str, str]:
    out = sign_request(ALICE, CHAIN, "POST", "/peer/events", body, at, to.public_bytes)
    out.update(kw)
    return out


def test_a_signed_request_passes_once_and_its_replay_is_refused() -> None:
    g = gate()
    h = headers()
    assert check(g, h) == ALICE.public_bytes
    with pytest.raises(PeerReplayed):
        check(g, h)
    # Another nonce: a new request.
    assert check(g, headers()) == ALICE.public_bytes


def test_a_request_for_one_node_is_refused_by_another() -> None:
    h = headers(to=BOB)
    with pytest.raises(PeerWrongRecipient):
        check(gate(CAROL), h)
    # Claiming CAROL as recipient without re-signing breaks the signature instead.
    forged = dict(h, **{"X-KP-To": gate(CAROL).own_id})
    with pytest.raises(BadSignature):
        check(gate(CAROL), forged)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"X-KP-Nonce": "00" * 8}, PeerUnauthenticated),  # 8 bytes, not 16
        ({"X-KP-Signature": "zz"}, PeerUnauthenticated),
        ({"X-KP-Body": ""}, PeerUnauthenticated),
        ({"X-KP-Node": SigningKey.from_seed(b"\x09" * 32).public_bytes.hex()}, PeerNotAllowed),
        ({"X-KP-Nonce": "11" * 16}, BadSignature),  # the nonce is signed
        ({"X-KP-Body": "22" * 32}, BadSignature),  # so is the body's hash
    ],
)
def test_headers_are_checked_before_the_body(
    change: dict[str, str], error: type[LedgerError]
) -> None:
    with pytest.raises(error):
        check(gate(), headers(**change))


def test_method_path_and_time_are_signed_and_the_time_must_be_fresh() -> None:
    g = gate()
    with pytest.raises(BadSignature):
        check(g, headers(), path="/peer/consensus")
    with pytest.raises(BadSignature):
        check(g, headers(), method="GET")
    for skew in (-MAX_SKEW_MS - 1, MAX_SKEW_MS + 1):
        with pytest.raises(PeerStale):
            check(g, headers(at=NOW + skew))


def test_the_body_must_hash_to_what_was_signed() -> None:
    g = gate()
    h = headers(b"[1]")
    signed = g.check_headers(h, {ALICE.public_bytes}, "POST", "/peer/events", NOW)
    PeerGate.check_body(signed, sha256(b"[1]"))
    with pytest.raises(BadSignature):
        PeerGate.check_body(signed, sha256(b"[2]"))


def test_the_replay_cache_is_bounded_and_never_forgets_into_a_replay() -> None:
    cache = ReplayCache(max_per_sender=100)
    sender = ALICE.public_bytes
    nonces = [i.to_bytes(16, "big") for i in range(300)]
    for i, nonce in enumerate(nonces):
        assert not cache.seen(sender, NOW + i, nonce, NOW + i)
        cache.add(sender, NOW + i, nonce, NOW + i)
        assert len(cache) <= 100
    # Every nonce ever accepted is refused again: remembered, or at or below the floor.
    assert all(cache.seen(sender, NOW + i, n, NOW + 300) for i, n in enumerate(nonces))
    # A new request newer than the floor passes; one older than it does not.
    assert not cache.seen(sender, NOW + 300, b"n" * 16, NOW + 300)
    assert cache.seen(sender, NOW + 150, b"o" * 16, NOW + 300)
    # Once out of the window, nonces are forgotten (the freshness check refuses those times).
    cache.add(sender, NOW + 300, b"n" * 16, NOW + 300 + MAX_SKEW_MS)
    assert len(cache) == 1
    # Other senders have their own window.
    assert not cache.seen(CAROL.public_bytes, NOW, nonces[0], NOW)


def test_message_bounds_follow_the_parameters() -> None:
    default = Parameters()
    small = Parameters(max_block_bytes=100 * 1024, max_block_events=200)
    for params in (default, small):
        block = final_block_bound(params, 4)
        assert params.max_block_bytes < block < params.max_block_bytes + 64 * 1024
        # A page is the budget, or one block alone if that is more.
        assert page_bound(1, params, 4) == block + 8
        assert page_bound(64 * 1024 * 1024, params, 4) == 64 * 1024 * 1024 + 8
        assert events_body_bound(params) < params.max_block_bytes + 64 * 1024
        assert consensus_body_bound(params, 4) < params.max_block_bytes + 64 * 1024
    # All far below the 64 MiB every peer body could take before.
    assert consensus_body_bound(default, 100) < 5 * 1024 * 1024
