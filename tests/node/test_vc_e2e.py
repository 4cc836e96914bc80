"""`kpledger cert vc` and `kpledger verify --vc` against a live network, with a third-party VC
library (Digital Bazaar's, under Node.js) checking the same files."""

from __future__ import annotations

import copy
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from node.cli import main
from node.credentials import kpledger_context_document
from tests.e2e.harness import Network, http
from tests.interop.vcjs import third_party_verdicts
from tests.node.conftest import Issued, Signer, build_demo_chain

pytestmark = pytest.mark.slow


def run(*args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": "200", "KPLEDGER_TOKEN": None})  # type: ignore[dict-item]
    result = runner.invoke(main, list(args), catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def trade(network_factory: Callable[..., Network]) -> tuple[Network, list[Issued]]:
    net = network_factory("vc")
    return net, build_demo_chain(net, Signer.for_network(net), tag="VC")


def export(net: Network, item: Issued, out: Path, *extra: str, signer: str | None = None) -> Result:
    code = signer or item.exporting
    node = net.node(item.exporting)
    return run(
        "cert",
        "vc",
        item.number,
        "--node",
        node.url,
        "--token",
        node.token,
        "--key",
        str(net.directory / code / "authority.pem"),
        "--out",
        str(out),
        "--genesis",
        str(net.directory / "genesis.json"),
        "--json",
        *extra,
    )


def verify_vc(net: Network, path: Path) -> Result:
    return run(
        "verify", "--vc", str(path), "--genesis", str(net.directory / "genesis.json"), "--json"
    )


def by_fate(issued: list[Issued], fate: str) -> Issued:
    return next(i for i in issued if i.fate == fate and i.exporting == "BE")


def test_a_credential_verifies_here_and_in_a_third_party_library(
    trade: tuple[Network, list[Issued]], tmp_path: Path
) -> None:
    net, issued = trade
    confirmed = by_fate(issued, "import_confirmed")
    withheld, full = tmp_path / "withheld.json", tmp_path / "full.json"
    done = export(net, confirmed, withheld)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "import_confirmed"
    assert stat.S_IMODE(withheld.stat().st_mode) == 0o600
    assert export(net, confirmed, full, "--include-parties").exit_code == 0
    text = withheld.read_text()
    for secret in (
        confirmed.document["exporter"]["name"],
        confirmed.document["importer"]["address"],
    ):
        assert secret not in text
        assert secret in full.read_text()

    for path in (withheld, full):
        done = verify_vc(net, path)
        assert done.exit_code == 0, done.output
        out = json.loads(done.stdout)
        assert out["status"] == "import_confirmed" and out["in_force"] is True
        assert out["exporting_participant"] == "BE"

    altered: dict[str, Any] = copy.deepcopy(json.loads(full.read_text()))
    altered["credentialSubject"]["caratWeight"] = "0.01"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(altered))
    done = verify_vc(net, tampered)
    assert done.exit_code == 2, done.output
    assert json.loads(done.stdout)["error"] == "invalid_credential"

    verdicts = third_party_verdicts([withheld, full, tampered])
    assert [v["verified"] for v in verdicts] == [True, True, False], verdicts


def test_the_ledger_status_and_its_evidence_are_checked(
    trade: tuple[Network, list[Issued]], tmp_path: Path
) -> None:
    net, issued = trade
    voided = by_fate(issued, "voided")
    path = tmp_path / "voided.json"
    assert export(net, voided, path).exit_code == 0
    done = verify_vc(net, path)
    assert done.exit_code == 1, done.output
    assert json.loads(done.stdout)["status"] == "voided"

    # The evidence of another certificate: the signature covers it, so the credential fails;
    # re-signed by its issuer over the wrong evidence, the ledger's digest does not match.
    other = tmp_path / "other.json"
    assert export(net, by_fate(issued, "issued"), other).exit_code == 0
    swapped = json.loads(path.read_text())
    swapped["evidence"] = json.loads(other.read_text())["evidence"]
    path.write_text(json.dumps(swapped))
    done = verify_vc(net, path)
    assert done.exit_code == 2
    assert "does not verify" in json.loads(done.stdout)["message"].lower()


def test_only_the_issuing_authority_signs_and_only_a_party_exports(
    trade: tuple[Network, list[Issued]], tmp_path: Path
) -> None:
    net, issued = trade
    item = by_fate(issued, "issued")
    done = export(net, item, tmp_path / "x.json", signer="AE")
    assert done.exit_code == 1, done.output
    assert json.loads(done.stdout)["error"] == "signer_not_allowed"
    assert not (tmp_path / "x.json").exists()
    # IN's node is no party to a BE -> AE certificate: it cannot state the parties' commitment.
    node = net.node("IN")
    done = run(
        "cert", "vc", item.number, "--node", node.url, "--token", node.token,
        "--key", str(net.directory / "BE" / "authority.pem"), "--out", str(tmp_path / "y.json"),
        "--json",
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    assert json.loads(done.stdout)["error"] == "not_a_party"


def test_a_credential_of_another_network_is_refused(
    trade: tuple[Network, list[Issued]], tmp_path: Path
) -> None:
    net, issued = trade
    path = tmp_path / "c.json"
    assert export(net, by_fate(issued, "issued"), path).exit_code == 0
    genesis = json.loads((net.directory / "genesis.json").read_text())
    genesis["chain_id"] = "kp-elsewhere"
    elsewhere = tmp_path / "genesis.json"
    elsewhere.write_text(json.dumps(genesis))
    done = run("verify", "--vc", str(path), "--genesis", str(elsewhere), "--json")
    assert done.exit_code == 2, done.output
    assert "chain 'kp-test'" in json.loads(done.stdout)["message"]


def test_every_node_serves_the_kpledger_context(trade: tuple[Network, list[Issued]]) -> None:
    net, _ = trade
    status, body = http("GET", f"{net.node('RU').url}/contexts/kpledger-v1.jsonld")
    assert status == 200
    assert body == kpledger_context_document()
