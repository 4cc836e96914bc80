"""`kpledger explore` against live nodes (public and token) and a stopped node's data directory."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from node.cli.explore import explore
from node.cli.explore_sources import check_proof
from tests.e2e.harness import REPO, Network, http
from tests.node.conftest import Issued, Signer, build_demo_chain

pytestmark = pytest.mark.slow

YEAR = datetime.now(UTC).year
PER_CERTIFICATE_KEYS = {"carats", "value_usd", "exporter", "importer", "origin", "parcels"}


class Chain:
    """A live network with the demo trade on it, and a way to run the explorer against it."""

    def __init__(self, net: Network, issued: list[Issued]) -> None:
        self.net = net
        self.issued = issued
        # KPLEDGER_GENESIS: the network's node keys, which the explorer checks its node against.
        self.runner = CliRunner(env={"COLUMNS": "200", "KPLEDGER_GENESIS": self.genesis})

    @property
    def url(self) -> str:
        return self.net.node("BE").url

    @property
    def genesis(self) -> str:
        return str(self.net.directory / "genesis.json")

    @property
    def data_dir(self) -> str:
        config = self.net.node("BE").config
        return str(config.parent / tomllib.loads(config.read_text())["data_dir"])

    def by_fate(self, fate: str, exporting: str = "BE") -> Issued:
        return next(i for i in self.issued if i.fate == fate and i.exporting == exporting)

    def secrets(self) -> list[str]:
        return [s for i in self.issued for s in i.secrets]

    def run(self, *args: str, expect: int = 0) -> Result:
        result = self.runner.invoke(explore, list(args), catch_exceptions=False)
        assert result.exit_code == expect, (args, result.exit_code, result.output)
        return result

    def public(self, *args: str, expect: int = 0) -> Result:
        return self.run(*args, "--node", self.url, expect=expect)

    def token(self, *args: str, expect: int = 0) -> Result:
        return self.run(
            *args, "--node", self.url, "--token", self.net.node("BE").token, expect=expect
        )

    def data(self, *args: str, expect: int = 0) -> Result:
        return self.run(*args, "--data", self.data_dir, "--genesis", self.genesis, expect=expect)


@pytest.fixture(scope="module")
def chain(network_factory: Callable[..., Network]) -> Chain:
    net = network_factory("explorer")
    return Chain(net, build_demo_chain(net, Signer.for_network(net), tag="EX"))


def as_json(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.output)
    return data


def assert_no_secrets(chain: Chain, text: str, *, amounts: bool = True) -> None:
    """No party name or address, and (per certificate) no carats or value, in `text`."""
    for secret in chain.secrets():
        is_amount = secret[0].isdigit()
        if amounts or not is_amount:
            assert secret not in text, f"public output shows {secret!r}"


# -- the public API --------------------------------------------------------------------------
def test_head_lists_the_latest_blocks(chain: Chain) -> None:
    data = as_json(chain.public("head", "--blocks", "5", "--json"))
    assert data["source"] == "public"
    assert data["chain_id"] == chain.net.genesis.chain_id
    heights = [b["height"] for b in data["blocks"]]
    assert heights == list(range(data["height"], data["height"] - len(heights), -1))
    assert 1 <= len(heights) <= 5 and heights[0] == data["height"]
    assert {b["proposer"] for b in data["blocks"]} <= {"BE", "AE", "IN", "RU"}
    assert all(len(b["hash"]) == 64 for b in data["blocks"])
    assert data["blocks"][0]["hash"] == data["hash"]
    human = chain.public("head").output
    assert f"head at height {data['height']}" in human
    assert "most recent final blocks" in human and "proposer" in human
    assert_no_secrets(chain, human)


def test_block_shows_its_events_but_not_their_certificates(chain: Chain) -> None:
    item = chain.by_fate("import_confirmed")
    height = chain.net.wait_event(chain.net.node("BE"), item.event_ids[0])["height"]
    data = as_json(chain.public("block", str(height), "--json"))
    assert data["height"] == height and data["event_count"] == len(data["events"])
    assert item.event_ids[0] in [e["event_id"] for e in data["events"]]
    assert all(e["number"] is None for e in data["events"])
    assert data["commit"]["signatures"] >= 3
    human = chain.public("block", str(height)).output
    assert item.event_ids[0] in human and "(not public)" in human
    assert_no_secrets(chain, human + json.dumps(data))
    missing = chain.public("block", "999999", "--json", expect=1)
    assert as_json(missing)["error"] == "block_not_found"


@pytest.mark.parametrize(
    "fate", ["import_confirmed", "import_rejected", "voided", "issued"], ids=lambda f: f
)
def test_cert_checks_the_proof_and_shows_only_public_facts(chain: Chain, fate: str) -> None:
    item = chain.by_fate(fate)
    data = as_json(chain.public("cert", item.number, "--genesis", chain.genesis, "--json"))
    assert data["status"] == fate and data["number"] == item.number
    assert data["exporting_participant"] == item.exporting
    assert data["proof"]["result"] == "valid"
    assert data["proof"]["checked_against"] == chain.genesis
    assert [h["event_id"] for h in data["history"]] == item.event_ids
    assert not PER_CERTIFICATE_KEYS & set(data)
    human = chain.public("cert", item.number).output
    assert item.number in human and "proof checked" in human
    assert fate.replace("_", " ").upper() in human
    assert_no_secrets(chain, human + json.dumps(data))


def test_unknown_certificate_is_refused_with_a_proof_of_absence(chain: Chain) -> None:
    data = as_json(chain.public("cert", "BE-EX-NOPE", "--json", expect=1))
    assert data["error"] == "certificate_not_found"
    assert data["proof"]["result"] == "valid" and data["proof"]["found"] is False
    result = chain.public("cert", "BE-EX-NOPE", expect=1)
    assert "proof of absence checked" in result.output


def test_a_proof_that_does_not_check_is_reported_invalid(chain: Chain) -> None:
    item = chain.by_fate("issued")
    status, body = http("GET", f"{chain.url}/v1/public/certificates/{item.number}")
    assert status == 200
    assert check_proof(body["proof"], chain.net.genesis, item.number)["result"] == "valid"
    raw = bytearray(base64.b64decode(body["proof"]))
    raw[-3] ^= 0x01  # inside the confidential hash: the digest no longer matches
    tampered = base64.b64encode(bytes(raw)).decode()
    assert check_proof(tampered, chain.net.genesis, item.number)["result"] == "invalid"
    other = chain.by_fate("voided").number
    assert check_proof(body["proof"], chain.net.genesis, other)["result"] == "invalid"
    assert check_proof(None, chain.net.genesis, item.number)["result"] == "missing"


def test_participants_lists_the_register_and_validators(chain: Chain) -> None:
    data = as_json(chain.public("participants", "--json"))
    assert [p["code"] for p in data["participants"]] == ["BE", "AE", "IN", "RU"]
    assert all(p["active"] and p["validator"] for p in data["participants"])
    assert [v["index"] for v in data["validators"]] == [0, 1, 2, 3]
    human = chain.public("participants").output
    assert "Belgium" in human and "validators, in proposer order" in human


def test_the_source_may_come_before_the_command_and_alone_shows_the_head(chain: Chain) -> None:
    after = as_json(chain.public("participants", "--json"))
    before = as_json(chain.run("--node", chain.url, "--json", "participants"))
    assert before == after
    overview = as_json(chain.run("--node", chain.url, "--json"))
    assert overview == as_json(chain.public("head", "--json"))
    assert "head at height" in chain.run("--node", chain.url).output
    assert "Usage:" in chain.run().output  # no source, no command: the help
    assert "The register is still genesis's" in chain.public("participants").output


def test_stats_publish_closed_quarters_only(chain: Chain) -> None:
    # The demo trade is dated today: its quarter is open, so the public route refuses it and says
    # when it will be published; the live figures are on the participant API (token).
    quarter = (datetime.now(UTC).month - 1) // 3 + 1
    args = ("stats", "--year", str(YEAR), "--quarter", str(quarter))
    refused = as_json(chain.public(*args, "--json", expect=1))
    assert refused["error"] == "statistics_not_published"
    assert refused["publishes_on"] > datetime.now(UTC).date().isoformat()
    human = chain.public(*args, expect=1).output
    assert "not published" in human and "/v1/stats" in human
    if quarter == 1:  # no quarter of this year is closed yet
        assert as_json(chain.public("stats", "--year", str(YEAR), "--json", expect=1))
        return
    data = as_json(chain.public("stats", "--year", str(YEAR), "--json"))
    assert data["year"] == YEAR and "pairs" not in data
    assert [q["published"] for q in data["quarters"]] == [q < quarter for q in range(1, 5)]
    assert data["rows"] == []  # the chain began today: the closed quarters hold none of it
    human = " ".join(chain.public("stats", "--year", str(YEAR)).output.split())
    assert f"KP statistics {YEAR}" in human and f"Q{quarter} not published before" in human
    assert_no_secrets(chain, human, amounts=False)


def test_the_script_runs_the_same_explorer(chain: Chain) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "explorer.py"),
            "head",
            "--node",
            chain.url,
            "--genesis",
            chain.genesis,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chain_id"] == chain.net.genesis.chain_id


def test_usage_errors_exit_2(chain: Chain) -> None:
    assert chain.run("head", expect=2)
    assert chain.run("head", "--data", chain.data_dir, expect=2)
    assert chain.run("head", "--token", "x", "--data", chain.data_dir, expect=2)
    assert "cannot reach" in chain.run("head", "--node", "http://127.0.0.1:1", expect=2).output


# -- the participant API (token) -------------------------------------------------------------
def test_token_shows_the_full_record_to_a_party(chain: Chain) -> None:
    item = chain.by_fate("import_confirmed")
    data = as_json(chain.token("cert", item.number, "--json"))
    assert data["source"] == "participant" and data["party"] is True
    assert data["exporter"]["name"] == item.document["exporter"]["name"]
    assert data["carats"] == item.document["carats"]
    assert data["proof"]["result"] == "valid"
    human = chain.token("cert", item.number).output
    assert item.document["importer"]["name"] in human and item.document["value_usd"] in human
    assert "proof checked" in human


def test_token_gives_the_live_stats_and_pairs(chain: Chain) -> None:
    data = as_json(chain.token("stats", "--year", str(YEAR), "--json"))
    assert data["live"] is True and data["height"] >= 1
    exported = sum(r["certificates"] for r in data["rows"] if r["role"] == "exporter")
    assert exported == sum(1 for i in chain.issued if i.fate != "voided")
    assert not any(r.get("suppressed") for r in data["rows"])
    assert {(p["exporting_participant"], p["importing_participant"]) for p in data["pairs"]} >= {
        ("BE", "AE"),
        ("IN", "RU"),
    }
    human = chain.token("stats", "--year", str(YEAR)).output
    assert "exports against imports" in human and "live figures as of height" in human


# -- a stopped node's data directory ---------------------------------------------------------
def test_a_running_node_s_data_is_refused(chain: Chain) -> None:
    assert "in use" in chain.data("head", expect=2).output


def test_data_dir_of_a_stopped_node(chain: Chain) -> None:
    live = as_json(chain.public("head", "--json"))
    chain.net.stop_all()
    head = as_json(chain.data("head", "--json"))
    assert head["source"] == "data"
    assert head["height"] >= live["height"] and head["chain_id"] == live["chain_id"]
    assert "most recent final blocks" in chain.data("head").output

    item = chain.by_fate("voided")
    height = [h["height"] for h in as_json(chain.data("cert", item.number, "--json"))["history"]]
    block = as_json(chain.data("block", str(height[-1]), "--json"))
    assert {"type": "certificate.void", "number": item.number} in [
        {"type": e["type"], "number": e["number"]} for e in block["events"]
    ]
    assert item.number in chain.data("block", str(height[-1])).output

    cert = as_json(chain.data("cert", item.number, "--json"))
    assert cert["status"] == "voided" and cert["carats"] == item.document["carats"]
    assert cert["proof"]["result"] == "valid" and "sealed" in cert["identities"]
    assert item.document["exporter"]["name"] not in json.dumps(cert)
    human = chain.data("cert", item.number).output
    assert "VOIDED" in human and "proof checked" in human
    assert as_json(chain.data("cert", "BE-EX-NOPE", "--json", expect=1))["proof"]["found"] is False

    people = as_json(chain.data("participants", "--json"))
    assert sorted(p["code"] for p in people["participants"]) == ["AE", "BE", "IN", "RU"]
    assert "Belgium" in chain.data("participants").output

    stats = as_json(chain.data("stats", "--year", str(YEAR), "--json"))
    assert sum(r["certificates"] for r in stats["rows"] if r["role"] == "exporter") == sum(
        1 for i in chain.issued if i.fate != "voided"
    )
    assert stats["pairs"]
    assert f"KP statistics {YEAR}" in chain.data("stats", "--year", str(YEAR)).output
    assert chain.data("block", "999999", expect=1)
    missing = Path(chain.data_dir).parent / "no-such-data"
    assert chain.run("head", "--data", str(missing), "--genesis", chain.genesis, expect=2)
    assert not missing.exists()
