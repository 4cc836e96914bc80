"""End-to-end governance: admit a participant and its node, make it a validator, suspend,
rotate a key, restrict and endorse, on real node processes; proofs still check from genesis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import authoring
from ledger.certificate import Certificate
from ledger.events import Event
from ledger.genesis import Participant
from ledger.keys import SigningKey
from ledger.registry import Registry
from node.files import load_signing_key, write_private_pem
from node.netinit import ParticipantSpec, init_joiner
from tests.e2e.conftest import PARTIES, poll, submit, wait_final, wait_same_head
from tests.e2e.harness import REPO, Network, NodeProcess, reserve_ports, trust_node_key

pytestmark = pytest.mark.slow

NAMES = {**PARTIES, "BW": ("Gaborone Diamond Trading (Pty) Ltd", "Plot 63, Gaborone, Botswana")}


def cli(*args: str, timeout: float = 60.0) -> tuple[int, Any]:
    """Run `kpledger ARGS --json`; returns the exit status and the parsed output. The commands
    without --key or --genesis pin the node keys of the genesis in KPLEDGER_GENESIS (set by the
    `genesis_env` fixture)."""
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )
    try:
        out = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        out = done.stdout
    return done.returncode, out if out is not None else done.stderr


class Gov:
    """Sign and submit events for the running network, following its register."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.chain_id = net.genesis.chain_id
        self.keys: dict[str, SigningKey] = {
            p.code: net.authority_key(p.code) for p in net.genesis.participants
        }
        self.serial = 0
        self.issued: dict[str, authoring.Issuance] = {}

    def node(self, code: str = "BE") -> NodeProcess:
        return self.net.node(code)

    def registry(self, node: NodeProcess | None = None) -> Registry:
        status, body = (node or self.node()).get("/v1/public/participants")
        assert status == 200, body
        participants = {raw["code"]: Participant.from_json(raw) for raw in body["participants"]}
        return Registry.build(
            participants, (), Registry.from_genesis(self.net.genesis).parameters, ()
        )

    def height(self, node: NodeProcess | None = None) -> int:
        return (node or self.node()).height()

    def post(self, event: Event, node: NodeProcess | None = None) -> tuple[int, Any]:
        return (node or self.node()).post("/v1/events", event.to_envelope())

    def final(self, event: Event, node: NodeProcess | None = None) -> int:
        target = node or self.node()
        return wait_final(self.net, target, [submit(target, event)])

    def certificate(self, exporting: str, importing: str, **extra: Any) -> Certificate:
        self.serial += 1
        today = datetime.now(UTC).date()
        raw = {
            "number": f"{exporting}-GOV-{self.serial:04d}",
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": [exporting] if exporting == "BW" else ["MIXED"],
            "hs_code": "7102.10",
            "carats": f"{100 + self.serial}.25",
            "value_usd": f"{25000 + self.serial}.00",
            "parcels": 2,
            "exporter": {"name": NAMES[exporting][0], "address": NAMES[exporting][1]},
            "importer": {"name": NAMES[importing][0], "address": NAMES[importing][1]},
            "issued_on": today.isoformat(),
            "expires_on": (today + timedelta(days=30)).isoformat(),
            **extra,
        }
        return Certificate.from_json(raw)

    def issue(
        self, exporting: str, importing: str, key: SigningKey | None = None, **extra: Any
    ) -> Event:
        certificate = self.certificate(exporting, importing, **extra)
        issuance = authoring.issue(
            self.registry(),
            self.chain_id,
            certificate,
            key or self.keys[exporting],
            created_ms=int(time.time() * 1000),
        )
        self.issued[certificate.number] = issuance
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
            created_ms=int(time.time() * 1000),
        )

    def propose(self, kind: str, subject: str, args: list[Any], lead: int = 8) -> Event:
        return authoring.propose(
            self.chain_id,
            "BE",
            kind,
            subject,
            args,
            self.height() + lead,
            self.keys["BE"],
            created_ms=int(time.time() * 1000),
        )

    def vote(self, proposal_id: str, voter: str) -> Event:
        return authoring.vote(
            self.chain_id,
            voter,
            bytes.fromhex(proposal_id),
            True,
            self.keys[voter],
            created_ms=int(time.time() * 1000),
        )

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        status, body = self.node().get(f"/v1/public/governance/proposals/{proposal_id}")
        assert status == 200, body
        return dict(body)

    def decide(self, kind: str, subject: str, args: list[Any], voters: list[str]) -> dict[str, Any]:
        """Propose as BE, vote yes as `voters`, and wait until the change is in force."""
        proposal = self.propose(kind, subject, args)
        self.final(proposal)
        pid = proposal.event_id.hex()
        for voter in voters:
            submit(self.node(), self.vote(pid, voter))
        return self.enacted(pid)

    def enacted(self, pid: str, timeout: float = 60.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            found = self.proposal(pid)
            assert found["status"] in ("open", "passed", "enacted"), found
            return found if found["status"] == "enacted" else None

        record: dict[str, Any] = poll(done, timeout, f"proposal {pid[:16]} to take effect", 0.2)
        running = [n for n in self.net.nodes if n.alive()]
        self.net.wait_height(record["effective_height"] - 1, running, timeout=timeout)
        return record


@pytest.fixture(autouse=True)
def genesis_env(network: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLEDGER_GENESIS", str(network.directory / "genesis.json"))


def test_governance_end_to_end(network: Network, tmp_path: Path) -> None:
    g = Gov(network)
    be = g.node("BE")
    started = time.monotonic()

    # A certificate issued under genesis's validators and keys, for the proofs at the end.
    early = g.issue("BE", "AE")
    g.final(early)

    # -- admit BW with its keys and node, through the CLI ---------------------------------------
    [port] = reserve_ports(1)
    joiner = init_joiner(network.directory, ParticipantSpec("BW", ("BW",)), port=port.port)
    trust_node_key(joiner.node_key, joiner.address)
    bw_authority = network.directory / "BW" / "authority.pem"
    g.keys["BW"] = load_signing_key(bw_authority)
    status, out = cli(
        "gov", "propose", "admit", "--participant", "BW", "--name", "Botswana",
        "--authority-key-file", str(bw_authority),
        "--encryption-pub", joiner.encryption_key.hex(),
        "--encryption-proof", joiner.encryption_proof.hex(),
        "--node-pub", joiner.node_key.hex(), "--node-proof", joiner.node_proof.hex(),
        "--address", joiner.address,
        "--node", be.url, "--key", str(network.directory / "BE" / "authority.pem"), "--wait",
    )  # fmt: skip
    assert status == 0, out
    pid = out["proposal_id"]
    assert out["status"] == "final" and out["effective_height"] >= out["height"] + 2
    status, out = cli(
        "gov", "vote", pid, "--yes", "--node", g.node("AE").url,
        "--key", str(network.directory / "AE" / "authority.pem"),
    )  # fmt: skip
    assert status == 0, out
    status, out = cli(
        "gov", "vote", pid, "--no", "--node", be.url,
        "--key", str(network.directory / "BE" / "authority.pem"),
    )  # fmt: skip
    assert status == 1 and out["error"] == "already_voted", out
    submit(be, g.vote(pid, "IN"))
    record = g.enacted(pid)
    status, shown = cli("gov", "show", pid, "--node", be.url)
    assert status == 0 and shown["status"] == "enacted" and shown["tally"]["yes"] == 3, shown
    # Idle again once the change is in force: no more empty blocks.
    height = g.height()
    time.sleep(1.5)
    assert g.height() <= height + 1

    # BW's node starts from genesis.json and syncs from the validators.
    token = tomllib.loads(joiner.config.read_text())["api_token"]
    bw = NodeProcess("BW", joiner.config, joiner.address, token, network.directory / "BW.log", port)
    network.nodes.append(bw)
    bw.start()
    bw.wait_healthy()
    # Block effective_height - 1 brought the register BW is in: an idle chain stops there.
    network.wait_height(record["effective_height"] - 1, [bw], timeout=30)
    # BW issues (through its own node, which forwards to the validators) and BE confirms.
    bw_cert = g.issue("BW", "BE")
    bw_height = g.final(bw_cert, bw)
    g.final(g.confirm(bw_cert.number))
    status, body = be.get(f"/v1/public/certificates/{bw_cert.number}")
    assert status == 200 and body["status"] == "import_confirmed", body
    assert bw_height >= record["effective_height"]

    # -- BW becomes a validator (its node attests readiness); RU stops; the chain goes on -------
    record = g.decide("add_validator", "BW", [joiner.node_key, joiner.address], ["AE", "IN", "RU"])
    poll(lambda: (bw.health() or {}).get("validator"), 30, "BW to validate")
    status, register = be.get("/v1/public/participants")
    assert [v["participant"] for v in register["validators"]] == ["BE", "AE", "IN", "RU", "BW"]
    assert register["validator_history"][-1]["height"] > record["effective_height"]
    assert register["pending_validators"] == []
    network.node("RU").stop()
    running = [n for n in network.nodes if n.alive()]
    after = g.issue("AE", "IN")
    top = g.final(after, g.node("AE"))
    network.wait_height(top, running, timeout=30)
    wait_same_head(running)

    # -- suspend IN: its new issuances are refused; reinstate it ---------------------------------
    g.decide("suspend", "IN", [], ["AE", "BW", "RU"])
    status, body = g.post(g.issue("IN", "BE"))
    assert status == 409 and body["error"] == "participant_not_active", body
    assert "suspended" in body["message"]
    g.decide("reinstate", "IN", [], ["AE", "BW"])  # 4 active: 3 of them pass it
    g.final(g.issue("IN", "BE"))

    # IN's validator left the set with the suspension; its node's readiness brings it back.
    def validators() -> list[str]:
        _, register = be.get("/v1/public/participants")
        return [v["participant"] for v in register["validators"]]

    poll(lambda: "IN" in validators(), 30, "IN's validator back in the set")

    # -- rotate BE's authority key through the CLI -----------------------------------------------
    new_key = tmp_path / "be-authority-2.pem"
    status, out = cli(
        "key", "rotate", "--kind", "authority", "--new-key", str(new_key), "--generate",
        "--node", be.url, "--key", str(network.directory / "BE" / "authority.pem"), "--wait",
    )  # fmt: skip
    assert status == 0, out
    assert new_key.stat().st_mode & 0o777 == 0o600
    status, body = g.post(g.issue("BE", "IN"))  # still signed with the old key
    assert status == 401 and body["error"] == "bad_signature", body
    g.keys["BE"] = load_signing_key(new_key)
    g.final(g.issue("BE", "IN"))

    # The certificate issued before the validator change and the rotation verifies offline.
    genesis_file = str(network.directory / "genesis.json")
    status, out = cli("verify", early.number, "--node", be.url, "--genesis", genesis_file)
    assert status == 0 and out["status"] == "issued", out
    # BW's node key came by governance, after genesis: a client pinning genesis's keys follows
    # the register BW's node serves, proven against that genesis, to BW's key.
    status, out = cli("verify", early.number, "--node", bw.url, "--genesis", genesis_file)
    assert status == 0 and out["status"] == "issued", out
    status, out = cli("verify", bw_cert.number, "--node", be.url, "--genesis", genesis_file)
    assert status == 0 and out["status"] == "import_confirmed", out

    # -- restrict AE to approved zones under a monitoring team ----------------------------------
    monitor = SigningKey.generate()
    monitor_file = tmp_path / "monitor.pem"
    write_private_pem(monitor_file, monitor.to_pem())
    g.decide("restrict", "AE", [["ZONE-1", "ZONE-2"], monitor.public_bytes], ["AE", "IN", "BW"])
    status, body = g.post(g.issue("AE", "BE"))
    assert status == 409 and body["error"] == "zone_not_approved", body
    zoned = g.issue("AE", "BE", zone="ZONE-2")
    g.final(zoned)
    status, body = g.post(g.confirm(zoned.number))
    assert status == 409 and body["error"] == "endorsement_required", body
    status, out = cli(
        "cert", "endorse", zoned.number, "--node", be.url, "--key", str(monitor_file), "--wait"
    )
    assert status == 0, out
    g.final(g.confirm(zoned.number))
    status, out = cli("verify", zoned.number, "--node", be.url, "--genesis", genesis_file)
    assert status == 0 and out["status"] == "import_confirmed", out
    assert [h["type"] for h in out["history"]][1] == "certificate.endorse"

    # Everyone still running agrees, and the register tells its history.
    wait_same_head([n for n in network.nodes if n.alive()])
    status, register = bw.get("/v1/public/participants")
    kinds = [c["kind"] for entry in register["history"] for c in entry["changes"]]
    assert [k for k in kinds if k != "validator_ready"] == [
        "admit", "add_validator", "suspend", "reinstate", "rotate_key", "restrict",
    ]  # fmt: skip
    assert kinds.count("validator_ready") == 2  # BW's node, then IN's again
    # (Through BE's node: BW's key came after genesis, which the CLI pins; see above.)
    status, explored = cli("explore", "participants", "--node", be.url)
    assert status == 0, explored
    assert [h["kind"] for h in explored["history"]] == kinds
    assert [p["active"] for p in explored["participants"]] == [True] * 5
    status, listed = cli("gov", "list", "--node", be.url)
    assert status == 0 and [p["status"] for p in listed["proposals"]] == ["enacted"] * 5
    assert time.monotonic() - started < 170


def test_a_validator_added_while_another_is_down_keeps_the_chain_finalising(
    network: Network,
) -> None:
    """Issue 22: with RU stopped, a validator was added whose node had never started; the set
    then needed more signatures than were live and the chain stopped. Now the new validator
    enters the set only once its node attests readiness, and only if enough stay live."""
    g = Gov(network)
    be = g.node("BE")
    network.node("RU").stop()
    [port] = reserve_ports(1)
    joiner = init_joiner(network.directory, ParticipantSpec("BW", ("BW",)), port=port.port)
    trust_node_key(joiner.node_key, joiner.address)
    g.keys["BW"] = load_signing_key(network.directory / "BW" / "authority.pem")
    admit = [
        "Botswana", ["BW"], joiner.authority_key, joiner.encryption_key, joiner.node_key,
        joiner.address, joiner.authority_proof, joiner.encryption_proof, joiner.node_proof,
    ]  # fmt: skip
    g.decide("admit", "BW", admit, ["AE", "IN"])
    # RU's authority still votes (through BE's node): five active, four yes pass it.
    record = g.decide("add_validator", "BW", [joiner.node_key, joiner.address], ["AE", "IN", "RU"])
    _, register = be.get("/v1/public/participants")
    assert [v["participant"] for v in register["validators"]] == ["BE", "AE", "IN", "RU"]
    assert [v["participant"] for v in register["pending_validators"]] == ["BW"]
    # BW's node never started: the three live validators of four keep finalising.
    running = [n for n in network.nodes if n.alive()]
    top = g.final(g.issue("BE", "AE"))
    assert top >= record["effective_height"]
    network.wait_height(top, running, timeout=30)
    # BW's node starts, syncs and attests readiness: four live of five, the chain goes on.
    token = tomllib.loads(joiner.config.read_text())["api_token"]
    bw = NodeProcess("BW", joiner.config, joiner.address, token, network.directory / "BW.log", port)
    network.nodes.append(bw)
    bw.start()
    bw.wait_healthy()
    poll(lambda: (bw.health() or {}).get("validator"), 60, "BW to enter the set")
    _, register = be.get("/v1/public/participants")
    assert [v["participant"] for v in register["validators"]] == ["BE", "AE", "IN", "RU", "BW"]
    running = [n for n in network.nodes if n.alive()]
    top = g.final(g.issue("AE", "IN"), g.node("AE"))
    network.wait_height(top, running, timeout=30)
    wait_same_head(running)
