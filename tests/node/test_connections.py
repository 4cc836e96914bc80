"""Connection hygiene of live nodes: deadlines, caps, rate limits, and what a bad request gets.

Attackers connect from 127.0.0.2 and up (all of 127/8 is loopback on Linux): the nodes' own
peers are at 127.0.0.1, the address the register names, and keep a pool of their own.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from node.cli import main
from node.client import NodeClient
from node.clock import now_ms
from node.connections import ConnectionLimits
from node.files import load_signing_key
from node.peers import MSGPACK, sign_request
from node.tls import NODE_SNI, check_pinned, pinned_context
from tests.e2e.harness import UNTHROTTLED, Network, NodeProcess, harness_trust, http
from tests.node.conftest import Signer, submit, wait_final

pytestmark = pytest.mark.slow

#: BE closes quickly, AE caps hard, IN throttles every family, RU collapses repeated log lines.
OVERRIDES: dict[str, dict[str, Any]] = {
    "BE": {
        "header_timeout_s": 1.0,
        "keepalive_timeout_s": 1.0,
        "request_timeout_s": 2.0,
        "max_connections_per_address": 1000,
    },
    "AE": {"max_connections_per_address": 4, "max_connections": 6},
    "IN": {
        **UNTHROTTLED,
        **{
            key: value
            for family in ("public", "participant", "events", "ops", "explorer", "peer")
            for key, value in ((f"{family}_rate_per_s", 0.2), (f"{family}_burst", 5))
        },
    },
    "RU": {"log_repeat_burst": 3, "log_repeat_window_s": 1.0},
}
#: How long past a deadline a held connection may still be open before the test fails.
MARGIN_S = 15.0


@pytest.fixture(scope="module")
def net(network_factory: Any) -> Network:
    net: Network = network_factory("conn", OVERRIDES)
    return net


@pytest.fixture(scope="module")
def signer(net: Network) -> Signer:
    return Signer.for_network(net)


def port_of(node: NodeProcess) -> int:
    return int(node.url.rsplit(":", 1)[1])


def connect(
    node: NodeProcess, source: str, first: bytes = b"", handshake: bool = True
) -> socket.socket:
    """A connection from `source`, its TLS handshake done (the node key checked) unless
    `handshake` is False (a client that never starts TLS), `first` sent."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port_of(node)))
    if handshake and node.url.startswith("https://"):
        s = pinned_context().wrap_socket(s, server_hostname=NODE_SNI)
        check_pinned(s, harness_trust().keys, "the test networks' genesis")
    if first:
        s.sendall(first)
    s.setblocking(False)
    return s


def refused_before_tls(node: NodeProcess, source: str) -> bool:
    """Whether a connection from `source` is closed before its TLS handshake completes: how a
    TLS node refuses a connection over its caps (nothing can be said before TLS)."""
    try:
        s = connect(node, source)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    with held([s]):
        return False


