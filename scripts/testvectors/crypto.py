"""Fixed seeds and the from-scratch primitives the vectors are computed with (HPKE seal, Ed25519 constants)."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

#: Ed25519's group order and the field prime.
L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
IDENTITY = bytes([1]) + bytes(31)
#: A point of order 8 (the published list of small-order points of Curve25519 in Edwards form).
ORDER_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def seed(*parts: str) -> bytes:
    return hashlib.sha256("/".join(("kp-testvectors", *parts)).encode()).digest()


def hx(data: bytes) -> str:
    return data.hex()


# -- a from-scratch HPKE base-mode seal (RFC 9180), with a chosen ephemeral key -----------------
KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0003  # DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def hpke_seal(
    recipient_public: bytes, info: bytes, plaintext: bytes, ephemeral_private: bytes
) -> dict[str, bytes]:
    """SetupBaseS + Seal with aad = "" (RFC 9180 sections 4.1, 5.1, 5.2), every step shown."""
    kem_suite = b"KEM" + KEM_ID.to_bytes(2, "big")
    suite = b"HPKE" + b"".join(i.to_bytes(2, "big") for i in (KEM_ID, KDF_ID, AEAD_ID))
    eph = x25519.X25519PrivateKey.from_private_bytes(ephemeral_private)
    enc = eph.public_key().public_bytes_raw()
    dh = eph.exchange(x25519.X25519PublicKey.from_public_bytes(recipient_public))
    eae_prk = _labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared = _labeled_expand(kem_suite, eae_prk, b"shared_secret", enc + recipient_public, 32)
    context = (
        b"\x00"
        + _labeled_extract(suite, b"", b"psk_id_hash", b"")
        + _labeled_extract(suite, b"", b"info_hash", info)
    )
    secret = _labeled_extract(suite, shared, b"secret", b"")
    key = _labeled_expand(suite, secret, b"key", context, 32)
    nonce = _labeled_expand(suite, secret, b"base_nonce", context, 12)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, plaintext, b"")
    return {
        "enc": enc,
        "shared_secret": shared,
        "key": key,
        "base_nonce": nonce,
        "ciphertext": enc + sealed,
    }
