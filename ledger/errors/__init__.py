"""Every way the ledger says no: one type per rule, each with a stable machine code."""

from __future__ import annotations


class LedgerError(Exception):
    """A refusal by the ledger. `code` is stable and machine-readable; the message is for a person."""

    code = "ledger_error"
    #: HTTP status the API layer maps this error to.
    http_status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedInput(LedgerError):
    """Bytes or fields that do not form a valid object."""

    code = "malformed"
    http_status = 400


class NonCanonicalEncoding(MalformedInput):
    """The bytes decode, but are not the one canonical encoding of what they hold."""

    code = "non_canonical_encoding"


class InvalidCertificate(MalformedInput):
    """A certificate field breaks a rule of SPEC section 3."""

    code = "invalid_certificate"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidCertificateNumber(MalformedInput):
    """A number given by hand that is not a certificate number even once trimmed and upper-cased."""

    code = "invalid_certificate_number"


class BadSignature(LedgerError):
    """A signature does not verify under the key it claims."""

    code = "bad_signature"
    http_status = 401


class SignerNotAllowed(LedgerError):
    """The signature is good, but the signer may not make this change."""

    code = "signer_not_allowed"
    http_status = 403


class SignedByAnotherParticipant(SignerNotAllowed):
    """The signature verifies under the authority key of a participant the rule does not allow."""

    code = "signed_by_another_participant"


class SignedWithNodeKey(SignerNotAllowed):
    """The signature verifies under a node key: events are signed with authority keys."""

    code = "signed_with_node_key"


class SignedWithMonitoringKey(SignerNotAllowed):
    """The signature verifies under a monitoring team's key, which only endorses certificates."""

    code = "signed_with_monitoring_key"


class TokenRequired(LedgerError):
    """A route that needs the node operator's bearer token was asked without one."""

    code = "token_required"
    http_status = 401


class WebhookNotFound(LedgerError):
    """No webhook of that id on this node (node/notify/outbox.py)."""

    code = "webhook_not_found"
    http_status = 404


class TokenRefused(LedgerError):
    """A bearer token that is not this node's api_token (wrong, another node's, or replaced)."""

    code = "token_refused"
    http_status = 401


class TokenRevoked(TokenRefused):
    """A bearer token the node issued and has since revoked (node/tokens.py)."""

    code = "token_revoked"


class TokenExpired(TokenRefused):
    """A bearer token the node issued whose expiry has passed."""

    code = "token_expired"


class TokenScope(LedgerError):
    """A valid bearer token whose scope does not open this route (a `read` token on an admin
    route)."""

    code = "token_scope"
    http_status = 403


class TokenExists(LedgerError):
    """A token of that name is in force already: revoke it first, or choose another name."""

    code = "token_exists"
    http_status = 409


class UnknownToken(LedgerError):
    """No token of that name was ever issued by this node."""

    code = "unknown_token"
    http_status = 404


class OfficerExists(LedgerError):
    """A portal account of that name exists already (disabled ones too: names are not reused,
    so that the activity log names one person)."""

    code = "officer_exists"
    http_status = 409


class UnknownOfficer(LedgerError):
    """No portal account of that name on this node."""

    code = "unknown_officer"
    http_status = 404


class WeakPassword(MalformedInput):
    """A portal password too short or too long."""

    code = "weak_password"


class PortalForbidden(LedgerError):
    """A portal officer's role does not allow this action (SPEC 7: neither offered nor
    accepted)."""

    code = "role_forbidden"
    http_status = 403


class CsrfRefused(LedgerError):
    """A portal form sent without its CSRF token, or with another session's."""

    code = "csrf_refused"
    http_status = 403


class WrongPassphrase(MalformedInput):
    """An encrypted private key given no passphrase, or one that does not open it."""

    code = "wrong_passphrase"


class UnknownParticipant(LedgerError):
    code = "unknown_participant"
    http_status = 409


class ParticipantNotActive(LedgerError):
    code = "participant_not_active"
    http_status = 409


class SameParticipant(LedgerError):
    code = "same_participant"
    http_status = 409


class CertificateNumberTaken(LedgerError):
    code = "certificate_number_taken"
    http_status = 409


class CertificateNotFound(LedgerError):
    code = "certificate_not_found"
    http_status = 404


class CertificateVoided(LedgerError):
    code = "certificate_voided"
    http_status = 409


class ImportAlreadyDecided(LedgerError):
    code = "import_already_decided"
    http_status = 409


class CertificateExpired(LedgerError):
    code = "certificate_expired"
    http_status = 409


