"""Writing events as an authority does: sealing the parties and signing each kind of event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.certificate import Certificate
from ledger.confidential import new_salt, seal
from ledger.consensus.messages import ConflictingProposals, EquivocationEvidence
from ledger.errors import MalformedInput
from ledger.events import (
    VOID_REASONS,
    ConfirmImportBody,
    Event,
    HistoricalBody,
    IssueBody,
    RejectImportBody,
    VoidBody,
    sign_event,
)
from ledger.governance import (
    AUTHORITY,
    ENCRYPTION,
    MONITOR_PREFIX,
    NODE,
    NODE_PREFIX,
    EndorseBody,
    EvidenceBody,
    ProposeBody,
    ReadyBody,
    RotateKeyBody,
    VoteBody,
    parse_args,
)
from ledger.keys import EncryptionKey, Signer, prove_possession
from ledger.registry import Registry


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
    key: Signer,
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


def historical(
    registry: Registry,
    chain_id: str,
    certificate: Certificate,
    status: str,
    signer: str,
    key: Signer,
    *,
    created_ms: int,
    salt: bytes | None = None,
) -> Issuance:
    """One participant's account of a certificate from before the network (`signer` is its
    exporting or importing participant), the parties sealed as for an issue."""
    facts = certificate.facts
    salt = salt if salt is not None else new_salt()
    recipients = registry.recipients_for(facts.exporting_participant, facts.importing_participant)
    sealed = seal(certificate.identities, salt, facts.number, recipients)
    event = sign_event(chain_id, signer, HistoricalBody(facts, sealed, status), key, created_ms)
    return Issuance(event, salt, certificate.digest(salt))


def confirm_import(
    chain_id: str, importer: str, number: str, digest: bytes, key: Signer, *, created_ms: int
) -> Event:
    return sign_event(chain_id, importer, ConfirmImportBody(number, digest), key, created_ms)


def reject_import(
    chain_id: str,
    importer: str,
    number: str,
    digest: bytes,
    reason: str,
    key: Signer,
    *,
    created_ms: int,
) -> Event:
    if not reason.strip():
        raise MalformedInput("a rejection must say why")
    return sign_event(chain_id, importer, RejectImportBody(number, digest, reason), key, created_ms)


def void(
    chain_id: str, exporter: str, number: str, reason: str, key: Signer, *, created_ms: int
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
    key: Signer,
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
    key: Signer,
    *,
    created_ms: int,
) -> Event:
    return sign_event(chain_id, voter, VoteBody(proposal_id, approve), key, created_ms)


def prove(key: Signer | EncryptionKey, chain_id: str, participant: str, role: str) -> bytes:
    """The proof that the holder of `key` has it as `participant`'s `role` key on `chain_id`."""
    if isinstance(key, EncryptionKey):
        return key.prove_possession(chain_id, participant, role)
    return prove_possession(key, chain_id, participant, role)


def admission(
    chain_id: str,
    participant: str,
    name: str,
    countries: Sequence[str],
    authority: Signer,
    encryption: EncryptionKey,
    node: Signer | None = None,
    address: str = "",
) -> list[Any]:
    """The args of an `admit` proposal, with the proofs of possession its keys' holder makes."""
    return [
        name,
        list(countries),
        authority.public_bytes,
        encryption.public_bytes,
        node.public_bytes if node is not None else b"",
        address if node is not None else "",
        prove(authority, chain_id, participant, AUTHORITY),
        prove(encryption, chain_id, participant, ENCRYPTION),
        prove(node, chain_id, participant, NODE) if node is not None else b"",
    ]


def rotate_key(
    chain_id: str,
    participant: str,
    key_kind: str,
    new_key: Signer | EncryptionKey | bytes,
    current_key: Signer,
    *,
    created_ms: int,
    proof: bytes | None = None,
) -> Event:
    """Signed with the current authority key; the new key is in force from the next block.

    `new_key` is the new private key (its proof of possession is made here), or its public key
    with the `proof` its holder made."""
    if isinstance(new_key, bytes):
        if proof is None:
            raise MalformedInput("a rotation to a public key needs its proof of possession")
        public = new_key
    else:
        public = new_key.public_bytes
        proof = proof if proof is not None else prove(new_key, chain_id, participant, key_kind)
    body = RotateKeyBody(key_kind, public, proof)
    return sign_event(chain_id, participant, body, current_key, created_ms)


def endorse(
    chain_id: str,
    exporting: str,
    number: str,
    digest: bytes,
    monitoring_key: Signer,
    *,
    created_ms: int,
) -> Event:
    """The monitoring team of restricted participant `exporting` vouches for a certificate."""
    signer = MONITOR_PREFIX + exporting
    return sign_event(chain_id, signer, EndorseBody(number, digest), monitoring_key, created_ms)


def ready(
    chain_id: str,
    participant: str,
    node_key: Signer,
    height: int,
    block_hash: bytes,
    *,
    created_ms: int,
) -> Event:
    """A node governance added to the validators attests that it runs and has final block
    `height` (its hash): signed with the node key; the node enters the set from the next block."""
    body = ReadyBody(node_key.public_bytes, height, block_hash)
    return sign_event(chain_id, NODE_PREFIX + participant, body, node_key, created_ms)


def evidence(
    chain_id: str,
    participant: str,
    node_key: Signer,
    proof: EquivocationEvidence | ConflictingProposals,
    *,
    created_ms: int,
) -> Event:
    """A node of `participant` reports a validator's equivocation, signed with its node key."""
    body = EvidenceBody(node_key.public_bytes, proof)
    return sign_event(chain_id, NODE_PREFIX + participant, body, node_key, created_ms)
