"""The refusals of governance: proposals, votes, keys, validators, restrictions, parameters and
emergency recovery (ledger/governance/). ledger.errors re-exports every one of them."""

from __future__ import annotations

from ledger.errors import LedgerError, MalformedInput


class EffectiveHeightOutOfRange(LedgerError):
    """A change takes effect at least 2 and at most MAX_LEAD blocks after its proposal."""

    code = "effective_height_out_of_range"
    http_status = 409


class ParticipantExists(LedgerError):
    code = "participant_exists"
    http_status = 409


class CountryTaken(LedgerError):
    """A country is issued for by one participant only."""

    code = "country_taken"
    http_status = 409


class NodeKeyInUse(LedgerError):
    code = "node_key_in_use"
    http_status = 409


class KeyInUse(LedgerError):
    """A key has one role of one participant: authority, encryption, node or monitoring."""

    code = "key_in_use"
    http_status = 409


class InvalidPublicKey(MalformedInput):
    """Not a usable public key: the identity, a small-order or off-curve point, all zeros."""

    code = "invalid_public_key"
    http_status = 400


class BadKeyProof(LedgerError):
    """The proof of possession of a new key does not verify under that key."""

    code = "bad_key_proof"
    http_status = 401


class AlreadySuspended(LedgerError):
    code = "already_suspended"
    http_status = 409


class NotSuspended(LedgerError):
    code = "not_suspended"
    http_status = 409


class AlreadyValidator(LedgerError):
    code = "already_validator"
    http_status = 409


class NotAValidator(LedgerError):
    code = "not_a_validator"
    http_status = 409


class LastValidator(LedgerError):
    """The network cannot remove its last validator: nobody would sign blocks."""

    code = "last_validator"
    http_status = 409


class TooFewValidators(LedgerError):
    """Governance never leaves fewer than MIN_VALIDATORS validators."""

    code = "too_few_validators"
    http_status = 409


class ValidatorsNotLive(LedgerError):
    """The change would leave fewer live validators than a quorum of the new set: the chain
    would halt. (A readiness attestation is refused for now; the node sends it again.)"""

    code = "validators_not_live"
    http_status = 409


class NotPendingValidator(LedgerError):
    """A readiness attestation for a node that governance did not add (or that is in the set)."""

    code = "not_a_pending_validator"
    http_status = 409


class StaleReadiness(LedgerError):
    """A readiness attestation must name a recent final block, as the chain has it."""

    code = "readiness_stale"
    http_status = 409


class InvalidEvidence(LedgerError):
    """Equivocation evidence that does not prove two conflicting signed messages of a validator
    of the set in force at their height."""

    code = "invalid_evidence"
    http_status = 400


class EvidenceNotNeeded(LedgerError):
    """The offender is no longer a validator (already removed, or evidence in this block)."""

    code = "evidence_not_needed"
    http_status = 409


class NotRestricted(LedgerError):
    code = "not_restricted"
    http_status = 409


class UnknownParameter(LedgerError):
    code = "unknown_parameter"
    http_status = 409


class ParameterOutOfRange(LedgerError):
    code = "parameter_out_of_range"
    http_status = 409


class UnknownProposal(LedgerError):
    code = "unknown_proposal"
    http_status = 404


class ProposalExpired(LedgerError):
    """Voting closed at effective_height - 2 without the proposal passing."""

    code = "proposal_expired"
    http_status = 409


class ProposalClosed(LedgerError):
    """The proposal passed and voting on it has closed (or it already took effect)."""

    code = "proposal_closed"
    http_status = 409


class AlreadyVoted(LedgerError):
    """One vote per participant and proposal; a second, different vote is refused."""

    code = "already_voted"
    http_status = 409


class KeyUnchanged(LedgerError):
    code = "key_unchanged"
    http_status = 409


class RotationPending(LedgerError):
    """One rotation of a kind of key per participant and block: the first takes effect next block."""

    code = "rotation_pending"
    http_status = 409


class EndorsementNotNeeded(LedgerError):
    code = "endorsement_not_needed"
    http_status = 409


class AlreadyEndorsed(LedgerError):
    code = "already_endorsed"
    http_status = 409


class RecoveryTooFewSignatures(LedgerError):
    """An emergency recovery needs the authority keys of more than 2/3 of the active participants."""

    code = "recovery_too_few_signatures"
    http_status = 409


class RecoveryDuplicateSigner(LedgerError):
    """One participant's authority key signs a recovery once."""

    code = "recovery_duplicate_signer"
    http_status = 409


class RecoveryHeadMismatch(LedgerError):
    """A recovery names another chain, height or last final block than this chain's head."""

    code = "recovery_head_mismatch"
    http_status = 409


class RecoveryInvalidValidators(LedgerError):
    """The validators a recovery names are not a set the register allows."""

    code = "recovery_invalid_validators"
    http_status = 409


class RecoveryNotNeeded(LedgerError):
    """A recovery event outside the block it recovers (not first, or not judged by its register)."""

    code = "recovery_not_needed"
    http_status = 409
