"""Catch-up: peers' heights, pages of final blocks fetched from several peers at once, each
checked against its commit certificate before it is applied; and the pages this node serves.

Where the blocks come from is a BlockSource: the register's nodes over the signed peer routes
(PeerSource), or for an observer the nodes that authorised it (node/service/observer.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from ledger.block import Block
from ledger.chain import Execution, validate_block
from ledger.consensus.messages import CommitCertificate, quorum_size
from ledger.encoding import decode
from ledger.errors import InvalidBlock, LedgerError, MalformedInput
from ledger.governance import register_for_block
from ledger.registry import Registry
from node.health import Health
from node.mempool import Mempool
from node.metrics import Metrics
from node.peers import PAGE_ITEM_OVERHEAD, STATUS_ANSWER_MAX, Peer, page_bound
from node.service.view import ChainView, PeerLink

log = logging.getLogger("kpledger.node")

SYNC_BATCH = 64
SYNC_INTERVAL_S = 2.0


class Committer(Protocol):
    """Who writes a final block and moves the node on (the consensus driver's commit)."""

    def commit(self, execution: Execution, cert: CommitCertificate) -> None: ...


class BlockSource(Protocol):
    """The nodes a node catches up from, their heights and their pages of final blocks (none of
    which is trusted: every block is checked against its commit certificate)."""

    def peers(self) -> list[Peer]:
        """The nodes to ask, as of now (the register may have changed)."""
        ...

    async def height(self, peer: Peer) -> int | None:
        """The peer's final height, or None when it does not answer (or answers nonsense)."""
        ...

    async def page(
        self, peer: Peer, first: int, limit: int, max_bytes: int, bound: int
    ) -> bytes | None:
        """The encoded page [[block, certificate], ...] from `first`, at most `limit` blocks
        within `max_bytes`; None if the answer fails or is over `bound`."""
        ...


class PeerSource:
    """The register's other validators, over the signed peer routes (/peer/status, /peer/blocks)."""

    def __init__(self, view: ChainView, link: PeerLink) -> None:
        self.view = view
        self.link = link

    def peers(self) -> list[Peer]:
        return self.view.peers

    async def height(self, peer: Peer) -> int | None:
        raw = await self.link.get(peer, "/peer/status", STATUS_ANSWER_MAX)
        if raw is None:
            return None
        try:
            status = decode(raw, STATUS_ANSWER_MAX)
            return int(status[0])
        except (LedgerError, ValueError, TypeError, IndexError, KeyError):
            return None

    async def page(
        self, peer: Peer, first: int, limit: int, max_bytes: int, bound: int
    ) -> bytes | None:
        path = f"/peer/blocks?from={first}&limit={limit}&max_bytes={max_bytes}"
        return await self.link.get(peer, path, bound)


class PeerHeights:
    """The best height a peer has shown us, and the wake-up of the sync loop when it is ahead."""

    def __init__(self, view: ChainView) -> None:
        self.view = view
        self.best = 0
        self.wakeup = asyncio.Event()

    def note(self, height: int) -> None:
        """A peer showed (by a vote, a proposal, a certificate) that `height` is final."""
        if height > self.view.store.height:
            self.best = max(self.best, height)
            self.wakeup.set()


class Sync:
    def __init__(
        self,
        view: ChainView,
        mempool: Mempool,
        heights: PeerHeights,
        committer: Committer,
        source: BlockSource,
        page_bytes: int,
        health: Health,
        metrics: Metrics,
        *,
        held: Callable[[bytes], Execution | None] | None = None,
    ) -> None:
        self.view = view
        self.mempool = mempool
        self.heights = heights
        self.committer = committer
        self.source = source
        #: Our budget for one page (node.toml sync_page_bytes), asked and served.
        self.page_bytes = page_bytes
        self.health = health
        self.metrics = metrics
        #: Blocks asked of each peer per sync page; it follows the pages' lengths (sync_once).
        self._span = SYNC_BATCH
        #: What this node already made of a block of the next height, by its hash (the blocks
        #: proposed at that height that it judged valid): a final block it holds so is not
        #: executed a second time when it arrives by catch-up.
        self.held = held

    def loop(self) -> asyncio.Task[None]:
        """Start catching up now and whenever a peer is seen ahead (at least every
        SYNC_INTERVAL_S); the caller cancels it at stop."""
        self.heights.wakeup.set()
        return asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.heights.wakeup.wait(), SYNC_INTERVAL_S)
            except TimeoutError:
                pass
            self.heights.wakeup.clear()
            try:
                await self.sync_once()
            except Exception:
                log.exception("catch-up failed")

    async def peer_heights(self) -> dict[str, int]:
        peers = self.source.peers()
        answers = await asyncio.gather(*(self.source.height(p) for p in peers))
        heights = {}
        up = 0
        for peer, height in zip(peers, answers, strict=True):
            if height is None:
                continue
            up += 1
            heights[peer.address] = height
        self.metrics.peers_up.set(up)
        self.health.observe_peers(heights, up, self.peers_needed())
        return heights

    def page_bound(self) -> int:
        """The largest page we read or decode: our budget, or one block of the parameters in
        force at our next height if that is larger (a page's first block goes even alone)."""
        registry = self.view.registry
        return page_bound(self.page_bytes, registry.parameters, len(registry.validators))

    def peers_needed(self) -> int:
        """Peers a validator must reach to make a quorum with its own vote; one for any other."""
        view = self.view
        if not self.source.peers():
            return 0
        if not view.is_validator:
            return 1
        return quorum_size(len(view.validator_keys)) - 1

    async def sync_once(self) -> int:
        """Fetch and apply final blocks we lack, from several peers at once. Returns blocks applied.

        Each peer is asked for a page of `span` blocks (within our byte budget) following the
        previous peer's; a page cut short by its byte budget leaves a gap, and the pages after it
        wait for the next turn, asked again from where the chain then stands. `span` follows the
        pages' lengths, so that big blocks are asked for a few at a time.
        """
        store = self.view.store
        heights = await self.peer_heights()
        best = max([self.heights.best, *heights.values()], default=0)
        applied = 0
        # Peers that failed us in this pass. One bad or silent peer must not stall catch-up:
        # its range is asked again of the others.
        skipped: set[str] = set()
        budget = self.page_bytes
        while store.height < best:
            sources = [
                p
                for p in self.source.peers()
                if heights.get(p.address, 0) > store.height and p.address not in skipped
            ]
            if not sources:
                break
            start = store.height + 1
            span = self._span
            ranges = []
            for i, peer in enumerate(sources):
                first = start + i * span
                if first > best:
                    break
                ranges.append((peer, first))
            bound = self.page_bound()
            results = await asyncio.gather(
                *(self.source.page(p, first, span, budget, bound) for p, first in ranges)
            )
            lengths = []
            for (peer, first), raw in zip(ranges, results, strict=True):
                if raw is None:
                    skipped.add(peer.address)
                    continue
                try:
                    items = decode(raw, bound)
                    if not isinstance(items, list):
                        raise MalformedInput("a page of blocks is a list")
                    lengths.append(len(items))
                    if first != store.height + 1:
                        continue  # after a gap: asked again next turn
                    for block_bytes, cert_bytes in items:
                        if self.apply_final(block_bytes, cert_bytes):
                            applied += 1
                        # A block is re-executed on the loop: let the requests waiting (an
                        # observer's public, a validator's peers) in between, not after a page.
                        await asyncio.sleep(0)
                except (LedgerError, ValueError, TypeError) as exc:
                    log.warning(
                        "a peer sent a block we refuse",
                        extra={"peer": peer.address, "reason": str(exc)},
                    )
                    skipped.add(peer.address)
            if lengths:
                shortest = min(lengths)
                self._span = min(SYNC_BATCH, span * 2) if shortest >= span else max(1, shortest)
            if store.height < start:
                # Nothing linked on: the peer asked for `start` did not deliver it.
                skipped.add(ranges[0][0].address)
        self.heights.best = 0 if store.height >= best else best
        return applied

    def apply_final(self, block_bytes: bytes, cert_bytes: bytes) -> bool:
        """Check a final block from a peer against its commit certificate and apply it. False
        when it is not the next block; the refusal is raised when it is not final or invalid."""
        view = self.view
        block = Block.decode(block_bytes)
        if block.header.height != view.store.height + 1:
            return False
        cert = CommitCertificate.from_wire(decode(cert_bytes))
        if cert.height != block.header.height or cert.value != block.header.hash:
            raise InvalidBlock("the commit certificate is for another block")
        head = view.store.head
        # A block that records an emergency recovery is signed by the set the recovery names.
        registry = view.registry
        if head is not None:
            registry = register_for_block(
                registry, block.events, view.chain_id, block.header.height, head.hash
            )
        cert.verify(view.chain_id, [v.node_key for v in registry.validators])
        execution = self._held(block, registry)
        if execution is None:
            verified = {e.event_id for e in block.events if e.event_id in self.mempool}
            execution = validate_block(
                view.reader,
                registry,
                view.genesis.hash,
                view.store.head,
                block,
                verified=verified,
                chain_id=view.chain_id,
            )
        self.committer.commit(execution, cert)
        self.metrics.sync_blocks.inc()
        return True

    def _held(self, block: Block, registry: Registry) -> Execution | None:
        """This node's own execution of `block` (held by its header hash, so of that very
        header), when it made one on the current head and by the register the block is judged
        by now (a block executed again gives the same result: the committed state has not
        moved since, as the height has not)."""
        if self.held is None:
            return None
        execution = self.held(block.header.hash)
        if execution is None or execution.judged_by is not registry:
            return None
        head = self.view.store.head
        parent = head.hash if head is not None else self.view.genesis.hash
        if execution.header.prev_hash != parent:
            return None
        return execution

    def final_blocks(self, start: int, limit: int, max_bytes: int) -> list[list[bytes]]:
        """Final blocks from `start` with their commit certificates: at most `limit`, and added
        while the page stays within `max_bytes` (the first goes alone if it is larger)."""
        store = self.view.store
        out: list[list[bytes]] = []
        size = 0
        for height in range(start, min(store.height, start + limit - 1) + 1):
            block = store.block(height)
            cert = store.commit_certificate_bytes(height)
            if block is None or cert is None:
                break
            encoded = block.encode()
            item = len(encoded) + len(cert) + PAGE_ITEM_OVERHEAD
            if out and size + item > max_bytes:
                break
            out.append([encoded, cert])
            size += item
        return out
