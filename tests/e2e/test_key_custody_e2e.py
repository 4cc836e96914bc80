"""Keys at rest and in hardware, with real node processes: a network whose keys are all
encrypted runs and issues with the right passphrase and refuses the wrong or a missing one (CLI
and `node run`, exit 2, never a traceback); an authority key and a node key imported into a
SoftHSM2 token issue a certificate and run a validator that the network cannot finalise without."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.keys import SigningKey
from node.custody import PASSPHRASE_ENV
from tests.e2e.conftest import EventMaker
from tests.e2e.harness import REPO, Network
from tests.node.conftest import override_toml
from tests.softhsm import SoftHsm

pytestmark = pytest.mark.slow

PASSPHRASE = "a long passphrase for the lab"


def kpledger(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real command line, as its own process, with no terminal and no inherited passphrase."""
    base = {k: v for k, v in os.environ.items() if k not in (PASSPHRASE_ENV, "KPLEDGER_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def issue_with_cli(
    net: Network, key: str, *extra: str, env: dict[str, str] | None = None, wait: bool = True
) -> subprocess.CompletedProcess[str]:
    # Only the certificate's JSON: the key signs in the command.
    maker = EventMaker(
        net.genesis.chain_id, net.registry, {}, f"K{int(time.time() * 1000) % 10**8}"
    )
    maker.serial = len(list(net.directory.glob("cert-*.json")))
    path = net.directory / f"cert-{maker.serial}.json"
    path.write_text(json.dumps(maker.certificate_json("BE", "AE")), encoding="utf-8")
    args = ["cert", "issue", str(path), "--node", net.node("BE").url, "--key", key, "--json"]
    args += ["--genesis", str(net.directory / "genesis.json")]
    return kpledger(*args, *(["--wait"] if wait else []), *extra, env=env)


def no_traceback(run: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr


# -- encrypted keys --------------------------------------------------------------------------------
@pytest.fixture
def encrypted_net(tmp_path: Path) -> Iterator[tuple[Network, Path]]:
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE + "\n")
    net = Network.create(tmp_path / "net", passphrase=PASSPHRASE.encode())
    net.lift_rate_limits()
    try:
        yield net, secret
    finally:
        net.close()


def test_network_init_encrypts_every_key(tmp_path: Path) -> None:
    secret = tmp_path / "p.txt"
    secret.write_text(PASSPHRASE + "\n")
    run = kpledger(
        "network", "init", "--dir", str(tmp_path / "n"), "--participants", "BE,AE",
        "--passphrase-file", str(secret), "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for code in ("BE", "AE"):
        for name in ("authority.pem", "node.pem", "encryption.pem"):
            path = tmp_path / "n" / code / name
            assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), path
            assert path.stat().st_mode & 0o777 == 0o600
    # Too short a passphrase is refused before anything is written.
    (tmp_path / "short.txt").write_text("short\n")
    run = kpledger(
        "network", "init", "--dir", str(tmp_path / "m"), "--participants", "BE",
        "--passphrase-file", str(tmp_path / "short.txt"),
    )  # fmt: skip
    assert run.returncode == 2 and "shorter than 8" in run.stderr, run.stderr
    assert not (tmp_path / "m" / "genesis.json").exists()
    no_traceback(run)


def test_node_run_refuses_a_wrong_or_missing_passphrase(
    encrypted_net: tuple[Network, Path], tmp_path: Path
) -> None:
    net, _ = encrypted_net
    node = net.node("BE")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["--passphrase-file", str(wrong)], {}, "does not open"),
        ([], {PASSPHRASE_ENV: "not the passphrase"}, "does not open"),
        ([], {}, "--passphrase-file"),
        (["--passphrase-file", str(tmp_path / "absent.txt")], {}, "cannot read the passphrase"),
    ]
    for args, env, reason in cases:
        run = kpledger("node", "run", "--config", str(node.config), *args, env=env, timeout=60)
        assert run.returncode == 2, (args, env, run.stdout, run.stderr)
        assert reason in run.stderr, (args, run.stderr)
        no_traceback(run)
    # Nothing was opened: the store was never created.
    assert not (node.config.parent / "data").exists()


