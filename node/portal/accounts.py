"""Portal officer accounts: Argon2id password hashes, roles, disabling, and the lock-out after
repeated failed sign-ins (SPEC 7), kept in the node's store (the local family `l/o/`)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ledger.encoding import decode, encode
from ledger.errors import (
    MalformedInput,
    OfficerExists,
    StoreCorrupt,
    UnknownOfficer,
    WeakPassword,
)
from node.portal.roles import ROLES

#: An officer's name: what the activity log and `user list` show.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 256
#: SPEC 7: this many failed sign-ins in a row lock the account for LOCK_MS.
MAX_FAILURES = 5
LOCK_MS = 15 * 60 * 1000


class OfficerStore(Protocol):
    """The part of the node's store that keeps accounts (ledger/store: `l/o/`)."""

    def put_officer(self, name: str, record: bytes) -> None: ...

    def officers(self) -> Iterator[tuple[str, bytes]]: ...


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise MalformedInput(
            "an officer's name is 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting "
            "with a letter or digit"
        )
    return name


def check_role(role: Any) -> str:
    if role not in ROLES:
        raise MalformedInput(f"a role is one of {', '.join(ROLES)}, not {role!r}")
    return str(role)


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise WeakPassword(
            f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters (a phrase of several "
            "words is easiest to remember)"
        )
    return password


@dataclass(frozen=True)
class Account:
    """One officer as the node keeps them: never the password, only its Argon2id hash."""

    name: str
    role: str
    password_hash: str
    created_ms: int
    disabled_ms: int | None = None
    #: Failed sign-ins since the last good one (or the last lock-out).
    failures: int = 0
    locked_until_ms: int | None = None
    password_set_ms: int = 0

    def encode(self) -> bytes:
        return encode(
            [
                1,
                self.name,
                self.role,
                self.password_hash,
                self.created_ms,
                self.disabled_ms,
                self.failures,
                self.locked_until_ms,
                self.password_set_ms,
            ]
        )

    @classmethod
    def decode(cls, raw: bytes) -> Account:
        try:
            version, name, role, digest, created, disabled, failures, locked, set_ms = decode(raw)
        except (MalformedInput, ValueError, TypeError) as exc:
            raise StoreCorrupt(f"a portal account record does not decode: {exc}") from exc
        if version != 1 or role not in ROLES or not isinstance(digest, str):
            raise StoreCorrupt(f"the portal account record of {name!r} is not one this node writes")
        return cls(name, role, digest, created, disabled, failures, locked, set_ms)

    def locked(self, now_ms: int) -> bool:
        return self.locked_until_ms is not None and now_ms < self.locked_until_ms

    def state(self, now_ms: int) -> str:
        if self.disabled_ms is not None:
            return "disabled"
        if self.locked(now_ms):
            return "locked"
        return "active"

    def to_json(self, now_ms: int) -> dict[str, Any]:
        """What `user list` and the admin API show: everything but the hash."""
        return {
            "name": self.name,
            "role": self.role,
            "state": self.state(now_ms),
            "created_ms": self.created_ms,
            "disabled_ms": self.disabled_ms,
            "failures": self.failures,
            "locked_until_ms": self.locked_until_ms if self.locked(now_ms) else None,
            "password_set_ms": self.password_set_ms,
        }


@dataclass(frozen=True)
class SignIn:
    """How a sign-in went: `ok` (with the account), `wrong` (unknown name or wrong password:
    told apart to nobody), `locked` (until when), `disabled`; `locked_now` when this very
    failure locked the account."""

    outcome: str
    account: Account | None = None
    locked_until_ms: int | None = None
    locked_now: bool = False


class AccountBook:
    """The node's officer accounts, read from its store at start and written through it (synced)
    at each change. Thread-safe; the slow hash runs outside the lock."""

    def __init__(
        self,
        store: OfficerStore,
        clock: Callable[[], int],
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._store = store
        self.clock = clock
        #: argon2-cffi's defaults are RFC 9106's second recommendation: Argon2id, t=3, 64 MiB.
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        for name, raw in store.officers():
            account = Account.decode(raw)
            if account.name != name:
                raise StoreCorrupt(f"the portal account under {name!r} names {account.name!r}")
            self._accounts[name] = account
        # Verified against for an unknown name, so that its answer takes as long as a known one.
        self._decoy = self._hasher.hash("not a password of anyone here")

    def _put(self, account: Account) -> Account:
        self._store.put_officer(account.name, account.encode())
        self._accounts[account.name] = account
        return account

    def add(self, name: str, role: str, password: str) -> Account:
        check_name(name)
        check_role(role)
        digest = self._hasher.hash(check_password(password))
        now = self.clock()
        with self._lock:
            if name in self._accounts:
                raise OfficerExists(
                    f"an account named {name!r} exists (names are not reused, so that the "
                    "activity log names one person)"
                )
            return self._put(Account(name, role, digest, now, password_set_ms=now))

    def get(self, name: str) -> Account | None:
        with self._lock:
            return self._accounts.get(name)

    def _known(self, name: str) -> Account:
        account = self._accounts.get(name)
        if account is None:
            raise UnknownOfficer(f"no portal account named {name!r}")
        return account

    def disable(self, name: str) -> Account:
        """Disable an account from now on (idempotent); its sessions end at their next request."""
        with self._lock:
            account = self._known(check_name(name))
            if account.disabled_ms is not None:
                return account
            return self._put(replace(account, disabled_ms=self.clock()))

    def reset(self, name: str, password: str) -> Account:
        """A new password: the account is enabled again and unlocked, its failures forgotten."""
        check_name(name)
        digest = self._hasher.hash(check_password(password))
        now = self.clock()
        with self._lock:
            account = self._known(name)
            return self._put(
                replace(
                    account,
                    password_hash=digest,
                    password_set_ms=now,
                    disabled_ms=None,
                    failures=0,
                    locked_until_ms=None,
                )
            )

    def sign_in(self, name: str, password: str) -> SignIn:
        """Check a name and password. A locked or disabled account is refused without looking
        at the password; MAX_FAILURES wrong ones in a row lock it for LOCK_MS."""
        with self._lock:
            account = self._accounts.get(name)
        if account is None:
            self._verify(self._decoy, password)
            return SignIn("wrong")
        now = self.clock()
        if account.disabled_ms is not None:
            return SignIn("disabled")
        if account.locked(now):
            return SignIn("locked", locked_until_ms=account.locked_until_ms)
        good = self._verify(account.password_hash, password)
        with self._lock:
            current = self._accounts[name]
            if good:
                changed = replace(current, failures=0, locked_until_ms=None)
                if self._hasher.check_needs_rehash(current.password_hash):
                    changed = replace(changed, password_hash=self._hasher.hash(password))
                if changed != current:
                    self._put(changed)
                return SignIn("ok", account=changed)
            failures = current.failures + 1
            if failures >= MAX_FAILURES:
                until = now + LOCK_MS
                self._put(replace(current, failures=0, locked_until_ms=until))
                return SignIn("locked", locked_until_ms=until, locked_now=True)
            self._put(replace(current, failures=failures))
            return SignIn("wrong")

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(digest, password))
        except (VerificationError, InvalidHashError):
            return False

    def records(self) -> list[Account]:
        with self._lock:
            return sorted(self._accounts.values(), key=lambda a: a.name)
