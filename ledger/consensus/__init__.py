"""Tendermint consensus (Buchman, Kwon, Milosevic 2018, Algorithm 1) as a pure state machine.

The package's parts, bottom up: `messages` (the wire messages, commit certificates and evidence),
`signer` (the signer state a validator persists), `votes` (what a round heard), `inputs` (the
application and the timeouts the core is given), `actions` (what the core returns) and `core`
(the state machine). Code that needs only a certificate or a message imports `messages`.
"""

from ledger.consensus.actions import (
    Action,
    Broadcast,
    Decide,
    Persist,
    ReportEvidence,
    ScheduleTimeout,
)
from ledger.consensus.core import (
    MAX_BUFFERED_HEIGHTS,
    MAX_BUFFERED_PER_VALIDATOR,
    MAX_FUTURE_ROUNDS_PER_VALIDATOR,
    MAX_PROPOSALS_PER_ROUND,
    ConsensusCore,
)
from ledger.consensus.inputs import SILENT_PROPOSER_DIVISOR, Application, TimeoutConfig
from ledger.consensus.messages import (
    MAX_HEIGHT,
    MAX_ROUND,
    MAX_VALIDATOR_INDEX,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    VALUE_BYTES,
    CommitCertificate,
    ConflictingProposals,
    EquivocationEvidence,
    Evidence,
    Message,
    Proposal,
    Step,
    Vote,
    VoteKind,
    message_from_wire,
    proposer_for,
    quorum_size,
    weak_quorum_size,
)
from ledger.consensus.signer import SignerState
from ledger.consensus.votes import RoundRecord, VoteSet

__all__ = [
    "MAX_BUFFERED_HEIGHTS",
    "MAX_BUFFERED_PER_VALIDATOR",
    "MAX_FUTURE_ROUNDS_PER_VALIDATOR",
    "MAX_HEIGHT",
    "MAX_PROPOSALS_PER_ROUND",
    "MAX_ROUND",
    "MAX_VALIDATOR_INDEX",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "SILENT_PROPOSER_DIVISOR",
    "VALUE_BYTES",
    "Action",
    "Application",
    "Broadcast",
    "CommitCertificate",
    "ConflictingProposals",
    "ConsensusCore",
    "Decide",
    "EquivocationEvidence",
    "Evidence",
    "Message",
    "Persist",
    "Proposal",
    "ReportEvidence",
    "RoundRecord",
    "ScheduleTimeout",
    "SignerState",
    "Step",
    "TimeoutConfig",
    "Vote",
    "VoteKind",
    "VoteSet",
    "message_from_wire",
    "proposer_for",
    "quorum_size",
    "weak_quorum_size",
]
