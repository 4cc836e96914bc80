"""End-to-end: the peer links under attack (docs/security.md, "Peer links").

A node behind blocks whose catch-up answer would exceed any set bound catches up in pages bounded
by bytes; unsigned big bodies are refused before they are read; a signed peer request cannot be
replayed, to the same node or to another.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ledger.encoding import decode, encode
from ledger.genesis import Parameters
from ledger.keys import SigningKey
from node.files import load_signing_key
from node.peers import MSGPACK, page_bound, sign_request
from tests.e2e.conftest import (
    EventMaker,
    assert_same_chain,
    head,
    now_ms,
    poll,
    submit,
    wait_final,
)
from tests.e2e.harness import Network, NodeProcess, host_port, http, raw_connection, urlopen
from tests.node.conftest import override_toml

pytestmark = pytest.mark.slow


def node_key(net: Network, participant: str) -> SigningKey:
    return load_signing_key(net.directory / participant / "node.pem")


def send(
    node: NodeProcess, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        node.url + path, data=body if method == "POST" else None, method=method, headers=headers
    )
    try:
        with urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def signed(
    net: Network, sender: str, node: NodeProcess, method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    headers = sign_request(
        node_key(net, sender),
        net.genesis.chain_id,
        method,
        path,
        body,
        now_ms(),
        node_key(net, node.participant).public_bytes,
    )
    headers["Content-Type"] = MSGPACK
    return headers


def error_code(raw: bytes) -> str:
    return str(json.loads(raw)["error"])


# -- item 1: catch-up in pages bounded by bytes ---------------------------------------------------
#: Small numbers for the test: blocks of up to 100 KiB, pages of 256 KiB (two such blocks).
BLOCK_BYTES = 100 * 1024
PAGE_BYTES = 256 * 1024


def test_a_node_behind_big_blocks_catches_up_in_pages_bounded_by_bytes(tmp_path: Path) -> None:
    parameters = Parameters(
        timeout_propose_ms=600,
        timeout_vote_ms=300,
        timeout_delta_ms=200,
        max_block_bytes=BLOCK_BYTES,
    )
    net = Network.create(tmp_path / "net", parameters=parameters)
    for node in net.nodes:
        # A longer batching delay, so that the blocks fill up to max_block_bytes.
        override_toml(node.config, {"sync_page_bytes": PAGE_BYTES, "block_delay_ms": 300})
    try:
        net.start()
        be, ru = net.node("BE"), net.node("RU")
        others = [n for n in net.nodes if n is not ru]
        events = EventMaker.for_network(net, tag="SYNC")
        first = events.issue("BE", "AE")
        wait_final(net, be, [submit(be, first)])
        poll(lambda: head(ru)[0] >= head(be)[0], 30, "RU at the head before it stops")
        lag = head(ru)[0]
        ru.kill()
        batch = events.trade(1400)  # about 640 bytes each: 0.9 MB
        with ThreadPoolExecutor(6) as pool:
            ids = list(
                pool.map(lambda i: submit(others[i % 3], batch[i]), range(len(batch)), chunksize=20)
            )
        top = wait_final(net, be, ids, timeout=120)
        # What RU lacks would not fit in one page: the old answer (all of it, up to 64 blocks)
        # is over the bound a page is now read with.
        bound = page_bound(PAGE_BYTES, parameters, len(net.genesis.validators))
        whole: list[Any] = []
        height = lag + 1
        sizes = []
        while height <= top:
            path = f"/peer/blocks?from={height}&limit=64&max_bytes={PAGE_BYTES}"
            status, raw = send(be, "GET", path, signed(net, "RU", be, "GET", path))
            assert status == 200, raw
            page = decode(raw)
            assert page and decode(page[0][0])[0][2] == height  # the header's height
            assert len(raw) <= bound, (len(raw), bound)
            sizes.append(len(raw))
            whole += page
            height += len(page)
        assert len(sizes) >= 3, sizes  # the gap takes several pages
        assert sum(len(b) for b, _ in whole) > 3 * PAGE_BYTES
        # A block larger than the budget asked for still goes, alone.
        path = f"/peer/blocks?from={lag + 1}&limit=64&max_bytes=1"
        status, raw = send(be, "GET", path, signed(net, "RU", be, "GET", path))
        assert status == 200 and len(decode(raw)) == 1
        # RU comes back and catches up, page by page, checking every commit certificate.
        ru.start()
        ru.wait_healthy()
        poll(lambda: head(ru)[0] >= top, 90, f"RU back at height {top}")
        assert_same_chain([be, ru], top)
        synced = http("GET", ru.url + "/metrics")[1].decode()
        count = next(
            float(line.split()[1])
            for line in synced.splitlines()
            if line.startswith("kpledger_sync_blocks_total ")
        )
        assert count >= top - lag - 2  # by catch-up, not by consensus (but the last one or two)
    finally:
        net.kill_all()


# -- item 3 of the issue: no body is read before the request is authenticated ------------------
@pytest.fixture
def network(tmp_path: Path) -> Any:
    net = Network.create(tmp_path / "net")
    try:
        net.start()
        yield net
    finally:
        net.kill_all()


def _post_head(node: NodeProcess, path: str, length: int, extra: dict[str, str]) -> bytes:
    host, port = host_port(node.url)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Type: {MSGPACK}",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_before_the_body(
    node: NodeProcess, path: str, length: int, extra: dict[str, str]
) -> tuple[bytes, bool]:
    """Announce a body of `length` bytes, send none of it, and read the node's answer: a node
    that waited for the body would never answer (timeout). Returns the answer and whether the
    node then closed the connection. (No body byte is sent: a TLS connection closed with
    unread bytes in the node's buffer is reset, and the reset may take the answer with it.)"""
    with raw_connection(node.url, timeout=15) as conn:
        conn.sendall(_post_head(node, path, length, extra))
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)  # a node waiting for the whole body never answers: timeout
            if not chunk:
                break
            received += chunk
        closed = False
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    closed = True
                    break
                received += chunk
        except TimeoutError:
            closed = False
    return received, closed


