"""Node test fixtures: a live 4-node network per module and a demo chain with telltale parties."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import authoring
from ledger.certificate import Certificate
from ledger.events import Event
from ledger.keys import SigningKey
from node.config import toml_value
from tests.e2e.browser import chromium  # noqa: F401 (the shared browser, for page tests)
from tests.e2e.harness import UNTHROTTLED, Network, NodeProcess

PARTICIPANTS = ("BE", "AE", "IN", "RU")
#: What a test module's network changes in node.toml before the nodes start, by participant.
#: Every route family gets a high rate limit, so that tests which walk them are never throttled.
DEFAULT_OVERRIDES: dict[str, dict[str, Any]] = {code: dict(UNTHROTTLED) for code in PARTICIPANTS}


def now_ms() -> int:
    return int(time.time() * 1000)


def override_toml(config: Path, values: dict[str, Any]) -> None:
    lines = [
        line
        for line in config.read_text(encoding="utf-8").splitlines()
        if line.split("=", 1)[0].strip() not in values
    ]
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_network(directory: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Network:
    net = Network.create(directory)
    for code in {*DEFAULT_OVERRIDES, *(overrides or {})}:
        values = {**DEFAULT_OVERRIDES.get(code, {}), **(overrides or {}).get(code, {})}
        override_toml(net.node(code).config, values)
    try:
        net.start()
    except BaseException:
        net.close()
        raise
    return net


@pytest.fixture(scope="module")
def network_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Network]]:
    """Start networks for one test module; every node is killed when the module is done."""
    started: list[Network] = []

    def make(name: str = "net", overrides: dict[str, dict[str, Any]] | None = None) -> Network:
        net = start_network(tmp_path_factory.mktemp(name), overrides)
        started.append(net)
        return net

    yield make
    for net in started:
        net.close()


@dataclass
class Issued:
    """A certificate of the demo chain: its document, what the ledger says, and its fate."""

    document: dict[str, Any]  # the certificate JSON with its identity_salt
    issuance: authoring.Issuance
    fate: str  # issued | import_confirmed | import_rejected | voided
    event_ids: list[str] = field(default_factory=list)

    @property
    def number(self) -> str:
        return str(self.document["number"])

    @property
    def exporting(self) -> str:
        return str(self.document["exporting_participant"])

    @property
    def importing(self) -> str:
        return str(self.document["importing_participant"])

    @property
    def secrets(self) -> list[str]:
        """What no public answer and no third participant's node may ever hold in clear."""
        d = self.document
        return [
            d["exporter"]["name"],
            d["exporter"]["address"],
            d["importer"]["name"],
            d["importer"]["address"],
            d["carats"],
            d["value_usd"],
        ]


