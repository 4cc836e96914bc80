"""A node that lies: an aiohttp proxy in front of a real node that rewrites its answers.

`kpledger verify` believes only the proof, and refuses (exit 2) an answer whose plain JSON fields
contradict it rather than printing the proof's verdict beside them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from ledger.encoding import decode, encode
from ledger.keys import EncryptionKey
from ledger.proofs import RegisterProof, VerifiedCertificate
from ledger.registry import Registry
from node.cli import main
from node.files import load_signing_key
from node.tls import NODE_SNI, peer_pin
from node.views import public_answer_contradictions
from tests.e2e.harness import Network
from tests.node.conftest import Issued, Signer, build_demo_chain

pytestmark = pytest.mark.slow

#: (request path, HTTP status, JSON body) -> the (status, body) the lying node answers with.
Rewrite = Callable[[str, int, Any], tuple[int, Any]]
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class LyingNode:
    """Forwards every request to a real node and rewrites the JSON answers `rewrite` chooses.

    Listens on a socket of this process bound to port 0 of 127.0.0.1 (the kernel's choice,
    held from the start, so nothing can take it in between).
    """

    def __init__(self, upstream: str, node_key: bytes) -> None:
        self.upstream = upstream.rstrip("/")
        #: The upstream node's key, pinned as a peer pins it (the liar's own clients are plain).
        self.pin = peer_pin(node_key)
        self.rewrite: Rewrite | None = None
        self.requests: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        self.requests.append((request.method, request.path))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            data=await request.read(),
            headers=headers,
            ssl=self.pin,
            server_hostname=NODE_SNI,
        ) as answer:
            raw = await answer.read()
            status, content_type = answer.status, answer.content_type
        rewrite = self.rewrite
        if rewrite is not None and content_type == "application/json":
            status, body = rewrite(request.path, status, json.loads(raw))
            raw = json.dumps(body).encode()
        return web.Response(status=status, body=raw, content_type=content_type)

    async def _start(self) -> None:
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()

    def __enter__(self) -> LyingNode:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.sock.close()


class Liar:
    """The live network with the demo trade, and a lying node in front of BE's node."""

    def __init__(self, net: Network, issued: list[Issued], proxy: LyingNode) -> None:
        self.net = net
        self.issued = issued
        self.proxy = proxy

    @property
    def genesis(self) -> str:
        return str(self.net.directory / "genesis.json")

    def by_fate(self, fate: str) -> Issued:
        return next(i for i in self.issued if i.fate == fate)

    def run(self, *args: str) -> Result:
        runner = CliRunner(env={"COLUMNS": "200", "KPLEDGER_TOKEN": None})  # type: ignore[dict-item]
        result = runner.invoke(main, list(args), catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            repr(result.exception),
            result.output,
        )
        assert "Traceback" not in result.output, (args, result.output)
        return result

    def verify(self, number: str) -> Result:
        return self.run(
            "verify", number, "--node", self.proxy.url, "--genesis", self.genesis, "--json"
        )


@pytest.fixture(scope="module")
def liar(network_factory: Callable[..., Network]) -> Iterator[Liar]:
    net = network_factory("liar")
    issued = build_demo_chain(net, Signer.for_network(net), tag="LIE")
    be_key = load_signing_key(net.node("BE").config.parent / "node.pem").public_bytes
    with LyingNode(net.node("BE").url, be_key) as proxy:
        yield Liar(net, issued, proxy)
        proxy.rewrite = None


def _certificates(change: Callable[[int, dict[str, Any]], tuple[int, dict[str, Any]]]) -> Rewrite:
    """A rewrite of the public certificate answers only; every other answer passes unchanged."""

    def rewrite(path: str, status: int, body: Any) -> tuple[int, Any]:
        if path.startswith("/v1/public/certificates/") and isinstance(body, dict):
            return change(status, dict(body))
        return status, body

    return rewrite


