"""The emergency recovery document as files: the JSON the authorities sign in turn, and the copy a
stopped node is given to judge its next block by (docs/emergency.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ledger.errors import MalformedInput
from ledger.genesis import Validator
from ledger.governance import SignedRecovery

KIND = "kpledger-recovery/1"


def recovery_path(data_dir: Path) -> Path:
    """Where a node finds the recovery it was given: beside its data directory."""
    return data_dir.parent / "recovery.json"


def to_json(signed: SignedRecovery) -> dict[str, Any]:
    document = signed.document
    return {
        "kind": KIND,
        "document": {
            "chain_id": document.chain_id,
            "height": document.height,
            "prev_hash": document.prev_hash.hex(),
            "validators": [v.to_json() for v in document.validators],
            "parameters": dict(document.parameters),
            "reason": document.reason,
        },
        "signatures": [
            {"participant": code, "signature": signature.hex()}
            for code, signature in signed.signatures
        ],
    }


def _hex(what: str, raw: Any) -> bytes:
    try:
        return bytes.fromhex(raw)
    except (TypeError, ValueError) as exc:
        raise MalformedInput(f"{what}: must be hex") from exc


def from_json(raw: Any) -> SignedRecovery:
    """The signed recovery a file holds, checked as the chain would decode it."""
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise MalformedInput(f"not a recovery document (its kind must be {KIND!r})")
    doc, signatures = raw.get("document"), raw.get("signatures")
    if not isinstance(doc, dict) or not isinstance(signatures, list):
        raise MalformedInput("a recovery file holds a document and a list of signatures")
    parameters = doc.get("parameters", {})
    if not isinstance(parameters, dict):
        raise MalformedInput("recovery parameters: an object of name: value")
    validators = doc.get("validators")
    if not isinstance(validators, list):
        raise MalformedInput("recovery validators: a list")
    wire = [
        doc.get("chain_id"),
        doc.get("height"),
        _hex("prev_hash", doc.get("prev_hash")),
        [Validator.from_json(v).to_wire() for v in validators],
        [[name, parameters[name]] for name in sorted(parameters)],
        doc.get("reason", ""),
    ]
    pairs = []
    for item in signatures:
        if not isinstance(item, dict):
            raise MalformedInput("a recovery signature is {participant, signature}")
        pairs.append([item.get("participant"), _hex("signature", item.get("signature"))])
    return SignedRecovery.from_wire([wire, pairs])


def read(path: Path) -> SignedRecovery:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MalformedInput(f"{path}: not a readable JSON recovery document ({exc})") from exc
    return from_json(raw)


def write(path: Path, signed: SignedRecovery) -> None:
    """Written whole or not at all (a signer's copy is never left half written)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_json(signed), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
