"""An observer's source of final blocks: the nodes that authorised it, asked over TLS pinned to
the register's node key for each, with the sync token each issued (docs/security.md, "Observers").

An observer is in no register, so the signed peer routes are closed to it. It reads a peer's
height from its public head and its blocks from the participant API's block pages, which a
token of scope `sync` opens; every block is checked against its commit certificate (sync.py).
"""

from __future__ import annotations

import json
import logging

import aiohttp

from node import tls
from node.peers import MSGPACK, Peer, read_bounded
from node.service.view import ChainView

log = logging.getLogger("kpledger.observer")

#: /v1/public/head answers one header and its commit certificate in JSON: a few KiB.
HEAD_ANSWER_MAX = 256 * 1024


class ObserverSource:
    """The BlockSource (node/service/sync.py) of an observer."""

    def __init__(
        self,
        view: ChainView,
        tokens: tuple[tuple[str, str], ...],
        tls_only: bool,
        timeout_s: float = 10.0,
    ) -> None:
        self.view = view
        #: Peer URL -> the sync token it issued, in node.toml's order.
        self.tokens = dict(tokens)
        self.tls_only = tls_only
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=2.0)
        self._session: aiohttp.ClientSession | None = None
        #: The peers named in node.toml that the register does not list, as last warned of.
        self._unlisted: frozenset[str] = frozenset()
        #: Answers refused (a wrong node key, a refused token, over the bound), by peer URL.
        self.failures: dict[str, int] = {}

    def peers(self) -> list[Peer]:
        """node.toml's peers that the register in force lists, each with the node key it lists
        for that address (the key their TLS must show). An unlisted one is skipped, and said."""
        registry = self.view.registry
        keys: dict[str, tuple[bytes, str]] = {}
        for v in (*registry.validators, *registry.pending_validators):
            keys.setdefault(v.address.rstrip("/"), (v.node_key, v.participant))
        for p in registry.participants.values():
            if p.active and p.node_key is not None and p.address:
                keys.setdefault(p.address.rstrip("/"), (p.node_key, p.code))
        found = []
        unlisted = []
        for url in self.tokens:
            if url in keys:
                node_key, who = keys[url]
                found.append(Peer(node_key, url, who))
            else:
                unlisted.append(url)
        if frozenset(unlisted) != self._unlisted:
            self._unlisted = frozenset(unlisted)
            if unlisted:
                log.warning(
                    "peers skipped: the register lists no node at their address",
                    extra={"peers": unlisted},
                )
        return found

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit_per_host=8, keepalive_timeout=30),
            )
        return self._session

    async def _get(self, peer: Peer, path: str, accept: str, bound: int) -> bytes | None:
        """A 200 answer of at most `bound` bytes, from `peer` showing its register key."""
        if peer.address.startswith("https://"):
            transport: dict[str, object] = {
                "ssl": tls.peer_pin(peer.node_key),
                "server_hostname": tls.NODE_SNI,
            }
        elif self.tls_only:
            self._failed(peer, "the register gives it a plain http:// address in a TLS network")
            return None
        else:
            transport = {}
        headers = {"Authorization": f"Bearer {self.tokens[peer.address]}", "Accept": accept}
        try:
            async with self._session_now().get(
                peer.address + path,
                headers=headers,
                **transport,  # type: ignore[arg-type]
            ) as response:
                if response.status != 200:
                    self._failed(peer, f"{path.partition('?')[0]} answered {response.status}")
                    return None
                answer = await read_bounded(response, bound)
        except aiohttp.ServerFingerprintMismatch:
            self._failed(peer, "it does not show the node key the register lists for it")
            return None
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.failures[peer.address] = self.failures.get(peer.address, 0) + 1
            return None
        if answer is None:
            self._failed(peer, f"its answer is over {bound} bytes")
        return answer

    def _failed(self, peer: Peer, why: str) -> None:
        self.failures[peer.address] = self.failures.get(peer.address, 0) + 1
        log.warning("a peer failed the observer", extra={"peer": peer.address, "why": why})

    async def height(self, peer: Peer) -> int | None:
        raw = await self._get(peer, "/v1/public/head", "application/json", HEAD_ANSWER_MAX)
        if raw is None:
            return None
        try:
            height = json.loads(raw)["header"]["height"]
        except (ValueError, KeyError, TypeError):
            return None
        # A height only says what to ask for: the blocks are checked when they come.
        return height if isinstance(height, int) and not isinstance(height, bool) else None

    async def page(
        self, peer: Peer, first: int, limit: int, max_bytes: int, bound: int
    ) -> bytes | None:
        # The participant API refuses a limit over 256 (the peer route clamps); ours is 64 at most.
        path = f"/v1/chain/blocks?from={first}&limit={min(limit, 256)}&max_bytes={max_bytes}"
        return await self._get(peer, path, MSGPACK, bound)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
