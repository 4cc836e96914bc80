"""The participant register, proven: its proof against a final header across validator changes,
key rotations and governance, the docs/api recipe that checks it without our code, and the genesis
and register hashes recomputed from docs/protocol.md's layouts with plain msgpack and hashlib."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest

from ledger import authoring, errors
from ledger import governance as gov
from ledger.encoding import decode, encode
from ledger.genesis import Genesis
from ledger.keys import EncryptionKey, SigningKey
from ledger.proofs import RegisterProof, build_register_proof, verify_register_proof
from ledger.registry import Registry
from node.views import register_answer_contradictions
from tests.helpers import TestNetwork
from tests.ledger.governance.helpers import (  # noqa: F401 (fixtures)
    MONITOR,
    Chain,
    _restrict_args,
    _seed,
    admit_args,
    full_chain,
    newcomer,
)
from tests.node.http.test_api_doc import recipes  # noqa: F401 (fixture)


@pytest.fixture
def governed(full_chain: Chain) -> Chain:  # noqa: F811
    """BW admitted with a node and made a validator, RU's node removed, BE's authority key
    rotated (last: the chain's helpers sign as BE), IN restricted to two zones, and a suspension
    of RU still open (one vote)."""
    c = full_chain
    bw = newcomer()
    c.add_member(bw)
    address = "http://127.0.0.1:7704"
    c.enact(gov.ADMIT, "BW", admit_args(c, bw, node=True, address=address))
    c.add_validator(bw, address)
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    assert not c.commit([c.propose(gov.SUSPEND, "RU", [])]).refused
    new = SigningKey.from_seed(_seed("be-register"))
    rotate = authoring.rotate_key(
        c.net.chain_id, "BE", gov.AUTHORITY, new, c.net.key("BE"), created_ms=c.net.tick()
    )
    c.commit([rotate])
    c.until(c.height + 2)
    return c


def _answer(c: Chain) -> dict[str, Any]:
    """What GET /v1/public/participants carries that the recipe reads."""
    registry = c.store.registry()
    assert registry is not None
    return {
        "participants": [registry.participants[k].to_json() for k in sorted(registry.participants)],
        "proof": build_register_proof(c.store, registry).to_base64(),
    }


def test_the_register_proof_checks_across_changes_with_genesis_alone(governed: Chain) -> None:
    c = governed
    registry = c.store.registry()
    assert registry is not None
    proof = RegisterProof.from_base64(build_register_proof(c.store, registry).to_base64())
    assert len(proof.changes) == 2  # BW in, RU's node out
    checked = verify_register_proof(proof, c.net.genesis)
    assert checked.registry.hash == c.store.head.registry_hash  # type: ignore[union-attr]
    assert checked.head_height == c.height
    assert (
        checked.registry.participants["BE"].authority_key
        != c.net.genesis.participants[0].authority_key
    )
    assert "BW" in checked.registry.participants
    assert checked.registry.participants["IN"].monitoring_key == MONITOR.public_bytes
    assert [r.kind for r in checked.registry.proposals.values()] == [gov.SUSPEND]
    assert register_answer_contradictions(_answer(c), checked.registry) == []


def _forge_key(proof: RegisterProof, code: str) -> RegisterProof:
    registry = Registry.from_wire(decode(proof.register))
    participants = dict(registry.participants)
    participants[code] = dataclasses.replace(
        participants[code], encryption_key=EncryptionKey.generate().public_bytes
    )
    forged = dataclasses.replace(registry, participants=participants)
    return dataclasses.replace(proof, register=encode(forged.to_wire()))


def test_a_register_no_final_header_names_is_refused(governed: Chain) -> None:
    c = governed
    registry = c.store.registry()
    assert registry is not None
    proof = build_register_proof(c.store, registry)
    with pytest.raises(errors.InvalidProof, match="registry_hash"):
        verify_register_proof(_forge_key(proof, "AE"), c.net.genesis)
    for kept in (proof.changes[:1], proof.changes[1:], ()):
        with pytest.raises(errors.InvalidProof, match="validator"):
            verify_register_proof(dataclasses.replace(proof, changes=kept), c.net.genesis)
    cert = proof.head.commit
    unsigned = dataclasses.replace(proof.head, commit=dataclasses.replace(cert, signatures=()))
    with pytest.raises(errors.InvalidProof, match="not final"):
        verify_register_proof(dataclasses.replace(proof, head=unsigned), c.net.genesis)
    other = TestNetwork(chain_id="kp-other").genesis
    with pytest.raises(errors.InvalidProof):
        verify_register_proof(proof, other)
    # The JSON fields around a correct proof are compared with it.
    answer = _answer(c)
    answer["participants"][0] = {
        **answer["participants"][0],
        "encryption_key": EncryptionKey.generate().public_bytes.hex(),
    }
    lies = register_answer_contradictions(answer, registry)
    assert len(lies) == 1 and "encryption_key" in lies[0], lies


def test_the_api_recipe_checks_the_register_as_we_do(
    governed: Chain,
    recipes: dict[str, Any],  # noqa: F811
) -> None:
    c = governed
    registry = c.store.registry()
    assert registry is not None
    genesis = c.net.genesis.to_json()
    answer = _answer(c)
    assert recipes["recipients"](answer, genesis, "BE", "AE") == registry.recipients_for("BE", "AE")
    proof = RegisterProof.from_base64(answer["proof"])
    tampered = [
        {**answer, "proof": _forge_key(proof, "AE").to_base64()},
        {**answer, "proof": dataclasses.replace(proof, changes=proof.changes[1:]).to_base64()},
        {
            **answer,
            "participants": [
                {**p, "encryption_key": "11" * 32} if p["code"] == "AE" else p
                for p in answer["participants"]
            ],
        },
    ]
    for bad in tampered:
        with pytest.raises(AssertionError):
            recipes["recipients"](bad, genesis, "BE", "AE")


# -- docs/protocol.md section 6.1: genesis and register, recomputed with msgpack and hashlib -----
def _th(tag: bytes, data: bytes) -> bytes:
    return hashlib.sha256(tag + b"\x00" + data).digest()


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _parameter_rows() -> list[tuple[str, str, str]]:
    """docs/protocol.md 6.1's table: name, value when genesis.json leaves it out, left out at."""
    rows: list[tuple[str, str, str]] = re.findall(
        r"^\| \d+ \| `(\w+)` \| (\d+) \| (\d+|-) \|$", PROTOCOL.read_text(), flags=re.MULTILINE
    )
    assert len(rows) >= 13, "protocol.md lost its parameter table"
    return rows


def _parameter_table() -> list[tuple[str, int | None]]:
    return [(name, None if left == "-" else int(left)) for name, _, left in _parameter_rows()]


def _doc_parameters(raw: dict[str, int]) -> list[Any]:
    table = _parameter_table()
    assert sorted(raw) == sorted(name for name, _ in table), "a parameter the table lacks"
    return [[n, raw[n]] for n, left_out_at in table if left_out_at != raw[n]]


def _doc_participant(p: dict[str, Any]) -> list[Any]:
    return [
        p["code"],
        p["name"],
        p["countries"],
        bytes.fromhex(p["authority_key"]),
        bytes.fromhex(p["encryption_key"]),
        p["active"],
        p.get("restricted_zones", []),
        bytes.fromhex(p.get("monitoring_key", "")),
        bytes.fromhex(p.get("node_key", "")),
        p.get("address", ""),
    ]


def _doc_validator(v: dict[str, Any]) -> list[Any]:
    return [v["participant"], bytes.fromhex(v["node_key"]), v["address"]]


def _doc_extras(extras: list[dict[str, Any]]) -> list[Any]:
    return [
        [e["exporting_participant"], e["name"], bytes.fromhex(e["encryption_key"])] for e in extras
    ]


def doc_genesis_hash(genesis: dict[str, Any]) -> bytes:
    """From genesis.json as the doc lays it out."""
    wire = [
        genesis["chain_id"],
        genesis["genesis_time"],
        [_doc_participant(p) for p in genesis["participants"]],
        [_doc_validator(v) for v in genesis["validators"]],
        _doc_parameters(genesis["parameters"]),
        _doc_extras(genesis["extra_recipients"]),
    ]
    return _th(b"kp/genesis/1", _pack(wire))


def doc_register_hash(
    register: dict[str, Any], proposals: list[dict[str, Any]] | None = None
) -> bytes:
    """From GET /v1/public/participants (and the open proposals' records) as the doc lays it out."""
    records = sorted(
        (
            [
                bytes.fromhex(r["proposal_id"]),
                r["kind"],
                r["subject"],
                r["args"],
                r["effective_height"],
                r["proposer"],
                r["proposed_height"],
                [[v["participant"], v["approve"], v["height"]] for v in r["votes"]],
                r["status"],
                r.get("passed_height", 0),
                r.get("closed_height", 0),
                r.get("note", ""),
            ]
            for r in proposals or []
        ),
        key=lambda r: r[0],
    )
    wire = [
        [_doc_participant(p) for p in sorted(register["participants"], key=lambda p: p["code"])],
        [_doc_validator(v) for v in register["validators"]],
        _doc_parameters(register["parameters"]),
        _doc_extras(register["extra_recipients"]),
        records,
    ]
    if register["pending_validators"]:  # a sixth element only when some wait
        wire.append([_doc_validator(v) for v in register["pending_validators"]])
    return _th(b"kp/registry/1", _pack(wire))


def test_the_genesis_hash_is_reproducible_from_the_doc(governed: Chain) -> None:
    extra = TestNetwork(extra_recipients=[("BE", "monitor-BE")]).genesis
    for genesis in (governed.net.genesis, extra):
        raw = genesis.to_json()
        assert doc_genesis_hash(raw) == genesis.hash
        assert doc_genesis_hash(raw) == Genesis.from_json(raw).hash
    # A genesis.json that leaves every parameter out reads them as the table's third column.
    raw = governed.net.genesis.to_json()
    raw["parameters"] = {}
    absent = {name: int(value) for name, value, _ in _parameter_rows()}
    assert Genesis.from_json(raw).parameters.to_json() == absent
    raw["parameters"] = absent
    assert doc_genesis_hash(raw) == Genesis.from_json(raw).hash
    # Block 1 names it as its previous hash.
    header = governed.store.header(1)
    assert header is not None and header.prev_hash == doc_genesis_hash(
        governed.net.genesis.to_json()
    )


def test_the_register_hash_is_reproducible_from_the_doc(governed: Chain) -> None:
    c = governed
    registry = c.store.registry()
    assert registry is not None
    answer = {
        "participants": [p.to_json() for p in registry.participants.values()],
        "validators": [v.to_json() for v in registry.validators],
        "pending_validators": [v.to_json() for v in registry.pending_validators],
        "parameters": registry.parameters.to_json(),
        "extra_recipients": [],
    }
    # An open suspension's args are [] (docs/protocol.md section 3: its args as proposed).
    proposals = [r.to_json() for r in registry.proposals.values()]
    assert [p["kind"] for p in proposals] == [gov.SUSPEND]
    for p in proposals:
        p["args"] = []
    assert doc_register_hash(answer, proposals) == c.store.head.registry_hash  # type: ignore[union-attr]
    # Block 1's register is genesis's, participants sorted by code.
    fresh = TestNetwork(extra_recipients=[("BE", "monitor-BE")])
    raw = fresh.genesis.to_json()
    raw["pending_validators"] = []
    assert doc_register_hash(raw) == Registry.from_genesis(fresh.genesis).hash
