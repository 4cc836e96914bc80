"""The emergency recovery of a halted chain, on real node processes: two of four validators'
nodes are lost for good, the chain cannot finalise; the authorities sign a recovery off the
chain, the two surviving operators apply it, the network finalises again with two validators,
and `kpledger audit --data DIR` passes over the recovery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import EventMaker, submit, wait_final, wait_same_head
from tests.e2e.harness import REPO, Network

pytestmark = pytest.mark.slow


def cli(*args: str, timeout: float = 120.0) -> tuple[int, Any]:
    """Run `kpledger ARGS --json`; the exit status and the parsed output (or stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )
    try:
        out = json.loads(done.stdout) if done.stdout.strip() else done.stderr
    except ValueError:
        out = done.stdout + done.stderr
    return done.returncode, out


def test_a_halted_network_recovers_by_the_authorities_signatures(
    network: Network, events: EventMaker, tmp_path: Path
) -> None:
    net = network
    be, ae, india, ru = (net.node(code) for code in ("BE", "AE", "IN", "RU"))
    before = wait_final(net, be, [submit(be, events.issue("BE", "AE"))])
    wait_same_head(net.nodes)

    # IN's and RU's nodes are lost for good: 2 of 4 validators cannot finalise (3 needed).
    india.close()
    ru.close()
    stuck = submit(be, events.issue("AE", "BE"))
    status, body = be.get(f"/v1/events/{stuck}")
    assert status == 200 and body["status"] == "pending", body
    be.stop()
    ae.stop()

    dead = [v.node_key.hex() for v in net.genesis.validators if v.participant in ("IN", "RU")]
    doc = tmp_path / "recovery.json"
    code, out = cli(
        "gov", "emergency", "draft",
        "--config", str(be.config),
        "--remove", dead[0],
        "--remove", dead[1],
        "--parameter", "timeout_propose_ms=800",
        "--reason", "IN and RU lost their nodes",
        "--out", str(doc),
    )  # fmt: skip
    assert code == 0, out
    height = out["document"]["height"]
    assert height > before
    assert [v["participant"] for v in out["document"]["validators"]] == ["BE", "AE"]

    def sign(participant: str) -> None:
        key = net.directory / participant / "authority.pem"
        code, out = cli(
            "gov", "emergency", "sign", str(doc), "--key", str(key), "--as", participant
        )
        assert code == 0, out

    sign("BE")
    sign("AE")
    # Two of four authorities are not more than 2/3: refused, and nothing is left for the node.
    code, out = cli("gov", "emergency", "apply", str(doc), "--config", str(be.config))
    assert code == 1 and out["error"] == "recovery_too_few_signatures", out
    # The same key twice is refused as it is signed.
    code, out = cli(
        "gov", "emergency", "sign", str(doc),
        "--key", str(net.directory / "BE" / "authority.pem"), "--as", "BE",
    )  # fmt: skip
    assert code == 1 and out["error"] == "recovery_duplicate_signer", out
    sign("IN")  # IN's authority is alive; only its node was lost

    for node in (be, ae):
        code, out = cli("gov", "emergency", "apply", str(doc), "--config", str(node.config))
        assert code == 0, out
    be.start()
    ae.start()
    be.wait_healthy()
    ae.wait_healthy()

    # The event signed during the halt is final, at or after the recovery height, and the chain
    # goes on with the two validators.
    assert wait_final(net, be, [stuck], timeout=60) >= height
    after = wait_final(net, ae, [submit(ae, events.issue("BE", "AE"))], timeout=60)
    assert after >= height
    wait_same_head([be, ae], timeout=60)
    status, block = be.get(f"/v1/public/blocks/{height}")
    assert status == 200, block
    assert block["events"][0]["type"] == "governance.recovery", block["events"]

    be.stop()
    ae.stop()
    for node in (be, ae):
        data = node.config.parent / "data"
        code, report = cli("audit", "--data", str(data))
        assert code == 0, report
        assert report["ok"] is True and report["height_checked"] >= after, report
