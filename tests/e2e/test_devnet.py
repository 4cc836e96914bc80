"""`kpledger devnet`, what `make devnet` runs: creates, loads the demo, prints the URLs, stops on
Ctrl-C with its nodes, and keeps the chain when run again."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.harness import REPO, free_port_block

READY = "Press Ctrl-C to stop."


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


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def port_closed(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except OSError:
        return True
    return False


def test_devnet_runs_loads_the_demo_stops_on_sigint_and_keeps_its_chain(tmp_path: Path) -> None:
    base = free_port_block(4)
    directory = tmp_path / "devnet"
    first = Devnet(directory, base)
    try:
        first.wait_for(READY)
        said = "\n".join(first.output)
        assert "created a network of 4 participants" in said
        assert "demo events submitted" in said
        for i, code in enumerate(("BE", "AE", "IN", "RU")):
            assert f"http://127.0.0.1:{base + i}/v1/public/head" in said, code
            assert f"http://127.0.0.1:{base + i}/explorer" in said, code
        deadline = time.monotonic() + 60
        while get(f"http://127.0.0.1:{base}/v1/public/head")["header"]["height"] == 0:
            assert time.monotonic() < deadline, "the demo never became final"
            time.sleep(0.5)
        height = get(f"http://127.0.0.1:{base}/v1/public/head")["header"]["height"]
    finally:
        status = first.stop(signal.SIGINT)
    assert status == 0, "\n".join(first.output)
    assert all(port_closed(base + i) for i in range(4)), "a node outlived the devnet"

    second = Devnet(directory, base)
    try:
        second.wait_for(READY)
        said = "\n".join(second.output)
        assert "using the existing network" in said
        assert "demo events submitted" not in said
        assert get(f"http://127.0.0.1:{base + 2}/v1/public/head")["header"]["height"] >= height
    finally:
        status = second.stop(signal.SIGTERM)
    assert status == 0, "\n".join(second.output)
    assert all(port_closed(base + i) for i in range(4)), "a node outlived the devnet"
