"""Identities: Ed25519 signing keys and X25519 encryption keys, their PEM files and key ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ledger.errors import BadSignature, MalformedInput
from ledger.hashing import TAG_KEY_ID, tagged, tagged_hash

_sodium: Any
try:  # libsodium verifies faster than OpenSSL here; the rule set is pinned in docs/protocol.md.
    import nacl.bindings as _sodium
except ImportError:  # pragma: no cover - PyNaCl is a declared dependency
    _sodium = None


def key_id(public_key: bytes) -> str:
    """A short, stable name for a public key: hex of the first 8 bytes of its tagged hash."""
    return tagged_hash(TAG_KEY_ID, public_key)[:8].hex()


class SigningKey:
    """An Ed25519 private key. Signs domain-tagged messages only."""

    __slots__ = ("_key", "public_bytes")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self.public_bytes: bytes = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def key_id(self) -> str:
        return key_id(self.public_bytes)

    def sign(self, tag: bytes, payload: bytes) -> bytes:
        return self._key.sign(tagged(tag, payload))

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise MalformedInput(f"not a PKCS#8 PEM private key: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise MalformedInput("the PEM key is not an Ed25519 signing key")
        return cls(key)


class EncryptionKey:
    """An X25519 private key, used to open identities sealed to this participant."""

    __slots__ = ("public_bytes", "raw")

    def __init__(self, key: x25519.X25519PrivateKey) -> None:
        self.raw = key
        self.public_bytes: bytes = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @staticmethod
    def public_from_bytes(public_key: bytes) -> x25519.X25519PublicKey:
        if len(public_key) != 32:
            raise MalformedInput("an X25519 public key is 32 bytes")
        return x25519.X25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(x25519.X25519PrivateKey.generate())

    def to_pem(self) -> bytes:
        return self.raw.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes) -> EncryptionKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise MalformedInput(f"not a PKCS#8 PEM private key: {exc}") from exc
        if not isinstance(key, x25519.X25519PrivateKey):
            raise MalformedInput("the PEM key is not an X25519 encryption key")
        return cls(key)


def verify(public_key: bytes, tag: bytes, payload: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature by `public_key` over the tagged payload.

    One rule set on every node: libsodium's (refuses small-order keys and non-canonical S and R).
    """
    if len(public_key) != 32 or len(signature) != 64:
        return False
    message = tagged(tag, payload)
    if _sodium is not None:
        try:
            _sodium.crypto_sign_open(signature + message, public_key)
            return True
        except Exception:
            return False
    try:  # pragma: no cover - fallback path without PyNaCl
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def require_signature(public_key: bytes, tag: bytes, payload: bytes, signature: bytes) -> None:
    if not verify(public_key, tag, payload, signature):
        raise BadSignature("the signature does not verify under the signer's registered key")


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
