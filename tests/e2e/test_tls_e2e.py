"""TLS on every link, on real node processes (SPEC 6, docs/security.md "On the wire"): a TLS
network finalises; plain HTTP to a TLS port gets no answer; a node whose key the register does
not list is refused by its peers in gossip and in sync, and by a client that pins the register."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import authoring
from ledger.keys import SigningKey
from node.files import write_private_pem
from tests.e2e.conftest import EventMaker, now_ms, poll, submit, wait_final
from tests.e2e.harness import REPO, Network, NodeProcess, reserve_ports, trust_node_key

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KPLEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**clean, **(env or {})},
        timeout=60,
    )


def metric(node: NodeProcess, name: str, **labels: str) -> float:
    """The sum of a counter's samples on `node` whose labels include `labels`."""
    status, body = node.get("/metrics")
    assert status == 200
    text = body.decode() if isinstance(body, bytes) else str(body)
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def tls_network(tmp_path: Path) -> Iterator[Network]:
    net = Network.create(tmp_path / "net", tls=True)
    net.lift_rate_limits()
    try:
        yield net
    finally:
        net.close()


def test_a_tls_network_finalises_and_clients_pin_its_keys(tls_network: Network) -> None:
    net = tls_network
    assert all(v.address.startswith("https://") for v in net.genesis.validators)
    net.start()
    events = EventMaker.for_network(net)
    ids = [submit(net.nodes[i % 4], events.issue()) for i in range(4)]
    height = wait_final(net, net.node("AE"), ids)
    assert height >= 1
    be = net.node("BE")
    genesis = str(net.directory / "genesis.json")
    # The CLI pins the genesis's node keys: --genesis, or the genesis beside --key's directory.
    shown = cli("explore", "head", "--node", be.url, "--genesis", genesis, "--json")
    assert shown.returncode == 0, shown.stderr
    # With nothing to pin and the node's certificate signed by no CA: exit 2, saying what to give.
    unpinned = cli("explore", "head", "--node", be.url)
    assert unpinned.returncode == 2, unpinned
    assert "--genesis" in unpinned.stderr and "Traceback" not in unpinned.stderr
    # KPLEDGER_GENESIS does as --genesis.
    env = cli("explore", "head", "--node", be.url, env={"KPLEDGER_GENESIS": genesis})
    assert env.returncode == 0, env.stderr


