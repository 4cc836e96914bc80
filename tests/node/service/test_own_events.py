"""The events a node signs itself, in process: its readiness while governance has it waiting to
join the validators, and the evidence of an equivocation."""

from __future__ import annotations

import dataclasses

from ledger import governance as gov
from ledger.consensus import EquivocationEvidence, Vote, VoteKind
from ledger.errors import LedgerError
from ledger.events import Event
from node.service.admission import EventStatus
from node.service.own_events import NodeSignedEvents
from tests.node.service.conftest import Net


class AlreadyReported(LedgerError):
    code = "already_reported"


class Intake:
    """Stands in for admission: keeps what it is given, or refuses with `refusal`."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.refusal: LedgerError | None = None

    def submit(self, event: Event, *, from_peer: bool = False) -> EventStatus:
        if self.refusal is not None:
            raise self.refusal
        self.events.append(event)
        return EventStatus("pending")


def test_a_validator_waiting_to_join_attests_its_head_at_most_every_retry_interval(
    net: Net,
) -> None:
    view = net.view()
    intake = Intake()
    own = NodeSignedEvents(view, "BE", intake)
    assert own.attest_ready() is None  # a validator already, and no block yet
    net.commit(view, [])
    registry = view.registry
    be = registry.validators[0]
    assert be.node_key == view.own_key
    view.registry = dataclasses.replace(
        registry, validators=registry.validators[1:], pending_validators=(be,)
    )
    status = own.attest_ready()
    assert status is not None and status.status == "pending"
    (event,) = intake.events
    head = view.store.head
    assert head is not None
    assert event.type == gov.READY and event.signer == "node/BE"
    assert (event.body.height, event.body.block_hash) == (1, head.hash)
    assert own.attest_ready() is None and len(intake.events) == 1  # not again at once


def test_equivocation_evidence_goes_on_the_chain_signed_with_the_node_key(net: Net) -> None:
    view = net.view()
    intake = Intake()
    own = NodeSignedEvents(view, "BE", intake)
    key = net.node_keys[2]
    votes = [
        Vote.create(key, view.chain_id, VoteKind.PREVOTE, 1, 0, value, 2)
        for value in (b"\x01" * 32, b"\x02" * 32)
    ]
    evidence = EquivocationEvidence(votes[0], votes[1])
    own.report_evidence(evidence)
    (event,) = intake.events
    assert event.type == gov.EVIDENCE and event.signer == "node/BE"
    assert event.body.evidence == evidence
    # Refused (another node's report got in first): said in the log, not raised.
    intake.refusal = AlreadyReported("another node's report got in first")
    own.report_evidence(evidence)
    assert len(intake.events) == 1
