"""Vectors of the encoding, the hashes, the events, Ed25519 and the Merkle trees."""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Any

from nacl import bindings

from ledger.block import event_leaf
from ledger.certificate import confidential_hash
from ledger.encoding import decode, encode
from ledger.genesis import Genesis
from ledger.hashing import (
    TAG_CERT_CONFIDENTIAL,
    TAG_CERT_DIGEST,
    TAG_EVENT,
    TAG_EVENT_ID,
    TAG_GENESIS,
    TAG_HEADER,
    TAG_IDENTITY_COMMIT,
    TAG_KEY_ID,
    TAG_REGISTRY,
    TAG_STATE_LEAF,
    TAG_STATE_NODE,
    TAG_STATE_VALUE,
    TAG_VALIDATORS,
    tagged,
    tagged_hash,
)
from ledger.keys import SigningKey, verify
from ledger.merkle import inclusion_proof, merkle_root
from ledger.registry import Registry
from scripts.testvectors.chain import MEMBERS, MONITOR, certificate, refusal, typed
from scripts.testvectors.crypto import IDENTITY, ORDER_8, L, P, hx, seed


def encoding_vectors() -> dict[str, Any]:
    canonical_values: list[tuple[str, Any]] = [
        ("nil", None),
        ("false", False),
        ("true", True),
        ("positive fixint 0", 0),
        ("positive fixint 127", 127),
        ("uint8 128", 128),
        ("uint8 255", 255),
        ("uint16 256", 256),
        ("uint32 65536", 65536),
        ("uint64 2^32", 2**32),
        ("largest uint64", 2**64 - 1),
        ("negative fixint -1", -1),
        ("negative fixint -32", -32),
        ("int8 -33", -33),
        ("int16 -129", -129),
        ("smallest int64", -(2**63)),
        ("empty str", ""),
        ("fixstr", "BE-2026-000123"),
        ("str8 (32 bytes)", "x" * 32),
        ("UTF-8 str", "Côte d’Ivoire"),
        ("empty bin", b""),
        ("bin8", bytes(range(32))),
        ("bin16 (256 bytes)", bytes(256)),
        ("empty array", []),
        ("fixarray", [1, "a", b"\x00", None, True]),
        ("array16 (16 items)", list(range(16))),
        ("nested arrays", [[1, [2, [3]]], []]),
    ]
    canonical = [
        {"name": name, "value": typed(value), "hex": hx(encode(value))}
        for name, value in canonical_values
    ]
    refused_bytes = [
        ("uint8 for a positive fixint", "cc01"),
        ("uint16 for a value that fits uint8", "cd00ff"),
        ("uint64 for a value that fits uint32", "cf0000000000010000"),
        ("int8 for a negative fixint", "d0ff"),
        ("int16 for a value that fits int8", "d1ffdf"),
        ("int64 for a positive value", "d30000000000000001"),
        ("str8 for a fixstr", "d90161"),
        ("str16 for a short str", "da000161"),
        ("bin16 for a short bin", "c5000100"),
        ("array16 for a fixarray", "dc000101"),
        ("array32 for a fixarray", "dd0000000101"),
        ("a map", "80"),
        ("a map with a pair", "81a161a162"),
        ("float32", "ca3f800000"),
        ("float64", "cb3ff0000000000000"),
        ("an extension type", "d40100"),
        ("bytes after the object", "0100"),
        ("a truncated array", "9201"),
        ("a str that is not UTF-8", "a1ff"),
        ("nothing at all", ""),
    ]
    refused = [
        {
            "name": name,
            "hex": data,
            "refused_with": refusal(partial(decode, bytes.fromhex(data))),
        }
        for name, data in refused_bytes
    ]
    for item in refused:
        if item["refused_with"] is None:
            raise RuntimeError(f"decode accepted {item['name']}")
    return {
        "about": (
            "Canonical encoding (docs/protocol.md section 1): each value's one encoding, and bytes a "
            "decoder must refuse, with the code a node refuses them with (non_canonical_encoding: "
            "they decode but re-encode otherwise; malformed: they are not one allowed value)."
        ),
        "value_notation": "{nil}, {bool}, {int}, {str}, {bin: hex}, {array: [...]}",
        "canonical": canonical,
        "refused": refused,
    }


