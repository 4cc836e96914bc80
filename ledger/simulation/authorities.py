"""The participants' authorities in a governance simulation: they propose and vote validator changes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger import authoring
from ledger.events import Event
from ledger.governance import (
    ADD_VALIDATOR,
    EXPIRED,
    FAILED,
    MIN_VALIDATORS,
    REMOVE_VALIDATOR,
    SUSPEND,
)
from ledger.registry import Registry
from ledger.simulation.config import CHAIN_ID
from ledger.simulation.ledger_node import BASE_TIME_MS, CODES, address, authority_key
from ledger.simulation.nodes import validator_keys

if TYPE_CHECKING:
    from ledger.simulation.governance import GovernanceSimulation

#: A proposal's effective height is this far above the head its proposer sees: room for the
#: proposal's block, the votes' block and the two heights before the change (voting closes at
#: E - 2), with rounds lost to the faults.
LEAD_HEIGHTS = 8


@dataclass
class Change:
    """One planned change of the validator set, and how far it has gone."""

    kind: str
    subject: str
    node_key: bytes
    proposal: Event | None = None
    #: Participants whose yes vote for the current proposal a node accepted.
    voted: set[str] = field(default_factory=set)
    #: The height from which it is in force on the chain, once it is.
    in_force_from: int | None = None
    attempts: int = 0
    last_refusal: str = ""

    def in_force(self, registry: Registry) -> bool:
        validators = {v.node_key for v in registry.validators}
        pending = {v.node_key for v in registry.pending_validators}
        if self.kind == ADD_VALIDATOR:  # in the set: its node attested readiness
            return self.node_key in validators
        if self.kind == REMOVE_VALIDATOR:
            return self.node_key not in validators | pending
        participant = registry.participants[self.subject]
        return not participant.active and self.node_key not in validators

    def args(self) -> list[object]:
        if self.kind == ADD_VALIDATOR:
            return [self.node_key, address(CODES.index(self.subject))]
        if self.kind == REMOVE_VALIDATOR:
            return [self.node_key]
        return []  # suspend

    def describe(self) -> str:
        state = "in force" if self.in_force_from is not None else "not in force"
        refusal = f", last refused: {self.last_refusal}" if self.last_refusal else ""
        return f"{self.kind} {self.subject} ({state}, {self.attempts} proposals{refusal})"


def plan_changes(
    rng: random.Random, validators: int, byzantine: int | None
) -> tuple[list[Change], int]:
    """The changes of one run: the newcomer's validator is added first (index `validators`, an
    observer until then), then, in an order the seed draws, an honest validator removed and the
    participant of another suspended, as many of those two as keep MIN_VALIDATORS even after
    the byzantine validator's evidence removes it. Returns the changes and the newcomer's index."""
    keys = validator_keys(validators + 1)
    newcomer = validators
    changes = [Change(ADD_VALIDATOR, CODES[newcomer], keys[newcomer].public_bytes)]
    honest = [i for i in range(validators) if i != byzantine]
    rng.shuffle(honest)
    room = validators + 1 - (byzantine is not None) - MIN_VALIDATORS
    kinds = [REMOVE_VALIDATOR, SUSPEND]
    rng.shuffle(kinds)
    for kind, target in zip(kinds[: max(0, room)], honest, strict=False):
        changes.append(Change(kind, CODES[target], keys[target].public_bytes))
    return changes, newcomer


class Authorities:
    """The KP authorities, as clients of the nodes: one change at a time, each proposed by one
    participant and voted yes by every other active one, each event given to a node that is up.

    They watch the chain (the register after each new final height) and try again, with a new
    effective height, when a proposal is refused, expires or fails: the real rules (the minimum
    size, a live quorum, readiness) decide when a change can happen.
    """

    def __init__(self, sim: GovernanceSimulation, rng: random.Random, changes: list[Change]):
        self.sim = sim
        self.rng = rng
        self.changes = changes
        self.seen_height = 0
        self.done_height: int | None = None

    @property
    def done(self) -> bool:
        return all(c.in_force_from is not None for c in self.changes)

    def describe(self) -> str:
        return "; ".join(c.describe() for c in self.changes)

    def on_final(self, height: int, registry: Registry) -> None:
        """A node applied block `height` (`registry` is then in force): act once per height."""
        if height <= self.seen_height:
            return
        self.seen_height = height
        for change in self.changes:
            if change.in_force_from is not None:
                continue
            if change.in_force(registry):
                change.in_force_from = height + 1
                self.sim.say(
                    f"GOVERNANCE: {change.kind} {change.subject} in force from {height + 1}"
                )
                continue
            self._pursue(change, height, registry)
            return  # one change at a time
        if self.done and self.done_height is None:
            # A few heights more under the final set show it finalises.
            self.done_height = height
            self.sim.target = max(self.sim.target, height + 3)

    def _pursue(self, change: Change, height: int, registry: Registry) -> None:
        if change.proposal is not None:
            pid = change.proposal.event_id
            record = registry.proposals.get(pid)
            if record is not None:
                self._vote(change, registry, height)
                return  # open, or passed and waiting for its height (then for readiness)
            closed = self.sim.closed_proposal(pid)
            if closed is None and height < change.proposal.body.effective_height:
                return  # not on the chain yet: its proposer's node is re-gossiping it
            if closed is not None and closed.status not in (EXPIRED, FAILED):
                return  # enacted: an added validator is pending until its node attests
            change.last_refusal = closed.status if closed is not None else "never recorded"
            change.proposal = None
        proposer = self._proposer(change, registry)
        if proposer is None:
            return
        event = authoring.propose(
            CHAIN_ID,
            proposer,
            change.kind,
            change.subject,
            change.args(),
            height + LEAD_HEIGHTS,
            authority_key(CODES.index(proposer)),
            created_ms=BASE_TIME_MS + self.sim.now,
        )
        change.attempts += 1
        refusal = self.sim.client_submit(event, self.rng, height)
        if refusal is None:
            change.proposal = event
            change.voted = {proposer}  # the proposer's own vote counts as yes
        else:
            change.last_refusal = refusal

    def _proposer(self, change: Change, registry: Registry) -> str | None:
        voters = self._voters(change, registry)
        return self.rng.choice(voters) if voters else None

    def _voters(self, change: Change, registry: Registry) -> list[str]:
        return sorted(
            code for code, p in registry.participants.items() if p.active and code != change.subject
        )

    def _vote(self, change: Change, registry: Registry, height: int) -> None:
        """Each other active participant votes yes, through a node that has the proposal."""
        assert change.proposal is not None
        for code in self._voters(change, registry):
            if code in change.voted:
                continue
            event = authoring.vote(
                CHAIN_ID,
                code,
                change.proposal.event_id,
                True,
                authority_key(CODES.index(code)),
                created_ms=BASE_TIME_MS + self.sim.now,
            )
            if self.sim.client_submit(event, self.rng, height) is None:
                change.voted.add(code)
