"""Proposals, votes and key rotations: the rules of each, and when a proposal passes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ledger.certificate import is_participant_code
from ledger.errors import (
    AlreadyVoted,
    BadKeyProof,
    EffectiveHeightOutOfRange,
    KeyInUse,
    KeyUnchanged,
    MalformedInput,
    ParticipantNotActive,
    ProposalClosed,
    ProposalExpired,
    RotationPending,
    UnknownProposal,
)
from ledger.events import Event
from ledger.genesis import Parameters, Participant
from ledger.governance.bodies import EvidenceBody, ProposeBody, ReadyBody, RotateKeyBody, VoteBody
from ledger.governance.changes import (
    RegisterChange,
    apply_change,
    current_key,
    draft_of,
    key_owners,
    require_free,
)
from ledger.governance.nodes import check_evidence, check_ready
from ledger.governance.recovery import RecoveryBody, check_recovery_event
from ledger.governance.view import GovernanceChange, ProposalView
from ledger.keys import verify_possession
from ledger.registry import (
    ADMIT,
    AUTHORITY,
    ENCRYPTION,
    EXPIRED,
    MAX_LEAD,
    MIN_LEAD,
    NODE,
    OPEN,
    PASSED,
    REINSTATE,
    REPLACE_KEY,
    SUSPEND,
    EventContext,
    ProposalRecord,
    Registry,
)


def check_possession(
    chain_id: str, participant: str, role: str, public_key: bytes, proof: bytes
) -> None:
    """The new key's holder signed that it is `participant`'s `role` key on this chain."""
    if not verify_possession(public_key, role, chain_id, participant, proof):
        raise BadKeyProof(
            f"the proof of possession of {participant}'s new {role} key does not verify "
            f"under that key (it signs chain {chain_id!r}, {participant}, {role} and the key)"
        )


def passes(yes: int, active: int, parameters: Parameters) -> bool:
    """yes / active > num / den, in integers."""
    return yes * parameters.governance_threshold_den > parameters.governance_threshold_num * active


#: However many members are dormant, a proposal needs at least this many yes votes.
MIN_YES = 3
DAY_MS = 86_400_000


def electorate(
    registry: Registry,
    kind: str,
    time_ms: int,
    last_active: Callable[[str], int | None],
    last_suspended: Callable[[str], int | None],
) -> int:
    """How many members a threshold counts (docs/governance.md, "Thresholds"): the active
    participants that signed something in the last `governance_dormant_days` days (or entered
    or returned then), never fewer than 2/3 of the active ones; for a suspension, plus those
    suspended in that period (a coalition does not make each suspension easier than the last)."""
    active = [p.code for p in registry.participants.values() if p.active]
    days = registry.parameters.governance_dormant_days
    if days == 0:
        return len(active)
    since = time_ms - days * DAY_MS
    awake = 0
    for code in active:
        last = last_active(code)
        awake += last is None or last >= since
    count = max(awake, -(-2 * len(active) // 3))
    if kind == SUSPEND:
        for p in registry.participants.values():
            suspended = last_suspended(p.code) if not p.active else None
            count += suspended is not None and suspended >= since
    return count


def _tally(
    view: ProposalView, record: ProposalRecord, registry: Registry, ctx: EventContext
) -> ProposalRecord:
    if record.status != OPEN:
        return record
    count = electorate(registry, record.kind, ctx.time_ms, view.last_active, view.last_suspended)
    if record.yes >= min(MIN_YES, (registry.active_count + 1) // 2) and passes(
        record.yes, count, registry.parameters
    ):
        return replace(record, status=PASSED, passed_height=ctx.height)
    return record


def _active_signer(registry: Registry, event: Event, verb: str) -> Participant:
    participant = registry.participant(event.signer)
    if not participant.active:
        raise ParticipantNotActive(f"{event.signer} is suspended and cannot {verb}")
    return participant


def check_governance(
    view: ProposalView, registry: Registry, event: Event, ctx: EventContext
) -> GovernanceChange:
    """The rules of propose, vote, rotate_key and ready (the signature is already checked). Pure."""
    body = event.body
    if isinstance(body, ProposeBody):
        return GovernanceChange(proposal=_propose(view, registry, event, body, ctx))
    if isinstance(body, ReadyBody):
        return GovernanceChange(ready=check_ready(view, registry, event, body, ctx))
    if isinstance(body, EvidenceBody):
        return GovernanceChange(offender=check_evidence(view, registry, body, ctx))
    if isinstance(body, VoteBody):
        return GovernanceChange(proposal=_vote(view, registry, event, body, ctx))
    if isinstance(body, RotateKeyBody):
        return GovernanceChange(rotation=_rotate(view, registry, event, body, ctx))
    if isinstance(body, RecoveryBody):
        prev_hash = view.header_hash(ctx.height - 1)
        first = view.events_before() == 0
        check_recovery_event(registry, event, body, ctx.height, prev_hash, first)
        return GovernanceChange(recovery=True)
    raise MalformedInput(f"{event.type} is not a governance event")  # pragma: no cover


def _propose(
    view: ProposalView, registry: Registry, event: Event, body: ProposeBody, ctx: EventContext
) -> ProposalRecord:
    _active_signer(registry, event, "propose changes")
    lead = body.effective_height - ctx.height
    if not MIN_LEAD <= lead <= MAX_LEAD:
        raise EffectiveHeightOutOfRange(
            f"effective height {body.effective_height} must be {ctx.height + MIN_LEAD} to "
            f"{ctx.height + MAX_LEAD} for a proposal recorded at height {ctx.height}"
        )
    if body.kind == ADMIT:
        _, _, authority, encryption, node_key, _, *proofs = body.args
        check_possession(ctx.chain_id, body.subject, AUTHORITY, authority, proofs[0])
        check_possession(ctx.chain_id, body.subject, ENCRYPTION, encryption, proofs[1])
        if node_key:
            check_possession(ctx.chain_id, body.subject, NODE, node_key, proofs[2])
    elif body.kind == REPLACE_KEY:
        key_kind, key, proof = body.args
        check_possession(ctx.chain_id, body.subject, key_kind, key, proof)
    # Refused now if it could not take effect on today's register (it is checked again then).
    live = view.live_validators(registry, ctx.height)
    apply_change(draft_of(registry, live), body.kind, body.subject, body.args)
    record = ProposalRecord(
        proposal_id=event.event_id,
        kind=body.kind,
        subject=body.subject,
        args=body.args,
        effective_height=body.effective_height,
        proposer=event.signer,
        proposed_height=ctx.height,
        votes=((event.signer, True, ctx.height),),
    )
    return _tally(view, record, registry, ctx)


def _vote(
    view: ProposalView, registry: Registry, event: Event, body: VoteBody, ctx: EventContext
) -> ProposalRecord:
    _active_signer(registry, event, "vote")
    pid = body.proposal_id.hex()[:16]
    record = view.proposal(body.proposal_id)
    if record is None:
        closed = view.closed_proposal(body.proposal_id)
        if closed is None:
            raise UnknownProposal(f"no proposal {pid} is on the ledger")
        if closed.status == EXPIRED:
            raise ProposalExpired(f"proposal {pid} expired at height {closed.closed_height}")
        raise ProposalClosed(f"proposal {pid} is closed: it {closed.status}")
    if ctx.height > record.voting_closes:
        if record.status == OPEN:
            raise ProposalExpired(
                f"voting on proposal {pid} closed at height {record.voting_closes}"
            )
        raise ProposalClosed(f"proposal {pid} passed; voting closed at {record.voting_closes}")
    if record.voted(event.signer):
        raise AlreadyVoted(f"{event.signer} already voted on proposal {pid}")
    voted = replace(record, votes=(*record.votes, (event.signer, body.approve, ctx.height)))
    return _tally(view, voted, registry, ctx)


def _rotate(
    view: ProposalView, registry: Registry, event: Event, body: RotateKeyBody, ctx: EventContext
) -> tuple[str, str, bytes]:
    participant = registry.participant(event.signer)
    if body.public_key == current_key(participant, body.key_kind):
        raise KeyUnchanged(f"that is already {event.signer}'s {body.key_kind} key")
    if view.rotation(event.signer, body.key_kind) is not None:
        raise RotationPending(
            f"{event.signer}'s {body.key_kind} key is already being rotated in this block"
        )
    owners = key_owners(
        registry.participants,
        registry.validators,
        registry.extra_recipients,
        registry.pending_validators,
    )
    require_free(owners, body.public_key, body.key_kind, None)
    if body.public_key in view.rotated_keys():
        raise KeyInUse(f"another participant rotates to that {body.key_kind} key in this block")
    check_possession(ctx.chain_id, event.signer, body.key_kind, body.public_key, body.proof)
    return (event.signer, body.key_kind, body.public_key)


def activity(
    events: Sequence[Event],
    changes: Sequence[RegisterChange],
    height: int,
    time_ms: int,
    participants: Sequence[str],
) -> tuple[dict[str, int], dict[str, int]]:
    """What a block tells of members' activity: (code -> last active time, code -> suspension
    time). Active: signed one of its events, or entered (genesis's at block 1, `admit`) or
    returned (`reinstate`) with it. The store and the audit keep these alike."""
    active = dict.fromkeys(participants, time_ms) if height == 1 else {}
    for event in events:
        if is_participant_code(event.signer):
            active[event.signer] = time_ms
    for change in changes:
        if change.kind in (ADMIT, REINSTATE):
            active[change.subject] = time_ms
    suspended = {c.subject: time_ms for c in changes if c.kind == SUSPEND}
    return active, suspended