@contextmanager
def held(sockets: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield sockets
    finally:
        for s in sockets:
            s.close()


def read_until_closed(sockets: list[socket.socket], timeout: float) -> dict[int, bytes]:
    """Read every socket until the server closes it or the deadline; what each got, if closed."""
    closed: dict[int, bytes] = {}
    got = {s.fileno(): b"" for s in sockets}
    with selectors.DefaultSelector() as sel:
        for s in sockets:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while len(closed) < len(sockets) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(65536)
                    # A TLS socket may hold more of what it decrypted than one recv took.
                    while isinstance(s, ssl.SSLSocket) and data and s.pending():
                        data += s.recv(s.pending())
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                except (BlockingIOError, ssl.SSLWantReadError):
                    continue
                except (ssl.SSLError, OSError):
                    data = b""  # the node ended the connection without a TLS goodbye
                if data:
                    got[s.fileno()] += data
                    continue
                closed[s.fileno()] = got[s.fileno()]
                sel.unregister(s)
    return closed


def exchange(node: NodeProcess, source: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One raw request from `source`; the status, headers and body of the answer."""
    s = connect(node, source, request)
    with held([s]):
        answer = read_until_closed([s], 10.0).get(s.fileno())
    assert answer is not None, "the node did not answer and close"
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def issue_through(net: Network, signer: Signer, node: NodeProcess, tag: str) -> None:
    """A certificate submitted to `node` becomes final there: the network is finalising."""
    issuance = signer.issue(signer.document(node.participant, "RU", tag))
    wait_final(net, node, [submit(node, issuance.event)])


# -- deadlines --------------------------------------------------------------------------------------
def test_idle_partial_and_slow_connections_are_closed_on_time_while_the_node_finalises(
    net: Network, signer: Signer
) -> None:
    be = net.node("BE")
    # Idle: half never start TLS (closed by the handshake deadline), half say nothing after it.
    idle = [connect(be, "127.0.0.2", handshake=i % 2 == 0) for i in range(150)]
    partial = [
        connect(be, "127.0.0.2", b"GET /healthz HTTP/1.1\r\nHost: be\r\nX-Slow: ")
        for _ in range(150)
    ]
    slow_body = [
        connect(
            be,
            "127.0.0.2",
            b"POST /v1/events HTTP/1.1\r\nHost: be\r\nContent-Type: application/json\r\n"
            b'Content-Length: 5000\r\n\r\n{"a": ',
        )
        for _ in range(20)
    ]
    with held(idle + partial + slow_body) as sockets:
        issue_through(net, signer, be, "HOLD")
        closed = read_until_closed(sockets, 2.0 + MARGIN_S)
        assert len(closed) == len(sockets), (
            f"{len(closed)} of {len(sockets)} held connections closed by the node: "
            f"idle {sum(s.fileno() in closed for s in idle)}/{len(idle)}, "
            f"partial {sum(s.fileno() in closed for s in partial)}/{len(partial)}, "
            f"slow body {sum(s.fileno() in closed for s in slow_body)}/{len(slow_body)}"
        )
    issue_through(net, signer, be, "AFTER")
    status, metrics = http("GET", be.url + "/metrics")
    text = metrics.decode() if isinstance(metrics, bytes) else str(metrics)
    assert status == 200 and 'kpledger_connections_timed_out_total{phase="header"}' in text


def test_a_kept_alive_connection_serves_requests_then_is_closed_when_idle(net: Network) -> None:
    be = net.node("BE")
    s = connect(be, "127.0.0.2", b"GET /healthz HTTP/1.1\r\nHost: be\r\n\r\n")
    with held([s]):
        closed = read_until_closed([s], 1.0 + MARGIN_S)
        assert s.fileno() in closed, "an idle kept-alive connection was never closed"
        assert closed[s.fileno()].startswith(b"HTTP/1.1 200"), closed[s.fileno()][:200]


def log_lines(node: NodeProcess) -> list[dict[str, Any]]:
    lines = node.log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.parametrize("path", ["/v1/events", "/peer/events"])
def test_a_request_whose_client_goes_away_mid_body_is_logged_as_cut_off_not_as_an_error(
    net: Network, path: str
) -> None:
    ae = net.node("AE")
    before = len(log_lines(ae))
    body = b"\x91" + bytes(4999)  # what the client says it sends; it sends 100 bytes of it
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if path.startswith("/peer/"):  # signed by BE's node, so that the route reads the body
        be = load_signing_key(net.directory / "BE" / "node.pem")
        ae_key = load_signing_key(net.directory / "AE" / "node.pem").public_bytes
        headers.update(sign_request(be, net.genesis.chain_id, "POST", path, body, now_ms(), ae_key))
        headers["Content-Type"] = MSGPACK
    head = f"POST {path} HTTP/1.1\r\nHost: ae\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    s = connect(ae, "127.0.0.9", head.encode() + b"\r\n" + body[:100])
    time.sleep(0.3)  # the node has the header and waits for the rest of the body
    s.close()
    deadline = time.monotonic() + MARGIN_S
    while True:
        lines = log_lines(ae)[before:]
        if any(line["event"].startswith("request cut off") for line in lines):
            break
        errors = [line for line in lines if line["level"] == "error"]
        assert not errors, errors
        assert time.monotonic() < deadline, f"no line said the request was cut off: {lines}"
        time.sleep(0.2)
    cut = [line for line in lines if line["event"].startswith("request cut off")]
    assert cut[0]["path"] == path and cut[0]["level"] == "info"
    assert not [line for line in lines if line["level"] == "error"]
    assert ae.alive() and ae.health() is not None


# -- caps -------------------------------------------------------------------------------------------
def healthz_on(s: socket.socket) -> bytes:
    s.setblocking(True)
    s.settimeout(10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: ae\r\n\r\n")
    try:
        answer = s.recv(65536)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    s.setblocking(False)
    return answer


def test_connections_beyond_the_caps_are_refused_and_the_peers_are_never_locked_out(
    net: Network, signer: Signer
) -> None:
    ae = net.node("AE")
    first = [connect(ae, "127.0.0.3") for _ in range(4)]
    with held(first):
        for s in first:  # each of the four is taken and served
            assert healthz_on(s).startswith(b"HTTP/1.1 200")
        # The fifth is closed before its TLS handshake (a connection over the caps costs the
        # node no handshake and holds no file).
        assert refused_before_tls(ae, "127.0.0.3")
        others = [connect(ae, "127.0.0.4") for _ in range(2)]
        with held(others):
            for s in others:
                assert healthz_on(s).startswith(b"HTTP/1.1 200")
            # Six client connections in all: a seventh, from a fresh address, is refused too.
            assert refused_before_tls(ae, "127.0.0.5")
            # The peers (127.0.0.1, the register's address) have their own pool.
            assert ae.health() is not None
            issue_through(net, signer, ae, "CAP")
    # Closed connections give their places back.
    deadline = time.monotonic() + MARGIN_S
    while True:
        if not refused_before_tls(ae, "127.0.0.3"):
            s = connect(ae, "127.0.0.3")
            with held([s]):
                if healthz_on(s).startswith(b"HTTP/1.1 200"):
                    break
        assert time.monotonic() < deadline, "closed connections never freed their places"
        time.sleep(0.1)
    _, metrics = http("GET", ae.url + "/metrics")
    assert b'kpledger_connections_refused_total{reason="per_address"}' in metrics
    assert b'kpledger_connections_refused_total{reason="max_connections"}' in metrics


# -- what a request aiohttp cannot parse gets -------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda token: f"Bearer {token}\x01".encode(), id="control-character"),
        pytest.param(lambda token: f"Bearer {token}{'A' * 9000}".encode(), id="over-8-KiB"),
    ],
)
def test_a_malformed_authorization_header_gets_json_that_echoes_nothing_and_is_never_logged(
    net: Network, header: Any
) -> None:
    ru = net.node("RU")
    request = (
        b"GET /v1/certificates HTTP/1.1\r\nHost: ru\r\nAuthorization: "
        + header(ru.token)
        + b"\r\n\r\n"
    )
    status, headers, body = exchange(ru, "127.0.0.6", request)
    assert status == 400, (status, body[:300])
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["error"] == "malformed_request" and answer["message"]
    assert ru.token.encode() not in body and b"Bearer" not in body
    assert ru.alive() and ru.health() is not None
    assert ru.token not in ru.log.read_text(encoding="utf-8", errors="replace")


def test_a_flood_of_bad_requests_writes_a_bounded_number_of_log_lines(net: Network) -> None:
    ru = net.node("RU")
    before = ru.log.read_text(encoding="utf-8").count('"malformed request refused"')
    for _ in range(60):
        status, _, _ = exchange(ru, "127.0.0.7", b"GET /healthz HTTP/1.1\r\nBad\x01: x\r\n\r\n")
        assert status == 400
    deadline = time.monotonic() + MARGIN_S
    while True:
        lines = ru.log.read_text(encoding="utf-8").splitlines()
        summaries = [
            json.loads(line)
            for line in lines
            if "similar lines suppressed" in line and "malformed request refused" in line
        ]
        if sum(s["suppressed"] for s in summaries) >= 1:
            break
        assert time.monotonic() < deadline, "no line said how many were suppressed"
        time.sleep(0.2)
    written = sum('"malformed request refused"' in line for line in lines) - before
    # 60 bad requests within a second or two: 3 lines a window, a few windows at most.
    assert written < 60, written


# -- rate limits per route family -------------------------------------------------------------------
def flood(node: NodeProcess, method: str, path: str, count: int = 12, **kw: Any) -> list[int]:
    return [http(method, node.url + path, **kw)[0] for _ in range(count)]


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/v1/public/head", {}),
        ("GET", "/v1/participants", {}),
        ("GET", "/metrics", {}),
        ("GET", "/explorer", {}),
        ("POST", "/v1/events", {"raw": b"{}", "content_type": "application/json"}),
        ("GET", "/peer/status", {}),
    ],
    ids=["public", "participant", "metrics", "explorer", "events", "peer"],
)
def test_every_route_family_is_rate_limited_per_address(
    net: Network, method: str, path: str, kw: dict[str, Any]
) -> None:
    statuses = flood(net.node("IN"), method, path, **kw)
    assert 429 in statuses, statuses
    status, body = http(method, net.node("IN").url + path, **kw)
    assert status == 429 and body["error"] == "rate_limited" and body["retry_after_s"] >= 1


def test_the_operators_own_clients_keep_their_budget_during_a_flood(
    net: Network, signer: Signer
) -> None:
    node = net.node("IN")
    assert 429 in flood(node, "GET", "/v1/public/genesis")
    assert 429 in flood(node, "GET", "/peer/status")  # unsigned: the peer family's budget
    client = NodeClient(node.url, node.token, trust=harness_trust())
    for path in ("/v1/public/genesis", "/v1/public/participants", "/v1/participants"):
        answer = client.get(path)
        assert answer.ok, (path, answer)
    assert NodeClient(node.url, trust=harness_trust()).get("/v1/public/genesis").status == 429
    # The operator's own writes, and the other nodes on IN's /peer/ routes under their registered
    # keys, are not throttled with the rest: the certificate becomes final on IN.
    issuance = signer.issue(signer.document("IN", "RU", "OWN"))
    status, body = http(
        "POST", node.url + "/v1/events", issuance.event.to_envelope(), token=node.token
    )
    assert status == 202, body
    deadline = time.monotonic() + 30
    while True:
        status, body = http("GET", f"{node.url}/v1/events/{body['event_id']}", token=node.token)
        assert status == 200, body
        if body["status"] == "final":
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


# -- query strings and methods ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/v1/certificates?status=",
        "/v1/certificates?from=",
        "/v1/certificates?to=",
        "/v1/certificates?exporting=",
        "/v1/certificates?exporting=be",
        "/v1/certificates?cursor=",
        "/v1/certificates?limit=0",
        "/v1/certificates?limit=1001",
        "/v1/certificates?limit=5&limit=6",
        "/v1/public/stats?year=",
        "/v1/public/stats?quarter=",
        "/v1/reconcile?year=",
        "/v1/chain/blocks?limit=0",
        "/v1/chain/blocks?limit=257",
        "/v1/chain/blocks?from=0",
        "/v1/public/governance/proposals?status=",
    ],
)
def test_empty_repeated_and_out_of_range_parameters_are_refused(net: Network, path: str) -> None:
    node = net.node("RU")
    status, body = http("GET", node.url + path, token=node.token)
    assert status == 400, (path, status, body)
    assert body["error"] == "malformed" and body["message"], body


def test_a_405_is_json_and_names_the_allowed_methods(net: Network) -> None:
    node = net.node("RU")
    status, headers, body = exchange(
        node,
        "127.0.0.8",
        b"POST /v1/public/head HTTP/1.1\r\nHost: ru\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert status == 405 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"] == "method_not_allowed"
    assert set(headers["allow"].split(", ")) == {"GET", "HEAD"}


# -- the file limit ---------------------------------------------------------------------------------
def test_a_flood_of_connections_under_a_1024_file_limit_leaves_the_validator_in_consensus(
    net: Network, signer: Signer
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1100 + 200  # the held sockets and this process's own files
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    count = min(1100, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200)
    ru = net.node("RU")
    ru.stop()
    ru.start(file_limit=1024)
    ru.wait_healthy()
    assert ru.process is not None
    log_before = ru.log.stat().st_size
    sockets: list[socket.socket] = []
    with held(sockets):
        for i in range(count):  # from 40 addresses, so that the cap in all is what bites
            # TCP connections that never begin TLS: each is counted in the caps from its
            # first moment, not from the end of a handshake it never makes.
            sockets.append(connect(ru, f"127.0.1.{i % 40 + 1}", handshake=False))
        closed = read_until_closed(sockets, 5.0)
        # At most the cap in all is taken (the caps lowered to fit 1,024 files); the rest are
        # closed at once, before any handshake. (A taken one may be closed too, by its
        # handshake deadline.)
        cap = ConnectionLimits().within_fd_limit(1024).max_connections
        assert len(closed) >= count - cap, (len(closed), count, cap)
        assert all(got == b"" for got in closed.values())
        files = len(os.listdir(f"/proc/{ru.process.pid}/fd"))
        assert files < 1024 - 100, files
        # The peers (and the operator, at the register's address) still get in: RU takes a
        # certificate submitted to it and sees it final, so it is in consensus.
        assert ru.health() is not None
        issuance = signer.issue(signer.document("RU", "BE", "FD"))
        wait_final(net, ru, [submit(ru, issuance.event)])
    # A thousand refusals wrote a few lines, not one each.
    assert ru.log.stat().st_size - log_before < 100_000


def test_the_cli_with_the_operators_token_is_not_throttled_by_a_flood_of_public_requests(
    net: Network, signer: Signer, tmp_path: Path
) -> None:
    """Issue 12: the CLI's own `cert issue` used to get 429 when a flood hit the public routes."""
    node = net.node("IN")
    certificate = tmp_path / "cert.json"
    certificate.write_text(json.dumps(signer.document("IN", "RU", "CLIOWN")))
    key = str(net.directory / "IN" / "authority.pem")
    args = ["cert", "issue", str(certificate), "--node", node.url, "--key", key, "--json"]
    runner = CliRunner(env={"KPLEDGER_TOKEN": None})  # type: ignore[dict-item]
    assert 429 in flood(node, "GET", "/v1/public/participants")
    throttled = runner.invoke(main, args)
    assert throttled.exit_code == 2 and "rate_limited" in throttled.stdout, throttled.output
    assert 429 in flood(node, "GET", "/v1/public/participants")
    own = CliRunner(env={"KPLEDGER_TOKEN": node.token}).invoke(main, [*args, "--wait"])
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)["height"] >= 1
