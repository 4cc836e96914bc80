"""What a client hears from live nodes when it breaks a rule: the issuance dates of SPEC 3 and
the wrong signer, refused at POST with their own codes, and by `kpledger cert ...` (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import authoring
from ledger.certificate import Certificate
from tests.e2e.harness import REPO, Network
from tests.node.conftest import Signer, submit, wait_final

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(network_factory: Any) -> Network:
    net: Network = network_factory("rules")
    return net


@pytest.fixture(scope="module")
def signer(net: Network) -> Signer:
    return Signer.for_network(net)


def today() -> Any:
    return datetime.now(UTC).date()


def dated(signer: Signer, issued_days: int, expires_days: int, tag: str) -> dict[str, Any]:
    """A certificate from BE to AE dated `issued_days` from today, expiring `expires_days` from it."""
    document = signer.document("BE", "AE", tag)
    document["issued_on"] = (today() + timedelta(days=issued_days)).isoformat()
    document["expires_on"] = (today() + timedelta(days=expires_days)).isoformat()
    return document


def kpledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_issuance_dates_are_refused_at_post_with_their_codes(net: Network, signer: Signer) -> None:
    be = net.node("BE")
    backdating = 7  # SPEC 3's default max_backdating_days, which network init writes
    for document, code in (
        (dated(signer, 200, 260, "FUT"), "issued_in_future"),
        (dated(signer, -(backdating + 2), 60, "OLD"), "backdated_too_far"),
        (dated(signer, -5, -1, "EXP"), "expired_on_issue"),
    ):
        status, body = be.post("/v1/events", signer.issue(document).event.to_envelope())
        assert (status, body["error"]) == (409, code), body
        assert document["number"] in body["message"]
    # Within the rule (dated a few days back, expiring today), the same node takes it.
    good = signer.issue(dated(signer, -(backdating - 2), 0, "OK"))
    wait_final(net, be, [submit(be, good.event)])
    assert be.health() is not None and be.health()["mempool"] == 0  # type: ignore[index]


def test_cert_issue_of_a_future_dated_certificate_exits_1(
    net: Network, signer: Signer, tmp_path: Path
) -> None:
    document = dated(signer, 190, 250, "CLI")
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(document))
    key = str(net.directory / "BE" / "authority.pem")
    node = net.node("BE").url
    human = kpledger("cert", "issue", str(path), "--node", node, "--key", key, "--wait")
    assert human.returncode == 1, (human.stdout, human.stderr)
    assert "issued_in_future" in human.stderr and document["issued_on"] in human.stderr
    assert "Traceback" not in human.stderr
    machine = kpledger("cert", "issue", str(path), "--node", node, "--key", key, "--json")
    assert machine.returncode == 1, (machine.stdout, machine.stderr)
    assert json.loads(machine.stdout)["error"] == "issued_in_future"
    status, _ = net.node("IN").get(f"/v1/public/certificates/{document['number']}")
    assert status == 404


def test_cert_confirm_with_the_wrong_key_names_who_may_confirm(
    net: Network, signer: Signer
) -> None:
    issuance = signer.issue(signer.document("BE", "AE", "KEY"))
    be = net.node("BE")
    wait_final(net, net.node("AE"), [submit(be, issuance.event)])
    number = issuance.event.number
    ae = net.node("AE").url

    def confirm(key: Path) -> subprocess.CompletedProcess[str]:
        return kpledger("cert", "confirm", number, "--node", ae, "--key", str(key), "--json")

    with_ru = confirm(net.directory / "RU" / "authority.pem")
    assert with_ru.returncode == 1, (with_ru.stdout, with_ru.stderr)
    answer = json.loads(with_ru.stdout)
    assert answer["error"] == "signed_by_another_participant"
    assert answer["message"] == (
        f"signed by RU's authority key; only AE, the importing authority, may confirm {number}"
    )
    with_node_key = confirm(net.directory / "AE" / "node.pem")
    assert with_node_key.returncode == 1, (with_node_key.stdout, with_node_key.stderr)
    answer = json.loads(with_node_key.stdout)
    assert answer["error"] == "signed_with_node_key"
    assert answer["message"].startswith("signed with AE's node key, not its authority key")
    void_by_importer = kpledger(
        "cert",
        "void",
        number,
        "--reason",
        "lost",
        "--node",
        be.url,
        "--key",
        str(net.directory / "AE" / "authority.pem"),
    )
    assert void_by_importer.returncode == 1
    assert (
        f"signed by AE's authority key; only BE, the exporting authority, may void {number}"
        in void_by_importer.stderr
    )
    # And the importer's own authority key confirms it.
    done = confirm(net.directory / "AE" / "authority.pem")
    assert done.returncode == 0, (done.stdout, done.stderr)


@pytest.mark.parametrize(
    ("created_ms", "code"), [(0, "created_too_long_ago"), (2**53 - 1, "created_in_future")]
)
def test_created_ms_is_bounded_at_post(
    net: Network, signer: Signer, created_ms: int, code: str
) -> None:
    document = signer.document("BE", "AE", "TIME")
    event = authoring.issue(
        net.registry,
        signer.chain_id,
        Certificate.from_json(document),
        signer.keys["BE"],
        created_ms=created_ms,
    ).event
    status, body = net.node("BE").post("/v1/events", event.to_envelope())
    assert (status, body["error"]) == (409, code), body
    assert f"created_ms {created_ms}" in body["message"]
