"""The certificate state machine: what each event may do to the ledger, as a pure function."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime

from ledger.certificate import ShipmentFacts
from ledger.confidential import SealedIdentities
from ledger.errors import (
    AlreadyEndorsed,
    BackdatedTooFar,
    CertificateExpired,
    CertificateHistorical,
    CertificateNotFound,
    CertificateNumberTaken,
    CertificateVoided,
    CreatedInFuture,
    CreatedTooLongAgo,
    DigestMismatch,
    DuplicateEvent,
    EndorsementNotNeeded,
    EndorsementRequired,
    ExpiredOnIssue,
    HistoricalRecordExists,
    ImportAlreadyDecided,
    InvalidCertificate,
    IssuedInFuture,
    LedgerError,
    MalformedInput,
    MissingRecipient,
    NotYetExpired,
    ParticipantNotActive,
    ReplacementInvalid,
    SameParticipant,
    SignerNotAllowed,
    UnexpectedRecipient,
    ValidityTooLong,
    WrongChain,
    ZoneNotApproved,
)
from ledger.events import (
    CONFIRM_IMPORT,
    HISTORICAL,
    ISSUE,
    REJECT_IMPORT,
    VOID,
    ConfirmImportBody,
    Event,
    HistoricalBody,
    IssueBody,
    RejectImportBody,
    VoidBody,
)
from ledger.genesis import Parameters, Participant, Validator
from ledger.governance import (
    ENDORSE,
    GOVERNANCE_EVENTS,
    EndorseBody,
    ProposalRecord,
    check_governance,
    live_validators,
    monitored_participant,
)
from ledger.records import (
    IMPORT_CONFIRMED,
    IMPORT_REJECTED,
    ISSUED,
    VOIDED,
    CertificateRecord,
    HistoryEntry,
    StateReader,
)
from ledger.registry import EventContext, Registry
from ledger.signers import check_signer, signing_rule

#: The only transitions the ledger ever makes, by event type: from status -> to status.
TRANSITIONS: dict[str, tuple[tuple[str | None, str], ...]] = {
    ISSUE: ((None, ISSUED),),
    CONFIRM_IMPORT: ((ISSUED, IMPORT_CONFIRMED),),
    REJECT_IMPORT: ((ISSUED, IMPORT_REJECTED),),
    VOID: ((ISSUED, VOIDED),),
    ENDORSE: ((ISSUED, ISSUED),),  # the monitoring team vouches; the status stays
    # A historical record enters in the final status its first account names (HISTORICAL_STATUS);
    # the counterpart's account is recorded beside it and moves nothing. No event follows.
    HISTORICAL: (
        (None, ISSUED),
        (None, IMPORT_CONFIRMED),
        (None, IMPORT_REJECTED),
        (None, VOIDED),
        (ISSUED, ISSUED),
        (IMPORT_CONFIRMED, IMPORT_CONFIRMED),
        (IMPORT_REJECTED, IMPORT_REJECTED),
        (VOIDED, VOIDED),
    ),
}

#: The stored status of each final status a historical record may name (SPEC 10): `expired` is
#: an issued certificate past its expiry date, as for a live one (never stored as such).
HISTORICAL_STATUS = {
    "confirmed": IMPORT_CONFIRMED,
    "rejected": IMPORT_REJECTED,
    "voided": VOIDED,
    "expired": ISSUED,
}


def next_status(
    event_type: str, status: str | None, refuse: Callable[[str | None], LedgerError]
) -> str:
    """The status an event of `event_type` moves a certificate in `status` to (None: not on the
    ledger yet), as TRANSITIONS says; a move the table does not list raises `refuse(status)`."""
    for before, after in TRANSITIONS[event_type]:
        if before == status:
            return after
    raise refuse(status)


def _closed(voided: str, decided: str) -> Callable[[str | None], LedgerError]:
    """The refusal of a move out of a status no event leaves: voided, or its import decided
    (`decided` is completed with how: confirmed or rejected)."""

    def refuse(status: str | None) -> LedgerError:
        if status == VOIDED:
            return CertificateVoided(voided)
        return ImportAlreadyDecided(decided + (status or "").split("_")[-1])

    return refuse


def date_of(time_ms: int) -> date:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).date()


def apply_event(
    reader: StateReader,
    registry: Registry,
    event: Event,
    ctx: EventContext,
    *,
    verified: bool = False,
    attribute: bool = True,
) -> list[CertificateRecord]:
    """Check one event against the state and return the records it changes. Raises on any rule.

    Pure: nothing is changed until the caller stores what is returned. `verified` says the
    signature was already checked against the same registry (the mempool checks each once).
    """
    if event.chain_id != ctx.chain_id:
        raise WrongChain(f"the event is for chain {event.chain_id!r}, not {ctx.chain_id!r}")
    if reader.has_event(event.event_id):
        raise DuplicateEvent("this event is already on the ledger")
    check_signer(registry, event, verified=verified, reader=reader, attribute=attribute)
    check_event_time(registry.parameters, event, ctx)
    body = event.body
    if isinstance(body, IssueBody):
        return _issue(reader, registry, event, body, ctx)
    if isinstance(body, HistoricalBody):
        return [_historical(reader, registry, event, body, ctx)]
    if isinstance(body, ConfirmImportBody | RejectImportBody):
        return [_decide_import(reader, event, body, ctx)]
    if isinstance(body, VoidBody):
        return [_void(reader, event, body, ctx)]
    if isinstance(body, EndorseBody):
        return [_endorse(reader, event, body, ctx)]
    raise MalformedInput(f"{event.type} is not a certificate event")


def _entry(event: Event, ctx: EventContext) -> HistoryEntry:
    return HistoryEntry(event.event_id, event.type, ctx.time_ms, ctx.height)


def _issue(
    reader: StateReader, registry: Registry, event: Event, body: IssueBody, ctx: EventContext
) -> list[CertificateRecord]:
    facts = body.facts
    if event.signer != facts.exporting_participant:
        raise SignerNotAllowed(f"signed by {event.signer}; {signing_rule(reader, event)[1]}")
    exporting = registry.participant(facts.exporting_participant)
    importing = registry.participant(facts.importing_participant)
    if exporting.code == importing.code:
        raise SameParticipant("the exporting and importing participants must differ")
    for p in (exporting, importing):
        if not p.active:
            raise ParticipantNotActive(f"{p.code} is suspended and cannot take part in new trade")
    if facts.prefix not in exporting.countries:
        raise InvalidCertificate(
            "number",
            f"the prefix {facts.prefix} is not a country of {exporting.code} "
            f"({', '.join(exporting.countries)})",
        )
    days = (facts.expires_on - facts.issued_on).days
    limit = registry.parameters.max_validity_days
    if days > limit:
        raise ValidityTooLong(f"validity of {days} days exceeds the network's {limit} days")
    if registry.parameters.issuance_dates_apply(ctx.height):
        check_issuance_dates(facts, date_of(ctx.time_ms), registry.parameters.max_backdating_days)
    taken = reader.get_certificate(facts.number)
    status = next_status(
        ISSUE,
        None if taken is None else taken.status,
        lambda _: CertificateNumberTaken(
            f"certificate number {facts.number} is already on the ledger"
        ),
    )
    _check_recipients(registry, exporting.code, importing.code, body.sealed)
    if exporting.monitoring_key is not None:
        _check_restriction(exporting, facts)
    changed = []
    if facts.replaces is not None:
        old = reader.get_certificate(facts.replaces)
        if old is None:
            raise ReplacementInvalid(f"{facts.replaces} is not on the ledger")
        if old.facts.exporting_participant != exporting.code:
            raise ReplacementInvalid(f"{facts.replaces} was issued by another participant")
        if old.historical:
            raise ReplacementInvalid(
                f"{facts.replaces} is a historical record: it stands as it ended and is replaced "
                "by nothing"
            )
        if old.status != VOIDED:
            raise ReplacementInvalid(f"{facts.replaces} must be voided before it is replaced")
        if old.replaced_by is not None:
            raise ReplacementInvalid(f"{facts.replaces} was already replaced by {old.replaced_by}")
        changed.append(replace(old, replaced_by=facts.number))
    record = CertificateRecord(
        facts=facts,
        digest=body.digest,
        status=status,
        history=(_entry(event, ctx),),
        needs_endorsement=exporting.monitoring_key is not None,
    )
    return [record, *changed]


def _check_recipients(
    registry: Registry, exporting: str, importing: str, sealed: SealedIdentities
) -> None:
    needed = registry.recipient_names(exporting, importing)
    given = sealed.recipient_names
    missing = needed - given
    if missing:
        raise MissingRecipient(
            f"the identities must be sealed to {', '.join(sorted(missing))} as well"
        )
    # Exactly the boxes the register requires: any other would be stored by every node forever
    # (up to 16 of 8 KiB each) for a recipient no one can hold to account.
    unexpected = given - needed
    if unexpected:
        raise UnexpectedRecipient(
            f"the identities may be sealed only to {', '.join(sorted(needed))}; "
            f"not to {', '.join(sorted(unexpected))}"
        )


def _historical(
    reader: StateReader, registry: Registry, event: Event, body: HistoricalBody, ctx: EventContext
) -> CertificateRecord:
    """One participant's account of a certificate from before the network (docs/rules.md 2.6)."""
    facts = body.facts
    parties = (facts.exporting_participant, facts.importing_participant)
    if event.signer not in parties:
        raise SignerNotAllowed(
            f"signed by {event.signer}; only {parties[0]} (exporting) or {parties[1]} (importing) "
            f"may record its account of {facts.number}"
        )
    exporting, importing = (registry.participant(code) for code in parties)
    if exporting.code == importing.code:
        raise SameParticipant("the exporting and importing participants must differ")
    if facts.prefix not in exporting.countries:
        raise InvalidCertificate(
            "number",
            f"the prefix {facts.prefix} is not a country of {exporting.code} "
            f"({', '.join(exporting.countries)})",
        )
    earliest = registry.parameters.history_from_date()
    if facts.issued_on < earliest:
        raise BackdatedTooFar(
            f"{facts.number} is dated {facts.issued_on.isoformat()}, before "
            f"{earliest.isoformat()}, the earliest date this network takes history from "
            "(history_from)"
        )
    today = date_of(ctx.time_ms)
    if facts.issued_on > today:
        raise IssuedInFuture(
            f"{facts.number} is dated {facts.issued_on.isoformat()}, after {today.isoformat()}, "
            "the date of the block that records it: history is of the past"
        )
    if body.status == "expired" and facts.expires_on >= today:
        raise NotYetExpired(
            f"{facts.number} is said to have expired, but it expires on "
            f"{facts.expires_on.isoformat()}, not before {today.isoformat()}"
        )
    existing = reader.get_certificate(facts.number)
    if existing is not None:
        if not existing.historical:
            raise CertificateNumberTaken(
                f"certificate number {facts.number} is already on the ledger, issued on it"
            )
        if (existing.facts.exporting_participant, existing.facts.importing_participant) != parties:
            raise CertificateNumberTaken(
                f"certificate number {facts.number} is already on the ledger as a historical "
                f"record from {existing.facts.exporting_participant} to "
                f"{existing.facts.importing_participant}"
            )
        if event.signer in existing.accounts:
            raise HistoricalRecordExists(
                f"{event.signer}'s historical record of {facts.number} is already on the ledger"
            )
    _check_recipients(registry, exporting.code, importing.code, body.sealed)
    if existing is not None:
        # The counterpart's account: recorded beside the first, which stands (reconcile
        # compares them); it moves nothing.
        return replace(
            existing,
            history=(*existing.history, _entry(event, ctx)),
            accounts=(*existing.accounts, event.signer),
        )
    return CertificateRecord(
        facts=facts,
        digest=body.digest,
        status=HISTORICAL_STATUS[body.status],
        history=(_entry(event, ctx),),
        accounts=(event.signer,),
    )