def hash_vectors(g: Genesis) -> dict[str, Any]:
    tags = (
        TAG_EVENT_ID,
        TAG_HEADER,
        TAG_CERT_DIGEST,
        TAG_CERT_CONFIDENTIAL,
        TAG_IDENTITY_COMMIT,
        TAG_STATE_LEAF,
        TAG_STATE_NODE,
        TAG_STATE_VALUE,
        TAG_GENESIS,
        TAG_VALIDATORS,
        TAG_REGISTRY,
        TAG_KEY_ID,
    )
    data = [b"", b"kp", bytes(range(64))]
    tagged_hashes = [
        {"tag": tag.decode(), "data": hx(d), "hash": hx(tagged_hash(tag, d))}
        for tag in tags
        for d in data
    ]
    cert = certificate("BE-2026-000123", "BE", "AE")
    salt = seed("digest", "salt")
    facts = cert.facts
    commitment = cert.identities.commitment(salt)
    registry = Registry.from_genesis(g)
    return {
        "about": (
            "TH(tag, data) = SHA-256(tag || 0x00 || data) (docs/protocol.md section 2), the "
            "certificate digest in its two halves (section 4), and the genesis and register hashes "
            "of the network every other file uses (genesis.json)."
        ),
        "tagged_hashes": tagged_hashes,
        "certificate_digest": {
            "certificate": cert.to_json(),
            "identity_salt": hx(salt),
            "identities_encoding": hx(encode([salt, *cert.identities.to_wire()])),
            "commitment": hx(commitment),
            "public": facts.public_wire(),
            "confidential_encoding": hx(
                encode(
                    [
                        list(facts.origin),
                        facts.hs_code,
                        facts.carats,
                        facts.value_usd,
                        facts.parcels,
                        facts.zone or "",
                        commitment,
                    ]
                )
            ),
            "confidential": hx(confidential_hash(facts, commitment)),
            "digest": hx(cert.digest(salt)),
        },
        "genesis": {"encoding": hx(encode(g.to_wire())), "hash": hx(g.hash)},
        "register": {"encoding": hx(encode(registry.to_wire())), "hash": hx(registry.hash)},
    }


def event_vectors(chain: dict[str, Any]) -> dict[str, Any]:
    out = []
    for block in chain["blocks"]:
        for event in block:
            unsigned = encode(event.unsigned_wire)
            signer_key = (
                MONITOR.public_bytes
                if event.signer.startswith("monitor/")
                else MEMBERS[event.signer].authority.public_bytes
            )
            out.append(
                {
                    "type": event.type,
                    "signer": event.signer,
                    "signer_public_key": hx(signer_key),
                    "signer_seed": hx(
                        seed("RU", "monitoring")
                        if event.signer.startswith("monitor/")
                        else seed(event.signer, "authority")
                    ),
                    "unsigned_encoding": hx(unsigned),
                    "signed_message": hx(tagged(TAG_EVENT, unsigned)),
                    "signature": hx(event.signature),
                    "signed_encoding": hx(event.encoded),
                    "event_id": hx(event.event_id),
                    "merkle_leaf_data": hx(event_leaf(event.event_id, event.type, event.number)),
                }
            )
    hpke = []
    for _, _, details in chain["issued"].values():
        for name, public, info, plaintext, ephemeral, sealed in details[:3]:
            hpke.append(
                {
                    "recipient": name,
                    "recipient_public_key": hx(public),
                    "info": hx(info),
                    "aad": "",
                    "plaintext": hx(plaintext),
                    "ephemeral_private_key": hx(ephemeral),
                    "enc": hx(sealed["enc"]),
                    "shared_secret": hx(sealed["shared_secret"]),
                    "key": hx(sealed["key"]),
                    "base_nonce": hx(sealed["base_nonce"]),
                    "ciphertext": hx(sealed["ciphertext"]),
                }
            )
    return {
        "about": (
            "Every event of the chain of public_answers.json: its unsigned encoding, the message "
            "its Ed25519 signature covers (kp/event/1), the signed encoding and the event id "
            "(TH(kp/event-id/1, signed encoding)), and its events_root leaf. Signer keys are "
            "Ed25519 seeds (RFC 8032). Then the HPKE boxes of the issuances (RFC 9180 base mode, "
            "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, empty aad), every "
            "intermediate value shown; the recipients' X25519 private keys are in genesis.json."
        ),
        "events": out,
        "hpke": hpke,
    }


def _sign_raw(seed_bytes: bytes, message: bytes) -> tuple[bytes, bytes, int, bytes]:
    """(public key, signature, secret scalar a, prefix) of RFC 8032 for `message`."""
    h = hashlib.sha512(seed_bytes).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    public = SigningKey.from_seed(seed_bytes).public_bytes
    return public, bindings.crypto_sign(message, seed_bytes + public)[:64], a, h[32:]


