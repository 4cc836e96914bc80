"""Writing events as an authority does: sealing the parties and signing each kind of event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.certificate import Certificate
from ledger.confidential import new_salt, seal
from ledger.errors import MalformedInput
from ledger.events import (
    VOID_REASONS,
    ConfirmImportBody,
    Event,
    IssueBody,
    RejectImportBody,
    VoidBody,
    sign_event,
)
from ledger.governance import (
    MONITOR_PREFIX,
    EndorseBody,
    ProposeBody,
    RotateKeyBody,
    VoteBody,
    parse_args,
)
from ledger.keys import SigningKey
from ledger.state import Registry


@dataclass(frozen=True)
class Issuance:
    event: Event
    #: The identity salt: whoever holds it with the document can check the document's digest.
    salt: bytes
    digest: bytes


def issue(
    registry: Registry,
    chain_id: str,
    certificate: Certificate,
    key: SigningKey,
    *,
    created_ms: int,
    salt: bytes | None = None,
) -> Issuance:
    """Seal the parties to every recipient the network requires, then sign as the exporter."""
    facts = certificate.facts
    salt = salt if salt is not None else new_salt()
    recipients = registry.recipients_for(facts.exporting_participant, facts.importing_participant)
    sealed = seal(certificate.identities, salt, facts.number, recipients)
    event = sign_event(
        chain_id, facts.exporting_participant, IssueBody(facts, sealed), key, created_ms
    )
    return Issuance(event, salt, certificate.digest(salt))


def confirm_import(
    chain_id: str, importer: str, number: str, digest: bytes, key: SigningKey, *, created_ms: int
) -> Event:
    return sign_event(chain_id, importer, ConfirmImportBody(number, digest), key, created_ms)


def reject_import(
    chain_id: str,
    importer: str,
    number: str,
    digest: bytes,
    reason: str,
    key: SigningKey,
    *,
    created_ms: int,
) -> Event:
    if not reason.strip():
        raise MalformedInput("a rejection must say why")
    return sign_event(chain_id, importer, RejectImportBody(number, digest, reason), key, created_ms)


def void(
    chain_id: str, exporter: str, number: str, reason: str, key: SigningKey, *, created_ms: int
) -> Event:
    if reason not in VOID_REASONS:
        raise MalformedInput(f"a void reason is one of {', '.join(VOID_REASONS)}")
    return sign_event(chain_id, exporter, VoidBody(number, reason), key, created_ms)


# -- governance ---------------------------------------------------------------------------------
def propose(
    chain_id: str,
    proposer: str,
    kind: str,
    subject: str,
    args: Sequence[Any],
    effective_height: int,
    key: SigningKey,
    *,
    created_ms: int,
) -> Event:
    """A proposal to change the register; its event id is the proposal id. Args are checked here."""
    body = ProposeBody(kind, subject, parse_args(kind, list(args)), effective_height)
    return sign_event(chain_id, proposer, body, key, created_ms)


def vote(
    chain_id: str,
    voter: str,
    proposal_id: bytes,
    approve: bool,
    key: SigningKey,
    *,
    created_ms: int,
) -> Event:
    return sign_event(chain_id, voter, VoteBody(proposal_id, approve), key, created_ms)


def rotate_key(
    chain_id: str,
    participant: str,
    key_kind: str,
    new_public_key: bytes,
    current_key: SigningKey,
    *,
    created_ms: int,
) -> Event:
    """Signed with the current authority key; the new key is in force from the next block."""
    body = RotateKeyBody(key_kind, new_public_key)
    return sign_event(chain_id, participant, body, current_key, created_ms)


def endorse(
    chain_id: str,
    exporting: str,
    number: str,
    digest: bytes,
    monitoring_key: SigningKey,
    *,
    created_ms: int,
) -> Event:
    """The monitoring team of restricted participant `exporting` vouches for a certificate."""
    signer = MONITOR_PREFIX + exporting
    return sign_event(chain_id, signer, EndorseBody(number, digest), monitoring_key, created_ms)
