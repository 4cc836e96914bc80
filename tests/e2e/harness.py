"""Real node processes on 127.0.0.1 for end-to-end tests: held ports, temp dirs, clean kills."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http import client as httpclient
from pathlib import Path
from typing import Any

from ledger.genesis import Genesis, Parameters
from ledger.keys import SigningKey
from ledger.registry import Registry
from node.netinit import init_network, parse_participants
from node.runner import LISTEN_FD_ENV
from node.tls import (
    NODE_SNI,
    ClientTrust,
    PinnedHTTPSConnection,
    check_pinned,
    peer_pin,
    pinned_context,
)

#: The node keys of every network this process made: the harness's client pins them (a test
#: node shows a certificate for its node key; docs/security.md), never skipping verification.
TRUSTED_NODE_KEYS: set[bytes] = set()


#: The node key at each test node's URL, for aiohttp clients (which pin one key a request).
NODE_KEY_AT: dict[str, bytes] = {}


def trust_node_key(node_key: bytes, url: str | None = None) -> None:
    """Accept this node key from a test node (a node key added by governance, a joiner's)."""
    TRUSTED_NODE_KEYS.add(node_key)
    if url is not None:
        NODE_KEY_AT[url.rstrip("/")] = node_key


def tls_kwargs(url: str) -> dict[str, Any]:
    """aiohttp request arguments for a request to the node at `url`: its node key pinned (and
    the server name that asks for its node certificate) when it is https://."""
    if not url.startswith("https://"):
        return {}
    base = "/".join(url.split("/", 3)[:3])
    return {"ssl": peer_pin(NODE_KEY_AT[base]), "server_hostname": NODE_SNI}


def harness_trust() -> ClientTrust:
    return ClientTrust(keys=frozenset(TRUSTED_NODE_KEYS), source="the test networks' genesis")


def connect(url: str, timeout: float = 30.0) -> httpclient.HTTPConnection:
    """A kept-alive connection to the node at `url` (https:// verified as urlopen does)."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    if parts.scheme == "https":
        trust = harness_trust()
        return PinnedHTTPSConnection(
            parts.hostname, pins=trust.keys, source=trust.source, port=parts.port, timeout=timeout
        )
    return httpclient.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def raw_connection(url: str, timeout: float = 30.0) -> socket.socket:
    """A socket to the node at `url` for a test that writes HTTP by hand: over TLS (the node key
    checked) for https://."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    if parts.scheme != "https":
        return sock
    tls_sock = pinned_context().wrap_socket(sock, server_hostname=NODE_SNI)
    trust = harness_trust()
    check_pinned(tls_sock, trust.keys, trust.source)
    return tls_sock


def host_port(url: str) -> tuple[str, str]:
    """`url`'s host and port, as text (for a Host header)."""
    parts = urllib.parse.urlsplit(url)
    return str(parts.hostname), str(parts.port)


def urlopen(request: urllib.request.Request | str, timeout: float = 10.0) -> Any:
    """urllib's urlopen, with https:// URLs verified against the test networks' node keys."""
    url = request if isinstance(request, str) else request.full_url
    if url.startswith("https://"):
        return harness_trust().opener(url).open(request, timeout=timeout)
    return urllib.request.urlopen(request, timeout=timeout)


REPO = Path(__file__).resolve().parents[2]

#: node.toml values that lift every per-address rate limit: a test or benchmark sends all its
#: requests from 127.0.0.1, so the limits would throttle the load it means to apply.
UNTHROTTLED: dict[str, Any] = {
    key: value
    for family in ("public", "participant", "events", "ops", "explorer", "peer", "own")
    for key, value in ((f"{family}_rate_per_s", 1e9), (f"{family}_burst", 1_000_000_000))
}


#: Ports are chosen below the kernel's ephemeral range, which the kernel draws from for
#: outgoing connections and port-0 binds: only a process asking for that very number competes.
LOWEST_PORT = 20000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class Listener:
    """A TCP port on 127.0.0.1, held by a socket of the test process from the moment it is chosen
    until close(), so that no other process can take it in between, however many test runs share
    the machine. (The old way, probe a free port, let go of it and have the node bind it later,
    lost the port to another socket now and then: "cannot listen ... address already in use".)

    The socket is bound to its explicit number, and a node started on it inherits it (the fd in
    KPLEDGER_LISTEN_FD, see node/runner.py) and listens on it: the node never binds. The socket
    takes turns:

    - held (no node): bound without SO_REUSEADDR and not listening. No other socket may bind the
      port, with SO_REUSEADDR or without, and a client connecting is refused at once, as by any
      node that is down (nothing accepts connections in its name).
    - open (a node is starting or running): SO_REUSEADDR set, so that the node can listen again
      after a restart while the connections the last node closed are in TIME_WAIT on the port.
      A listening port cannot be bound by anyone else either. While the node starts, before it
      listens, only a socket bound with SO_REUSEADDR to this very number could join it: nothing
      on the machine binds numbers below the ephemeral range so, and reserve_ports() never
      picks a bound number. (The test process does not listen for the node: connections made
      while the node starts are refused, as they would be by a real node, not kept waiting.)

    pause() goes back from open to held: shutdown() of a listening socket stops it listening and,
    the port having been bound explicitly, keeps it bound (Linux).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.port: int = sock.getsockname()[1]

    @classmethod
    def bind(cls, port: int) -> Listener:
        """Hold exactly this port (OSError when something has it)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        return cls(sock)

    @property
    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def listening(self) -> bool:
        return bool(self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))

    def open(self) -> None:
        """Ready the socket for a node (or a stand-in) that will listen on it."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def pause(self) -> None:
        """Stop listening (the node that listened on the socket is gone), keeping the port."""
        if self.sock.fileno() < 0:
            return
        if self.listening:
            try:
                self.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
            if self.listening:  # not Linux: give the port back and take it again at once
                self.sock.close()
                self.sock = Listener.bind(self.port).sock
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)

    def lend(self) -> socket.socket:
        """A handle on the open socket for a server in this process in place of the node (for
        a test that impersonates it); closing the handle leaves the port held. pause() after."""
        self.open()
        return self.sock.dup()

    def close(self) -> None:
        self.sock.close()


def reserve_ports(count: int) -> list[Listener]:
    """`count` consecutive ports on 127.0.0.1 (a network's base port and the ones after it,
    as `network init --base-port` numbers them), each held by a Listener until closed."""
    rng = random.SystemRandom()
    high = _ephemeral_low() - count
    for _ in range(500):
        base = rng.randrange(LOWEST_PORT, high) if high > LOWEST_PORT else 0
        if base == 0:
            raise RuntimeError("the ephemeral port range leaves no room for test ports")
        held: list[Listener] = []
        try:
            for port in range(base, base + count):
                held.append(Listener.bind(port))
        except OSError:
            for listener in held:
                listener.close()
            continue
        return held
    raise RuntimeError(f"no block of {count} free ports found")


#: Kept-alive connections of this thread, by "scheme://host:port": over TLS a new connection
#: costs a handshake, and the tests poll the nodes many thousand times.
_local = threading.local()
_POOL_MAX = 64


def _pool() -> dict[str, httpclient.HTTPConnection]:
    pool: dict[str, httpclient.HTTPConnection] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def forget_connection(url: str) -> None:
    """Close this thread's kept-alive connection to the node at `url` (it was stopped)."""
    parts = urllib.parse.urlsplit(url)
    conn = _pool().pop(f"{parts.scheme}://{parts.netloc}", None)
    if conn is not None:
        conn.close()


