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


# -- Governance: proposals, votes, keys, validators (ledger/governance/) ---------------------------


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
