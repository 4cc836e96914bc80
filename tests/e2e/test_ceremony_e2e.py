"""The key ceremony (SPEC 6): four participants each run `network keygen` in a directory of their
own, genesis is assembled from the four descriptors alone, and the network they start finalises.
No descriptor holds a private key; an altered descriptor is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ledger.state import Registry
from node.files import load_encryption_key, load_genesis, load_signing_key
from tests.e2e.conftest import EventMaker, submit, wait_final
from tests.e2e.harness import REPO, Network, NodeProcess, reserve_ports, trust_node_key

pytestmark = pytest.mark.slow

CODES = ("BE", "AE", "IN", "RU")


def kpledger(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KPLEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean,
        timeout=60,
    )


def keygen(tmp_path: Path, ports: list[int]) -> list[Path]:
    """Each participant in a directory of its own; returns the directories."""
    dirs = []
    for code, port in zip(CODES, ports, strict=True):
        folder = tmp_path / f"ministry-{code}"
        done = kpledger(
            "network", "keygen", "--participant", code, "--host", "127.0.0.1",
            "--port", str(port), "--dir", str(folder), "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        said = json.loads(done.stdout)
        assert said["descriptor"] == str(folder / f"{code}.descriptor.json")
        assert len(said["fingerprint"]) == 64
        dirs.append(folder)
    return dirs


def test_descriptors_alone_make_a_network_that_finalises(tmp_path: Path) -> None:
    held = reserve_ports(len(CODES))
    nodes: list[NodeProcess] = []
    try:
        dirs = keygen(tmp_path, [h.port for h in held])
        # The one who assembles genesis sees the descriptors only, in a directory of its own.
        assembly = tmp_path / "secretariat"
        assembly.mkdir()
        for code, folder in zip(CODES, dirs, strict=True):
            shutil.copy(folder / f"{code}.descriptor.json", assembly)
        for descriptor in assembly.iterdir():
            text = descriptor.read_text()
            assert "PRIVATE" not in text and "BEGIN" not in text
            raw = json.loads(text)
            assert set(raw) == {
                "format", "code", "name", "countries", "address", "authority_key",
                "encryption_key", "node_key", "authority_proof", "encryption_proof", "node_proof",
            }  # fmt: skip
            # None of the participant's private keys, in any form, is in the file.
            folder = next(d for d in dirs if d.name.endswith(raw["code"]))
            for name in ("authority.pem", "node.pem"):
                seed = load_signing_key(folder / raw["code"] / name)._key.private_bytes_raw()
                assert seed.hex() not in text
            secret = load_encryption_key(folder / raw["code"] / "encryption.pem")
            assert secret.raw.private_bytes_raw().hex() not in text
        genesis_path = assembly / "genesis.json"
        args = [
            arg
            for code in CODES
            for arg in ("--descriptor", str(assembly / f"{code}.descriptor.json"))
        ]
        done = kpledger("network", "genesis", *args, "--out", str(genesis_path), "--json")
        assert done.returncode == 0, done.stderr
        genesis = load_genesis(genesis_path)
        assert [v.participant for v in genesis.validators] == list(CODES)
        assert all(v.address.startswith("https://127.0.0.1:") for v in genesis.validators)
        # Each participant puts the genesis it received beside its keys and starts its node.
        for code, folder, listener in zip(CODES, dirs, held, strict=True):
            shutil.copy(genesis_path, folder / "genesis.json")
            config = folder / code / "node.toml"
            token = tomllib.loads(config.read_text())["api_token"]
            url = f"https://127.0.0.1:{listener.port}"
            nodes.append(NodeProcess(code, config, url, token, folder / "node.log", listener))
        for validator in genesis.validators:
            trust_node_key(validator.node_key)
        net = Network(tmp_path, genesis, nodes)
        net.start()
        keys = {
            code: load_signing_key(d / code / "authority.pem")
            for code, d in zip(CODES, dirs, strict=True)
        }
        events = EventMaker(genesis.chain_id, Registry.from_genesis(genesis), keys, "CER")
        ids = [submit(nodes[i], events.issue(*pair)) for i, pair in enumerate(
            [("BE", "AE"), ("AE", "IN"), ("IN", "RU"), ("RU", "BE")]
        )]  # fmt: skip
        assert wait_final(net, nodes[2], ids) >= 1
        # The CLI finds AE's genesis beside its key and pins the node keys it lists.
        confirm = kpledger(
            "cert", "confirm", "BE-CER-000001", "--node", nodes[1].url,
            "--key", str(dirs[1] / "AE" / "authority.pem"), "--wait",
        )  # fmt: skip
        assert confirm.returncode == 0, confirm.stderr
    finally:
        for node in nodes:
            node.close()
        for listener in held:
            listener.close()


def test_an_altered_or_repeated_descriptor_is_refused(tmp_path: Path) -> None:
    dirs = keygen(tmp_path, [17001, 17002, 17003, 17004])
    descriptors = [d / f"{c}.descriptor.json" for c, d in zip(CODES, dirs, strict=True)]
    out = tmp_path / "genesis.json"
    # Someone swaps in another node key for IN: its proof of possession no longer checks.
    raw = json.loads(descriptors[2].read_text())
    raw["node_key"] = json.loads(descriptors[3].read_text())["node_key"]
    altered = tmp_path / "IN.altered.json"
    altered.write_text(json.dumps(raw))
    args = ["--descriptor", str(descriptors[0]), "--descriptor", str(altered)]
    done = kpledger("network", "genesis", *args, "--out", str(out))
    assert done.returncode == 2 and "node_proof" in done.stderr, done
    twice = ["--descriptor", str(descriptors[0]), "--descriptor", str(descriptors[0])]
    done = kpledger("network", "genesis", *twice, "--out", str(out))
    assert done.returncode == 2 and "share the participant code BE" in done.stderr, done
    assert not out.exists()
    again = kpledger(
        "network", "keygen", "--participant", "BE", "--host", "127.0.0.1", "--port", "17001",
        "--dir", str(dirs[0]),
    )  # fmt: skip
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
