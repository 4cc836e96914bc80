"""The governance routes: proposals with their tallies, and the participant register with its
history and proof."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ledger.errors import MalformedInput, UnknownProposal
from ledger.governance import MIN_YES, PROPOSAL_STATUSES, ProposalRecord, electorate
from ledger.proofs import build_register_proof
from node.http.appkeys import NODE
from node.http.responses import json_response
from node.service import LedgerNode


def votes_needed(node: LedgerNode, kind: str) -> int:
    """The fewest yes votes that would pass a proposal of `kind` now: yes * den > num *
    electorate (dormant members left out, docs/governance.md "Thresholds"), and the minimum."""
    registry = node.registry
    params = registry.parameters
    num, den = params.governance_threshold_num, params.governance_threshold_den
    count = electorate(
        registry, kind, int(time.time() * 1000), node.store.last_active, node.store.last_suspended
    )
    return max(num * count // den + 1, min(MIN_YES, (registry.active_count + 1) // 2))


def proposal_json(node: LedgerNode, record: ProposalRecord) -> dict[str, Any]:
    out = record.to_json(node.registry.active_count)
    if record.status in ("open", "passed"):
        out["tally"]["needed"] = votes_needed(node, record.kind)
    return out


async def list_proposals(request: web.Request) -> web.Response:
    node = request.app[NODE]
    status = request.query.get("status") or None
    if status is not None and status not in PROPOSAL_STATUSES:
        raise MalformedInput(f"status is one of {', '.join(PROPOSAL_STATUSES)}")
    records = [r for r in node.store.proposals() if status is None or r.status == status]
    return json_response(
        {
            "height": node.store.height,
            "proposals": [proposal_json(node, r) for r in records],
            "count": len(records),
        }
    )


async def show_proposal(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        proposal_id = bytes.fromhex(request.match_info["proposal_id"])
    except ValueError as exc:
        raise MalformedInput("a proposal id is 64 hex characters") from exc
    if len(proposal_id) != 32:
        raise MalformedInput("a proposal id is 64 hex characters")
    record = node.store.get_proposal(proposal_id)
    if record is None:
        raise UnknownProposal(f"no proposal {proposal_id.hex()[:16]} is on the ledger")
    out = proposal_json(node, record)
    out["height"] = node.store.height
    return json_response(out)


def register_json(node: LedgerNode) -> dict[str, Any]:
    """The register in force at the next height, and what changed at which height."""
    registry = node.registry
    validators = {v.node_key for v in registry.validators}
    participants = []
    for p in registry.participants.values():
        item = p.to_json()
        item["restricted"] = p.monitoring_key is not None
        item["validator"] = any(v.participant == p.code for v in registry.validators)
        if p.node_key is not None:
            item["validator_node"] = p.node_key in validators
        participants.append(item)
    history = [
        {"height": height, "changes": [c.to_json() for c in changes]}
        for height, changes in node.store.register_history()
    ]
    validator_history = [
        {"height": 1, "validators": [v.to_json() for v in node.genesis.validators]}
    ] + [
        {"height": height, "validators": [v.to_json() for v in validators_at]}
        for height, validators_at in node.store.validator_sets()
    ]
    waiting = [
        {
            "proposal_id": r.proposal_id.hex(),
            "kind": r.kind,
            "subject": r.subject,
            "status": r.status,
            "effective_height": r.effective_height,
        }
        for r in registry.proposals.values()
    ]
    # The register's encoding against the head and its commit certificate, with the validator
    # changes from genesis: an issuer checks the keys it seals to (docs/proofs.md, "The register").
    proof = None if node.store.head is None else build_register_proof(node.store, registry)
    return {
        "height": node.store.height,
        "in_force_from": node.store.height + 1,
        "participants": participants,
        "validators": [v.to_json() for v in registry.validators],
        # Added by governance, each waiting for its node's readiness attestation.
        "pending_validators": [v.to_json() for v in registry.pending_validators],
        "parameters": registry.parameters.to_json(),
        # Who else an exporter's certificates must be sealed to (a monitoring team, say).
        "extra_recipients": [
            {"exporting_participant": exp, "name": name, "encryption_key": key.hex()}
            for exp, name, key in registry.extra_recipients
        ],
        "proposals_open": waiting,
        "history": history,
        "validator_history": validator_history,
        "proof": None if proof is None else proof.to_base64(),
    }


async def participants(request: web.Request) -> web.Response:
    """The register in force (keys, status, restrictions, validators) and its history by height."""
    return json_response(register_json(request.app[NODE]))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/participants", participants)
    r.add_get("/v1/public/participants", participants)
    r.add_get("/v1/public/governance/proposals", list_proposals)
    r.add_get("/v1/public/governance/proposals/{proposal_id}", show_proposal)
