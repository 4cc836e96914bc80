"""The node's API tokens: scoped (`sync`, `read`, `admin`), stored as a hash only, revocable and expiring,
kept in the node's store; node.toml's `api_token` is an admin token (SPEC 6, docs/security.md)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ledger.encoding import decode, encode
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

#: An observer's (docs/security.md, "Observers"): the pages of final blocks, nothing else.
SYNC = "sync"
READ = "read"
ADMIN = "admin"
#: What each scope opens, the smaller first: `admin` opens everything `read` does, and `read`
#: everything `sync` does (the block pages were a `read` route before `sync` existed).
SCOPES = (SYNC, READ, ADMIN)
#: The name node.toml's api_token goes by in logs and answers.
CONFIG_TOKEN_NAME = "node.toml"
#: Tokens the node makes start so: a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "kpt_"
#: A token's name: what logs and `token list` show in its place.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_EXPIRES_DAYS = 3650
_DAY_MS = 86_400_000


class TokenStore(Protocol):
    """The part of the node's store that keeps tokens (ledger/store: the local family `l/t/`)."""

    def put_api_token(self, name: str, record: bytes) -> None: ...

    def api_tokens(self) -> Any: ...


def token_digest(token: str) -> bytes:
    """What is stored of a token: SHA-256 of it. A token holds 256 random bits, so a fast hash
    is enough (nobody can search that space); a slow password hash would only slow each request
    (docs/security.md, "API tokens")."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise MalformedInput(
            "a token name is 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a "
            "letter or digit"
        )
    if name == CONFIG_TOKEN_NAME:
        raise MalformedInput(f"{CONFIG_TOKEN_NAME!r} names node.toml's api_token")
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise MalformedInput(f"a token's scope is {' or '.join(SCOPES)}, not {scope!r}")
    return scope


def allows(held: str, needed: str) -> bool:
    """Whether a token of scope `held` opens a route that needs `needed`."""
    return SCOPES.index(held) >= SCOPES.index(needed)


@dataclass(frozen=True)
class TokenRecord:
    """What the node keeps of one token: never the token, only its hash."""

    name: str
    scope: str
    digest: bytes
    created_ms: int
    expires_ms: int | None = None
    revoked_ms: int | None = None

    def encode(self) -> bytes:
        return encode(
            [
                1,
                self.name,
                self.scope,
                self.digest,
                self.created_ms,
                self.expires_ms,
                self.revoked_ms,
            ]
        )

    @classmethod
    def decode(cls, raw: bytes) -> TokenRecord:
        try:
            version, name, scope, digest, created, expires, revoked = decode(raw)
        except (MalformedInput, ValueError, TypeError) as exc:
            raise StoreCorrupt(f"an API token record does not decode: {exc}") from exc
        if version != 1 or scope not in SCOPES or not isinstance(digest, bytes):
            raise StoreCorrupt(f"the API token record of {name!r} is not one this node writes")
        return cls(name, scope, digest, created, expires, revoked)

    def state(self, now_ms: int) -> str:
        if self.revoked_ms is not None:
            return "revoked"
        if self.expires_ms is not None and now_ms >= self.expires_ms:
            return "expired"
        return "active"

    def to_json(self, now_ms: int) -> dict[str, Any]:
        """What `token list` and the admin API show: everything but the hash."""
        return {
            "name": self.name,
            "scope": self.scope,
            "state": self.state(now_ms),
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "revoked_ms": self.revoked_ms,
        }


@dataclass(frozen=True)
class Principal:
    """Who a request's token says it is: the token's name and scope."""

    name: str
    scope: str


class TokenBook:
    """The node's tokens, read from its store at start and written through it (synced) at each
    change; checked in memory at each request, so that a revocation holds from the next request
    on. Thread-safe: the admin routes and the request checks may come from several threads."""

    def __init__(self, store: TokenStore, config_token: str, clock: Callable[[], int]) -> None:
        self._store = store
        self._config_digest = token_digest(config_token)
        self.clock = clock
        self._lock = threading.Lock()
        self._by_name: dict[str, TokenRecord] = {}
        self._by_digest: dict[bytes, str] = {}
        for name, raw in store.api_tokens():
            record = TokenRecord.decode(raw)
            if record.name != name:
                raise StoreCorrupt(f"the API token record under {name!r} names {record.name!r}")
            self._by_name[name] = record
            self._by_digest[record.digest] = name

    def check(self, presented: str) -> Principal:
        """The principal a bearer token stands for; 401 for one that is unknown, revoked or
        expired (each told apart, and never echoed)."""
        digest = token_digest(presented)
        # Looked up by its hash: the lookup's timing tells nothing about the token itself.
        if hmac.compare_digest(digest, self._config_digest):
            return Principal(CONFIG_TOKEN_NAME, ADMIN)
        with self._lock:
            name = self._by_digest.get(digest)
            record = self._by_name.get(name) if name is not None else None
        if record is None:
            raise TokenRefused("token refused: it is not a token of this node")
        state = record.state(self.clock())
        if state == "revoked":
            raise TokenRevoked(f"token refused: {record.name!r} was revoked")
        if state == "expired":
            raise TokenExpired(f"token refused: {record.name!r} has expired")
        return Principal(record.name, record.scope)

    def is_valid(self, presented: str) -> bool:
        """Whether `presented` is a token in force (the rate limits' "own client" test)."""
        try:
            self.check(presented)
        except TokenRefused:
            return False
        return True

    @staticmethod
    def require(principal: Principal, needed: str) -> None:
        """403 unless the principal's scope opens a route that needs `needed`."""
        if not allows(principal.scope, needed):
            raise TokenScope(
                f"the token {principal.name!r} has scope {principal.scope!r}; this route needs "
                f"{needed!r}"
            )

    def add(
        self, name: str, scope: str, expires_days: int | None = None
    ) -> tuple[str, TokenRecord]:
        """A new token (returned once, never kept) and its record. A name in force is refused;
        a revoked or expired one may be given to a new token."""
        check_name(name)
        check_scope(scope)
        if expires_days is not None and not (
            isinstance(expires_days, int)
            and not isinstance(expires_days, bool)
            and 1 <= expires_days <= MAX_EXPIRES_DAYS
        ):
            raise MalformedInput(f"expires_days is 1 to {MAX_EXPIRES_DAYS}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 random bits
        now = self.clock()
        record = TokenRecord(
            name,
            scope,
            token_digest(token),
            now,
            now + expires_days * _DAY_MS if expires_days is not None else None,
        )
        with self._lock:
            old = self._by_name.get(name)
            if old is not None and old.state(now) == "active":
                raise TokenExists(f"a token named {name!r} is in force: revoke it first")
            self._store.put_api_token(name, record.encode())
            if old is not None:
                self._by_digest.pop(old.digest, None)
            self._by_name[name] = record
            self._by_digest[record.digest] = name
        return token, record

    def revoke(self, name: str) -> TokenRecord:
        """Revoke a token from now on (idempotent: a revoked one stays as it was)."""
        with self._lock:
            record = self._by_name.get(name)
            if record is None:
                raise UnknownToken(f"no token named {name!r}")
            if record.revoked_ms is not None:
                return record
            revoked = replace(record, revoked_ms=self.clock())
            self._store.put_api_token(name, revoked.encode())
            self._by_name[name] = revoked
            return revoked

    def records(self) -> list[TokenRecord]:
        with self._lock:
            return sorted(self._by_name.values(), key=lambda r: r.name)

    def now_ms(self) -> int:
        return self.clock()
