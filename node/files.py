"""Key files and genesis files on disk: read and written here, parsed by the core's pure
from_pem and from_json (ledger/keys.py, ledger/genesis.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ledger.errors import MalformedInput
from ledger.genesis import Genesis
from ledger.keys import EncryptionKey, SigningKey


def write_private_pem(path: Path, pem: bytes) -> None:
    """Write a private key file readable by its owner only (0600), never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def load_signing_key(path: Path | str) -> SigningKey:
    return SigningKey.from_pem(Path(path).read_bytes())


def load_encryption_key(path: Path | str) -> EncryptionKey:
    return EncryptionKey.from_pem(Path(path).read_bytes())


def load_genesis(path: Path | str) -> Genesis:
    """The genesis file at `path`; MalformedInput when it cannot be read or is not a genesis."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or not JSON
        raise MalformedInput(f"cannot read genesis file {path}: {exc}") from exc
    except RecursionError as exc:
        raise MalformedInput(f"cannot read genesis file {path}: nested too deeply") from exc
    return Genesis.from_json(raw)


def save_genesis(genesis: Genesis, path: Path | str) -> None:
    Path(path).write_text(json.dumps(genesis.to_json(), indent=2) + "\n", encoding="utf-8")
