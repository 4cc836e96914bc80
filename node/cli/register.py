"""The participant register a command signs or seals against, as its proof establishes it from
genesis: the only trust a command places in the node it talks to."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from ledger.errors import InvalidProof, LedgerError
from ledger.genesis import Genesis
from ledger.proofs import RegisterProof, VerifiedRegister, verify_register_proof
from ledger.registry import Registry
from node.cli.common import EXIT_USAGE, fail
from node.cli.signing import now_ms
from node.client import Answer, ConnectionFailed, NodeClient
from node.files import load_genesis
from node.views import register_answer_contradictions

#: A register proof whose head is older is refused: keys rotated since could be handed out.
REGISTER_MAX_AGE_HOURS = 24.0


def trusted_genesis(client: NodeClient, genesis_path: Path | None) -> Genesis:
    """--genesis as the trust anchor; without it, the genesis the node serves."""
    if genesis_path is not None:
        try:
            return load_genesis(genesis_path)
        except LedgerError as exc:
            fail(exc.message, EXIT_USAGE, code="usage")
    served = client.get("/v1/public/genesis")
    if not served.ok:
        _undescribed(served)
    try:
        return Genesis.from_json(served.body)
    except (KeyError, TypeError, ValueError, AttributeError, LedgerError) as exc:
        raise ConnectionFailed(f"{client.url} does not describe a kpledger network: {exc}") from exc


def proven_register(
    client: NodeClient, genesis: Genesis, max_age_hours: float = REGISTER_MAX_AGE_HOURS
) -> VerifiedRegister:
    """The register in force, as its proof establishes it against `genesis`; exit 2 (and nothing
    signed or sent) if the proof does not check, is stale, or the plain fields contradict it."""
    found = client.get("/v1/public/participants")
    if not found.ok:
        _undescribed(found)
    if not isinstance(found.body, dict) or not isinstance(found.body.get("participants"), list):
        raise ConnectionFailed(f"{client.url} does not describe a kpledger network")
    if found.body.get("proof") is None:
        # Before block 1 the register is genesis's own, which the caller trusts; a node claims
        # that only of a network made within the freshness limit (nodes make a block within
        # minutes), or it could hand out genesis keys rotated since.
        if found.body.get("height") == 0 and _genesis_age_s(genesis) <= max_age_hours * 3600:
            registry = Registry.from_genesis(genesis)
            _refuse_contradictions(found.body, registry, "genesis")
            return VerifiedRegister(registry, 0, now_ms())
        fail(
            "the node gave no proof of its participant register, so its keys cannot be "
            "checked; nothing was signed or sent",
            EXIT_USAGE,
            code="no_proof",
        )
    try:
        checked = verify_register_proof(RegisterProof.from_base64(found.body["proof"]), genesis)
    except InvalidProof as exc:
        fail(
            f"the node's participant register does not check: {exc.message}; nothing was "
            "signed or sent",
            EXIT_USAGE,
            code="invalid_register_proof",
        )
    _refuse_contradictions(found.body, checked.registry, "its own proof")
    age_s = (now_ms() - checked.head_time_ms) / 1000
    if age_s > max_age_hours * 3600:
        fail(
            f"the register proof's final header (height {checked.head_height}) is "
            f"{describe_age(age_s)} old, past the limit of {describe_age(max_age_hours * 3600)}: "
            "keys may have been rotated since; nothing was signed or sent",
            EXIT_USAGE,
            code="stale_proof",
            head_height=checked.head_height,
        )
    return checked


def _undescribed(answer: Answer) -> NoReturn:
    # A node's own refusal keeps its code (rate_limited, say); an answer of no kind is a failed
    # connection.
    code = answer.error if answer.error != "error" else "connection_failed"
    fail(f"the node did not describe its network: {answer.message}", EXIT_USAGE, code=code)


def _refuse_contradictions(body: dict[str, Any], registry: Registry, against: str) -> None:
    """Exit 2 if the plain fields of the node's register answer say other than `registry`."""
    lies = register_answer_contradictions(body, registry)
    if lies:
        fail(
            f"the node's participant register contradicts {against} ({'; '.join(lies)}): "
            "the node is lying or broken; nothing was signed or sent",
            EXIT_USAGE,
            code="register_contradicts_proof",
            contradictions=lies,
        )


def _genesis_age_s(genesis: Genesis) -> float:
    """Seconds since genesis_time (infinite when it is not an ISO 8601 time with a zone)."""
    try:
        made = datetime.fromisoformat(genesis.genesis_time)
    except ValueError:
        return float("inf")
    if made.tzinfo is None:
        return float("inf")
    return time.time() - made.timestamp()


def network_of(client: NodeClient, genesis_path: Path | None = None) -> tuple[str, Registry]:
    """The chain id and the participant register in force, checked against its proof."""
    genesis = trusted_genesis(client, genesis_path)
    return genesis.chain_id, proven_register(client, genesis).registry


def describe_age(seconds: float) -> str:
    """An age as a person reads it: seconds, minutes, hours or days, never "0.0 hours"."""
    seconds = max(seconds, 0.0)
    if seconds < 90:
        whole = round(seconds)
        return f"{whole} second{'s' if whole != 1 else ''}"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    if seconds < 48 * 3600:
        hours = seconds / 3600
        return f"{hours:.1f} hours" if hours < 10 else f"{round(hours)} hours"
    return f"{seconds / 86400:.1f} days"
