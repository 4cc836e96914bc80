"""What the live-API tests of tests/node/http share: a network per module (RU throttling its public
routes), the demo chain, and the helpers that read answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.e2e.harness import REPO, Network, NodeProcess, urlopen
from tests.node.conftest import Issued, Signer, build_demo_chain

#: RU's node throttles its public routes hard, for the 429 test; the others never do.
RU_LIMITS = {"RU": {"public_rate_per_s": 0.5, "public_burst": 5}}


@pytest.fixture(scope="module")
def net(network_factory: Any) -> Network:
    net: Network = network_factory("api", RU_LIMITS)
    return net


@pytest.fixture(scope="module")
def signer(net: Network) -> Signer:
    return Signer.for_network(net)


@pytest.fixture(scope="module")
def demo(net: Network, signer: Signer) -> list[Issued]:
    return build_demo_chain(net, signer, "LK")


def by_fate(demo: list[Issued], fate: str, exporting: str | None = None) -> Issued:
    return next(i for i in demo if i.fate == fate and exporting in (None, i.exporting))


def assert_error(answer: tuple[int, Any], status: int, code: str | None = None) -> dict[str, Any]:
    got, body = answer
    assert got == status, answer
    assert isinstance(body, dict) and isinstance(body.get("error"), str), answer
    assert isinstance(body.get("message"), str) and body["message"], answer
    if code is not None:
        assert body["error"] == code, answer
    return body


def head_of(node: NodeProcess) -> tuple[int, str, int]:
    health = node.health()
    assert health is not None
    return health["height"], health["head_hash"], health["mempool"]


def now() -> int:
    return int(time.time() * 1000)


def http_headers(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def run_cli(
    *args: str, timeout: float = 60, net: Network | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own; with `net`, KPLEDGER_GENESIS names its genesis (whose
    node keys the CLI pins, for the commands that take no --genesis of their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPLEDGER_")}
    if net is not None:
        env["KPLEDGER_GENESIS"] = str(net.directory / "genesis.json")
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        env=env,
    )


def fetch(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