class IssuedInFuture(LedgerError):
    """`issued_on` is after the date of the block that would record the issuance."""

    code = "issued_in_future"
    http_status = 409


class BackdatedTooFar(LedgerError):
    """`issued_on` is more than the network's `max_backdating_days` before the block's date."""

    code = "backdated_too_far"
    http_status = 409


class ExpiredOnIssue(LedgerError):
    """`expires_on` is before the date of the block that would record the issuance."""

    code = "expired_on_issue"
    http_status = 409


class CreatedInFuture(LedgerError):
    """An event's created_ms is ahead of the block's time by more than max_clock_drift_ms."""

    code = "created_in_future"
    http_status = 409


class CreatedTooLongAgo(LedgerError):
    """An event's created_ms is more than max_event_age_ms before the block's time."""

    code = "created_too_long_ago"
    http_status = 409


class ReplacementInvalid(LedgerError):
    code = "replacement_invalid"
    http_status = 409


class ValidityTooLong(LedgerError):
    code = "validity_too_long"
    http_status = 409


class DuplicateEvent(LedgerError):
    """The same event is already on the ledger (idempotent: callers treat it as success)."""

    code = "duplicate_event"
    http_status = 409


class StatisticsNotPublished(LedgerError):
    """The public statistics of a quarter that is not yet published (it is open, or too recent)."""

    code = "statistics_not_published"
    http_status = 404

    def __init__(self, message: str, publishes_on: str) -> None:
        super().__init__(message)
        #: The UTC date from which the first block publishes the quarter (ISO).
        self.publishes_on = publishes_on
        self.details = {"publishes_on": publishes_on}


class InvalidBlock(LedgerError):
    code = "invalid_block"
    http_status = 400


class InvalidCommitCertificate(LedgerError):
    code = "invalid_commit_certificate"
    http_status = 401


class InvalidProof(LedgerError):
    code = "invalid_proof"
    http_status = 400


class InvalidCredential(LedgerError):
    """A Verifiable Credential whose form, signature or facts do not check."""

    code = "invalid_credential"
    http_status = 400


class StoreError(LedgerError):
    code = "store_error"
    http_status = 500


class StoreLocked(StoreError):
    code = "store_locked"


class StoreCorrupt(StoreError):
    """The store holds bytes it cannot vouch for: a LevelDB checksum, a table, or a record that
    does not match the state tree it derives from. Nothing read from that place is served."""

    code = "store_corrupt"
    http_status = 503


class StoreWriteFailed(StoreError):
    """A write to the store failed (a full disk, an I/O error): the node cannot take new work."""

    code = "store_write_failed"
    http_status = 503


class ChainFault(LedgerError):
    """Found by chain verification: the stored chain is not what its own history implies."""

    code = "chain_fault"
    http_status = 500


class AuditWorkerLost(LedgerError):
    """One of the audit's worker processes crashed, was killed or failed: the audit has no verdict
    (it never passes without every check)."""

    code = "audit_worker_lost"
    http_status = 500


class BodyTooLarge(LedgerError):
    """A request body over the bound of its route (node.toml or the network parameters)."""

    code = "body_too_large"
    http_status = 413


class PeerUnauthenticated(LedgerError):
    """A /peer/ request without well-formed signing headers (docs/protocol.md section 9)."""

    code = "peer_unauthenticated"
    http_status = 401


class PeerNotAllowed(LedgerError):
    """A /peer/ request signed by a key that is no node key of the register."""

    code = "peer_not_allowed"
    http_status = 403


class PeerWrongRecipient(PeerUnauthenticated):
    """A /peer/ request signed for another node (replayed from one node to another)."""

    code = "peer_wrong_recipient"


class PeerStale(PeerUnauthenticated):
    """A /peer/ request whose time is too far from the receiver's clock."""

    code = "peer_stale"


class PeerClockStale(PeerStale):
    """A /peer/ request signed by a node of the register, refused for its time: that time is known
    (it keeps peer_stale's code; the details let the node tell the peer its clock is off)."""

    def __init__(self, node_key: bytes, time_ms: int) -> None:
        super().__init__("the request's time is more than 60 s from ours")
        self.node_key = node_key
        self.time_ms = time_ms


class PeerReplayed(PeerUnauthenticated):
    """A /peer/ request received before: the same sender and nonce."""

    code = "peer_replayed"


# -- Sealed identities (ledger/confidential.py) ----------------------------------------------------


class NotARecipient(LedgerError):
    """This participant is not a party to the certificate: its identities are not sealed to it."""

    code = "not_a_party"
    http_status = 403


class SealBroken(LedgerError):
    """A sealed box does not open, or opens to something its commitment does not match."""

    code = "seal_broken"
    http_status = 409