def _utc(time_ms: int) -> str:
    try:
        return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):  # past year 9999: no calendar date to show
        return "a time beyond any calendar date"


def check_event_time(parameters: Parameters, event: Event, ctx: EventContext) -> None:
    """An event is recorded soon after it is signed: its created_ms is at most the clock drift
    ahead of the block's time, and at most max_event_age_ms behind it."""
    if not parameters.event_times_apply(ctx.height):
        return
    created, block = event.created_ms, ctx.time_ms
    drift, age = parameters.max_clock_drift_ms, parameters.max_event_age_ms
    if created > block + drift:
        raise CreatedInFuture(
            f"the event was created at {_utc(created)} (created_ms {created}), "
            f"{(created - block) / 1000:.1f} s after the time of the block that records it "
            f"({_utc(block)}); the network allows {drift / 1000:g} s of clock drift "
            "(max_clock_drift_ms): check the signing machine's clock"
        )
    if created < block - age:
        raise CreatedTooLongAgo(
            f"the event was created at {_utc(created)} (created_ms {created}), more than "
            f"{age / 3_600_000:g} hours before the time of the block that records it "
            f"({_utc(block)}; max_event_age_ms): sign it again"
        )


def check_issuance_dates(facts: ShipmentFacts, recorded_on: date, max_backdating_days: int) -> None:
    """SPEC 3: a certificate is recorded on or after its date of issue, at most
    `max_backdating_days` after it, and not once it has expired (older ones are history)."""
    issued, expires = facts.issued_on.isoformat(), facts.expires_on.isoformat()
    when = f"{recorded_on.isoformat()}, the date of the block that records it"
    if facts.issued_on > recorded_on:
        raise IssuedInFuture(
            f"{facts.number} is dated {issued}, after {when}: a certificate is issued on or "
            "before the day the ledger records it"
        )
    late = (recorded_on - facts.issued_on).days
    if late > max_backdating_days:
        raise BackdatedTooFar(
            f"{facts.number} is dated {issued}, {late} days before {when}; this network "
            f"records an issuance at most {max_backdating_days} days after its date of issue "
            "(max_backdating_days)"
        )
    if facts.expires_on < recorded_on:
        raise ExpiredOnIssue(
            f"{facts.number} expired on {expires}, before {when}: an expired certificate is "
            "not issued on the ledger (older certificates enter only as history)"
        )


