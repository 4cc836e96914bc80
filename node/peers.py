"""Node-to-node HTTP: signing our requests with the node key, checking theirs before their bodies,
and the byte bounds of every peer message (docs/protocol.md section 9, docs/security.md)."""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import aiohttp

from ledger.block import block_wire_bound
from ledger.encoding import encode
from ledger.errors import (
    BadSignature,
    PeerClockStale,
    PeerNotAllowed,
    PeerReplayed,
    PeerStale,
    PeerUnauthenticated,
    PeerWrongRecipient,
)
from ledger.genesis import Parameters
from ledger.hashing import TAG_PEER, sha256
from ledger.keys import Signer, key_id, verify
from node import clock, tls

log = logging.getLogger("kpledger.peers")

MSGPACK = "application/msgpack"
#: A peer request older or newer than this is refused; within it, its nonce is remembered.
MAX_SKEW_MS = 60_000
NONCE_BYTES = 16

# -- byte bounds of peer messages ---------------------------------------------------------------
#: /peer/status answers [height, head hash]: a few dozen bytes.
STATUS_ANSWER_MAX = 1024
#: Array and bin headers around each [block, commit certificate] pair of a sync page.
PAGE_ITEM_OVERHEAD = 16
PAGE_OVERHEAD = 8
#: Default byte budget of one sync page (node.toml `sync_page_bytes`).
SYNC_PAGE_BYTES = 8 * 1024 * 1024
#: The count limit of one sync page, whatever its bytes.
SYNC_PAGE_BLOCKS = 256


def commit_wire_bound(validators: int) -> int:
    """The largest commit certificate of `validators` signers: ["commit", h, r, hash, [[i, sig]]]."""
    return 64 + 80 * validators


def final_block_bound(params: Parameters, validators: int) -> int:
    """One [block, commit certificate] pair of a sync page, at most."""
    return (
        block_wire_bound(params.max_block_events, params.max_block_bytes)
        + commit_wire_bound(validators)
        + PAGE_ITEM_OVERHEAD
    )


def page_bound(budget: int, params: Parameters, validators: int) -> int:
    """The largest sync page a peer may send for `budget`: blocks are added while they fit in it,
    and the first always goes, alone if it is larger (it is within the parameters' block bound)."""
    return max(budget, final_block_bound(params, validators)) + PAGE_OVERHEAD


def events_body_bound(params: Parameters) -> int:
    """POST /peer/events: a batch of events is cut at max_block_events and max_block_bytes
    (one event alone may take max_event_bytes, which is no more than max_block_bytes)."""
    return max(params.max_block_bytes, params.max_event_bytes) + 5 * params.max_block_events + 16


def consensus_body_bound(params: Parameters, validators: int) -> int:
    """POST /peer/consensus: one proposal with its block whole is the largest item."""
    return (
        block_wire_bound(params.max_block_events, params.max_block_bytes)
        + commit_wire_bound(validators)
        + 4096
    )


# -- signing and checking -------------------------------------------------------------------------
def _payload(
    chain_id: str,
    method: str,
    path: str,
    time_ms: int,
    nonce: bytes,
    recipient: str,
    body_hash: bytes,
) -> bytes:
    return encode([chain_id, method.upper(), path, time_ms, nonce, recipient, body_hash])