def chunked_until_answered(node: NodeProcess, path: str, extra: dict[str, str]) -> bytes:
    """Send a chunked body, 256 KiB a chunk, until the node answers (at most 16 MiB)."""
    host, port = host_port(node.url)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Type: {MSGPACK}",
        "Transfer-Encoding: chunked",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    chunk = b"40000\r\n" + bytes(0x40000) + b"\r\n"
    with raw_connection(node.url, timeout=15) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        conn.setblocking(False)
        try:
            for _ in range(64):
                try:
                    answer = conn.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError):  # nothing yet (TLS: no record)
                    conn.setblocking(True)
                    conn.sendall(chunk)
                    conn.setblocking(False)
                    continue
                return answer
        except OSError:
            pass  # the node closed the connection while we were sending: its answer is queued
        conn.setblocking(True)
        return conn.recv(65536)


def rss_kib(node: NodeProcess) -> int:
    assert node.process is not None
    for line in Path(f"/proc/{node.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_unsigned_big_bodies_are_refused_before_they_are_read(network: Network) -> None:
    be = network.node("BE")
    big = 63 * 1024 * 1024
    # No signing headers: 401, answered while 62.9 MiB of the body are still unsent, and the
    # connection closed, so that the rest is never read.
    answer, closed = answer_before_the_body(be, "/peer/events", big, {})
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"peer_unauthenticated" in answer
    assert closed
    # Headers of a registered node key with a signature that is not its own: 401 as well.
    forged = signed(network, "AE", be, "POST", "/peer/events", b"something else")
    forged["X-KP-Node"] = node_key(network, "IN").public_bytes.hex()
    del forged["Content-Type"]
    answer, closed = answer_before_the_body(be, "/peer/consensus", big, forged)
    assert answer.startswith(b"HTTP/1.1 401") and b"bad_signature" in answer, answer[:200]
    assert closed
    # A genuine signature, but a body over the route's bound (derived from the parameters).
    honest = signed(network, "AE", be, "POST", "/peer/events", b"")
    del honest["Content-Type"]
    answer, closed = answer_before_the_body(be, "/peer/events", big, honest)
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer, answer[:200]
    # The same, sent chunked (no Content-Length): cut once over the bound, not read on.
    honest = signed(network, "AE", be, "POST", "/peer/events", b"")
    del honest["Content-Type"]
    answer = chunked_until_answered(be, "/peer/events", honest)
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer, answer[:200]
    # Memory stays flat while 16 clients push unsigned 63 MiB bodies at once.
    before = rss_kib(be)
    chunk = bytes(1024 * 1024)

    def flood() -> None:
        with raw_connection(be.url, timeout=15) as conn:
            try:
                conn.sendall(_post_head(be, "/peer/events", big, {}))
                for _ in range(63):
                    conn.sendall(chunk)
            except OSError:
                pass  # the node closed the connection: what it should do

    threads = [threading.Thread(target=flood) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    after = rss_kib(be)
    assert after - before < 64 * 1024, (before, after)  # KiB: far below 16 x 63 MiB
    assert be.health() is not None


# -- replays --------------------------------------------------------------------------------------
def test_a_replayed_peer_request_is_refused_by_its_recipient_and_by_the_others(
    network: Network,
) -> None:
    be, in_ = network.node("BE"), network.node("IN")
    events = EventMaker.for_network(network, tag="REPLAY")
    pending = events.issue("BE", "AE")
    body = encode([pending.encoded])
    headers = signed(network, "AE", be, "POST", "/peer/events", body)
    status, raw = send(be, "POST", "/peer/events", headers, body)
    assert status == 204, raw
    # The same request again (within the 60 s window): refused, whatever the body's fate.
    status, raw = send(be, "POST", "/peer/events", headers, body)
    assert status == 401 and error_code(raw) == "peer_replayed", raw
    # The same request to another node: it names its recipient, which is not IN.
    status, raw = send(in_, "POST", "/peer/events", headers, body)
    assert status == 401 and error_code(raw) == "peer_wrong_recipient", raw
    assert in_.get(f"/v1/events/{pending.event_id.hex()}")[0] == 404
    # A GET is no different; a fresh nonce is accepted.
    headers = signed(network, "AE", be, "GET", "/peer/status")
    assert send(be, "GET", "/peer/status", headers)[0] == 200
    status, raw = send(be, "GET", "/peer/status", headers)
    assert status == 401 and error_code(raw) == "peer_replayed", raw
    assert send(be, "GET", "/peer/status", signed(network, "AE", be, "GET", "/peer/status"))[0] == (
        200
    )
    # The event got through once, to BE only.
    status, answer = be.get(f"/v1/events/{pending.event_id.hex()}")
    assert status == 200 and answer["status"] in ("pending", "final"), answer