def _check_restriction(exporting: Participant, facts: ShipmentFacts) -> None:
    if facts.zone is None or facts.zone not in exporting.restricted_zones:
        raise ZoneNotApproved(
            f"{exporting.code} is restricted: a certificate must name an approved origin zone "
            f"({', '.join(exporting.restricted_zones) or 'none approved'})"
        )


def _existing(reader: StateReader, number: str) -> CertificateRecord:
    """The certificate a confirmation, rejection, void or endorsement names: on the ledger, and
    issued on it (a historical record stands as its authority recorded it)."""
    record = reader.get_certificate(number)
    if record is None:
        raise CertificateNotFound(f"certificate {number} is not on the ledger")
    if record.historical:
        raise CertificateHistorical(
            f"{number} is a historical record, entered as it ended "
            f"({record.status.replace('_', ' ')}): no event follows it"
        )
    return record


def _decide_import(
    reader: StateReader,
    event: Event,
    body: ConfirmImportBody | RejectImportBody,
    ctx: EventContext,
) -> CertificateRecord:
    record = _existing(reader, body.number)
    verb = "confirm" if event.type == CONFIRM_IMPORT else "reject"
    if event.signer != record.facts.importing_participant:
        raise SignerNotAllowed(f"signed by {event.signer}; {signing_rule(reader, event)[1]}")
    status = next_status(
        event.type,
        record.status,
        _closed(
            f"{body.number} was voided by its issuer", f"the import of {body.number} was already "
        ),
    )
    if body.certificate_digest != record.digest:
        raise DigestMismatch(
            f"the {verb}ation names a different document than certificate {body.number} as issued"
        )
    if event.type == CONFIRM_IMPORT:
        if record.needs_endorsement and not record.endorsed:
            raise EndorsementRequired(
                f"{body.number} was issued by restricted participant "
                f"{record.facts.exporting_participant}: its monitoring team must endorse it "
                "before the import is confirmed"
            )
        if date_of(ctx.time_ms) > record.facts.expires_on:
            raise CertificateExpired(
                f"{body.number} expired on {record.facts.expires_on.isoformat()}; "
                "an expired certificate cannot be confirmed"
            )
        return replace(record, status=status, history=(*record.history, _entry(event, ctx)))
    assert isinstance(body, RejectImportBody)
    return replace(
        record,
        status=status,
        reason=body.reason,
        history=(*record.history, _entry(event, ctx)),
    )


