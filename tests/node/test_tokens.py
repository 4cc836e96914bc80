"""node/tokens.py: scoped, hashed, revocable, expiring API tokens, as the store keeps them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.errors import (
    MalformedInput,
    StoreCorrupt,
    TokenExists,
    TokenExpired,
    TokenRefused,
    TokenRevoked,
    TokenScope,
    UnknownToken,
)
from node.tokens import (
    ADMIN,
    CONFIG_TOKEN_NAME,
    READ,
    SYNC,
    Principal,
    TokenBook,
    TokenRecord,
    token_digest,
)

CONFIG_TOKEN = "the-api-token-of-node-toml"
DAY_MS = 86_400_000


class FakeStore:
    """The store's token family, in memory: what was written, in write order."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.writes = 0

    def put_api_token(self, name: str, record: bytes) -> None:
        self.records[name] = record
        self.writes += 1

    def api_tokens(self) -> Iterator[tuple[str, bytes]]:
        return iter(sorted(self.records.items()))


class Clock:
    def __init__(self) -> None:
        self.ms = 1_780_000_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def book() -> tuple[TokenBook, FakeStore, Clock]:
    store, clock = FakeStore(), Clock()
    return TokenBook(store, CONFIG_TOKEN, clock), store, clock


def test_node_toml_token_is_admin(book: tuple[TokenBook, FakeStore, Clock]) -> None:
    tokens, _, _ = book
    assert tokens.check(CONFIG_TOKEN) == Principal(CONFIG_TOKEN_NAME, ADMIN)
    with pytest.raises(TokenRefused) as refused:
        tokens.check("not-a-token")
    assert type(refused.value) is TokenRefused and "not-a-token" not in refused.value.message


def test_a_token_is_stored_as_its_hash_only(book: tuple[TokenBook, FakeStore, Clock]) -> None:
    tokens, store, _ = book
    token, record = tokens.add("customs-be", READ)
    assert token.startswith("kpt_") and len(token) == 4 + 43
    assert record.digest == token_digest(token)
    assert token.encode() not in store.records["customs-be"]
    assert tokens.check(token) == Principal("customs-be", READ)
    assert "token" not in record.to_json(0) and "digest" not in record.to_json(0)


def test_scopes(book: tuple[TokenBook, FakeStore, Clock]) -> None:
    tokens, _, _ = book
    read, _ = tokens.add("reader", READ)
    admin, _ = tokens.add("boss", ADMIN)
    TokenBook.require(tokens.check(read), READ)
    TokenBook.require(tokens.check(admin), READ)
    TokenBook.require(tokens.check(admin), ADMIN)
    with pytest.raises(TokenScope, match="'reader' has scope 'read'"):
        TokenBook.require(tokens.check(read), ADMIN)


def test_a_sync_token_opens_the_block_pages_and_nothing_more(
    book: tuple[TokenBook, FakeStore, Clock],
) -> None:
    """An observer's token (docs/security.md, "Observers"): the smallest scope."""
    tokens, _, _ = book
    sync, _ = tokens.add("observer-1", SYNC)
    read, _ = tokens.add("reader", READ)
    TokenBook.require(tokens.check(sync), SYNC)
    TokenBook.require(tokens.check(read), SYNC)  # a read token opened the pages before
    for needed in (READ, ADMIN):
        with pytest.raises(TokenScope, match="'observer-1' has scope 'sync'"):
            TokenBook.require(tokens.check(sync), needed)
    assert TokenRecord.decode(tokens.records()[0].encode()).scope == SYNC


def test_revoked_and_expired_are_refused_at_once(book: tuple[TokenBook, FakeStore, Clock]) -> None:
    tokens, _, clock = book
    token, _ = tokens.add("shortlived", READ, expires_days=1)
    keep, _ = tokens.add("kept", READ)
    clock.ms += DAY_MS - 1
    assert tokens.check(token).name == "shortlived"
    clock.ms += 1
    with pytest.raises(TokenExpired, match="'shortlived' has expired"):
        tokens.check(token)
    tokens.revoke("kept")
    with pytest.raises(TokenRevoked, match="'kept' was revoked"):
        tokens.check(keep)
    assert {r.name: r.state(clock.ms) for r in tokens.records()} == {
        "kept": "revoked",
        "shortlived": "expired",
    }
    # Revoking again changes nothing; an unknown name is a 404.
    first = tokens.revoke("kept").revoked_ms
    clock.ms += 5
    assert tokens.revoke("kept").revoked_ms == first
    with pytest.raises(UnknownToken):
        tokens.revoke("nobody")


def test_names_in_force_are_unique_and_freed_by_revocation(
    book: tuple[TokenBook, FakeStore, Clock],
) -> None:
    tokens, _, _ = book
    old, _ = tokens.add("ops", ADMIN)
    with pytest.raises(TokenExists):
        tokens.add("ops", READ)
    tokens.revoke("ops")
    new, record = tokens.add("ops", READ)
    assert record.revoked_ms is None and tokens.check(new) == Principal("ops", READ)
    with pytest.raises(TokenRefused):  # the old token is gone with its record
        tokens.check(old)


@pytest.mark.parametrize(
    "name,scope,days",
    [
        ("", READ, None),
        ("Upper", READ, None),
        ("-dash-first", READ, None),
        ("a" * 65, READ, None),
        ("sp ace", READ, None),
        (CONFIG_TOKEN_NAME, READ, None),
        ("fine", "write", None),
        ("fine", READ, 0),
        ("fine", READ, 3651),
        ("fine", READ, True),
    ],
)
def test_bad_requests_change_nothing(
    book: tuple[TokenBook, FakeStore, Clock], name: str, scope: str, days: int | None
) -> None:
    tokens, store, _ = book
    with pytest.raises(MalformedInput):
        tokens.add(name, scope, days)
    assert store.writes == 0 and tokens.records() == []


def test_tokens_survive_a_restart_and_a_damaged_record_is_named(
    book: tuple[TokenBook, FakeStore, Clock],
) -> None:
    tokens, store, clock = book
    token, _ = tokens.add("durable", ADMIN, expires_days=30)
    revoked, _ = tokens.add("gone", READ)
    tokens.revoke("gone")
    again = TokenBook(store, CONFIG_TOKEN, clock)
    assert again.check(token) == Principal("durable", ADMIN)
    with pytest.raises(TokenRevoked):
        again.check(revoked)
    store.records["broken"] = b"\xc1"
    with pytest.raises(StoreCorrupt):
        TokenBook(store, CONFIG_TOKEN, clock)
    store.records["broken"] = TokenRecord("other", READ, b"x" * 32, 0).encode()
    with pytest.raises(StoreCorrupt, match="names 'other'"):
        TokenBook(store, CONFIG_TOKEN, clock)
