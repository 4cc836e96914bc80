"""docs/testvectors/ against the implementation: every vector is checked with the ledger's code (and
the layouts of docs/protocol.md with a few lines of hashlib), and every file is what
scripts/make_testvectors.py writes now, so that the vectors and the code cannot drift apart."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from ledger.certificate import Certificate, confidential_hash
from ledger.confidential import SUITE, open_sealed
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.events import Event
from ledger.genesis import Genesis
from ledger.hashing import TAG_EVENT, tagged_hash
from ledger.keys import EncryptionKey, SigningKey, verify
from ledger.merkle import inclusion_proof, merkle_root, verify_inclusion
from ledger.proofs import CertificateProof, verify_certificate_proof
from ledger.records import state_key, state_value
from ledger.registry import Registry
from ledger.statetree import MemoryNodeStore, StateProof, StateTree, verify_state_proof
from node.views import public_answer_contradictions

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "docs" / "testvectors"
FILES = (
    "encoding.json",
    "hashes.json",
    "ed25519.json",
    "merkle.json",
    "state_tree.json",
    "genesis.json",
    "events.json",
    "public_answers.json",
)


@cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_testvectors", REPO / "scripts" / "make_testvectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@cache
def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def b(text: str) -> bytes:
    return bytes.fromhex(text)


def test_every_file_is_what_the_generator_writes_now() -> None:
    built = generator().build_all()
    assert sorted(built) == sorted(FILES)
    assert sorted(p.name for p in VECTORS.glob("*.json")) == sorted(FILES)
    for name, content in built.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == generator().render(content), (
            f"docs/testvectors/{name} is stale: run scripts/make_testvectors.py"
        )


# -- encodings --------------------------------------------------------------------------------------
def test_canonical_encodings() -> None:
    untyped = generator().untyped
    for item in load("encoding.json")["canonical"]:
        value = untyped(item["value"])
        assert encode(value).hex() == item["hex"], item["name"]
        assert decode(b(item["hex"])) == value, item["name"]


def test_refused_encodings() -> None:
    for item in load("encoding.json")["refused"]:
        with pytest.raises(LedgerError) as refused:
            decode(b(item["hex"]))
        assert refused.value.code == item["refused_with"], item["name"]


# -- hashes, digests, genesis -------------------------------------------------------------------
def test_tagged_hashes_are_sha256_of_tag_zero_data() -> None:
    for item in load("hashes.json")["tagged_hashes"]:
        data = item["tag"].encode() + b"\x00" + b(item["data"])
        assert hashlib.sha256(data).hexdigest() == item["hash"]
        assert tagged_hash(item["tag"].encode(), b(item["data"])).hex() == item["hash"]


def test_the_certificate_digest_in_its_two_halves() -> None:
    vector = load("hashes.json")["certificate_digest"]
    cert = Certificate.from_json(vector["certificate"])
    salt = b(vector["identity_salt"])
    assert encode([salt, *cert.identities.to_wire()]).hex() == vector["identities_encoding"]
    commitment = cert.identities.commitment(salt)
    assert commitment.hex() == vector["commitment"]
    th = hashlib.sha256
    assert (
        th(b"kp/identities/1\x00" + b(vector["identities_encoding"])).hexdigest()
        == (vector["commitment"])
    )
    assert cert.facts.public_wire() == vector["public"]
    confidential = th(b"kp/certificate-confidential/1\x00" + b(vector["confidential_encoding"]))
    assert confidential.hexdigest() == vector["confidential"]
    assert confidential_hash(cert.facts, commitment).hex() == vector["confidential"]
    digest = th(b"kp/certificate/1\x00" + encode([vector["public"], confidential.digest()]))
    assert digest.hexdigest() == vector["digest"] == cert.digest(salt).hex()


def test_the_genesis_and_register_hashes() -> None:
    hashes = load("hashes.json")
    genesis = Genesis.from_json(load("genesis.json")["genesis"])
    assert encode(genesis.to_wire()).hex() == hashes["genesis"]["encoding"]
    assert genesis.hash.hex() == hashes["genesis"]["hash"] == load("genesis.json")["genesis_hash"]
    assert (
        hashlib.sha256(b"kp/genesis/1\x00" + b(hashes["genesis"]["encoding"])).hexdigest()
        == (hashes["genesis"]["hash"])
    )
    registry = Registry.from_genesis(genesis)
    assert encode(registry.to_wire()).hex() == hashes["register"]["encoding"]
    assert registry.hash.hex() == hashes["register"]["hash"]


# -- signatures and events ----------------------------------------------------------------------
def test_ed25519_verdicts() -> None:
    vectors = load("ed25519.json")["vectors"]
    assert {v["valid"] for v in vectors} == {True, False}
    for item in vectors:
        assert item["message"] == (item["tag"].encode() + b"\x00" + b(item["payload"])).hex()
        got = verify(
            b(item["public_key"]), item["tag"].encode(), b(item["payload"]), b(item["signature"])
        )
        assert got is item["valid"], item["name"]


def test_events_ids_and_signatures() -> None:
    events = load("events.json")["events"]
    assert len(events) == 10
    for item in events:
        event = Event.decode(b(item["signed_encoding"]))
        assert event.type == item["type"] and event.signer == item["signer"]
        assert encode(event.unsigned_wire).hex() == item["unsigned_encoding"]
        assert item["signed_message"] == (b"kp/event/1\x00" + b(item["unsigned_encoding"])).hex()
        key = SigningKey.from_seed(b(item["signer_seed"]))
        assert key.public_bytes.hex() == item["signer_public_key"]
        # Ed25519 is deterministic: the seed signs the same bytes again.
        assert key.sign(TAG_EVENT, b(item["unsigned_encoding"])).hex() == item["signature"]
        assert event.signature_valid(key.public_bytes)
        assert (
            encode([decode(b(item["unsigned_encoding"])), b(item["signature"])]).hex()
            == (item["signed_encoding"])
        )
        assert event.event_id.hex() == item["event_id"]
        assert hashlib.sha256(b"kp/event-id/1\x00" + event.encoded).hexdigest() == item["event_id"]
        assert encode([event.event_id, event.type, event.number]).hex() == item["merkle_leaf_data"]


def _private(code: str) -> EncryptionKey:
    raw = b(load("genesis.json")["keys"][code]["encryption_private_key"])
    return EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(raw))


def test_hpke_boxes_open_with_the_ledgers_code() -> None:
    boxes = load("events.json")["hpke"]
    assert {box["recipient"] for box in boxes} >= {"BE", "AE", "IN", "RU", "IN-monitor"}
    for box in boxes:
        key = _private(box["recipient"])
        assert key.public_bytes.hex() == box["recipient_public_key"]
        assert box["aad"] == "" and box["ciphertext"].startswith(box["enc"])
        plaintext = SUITE.decrypt(b(box["ciphertext"]), key.raw, info=b(box["info"]))
        assert plaintext.hex() == box["plaintext"]
    # And each issuance's sealed identities open for every party with open_sealed.
    for item in load("events.json")["events"]:
        if item["type"] != "certificate.issue":
            continue
        event = Event.decode(b(item["signed_encoding"]))
        sealed, number = event.body.sealed, event.body.facts.number
        assert len(sealed.recipients) >= 2
        for recipient in sealed.recipients:
            # open_sealed checks the box against the commitment the digest binds.
            identities, salt = open_sealed(sealed, number, recipient, _private(recipient))
            assert identities.commitment(salt) == sealed.commitment
            assert identities.exporter.name == f"Exporter of {number}"


# -- Merkle and state trees -----------------------------------------------------------------------
def test_merkle_roots_and_paths() -> None:
    for tree in load("merkle.json")["trees"]:
        leaves = [b(leaf) for leaf in tree["leaves"]]
        root = b(tree["root"])
        assert merkle_root(leaves) == root
        for index, path in enumerate(tree["paths"]):
            hashes = [b(p) for p in path]
            assert inclusion_proof(leaves, index) == hashes
            assert verify_inclusion(leaves[index], index, len(leaves), hashes, root)
            assert not verify_inclusion(leaves[index] + b"x", index, len(leaves), hashes, root)


def _doc_state_root(key: bytes, leaf: list[str] | None, siblings: list[str]) -> bytes:
    """docs/protocol.md section 7, in hashlib alone: the root a state proof leads to."""

    def th(tag: bytes, data: bytes) -> bytes:
        return hashlib.sha256(tag + b"\x00" + data).digest()

    node = bytes(32) if leaf is None else th(b"kp/state-leaf/1", b(leaf[0]) + b(leaf[1]))
    for d in range(len(siblings) - 1, -1, -1):
        bit = (key[d // 8] >> (7 - d % 8)) & 1
        sibling = b(siblings[d])
        node = th(b"kp/state-node/1", sibling + node if bit else node + sibling)
    return node


def _proof(raw: dict[str, Any]) -> StateProof:
    leaf = None if raw["leaf"] is None else (b(raw["leaf"][0]), b(raw["leaf"][1]))
    return StateProof(leaf, tuple(b(s) for s in raw["siblings"]))


def test_state_tree_presence_and_absence_proofs() -> None:
    vectors = load("state_tree.json")
    root = b(vectors["root"])
    nodes = MemoryNodeStore()
    tree = StateTree(nodes, bytes(32))
    entries = {state_key(e["number"]): b(e["value"]) for e in vectors["entries"]}
    built, writes = tree.update(entries)
    assert built == root
    nodes.apply(writes)
    tree = StateTree(nodes, root)
    for item in vectors["present"]:
        key = b(item["key"])
        assert key == hashlib.sha256(item["number"].encode()).digest() == state_key(item["number"])
        proof = _proof(item["proof"])
        assert tree.prove(key) == proof
        assert StateProof.from_wire(decode(b(item["proof"]["wire"]))) == proof
        assert proof.leaf == (key, b(item["value"]))
        assert verify_state_proof(root, key, b(item["value"]), proof)
        assert _doc_state_root(key, item["proof"]["leaf"], item["proof"]["siblings"]) == root
    for item in vectors["absent"]:
        key = b(item["key"])
        proof = _proof(item["proof"])
        assert tree.prove(key) == proof
        assert verify_state_proof(root, key, None, proof)
        assert (proof.leaf is None) == (item["ends_at"] == "an empty subtree")
        assert _doc_state_root(key, item["proof"]["leaf"], item["proof"]["siblings"]) == root
    for item in vectors["tampered"]:
        value = None if item["value"] is None else b(item["value"])
        assert not verify_state_proof(root, b(item["key"]), value, _proof(item["proof"])), item[
            "name"
        ]


def test_state_values_are_tagged_hashes_of_their_fields() -> None:
    number = "BE-2026-000001"
    value = state_value(number, "issued", bytes(32), bytes(32), 1)
    data = encode([number, "issued", bytes(32), bytes(32), 1])
    assert value == hashlib.sha256(b"kp/state-value/1\x00" + data).digest()


# -- public answers -------------------------------------------------------------------------------
def test_public_answers_and_their_verdicts() -> None:
    from datetime import date

    vectors = load("public_answers.json")
    genesis = Genesis.from_json(load("genesis.json")["genesis"])
    today = date.fromisoformat(vectors["today"])
    accepted = refused = 0
    for item in vectors["vectors"]:
        body, verdict = item["answer"], item["verdict"]
        try:
            checked = verify_certificate_proof(
                CertificateProof.from_base64(body["proof"]), genesis, item["number"]
            )
        except LedgerError as exc:
            assert not verdict["accept"], item["name"]
            assert (exc.code, exc.message) == (verdict["code"], verdict["reason"]), item["name"]
            refused += 1
            continue
        lies = public_answer_contradictions(item["http_status"], body, checked, today=today)
        if lies:
            assert not verdict["accept"], item["name"]
            assert verdict["code"] == "answer_contradicts_proof", item["name"]
            assert "; ".join(lies) == verdict["reason"], item["name"]
            refused += 1
            continue
        assert verdict["accept"], item["name"]
        assert checked.found == verdict["found"] and checked.status == verdict["status"]
        assert [[t, h, e.hex()] for t, h, e in checked.history] == verdict["history"]
        assert checked.head_height == verdict["head_height"]
        accepted += 1
    assert accepted >= 6 and refused >= 10
    histories = [len(v["answer"].get("history", [])) for v in vectors["vectors"]]
    assert 3 in histories  # a restricted exporter's certificate: issue, endorse, confirm
