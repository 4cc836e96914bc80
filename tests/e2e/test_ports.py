"""The harness's ports cannot be lost: a node's port is held by the test from the moment it is
chosen, handed to the node at each start (KPLEDGER_LISTEN_FD), and kept while the node is down.

Many test runs share the machine, and each binds ports; the old harness probed a free port, let
go of it and had the node bind it later, and lost it now and then ("address already in use").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.netinit import init_network, parse_participants
from tests.e2e.harness import REPO, Network, reserve_ports


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def take(port: int) -> list[socket.socket]:
    """What another process does with a port it wants: bind it and listen, with SO_REUSEADDR
    (as aiohttp and most servers do) and without. The sockets that got the port."""
    won = []
    for reuse in (True, False):
        rival = socket.socket()
        if reuse:
            rival.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            rival.bind(("127.0.0.1", port))
            rival.listen()
        except OSError:
            rival.close()
            continue
        won.append(rival)
    return won


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    network = Network.create(tmp_path / "net", participants="BE,AE")
    yield network
    network.close()


def test_a_port_cannot_be_taken_between_allocation_and_start(net: Network) -> None:
    ports = [port_of(n.url) for n in net.nodes]
    # Between choosing the ports (genesis is written) and starting the nodes, another process
    # tries to take each of them.
    rivals = [s for port in ports for s in take(port)]
    try:
        assert not rivals, f"another socket took a port the harness chose: {rivals}"
        net.start()
        be = net.nodes[0]
        assert be.health() is not None
        # Down, a node's port is still held (no one else gets it), and a client is refused at
        # once, as by any node that is down: nothing accepts connections in its name.
        be.kill()
        rivals = take(ports[0])
        assert not rivals, "another socket took the port of a node that was down"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", ports[0]), timeout=10).close()
        be.start()
        be.wait_healthy()
    finally:
        for rival in rivals:
            rival.close()


def test_reserved_ports_are_consecutive_distinct_and_held() -> None:
    first, second = reserve_ports(3), reserve_ports(3)
    try:
        numbers = [p.port for p in first]
        assert numbers == list(range(numbers[0], numbers[0] + 3))
        assert not {p.port for p in first} & {p.port for p in second}
        for listener in first + second:
            assert not take(listener.port), listener.port
    finally:
        for listener in first + second:
            listener.close()
    # Given back: the ports are free again.
    for listener in first:
        for rival in take(listener.port):
            rival.close()
            break
        else:
            raise AssertionError(f"port {listener.port} was not given back")


def run_node(
    config: Path, fd: str, pass_fds: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "node", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "KPLEDGER_LISTEN_FD": fd},
        pass_fds=pass_fds,
    )


def test_a_node_refuses_a_handed_socket_that_is_not_its_port(tmp_path: Path) -> None:
    """The address in genesis is where peers look for the node: it listens there or not at all."""
    init_network(tmp_path, parse_participants("BE,AE"), base_port=17700, chain_id="kp-fd")
    config = tmp_path / "BE" / "node.toml"
    [other] = reserve_ports(1)
    try:
        done = run_node(config, str(other.fileno), (other.fileno,))
    finally:
        other.close()
    assert done.returncode == 2, done.stderr
    assert f"is bound to 127.0.0.1:{other.port}" in done.stderr and "127.0.0.1:17700" in done.stderr
    assert "Traceback" not in done.stderr
    for fd, said in (("three", "is not a file descriptor number"), ("987", "not an open socket")):
        done = run_node(config, fd)
        assert done.returncode == 2 and said in done.stderr, (fd, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "BE" / "data").exists(), "the node opened its store before refusing"