def sign_request(
    key: Signer,
    chain_id: str,
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
    recipient: bytes,
    nonce: bytes | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request to the node whose node key is `recipient`."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    to = key_id(recipient)
    body_hash = sha256(body)
    signature = key.sign(TAG_PEER, _payload(chain_id, method, path, now_ms, nonce, to, body_hash))
    return {
        "X-KP-Node": key.public_bytes.hex(),
        "X-KP-To": to,
        "X-KP-Time": str(now_ms),
        "X-KP-Nonce": nonce.hex(),
        "X-KP-Body": body_hash.hex(),
        "X-KP-Signature": signature.hex(),
    }


@dataclass(frozen=True)
class PeerHeaders:
    node_key: bytes
    recipient: str
    time_ms: int
    nonce: bytes
    body_hash: bytes
    signature: bytes

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> PeerHeaders:
        get = headers.get
        try:
            node_key = bytes.fromhex(get("X-KP-Node", ""))
            time_ms = int(get("X-KP-Time", ""))
            nonce = bytes.fromhex(get("X-KP-Nonce", ""))
            body_hash = bytes.fromhex(get("X-KP-Body", ""))
            signature = bytes.fromhex(get("X-KP-Signature", ""))
        except ValueError as exc:
            raise PeerUnauthenticated(
                "missing or malformed X-KP-Node, X-KP-To, X-KP-Time, X-KP-Nonce, X-KP-Body or "
                "X-KP-Signature (docs/protocol.md section 9)"
            ) from exc
        recipient = get("X-KP-To", "")
        if (
            len(node_key) != 32
            or len(nonce) != NONCE_BYTES
            or len(body_hash) != 32
            or len(signature) != 64
            or not 0 < len(recipient) <= 64
        ):
            raise PeerUnauthenticated(
                "X-KP-Node is 32 bytes, X-KP-Nonce 16, X-KP-Body 32 and X-KP-Signature 64, in hex; "
                "X-KP-To names the recipient's node key id"
            )
        return cls(node_key, recipient, time_ms, nonce, body_hash, signature)


@dataclass
class _SenderWindow:
    nonces: set[bytes] = field(default_factory=set)
    by_time: list[tuple[int, bytes]] = field(default_factory=list)
    #: Requests at or before this time are refused: their nonces may have left the window.
    floor_ms: int = -1


class ReplayCache:
    """The nonces of accepted peer requests still inside the freshness window, per sender.

    Bounded: at most `max_per_sender` nonces a sender. Past that, or once a request's time has
    left the window, its nonce is forgotten and the sender's floor rises to its time: a request
    at or before the floor is refused, so no forgotten nonce can come back (a clock that jumps
    back does not reopen the window either).
    """

    def __init__(self, max_per_sender: int = 50_000) -> None:
        self.max_per_sender = max_per_sender
        self._senders: dict[bytes, _SenderWindow] = {}

    def _forget_until(self, window: _SenderWindow, oldest_ms: int) -> None:
        while window.by_time and (
            window.by_time[0][0] < oldest_ms or len(window.by_time) > self.max_per_sender
        ):
            time_ms, nonce = heapq.heappop(window.by_time)
            window.nonces.discard(nonce)
            window.floor_ms = max(window.floor_ms, time_ms)

    def seen(self, sender: bytes, time_ms: int, nonce: bytes, now_ms: int) -> bool:
        """Whether a request must be refused as a replay (or as older than what is remembered)."""
        window = self._senders.get(sender)
        if window is None:
            return False
        self._forget_until(window, now_ms - MAX_SKEW_MS)
        return time_ms <= window.floor_ms or nonce in window.nonces

    def add(self, sender: bytes, time_ms: int, nonce: bytes, now_ms: int) -> None:
        window = self._senders.setdefault(sender, _SenderWindow())
        window.nonces.add(nonce)
        heapq.heappush(window.by_time, (time_ms, nonce))
        self._forget_until(window, now_ms - MAX_SKEW_MS)

    def __len__(self) -> int:
        return sum(len(w.nonces) for w in self._senders.values())


class PeerGate:
    """Checks a peer request from its headers alone, before a byte of its body is read.

    The signature covers the body's SHA-256 (X-KP-Body), so it is verified first; the body is
    then hashed as it is read and must match (check_body).
    """

    def __init__(self, chain_id: str, own_key: bytes, replay_entries: int = 50_000) -> None:
        self.chain_id = chain_id
        self.own_id = key_id(own_key)
        self.replays = ReplayCache(replay_entries)

    def check_headers(
        self,
        headers: Mapping[str, str],
        allowed: Iterable[bytes],
        method: str,
        path: str,
        now_ms: int,
    ) -> PeerHeaders:
        """The sender's checked headers; raises the LedgerError that says why not.

        Order: the form of the headers, the sender's key, the recipient, the time, the replay,
        then the signature (the most expensive check last); a good request's nonce is kept.
        """
        request = PeerHeaders.parse(headers)
        if request.node_key not in set(allowed):
            raise PeerNotAllowed(
                "the request is not signed by a node key of the register (genesis, then governance)"
            )
        if request.recipient != self.own_id:
            raise PeerWrongRecipient(
                f"the request is for node key {request.recipient}, not this node's ({self.own_id})"
            )
        payload = _payload(
            self.chain_id,
            method,
            path,
            request.time_ms,
            request.nonce,
            request.recipient,
            request.body_hash,
        )
        if abs(now_ms - request.time_ms) > MAX_SKEW_MS:
            # Signed, a refused time is still a reading of the sender's clock (node/health.py).
            if verify(request.node_key, TAG_PEER, payload, request.signature):
                raise PeerClockStale(request.node_key, request.time_ms)
            raise PeerStale("the request's time is more than 60 s from ours")
        if self.replays.seen(request.node_key, request.time_ms, request.nonce, now_ms):
            raise PeerReplayed("this request was already received (same sender and nonce)")
        if not verify(request.node_key, TAG_PEER, payload, request.signature):
            raise BadSignature("the request's signature does not verify under its node key")
        self.replays.add(request.node_key, request.time_ms, request.nonce, now_ms)
        return request

    @staticmethod
    def check_body(request: PeerHeaders, body_hash: bytes) -> None:
        if body_hash != request.body_hash:
            raise BadSignature("the body is not the one the request's signature covers")


# -- the client -----------------------------------------------------------------------------------
def _shown(exc: aiohttp.ServerFingerprintMismatch) -> str:
    got = exc.got
    return f"node key {key_id(got)}" if len(got) == 32 else "no Ed25519 node key"


@dataclass(frozen=True)
class Peer:
    node_key: bytes
    address: str
    participant: str


async def read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The whole answer, or None once it proves longer than `max_bytes` (not read further)."""
    if response.content_length is not None and response.content_length > max_bytes:
        return None
    chunks = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


#: The peer routes whose requests travel in the bulk lane (see PeerClient).
BULK_PATHS = ("/peer/events", "/peer/blocks")
#: Connections per peer in each lane. A request holds its connection for a round trip and more:
#: at 200 ms one way, 8 connections carry at most about 20 requests a second to a peer.
URGENT_CONNECTIONS = 8
#: How long an idle connection to a peer is kept for the next request.
KEEPALIVE_S = 10.0
BULK_CONNECTIONS = 16


class PeerClient:
    """Kept-alive sessions to every peer; fire-and-forget sends and signed, bounded fetches.

    Two lanes, each with its own connection pool: consensus messages and the fetch of a proposed
    block (urgent) never wait for a free connection behind event gossip or catch-up pages
    (bulk). Over a slow link a request holds its connection for a round trip or longer, and a
    shared pool let gossip at 50 events/s queue every vote behind it until the requests timed
    out (issue 13 item 4: head-of-line blocking). The time a request waits for a connection of
    its lane counts in its timeout, as before.
    """

    def __init__(
        self, key: Signer, chain_id: str, timeout_s: float = 5.0, tls_only: bool = False
    ) -> None:
        self.key = key
        self.chain_id = chain_id
        #: A TLS network's node sends nothing to a peer address that is not https:// (SPEC 6).
        self.tls_only = tls_only
        #: Connections closed because the peer did not show the node key the register lists
        #: for it (or the address is not https:// in a TLS network), by peer address.
        self.untrusted: dict[str, int] = {}
        self.on_untrusted: Callable[[str], None] | None = None
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=1.0)
        self.failures: dict[str, int] = {}
        #: Answers refused for being over the bound they were asked with, by peer address.
        self.oversized: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def lane(self, path: str, bulk: bool = False) -> aiohttp.ClientSession:
        """The session of a request's lane (bulk: the bulk paths; urgent: the rest)."""
        bulk = bulk or path.partition("?")[0] in BULK_PATHS
        session = self._sessions.get(bulk)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(
                    limit_per_host=BULK_CONNECTIONS if bulk else URGENT_CONNECTIONS,
                    # Below the peers' keep-alive deadline (node/connections.py, 15 s by
                    # default): a connection the peer closes as idle just as a request is sent
                    # on it loses that request (seen at saturation: the body cut off).
                    keepalive_timeout=KEEPALIVE_S,
                ),
            )
            self._sessions[bulk] = session
        return session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The urgent lane's session."""
        return self.lane("")

    async def drain(self, timeout_s: float) -> None:
        """Let the sends under way finish, for at most `timeout_s` (a clean stop's flush)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for session in self._sessions.values():
            await session.close()

    def _transport(self, peer: Peer) -> dict[str, object] | None:
        """The TLS arguments of a request to `peer`: its register key pinned (docs/security.md);
        None when the request must not be sent (a plain address in a TLS network)."""
        if peer.address.startswith("https://"):
            return {"ssl": tls.peer_pin(peer.node_key), "server_hostname": tls.NODE_SNI}
        if self.tls_only:
            self._refuse(peer, "the register gives it a plain http:// address")
            return None
        return {}

    def _refuse(self, peer: Peer, why: str) -> None:
        self.untrusted[peer.address] = self.untrusted.get(peer.address, 0) + 1
        if self.on_untrusted is not None:
            self.on_untrusted(peer.participant)
        log.warning(
            "peer refused: not the node the register lists",
            extra={"peer": peer.address, "participant": peer.participant, "why": why},
        )

    def _headers(self, peer: Peer, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = sign_request(
            self.key, self.chain_id, method, path, body, clock.now_ms(), peer.node_key
        )
        headers["Content-Type"] = MSGPACK
        return headers

    async def post(self, peer: Peer, path: str, body: bytes) -> bool:
        transport = self._transport(peer)
        if transport is None:
            return False
        try:
            async with self.lane(path).post(
                peer.address + path,
                data=body,
                headers=self._headers(peer, "POST", path, body),
                **transport,  # type: ignore[arg-type]
            ) as response:
                await read_bounded(response, 64 * 1024)
                ok = response.status < 300
        except aiohttp.ServerFingerprintMismatch as exc:
            self._refuse(peer, f"it shows {_shown(exc)}")
            ok = False
        except (TimeoutError, aiohttp.ClientError, OSError):
            ok = False
        self.failures[peer.address] = 0 if ok else self.failures.get(peer.address, 0) + 1
        return ok

    def send(
        self, peer: Peer, path: str, body: bytes, done: Callable[[bool], None] | None = None
    ) -> None:
        """Post without waiting; a peer that is down misses it and catches up by sync later.

        `done` is told whether the peer took it (pending events are sent again until it has).
        """
        task = asyncio.get_running_loop().create_task(self._send(peer, path, body, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, peer: Peer, path: str, body: bytes, done: Callable[[bool], None] | None
    ) -> None:
        # A few quick retries with backoff, then give up: consensus re-sends what still matters,
        # and the node re-gossips pending events.
        ok = False
        for attempt in range(3):
            if await self.post(peer, path, body):
                ok = True
                break
            await asyncio.sleep(0.05 * (2**attempt))
        if done is not None:
            done(ok)

    async def get(self, peer: Peer, path: str, max_bytes: int) -> bytes | None:
        """A 200 answer of at most `max_bytes`, or None (an answer over it is not read on)."""
        transport = self._transport(peer)
        if transport is None:
            return None
        try:
            async with self.lane(path).get(
                peer.address + path,
                headers=self._headers(peer, "GET", path, b""),
                **transport,  # type: ignore[arg-type]
            ) as response:
                if response.status != 200:
                    return None
                answer = await read_bounded(response, max_bytes)
        except aiohttp.ServerFingerprintMismatch as exc:
            self._refuse(peer, f"it shows {_shown(exc)}")
            self.failures[peer.address] = self.failures.get(peer.address, 0) + 1
            return None
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.failures[peer.address] = self.failures.get(peer.address, 0) + 1
            return None
        if answer is None:
            self.oversized[peer.address] = self.oversized.get(peer.address, 0) + 1
            log.warning(
                "a peer's answer is over its bound",
                extra={"peer": peer.address, "path": path.partition("?")[0], "bound": max_bytes},
            )
        return answer
