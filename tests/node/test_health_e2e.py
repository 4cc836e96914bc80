"""A truthful /healthz (issue 13 items 3 and 5): a full disk and a clock off are reported, 503.

"With a full disk the node stayed at height 591 while the others reached 638, and went on
answering 202 while its mempool grew." "A node 30 s behind refused every honest proposal ... 10
minutes off, it was cut off silently." All of them said "ok".
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.clock import OFFSET_ENV
from tests.e2e.harness import Network, NodeProcess
from tests.node.conftest import DEFAULT_OVERRIDES, Signer, override_toml, submit, wait_final


def _network(directory: Path) -> Network:
    net = Network.create(directory)
    for code, values in DEFAULT_OVERRIDES.items():
        override_toml(net.node(code).config, values)
    return net


def _problems(node: NodeProcess) -> tuple[int, dict[str, Any]]:
    status, body = node.get("/healthz")
    return status, {p["code"]: p["message"] for p in body.get("problems", [])}


def _wait_problem(node: NodeProcess, code: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, problems = _problems(node)
        if status == 503 and code in problems:
            return problems[code]
        time.sleep(0.1)
    raise AssertionError(f"{node.participant} never reported {code}: {_problems(node)}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs at tmp_path/disk, or a skip saying why there cannot be one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the full disk: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of the file system at `disk`."""
    chunk = b"\0" * (1 << 16)
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    for size in (4096, 512, 1):  # what a whole chunk did not fit
        try:
            with open(disk / "filler", "ab") as f:
                while True:
                    f.write(b"\0" * size)
                    f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def test_a_full_disk_makes_health_503_and_new_events_503(tmp_path: Path, small_disk: Path) -> None:
    net = _network(tmp_path / "net")
    be = net.node("BE")
    data = be.config.parent / "data"
    data.symlink_to(small_disk)  # node.toml's data_dir, on the small disk
    try:
        net.start()
        signer = Signer.for_network(net)
        first = submit(be, signer.issue(signer.document("BE", "AE", "DISK")).event)
        wait_final(net, be, [first])
        status, body = be.get("/healthz")
        assert status == 200 and body["status"] == "ok" and body["problems"] == [], body

        fill(small_disk)
        # The others go on; the blocks they commit cannot be written here. (The last page of
        # a file LevelDB appends to may still hold a few bytes: blocks come until one does not.)
        ae = net.node("AE")
        for _ in range(60):
            later = [
                submit(ae, signer.issue(signer.document("AE", "BE", "DISK")).event)
                for _ in range(5)
            ]
            wait_final(net, ae, later)
            if "store_write_failed" in _problems(be)[1]:
                break
        message = _wait_problem(be, "store_write_failed")
        assert "No space left" in message or "cannot write" in message, message
        status, body = be.post(
            "/v1/events", signer.issue(signer.document("BE", "AE", "DISK")).event.to_envelope()
        )
        assert status == 503 and body["error"] == "store_write_failed", (status, body)
        _status, metrics = be.get("/metrics")
        assert b"kpledger_store_writable 0.0" in metrics and b"kpledger_healthy 0.0" in metrics
        # The others are healthy: one node's disk is its own problem.
        assert ae.get("/healthz")[0] == 200
    finally:
        net.close()


def test_a_clock_off_is_reported_by_health(tmp_path: Path) -> None:
    net = _network(tmp_path / "net")
    be = net.node("BE")
    be.env[OFFSET_ENV] = str(-30_000)  # 30 s behind: past the 10 s drift, within the 60 s window
    try:
        for node in net.nodes:
            node.start()
        for node in net.nodes:
            node.wait_healthy()
        message = _wait_problem(be, "clock_skew")
        assert "behind its peers" in message and "tolerance 10000 ms" in message, message
        status, body = be.get("/healthz")
        assert status == 503 and -31_000 < body["clock_offset_ms"] < -29_000, body
        _status, metrics = be.get("/metrics")
        assert b"kpledger_clock_offset_seconds -" in metrics
        # The others see one peer's clock off, and their own in step with the rest.
        ae = net.node("AE")
        deadline = time.monotonic() + 30
        status, body = ae.get("/healthz")
        while time.monotonic() < deadline and (status != 200 or body["clock_offset_ms"] is None):
            time.sleep(0.1)
            status, body = ae.get("/healthz")
        assert status == 200 and abs(body["clock_offset_ms"]) < 5_000, body
        # Two validators of four down: a quorum is out of the others' reach, and they say so.
        net.node("IN").stop()
        net.node("RU").stop()
        message = _wait_problem(ae, "too_few_peers")
        assert "needs 2" in message, message
        net.node("IN").start()
        net.node("RU").start()

        # Ten minutes off: every peer refuses its requests, and it theirs; it still knows why.
        be.stop()
        be.env[OFFSET_ENV] = str(600_000)
        be.start()
        be.wait_healthy()
        message = _wait_problem(be, "clock_skew")
        assert "ahead of its peers" in message, message
        assert be.get("/healthz")[1]["clock_offset_ms"] > 590_000
    finally:
        net.close()