def test_plain_http_to_a_tls_port_gets_no_answer_and_the_cli_says_use_https(
    tls_network: Network,
) -> None:
    net = tls_network
    net.start("BE")
    be = net.node("BE")
    port = int(be.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET /v1/public/head HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        try:
            while chunk := raw.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/" not in received and b"header" not in received, received[:200]
    plain = be.url.replace("https://", "http://")
    genesis = str(net.directory / "genesis.json")
    said = cli("explore", "head", "--node", plain, "--genesis", genesis)
    assert said.returncode == 2, said
    assert "use https://" in said.stderr, said.stderr
    as_json = cli("verify", "BE-X-1", "--node", plain, "--genesis", genesis, "--json")
    assert as_json.returncode == 2 and "use https://" in as_json.stdout, as_json


def test_a_node_whose_key_the_register_does_not_list_is_refused(tls_network: Network) -> None:
    net = tls_network
    # RU's node runs with a key of its own making, not the one genesis lists for RU.
    impostor = net.node("RU")
    other_key = SigningKey.generate()
    write_private_pem(impostor.config.parent / "node.pem", other_key.to_pem())
    trust_node_key(other_key.public_bytes)  # the test itself reads RU's height
    net.start("BE", "AE", "IN")
    impostor.start()
    impostor.wait_healthy()
    honest = [net.node(p) for p in ("BE", "AE", "IN")]
    events = EventMaker.for_network(net)
    ids = [submit(honest[i % 3], events.issue()) for i in range(3)]
    height = wait_final(net, net.node("BE"), ids)
    # Gossip to RU: its certificate is not for RU's registered key, so no peer sends it anything.
    for node in honest:
        poll(
            lambda n=node: metric(n, "kpledger_peer_untrusted_total", participant="RU") > 0,
            30,
            f"{node.participant} refusing RU's certificate",
        )
    # Its own gossip and catch-up requests are signed by an unlisted key: refused (403).
    poll(
        lambda: (
            sum(
                metric(n, "kpledger_http_requests_total", family="peer", status="403")
                for n in honest
            )
            > 0
        ),
        30,
        "the peers refusing RU's requests",
    )
    assert height >= 1 and impostor.height() == 0, impostor.height()
    # A client pinning the register's key for RU's address will not talk to it.
    refused = cli(
        "explore", "head", "--node", impostor.url, "--genesis", str(net.directory / "genesis.json")
    )
    assert refused.returncode == 2, refused
    assert "not a node key" in refused.stderr, refused.stderr


def test_a_rotated_node_key_takes_over_the_tls_identity_from_its_height(
    tls_network: Network,
) -> None:
    """BE moves its validator to a new node key K2 at a new address, by governance: until the
    change is in force the node with K2 is nobody's peer; from then on its peers pin K2 and its
    votes count (the chain finalises with BE's old node stopped and needs the new one)."""
    net = tls_network
    net.start()
    chain_id = net.genesis.chain_id
    keys = {code: net.authority_key(code) for code in ("BE", "AE", "IN", "RU")}
    be = net.node("BE")
    # BE's second node: its own folder beside BE's, a new node key, a port held for it.
    [listener] = reserve_ports(1)
    folder = net.directory / "BE2"
    folder.mkdir()
    new_key = SigningKey.generate()
    write_private_pem(folder / "node.pem", new_key.to_pem())
    for name in ("authority.pem", "encryption.pem"):
        shutil.copy(be.config.parent / name, folder / name)
    config = be.config.read_text().replace(f"port = {be.url.rsplit(':', 1)[1]}", "")
    (folder / "node.toml").write_text(config + f"port = {listener.port}\n")
    url = f"https://127.0.0.1:{listener.port}"
    trust_node_key(new_key.public_bytes, url)
    token = tomllib.loads(config)["api_token"]
    be2 = NodeProcess("BE", folder / "node.toml", url, token, net.directory / "BE2.log", listener)
    net.nodes.append(be2)
    be2.start()
    be2.wait_healthy()
    # Not yet in the register: its requests are refused, so it learns nothing.
    events = EventMaker.for_network(net)
    wait_final(net, be, [submit(be, events.issue())])
    assert be2.height() == 0

    proposal = authoring.propose(
        chain_id, "BE", "add_validator", "BE", [new_key.public_bytes, url],
        be.height() + 8, keys["BE"], created_ms=now_ms(),
    )  # fmt: skip
    wait_final(net, be, [submit(be, proposal)])
    for voter in ("AE", "IN"):
        submit(be, authoring.vote(chain_id, voter, proposal.event_id, True, keys[voter],
                                  created_ms=now_ms()))  # fmt: skip

    def in_set() -> bool:
        status, register = be.get("/v1/public/participants")
        assert status == 200
        return any(v["node_key"] == new_key.public_bytes.hex() for v in register["validators"])

    # In force (then ready: its attestation comes over the links its peers now accept).
    poll(in_set, 60, "the new node key to enter the validator set")
    poll(lambda: (be2.health() or {}).get("validator"), 30, "the new node to validate")
    # Five validators: four must sign. With BE's old node down, the new one's votes are needed.
    be.stop()
    others = [net.node(code) for code in ("AE", "IN", "RU")] + [be2]
    top = wait_final(net, net.node("AE"), [submit(net.node("AE"), events.issue("AE", "IN"))])
    net.wait_height(top, others, timeout=30)
    # Its peers reached it over TLS pinned to the new key, never refusing it as untrusted.
    for node in others[:3]:
        assert metric(node, "kpledger_peer_untrusted_total", participant="BE") == 0
    # A client that pins the genesis follows the register the new node serves, proven against
    # that genesis, to its new key (node/client.py, follow_register).
    genesis = str(net.directory / "genesis.json")
    followed = cli("explore", "head", "--node", be2.url, "--genesis", genesis)
    assert followed.returncode == 0, followed.stdout + followed.stderr
