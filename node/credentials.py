"""Verifiable Credentials in the shell: the JSON-LD contexts shipped with the package, and a
credential checked against genesis (its signature, its facts, the ledger's proof, the issuer's key).

Nothing is ever fetched: a credential that names a context kpledger does not ship is refused.
The W3C VC 2.0 context is a copy of https://www.w3.org/ns/credentials/v2 (W3C Software and
Document License; taken from the @digitalbazaar/credentials-context package, the one the
third-party verifier in tests/interop uses); ours is ledger.credential.KPLEDGER_CONTEXT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ledger.credential import (
    KPLEDGER_CONTEXT,
    KPLEDGER_CONTEXT_URL,
    VC_V2_CONTEXT,
    CheckedCredential,
    verify_credential,
)
from ledger.errors import InvalidCredential
from ledger.genesis import Genesis
from ledger.proofs import (
    CertificateProof,
    RegisterProof,
    VerifiedCertificate,
    verify_certificate_proof,
    verify_register_proof,
)
from ledger.registry import Registry

#: Context URL -> the file under node/web/contexts/ that holds it.
SHIPPED_CONTEXTS = {
    VC_V2_CONTEXT: "credentials-v2.jsonld",
    KPLEDGER_CONTEXT_URL: "kpledger-v1.jsonld",
}


def kpledger_context_document() -> dict[str, Any]:
    """The document served at /contexts/kpledger-v1.jsonld (and shipped as kpledger-v1.jsonld)."""
    return {"@context": KPLEDGER_CONTEXT}


@cache
def _shipped(name: str) -> dict[str, Any]:
    text = resources.files("node").joinpath("web", "contexts", name).read_text(encoding="utf-8")
    document = json.loads(text)
    assert isinstance(document, dict)
    return document


def load_context(url: str) -> dict[str, Any]:
    """The JSON-LD document at `url`, from the package; InvalidCredential for any other URL."""
    name = SHIPPED_CONTEXTS.get(url)
    if name is None:
        raise InvalidCredential(
            f"the credential names the context {url}, which kpledger does not ship; nothing is "
            "fetched from the network"
        )
    return _shipped(name)


@dataclass(frozen=True)
class CheckedLedgerCredential:
    """A credential whose proof, facts, ledger evidence and issuer all check against genesis."""

    credential: CheckedCredential
    ledger: VerifiedCertificate
    exporting_participant: str
    #: The height of the register the issuer's key was found in (0: genesis).
    register_height: int


def check_credential(credential: Any, genesis: Genesis) -> CheckedLedgerCredential:
    """Everything `kpledger verify --vc` checks, in order; InvalidCredential or InvalidProof
    naming the first thing wrong.

    1. the Data Integrity proof (eddsa-rdfc-2022) under the issuer's did:key;
    2. the facts hash to the digest the credential states;
    3. the evidence's certificate proof checks against genesis, and the ledger recorded that
       very digest for that number;
    4. the issuer's key is the exporting participant's authority key in the register (the
       evidence's register proof, checked against genesis, or genesis itself).
    """
    checked = verify_credential(credential, load_context)
    evidence = checked.evidence
    if evidence.chain_id != genesis.chain_id:
        raise InvalidCredential(
            f"the credential's evidence is from chain {evidence.chain_id!r}, not this genesis's "
            f"{genesis.chain_id!r}"
        )
    number = str(checked.certificate["certificateNumber"])
    ledger = verify_certificate_proof(
        CertificateProof.from_base64(evidence.certificate_proof), genesis, number
    )
    if not ledger.found:
        raise InvalidCredential(f"the ledger evidence proves that {number} is not on the ledger")
    if ledger.digest != checked.digest:
        raise InvalidCredential(
            f"the ledger recorded another digest for {number}: the credential's facts are not "
            "the certificate the ledger holds"
        )
    exporting = ledger.exporting_participant or ""
    if evidence.register_proof is not None:
        verified = verify_register_proof(
            RegisterProof.from_base64(evidence.register_proof), genesis
        )
        registry, height = verified.registry, verified.head_height
    else:
        registry, height = Registry.from_genesis(genesis), 0
    participant = registry.participants.get(exporting)
    if participant is None or participant.authority_key != checked.issuer_key:
        raise InvalidCredential(
            f"the credential is not signed by {exporting}'s authority key as the register "
            f"lists it (register at height {height})"
        )
    return CheckedLedgerCredential(checked, ledger, exporting, height)