def _set(**fields: Any) -> Callable[[int, dict[str, Any]], tuple[int, dict[str, Any]]]:
    def change(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body.update(fields)
        return status, body

    return change


def _other_digest(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body["digest"] = ("0" if body["digest"][0] != "0" else "1") + body["digest"][1:]
    return status, body


def _deny(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The number is "not on the ledger", around the proof that it is."""
    return 404, {
        "error": "certificate_not_found",
        "message": f"certificate {body['number']} is not on the ledger",
        "number": body["number"],
        "proof": body["proof"],
    }


def _short_history(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body["history"] = body["history"][:1]
    return status, body


def _later_time(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    history = [dict(item) for item in body["history"]]
    history[0]["time"] = "2031-01-01T00:00:00.000+00:00"
    body["history"] = history
    return status, body


def test_an_honest_answer_through_the_proxy_verifies(liar: Liar) -> None:
    """The control: the proxy itself changes nothing that verify would refuse."""
    liar.proxy.rewrite = None
    done = liar.verify(liar.by_fate("import_confirmed").number)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "import_confirmed"


@pytest.mark.parametrize(
    ("fate", "change", "named"),
    [
        ("issued", _set(status="voided", ledger_status="voided"), "status"),
        ("import_confirmed", _set(status="import_rejected"), "status"),
        ("voided", _set(status="import_confirmed", ledger_status="import_confirmed"), "status"),
        ("import_confirmed", _other_digest, "digest"),
        ("import_confirmed", _set(importing_participant="RU"), "importing_participant"),
        ("issued", _set(expires_on="2099-12-31"), "expires_on"),
        ("import_confirmed", _deny, "denies"),
        ("import_confirmed", _short_history, "history"),
        ("import_confirmed", _later_time, "time"),
    ],
    ids=[
        "status-voided",
        "status-rejected",
        "voided-as-confirmed",
        "digest",
        "importer",
        "expiry",
        "denied",
        "history",
        "history-time",
    ],
)
def test_verify_refuses_plain_fields_that_contradict_the_proof(
    liar: Liar,
    fate: str,
    change: Callable[[int, dict[str, Any]], tuple[int, dict[str, Any]]],
    named: str,
) -> None:
    liar.proxy.rewrite = _certificates(change)
    try:
        done = liar.verify(liar.by_fate(fate).number)
    finally:
        liar.proxy.rewrite = None
    assert done.exit_code == 2, done.output
    out = json.loads(done.stdout)
    assert out["error"] == "answer_contradicts_proof", out
    assert "contradicts its own proof" in out["message"]
    assert any(named in item for item in out["contradictions"]), out
    # Without --json, a person reads the same on stderr.
    liar.proxy.rewrite = _certificates(change)
    try:
        done = liar.run(
            "verify", liar.by_fate(fate).number, "--node", liar.proxy.url, "--genesis", liar.genesis
        )
    finally:
        liar.proxy.rewrite = None
    assert done.exit_code == 2 and "contradicts its own proof" in done.stderr, done.output


def test_a_proof_of_absence_with_a_status_beside_it_is_refused(liar: Liar) -> None:
    liar.proxy.rewrite = _certificates(
        lambda status, body: (200, {**body, "status": "issued", "digest": "ab" * 32})
    )
    try:
        done = liar.verify("BE-LIE-99999")
    finally:
        liar.proxy.rewrite = None
    assert done.exit_code == 2, done.output
    out = json.loads(done.stdout)
    assert out["error"] == "answer_contradicts_proof", out


def test_expired_is_the_one_status_a_node_may_state_beside_issued() -> None:
    """`status` may read `expired` for an issued certificate past its expiry date (give or take
    the day a node's clock may differ by around midnight), and nothing else."""
    checked = VerifiedCertificate(
        number="BE-LIE-1",
        found=True,
        status="issued",
        digest=bytes(32),
        history=(("certificate.issue", 1, bytes(32)),),
        head_height=1,
        head_time_ms=0,
        exporting_participant="BE",
        importing_participant="AE",
        issued_on="2026-01-01",
        expires_on="2026-03-01",
        replaces="",
    )
    body = {"number": "BE-LIE-1", "ledger_status": "issued", "digest": "00" * 32}

    def said(status: str, today: date) -> list[str]:
        return public_answer_contradictions(200, {**body, "status": status}, checked, today=today)

    assert said("issued", date(2026, 2, 1)) == []
    assert said("expired", date(2026, 2, 1)) != []
    assert said("expired", date(2026, 3, 2)) == []
    assert said("expired", date(2026, 3, 1)) == []  # the node's date is already tomorrow
    assert said("issued", date(2026, 3, 2)) == []  # the node's date is still yesterday
    assert said("issued", date(2026, 3, 3)) != []
    assert said("voided", date(2026, 2, 1)) != []
    assert (
        public_answer_contradictions(
            200,
            {**body, "status": "issued", "ledger_status": "voided"},
            checked,
            today=date(2026, 2, 1),
        )
        != []
    )


# -- the participant register: cert issue seals only to keys a quorum of validators signed ------
def _their_key() -> str:
    """The lying node's own encryption key: it could read every identity sealed to it."""
    return EncryptionKey.generate().public_bytes.hex()


def _json_key(participant: str, key: str) -> Rewrite:
    """Another encryption key for `participant` in the JSON fields, the proof left as it is."""

    def rewrite(path: str, status: int, body: Any) -> tuple[int, Any]:
        if path == "/v1/public/participants" and isinstance(body, dict):
            body = dict(body)
            body["participants"] = [
                {**p, "encryption_key": key} if p["code"] == participant else p
                for p in body["participants"]
            ]
        return status, body

    return rewrite


def _proof_key(participant: str, key: str) -> Rewrite:
    """Another key in the JSON and in the register the proof carries (which no header names)."""
    in_json = _json_key(participant, key)

    def rewrite(path: str, status: int, body: Any) -> tuple[int, Any]:
        status, body = in_json(path, status, body)
        if path == "/v1/public/participants" and isinstance(body, dict):
            proof = RegisterProof.from_base64(body["proof"])
            registry = Registry.from_wire(decode(proof.register))
            participants = dict(registry.participants)
            participants[participant] = replace(
                participants[participant], encryption_key=bytes.fromhex(key)
            )
            forged = Registry.build(
                participants,
                registry.validators,
                registry.parameters,
                registry.extra_recipients,
                registry.proposals,
                registry.pending_validators,
            )
            proof = replace(proof, register=encode(forged.to_wire()))
            body = {**body, "proof": proof.to_base64()}
        return status, body

    return rewrite


def _no_proof(path: str, status: int, body: Any) -> tuple[int, Any]:
    if path == "/v1/public/participants" and isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "proof"}
    return status, body


def _no_block_yet(participant: str, key: str) -> Rewrite:
    """ "No final block yet" (no proof, height 0), and another key: genesis's register is the one
    in force before block 1, and the key contradicts it."""
    in_json = _json_key(participant, key)

    def rewrite(path: str, status: int, body: Any) -> tuple[int, Any]:
        status, body = in_json(path, status, body)
        if path == "/v1/public/participants" and isinstance(body, dict):
            body = {**body, "proof": None, "height": 0, "in_force_from": 1}
        return status, body

    return rewrite


def _issue(liar: Liar, tmp_path: Path, tag: str, *extra: str) -> tuple[str, Result]:
    signer = Signer.for_network(liar.net)
    document = signer.document("BE", "AE", tag)
    path = tmp_path / f"{tag}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    key = str(liar.net.directory / "BE" / "authority.pem")
    done = liar.run(
        "cert", "issue", str(path), "--node", liar.proxy.url, "--key", key, "--json", *extra
    )
    return str(document["number"]), done


def test_cert_issue_checks_the_register_through_an_honest_node(liar: Liar, tmp_path: Path) -> None:
    """The control: the same issuance through the proxy, unchanged, is checked and sent."""
    liar.proxy.rewrite = None
    before = len(liar.proxy.requests)
    number, done = _issue(liar, tmp_path, "LIEOK", "--genesis", liar.genesis, "--wait")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "final"
    assert ("POST", "/v1/events") in liar.proxy.requests[before:]
    assert liar.net.node("BE").get(f"/v1/public/certificates/{number}")[0] == 200
    done = liar.run(
        "verify", "--register", "--node", liar.proxy.url, "--genesis", liar.genesis, "--json"
    )
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["register"] == "valid"
    proven = {p["code"]: p["encryption_key"] for p in out["participants"]}
    assert proven["AE"] == liar.net.registry.participant("AE").encryption_key.hex()


@pytest.mark.parametrize(
    ("lie", "code"),
    [
        (lambda: _json_key("AE", _their_key()), "register_contradicts_proof"),
        (lambda: _proof_key("AE", _their_key()), "invalid_register_proof"),
        (lambda: _json_key("BE", _their_key()), "register_contradicts_proof"),
        (lambda: _no_proof, "no_proof"),
        (lambda: _no_block_yet("AE", _their_key()), "register_contradicts_proof"),
    ],
    ids=[
        "importer-key-in-json",
        "importer-key-in-proof",
        "exporter-key-in-json",
        "no-proof",
        "no-block-yet",
    ],
)
def test_cert_issue_refuses_a_node_that_hands_out_another_key(
    liar: Liar, tmp_path: Path, lie: Callable[[], Rewrite], code: str
) -> None:
    rewrite = lie()
    liar.proxy.rewrite = rewrite
    before = len(liar.proxy.requests)
    try:
        number, done = _issue(liar, tmp_path, "LIEKEY", "--genesis", liar.genesis)
        without_genesis = _issue(liar, tmp_path, "LIEKEY2")
        sent = liar.proxy.requests[before:]
        register = liar.run(
            "verify", "--register", "--node", liar.proxy.url, "--genesis", liar.genesis, "--json"
        )
    finally:
        liar.proxy.rewrite = None
    for result in (done, without_genesis[1], register):
        assert result.exit_code == 2, result.output
        out = json.loads(result.stdout)
        assert out["error"] == code, out
    # Nothing was signed or sent: no event reached the node, and the numbers are not on it.
    assert ("POST", "/v1/events") not in sent
    for n in (number, without_genesis[0]):
        status, _ = liar.net.node("BE").get(f"/v1/public/certificates/{n}")
        assert status == 404
