"""Identities: Ed25519 signing keys and X25519 encryption keys, their PEM files and key ids."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ledger.encoding import encode
from ledger.errors import BadSignature, MalformedInput, WrongPassphrase
from ledger.hashing import TAG_KEY_ID, TAG_KEY_POSSESSION, tagged, tagged_hash

_sodium: Any
try:  # libsodium verifies faster than OpenSSL here; the rule set is pinned in docs/protocol.md.
    import nacl.bindings as _sodium
except ImportError:  # pragma: no cover - PyNaCl is a declared dependency
    _sodium = None
#: libsodium's crypto_sign_open: checks a signed message (no file is opened).
_sodium_verify: Any = getattr(_sodium, "crypto_sign_open", None)


#: The field of Curve25519 and the order of its prime subgroup.
P25519 = 2**255 - 19
_A = 486662
#: A fixed clamped scalar: X25519 of it and a point is all zeros exactly when the point is of
#: small order (the clamped scalar is a multiple of the cofactor 8).
_PROBE = bytes([8] + [0] * 30 + [64])


def is_valid_ed25519_public(public_key: bytes) -> bool:
    """A canonical encoding of a point of the curve's prime-order subgroup (libsodium's check):
    not the identity, not of small order, on the curve."""
    if not isinstance(public_key, bytes) or len(public_key) != 32 or _sodium is None:
        return False
    return bool(_sodium.crypto_core_ed25519_is_valid_point(public_key))


def is_valid_x25519_public(public_key: bytes) -> bool:
    """A canonical u-coordinate (< p) of a point on Curve25519 itself (not its twist), not of
    small order: so not all zeros, not 1, not any of the low-order points."""
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        return False
    u = int.from_bytes(public_key, "little")
    if u >= P25519:
        return False
    rhs = (u * u * u + _A * u * u + u) % P25519
    if rhs == 0 or pow(rhs, (P25519 - 1) // 2, P25519) != 1:
        return False  # u = 0, or on the twist
    if _sodium is None:  # pragma: no cover - PyNaCl is a declared dependency
        return True
    try:
        shared = _sodium.crypto_scalarmult(_PROBE, public_key)
    except Exception:  # libsodium refuses an all-zero result: a small-order point
        return False
    return bool(shared != bytes(32))


def possession_statement(chain_id: str, participant: str, role: str, public_key: bytes) -> bytes:
    """What a proof of possession signs: this key, for this role of this participant, on this
    chain (docs/protocol.md, "Proof of possession")."""
    return encode(["kp/key-possession", chain_id, participant, role, public_key])


def _montgomery_to_edwards(u_bytes: bytes) -> bytes:
    """The Edwards point (sign bit 0) of a Curve25519 u-coordinate: y = (u - 1) / (u + 1)."""
    u = int.from_bytes(u_bytes, "little")
    y = (u - 1) * pow(u + 1, P25519 - 2, P25519) % P25519
    return y.to_bytes(32, "little")


def verify_possession(
    public_key: bytes, role: str, chain_id: str, participant: str, proof: bytes
) -> bool:
    """True when `proof` is a signature of the possession statement by the private half of
    `public_key`: Ed25519 for the signing roles; XEdDSA (an Ed25519 signature under the key's
    Edwards form, as Signal's XEdDSA) for an X25519 encryption key."""
    statement = possession_statement(chain_id, participant, role, public_key)
    if role == "encryption":
        if not is_valid_x25519_public(public_key):
            return False
        return verify(_montgomery_to_edwards(public_key), TAG_KEY_POSSESSION, statement, proof)
    return verify(public_key, TAG_KEY_POSSESSION, statement, proof)


def key_id(public_key: bytes) -> str:
    """A short, stable name for a public key: hex of the first 8 bytes of its tagged hash."""
    return tagged_hash(TAG_KEY_ID, public_key)[:8].hex()


@runtime_checkable
class Signer(Protocol):
    """What signs for a participant or a node: an Ed25519 key held here (SigningKey) or one that
    never leaves a hardware token (node/custody.py). The core signs through this and nothing more,
    so it never knows where a key is kept."""

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        ...

    def sign(self, tag: bytes, payload: bytes) -> bytes:
        """The Ed25519 signature of the tagged payload (64 bytes)."""
        ...

    def sign_raw(self, message: bytes) -> bytes:
        """The Ed25519 signature of `message` as it is, only for an outside format that fixes
        its own signing input (W3C Data Integrity, ledger/credential.py)."""
        ...


def prove_possession(signer: Signer, chain_id: str, participant: str, role: str) -> bytes:
    """Sign the statement that `signer`'s key is `participant`'s `role` key on `chain_id`."""
    return signer.sign(
        TAG_KEY_POSSESSION, possession_statement(chain_id, participant, role, signer.public_bytes)
    )


#: How an encrypted key file is protected: PKCS#8 with PBES2 (PBKDF2-HMAC-SHA256, this many
#: rounds, OWASP's figure for it; AES-256-CBC), which OpenSSL and every PKCS#8 reader opens
#: (docs/security.md, "Keys at rest").
PEM_KDF_ROUNDS = 600_000


def is_encrypted_pem(data: bytes) -> bool:
    """Whether a PEM holds an encrypted private key (PKCS#8 or the legacy OpenSSL form)."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data


def _load_private_pem(data: bytes, passphrase: bytes | None) -> Any:
    encrypted = is_encrypted_pem(data)
    if encrypted and not passphrase:
        raise WrongPassphrase("the key is encrypted and no passphrase was given")
    try:
        return serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise WrongPassphrase("the passphrase does not open the encrypted key") from exc
        raise MalformedInput(f"not a PKCS#8 PEM private key: {exc}") from exc


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")


def encrypt_pkcs8(der: bytes, passphrase: bytes, salt: bytes, iv: bytes) -> bytes:
    """RFC 5958 EncryptedPrivateKeyInfo of a PKCS#8 key, with RFC 8018 PBES2: PBKDF2-HMAC-SHA256
    (PEM_KDF_ROUNDS rounds, 16-byte salt) and AES-256-CBC. Written here rather than by the
    cryptography package, whose PKCS#8 encryption runs PBKDF2 only 2,048 times."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = hashlib.pbkdf2_hmac("sha256", passphrase, salt, PEM_KDF_ROUNDS, 32)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(der) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(plain) + encryptor.finalize()
    rounds = PEM_KDF_ROUNDS.to_bytes((PEM_KDF_ROUNDS.bit_length() + 8) // 8, "big")
    pbkdf2 = _der(
        0x30,
        _OID_PBKDF2
        + _der(
            0x30,
            _der(0x04, salt) + _der(0x02, rounds) + _der(0x30, _OID_HMAC_SHA256 + b"\x05\x00"),
        ),
    )
    scheme = _der(0x30, _OID_AES256_CBC + _der(0x04, iv))
    algorithm = _der(0x30, _OID_PBES2 + _der(0x30, pbkdf2 + scheme))
    return _der(0x30, algorithm + _der(0x04, sealed))


def _private_pem(
    key: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey, passphrase: bytes | None
) -> bytes:
    if not passphrase:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sealed = encrypt_pkcs8(der, passphrase, os.urandom(16), os.urandom(16))
    b64 = base64.encodebytes(sealed).decode("ascii").replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + "".join(line + "\n" for line in lines)
        + "-----END ENCRYPTED PRIVATE KEY-----\n"
    ).encode("ascii")


class SigningKey:
    """An Ed25519 private key held in this process. Signs domain-tagged messages only."""

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

    def sign_raw(self, message: bytes) -> bytes:
        """A signature over `message` as it is, for an outside format that fixes its own signing
        input (W3C Data Integrity, ledger/credential.py); kpledger's own objects are always
        signed tagged (`sign`)."""
        return self._key.sign(message)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted under `passphrase` when one is given."""
        return _private_pem(self._key, passphrase)

    def seed(self) -> bytes:
        """The 32-byte private seed (RFC 8032): what a hardware token is given on import."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def prove_possession(self, chain_id: str, participant: str, role: str) -> bytes:
        """Sign the statement that this key is `participant`'s `role` key on `chain_id`."""
        return prove_possession(self, chain_id, participant, role)

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> SigningKey:
        key = _load_private_pem(data, passphrase)
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

    def prove_possession(self, chain_id: str, participant: str, role: str = "encryption") -> bytes:
        """An XEdDSA signature of the possession statement by this X25519 key: the Ed25519
        signature a key pair with the same scalar makes, under the Edwards point of our u with
        sign 0 (Signal's XEdDSA, section 2.3). Anyone verifies it with the public key alone."""
        assert _sodium is not None, "PyNaCl is a declared dependency"
        message = tagged(
            TAG_KEY_POSSESSION, possession_statement(chain_id, participant, role, self.public_bytes)
        )
        k = bytearray(
            self.raw.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )
        k[0] &= 248
        k[31] &= 127
        k[31] |= 64
        edwards = _sodium.crypto_scalarmult_ed25519_base_noclamp(bytes(k))
        a = _sodium.crypto_core_ed25519_scalar_reduce(bytes(k) + bytes(32))
        if edwards[31] & 0x80:
            a = _sodium.crypto_core_ed25519_scalar_negate(a)
        public = edwards[:31] + bytes([edwards[31] & 0x7F])
        nonce = os.urandom(64)
        r = _sodium.crypto_core_ed25519_scalar_reduce(
            hashlib.sha512(b"\xfe" + b"\xff" * 31 + a + message + nonce).digest()
        )
        big_r = _sodium.crypto_scalarmult_ed25519_base_noclamp(r)
        h = _sodium.crypto_core_ed25519_scalar_reduce(
            hashlib.sha512(big_r + public + message).digest()
        )
        s = _sodium.crypto_core_ed25519_scalar_add(r, _sodium.crypto_core_ed25519_scalar_mul(h, a))
        return bytes(big_r + s)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted under `passphrase` when one is given."""
        return _private_pem(self.raw, passphrase)

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> EncryptionKey:
        key = _load_private_pem(data, passphrase)
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
            _sodium_verify(signature + message, public_key)
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
