"""Webhooks on real nodes: signed deliveries a `standardwebhooks` receiver verifies, retried
while it is down, kept across a kill -9 of the node, never lost, repeated with the same id."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from ledger.events import Event
from tests.e2e.conftest import EventMaker, poll, submit, wait_final
from tests.e2e.harness import REPO, Network

pytestmark = pytest.mark.slow


@dataclass
class Received:
    message_id: str
    event_id: str
    answered: int
    body: dict[str, Any]


@dataclass
class Receiver:
    """A national system's endpoint: verifies every delivery with the standardwebhooks library
    and answers 204, or 503 while `failing`; stop() and start() take it off the network."""

    secret: str = ""
    failing: bool = False
    port: int = 0
    received: list[Received] = field(default_factory=list)
    forged: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if receiver.failing else 204
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError as exc:
                    receiver.forged.append(str(exc))
                    status = 400
                else:
                    with receiver.lock:
                        receiver.received.append(
                            Received(
                                self.headers["webhook-id"], payload["event_id"], status, payload
                            )
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/kp/hook"

    def delivered(self) -> dict[str, str]:
        """event id -> webhook-id of every delivery answered 2xx."""
        with self.lock:
            return {r.event_id: r.message_id for r in self.received if r.answered < 300}

    def attempts(self, event_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.event_id == event_id]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    net = Network.create(tmp_path / "net", tls=True)
    net.lift_rate_limits()
    for n in net.nodes:
        with n.config.open("a", encoding="utf-8") as config:
            config.write("webhook_retry_first_s = 0.3\nwebhook_retry_cap_s = 1.0\n")
    try:
        net.start()
        yield net
    finally:
        net.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def kpledger(*args: str) -> tuple[int, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "node.cli", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else None


def final(net: Network, events: list[Event], via: str = "BE") -> None:
    node = net.node(via)
    wait_final(net, node, [submit(node, e) for e in events])


def test_deliveries_are_signed_retried_kept_across_kill_9_and_never_lost(
    net: Network, receiver: Receiver
) -> None:
    ae = net.node("AE")
    maker = EventMaker.for_network(net)
    status, added = kpledger("webhook", "add", "--config", str(ae.config), "--url", receiver.url)
    assert status == 0, added
    assert added["secret"].startswith("whsec_") and added["id"].startswith("wh_")
    receiver.secret = added["secret"]
    wanted: list[Event] = []

    # Up: a BE->AE issuance arrives, signed; IN->RU is not AE's and never comes.
    issue = maker.issue("BE", "AE")
    wanted.append(issue)
    final(net, [maker.issue("IN", "RU"), issue])
    poll(lambda: issue.event_id.hex() in receiver.delivered(), 30, "the first delivery")
    (first,) = receiver.attempts(issue.event_id.hex())
    assert first.body["type"] == "certificate.issue" and first.body["number"] == issue.number
    assert first.body["status"] == "issued"

    # Down for a while (it answers 503): each delivery is retried, with the same webhook-id,
    # and once it is back every one arrives, in chain order.
    receiver.failing = True
    three = [maker.confirm(issue.number), maker.issue("RU", "AE"), maker.issue("AE", "IN")]
    wanted += three
    final(net, [three[0]], via="AE")
    final(net, three[1:])
    head = three[0].event_id.hex()
    poll(lambda: len(receiver.attempts(head)) >= 3, 30, "three failed attempts")
    status, listed = kpledger("webhook", "list", "--config", str(ae.config))
    assert status == 0
    (hook,) = listed["webhooks"]
    assert hook["pending"]["event_id"] == head and hook["pending"]["attempts"] >= 2
    assert hook["pending"]["last_response_status"] == 503
    assert hook["deliveries"][0]["event_id"] == issue.event_id.hex()
    receiver.failing = False
    poll(
        lambda: all(e.event_id.hex() in receiver.delivered() for e in three),
        30,
        "the deliveries once the receiver is back",
    )
    attempts = receiver.attempts(head)
    assert len({a.message_id for a in attempts}) == 1, "every retry has the same webhook-id"
    assert [a.answered for a in attempts][-1] == 204

    # Off the network, and the node is killed -9 with deliveries pending: once both are back,
    # they arrive.
    receiver.stop()
    two = [maker.issue("BE", "AE"), maker.issue("IN", "AE")]
    wanted += two
    final(net, two)
    net.wait_height(max(n.height() for n in net.nodes), [ae])
    ae.kill()
    receiver.start()  # the same port
    ae.start()
    ae.wait_healthy()
    poll(
        lambda: all(e.event_id.hex() in receiver.delivered() for e in two),
        30,
        "the deliveries pending at the kill",
    )

    # Never lost, never forged, and a repeated delivery carries the id of the first.
    delivered = receiver.delivered()
    assert set(delivered) == {e.event_id.hex() for e in wanted}
    assert receiver.forged == []
    for event in wanted:
        ids = {a.message_id for a in receiver.attempts(event.event_id.hex())}
        assert ids == {delivered[event.event_id.hex()]}
    status, listed = kpledger("webhook", "list", "--config", str(ae.config))
    assert listed["webhooks"][0]["pending"] is None
    assert listed["webhooks"][0]["delivered"] >= len(wanted)

    # Removed: gone from the list; an unknown id is refused (exit 1).
    status, removed = kpledger("webhook", "remove", added["id"], "--config", str(ae.config))
    assert status == 0 and removed == {"id": added["id"], "removed": True}
    assert kpledger("webhook", "list", "--config", str(ae.config))[1]["webhooks"] == []
    status, refused = kpledger("webhook", "remove", added["id"], "--config", str(ae.config))
    assert status == 1 and refused["error"] == "webhook_not_found"


def test_webhook_admin_refuses_bad_input_and_other_tokens(net: Network) -> None:
    ae = net.node("AE")
    config = str(ae.config)
    for url, why in (
        ("http://example.org/hook", "https"),
        ("ftp://127.0.0.1/x", "https://host"),
        ("https://user:pw@example.org/", "no user"),
    ):
        status, body = kpledger("webhook", "add", "--config", config, "--url", url)
        assert status == 1 and body["error"] == "malformed" and why in body["message"], body
    status, body = kpledger(
        "webhook", "add", "--config", config, "--url", "https://example.org/h", "--events", "x.y"
    )
    assert status == 1 and "unknown event type x.y" in body["message"]
    status, body = kpledger(
        "webhook",
        "list",
        "--node",
        ae.url,
        "--genesis",
        str(net.directory / "genesis.json"),
        "--token",
        "not-the-token-of-this-node",
    )
    assert status == 2 and body["error"] == "token_refused"
    assert kpledger("webhook", "list", "--config", config)[1]["webhooks"] == []
