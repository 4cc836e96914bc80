"""The node's handling of consensus messages, in process (no sockets)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ledger.chain import build_block
from ledger.consensus import Proposal, proposer_for
from ledger.keys import load_signing_key
from node.config import NodeConfig
from node.netinit import init_network, parse_participants
from node.service import LedgerNode

CODES = ("BE", "AE", "IN", "RU")


def test_only_the_scheduled_proposers_signature_gets_a_block_executed(tmp_path: Path) -> None:
    init_network(tmp_path, parse_participants(",".join(CODES)), base_port=7700, chain_id="kp-p")
    node = LedgerNode(NodeConfig.load(tmp_path / "BE" / "node.toml"))
    try:
        proposer = proposer_for(1, 0, len(CODES))
        execution = build_block(
            node.store,
            node.registry,
            node.genesis.hash,
            None,
            [],
            chain_id=node.chain_id,
            time_ms=1_800_000_000_000,
            proposer=proposer,
        )
        value, block = execution.header.hash, execution.block.encode()

        def proposal(signer: str) -> Proposal:
            key = load_signing_key(tmp_path / signer / "node.pem")
            return Proposal.create(key, node.chain_id, 1, 0, value, -1, proposer)

        async def deliver() -> None:
            try:
                # Signed by another validator's node key: refused before the block is executed.
                node._on_proposal(proposal(CODES[(proposer + 1) % len(CODES)]), block)
                assert value not in node.candidates
                # The same block from its scheduled proposer is executed and kept.
                node._on_proposal(proposal(CODES[proposer]), block)
                assert value in node.candidates
            finally:
                await node.client.close()  # the prevote it sent opened the peer session

        asyncio.run(deliver())
    finally:
        node.store.close()