def _void(
    reader: StateReader, event: Event, body: VoidBody, ctx: EventContext
) -> CertificateRecord:
    record = _existing(reader, body.number)
    if event.signer != record.facts.exporting_participant:
        raise SignerNotAllowed(f"signed by {event.signer}; {signing_rule(reader, event)[1]}")
    status = next_status(
        VOID,
        record.status,
        _closed(
            f"{body.number} is already voided",
            f"{body.number} cannot be voided: its import was already ",
        ),
    )
    return replace(
        record, status=status, reason=body.reason, history=(*record.history, _entry(event, ctx))
    )


def _endorse(
    reader: StateReader, event: Event, body: EndorseBody, ctx: EventContext
) -> CertificateRecord:
    record = _existing(reader, body.number)
    exporting = record.facts.exporting_participant
    if monitored_participant(event.signer) != exporting:
        raise SignerNotAllowed(f"signed by {event.signer}; {signing_rule(reader, event)[1]}")
    if not record.needs_endorsement:
        raise EndorsementNotNeeded(
            f"{body.number} was not issued under a restriction and needs no endorsement"
        )
    if record.endorsed:
        raise AlreadyEndorsed(f"{body.number} is already endorsed")
    status = next_status(
        ENDORSE,
        record.status,
        _closed(
            f"{body.number} was voided by its issuer", f"the import of {body.number} was already "
        ),
    )
    if body.certificate_digest != record.digest:
        raise DigestMismatch(
            f"the endorsement names a different document than certificate {body.number} as issued"
        )
    return replace(record, status=status, history=(*record.history, _entry(event, ctx)))


