"""Vectors of the state tree, the public answers with their proofs and verdicts, and genesis."""

from __future__ import annotations

import base64
import dataclasses
from datetime import date
from typing import Any

from ledger.consensus.messages import CommitCertificate
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.proofs import (
    CertificateProof,
    FinalHeader,
    build_certificate_proof,
    verify_certificate_proof,
)
from ledger.records import state_key, state_value
from ledger.statetree import (
    MemoryNodeStore,
    StateProof,
    StateTree,
    verify_state_proof,
)
from ledger.store import Store
from node.views import public_answer_contradictions, public_certificate_json
from scripts.testvectors.chain import DAY, MEMBERS, commit_bytes
from scripts.testvectors.crypto import hx, seed


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
