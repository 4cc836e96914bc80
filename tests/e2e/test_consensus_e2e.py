"""End-to-end: four real node processes agree, survive crashes, catch up, and refuse forgeries."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ledger.consensus.messages import CommitCertificate, Proposal, Vote, VoteKind
from ledger.encoding import decode, encode
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.store import Store
from node.files import load_encryption_key, load_genesis, load_signing_key
from node.peers import MSGPACK, sign_request
from node.tls import server_context
from tests.e2e.conftest import (
    EventMaker,
    assert_same_chain,
    head,
    now_ms,
    poll,
    submit,
    try_submit,
    wait_final,
    wait_same_head,
)
from tests.e2e.harness import REPO, Network, NodeProcess, http, urlopen

pytestmark = pytest.mark.slow


# -- 1. agreement ---------------------------------------------------------------------------------
def test_events_submitted_anywhere_end_in_one_chain(network: Network, events: EventMaker) -> None:
    nodes = network.nodes
    issued = events.trade(24)
    ids = [submit(nodes[i % 4], e) for i, e in enumerate(issued)]
    wait_final(network, nodes[0], ids)
    # Follow-ups about those certificates, again through every node.
    numbers = [e.number for e in issued]
    follow = [events.confirm(n) for n in numbers[:12]] + [events.void(n) for n in numbers[12:18]]
    ids += [submit(nodes[(i + 1) % 4], e) for i, e in enumerate(follow)]
    for node in nodes:
        wait_final(network, node, ids)
    height, _ = wait_same_head(nodes)
    assert_same_chain(nodes, height)
    # Every event is in exactly one block, the same on every node.
    placed = {}
    for h in range(1, height + 1):
        for item in nodes[0].get(f"/v1/public/blocks/{h}")[1]["events"]:
            assert item["event_id"] not in placed
            placed[item["event_id"]] = h
    assert set(ids) <= set(placed)
    for node in nodes:
        for event_id in ids[::7]:
            assert node.get(f"/v1/events/{event_id}")[1]["height"] == placed[event_id]
    # The same event submitted again anywhere is accepted once, never recorded twice.
    again = http("POST", nodes[3].url + "/v1/events", issued[0].to_envelope())
    assert again[0] == 202 and again[1]["status"] == "final"
    assert head(nodes[0])[0] == height


def test_restart_of_an_idle_validator_leaves_the_network_idle(
    network: Network, events: EventMaker
) -> None:
    nodes = network.nodes
    wait_final(network, nodes[0], [submit(nodes[0], e) for e in events.trade(2)])
    height, _ = wait_same_head(nodes)
    nodes[2].kill()
    nodes[2].start()
    nodes[2].wait_healthy()
    # Nothing to do, so no round is started: an idle restart must not set every validator
    # spinning through empty rounds with ever longer timeouts (which delays the next event).
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        rounds = [(n.participant, n.health()["round"]) for n in nodes]  # type: ignore[index]
        assert all(r == 0 for _, r in rounds), rounds
        time.sleep(0.2)
    started = time.monotonic()
    wait_final(network, nodes[1], [submit(nodes[1], e) for e in events.trade(1)])
    assert time.monotonic() - started < 2.0
    assert wait_same_head(nodes)[0] == height + 1


# -- 2. crashes of f and of more than f validators -------------------------------------------------
def test_liveness_with_one_down_and_safety_with_two_down(
    network: Network, events: EventMaker
) -> None:
    be, ae, in_, ru = network.nodes
    ru.kill()
    ids = [submit([be, ae, in_][i % 3], e) for i, e in enumerate(events.trade(9))]
    top = wait_final(network, be, ids)
    network.wait_height(top, [be, ae, in_])

    in_.kill()
    stuck_height, stuck_hash = wait_same_head([be, ae])
    pending = [submit([be, ae][i % 2], e) for i, e in enumerate(events.trade(6))]
    # Two of four cannot finalise (nor even move to another round): for three seconds nothing
    # changes on either, and nothing forks.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert head(be) == (stuck_height, stuck_hash)
        assert head(ae) == (stuck_height, stuck_hash)
        time.sleep(0.2)
    assert be.get(f"/v1/events/{pending[0]}")[1]["status"] == "pending"

    in_.start()
    ru.start()
    in_.wait_healthy()
    ru.wait_healthy()
    for node in network.nodes:
        wait_final(network, node, pending, timeout=60)
    after = [submit(ru, e) for e in events.trade(4)]
    wait_final(network, be, after)
    height, _ = wait_same_head(network.nodes)
    assert height > stuck_height
    assert_same_chain(network.nodes, height)


# -- 3. kill -9 under load ------------------------------------------------------------------------
class Load:
    """A background client submitting pre-signed events to every node but the one about to die."""

    def __init__(self, nodes: list[NodeProcess], maker: EventMaker, count: int) -> None:
        self.nodes = nodes
        self.pool = maker.trade(count)
        #: (event id, the participant whose node accepted it)
        self.accepted: list[tuple[str, str]] = []
        self.known_elsewhere: set[str] = set()
        self.avoid: set[str] = set()
        self.turns = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set() and self.pool:
            targets = [n for n in self.nodes if n.participant not in self.avoid]
            target = targets[self.turns % len(targets)]
            event = self.pool[-1]
            if try_submit(target, event):
                self.accepted.append((event.event_id.hex(), target.participant))
                self.pool.pop()
            self.turns += 1
            time.sleep(0.01)

    def spare(self, victim: NodeProcess, witness: NodeProcess) -> None:
        """Send nothing more to `victim`; return once all it accepted reached `witness` (a
        pending event lives only in memory: one killed before gossiping it is lost, by design)."""
        self.avoid = {victim.participant}
        turn = self.turns
        poll(lambda: self.turns >= turn + 2, 10, "the load to move past the victim")
        for event_id, participant in list(self.accepted):
            if participant != victim.participant or event_id in self.known_elsewhere:
                continue
            path = f"/v1/events/{event_id}"
            poll(lambda p=path: witness.get(p)[0] == 200, 10, f"{event_id} gossiped")
            self.known_elsewhere.add(event_id)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_kill_minus_nine_under_load_loses_no_final_block(
    network: Network, events: EventMaker
) -> None:
    nodes = network.nodes
    with Load(nodes, events, 2000) as load:
        for victim in (nodes[1], nodes[2], nodes[0], nodes[1]):
            others = [n for n in nodes if n is not victim]
            load.spare(victim, others[0])
            before = head(victim)[0]
            victim.kill(signal.SIGKILL)
            # The others keep finalising without it.
            target = max(head(n)[0] for n in others) + 3
            network.wait_height(target, others)
            victim.start()
            victim.wait_healthy()
            assert head(victim)[0] >= before, f"{victim.participant} lost final blocks"
            load.avoid = set()
            catch_up = max(head(n)[0] for n in others)
            network.wait_height(catch_up, [victim])
            assert_same_chain([victim, *others], catch_up)
        accepted = [event_id for event_id, _ in load.accepted]
    assert len(accepted) > 100
    height, _ = wait_same_head(nodes, timeout=60)
    for event_id in accepted:
        answer = network.wait_event(nodes[3], event_id, timeout=60)
        assert answer["status"] == "final", answer
    height, _ = wait_same_head(nodes, timeout=30)
    assert_same_chain(nodes, height)


# -- 4. a wiped node rebuilds the chain from its peers ---------------------------------------------
def test_wiped_node_syncs_and_verifies_the_whole_chain(
    network: Network, events: EventMaker
) -> None:
    nodes = network.nodes
    be = nodes[0]
    # More blocks than one sync batch (64), one event each.
    for i, event in enumerate(events.trade(70)):
        wait_final(network, nodes[i % 4], [submit(nodes[i % 4], event)])
    be.stop()
    data = network.directory / "BE" / "data"
    assert data.is_dir()
    shutil.rmtree(data)
    more = [submit(nodes[1 + i % 3], e) for i, e in enumerate(events.trade(6))]
    wait_final(network, nodes[1], more)
    be.start()
    be.wait_healthy()
    height, _ = wait_same_head(nodes, timeout=60)
    assert height >= 70
    assert_same_chain(nodes, height)
    wait_final(network, be, more)
    be.stop()
    audit = pytest.importorskip("ledger.audit")
    store = Store(data, network.genesis)
    try:
        report = audit.verify_chain(store, network.genesis)
    finally:
        store.close()
    assert report.ok, report.fault
    assert report.height_checked == height


# -- 5. peers: who may speak, and forged commit certificates --------------------------------------
def peer_request(
    node: NodeProcess,
    key: SigningKey,
    chain_id: str,
    method: str,
    path: str,
    body: bytes = b"",
    at_ms: int | None = None,
) -> tuple[int, Any]:
    at_ms = now_ms() if at_ms is None else at_ms
    recipient = load_signing_key(node.config.parent / "node.pem").public_bytes
    headers = sign_request(key, chain_id, method, path, body, at_ms, recipient)
    headers["Content-Type"] = MSGPACK
    request = urllib.request.Request(
        node.url + path, data=body if method == "POST" else None, method=method, headers=headers
    )
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw


def node_key(network: Network, participant: str) -> SigningKey:
    return load_signing_key(network.directory / participant / "node.pem")


def forged_commits(network: Network, height: int, value: bytes) -> list[CommitCertificate]:
    """Certificates that must not convince anyone: too few signers, and signatures by strangers."""
    chain_id = network.genesis.chain_id
    keys = [node_key(network, v.participant) for v in network.genesis.validators]

    def precommit(key: SigningKey, index: int) -> tuple[int, bytes]:
        vote = Vote.create(key, chain_id, VoteKind.PRECOMMIT, height, 0, value, index)
        return index, vote.signature

    strangers = [SigningKey.generate() for _ in keys]
    return [
        # Two genuine signatures of four validators: not more than 2/3.
        CommitCertificate(height, 0, value, (precommit(keys[2], 2), precommit(keys[3], 3))),
        # Enough signers, but the keys are not the validators'.
        CommitCertificate(height, 0, value, tuple(precommit(strangers[i], i) for i in range(3))),
        # Two genuine and one garbage signature.
        CommitCertificate(
            height,
            0,
            value,
            (precommit(keys[1], 1), precommit(keys[2], 2), (3, bytes(64))),
        ),
    ]


def test_peer_routes_refuse_strangers_and_stale_requests(
    network: Network, events: EventMaker
) -> None:
    be = network.nodes[0]
    chain_id = network.genesis.chain_id
    ids = [submit(be, e) for e in events.trade(3)]
    height = wait_final(network, be, ids)
    before = head(be)
    stranger = SigningKey.generate()
    pending = events.issue("BE", "AE")
    for method, path, body in (
        ("GET", "/peer/status", b""),
        ("GET", "/peer/blocks?from=1&limit=8", b""),
        ("POST", "/peer/events", encode([pending.encoded])),
        ("POST", "/peer/consensus", encode([["commit", height + 1, 0, bytes(32), []]])),
    ):
        status, answer = peer_request(be, stranger, chain_id, method, path, body)
        assert status == 403, (path, status, answer)
        assert answer["error"] == "peer_not_allowed", answer
        assert "register" in answer["message"]
    # A validator's key, but a time two minutes old (a replay) or ahead.
    ae_key = node_key(network, "AE")
    for skew in (-120_000, 120_000):
        status, answer = peer_request(
            be,
            ae_key,
            chain_id,
            "POST",
            "/peer/events",
            encode([pending.encoded]),
            at_ms=now_ms() + skew,
        )
        assert status == 401 and answer["error"] == "peer_stale", answer
        assert "time" in answer["message"], answer
    # A validator's key, but signing another body than the one sent.
    be_key = node_key(network, "BE").public_bytes
    headers = sign_request(ae_key, chain_id, "POST", "/peer/events", b"other", now_ms(), be_key)
    headers["Content-Type"] = MSGPACK
    request = urllib.request.Request(
        be.url + "/peer/events", data=encode([pending.encoded]), method="POST", headers=headers
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"] == "bad_signature"
    assert be.get(f"/v1/events/{pending.event_id.hex()}")[0] == 404
    assert head(be) == before
    # The genuine key, fresh: accepted (the checks above refused for the right reason).
    status, raw = peer_request(be, ae_key, chain_id, "GET", "/peer/status")
    assert status == 200 and decode(raw)[0] == height


class FakePeer:
    """A validator gone bad: listens at its address and serves the true blocks with forged
    commit certificates, claiming a chain far longer than the real one."""

    def __init__(self, network: Network, participant: str, honest: NodeProcess) -> None:
        self.network = network
        self.key = node_key(network, participant)
        self.url = network.node(participant).url
        self.listener = network.node(participant).listener
        self.honest = honest
        self.requests = 0
        self.proposals: list[Proposal] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None

    def fetch_true_blocks(self, path: str) -> list[list[bytes]]:
        status, raw = peer_request(
            self.honest, self.key, self.network.genesis.chain_id, "GET", path
        )
        assert status == 200
        blocks: list[list[bytes]] = decode(raw)
        return blocks

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(body=encode([10_000, bytes(32)]), content_type=MSGPACK)

    async def blocks(self, request: web.Request) -> web.Response:
        self.requests += 1
        true_blocks = await asyncio.get_running_loop().run_in_executor(
            None, self.fetch_true_blocks, request.path_qs
        )
        served = []
        for i, (block_bytes, cert_bytes) in enumerate(true_blocks):
            cert = CommitCertificate.from_wire(decode(cert_bytes))
            forged = forged_commits(self.network, cert.height, cert.value)
            served.append([block_bytes, encode(forged[(self.requests + i) % 3].to_wire())])
        return web.Response(body=encode(served), content_type=MSGPACK)

    async def swallow(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    async def consensus(self, request: web.Request) -> web.Response:
        for item in decode(await request.read()):
            if item[0] == "proposal":
                self.proposals.append(Proposal.from_wire(item[1]))
        return web.Response(status=204)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/peer/status", self.status)
        app.router.add_get("/peer/blocks", self.blocks)
        app.router.add_post("/peer/events", self.swallow)
        app.router.add_post("/peer/consensus", self.consensus)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        # The harness holds the node's port: listen on (a handle of) the socket it holds. It
        # holds the validator's node key too, so its peers' TLS checks pass: the forged
        # certificates are what must be refused.
        assert self.listener is not None
        context = None
        if self.url.startswith("https://"):
            context = server_context(self.key, self.network.directory / "fake-peer-tls")
        await web.SockSite(self.runner, self.listener.lend(), ssl_context=context).start()

    def __enter__(self) -> FakePeer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert self.listener is not None
        self.listener.pause()


def test_forged_commit_certificates_in_gossip_are_refused(
    network: Network, events: EventMaker
) -> None:
    nodes = network.nodes
    chain_id = network.genesis.chain_id
    wait_final(network, nodes[0], [submit(nodes[0], e) for e in events.trade(3)])
    height, head_hash = wait_same_head(nodes)
    # With two validators down nothing can finalise, so only a forgery could move the chain.
    # The proposer of the next height stays up; one of the two down has its address taken by
    # a listener, which thus hears the block really proposed.
    proposer = nodes[(height + 1) % 4]
    up = [proposer, nodes[(height + 2) % 4]]
    down = [n for n in nodes if n not in up]
    for node in down:
        node.kill()
    pending = events.issue("BE", "AE")
    submit(proposer, pending)
    forger = down[0].participant
    forger_key = node_key(network, forger)
    with FakePeer(network, forger, proposer) as listener:
        poll(
            lambda: any(p.height == height + 1 for p in listener.proposals),
            20,
            "a proposal for the next height",
        )
        proposed = {p.value for p in listener.proposals if p.height == height + 1}
        for value in [*proposed, os.urandom(32)]:
            for forged in forged_commits(network, height + 1, value):
                body = encode([forged.to_wire()])
                for node in up:
                    status, _ = peer_request(
                        node, forger_key, chain_id, "POST", "/peer/consensus", body
                    )
                    assert status == 204  # gossip is accepted, then judged
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for node in up:
                assert head(node) == (height, head_hash)
            time.sleep(0.1)
    assert proposer.get(f"/v1/events/{pending.event_id.hex()}")[1]["status"] == "pending"
    for node in down:
        node.start()
    for node in down:
        node.wait_healthy()
    wait_final(network, proposer, [pending.event_id.hex()], timeout=60)
    top, _ = wait_same_head(nodes)
    assert_same_chain(nodes, top)


def test_forged_commit_certificates_during_sync_are_refused(
    network: Network, events: EventMaker
) -> None:
    be, ae, in_, ru = network.nodes
    ids = [submit(be, e) for e in events.trade(3)]
    wait_final(network, be, ids)
    be.stop()
    for i, event in enumerate(events.trade(12)):
        wait_final(network, in_, [submit([ae, in_, ru][i % 3], event)])
    honest_height, honest_hash = wait_same_head([ae, in_, ru])
    # AE goes bad; it is the first peer BE asks for blocks.
    ae.kill()
    with FakePeer(network, "AE", in_) as fake:
        be.start()
        be.wait_healthy()
        assert wait_same_head([be, in_, ru], timeout=30) == (honest_height, honest_hash)
        assert fake.requests >= 1, "the forger was never asked: the test proves nothing"
        assert_same_chain([be, in_, ru], honest_height)
        # And the three honest ones carry on.
        fresh = [submit(be, e) for e in events.trade(3)]
        wait_final(network, ru, fresh)
        assert head(be)[0] < 10_000


# -- 6. the command line --------------------------------------------------------------------------
def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_network_init_writes_keys_genesis_and_configs(tmp_path: Path) -> None:
    directory = tmp_path / "kp"
    base = 17700  # only written into the files: nothing listens in this test
    done = cli(
        "network",
        "init",
        "--dir",
        str(directory),
        "--participants",
        "EU:BE+DE+CZ,AE,IN,RU",
        "--base-port",
        str(base),
    )
    assert done.returncode == 0, done.stderr
    genesis_raw = json.loads((directory / "genesis.json").read_text())
    genesis = Genesis.from_json(genesis_raw)
    assert genesis.chain_id
    assert [p.code for p in genesis.participants] == ["EU", "AE", "IN", "RU"]
    assert genesis.participant("EU").countries == ("BE", "DE", "CZ")  # type: ignore[union-attr]
    assert genesis.participant("AE").countries == ("AE",)  # type: ignore[union-attr]
    assert "parameters" in genesis_raw and genesis_raw["parameters"]["timeout_propose_ms"] > 0
    for i, code in enumerate(["EU", "AE", "IN", "RU"]):
        folder = directory / code
        for name in ("authority.pem", "node.pem", "encryption.pem"):
            path = folder / name
            assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----"), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        participant = genesis.participant(code)
        assert participant is not None
        assert load_signing_key(folder / "authority.pem").public_bytes == participant.authority_key
        assert load_encryption_key(folder / "encryption.pem").public_bytes == (
            participant.encryption_key
        )
        validator = genesis.validators[i]
        assert validator.participant == code
        assert load_signing_key(folder / "node.pem").public_bytes == validator.node_key
        assert validator.address == f"https://127.0.0.1:{base + i}"
        config = tomllib.loads((folder / "node.toml").read_text())
        assert {"data_dir", "host", "port", "api_token", "genesis"} <= set(config)
        assert config["port"] == base + i
        assert (folder / config["genesis"]).resolve() == (directory / "genesis.json").resolve()
    # Refusals: a code that is not ISO 3166-1 alpha-2 (nor EU), a bad country inside EU, and
    # an existing network; nothing is written for them.
    for participants in ("BE,QQ", "EU:BE+XX,AE", "BE,be1"):
        target = tmp_path / f"bad-{participants.replace(':', '_').replace(',', '_')}"
        refused = cli("network", "init", "--dir", str(target), "--participants", participants)
        assert refused.returncode == 2, (participants, refused.stdout, refused.stderr)
        assert not (target / "genesis.json").exists()
    again = cli("network", "init", "--dir", str(directory), "--participants", "BE,AE")
    assert again.returncode == 2
    assert load_genesis(directory / "genesis.json").chain_id == genesis.chain_id


def test_cli_issue_wait_prints_height_and_exits_one_on_refusal(
    network: Network, events: EventMaker, tmp_path: Path
) -> None:
    be, ae, in_, ru = network.nodes
    key = str(network.directory / "BE" / "authority.pem")
    document = tmp_path / "cert.json"
    document.write_text(json.dumps(events.certificate_json("BE", "AE")))
    done = cli("cert", "issue", str(document), "--node", be.url, "--key", key, "--wait")
    assert done.returncode == 0, done.stderr
    event_id = done.stdout.split()[0]
    answer = be.get(f"/v1/events/{event_id}")[1]
    assert answer["status"] == "final"
    assert f"height {answer['height']}" in done.stdout
    # The same number again: refused at submission.
    again = cli("cert", "issue", str(document), "--node", ae.url, "--key", key, "--wait", "--json")
    assert again.returncode == 1, (again.stdout, again.stderr)
    # Signed with the wrong authority's key: refused.
    other = tmp_path / "other.json"
    other.write_text(json.dumps(events.certificate_json("BE", "IN")))
    wrong = cli(
        "cert",
        "issue",
        str(other),
        "--node",
        be.url,
        "--key",
        str(network.directory / "AE" / "authority.pem"),
    )
    assert wrong.returncode == 1, (wrong.stdout, wrong.stderr)
    # Refused only when its block is built: two issuances of the same number, each accepted by
    # a node while two validators are down (so that neither is final before both are in). Which
    # one a block takes first depends on the order re-gossip brings them to the validators that
    # come back: exactly one is final, and the other's --wait exits 1.
    in_.kill()
    ru.kill()
    rival_raw = events.certificate_json("BE", "RU")
    documents = []
    for name in ("rival.json", "late.json"):
        documents.append(tmp_path / name)
        documents[-1].write_text(json.dumps(rival_raw))

    def issue_waiting(document: Path, node: NodeProcess) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                *("-m", "node.cli", "cert", "issue", str(document), "--node", node.url),
                *("--key", key, "--wait"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    waiting = [issue_waiting(documents[0], be)]
    try:
        # One after the other, so that the two are signed at different times (two events).
        poll(lambda: be.health()["mempool"] >= 1, 20, "the first issuance in BE's mempool")
        waiting.append(issue_waiting(documents[1], ae))
        poll(lambda: ae.health()["mempool"] >= 2, 20, "both issuances in AE's mempool")
        in_.start()
        ru.start()
        answers = [p.communicate(timeout=90) for p in waiting]
    finally:
        for p in waiting:
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in waiting]
    assert sorted(codes) == [0, 1], (codes, answers)
    final_out, _ = answers[codes.index(0)]
    refused_out, _ = answers[codes.index(1)]
    assert "refused when its block was built" in refused_out
    assert "final at height" in final_out
    assert wait_final(network, ae, [final_out.split()[0]]) > 0
    # Connection trouble is exit 2.
    nowhere = cli("cert", "issue", str(other), "--node", "http://127.0.0.1:1", "--key", key)
    assert nowhere.returncode == 2