@dataclass
class Signer:
    """Signs events as the participants' authorities, with certificates valid today (UTC)."""

    net: Network
    keys: dict[str, SigningKey]
    serial: int = 0

    @classmethod
    def for_network(cls, net: Network) -> Signer:
        return cls(net, {p: net.authority_key(p) for p in PARTICIPANTS})

    @property
    def chain_id(self) -> str:
        return self.net.genesis.chain_id

    def document(self, exporting: str, importing: str, tag: str = "T") -> dict[str, Any]:
        """A certificate with parties and amounts that cannot turn up anywhere by chance."""
        self.serial += 1
        n = self.serial
        today = datetime.now(UTC).date()
        return {
            "number": f"{exporting}-{tag}-{n:05d}",
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": ["MIXED"] if n % 3 == 0 else [("BW", "CA", "ZA", "AO")[n % 4]],
            "hs_code": ("7102.10", "7102.21", "7102.31")[n % 3],
            "carats": f"{73100 + n * 17}.{(n * 7) % 90 + 10}",
            "value_usd": f"{98760000 + n * 1031}.{(n * 13) % 90 + 10}",
            "parcels": n % 12 + 1,
            "exporter": {
                "name": f"Zorblax Gemhandel {n} Exportkontor",
                "address": f"{n} Quixotic Lane, Vellmar-{exporting}{n}",
            },
            "importer": {
                "name": f"Wyvernmoor Rough Buyers {n} Holding",
                "address": f"Plot {n}, Jabberwock Quay, Port {importing}{n}",
            },
            "issued_on": today.isoformat(),
            "expires_on": (today + timedelta(days=90)).isoformat(),
        }

    def issue(self, document: dict[str, Any]) -> authoring.Issuance:
        issuance = authoring.issue(
            self.net.registry,
            self.chain_id,
            Certificate.from_json(document),
            self.keys[document["exporting_participant"]],
            created_ms=now_ms(),
        )
        document["identity_salt"] = issuance.salt.hex()
        return issuance

    def confirm(self, issuance: authoring.Issuance) -> Event:
        facts = issuance.event.body.facts
        return authoring.confirm_import(
            self.chain_id,
            facts.importing_participant,
            facts.number,
            issuance.digest,
            self.keys[facts.importing_participant],
            created_ms=now_ms(),
        )

    def reject(self, issuance: authoring.Issuance, reason: str = "seal broken on arrival") -> Event:
        facts = issuance.event.body.facts
        return authoring.reject_import(
            self.chain_id,
            facts.importing_participant,
            facts.number,
            issuance.digest,
            reason,
            self.keys[facts.importing_participant],
            created_ms=now_ms(),
        )

    def void(self, issuance: authoring.Issuance, reason: str = "error") -> Event:
        facts = issuance.event.body.facts
        return authoring.void(
            self.chain_id,
            facts.exporting_participant,
            facts.number,
            reason,
            self.keys[facts.exporting_participant],
            created_ms=now_ms(),
        )


def submit(node: NodeProcess, event: Event) -> str:
    status, body = node.post("/v1/events", event.to_envelope())
    assert status == 202, (node.participant, status, body)
    return str(body["event_id"])


def wait_final(net: Network, node: NodeProcess, event_ids: list[str]) -> int:
    top = 0
    for event_id in event_ids:
        answer = net.wait_event(node, event_id)
        assert answer["status"] == "final", answer
        top = max(top, int(answer["height"]))
    return top


#: The demo trade: (exporting, importing, fate). Every pair of participants and every fate.
DEMO_TRADE = (
    ("BE", "AE", "import_confirmed"),
    ("BE", "AE", "import_rejected"),
    ("BE", "AE", "voided"),
    ("BE", "AE", "issued"),
    ("AE", "BE", "import_confirmed"),
    ("AE", "BE", "voided"),
    ("IN", "RU", "import_confirmed"),
    ("IN", "RU", "issued"),
    ("RU", "IN", "import_rejected"),
    ("RU", "IN", "voided"),
    ("BE", "IN", "import_confirmed"),
    ("AE", "RU", "issued"),
)


def build_demo_chain(net: Network, signer: Signer, tag: str = "T") -> list[Issued]:
    """Issue the demo trade through the exporters' nodes, then decide it through the right ones."""
    issued = []
    for exporting, importing, fate in DEMO_TRADE:
        document = signer.document(exporting, importing, tag)
        issuance = signer.issue(document)
        item = Issued(document, issuance, fate)
        item.event_ids.append(submit(net.node(exporting), issuance.event))
        issued.append(item)
    wait_final(net, net.nodes[0], [i.event_ids[0] for i in issued])
    for item in issued:
        if item.fate == "import_confirmed":
            node, event = net.node(item.importing), signer.confirm(item.issuance)
        elif item.fate == "import_rejected":
            node, event = net.node(item.importing), signer.reject(item.issuance)
        elif item.fate == "voided":
            node, event = net.node(item.exporting), signer.void(item.issuance)
        else:
            continue
        item.event_ids.append(submit(node, event))
    follow = [i.event_ids[-1] for i in issued if len(i.event_ids) > 1]
    for node in net.nodes:
        wait_final(net, node, follow)
    return issued
