"""End-to-end fixtures: a running 4-node network, signed events for it, and chain comparisons."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import authoring
from ledger.certificate import Certificate
from ledger.events import Event
from ledger.keys import SigningKey
from ledger.registry import Registry
from tests.e2e.harness import Network, NodeProcess

PARTICIPANTS = ("BE", "AE", "IN", "RU")
PARTIES = {
    "BE": ("Antwerp Rough Trading NV", "Hoveniersstraat 22, 2018 Antwerpen"),
    "AE": ("Almas Gems DMCC", "Almas Tower, Jumeirah Lakes Towers, Dubai"),
    "IN": ("Surat Diamond Exports Pvt Ltd", "Mahidharpura, Surat 395003, Gujarat"),
    "RU": ("Yakutsk Almaz Trade JSC", "Lenina prospekt 6, Yakutsk 677000"),
}
HS_CODES = ("7102.10", "7102.21", "7102.31")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class EventMaker:
    """Signs events as the participants' authorities do, with certificates valid today (UTC)."""

    chain_id: str
    registry: Registry
    keys: dict[str, SigningKey]
    tag: str = "E2E"
    serial: int = 0
    issued: dict[str, authoring.Issuance] = field(default_factory=dict)

    @classmethod
    def for_network(cls, net: Network, tag: str = "E2E") -> EventMaker:
        keys = {p: net.authority_key(p) for p in PARTICIPANTS}
        return cls(net.genesis.chain_id, net.registry, keys, tag)

    def certificate_json(self, exporting: str, importing: str, **overrides: Any) -> dict[str, Any]:
        self.serial += 1
        n = self.serial
        today = datetime.now(UTC).date()
        raw: dict[str, Any] = {
            "number": f"{exporting}-{self.tag}-{n:06d}",
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": ["MIXED"] if n % 3 == 0 else ["BW"],
            "hs_code": HS_CODES[n % 3],
            "carats": f"{n * 7 % 5000 + 1}.{n % 100:02d}",
            "value_usd": f"{n * 1013 % 900000 + 100}.{n * 3 % 100:02d}",
            "parcels": n % 12 + 1,
            "exporter": {"name": PARTIES[exporting][0], "address": PARTIES[exporting][1]},
            "importer": {"name": PARTIES[importing][0], "address": PARTIES[importing][1]},
            "issued_on": today.isoformat(),
            "expires_on": (today + timedelta(days=60)).isoformat(),
        }
        raw.update(overrides)
        return raw

    def issue(self, exporting: str = "BE", importing: str = "AE", **overrides: Any) -> Event:
        raw = self.certificate_json(exporting, importing, **overrides)
        issuance = authoring.issue(
            self.registry,
            self.chain_id,
            Certificate.from_json(raw),
            self.keys[exporting],
            created_ms=now_ms(),
        )
        self.issued[raw["number"]] = issuance
        return issuance.event

    def confirm(self, number: str) -> Event:
        issuance = self.issued[number]
        importer = issuance.event.body.facts.importing_participant
        return authoring.confirm_import(
            self.chain_id,
            importer,
            number,
            issuance.digest,
            self.keys[importer],
            created_ms=now_ms(),
        )

    def void(self, number: str, reason: str = "error") -> Event:
        issuance = self.issued[number]
        exporter = issuance.event.body.facts.exporting_participant
        return authoring.void(
            self.chain_id, exporter, number, reason, self.keys[exporter], created_ms=now_ms()
        )

    def trade(self, count: int) -> list[Event]:
        """`count` issuances between every ordered pair of participants, in turn."""
        pairs = [(a, b) for a in PARTICIPANTS for b in PARTICIPANTS if a != b]
        return [self.issue(*pairs[i % len(pairs)]) for i in range(count)]


def submit(node: NodeProcess, event: Event) -> str:
    """POST the event's JSON envelope; returns its id (asserting the node accepted it)."""
    status, body = node.post("/v1/events", event.to_envelope())
    assert status == 202, (node.participant, status, body)
    assert body["event_id"] == event.event_id.hex()
    return str(body["event_id"])


def try_submit(node: NodeProcess, event: Event) -> bool:
    """Submit, tolerating a node that is down or busy (for background load)."""
    try:
        status, _ = node.post("/v1/events", event.to_envelope())
    except OSError:
        return False
    return status == 202


def poll(condition: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def head(node: NodeProcess) -> tuple[int, str | None]:
    health = node.health()
    assert health is not None, f"{node.participant} is not answering"
    return int(health["height"]), health["head_hash"]


def block_summary(node: NodeProcess, height: int) -> tuple[dict[str, Any], list[Any]]:
    """A final block as the public API shows it: the header and its events (ids and types)."""
    status, body = node.get(f"/v1/public/blocks/{height}")
    assert status == 200, (node.participant, height, status, body)
    return body["header"], body["events"]


def chain(node: NodeProcess, upto: int) -> list[tuple[dict[str, Any], list[Any]]]:
    return [block_summary(node, h) for h in range(1, upto + 1)]


def assert_same_chain(nodes: list[NodeProcess], upto: int | None = None) -> int:
    """Every node holds the same final blocks 1..upto (default: the lowest height among them)."""
    if upto is None:
        upto = min(head(n)[0] for n in nodes)
    reference = chain(nodes[0], upto)
    for other in nodes[1:]:
        theirs = chain(other, upto)
        for h, (mine, yours) in enumerate(zip(reference, theirs, strict=True), start=1):
            assert mine == yours, (
                f"block {h} differs: {nodes[0].participant} vs {other.participant}"
            )
    return upto


def wait_same_head(nodes: list[NodeProcess], timeout: float = 30.0) -> tuple[int, str]:
    """Wait until all `nodes` report the same (height, head hash) and return it."""

    def same() -> tuple[int, str] | None:
        heads = {head(n) for n in nodes}
        if len(heads) == 1:
            height, digest = heads.pop()
            if digest is not None:
                return height, digest
        return None

    try:
        result: tuple[int, str] = poll(same, timeout, "equal heads", interval=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {[(n.participant, head(n)) for n in nodes]}") from None
    return result


def wait_final(net: Network, node: NodeProcess, event_ids: list[str], timeout: float = 30.0) -> int:
    """Wait until every event is final on `node`; returns the highest height among them."""
    top = 0
    for event_id in event_ids:
        answer = net.wait_event(node, event_id, timeout=timeout)
        assert answer["status"] == "final", answer
        top = max(top, int(answer["height"]))
    return top


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """Four nodes (BE, AE, IN, RU) running on held ports; killed at teardown whatever happens."""
    net = Network.create(tmp_path / "net")
    net.lift_rate_limits()
    try:
        net.start()
        yield net
    finally:
        net.close()


@pytest.fixture
def events(network: Network) -> EventMaker:
    return EventMaker.for_network(network)
