"""The event stream on real nodes: AE's client sees a BE->AE issuance once final, and resumes
from its last id with nothing missed or repeated, across reconnects and a restart of the node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.events import Event
from tests.e2e.conftest import EventMaker, poll, submit, wait_final
from tests.e2e.harness import Network, http
from tests.e2e.sse import SSEClient, rss_bytes, slow_clients

pytestmark = pytest.mark.slow

#: A heartbeat comment this often: the test reads "caught up" from it.
HEARTBEAT_S = 0.5


#: Slow clients at once on one node (every one from 127.0.0.1: the per-address cap is raised).
SLOW_CLIENTS = 200


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    net = Network.create(tmp_path / "net", tls=True)
    net.lift_rate_limits()
    for n in net.nodes:
        with n.config.open("a", encoding="utf-8") as config:
            config.write(
                f"stream_heartbeat_s = {HEARTBEAT_S}\n"
                f"max_connections_per_address = {SLOW_CLIENTS + 50}\n"
            )
    try:
        net.start()
        yield net
    finally:
        net.close()


def stream(net: Network, last_id: str | None = None) -> SSEClient:
    ae = net.node("AE")
    client = SSEClient(ae.url + "/v1/stream", token=ae.token, last_event_id=last_id)
    assert client.status == 200, getattr(client, "body", "")
    assert client.headers["content-type"].startswith("text/event-stream")
    return client


def final(net: Network, events: list[Event], via: str = "BE") -> None:
    node = net.node(via)
    wait_final(net, node, [submit(node, e) for e in events])


def test_a_client_sees_its_events_and_resumes_exactly_across_reconnects_and_a_restart(
    net: Network,
) -> None:
    maker = EventMaker.for_network(net)
    ae = net.node("AE")
    client = stream(net)
    try:
        first = client.next(10)  # retry and the cursor it starts from
        assert first is not None and first.id is not None and first.event is None
        issue = maker.issue("BE", "AE")
        elsewhere = maker.issue("IN", "RU")  # not AE's: never on AE's stream
        submitted = time.monotonic()
        final(net, [elsewhere, issue])
        (seen,) = client.events(1, timeout=30)
        assert seen.event == "certificate.issue"
        assert seen.data["event_id"] == issue.event_id.hex()
        assert seen.data["number"] == issue.number
        assert seen.data["status"] == "issued" and seen.id == seen.data["cursor"]
        height, index = (int(x) for x in seen.id.split(":"))
        assert seen.data["height"] == height
        _, block = ae.get(f"/v1/public/blocks/{height}")
        assert block["events"][index]["event_id"] == issue.event_id.hex()
        # Measured, not asserted (SPEC 9: within 2 s of finality on an idle machine).
        block_ms = block["header"]["time_ms"]
        print(
            f"stream delay: {seen.at - submitted:.3f} s from submission; "
            f"{time.time() - block_ms / 1000:.3f} s since the block's time (upper bound)"
        )
        last = seen.id
    finally:
        client.close()

    # Disconnected: three more of AE's events become final (and one of others'), then AE's
    # client resumes from its last id and gets exactly those three.
    three = [maker.confirm(issue.number), maker.issue("AE", "IN"), maker.issue("RU", "AE")]
    final(net, [three[0]], via="AE")
    final(net, [maker.issue("IN", "RU"), three[1], three[2]])
    client = stream(net, last_id=last)
    try:
        got = client.until_idle(timeout=30)
        assert [m.data["event_id"] for m in got] == [e.event_id.hex() for e in three]
        assert [m.event for m in got] == [
            "certificate.confirm_import",
            "certificate.issue",
            "certificate.issue",
        ]
        assert got[0].data["status"] == "import_confirmed"
        ids = [m.id for m in got]
        assert ids == sorted(ids, key=lambda c: tuple(int(x) for x in c.split(":")))
        last = got[-1].id
        # The node stops: the stream ends (the client would reconnect elsewhere or later).
        ae.stop()
        assert client.next(10) is None
    finally:
        client.close()

    # AE is down while three more become final on the others; restarted, it catches up from
    # its peers, and the client resumes from its last id once more.
    three = [maker.issue("BE", "AE"), maker.issue("IN", "AE"), maker.issue("AE", "RU")]
    final(net, [maker.issue("RU", "IN"), *three])
    ae.start()
    ae.wait_healthy()
    client = stream(net, last_id=last)
    try:
        got = client.events(3, timeout=30)
        assert [m.data["event_id"] for m in got] == [e.event_id.hex() for e in three]
        assert client.until_idle(timeout=30) == []
    finally:
        client.close()

    # ?after= does the same as Last-Event-ID; a malformed cursor is a clear 400.
    client = SSEClient(ae.url + f"/v1/stream?after={last}", token=ae.token)
    try:
        assert [m.data["event_id"] for m in client.until_idle(30)] == [
            e.event_id.hex() for e in three
        ]
    finally:
        client.close()
    bad = SSEClient(ae.url + "/v1/stream?after=7:x", token=ae.token)
    assert bad.status == 400 and '"malformed"' in bad.body
    bad.close()


def test_the_stream_needs_a_token_and_the_public_stream_does_not(net: Network) -> None:
    ae = net.node("AE")
    refused = SSEClient(ae.url + "/v1/stream")
    assert refused.status == 401 and "token_required" in refused.body
    refused.close()
    wrong = SSEClient(ae.url + "/v1/stream", token="x" * 32)
    assert wrong.status == 401 and "token_refused" in wrong.body
    wrong.close()
    # A token of scope read opens the stream; the webhooks need admin (403 token_scope).
    status, made = http(
        "POST", ae.url + "/v1/admin/tokens", {"name": "customs", "scope": "read"}, token=ae.token
    )
    assert status == 201, made
    reader = SSEClient(ae.url + "/v1/stream", token=made["token"])
    assert reader.status == 200 and reader.next(10) is not None
    reader.close()
    status, body = http("GET", ae.url + "/v1/webhooks", token=made["token"])
    assert status == 403 and body["error"] == "token_scope", body

    maker = EventMaker.for_network(net)
    final(net, [maker.issue("BE", "AE")])
    top = ae.height()
    public = SSEClient(ae.url + "/v1/public/stream?after=0")
    try:
        got = public.events(top, timeout=30)
        assert [m.data["height"] for m in got] == list(range(1, top + 1))
        for m in got:
            assert m.event == "block" and m.id == str(m.data["height"])
            assert m.data["hash"] == m.data["header"]["hash"]
            assert m.data["commit_certificate"]["block_hash"] == m.data["hash"]
            assert "carats" not in str(m.data) and "exporter" not in str(m.data)
    finally:
        public.close()


def test_200_slow_clients_leave_the_node_finalising(net: Network) -> None:
    """Clients that read nothing, each owed the whole chain, hold only what the node's bounded
    buffers hold; the node keeps finalising and a fast client still gets its events.
    (scripts/bench_streams.py measures the memory; here it is printed, not judged.)"""
    maker = EventMaker.for_network(net)
    be, ae = net.node("BE"), net.node("AE")
    final(net, [maker.issue("BE", "AE") for _ in range(10)])
    assert ae.process is not None
    before = rss_bytes(ae.process.pid)
    half = SLOW_CLIENTS // 2
    paths = ["/v1/public/stream?after=0"] * half + ["/v1/stream?after=0:0"] * half
    sockets = slow_clients(ae.url, paths, ae.token)
    try:
        fast = stream(net)
        try:
            fast.next(10)
            more = [maker.issue("BE", "AE") for _ in range(5)]
            for event in more:  # one after another: several blocks final while they hang
                wait_final(net, ae, [submit(be, event)])
            got = fast.events(len(more), timeout=30)
            assert [m.data["event_id"] for m in got] == [e.event_id.hex() for e in more]
        finally:
            fast.close()
        status, health = ae.get("/healthz")
        assert status == 200, health
        print(
            f"AE's resident memory: {before / 2**20:.1f} MiB before, "
            f"{rss_bytes(ae.process.pid) / 2**20:.1f} MiB with {SLOW_CLIENTS} slow clients"
        )
        # Every slow client is still connected, none was dropped to save the node's memory.
        expected = f'kpledger_streams_open{{stream="public"}} {float(half)}'
        poll(lambda: expected in ae.get("/metrics")[1].decode(), 30, "the slow streams counted")
    finally:
        for sock in sockets:
            sock.close()
