"""Observers, live (SPEC 10): `kpledger network observer` prepares one, authorised by BE's
operator with a `sync` token; it joins a running 4-node network, catches up checking every
commit certificate, serves answers `kpledger verify` accepts, keeps up, serves nothing but the
public routes, and never votes; the peers refuse the vote it sends them."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger.consensus import CommitCertificate, Vote, VoteKind
from ledger.encoding import decode, encode
from ledger.keys import SigningKey
from ledger.proofs import CertificateProof, verify_certificate_proof
from node.clock import now_ms
from node.peers import MSGPACK, sign_request
from tests.e2e.harness import Network, NodeProcess, reserve_ports, trust_node_key, urlopen
from tests.node.conftest import Signer, override_toml, submit, wait_final
from tests.node.http.conftest import run_cli
from tests.node.test_tls import ca_issued

pytestmark = pytest.mark.slow


def fetch(url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> Any:
    """(status, parsed JSON or raw bytes) of one request, over TLS pinned as the harness pins."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def http_counts(node: NodeProcess, family: str) -> dict[str, int]:
    """The node's answered requests of a route family, by status (its own /metrics)."""
    status, body = fetch(node.url + "/metrics")
    assert status == 200
    counts: dict[str, int] = {}
    for metric in text_string_to_metric_families(body.decode()):
        if metric.name == "kpledger_http_requests":
            for s in metric.samples:
                if s.name.endswith("_total") and s.labels["family"] == family:
                    counts[s.labels["status"]] = int(s.value)
    return counts


def wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


class Observed:
    def __init__(self, net: Network, node: NodeProcess, directory: Path, cacert: Path) -> None:
        self.net = net
        self.node = node
        self.directory = directory
        self.cacert = cacert
        self.key = SigningKey.from_pem((directory / "node.pem").read_bytes())


@pytest.fixture(scope="module")
def net(network_factory: Any) -> Network:
    started: Network = network_factory("observed")
    return started


