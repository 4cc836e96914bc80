"""`kpledger devnet`, what `make devnet` runs: creates, loads the demo, prints the URLs, stops on
Ctrl-C with its nodes, and keeps the chain when run again."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from node.files import load_genesis
from node.tls import ClientTrust
from tests.e2e.harness import REPO, reserve_ports

READY = "Press Ctrl-C to stop."


class PortTaken(Exception):
    """A devnet node could not listen: another process on the machine had its port."""


class Devnet:
    def __init__(self, directory: Path, base_port: int) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.directory = directory
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node.cli",
                "devnet",
                "--dir",
                str(directory),
                "--base-port",
                str(base_port),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # As when started in the background by a shell: SIGINT arrives ignored. Ctrl-C (or
            # kill -INT) must stop the devnet all the same.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"devnet never said {text!r}:\n" + "\n".join(self.output))

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
                # Its nodes run in sessions of their own: do not leave them behind.
                subprocess.run(
                    ["pkill", "-KILL", "-f", "--", f"--config {self.directory}/"], check=False
                )


def start_devnet(directory: Path, base_port: int) -> Devnet:
    """A devnet that said it is running, or PortTaken when one of its nodes lost its port.

    The devnet binds the ports itself (they are in genesis), so the test can only choose free
    ones and let go of them: another process may take one before the devnet's node listens, and
    again between two runs of the devnet. The scenario then starts over on fresh ports.
    """
    devnet = Devnet(directory, base_port)
    try:
        devnet.wait_for(READY)
    except AssertionError:
        devnet.stop(signal.SIGTERM)
        logs = "\n".join(p.read_text() for p in sorted((directory / "logs").glob("*.log")))
        if "cannot listen on" in logs or "port taken?" in "\n".join(devnet.output):
            raise PortTaken("\n".join(devnet.output)) from None
        raise
    return devnet


def free_base_port(count: int) -> int:
    listeners = reserve_ports(count)
    for listener in listeners:
        listener.close()
    return listeners[0].port


def get(url: str, directory: Path) -> Any:
    """A devnet node's answer, its certificate checked against the devnet's genesis."""
    genesis = load_genesis(directory / "genesis.json")
    trust = ClientTrust.from_genesis(genesis, "the devnet's genesis")
    with trust.opener(url).open(url, timeout=5) as answer:
        return json.loads(answer.read())


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_devnet_runs_loads_the_demo_stops_on_sigint_and_keeps_its_chain(tmp_path: Path) -> None:
    for attempt in range(3):
        try:
            devnet_scenario(tmp_path / f"devnet-{attempt}", free_base_port(4))
            return
        except PortTaken as exc:
            taken = exc
    pytest.fail(f"a port was taken from the devnet three times running:\n{taken}")


def devnet_scenario(directory: Path, base: int) -> None:
    first = start_devnet(directory, base)
    try:
        said = "\n".join(first.output)
        assert "created a network of 4 participants" in said
        assert "demo events submitted" in said
        for i, code in enumerate(("BE", "AE", "IN", "RU")):
            assert f"https://127.0.0.1:{base + i}/v1/public/head" in said, code
            assert f"https://127.0.0.1:{base + i}/explorer" in said, code
            assert f"https://127.0.0.1:{base + i}/portal/" in said, code
            assert "portal = true" in (directory / code / "node.toml").read_text(), code
        assert "kpledger user add --config" in said
        deadline = time.monotonic() + 60
        while get(f"https://127.0.0.1:{base}/v1/public/head", directory)["header"]["height"] == 0:
            assert time.monotonic() < deadline, "the demo never became final"
            time.sleep(0.5)
        height = get(f"https://127.0.0.1:{base}/v1/public/head", directory)["header"]["height"]
    finally:
        status = first.stop(signal.SIGINT)
    assert status == 0, "\n".join(first.output)
    assert all(port_closed(base + i) for i in range(4)), "a node outlived the devnet"

    second = start_devnet(directory, base)
    try:
        said = "\n".join(second.output)
        assert "using the existing network" in said
        assert "demo events submitted" not in said
        assert (
            get(f"https://127.0.0.1:{base + 2}/v1/public/head", directory)["header"]["height"]
            >= height
        )
    finally:
        status = second.stop(signal.SIGTERM)
    assert status == 0, "\n".join(second.output)
    assert all(port_closed(base + i) for i in range(4)), "a node outlived the devnet"


def test_a_devnet_node_that_cannot_listen_is_told_apart(tmp_path: Path) -> None:
    """What the test above starts over on: a port of the devnet taken by another process."""
    ports = reserve_ports(4)
    for listener in ports[:1] + ports[2:]:
        listener.close()
    directory = tmp_path / "devnet"
    try:
        with pytest.raises(PortTaken):  # AE's port (the second) is held
            start_devnet(directory, ports[0].port).stop(signal.SIGTERM)
    finally:
        ports[1].close()
    assert "cannot listen on" in (directory / "logs" / "AE.log").read_text()
