"""Node-to-node HTTP: signing our requests with the node key, and checking theirs against genesis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp

from ledger.encoding import encode
from ledger.hashing import TAG_PEER, sha256
from ledger.keys import SigningKey, verify

log = logging.getLogger("kpledger.peers")

MSGPACK = "application/msgpack"
#: A peer request older or newer than this is refused (replays beyond it are pointless anyway).
MAX_SKEW_MS = 60_000


def _payload(chain_id: str, method: str, path: str, time_ms: int, body: bytes) -> bytes:
    return encode([chain_id, method.upper(), path, time_ms, sha256(body)])


def sign_request(
    key: SigningKey, chain_id: str, method: str, path: str, body: bytes, now_ms: int
) -> dict[str, str]:
    signature = key.sign(TAG_PEER, _payload(chain_id, method, path, now_ms, body))
    return {
        "X-KP-Node": key.public_bytes.hex(),
        "X-KP-Time": str(now_ms),
        "X-KP-Signature": signature.hex(),
    }


class PeerAuthError(Exception):
    pass


def check_request(
    headers: Mapping[str, str],
    allowed: Iterable[bytes],
    chain_id: str,
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
) -> bytes:
    """Return the sender's node key, or raise PeerAuthError saying why the request is refused."""
    get = headers.get
    try:
        node_key = bytes.fromhex(get("X-KP-Node", ""))
        time_ms = int(get("X-KP-Time", ""))
        signature = bytes.fromhex(get("X-KP-Signature", ""))
    except ValueError as exc:
        raise PeerAuthError("missing or malformed X-KP-Node, X-KP-Time or X-KP-Signature") from exc
    if node_key not in set(allowed):
        raise PeerAuthError("the request is not signed by a node key listed in genesis")
    if abs(now_ms - time_ms) > MAX_SKEW_MS:
        raise PeerAuthError("the request's time is too far from ours")
    if not verify(node_key, TAG_PEER, _payload(chain_id, method, path, time_ms, body), signature):
        raise PeerAuthError("the request's signature does not verify under its node key")
    return node_key


@dataclass(frozen=True)
class Peer:
    node_key: bytes
    address: str
    participant: str


class PeerClient:
    """Kept-alive sessions to every peer; fire-and-forget sends and signed fetches."""

    def __init__(self, key: SigningKey, chain_id: str, timeout_s: float = 5.0) -> None:
        self.key = key
        self.chain_id = chain_id
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=1.0)
        self.failures: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit_per_host=8, keepalive_timeout=30),
            )
        return self._session

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = sign_request(self.key, self.chain_id, method, path, body, int(time.time() * 1000))
        headers["Content-Type"] = MSGPACK
        return headers

    async def post(self, peer: Peer, path: str, body: bytes) -> bool:
        try:
            async with self.session.post(
                peer.address + path, data=body, headers=self._headers("POST", path, body)
            ) as response:
                await response.read()
                ok = response.status < 300
        except (TimeoutError, aiohttp.ClientError, OSError):
            ok = False
        self.failures[peer.address] = 0 if ok else self.failures.get(peer.address, 0) + 1
        return ok

    def send(self, peer: Peer, path: str, body: bytes) -> None:
        """Post without waiting; a peer that is down misses it and catches up by sync later."""
        task = asyncio.get_running_loop().create_task(self._send(peer, path, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, peer: Peer, path: str, body: bytes) -> None:
        # A few quick retries with backoff, then give up: consensus re-sends what still matters.
        for attempt in range(3):
            if await self.post(peer, path, body):
                return
            await asyncio.sleep(0.05 * (2**attempt))

    async def get(self, peer: Peer, path: str) -> bytes | None:
        try:
            async with self.session.get(
                peer.address + path, headers=self._headers("GET", path, b"")
            ) as response:
                if response.status != 200:
                    return None
                return await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.failures[peer.address] = self.failures.get(peer.address, 0) + 1
            return None