class Overlay:
    """The committed state plus the changes of a block being built or checked."""

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.certificates: dict[str, CertificateRecord] = {}
        self.events: dict[bytes, Event] = {}
        self.order: list[Event] = []
        #: Governance in this block: proposal records changed, keys rotated (effective next block).
        self.proposals: dict[bytes, ProposalRecord] = {}
        self.rotations: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        #: Validators whose readiness this block records: node key -> (participant, event id).
        self.ready: dict[bytes, tuple[str, bytes]] = {}
        #: Validators this block's evidence removes: node key -> event id.
        self.jailed: dict[bytes, bytes] = {}
        #: The block records the emergency recovery it is judged by (ledger/governance/recovery.py).
        self.recovered = False
        #: Participants whose authority signed an event of this block (they are not dormant).
        self.signers: set[str] = set()
        self._registry: Registry | None = None
        self._live: dict[tuple[bytes, int], frozenset[bytes] | None] = {}

    def get_certificate(self, number: str) -> CertificateRecord | None:
        found = self.certificates.get(number)
        return found if found is not None else self.base.get_certificate(number)

    def has_event(self, event_id: bytes) -> bool:
        return event_id in self.events or self.base.has_event(event_id)

    # -- the ProposalView of ledger.governance ---------------------------------------------
    def proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        found = self.proposals.get(proposal_id)
        if found is None and self._registry is not None:
            found = self._registry.proposals.get(proposal_id)
        return found

    def closed_proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        get = getattr(self.base, "get_proposal", None)  # a reader without history: None
        found: ProposalRecord | None = get(proposal_id) if get is not None else None
        return found

    def rotation(self, code: str, key_kind: str) -> bytes | None:
        found = self.rotations.get((code, key_kind))
        return found[0] if found is not None else None

    def rotated_keys(self) -> set[bytes]:
        return {key for key, _ in self.rotations.values()}

    def readied(self) -> set[bytes]:
        return set(self.ready)

    def live_validators(self, registry: Registry, height: int) -> frozenset[bytes] | None:
        slot = (registry.hash, height)
        if slot not in self._live:
            self._live[slot] = live_validators(self.base, registry.validators, height)
        return self._live[slot]

    def offenders(self) -> set[bytes]:
        return set(self.jailed)

    def last_active(self, code: str) -> int | None:
        if code in self.signers:
            return 2**62  # signs in this very block: awake
        found = getattr(self.base, "last_active", None)
        value: int | None = found(code) if found is not None else None
        return value

    def last_suspended(self, code: str) -> int | None:
        found = getattr(self.base, "last_suspended", None)
        value: int | None = found(code) if found is not None else None
        return value

    def events_before(self) -> int:
        return len(self.order)

    def validators_at(self, registry: Registry, height: int) -> tuple[Validator, ...]:
        at = getattr(self.base, "validators_at", None)
        store_height = getattr(self.base, "height", None)
        if at is None or store_height is None or height > store_height:
            return registry.validators  # the height being built (or a model without history)
        found: tuple[Validator, ...] = at(height)
        return found

    def header_hash(self, height: int) -> bytes | None:
        header = getattr(self.base, "header", None)
        found = header(height) if header is not None else None
        return found.hash if found is not None else None

    def apply(
        self,
        registry: Registry,
        event: Event,
        ctx: EventContext,
        *,
        verified: bool = False,
        attribute: bool = True,
    ) -> list[CertificateRecord]:
        """Apply one event, or raise and change nothing."""
        if event.type in GOVERNANCE_EVENTS:
            self._apply_governance(registry, event, ctx, verified, attribute)
            changed: list[CertificateRecord] = []
        else:
            changed = apply_event(
                self, registry, event, ctx, verified=verified, attribute=attribute
            )
        for record in changed:
            self.certificates[record.number] = record
        self.signers.add(event.signer)
        self.events[event.event_id] = event
        self.order.append(event)
        return changed

    def _apply_governance(
        self,
        registry: Registry,
        event: Event,
        ctx: EventContext,
        verified: bool,
        attribute: bool = True,
    ) -> None:
        if event.chain_id != ctx.chain_id:
            raise WrongChain(f"the event is for chain {event.chain_id!r}, not {ctx.chain_id!r}")
        if self.has_event(event.event_id):
            raise DuplicateEvent("this event is already on the ledger")
        check_signer(registry, event, verified=verified, reader=self, attribute=attribute)
        check_event_time(registry.parameters, event, ctx)
        self._registry = registry
        # Its signer is awake: its own proposal or vote counts it in the electorate.
        fresh = event.signer not in self.signers
        self.signers.add(event.signer)
        try:
            change = check_governance(self, registry, event, ctx)
        except LedgerError:
            if fresh:
                self.signers.discard(event.signer)
            raise
        if change.proposal is not None:
            self.proposals[change.proposal.proposal_id] = change.proposal
        if change.rotation is not None:
            code, key_kind, key = change.rotation
            self.rotations[(code, key_kind)] = (key, event.event_id)
        if change.ready is not None:
            code, node_key = change.ready
            self.ready[node_key] = (code, event.event_id)
        if change.offender is not None:
            self.jailed[change.offender] = event.event_id
        self.recovered = self.recovered or change.recovery

    def apply_all(
        self, registry: Registry, events: Iterable[Event], ctx: EventContext, *, verified: bool
    ) -> list[tuple[Event, LedgerError]]:
        """Apply what applies; return the events refused with why (used to build a block)."""
        refused = []
        for event in events:
            try:
                self.apply(registry, event, ctx, verified=verified)
            except LedgerError as exc:
                refused.append((event, exc))
        return refused
