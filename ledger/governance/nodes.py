"""The events a node signs with its node key: a new validator's readiness and equivocation
evidence; and which validators the chain has seen live."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.errors import (
    AlreadyValidator,
    EvidenceNotNeeded,
    InvalidEvidence,
    NotPendingValidator,
    ParticipantNotActive,
    StaleReadiness,
    ValidatorsNotLive,
)
from ledger.events import Event
from ledger.genesis import Validator
from ledger.governance.bodies import EvidenceBody, ReadyBody, node_participant
from ledger.governance.changes import quorum
from ledger.governance.view import ProposalView
from ledger.registry import EventContext, Registry

#: A validator counts as live when it proposed one of the last LIVENESS_WINDOW * n final blocks
#: (the proposer schedule gives each live validator n of any n * n heights' round 0 turns).
LIVENESS_WINDOW = 2
#: A readiness attestation names a final block at most this many heights old: the node is
#: synced, not merely running.
READY_MAX_AGE = 100
#: Evidence of equivocation is taken for votes or proposals at most this many heights old.
EVIDENCE_MAX_AGE = 10_000


def check_ready(
    view: ProposalView, registry: Registry, event: Event, body: ReadyBody, ctx: EventContext
) -> tuple[str, bytes]:
    code = node_participant(event.signer) or event.signer
    participant = registry.participant(code)
    if not participant.active:
        raise ParticipantNotActive(f"{code} is suspended: its validators stay out of the set")
    key = body.node_key.hex()[:16]
    if any(v.node_key == body.node_key for v in registry.validators):
        raise AlreadyValidator(f"{key} is already a validator")
    if not any(
        v.participant == code and v.node_key == body.node_key for v in registry.pending_validators
    ):
        raise NotPendingValidator(f"{key} is no validator of {code} waiting to enter the set")
    if body.node_key in view.readied():
        raise AlreadyValidator(f"{key} enters the set with this block already")
    if not ctx.height - READY_MAX_AGE <= body.height < ctx.height:
        raise StaleReadiness(
            f"the attestation names block {body.height}; it must be one of the last "
            f"{READY_MAX_AGE} final blocks before {ctx.height}"
        )
    known = view.header_hash(body.height)
    if known is not None and known != body.block_hash:
        raise StaleReadiness(f"block {body.height} of this chain has another hash")
    live = view.live_validators(registry, ctx.height)
    if live is not None:
        joining = len(view.readied()) + 1
        size = len(registry.validators) + joining
        alive = sum(1 for v in registry.validators if v.node_key in live) + joining
        if alive < quorum(size):
            raise ValidatorsNotLive(
                f"with {key} the set would have {size} validators of which {alive} are live; "
                f"a block needs {quorum(size)}: it waits until more validators are live"
            )
    return (code, body.node_key)


def check_evidence(
    view: ProposalView, registry: Registry, body: EvidenceBody, ctx: EventContext
) -> bytes:
    height = body.height
    if not ctx.height - EVIDENCE_MAX_AGE <= height <= ctx.height:
        raise InvalidEvidence(
            f"the evidence is of height {height}; it is taken for heights "
            f"{max(1, ctx.height - EVIDENCE_MAX_AGE)} to {ctx.height}"
        )
    in_force = view.validators_at(registry, height)
    if not body.evidence.verify(ctx.chain_id, [v.node_key for v in in_force]):
        raise InvalidEvidence(
            "the two messages are not conflicting messages validly signed by one validator of "
            f"the set in force at height {height}"
        )
    offender = in_force[body.evidence.validator].node_key
    if offender in view.offenders() or not any(v.node_key == offender for v in registry.validators):
        raise EvidenceNotNeeded(f"{offender.hex()[:16]} is no longer a validator")
    return offender


def live_validators(
    reader: Any, validators: Sequence[Validator], height: int
) -> frozenset[bytes] | None:
    """Node keys of `validators` seen live before `height`: each proposed one of the last
    LIVENESS_WINDOW * n final blocks (its proposer index read in the set in force at that
    height), or has not been in the set for that long (at the chain's start, or just entered
    after attesting readiness): not judged yet. None when the reader keeps no headers (a model)."""
    header = getattr(reader, "header", None)
    validators_at = getattr(reader, "validators_at", None)
    if header is None or validators_at is None:
        return None
    window = range(height - LIVENESS_WINDOW * len(validators), height)
    wanted = {v.node_key for v in validators}
    seen: set[bytes] = set()
    judged = set(wanted) if window.start >= 1 else set()
    for h in reversed(window):
        if h < 1:
            break
        in_force = validators_at(h)
        judged &= {v.node_key for v in in_force}
        found = header(h)
        if found is not None and found.proposer < len(in_force):
            seen.add(in_force[found.proposer].node_key)
    return frozenset((seen & wanted) | (wanted - judged))
