"""Key files and genesis files: written private, read back whole, and a bad file a clear error."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ledger.errors import MalformedInput
from ledger.keys import EncryptionKey, SigningKey
from node.files import (
    load_encryption_key,
    load_genesis,
    load_signing_key,
    save_genesis,
    write_private_pem,
)
from tests.helpers import TestNetwork


def test_a_private_key_file_is_the_owners_only(tmp_path: Path) -> None:
    old = os.umask(0)  # even under a umask that would let everyone read
    try:
        path = tmp_path / "new" / "folder" / "authority.pem"
        key = SigningKey.from_seed(bytes(32))
        write_private_pem(path, key.to_pem())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert load_signing_key(path).public_bytes == key.public_bytes
        path.chmod(0o644)
        other = EncryptionKey.generate()
        write_private_pem(path, other.to_pem())  # rewritten, and private again
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert load_encryption_key(path).public_bytes == other.public_bytes
    finally:
        os.umask(old)


def test_a_key_file_of_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "encryption.pem"
    write_private_pem(path, EncryptionKey.generate().to_pem())
    with pytest.raises(MalformedInput, match="not an Ed25519"):
        load_signing_key(path)


def test_genesis_round_trips_in_its_documented_layout(tmp_path: Path) -> None:
    genesis = TestNetwork().genesis
    path = tmp_path / "genesis.json"
    save_genesis(genesis, path)
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(genesis.to_json(), indent=2) + "\n"
    again = load_genesis(path)
    assert again == genesis and again.hash == genesis.hash


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "No such file"),
        (b"{not json", "Expecting property name"),
        (b"\xff\xfe{}", "codec can't decode"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_an_unreadable_genesis_file_is_a_clear_error(
    tmp_path: Path, content: bytes | None, why: str
) -> None:
    path = tmp_path / "genesis.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MalformedInput, match=f"cannot read genesis file {path}: .*{why}"):
        load_genesis(path)


def test_a_genesis_file_that_is_json_but_no_genesis_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text('{"chain_id": 7}', encoding="utf-8")
    with pytest.raises(MalformedInput):
        load_genesis(path)
