"""Who signed an event, and whether the register lets that key sign it: the signature checks of
every event, and a refusal that names who signed instead."""

from __future__ import annotations

from ledger.errors import (
    BadSignature,
    LedgerError,
    SignedByAnotherParticipant,
    SignedWithMonitoringKey,
    SignedWithNodeKey,
    SignerNotAllowed,
)
from ledger.events import ConfirmImportBody, Event, IssueBody, RejectImportBody, VoidBody
from ledger.genesis import Participant
from ledger.governance import (
    ENDORSE,
    MONITOR_PREFIX,
    NODE_EVENTS,
    NODE_PREFIX,
    EndorseBody,
    EvidenceBody,
    ReadyBody,
    RecoveryBody,
    monitored_participant,
    node_participant,
)
from ledger.records import StateReader
from ledger.registry import Registry

AUTHORITY_KEY = "authority"
NODE_KEY = "node"
MONITORING_KEY = "monitoring"


def key_holder(registry: Registry, event: Event) -> tuple[str, str] | None:
    """Whose registered key made the event's signature, as (participant, key kind), or None.

    Only asked when the signature does not verify under the key of the signer it names, to say
    who signed instead: authority, monitoring and node keys of the register, validators' too.
    """
    tried: set[bytes] = set()
    keys: list[tuple[str, str, bytes | None]] = []
    for code in sorted(registry.participants):
        p = registry.participants[code]
        keys += [(code, AUTHORITY_KEY, p.authority_key), (code, MONITORING_KEY, p.monitoring_key)]
        keys.append((code, NODE_KEY, p.node_key))
    keys += [(v.participant, NODE_KEY, v.node_key) for v in registry.validators]
    for code, kind, key in keys:
        if key is None or key in tried:
            continue
        tried.add(key)
        if event.signature_valid(key):
            return code, kind
    return None


def signing_rule(reader: StateReader | None, event: Event) -> tuple[str, str]:
    """Who may sign this event, and the rule that says so in a person's words."""
    body = event.body
    number = getattr(body, "number", "")
    if isinstance(body, IssueBody):
        who = body.facts.exporting_participant
        return who, f"only {who}, the exporting authority, may issue {number}"
    record = reader.get_certificate(number) if reader is not None and number else None
    if record is not None:
        exporting, importing = (
            record.facts.exporting_participant,
            record.facts.importing_participant,
        )
        if isinstance(body, VoidBody):
            return exporting, f"only {exporting}, the exporting authority, may void {number}"
        if isinstance(body, ConfirmImportBody):
            return importing, f"only {importing}, the importing authority, may confirm {number}"
        if isinstance(body, RejectImportBody):
            return importing, f"only {importing}, the importing authority, may reject {number}"
        if isinstance(body, EndorseBody):
            team = f"{MONITOR_PREFIX}{exporting}"
            return team, f"only the monitoring team of {exporting} ({team}) may endorse {number}"
    signer = event.signer
    return signer, f"only {signer}'s key signs an event that names {signer} as its signer"


def _wrong_key(
    registry: Registry, reader: StateReader | None, event: Event, which: str
) -> LedgerError:
    """The refusal of a signature that does not verify under the named signer's key: who signed
    it, if a registered key did, and who may sign; else a bad signature."""
    holder = key_holder(registry, event)
    if holder is None:
        return BadSignature(
            f"the signature does not verify under {which}, nor under any other key the "
            "participant register lists"
        )
    owner, kind = holder
    who, rule = signing_rule(reader, event)
    label = {
        AUTHORITY_KEY: f"{owner}'s authority key",
        MONITORING_KEY: f"the monitoring key of {owner}'s team",
        NODE_KEY: f"{owner}'s node key",
    }[kind]
    signs_as = {AUTHORITY_KEY: owner, MONITORING_KEY: f"{MONITOR_PREFIX}{owner}"}.get(kind)
    if signs_as == who:
        return SignedByAnotherParticipant(
            f"signed by {label}, but the event names {event.signer} as its signer: an event "
            f"names the participant whose key signs it ({signs_as})"
        )
    if kind == NODE_KEY:
        if node_participant(event.signer) is not None:  # a node's own event: its key only
            return SignedWithNodeKey(f"signed with {label}, not {which}; {rule}")
        own = ", not its authority key" if owner == who else ""
        return SignedWithNodeKey(
            f"signed with {label}{own}: a node key signs only node-to-node messages; {rule}, "
            "with its authority key"
        )
    if kind == MONITORING_KEY:
        return SignedWithMonitoringKey(
            f"signed with {label}, which only endorses that participant's certificates; {rule}"
        )
    return SignedByAnotherParticipant(f"signed by {label}; {rule}")


def check_signer(
    registry: Registry,
    event: Event,
    *,
    verified: bool,
    reader: StateReader | None = None,
    attribute: bool = True,
) -> Participant:
    """The participant the event speaks for, its signature checked under the registered key.

    `reader` lets a refusal name who may sign (the parties of the certificate concerned).
    `attribute` lets a bad signature be tried under every other registered key to say whose it
    is: one verification per key, which a node grants from a budget (a flood of bad signatures
    must not cost it a register's worth of verifications each).
    """
    monitored = monitored_participant(event.signer)
    node_of = node_participant(event.signer)
    if node_of is not None:
        # A node signs with its node key: its readiness (the rules check that the key is one of
        # the participant's validators waiting to enter) or evidence (a node of the participant).
        participant = registry.participant(node_of)
        body = event.body
        if event.type not in NODE_EVENTS or not isinstance(
            body, ReadyBody | EvidenceBody | RecoveryBody
        ):
            raise SignerNotAllowed(
                f"a node key ({NODE_PREFIX}<CODE>) only attests readiness, reports evidence or "
                "records a recovery"
            )
        if isinstance(body, EvidenceBody | RecoveryBody) and body.node_key not in {
            participant.node_key,
            *(
                v.node_key
                for v in (*registry.validators, *registry.pending_validators)
                if v.participant == node_of
            ),
        }:
            raise SignerNotAllowed(f"{body.node_key.hex()[:16]} is no node of {node_of}")
        key, which = body.node_key, "the node key it names"
    elif monitored is not None:
        participant = registry.participant(monitored)
        if participant.monitoring_key is None:
            raise SignerNotAllowed(
                f"{monitored} is not restricted: no monitoring team signs for it"
            )
        if event.type != ENDORSE:
            raise SignerNotAllowed("a monitoring team's key only endorses certificates")
        key, which = participant.monitoring_key, f"{monitored}'s registered monitoring key"
    else:
        participant = registry.participant(event.signer)
        if event.type == ENDORSE:
            raise SignerNotAllowed(
                f"only the monitoring team (signer {MONITOR_PREFIX}<CODE>) endorses certificates"
            )
        if event.type in NODE_EVENTS:
            raise SignerNotAllowed(f"only a node (signer {NODE_PREFIX}<CODE>) signs {event.type}")
        key, which = participant.authority_key, f"{event.signer}'s registered authority key"
    if not verified and not event.signature_valid(key):
        if not attribute:
            raise BadSignature(f"the signature does not verify under {which}")
        raise _wrong_key(registry, reader, event, which)
    return participant
