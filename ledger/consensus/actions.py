"""The actions the consensus core returns for the node to carry out, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ledger.consensus.messages import CommitCertificate, Evidence, Proposal, Step, Vote
from ledger.consensus.signer import SignerState


@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Proposal | Vote | CommitCertificate


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    step: Step
    height: int
    round: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class Decide:
    height: int
    value: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class Persist:
    """Write `state` durably before carrying out any later action of the same list."""

    state: SignerState


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    evidence: Evidence


Action: TypeAlias = Broadcast | ScheduleTimeout | Decide | Persist | ReportEvidence
