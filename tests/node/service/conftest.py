"""The node's parts, built one at a time over a real Store (in memory, or on disk where the disk
is the point; no processes, no sockets): a fresh 4-validator network on disk, signers for it, and stand-ins for
the narrow interfaces each part is given."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ledger.chain import Execution, build_block
from ledger.consensus import CommitCertificate, Vote, VoteKind
from ledger.encoding import encode
from ledger.errors import LedgerError
from ledger.events import Event
from ledger.keys import SigningKey
from ledger.registry import Registry
from ledger.store import MemoryKV, Store
from node.config import NodeConfig
from node.files import load_signing_key
from node.health import Health
from node.metrics import Metrics
from node.netinit import init_network, parse_participants
from node.peers import Peer
from node.service.view import ChainView
from tests.e2e.conftest import PARTICIPANTS, EventMaker


@dataclass
class Net:
    """A 4-validator network written to disk (nothing runs): each participant's config and
    node key, and authorities' signers."""

    root: Path
    configs: dict[str, NodeConfig]
    node_keys: list[SigningKey]
    events: EventMaker
    views: list[ChainView] = field(default_factory=list)

    def view(self, code: str = "BE", *, on_disk: bool = False) -> ChainView:
        """A view over `code`'s own store (closed at the end of the test): in memory (MemoryKV),
        or `on_disk` in its LevelDB directory, for the parts whose point is the disk."""
        config = self.configs[code]
        genesis = config.genesis()
        kv = None if on_disk else MemoryKV()
        store = Store(config.data_dir, genesis, kv=kv)
        view = ChainView(genesis.chain_id, genesis, config.node_key(), store)
        self.views.append(view)
        return view

    def certificate(
        self, height: int, value: bytes, signers: range = range(4)
    ) -> CommitCertificate:
        chain_id = self.events.chain_id
        votes = [
            Vote.create(self.node_keys[i], chain_id, VoteKind.PRECOMMIT, height, 0, value, i)
            for i in signers
        ]
        return CommitCertificate.from_precommits(votes)

    def block(self, view: ChainView, events: list[Event], proposer: int = 1) -> Execution:
        """The next block on `view`'s chain, of those of `events` that apply."""
        return build_block(
            view.reader,
            view.registry,
            view.genesis.hash,
            view.store.head,
            events,
            chain_id=view.chain_id,
            time_ms=int(time.time() * 1000),
            proposer=proposer,
        )

    def commit(self, view: ChainView, events: list[Event]) -> Execution:
        """Append a final block to `view`'s store, as the network would have."""
        execution = self.block(view, events)
        cert = self.certificate(execution.header.height, execution.header.hash)
        view.store.commit(execution, encode(cert.to_wire()))
        view.committed(execution)
        return execution


@pytest.fixture
def net(tmp_path: Path) -> Any:
    genesis = init_network(
        tmp_path, parse_participants(",".join(PARTICIPANTS)), base_port=7700, chain_id="kp-u"
    )
    configs = {p: NodeConfig.load(tmp_path / p / "node.toml") for p in PARTICIPANTS}
    node_keys = [load_signing_key(tmp_path / p / "node.pem") for p in PARTICIPANTS]
    authorities = {p: load_signing_key(tmp_path / p / "authority.pem") for p in PARTICIPANTS}
    registry = Registry.from_genesis(genesis)
    made = Net(
        tmp_path,
        configs,
        node_keys,
        EventMaker(genesis.chain_id, registry, authorities, tag="UNIT"),
    )
    yield made
    for v in made.views:
        v.store.close()


def health_of(view: ChainView) -> Health:
    return Health(Metrics(), view.registry.parameters.max_clock_drift_ms)


class Link:
    """Stands in for the peer client: keeps what is sent, answers GETs from `answers`."""

    def __init__(self) -> None:
        self.sent: list[tuple[Peer, str, bytes]] = []
        self.gets: list[tuple[Peer, str]] = []
        #: Whether each send is taken by the peer (its `done` hears it at once).
        self.delivered = True
        #: Answers by path prefix: a function of the peer and the whole path.
        self.answers: dict[str, Callable[[Peer, str], bytes | None]] = {}

    def send(
        self, peer: Peer, path: str, body: bytes, done: Callable[[bool], None] | None = None
    ) -> None:
        self.sent.append((peer, path, body))
        if done is not None:
            done(self.delivered)

    async def get(self, peer: Peer, path: str, max_bytes: int) -> bytes | None:
        self.gets.append((peer, path))
        for prefix, answer in self.answers.items():
            if path.startswith(prefix):
                raw = answer(peer, path)
                return raw if raw is None or len(raw) <= max_bytes else None
        return None


class Durability:
    """Stands in for the durable writer: records what admission tells it."""

    def __init__(self, mempool: Any) -> None:
        self.mempool = mempool
        self.accepted_ids: list[bytes] = []
        self.forgotten: list[bytes] = []

    def accepted(self, event: Event) -> None:
        self.accepted_ids.append(event.event_id)

    def forget(self, event_ids: list[bytes]) -> list[bytes]:
        self.mempool.remove(event_ids)
        self.forgotten.extend(event_ids)
        return []


class Refusals:
    def __init__(self) -> None:
        self.refused: list[tuple[Event, LedgerError]] = []

    def refuse(self, refused: Any) -> None:
        self.refused.extend(refused)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A metric's value as /metrics would show it (0 when never counted)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0
