"""Portal sessions (SPEC 7): a random cookie value per signed-in officer, its CSRF token, and
the idle expiry. Held in the node's memory only: a restart signs everyone out, which is safe."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

#: SPEC 7: a session ends after 30 minutes without a request (node.toml portal_idle_minutes).
DEFAULT_IDLE_MS = 30 * 60 * 1000


def new_secret() -> str:
    """256 random bits, URL-safe: a session id or a CSRF token."""
    return secrets.token_urlsafe(32)


def same_secret(given: str | None, expected: str) -> bool:
    """Compare in constant time (a CSRF token, a cookie)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Session:
    name: str
    csrf: str
    created_ms: int
    last_ms: int


class SessionBook:
    """Live sessions, looked up by the hash of their cookie value (a memory dump shows no
    cookie that could be replayed). Each lookup within the idle time renews it."""

    def __init__(self, clock: Callable[[], int], idle_ms: int = DEFAULT_IDLE_MS) -> None:
        self.clock = clock
        self.idle_ms = idle_ms
        self._lock = threading.Lock()
        self._sessions: dict[bytes, Session] = {}

    @staticmethod
    def _key(cookie: str) -> bytes:
        return hashlib.sha256(cookie.encode("utf-8")).digest()

    def start(self, name: str) -> tuple[str, Session]:
        """A new session for officer `name`: its cookie value (given once) and the session."""
        cookie = new_secret()
        now = self.clock()
        session = Session(name, new_secret(), now, now)
        with self._lock:
            self._prune(now)
            self._sessions[self._key(cookie)] = session
        return cookie, session

    def get(self, cookie: str | None) -> Session | None:
        """The session of this cookie, renewed; None when unknown or idle too long (ended)."""
        if not cookie:
            return None
        key = self._key(cookie)
        now = self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.last_ms >= self.idle_ms:
                del self._sessions[key]
                return None
            session.last_ms = now
            return session

    def end(self, cookie: str | None) -> None:
        if cookie:
            with self._lock:
                self._sessions.pop(self._key(cookie), None)

    def end_all(self, name: str) -> int:
        """End every session of officer `name` (disabled, or a new password); how many."""
        with self._lock:
            doomed = [k for k, s in self._sessions.items() if s.name == name]
            for key in doomed:
                del self._sessions[key]
        return len(doomed)

    def _prune(self, now: int) -> None:
        idle = [k for k, s in self._sessions.items() if now - s.last_ms >= self.idle_ms]
        for key in idle:
            del self._sessions[key]