def ed25519_vectors() -> dict[str, Any]:
    key_seed = seed("ed25519")
    payload = b"a payload"
    message = tagged(TAG_EVENT, payload)
    public, signature, a, _ = _sign_raw(key_seed, message)
    r, s = signature[:32], int.from_bytes(signature[32:], "little")

    def k_of(r_bytes: bytes, a_bytes: bytes) -> int:
        return int.from_bytes(hashlib.sha512(r_bytes + a_bytes + message).digest(), "little") % L

    # R the identity: S = k * a satisfies [S]B = R + [k]A, but R has small order.
    s_small_r = (k_of(IDENTITY, public) * a) % L
    cases: list[tuple[str, bytes, bytes, bool]] = [
        ("a genuine signature", public, signature, True),
        (
            "S + L (non-canonical S, the same point equation)",
            public,
            r + (s + L).to_bytes(32, "little"),
            False,
        ),
        ("S = L", public, r + L.to_bytes(32, "little"), False),
        ("S with its top bit set", public, r + (s | (1 << 255)).to_bytes(32, "little"), False),
        (
            "A the identity (small order), R the identity, S = 0",
            IDENTITY,
            IDENTITY + bytes(32),
            False,
        ),
        ("A of order 8, R the identity, S = 0", ORDER_8, IDENTITY + bytes(32), False),
        (
            "R the identity (small order), S = k a",
            public,
            IDENTITY + s_small_r.to_bytes(32, "little"),
            False,
        ),
        ("R of order 8", public, ORDER_8 + s.to_bytes(32, "little"), False),
        (
            "A the identity encoded with y = p + 1 (non-canonical)",
            (P + 1).to_bytes(32, "little"),
            IDENTITY + bytes(32),
            False,
        ),
        (
            "A the identity with the sign bit set (x = 0, non-canonical)",
            IDENTITY[:31] + b"\x80",
            IDENTITY + bytes(32),
            False,
        ),
        ("A not on the curve (y = 2)", (2).to_bytes(32, "little"), signature, False),
        (
            "R encoded with y = p + 1 (non-canonical)",
            public,
            (P + 1).to_bytes(32, "little") + s.to_bytes(32, "little"),
            False,
        ),
        (
            "the signature of another payload",
            public,
            _sign_raw(key_seed, tagged(TAG_EVENT, b"another"))[1],
            False,
        ),
        ("one bit of R flipped", public, bytes([r[0] ^ 1]) + r[1:] + signature[32:], False),
        (
            "the signature over the payload without its tag",
            public,
            _sign_raw(key_seed, payload)[1],
            False,
        ),
    ]
    vectors = []
    for name, key, sig, expected in cases:
        got = verify(key, TAG_EVENT, payload, sig)
        if got != expected:
            raise RuntimeError(f"ed25519 {name}: verify says {got}, expected {expected}")
        vectors.append(
            {
                "name": name,
                "public_key": hx(key),
                "tag": TAG_EVENT.decode(),
                "payload": hx(payload),
                "message": hx(message),
                "signature": hx(sig),
                "valid": expected,
            }
        )
    return {
        "about": (
            "Ed25519 verdicts every node reaches (docs/protocol.md section 2: libsodium's "
            "crypto_sign_open rules through PyNaCl): a signature over message = tag || 0x00 || "
            "payload is valid only when S < L, A and R are canonical encodings of points not of "
            "small order, and [S]B = R + [SHA-512(R || A || message)]A. An implementation must "
            "reach the same verdict on each."
        ),
        "seed": hx(key_seed),
        "vectors": vectors,
    }


def merkle_vectors() -> dict[str, Any]:
    trees = []
    for size in range(0, 10):
        leaves = [bytes([i]) * (i + 1) for i in range(size)]
        trees.append(
            {
                "leaves": [hx(leaf) for leaf in leaves],
                "root": hx(merkle_root(leaves)),
                "paths": [[hx(p) for p in inclusion_proof(leaves, i)] for i in range(size)],
            }
        )
    return {
        "about": (
            "RFC 9162 section 2.1 Merkle tree hashes (leaf = SHA-256(0x00 || data), node = "
            "SHA-256(0x01 || left || right), the empty tree SHA-256('')) over leaves[i] = i + 1 "
            "bytes of value i, and the inclusion path of every leaf (section 2.1.3), nearest "
            "sibling first. The RFC 6962 reference vectors are in tests/ledger/vectors/rfc6962.json."
        ),
        "trees": trees,
    }
