"""`kpledger key prove` and `kpledger network join`: the proofs of possession an admission needs."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ledger import governance as gov
from ledger.keys import EncryptionKey, SigningKey, verify_possession
from node.cli import main
from node.files import load_encryption_key, load_signing_key, save_genesis, write_private_pem
from tests.helpers import TestNetwork


def run(*args: str) -> tuple[int, dict[str, str]]:
    result = CliRunner().invoke(main, [*args, "--json"])
    return result.exit_code, json.loads(result.output) if result.output.strip() else {}


def test_key_prove_signs_chain_participant_and_role(tmp_path: Path) -> None:
    signing, encryption = SigningKey.generate(), EncryptionKey.generate()
    write_private_pem(tmp_path / "a.pem", signing.to_pem())
    write_private_pem(tmp_path / "e.pem", encryption.to_pem())
    for role, name, public in (
        (gov.AUTHORITY, "a.pem", signing.public_bytes),
        (gov.NODE, "a.pem", signing.public_bytes),
        (gov.ENCRYPTION, "e.pem", encryption.public_bytes),
    ):
        status, out = run(
            "key", "prove", "--role", role, "--participant", "bw",
            "--key-file", str(tmp_path / name), "--chain-id", "kp-x",
        )  # fmt: skip
        assert status == 0, out
        assert out["public_key"] == public.hex() and out["participant"] == "BW"
        proof = bytes.fromhex(out["proof"])
        assert verify_possession(public, role, "kp-x", "BW", proof)
        assert not verify_possession(public, role, "kp-y", "BW", proof)
    # An Ed25519 file for the encryption role, and the reverse, are usage errors.
    status, out = run(
        "key", "prove", "--role", "encryption", "--participant", "BW",
        "--key-file", str(tmp_path / "a.pem"), "--chain-id", "kp-x",
    )  # fmt: skip
    assert status == 2 and "X25519" in out["message"], out
    status, out = run(
        "key", "prove", "--role", "authority", "--participant", "BW",
        "--key-file", str(tmp_path / "e.pem"), "--chain-id", "kp-x",
    )  # fmt: skip
    assert status == 2, out


def test_network_join_prints_the_proofs_the_admission_needs(tmp_path: Path) -> None:
    net = TestNetwork()
    save_genesis(net.genesis, tmp_path / "genesis.json")
    status, out = run(
        "network", "join", "--dir", str(tmp_path), "--participant", "BW", "--port", "7790"
    )
    assert status == 0, out
    folder = tmp_path / "BW"
    keys = {
        gov.AUTHORITY: load_signing_key(folder / "authority.pem").public_bytes,
        gov.NODE: load_signing_key(folder / "node.pem").public_bytes,
        gov.ENCRYPTION: load_encryption_key(folder / "encryption.pem").public_bytes,
    }
    for role, public in keys.items():
        assert out[f"{role}_key"] == public.hex()
        proof = bytes.fromhex(out[f"{role}_proof"])
        assert verify_possession(public, role, net.chain_id, "BW", proof)
        assert f"--{role}-proof {proof.hex()}" in out["propose"]
