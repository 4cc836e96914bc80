"""Real node processes on 127.0.0.1 for end-to-end tests: free ports, temp dirs, clean kills."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.genesis import Genesis, Parameters
from ledger.keys import SigningKey, load_signing_key
from ledger.state import Registry
from node.netinit import init_network, parse_participants

REPO = Path(__file__).resolve().parents[2]


def free_port_block(count: int) -> int:
    """A base port with `count` free consecutive ports after it (checked by binding each)."""
    for _ in range(200):
        with closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count >= 65000:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports found")


def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    raw: bytes | None = None,
    content_type: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    headers = {}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if content_type is not None:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload


@dataclass
class NodeProcess:
    participant: str
    config: Path
    url: str
    token: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        log = open(self.log, "ab")  # noqa: SIM115 - kept open for the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "node", "run", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=REPO,
        )
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
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

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def get(self, path: str, token: bool = False) -> tuple[int, Any]:
        return http("GET", self.url + path, token=self.token if token else None)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return http("POST", self.url + path, body)

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = self.get("/healthz")
        except (OSError, urllib.error.URLError):
            return None
        return body if status == 200 else None

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
    ) -> Network:
        specs = parse_participants(participants)
        base = free_port_block(len(specs))
        genesis = init_network(
            directory,
            specs,
            base_port=base,
            chain_id="kp-test",
            parameters=parameters
            or Parameters(timeout_propose_ms=600, timeout_vote_ms=300, timeout_delta_ms=200),
        )
        nodes = []
        for v in genesis.validators:
            config = directory / v.participant / "node.toml"
            token = tomllib.loads(config.read_text())["api_token"]
            nodes.append(
                NodeProcess(
                    v.participant, config, v.address, token, directory / f"{v.participant}.log"
                )
            )
        return cls(directory, genesis, nodes)

    @property
    def registry(self) -> Registry:
        return Registry.from_genesis(self.genesis)

    def node(self, participant: str) -> NodeProcess:
        return next(n for n in self.nodes if n.participant == participant)

    def authority_key(self, participant: str) -> SigningKey:
        return load_signing_key(self.directory / participant / "authority.pem")

    def start(self, *participants: str) -> None:
        chosen = [self.node(p) for p in participants] if participants else self.nodes
        for n in chosen:
            n.start()
        for n in chosen:
            n.wait_healthy()

    def stop_all(self) -> None:
        for n in self.nodes:
            n.kill(signal.SIGTERM)

    def kill_all(self) -> None:
        for n in self.nodes:
            n.kill()

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
