"""The events this node signs itself: its readiness to join the validators, and the evidence of
a validator's equivocation."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from ledger import authoring
from ledger.consensus.messages import ConflictingProposals, EquivocationEvidence
from ledger.errors import LedgerError
from ledger.events import Event
from node.clock import now_ms
from node.service.admission import EventStatus
from node.service.view import ChainView

log = logging.getLogger("kpledger.node")

#: A node governance added to the validators attests its readiness this often until it is in
#: the set (an attestation is refused while too few validators are live: it tries again).
READY_RETRY_S = 2.0


class Submit(Protocol):
    """Admission, as a client's (node/service/admission.py)."""

    def submit(self, event: Event, *, from_peer: bool = False) -> EventStatus: ...


class NodeSignedEvents:
    def __init__(self, view: ChainView, participant: str, intake: Submit) -> None:
        self.view = view
        #: The participant this node belongs to (it names the events the node signs).
        self.participant = participant
        self.intake = intake
        self._ready_sent_at = 0.0

    def attest_ready(self) -> EventStatus | None:
        """As a validator waiting to enter the set: sign a readiness attestation naming our head
        (we are synced) and send it to the validators. None when there is nothing to attest."""
        view = self.view
        head = view.store.head
        if not view.is_pending_validator or head is None:
            return None
        if time.monotonic() - self._ready_sent_at < READY_RETRY_S:
            return None
        self._ready_sent_at = time.monotonic()
        pending = next(v for v in view.registry.pending_validators if v.node_key == view.own_key)
        event = authoring.ready(
            view.chain_id,
            pending.participant,
            view.node_key,
            head.height,
            head.hash,
            created_ms=now_ms(),
        )
        try:
            status = self.intake.submit(event)
        except LedgerError as exc:
            log.info("readiness not accepted yet", extra={"code": exc.code, "reason": exc.message})
            return None
        log.info("readiness attested", extra={"height": head.height})
        return status

    def report_evidence(self, evidence: EquivocationEvidence | ConflictingProposals) -> None:
        """Put a validator's equivocation on the chain (signed with our node key): every node
        checks it, and the offender leaves the set from the next block."""
        view = self.view
        event = authoring.evidence(
            view.chain_id, self.participant, view.node_key, evidence, created_ms=now_ms()
        )
        try:
            self.intake.submit(event)
        except LedgerError as exc:  # already removed, or another node's report got in first
            log.info("evidence not put on the chain", extra={"code": exc.code})