def test_an_encrypted_network_runs_and_issues_with_its_passphrase(
    encrypted_net: tuple[Network, Path], tmp_path: Path
) -> None:
    net, secret = encrypted_net
    # Two ways for `node run` to get it: --passphrase-file, and the environment.
    net.node("BE").args = ["--passphrase-file", str(secret)]
    net.node("AE").args = ["--passphrase-file", str(secret)]
    net.node("IN").env = {PASSPHRASE_ENV: PASSPHRASE}
    net.node("RU").env = {PASSPHRASE_ENV: PASSPHRASE}
    net.start()
    key = str(net.directory / "BE" / "authority.pem")
    run = issue_with_cli(net, key, "--passphrase-file", str(secret))
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] == "final" and answer["height"] >= 1, answer
    run = issue_with_cli(net, key, env={PASSPHRASE_ENV: PASSPHRASE})
    assert run.returncode == 0, run.stderr
    # Wrong and missing passphrases: exit 2, the reason, nothing sent.
    height = net.node("BE").height()
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("nope nope nope\n")
    for extra, env, reason in (
        (["--passphrase-file", str(wrong)], {}, "does not open"),
        ([], {PASSPHRASE_ENV: "nope nope nope"}, "does not open"),
        ([], {}, "is encrypted"),
    ):
        run = issue_with_cli(net, key, *extra, env=env, wait=False)
        assert run.returncode == 2, (extra, run.stdout, run.stderr)
        out: dict[str, Any] = json.loads(run.stdout)
        assert out["error"] == "key_unavailable" and reason in out["message"], out
        no_traceback(run)
    assert net.node("BE").height() >= height


# -- keys in a SoftHSM2 token ------------------------------------------------------------------------
def test_keys_in_a_token_issue_and_validate(tmp_path: Path) -> None:
    """BE's authority key and node key go into a token (and their PEM files away); with RU down,
    no block is final without BE's votes, which only the token can sign. Over TLS: BE's peers
    accept the TLS key its node key vouched for, inside the token."""
    softhsm = SoftHsm.create(tmp_path / "hsm")  # skips, saying why, without SoftHSM2
    token = softhsm.init_token()
    net = Network.create(tmp_path / "net", tls=True)
    net.lift_rate_limits()
    try:
        folder = net.directory / "BE"
        publics = {
            name: SigningKey.from_pem((folder / f"{name}.pem").read_bytes()).public_bytes
            for name in ("authority", "node")
        }
        uris = {}
        for name in ("authority", "node"):
            uri = softhsm.uri(token, f"be-{name}")
            run = kpledger(
                "key", "hsm-import", "--key", str(folder / f"{name}.pem"), "--uri", uri, "--json",
                env=softhsm.env,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr
            imported = json.loads(run.stdout)
            assert imported["public_key"] == publics[name].hex(), imported
            assert str(softhsm.pin_file) in imported["uri"]
            uris[name] = uri
            (folder / f"{name}.pem").unlink()  # the key is in the token only from now on
        override_toml(
            net.node("BE").config, {"node_key": uris["node"], "authority_key": uris["authority"]}
        )
        net.node("BE").env = softhsm.env
        net.start("BE", "AE", "IN")  # RU stays down: 3 of 4 validators, BE's votes needed
        run = issue_with_cli(net, uris["authority"], env=softhsm.env)
        assert run.returncode == 0, run.stdout + run.stderr
        answer = json.loads(run.stdout)
        assert answer["status"] == "final", answer
        number = json.loads((net.directory / "cert-0.json").read_text())["number"]
        status, record = net.node("AE").get(f"/v1/public/certificates/{number}")
        assert status == 200 and record["status"] == "issued", record
        # The URI in a message never shows a PIN; a wrong object is a clear exit 2.
        bad = softhsm.uri(token, "no-such-key", pin_value=True)
        run = issue_with_cli(net, bad, env=softhsm.env, wait=False)
        assert run.returncode == 2, run.stdout
        assert "no such private key" in run.stdout and "246810" not in run.stdout
        no_traceback(run)
    finally:
        net.close()


def test_node_run_with_an_unreachable_token_is_exit_2(tmp_path: Path) -> None:
    net = Network.create(tmp_path / "net")
    try:
        node = net.node("BE")
        override_toml(
            node.config,
            {"node_key": "pkcs11:token=T;object=n?module-path=/nonexistent/lib.so&pin-value=4242"},
        )
        run = kpledger("node", "run", "--config", str(node.config), timeout=60)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "no PKCS#11 library" in run.stderr and "4242" not in run.stderr
        no_traceback(run)
        assert not (node.config.parent / "data").exists()
    finally:
        net.close()