# -- Certificate events (ledger/state.py) ----------------------------------------------------------


class DigestMismatch(LedgerError):
    """A confirmation or rejection names a different certificate document than the one issued."""

    code = "digest_mismatch"
    http_status = 409


class MissingRecipient(LedgerError):
    """The identities are not sealed to every participant who must be able to read them."""

    code = "missing_recipient"
    http_status = 400


class UnexpectedRecipient(LedgerError):
    """The identities are sealed to someone the register does not name for this certificate."""

    code = "unexpected_recipient"
    http_status = 400


class ZoneNotApproved(LedgerError):
    """A restricted participant's certificate must name one of its approved origin zones."""

    code = "zone_not_approved"
    http_status = 409


class WrongChain(LedgerError):
    code = "wrong_chain"
    http_status = 400


class CertificateHistorical(LedgerError):
    """A historical record stands as its authority recorded it: no later event names it."""

    code = "certificate_historical"


class HistoricalRecordExists(LedgerError):
    """This participant's historical account of the number is already on the ledger."""

    code = "historical_record_exists"


class NotYetExpired(LedgerError):
    """A historical record says `expired`, but its expiry date is not past."""

    code = "not_yet_expired"


class EndorsementRequired(LedgerError):
    """A restricted participant's certificate is confirmed only after its monitoring team endorses it."""

    code = "endorsement_required"
    http_status = 409


# -- Admission by a node ---------------------------------------------------------------------------


class EventTooLarge(LedgerError):
    code = "event_too_large"
    http_status = 413


class BatchTooLarge(LedgerError):
    """More events in one POST /v1/events than a batch may hold (SPEC 10: 1,000)."""

    code = "batch_too_large"
    http_status = 413


class MempoolFull(LedgerError):
    """Back-pressure: the node holds as many pending events as it may; try again shortly."""

    code = "mempool_full"
    http_status = 503


class SnapshotMalformed(MalformedInput):
    code = "snapshot_malformed"  # no snapshot this kpledger reads (docs/snapshots.md)


class SnapshotDigestMismatch(MalformedInput):
    code = "snapshot_digest_mismatch"  # changed or damaged after it was written


class SnapshotOtherChain(LedgerError):
    code = "snapshot_other_chain"  # of another chain id or genesis than the node's


class SnapshotRefused(LedgerError):
    code = "snapshot_refused"  # its records fail the audit from genesis: not the chain's


class SnapshotTargetInUse(LedgerError):
    code = "snapshot_target_in_use"  # a restore never writes over a data directory


# The refusals of governance are a module of their own (one file would pass 700 lines), loaded
# after the types above that they build on; `from ledger.errors import X` names every refusal.
from ledger.errors.governance import (  # noqa: E402, I001
    AlreadyEndorsed as AlreadyEndorsed,
    AlreadySuspended as AlreadySuspended,
    AlreadyValidator as AlreadyValidator,
    AlreadyVoted as AlreadyVoted,
    BadKeyProof as BadKeyProof,
    CountryTaken as CountryTaken,
    EffectiveHeightOutOfRange as EffectiveHeightOutOfRange,
    EndorsementNotNeeded as EndorsementNotNeeded,
    EvidenceNotNeeded as EvidenceNotNeeded,
    InvalidEvidence as InvalidEvidence,
    InvalidPublicKey as InvalidPublicKey,
    KeyInUse as KeyInUse,
    KeyUnchanged as KeyUnchanged,
    LastValidator as LastValidator,
    NodeKeyInUse as NodeKeyInUse,
    NotAValidator as NotAValidator,
    NotPendingValidator as NotPendingValidator,
    NotRestricted as NotRestricted,
    NotSuspended as NotSuspended,
    ParameterOutOfRange as ParameterOutOfRange,
    ParticipantExists as ParticipantExists,
    ProposalClosed as ProposalClosed,
    ProposalExpired as ProposalExpired,
    RecoveryDuplicateSigner as RecoveryDuplicateSigner,
    RecoveryHeadMismatch as RecoveryHeadMismatch,
    RecoveryInvalidValidators as RecoveryInvalidValidators,
    RecoveryNotNeeded as RecoveryNotNeeded,
    RecoveryTooFewSignatures as RecoveryTooFewSignatures,
    RotationPending as RotationPending,
    StaleReadiness as StaleReadiness,
    TooFewValidators as TooFewValidators,
    UnknownParameter as UnknownParameter,
    UnknownProposal as UnknownProposal,
    ValidatorsNotLive as ValidatorsNotLive,
)