@pytest.fixture(scope="module")
def observed(net: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    be = net.node("BE")
    signer = Signer.for_network(net)
    wait_final(net, be, [submit(be, signer.issue(signer.document("BE", "AE", "OB")).event)])
    made = run_cli(
        "token", "add", "--config", str(be.config), "--name", "observer-1", "--scope", "sync",
        "--json", net=net,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    where = tmp_path_factory.mktemp("observer")
    (where / "given.token").write_text(f"# from BE's operator\n{be.url} {token}\n")
    (listener,) = reserve_ports(1)
    directory = where / "obs"
    done = run_cli(
        "network", "observer", "--genesis", str(net.directory / "genesis.json"),
        "--dir", str(directory), "--peers", be.url, "--port", str(listener.port),
        "--token-file", str(where / "given.token"), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["token_written"] is True and out["peers"] == [be.url]
    assert os.stat(directory / "sync.token").st_mode & 0o077 == 0
    assert os.stat(directory / "node.pem").st_mode & 0o077 == 0
    # The public reaches it through a CA-issued certificate (its node key is in no register).
    cacert, cert, key = ca_issued(where)
    override_toml(directory / "node.toml", {"tls_cert": str(cert), "tls_key": str(key)})
    url = out["address"]
    trust_node_key(bytes.fromhex(out["node_key"]), url)
    node = NodeProcess("observer", directory / "node.toml", url, "", where / "obs.log", listener)
    node.start()
    try:
        node.wait_healthy()
        yield Observed(net, node, directory, cacert)
    finally:
        node.close()


def test_an_observer_catches_up_and_its_answers_verify(net: Network, observed: Observed) -> None:
    be, obs = net.node("BE"), observed.node
    peer_refusals = [http_counts(n, "peer").get("403", 0) for n in net.nodes]
    top = be.height()
    wait_for("the observer catches up", lambda: obs.height() >= top)
    health = obs.health()
    assert health is not None
    assert health["observer"] is True and health["validator"] is False
    assert health["chain_id"] == net.genesis.chain_id
    # Block for block the same chain: the same headers and commit certificates.
    for height in range(1, top + 1):
        assert fetch(f"{obs.url}/v1/public/blocks/{height}") == fetch(
            f"{be.url}/v1/public/blocks/{height}"
        )
    number = "BE-OB-00001"
    status, answer = fetch(f"{obs.url}/v1/public/certificates/{number}")
    assert status == 200 and answer["status"] == "issued"
    assert verify_certificate_proof(
        CertificateProof.from_base64(answer["proof"]), net.genesis
    ).found
    genesis = str(net.directory / "genesis.json")
    checked = run_cli(
        "verify", number, "--node", obs.url, "--genesis", genesis, "--cacert",
        str(observed.cacert), "--json",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["status"] == "issued"
    # Pinning genesis's node keys alone, the client refuses it: no register lists its key.
    pinned = run_cli("verify", number, "--node", obs.url, "--genesis", genesis)
    assert pinned.returncode == 2, pinned.stdout + pinned.stderr
    # It keeps up: a void through BE shows on the observer, and verifies.
    signer = Signer.for_network(net)
    issuance = signer.issue(signer.document("BE", "IN", "OB2"))
    wait_final(net, be, [submit(be, issuance.event)])
    height = wait_final(net, be, [submit(be, signer.void(issuance))])
    wait_for("the observer keeps up", lambda: obs.height() >= height)
    status, answer = fetch(f"{obs.url}/v1/public/certificates/{issuance.event.number}")
    assert status == 200 and answer["status"] == "voided"
    checked = run_cli(
        "verify", issuance.event.number, "--node", obs.url, "--genesis", genesis, "--cacert",
        str(observed.cacert), "--json",
    )  # fmt: skip
    assert checked.returncode == 1 and json.loads(checked.stdout)["status"] == "voided"
    # Never a vote, nor any other peer request: no validator refused a single one all along
    # (an observer's node key opens no /peer/ route), and it answers none itself.
    assert [http_counts(n, "peer").get("403", 0) for n in net.nodes] == peer_refusals


def test_an_observer_serves_only_the_public_routes(net: Network, observed: Observed) -> None:
    obs = observed.node
    for path in ("/v1/public/head", "/v1/public/genesis", "/v1/public/stats", "/healthz"):
        assert fetch(obs.url + path)[0] == 200, path
    assert fetch(f"{obs.url}/verify/BE-OB-00001")[0] == 200
    token = {"Authorization": f"Bearer {net.node('BE').token}"}
    for path in (
        "/v1/chain/blocks?from=1",
        "/v1/certificates/BE-OB-00001",
        "/v1/certificates",
        "/v1/stats",
        "/v1/admin/tokens",
        "/peer/status",
        "/peer/blocks?from=1",
        "/portal/",
        "/explorer/",
    ):
        status, body = fetch(obs.url + path, token)
        assert status == 404 and "observer" in body["message"], (path, status, body)
    status, _ = fetch(obs.url + "/v1/events", {"Content-Type": "application/json"}, b"{}")
    assert status == 404
    # Nothing of a certificate's confidential facts is in what it serves.
    raw = fetch(f"{obs.url}/v1/public/certificates/BE-OB-00001")[1]
    assert not re.search(
        r"carats|value_usd|exporter\"|importer\"|Zorblax|Wyvernmoor", json.dumps(raw)
    )


def test_the_sync_token_opens_the_block_pages_only(net: Network, observed: Observed) -> None:
    be = net.node("BE")
    tokens = (observed.directory / "sync.token").read_text().split()
    bearer = {"Authorization": f"Bearer {tokens[-1]}"}
    status, page = fetch(be.url + "/v1/chain/blocks?from=1&limit=2", bearer)
    assert status == 200 and isinstance(page, bytes)
    for path in ("/v1/certificates/BE-OB-00001", "/v1/certificates", "/v1/admin/tokens"):
        status, body = fetch(be.url + path, bearer)
        assert status == 403 and body["error"] == "token_scope", (path, body)
    assert fetch(be.url + "/v1/chain/blocks?from=1")[0] == 401  # and nobody without one


def test_peers_ignore_a_vote_the_observer_signs(net: Network, observed: Observed) -> None:
    """A precommit signed by the observer's node key, sent as the observer would send it (a peer
    request signed by that key): every validator refuses it before reading it, and the chain
    goes on with commit certificates of the validators alone."""
    chain_id = net.genesis.chain_id
    be = net.node("BE")
    height = be.height() + 1
    vote = Vote.create(
        observed.key, chain_id, VoteKind.PRECOMMIT, height, 0, b"\x07" * 32, 0
    ).to_wire()
    body = encode([vote])
    for node in net.nodes:
        before = http_counts(node, "peer").get("403", 0)
        recipient = next(v.node_key for v in net.genesis.validators if v.address == node.url)
        headers = sign_request(
            observed.key, chain_id, "POST", "/peer/consensus", body, now_ms(), recipient
        )
        headers["Content-Type"] = MSGPACK
        status, answer = fetch(node.url + "/peer/consensus", headers, body)
        assert status == 403 and answer["error"] == "peer_not_allowed", (node.participant, answer)
        assert http_counts(node, "peer").get("403", 0) == before + 1
    # The height it voted in is decided by the validators' own precommits: its commit
    # certificate checks against genesis's validators, whom the observer is not among.
    assert not Vote.from_wire(vote).verify(chain_id, [v.node_key for v in net.genesis.validators])
    signer = Signer.for_network(net)
    final = wait_final(
        net, be, [submit(be, signer.issue(signer.document("BE", "RU", "OB3")).event)]
    )
    assert final >= height
    status, block = fetch(f"{be.url}/v1/public/blocks/{height}")
    assert status == 200
    cert = CommitCertificate.from_wire(
        decode(bytes.fromhex(block["commit_certificate"]["encoded"]))
    )
    cert.verify(chain_id, [v.node_key for v in net.genesis.validators])
    assert cert.value.hex() == block["header"]["hash"]


def test_a_revoked_sync_token_stops_the_observer_at_once(net: Network, observed: Observed) -> None:
    """The operator's authorisation holds at every page: revoked, the observer gets no block
    more (and says why in its log), while the network goes on. (Last: it ends the observer's
    sync for the module.)"""
    be, obs = net.node("BE"), observed.node
    wait_for("the observer is at the head", lambda: obs.height() >= be.height())
    revoked = run_cli(
        "token", "revoke", "observer-1", "--config", str(be.config), "--json", net=net
    )
    assert revoked.returncode == 0, revoked.stderr
    stuck_at = obs.height()
    signer = Signer.for_network(net)
    height = wait_final(
        net, be, [submit(be, signer.issue(signer.document("BE", "AE", "OB4")).event)]
    )
    assert height > stuck_at
    wait_for("the observer's refusal", lambda: "answered 401" in obs.log.read_text())
    assert obs.height() == stuck_at
    assert fetch(f"{obs.url}/v1/public/blocks/{height}")[0] == 404