def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    raw: bytes | None = None,
    content_type: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One request on a kept-alive connection of this thread (https:// verified as urlopen
    does); a connection the node closed while idle is opened again once. A failure to connect
    or to get an answer raises OSError (urllib.error.URLError), as urlopen does."""
    headers = {}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if content_type is not None:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token}"
    parts = urllib.parse.urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    path = url[len(base) :] or "/"
    pool = _pool()
    for attempt in range(2):
        conn = pool.pop(base, None)
        reused = conn is not None
        if conn is None:
            conn = connect(base, timeout)
        elif conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            status, payload = response.status, response.read()
        except (ConnectionError, httpclient.BadStatusLine, ssl.SSLEOFError) as exc:
            conn.close()
            if reused and attempt == 0:
                continue  # the node closed the idle connection: it never read this request
            raise urllib.error.URLError(exc) from exc
        except httpclient.HTTPException as exc:
            conn.close()
            raise urllib.error.URLError(exc) from exc
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            while len(pool) >= _POOL_MAX:
                pool.pop(next(iter(pool))).close()
            pool[base] = conn
        break
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload


def _limit_files(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@dataclass
class NodeProcess:
    participant: str
    config: Path
    url: str
    token: str
    log: Path
    #: The node's port, held by the test process and handed to the node at each start.
    listener: Listener | None = None
    process: subprocess.Popen[bytes] | None = None
    #: Environment variables set for this node only, at its next start.
    env: dict[str, str] = field(default_factory=dict)
    #: Options added to its `node run` (say --passphrase-file FILE), at its next start.
    args: list[str] = field(default_factory=list)

    def start(self, file_limit: int | None = None) -> None:
        """Start the node; with `file_limit`, its open-file limit fixed there (soft and hard)."""
        assert self.process is None or self.process.poll() is not None
        env = {**os.environ, **self.env}
        fds: tuple[int, ...] = ()
        if self.listener is not None:
            self.listener.open()
            env[LISTEN_FD_ENV] = str(self.listener.fileno)
            fds = (self.listener.fileno,)
        log = open(self.log, "ab")  # noqa: SIM115 - kept open for the child
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node.cli",
                "node",
                "run",
                "--config",
                str(self.config),
                *self.args,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=REPO,
            env=env,
            pass_fds=fds,
            preexec_fn=None if file_limit is None else (lambda: _limit_files(file_limit)),
        )
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        forget_connection(self.url)
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.listener is not None:
            self.listener.pause()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def close(self) -> None:
        """Kill the node and give its port back."""
        self.kill()
        if self.listener is not None:
            self.listener.close()

    def get(self, path: str, token: bool = False) -> tuple[int, Any]:
        return http("GET", self.url + path, token=self.token if token else None)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return http("POST", self.url + path, body)

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = self.get("/healthz")
        except (OSError, urllib.error.URLError):
            return None
        # 503 is a node that answers but lists a problem (peers still starting, ...): it is up.
        if status == 200 or (status == 503 and isinstance(body, dict) and "height" in body):
            return body
        return None

    def height(self) -> int:
        health = self.health()
        return int(health["height"]) if health else -1

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(
                    f"node {self.participant} exited:\n{self.log.read_text()[-3000:]}"
                )
            if self.health() is not None:
                return
            time.sleep(0.05)
        raise AssertionError(f"node {self.participant} did not become healthy")


@dataclass
class Network:
    directory: Path
    genesis: Genesis
    nodes: list[NodeProcess] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        directory: Path,
        participants: str = "BE,AE,IN,RU",
        parameters: Parameters | None = None,
        tls: bool = True,
        passphrase: bytes | None = None,
    ) -> Network:
        """With `passphrase`, every private key is written encrypted under it."""
        specs = parse_participants(participants)
        ports = reserve_ports(len(specs))
        try:
            genesis = init_network(
                directory,
                specs,
                base_port=ports[0].port,
                chain_id="kp-test",
                parameters=parameters
                or Parameters(timeout_propose_ms=600, timeout_vote_ms=300, timeout_delta_ms=200),
                tls=tls,
                passphrase=passphrase,
            )
        except BaseException:
            for listener in ports:
                listener.close()
            raise
        nodes = []
        scheme = "https" if tls else "http"
        for v, listener in zip(genesis.validators, ports, strict=True):
            assert v.address == f"{scheme}://127.0.0.1:{listener.port}", v.address
            trust_node_key(v.node_key, v.address)
            config = directory / v.participant / "node.toml"
            token = tomllib.loads(config.read_text())["api_token"]
            log = directory / f"{v.participant}.log"
            nodes.append(NodeProcess(v.participant, config, v.address, token, log, listener))
        return cls(directory, genesis, nodes, passphrase)

    def lift_rate_limits(self) -> None:
        """Append UNTHROTTLED to every node's node.toml (before the nodes start)."""
        for n in self.nodes:
            with n.config.open("a", encoding="utf-8") as config:
                config.writelines(f"{key} = {value!r}\n" for key, value in UNTHROTTLED.items())

    @property
    def registry(self) -> Registry:
        return Registry.from_genesis(self.genesis)

    def node(self, participant: str) -> NodeProcess:
        return next(n for n in self.nodes if n.participant == participant)

    #: The passphrase the keys were written under, if any (Network.create's `passphrase`).
    passphrase: bytes | None = None

    def authority_key(self, participant: str) -> SigningKey:
        return SigningKey.from_pem(
            (self.directory / participant / "authority.pem").read_bytes(), self.passphrase
        )

    def start(self, *participants: str) -> None:
        chosen = [self.node(p) for p in participants] if participants else self.nodes
        for n in chosen:
            n.start()
        for n in chosen:
            n.wait_healthy()
        if not participants:
            self.wait_ok()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node's /healthz says ok: each has polled its peers since they came up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = [n.get("/healthz") for n in self.nodes]
            if all(status == 200 for status, _ in answers):
                return
            time.sleep(0.05)
        raise AssertionError(f"not every node became ok: {answers}")

    def stop_all(self) -> None:
        for n in self.nodes:
            n.kill(signal.SIGTERM)

    def kill_all(self) -> None:
        for n in self.nodes:
            n.kill()

    def close(self) -> None:
        """Kill every node and give the network's ports back (the end of a test)."""
        for n in self.nodes:
            n.close()

    def wait_height(
        self, height: int, nodes: list[NodeProcess] | None = None, timeout: float = 30.0
    ) -> None:
        chosen = nodes if nodes is not None else [n for n in self.nodes if n.alive()]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(n.height() >= height for n in chosen):
                return
            time.sleep(0.05)
        raise AssertionError(
            f"height {height} not reached: {[(n.participant, n.height()) for n in chosen]}"
        )

    def wait_event(self, node: NodeProcess, event_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = node.get(f"/v1/events/{event_id}")
            if status == 200 and body["status"] in ("final", "rejected"):
                return body
            time.sleep(0.05)
        raise AssertionError(f"event {event_id} not final on {node.participant}")
