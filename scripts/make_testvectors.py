"""Write docs/testvectors/*.json: the bytes and verdicts another implementation must reproduce.

Every vector is computed here by the ledger's own code from fixed inputs (seeds, salts, times, and
the HPKE ephemeral keys, sealed by a from-scratch RFC 9180 implementation below that the ledger's
code must open), so the files are the same on every run. tests/ledger/test_testvectors.py checks
the implementation against every vector and fails if a file is not what this script writes now.

    .venv/bin/python scripts/make_testvectors.py          write the files
    .venv/bin/python scripts/make_testvectors.py --check  exit 1 if a file is stale
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from nacl import bindings

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ledger.block import Header, event_leaf  # noqa: E402
from ledger.certificate import Certificate, confidential_hash  # noqa: E402
from ledger.chain import build_block, validate_block  # noqa: E402
from ledger.confidential import TAG_SEAL, SealedBox, SealedIdentities  # noqa: E402
from ledger.consensus import CommitCertificate, Vote, VoteKind  # noqa: E402
from ledger.encoding import decode, encode  # noqa: E402
from ledger.errors import LedgerError  # noqa: E402
from ledger.events import ConfirmImportBody, Event, IssueBody, VoidBody, sign_event  # noqa: E402
from ledger.genesis import Genesis, Parameters, Participant, Validator  # noqa: E402
from ledger.governance import EndorseBody  # noqa: E402
from ledger.hashing import (  # noqa: E402
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
from ledger.keys import EncryptionKey, SigningKey, verify  # noqa: E402
from ledger.merkle import inclusion_proof, merkle_root  # noqa: E402
from ledger.proofs import (  # noqa: E402
    CertificateProof,
    FinalHeader,
    build_certificate_proof,
    verify_certificate_proof,
)
from ledger.state import Registry, state_key, state_value  # noqa: E402
from ledger.statetree import (  # noqa: E402
    MemoryNodeStore,
    StateProof,
    StateTree,
    verify_state_proof,
)
from ledger.store import Store  # noqa: E402
from node.views import public_answer_contradictions, public_certificate_json  # noqa: E402

OUT = REPO / "docs" / "testvectors"
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


# -- a fixed network and chain -------------------------------------------------------------------
@dataclasses.dataclass
class Member:
    code: str
    countries: tuple[str, ...]
    authority: SigningKey
    encryption: EncryptionKey
    node: SigningKey


def member(code: str, countries: tuple[str, ...]) -> Member:
    return Member(
        code,
        countries,
        SigningKey.from_seed(seed(code, "authority")),
        EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(seed(code, "encryption"))),
        SigningKey.from_seed(seed(code, "node")),
    )


MEMBERS = {m.code: m for m in (member(c, (c,)) for c in ("BE", "AE", "IN", "RU"))}
MONITOR = SigningKey.from_seed(seed("RU", "monitoring"))
EXTRA = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(seed("IN-monitor", "extra")))
CHAIN_ID = "kp-testvectors"
#: Block times: 2026-03-02 12:00 UTC and one second apart after.
T0 = int(datetime(2026, 3, 2, 12, tzinfo=UTC).timestamp() * 1000)
DAY = date(2026, 3, 2)


def genesis() -> Genesis:
    return Genesis(
        chain_id=CHAIN_ID,
        genesis_time="2026-03-01T00:00:00Z",
        participants=tuple(
            Participant(
                code=m.code,
                name=f"{m.code} KP authority",
                countries=m.countries,
                authority_key=m.authority.public_bytes,
                encryption_key=m.encryption.public_bytes,
                restricted_zones=("ZONE-A",) if m.code == "RU" else (),
                monitoring_key=MONITOR.public_bytes if m.code == "RU" else None,
                node_key=m.node.public_bytes,
                address=f"http://127.0.0.1:{7700 + i}",
            )
            for i, m in enumerate(MEMBERS.values())
        ),
        validators=tuple(
            Validator(m.code, m.node.public_bytes, f"http://127.0.0.1:{7700 + i}")
            for i, m in enumerate(MEMBERS.values())
        ),
        parameters=Parameters(),
        extra_recipients=(("IN", "IN-monitor", EXTRA.public_bytes),),
    )


def certificate(
    number: str, exporting: str, importing: str, zone: str | None = None
) -> Certificate:
    raw: dict[str, Any] = {
        "number": number,
        "exporting_participant": exporting,
        "importing_participant": importing,
        "origin": ["BW"],
        "hs_code": "7102.31",
        "carats": "1250.50",
        "value_usd": "98760.25",
        "parcels": 3,
        "exporter": {"name": f"Exporter of {number}", "address": "1 Mine Road"},
        "importer": {"name": f"Importer of {number}", "address": "2 Port Quay"},
        "issued_on": DAY.isoformat(),
        "expires_on": "2026-05-31",
    }
    if zone is not None:
        raw["zone"] = zone
    return Certificate.from_json(raw)


def issue_event(
    registry: Registry, cert: Certificate, created_ms: int
) -> tuple[Any, bytes, list[Any]]:
    """The issuance with deterministic salt and HPKE boxes; returns (event, digest, box details)."""
    facts = cert.facts
    salt = seed(facts.number, "salt")
    plaintext = encode([salt, *cert.identities.to_wire()])
    boxes, details = [], []
    for name, key in registry.recipients_for(
        facts.exporting_participant, facts.importing_participant
    ):
        info = tagged(TAG_SEAL, encode([facts.number, name]))
        sealed = hpke_seal(key, info, plaintext, seed(facts.number, name, "ephemeral"))
        boxes.append(SealedBox(name, sealed["ciphertext"]))
        details.append((name, key, info, plaintext, seed(facts.number, name, "ephemeral"), sealed))
    body = IssueBody(facts, SealedIdentities(cert.identities.commitment(salt), tuple(boxes)))
    event = sign_event(
        CHAIN_ID,
        facts.exporting_participant,
        body,
        MEMBERS[facts.exporting_participant].authority,
        created_ms,
    )
    return event, cert.digest(salt), details


def commit_bytes(header: Header, signers: range | None = None) -> bytes:
    keys = [m.node for m in MEMBERS.values()]
    chosen = range(len(keys)) if signers is None else signers
    votes = [
        Vote.create(keys[i], CHAIN_ID, VoteKind.PRECOMMIT, header.height, 0, header.hash, i)
        for i in chosen
    ]
    cert = CommitCertificate(
        header.height, 0, header.hash, tuple((v.validator, v.signature) for v in votes)
    )
    return encode(cert.to_wire())


@contextmanager
def built_chain() -> Iterator[tuple[Genesis, Store, dict[str, Any]]]:
    """Block 1: issues of A (BE to AE), B (BE to IN), C (IN to RU, with IN's extra recipient),
    D (RU, restricted, to BE). Block 2: A confirmed, B voided, D endorsed. Block 3: D confirmed,
    E (AE to IN) issued and confirmed in the same block."""
    g = genesis()
    registry = Registry.from_genesis(g)

    def confirm(number: str, digest: bytes, importing: str, created_ms: int) -> Event:
        body = ConfirmImportBody(number, digest)
        return sign_event(CHAIN_ID, importing, body, MEMBERS[importing].authority, created_ms)

    issued = {}
    for name, (exp, imp, zone) in {
        "A": ("BE", "AE", None),
        "B": ("BE", "IN", None),
        "C": ("IN", "RU", None),
        "D": ("RU", "BE", "ZONE-A"),
        "E": ("AE", "IN", None),
    }.items():
        number = f"{exp}-2026-00000{ord(name) - 64}"
        issued[name] = issue_event(registry, certificate(number, exp, imp, zone), T0 - 60_000)
    num = {k: v[0].body.facts.number for k, v in issued.items()}
    dig = {k: v[1] for k, v in issued.items()}
    blocks = [
        [issued[k][0] for k in "ABCD"],
        [
            confirm(num["A"], dig["A"], "AE", T0 - 50_000),
            sign_event(
                CHAIN_ID, "BE", VoidBody(num["B"], "error"), MEMBERS["BE"].authority, T0 - 50_000
            ),
            sign_event(
                CHAIN_ID, "monitor/RU", EndorseBody(num["D"], dig["D"]), MONITOR, T0 - 50_000
            ),
        ],
        [
            confirm(num["D"], dig["D"], "BE", T0 - 40_000),
            issued["E"][0],
            confirm(num["E"], dig["E"], "IN", T0 - 40_000),
        ],
    ]
    with tempfile.TemporaryDirectory(prefix="kp-testvectors-") as tmp:
        store = Store(Path(tmp) / "chain", g)
        try:
            for i, events in enumerate(blocks):
                prev = store.head
                reg = store.registry() or registry
                built = build_block(
                    store,
                    reg,
                    g.hash,
                    prev,
                    events,
                    chain_id=CHAIN_ID,
                    time_ms=T0 + 1000 * i,
                    proposer=(i + 1) % 4,
                )
                if built.refused:
                    raise RuntimeError(
                        f"block {i + 1} refused {[(e.type, x.code) for e, x in built.refused]}"
                    )
                checked = validate_block(store, reg, g.hash, prev, built.block, chain_id=CHAIN_ID)
                store.commit(checked, commit_bytes(checked.header))
            yield g, store, {"numbers": num, "digests": dig, "issued": issued, "blocks": blocks}
        finally:
            store.close()


# -- the vector files ------------------------------------------------------------------------------
def typed(value: Any) -> Any:
    """A msgpack value as JSON that keeps its type: {"int": 1}, {"str": ""}, {"bin": hex}..."""
    if value is None:
        return {"nil": None}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    return {"array": [typed(v) for v in value]}


def untyped(obj: dict[str, Any]) -> Any:
    ((kind, value),) = obj.items()
    if kind == "bin":
        return bytes.fromhex(value)
    if kind == "array":
        return [untyped(v) for v in value]
    return value


def refusal(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except LedgerError as exc:
        return exc.code
    return None


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


def state_tree_vectors() -> dict[str, Any]:
    nodes = MemoryNodeStore()
    tree = StateTree(nodes, bytes(32))
    entries = {}
    for i in range(1, 9):
        number = f"BE-2026-{i:06d}"
        entries[number] = state_value(
            number, "issued", seed(number, "digest"), seed(number, "event"), i
        )
    root, writes = tree.update({state_key(n): v for n, v in entries.items()})
    nodes.apply(writes)
    tree = StateTree(nodes, root)

    def proof_json(key: bytes) -> dict[str, Any]:
        proof = tree.prove(key)
        return {
            "leaf": None if proof.leaf is None else [hx(proof.leaf[0]), hx(proof.leaf[1])],
            "siblings": [hx(s) for s in proof.siblings],
            "wire": hx(encode(proof.to_wire())),
        }

    present: list[dict[str, Any]] = []
    for number, value in entries.items():
        present.append(
            {
                "number": number,
                "key": hx(state_key(number)),
                "value": hx(value),
                "proof": proof_json(state_key(number)),
            }
        )
    absent: list[dict[str, Any]] = []
    for number in (
        "BE-2026-000009",
        "BE-2026-000010",
        "AE-2026-000001",
        "IN-NOT-THERE",
        "RU-2026-000777",
    ):
        key = state_key(number)
        proof = tree.prove(key)
        absent.append(
            {
                "number": number,
                "key": hx(key),
                "ends_at": "an empty subtree" if proof.leaf is None else "another key's leaf",
                "proof": proof_json(key),
            }
        )
    kinds = {a["ends_at"] for a in absent}
    if kinds != {"an empty subtree", "another key's leaf"}:
        raise RuntimeError(f"the absence vectors do not show both kinds: {kinds}")
    first = present[0]
    proof = tree.prove(bytes.fromhex(first["key"]))
    sib0 = proof.siblings[0]
    flipped = dataclasses.replace(
        proof, siblings=(bytes([sib0[0] ^ 0x80]) + sib0[1:], *proof.siblings[1:])
    )
    other = absent[0]
    refused: list[tuple[str, str, str | None, StateProof]] = [
        ("the value of another certificate", first["key"], present[1]["value"], proof),
        ("a sibling altered", first["key"], first["value"], flipped),
        ("a presence proof shown as absence", first["key"], None, proof),
        (
            "an absence proof shown as presence",
            other["key"],
            first["value"],
            tree.prove(bytes.fromhex(other["key"])),
        ),
        (
            "one sibling dropped",
            first["key"],
            first["value"],
            dataclasses.replace(proof, siblings=proof.siblings[1:]),
        ),
    ]
    tampered = []
    for name, key_hex, value_hex, bad in refused:
        value_bytes = None if value_hex is None else bytes.fromhex(value_hex)
        if verify_state_proof(root, bytes.fromhex(key_hex), value_bytes, bad):
            raise RuntimeError(f"state proof {name} verifies")
        tampered.append(
            {
                "name": name,
                "key": key_hex,
                "value": value_hex,
                "proof": {
                    "leaf": None if bad.leaf is None else [hx(bad.leaf[0]), hx(bad.leaf[1])],
                    "siblings": [hx(s) for s in bad.siblings],
                },
                "valid": False,
            }
        )
    return {
        "about": (
            "The compressed sparse Merkle state tree (docs/protocol.md section 7): key = "
            "SHA-256(number), value = TH(kp/state-value/1, [number, status, digest, last_event_id, "
            "last_height]), leaf = TH(kp/state-leaf/1, key || value), node = TH(kp/state-node/1, "
            "left || right), empty = 32 zero bytes. Eight certificates, a presence proof of each, "
            "absence proofs ending at an empty subtree and at another key's leaf, and proofs that "
            "must not verify. Values here are of made-up digests and event ids."
        ),
        "root": hx(root),
        "entries": [{"number": n, "value": hx(v)} for n, v in entries.items()],
        "present": present,
        "absent": absent,
        "tampered": tampered,
    }


def _verdict(
    status: int, body: dict[str, Any], g: Genesis, number: str, today: date
) -> dict[str, Any]:
    """What a verifier concludes from a public answer: the proof's verdict, then its fields."""
    try:
        proof = CertificateProof.from_base64(body["proof"])
        checked = verify_certificate_proof(proof, g, number)
    except LedgerError as exc:
        return {"accept": False, "code": exc.code, "reason": exc.message}
    lies = public_answer_contradictions(status, body, checked, today=today)
    if lies:
        return {"accept": False, "code": "answer_contradicts_proof", "reason": "; ".join(lies)}
    return {
        "accept": True,
        "found": checked.found,
        "status": checked.status,
        "digest": None if checked.digest is None else hx(checked.digest),
        "history": [[t, h, hx(e)] for t, h, e in checked.history],
        "head_height": checked.head_height,
    }


def public_answer_vectors(g: Genesis, store: Store, chain: dict[str, Any]) -> dict[str, Any]:
    today = DAY
    answers: list[tuple[str, str, int, dict[str, Any]]] = []
    for key, number in chain["numbers"].items():
        record = store.get_certificate(number)
        assert record is not None
        body = public_certificate_json(store, record, today=today)
        body["proof"] = base64.b64encode(
            encode(build_certificate_proof(store, number).to_wire())
        ).decode()
        answers.append(
            (
                f"certificate {key} ({record.status}, {len(record.history)} events)",
                number,
                200,
                body,
            )
        )
    missing = "BE-2026-999999"
    answers.append(
        (
            "a number not on the ledger (proof of absence)",
            missing,
            404,
            {
                "error": "certificate_not_found",
                "message": f"certificate {missing} is not on the ledger",
                "number": missing,
                "proof": base64.b64encode(
                    encode(build_certificate_proof(store, missing).to_wire())
                ).decode(),
            },
        )
    )
    genuine = {name: (number, status, body) for name, number, status, body in answers}
    a_name = next(n for n in genuine if n.startswith("certificate A"))
    number_a, _, body_a = genuine[a_name]
    proof_a = build_certificate_proof(store, number_a)

    def with_proof(proof: CertificateProof, **fields: Any) -> dict[str, Any]:
        return {**body_a, **fields, "proof": base64.b64encode(encode(proof.to_wire())).decode()}

    head = proof_a.head
    cert = CommitCertificate.from_wire(decode(commit_bytes(head.header, range(2))))
    sigs = head.commit.signatures
    flipped_sig = ((sigs[0][0], bytes([sigs[0][1][0] ^ 1]) + sigs[0][1][1:]), *sigs[1:])
    sib0 = proof_a.state_proof.siblings[0]
    assert proof_a.leaf is not None
    public = list(proof_a.public_wire or [])
    public[3] = "2026-01-01"
    tampered = [
        (
            "the status field says rejected",
            with_proof(proof_a, status="import_rejected", ledger_status="import_rejected"),
        ),
        ("the digest field names another document", with_proof(proof_a, digest="00" * 32)),
        (
            "the importer field names another participant",
            with_proof(proof_a, importing_participant="IN"),
        ),
        (
            "the history field drops the confirmation",
            with_proof(proof_a, history=body_a["history"][:1]),
        ),
        (
            "the proof's status changed (not under the state root)",
            with_proof(
                dataclasses.replace(
                    proof_a, leaf=dataclasses.replace(proof_a.leaf, status="import_rejected")
                ),
                status="import_rejected",
                ledger_status="import_rejected",
            ),
        ),
        (
            "a state proof sibling altered",
            with_proof(
                dataclasses.replace(
                    proof_a,
                    state_proof=dataclasses.replace(
                        proof_a.state_proof,
                        siblings=(
                            bytes([sib0[0] ^ 0x80]) + sib0[1:],
                            *proof_a.state_proof.siblings[1:],
                        ),
                    ),
                )
            ),
        ),
        (
            "a precommit signature of the head altered",
            with_proof(
                dataclasses.replace(
                    proof_a,
                    head=FinalHeader(
                        head.header, dataclasses.replace(head.commit, signatures=flipped_sig)
                    ),
                )
            ),
        ),
        (
            "the head signed by two validators of four",
            with_proof(dataclasses.replace(proof_a, head=FinalHeader(head.header, cert))),
        ),
        (
            "the history cut to the issue",
            with_proof(dataclasses.replace(proof_a, events=proof_a.events[:1])),
        ),
        (
            "the final header of the issue's block left out",
            with_proof(dataclasses.replace(proof_a, headers=())),
        ),
        (
            "a public fact of the proof altered (issued_on)",
            with_proof(dataclasses.replace(proof_a, public_wire=public), issued_on="2026-01-01"),
        ),
        (
            "the proof of another certificate",
            with_proof(build_certificate_proof(store, chain["numbers"]["B"])),
        ),
        (
            "a 404 for a certificate the proof shows",
            {
                "error": "certificate_not_found",
                "message": "not here",
                "number": number_a,
                "proof": body_a["proof"],
            },
        ),
    ]
    vectors = []
    for name, number, status, body in answers:
        verdict = _verdict(status, body, g, number, today)
        if not verdict["accept"]:
            raise RuntimeError(f"the genuine answer {name} is refused: {verdict}")
        vectors.append(
            {
                "name": name,
                "number": number,
                "http_status": status,
                "answer": body,
                "verdict": verdict,
            }
        )
    for name, body in tampered:
        status = 404 if "error" in body else 200
        verdict = _verdict(status, body, g, number_a, today)
        if verdict["accept"]:
            raise RuntimeError(f"the tampered answer {name} is accepted")
        vectors.append(
            {
                "name": name,
                "number": number_a,
                "http_status": status,
                "answer": body,
                "verdict": verdict,
            }
        )
    return {
        "about": (
            "Answers of GET /v1/public/certificates/{number} from the chain of events.json (three "
            "blocks, genesis in genesis.json), genuine and tampered, with the verdict of a verifier "
            "(docs/proofs.md): the proof (base64 of its encoding, docs/protocol.md section 10) "
            "checked against genesis alone, then every plain field checked against the proof. "
            f"The verifier's date is {today.isoformat()}. A refused answer gives the code and "
            "reason our verifier gives; another implementation must refuse it too (its words may "
            "differ)."
        ),
        "today": today.isoformat(),
        "vectors": vectors,
    }


def genesis_vector(g: Genesis) -> dict[str, Any]:
    return {
        "about": (
            "The network of events.json and public_answers.json: its genesis as GET "
            "/v1/public/genesis shows it, its hash, and the private keys of every participant "
            "(derived from fixed seeds: never use them), so the HPKE boxes can be opened and the "
            "signatures reproduced."
        ),
        "genesis": g.to_json(),
        "genesis_hash": hx(g.hash),
        "keys": {
            code: {
                "authority_seed": hx(seed(code, "authority")),
                "encryption_private_key": hx(seed(code, "encryption")),
                "node_seed": hx(seed(code, "node")),
            }
            for code in MEMBERS
        }
        | {
            "monitor/RU": {"monitoring_seed": hx(seed("RU", "monitoring"))},
            "IN-monitor": {"encryption_private_key": hx(seed("IN-monitor", "extra"))},
        },
    }


def build_all() -> dict[str, Any]:
    """Every vector file's content, by file name."""
    with built_chain() as (g, store, chain):
        return {
            "encoding.json": encoding_vectors(),
            "hashes.json": hash_vectors(g),
            "ed25519.json": ed25519_vectors(),
            "merkle.json": merkle_vectors(),
            "state_tree.json": state_tree_vectors(),
            "genesis.json": genesis_vector(g),
            "events.json": event_vectors(chain),
            "public_answers.json": public_answer_vectors(g, store, chain),
        }


def render(content: Any) -> str:
    return json.dumps(content, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in build_all().items():
        path = OUT / name
        text = render(content)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run scripts/make_testvectors.py", file=sys.stderr)
        return 1
    print(f"{'stale' if args.check else 'written'}: {', '.join(stale) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
