"""A KP certificate as a W3C Verifiable Credential 2.0, secured by a Data Integrity proof.

The credential states the certificate's facts in the KPCS's own terms, is signed by the issuing
authority's Ed25519 key (`issuer` is that key's `did:key`) with the `eddsa-rdfc-2022` cryptosuite,
and carries the ledger's public proof of the certificate as `evidence`, so that a verifier can
check, offline, both that the authority said it and that the ledger recorded it. docs/verification.md
gives the shape with an example.

Canonicalisation is RDFC-1.0 (URDNA2015) by pyld, with a document loader the caller supplies: the
core reads no files and fetches nothing; the shell loads the contexts shipped with the package.

The steps of eddsa-rdfc-2022 (W3C Data Integrity EdDSA Cryptosuites v1.0, section 3.2):
  transformed = canonical N-Quads of the credential without its proof
  config      = canonical N-Quads of the proof options, with the credential's @context
  signed      = Ed25519(SHA-256(config) || SHA-256(transformed))
  proofValue  = multibase base58-btc of the 64-byte signature ("z...")
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pyld import jsonld

from ledger.certificate import Certificate, certificate_digest
from ledger.errors import InvalidCredential, LedgerError

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
#: The kpledger vocabulary's context; every node also serves it at /contexts/kpledger-v1.jsonld.
KPLEDGER_CONTEXT_URL = "https://w3id.org/kpledger/v1"
KP = "https://w3id.org/kpledger/v1#"
CRYPTOSUITE = "eddsa-rdfc-2022"
CREDENTIAL_TYPE = "KimberleyProcessCertificate"
SUBJECT_TYPE = "KimberleyProcessShipment"
EVIDENCE_TYPE = "KpledgerLedgerProof"

#: A document loader: URL to the JSON-LD document there, or an error for a URL it will not load.
Loader = Callable[[str], dict[str, Any]]

_STRING = {"@type": "http://www.w3.org/2001/XMLSchema#string"}


def _term(name: str, **extra: Any) -> dict[str, Any]:
    return {"@id": f"kp:{name}", **extra}


#: A party's terms, scoped to the exporter and importer objects (a type's terms do not reach
#: into the objects its properties hold).
_PARTY: dict[str, Any] = {
    "@protected": True,
    "partyName": {"@id": "kp:partyName"},
    "partyAddress": {"@id": "kp:partyAddress"},
}

#: The kpledger terms, inline in every credential (so a verifier needs no other host for them).
#: Amounts are decimal strings, never floats; a party is a {name, address} pair.
KPLEDGER_CONTEXT: dict[str, Any] = {
    "@version": 1.1,
    "@protected": True,
    "kp": KP,
    CREDENTIAL_TYPE: _term(CREDENTIAL_TYPE),
    SUBJECT_TYPE: {
        "@id": f"kp:{SUBJECT_TYPE}",
        "@context": {
            "@protected": True,
            "certificateNumber": _term("certificateNumber"),
            "exportingParticipant": _term("exportingParticipant"),
            "importingParticipant": _term("importingParticipant"),
            "countryOfOrigin": _term("countryOfOrigin", **{"@container": "@list"}),
            "hsCode": _term("hsCode"),
            "caratWeight": _term("caratWeight"),
            "valueUSD": _term("valueUSD"),
            "numberOfParcels": _term(
                "numberOfParcels", **{"@type": "http://www.w3.org/2001/XMLSchema#integer"}
            ),
            "dateOfIssue": _term(
                "dateOfIssue", **{"@type": "http://www.w3.org/2001/XMLSchema#date"}
            ),
            "dateOfExpiry": _term(
                "dateOfExpiry", **{"@type": "http://www.w3.org/2001/XMLSchema#date"}
            ),
            "replaces": _term("replaces"),
            "originZone": _term("originZone"),
            "exporter": _term("exporter", **{"@context": _PARTY}),
            "importer": _term("importer", **{"@context": _PARTY}),
            "identityCommitment": _term("identityCommitment"),
            "identitySalt": _term("identitySalt"),
            "certificateDigest": _term("certificateDigest"),
        },
    },
    EVIDENCE_TYPE: {
        "@id": f"kp:{EVIDENCE_TYPE}",
        "@context": {
            "@protected": True,
            "chainId": _term("chainId"),
            "certificateProof": _term("certificateProof"),
            "registerProof": _term("registerProof"),
        },
    },
}


#: The fields a kpledger credential may hold, by object. pyld drops a term that no context
#: defines (it has no "safe mode"), and a dropped term is outside the signature, so a field not
#: listed here is refused rather than shown to someone as if it were signed.
_FIELDS = {
    "credential": {
        "@context",
        "id",
        "type",
        "name",
        "description",
        "issuer",
        "validFrom",
        "validUntil",
        "credentialSubject",
        "evidence",
        "proof",
    },
    "credentialSubject": {"id", "type", *KPLEDGER_CONTEXT[SUBJECT_TYPE]["@context"]}
    - {"@protected"},
    "exporter": {"partyName", "partyAddress"},
    "importer": {"partyName", "partyAddress"},
    "evidence": {"id", "type", *KPLEDGER_CONTEXT[EVIDENCE_TYPE]["@context"]} - {"@protected"},
    "proof": {
        "id",
        "type",
        "cryptosuite",
        "created",
        "verificationMethod",
        "proofPurpose",
        "proofValue",
    },
}


def _check_fields(credential: dict[str, Any]) -> None:
    def check(kind: str, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise InvalidCredential(f"the credential's {kind} is not an object")
        unknown = sorted(set(obj) - _FIELDS[kind])
        if unknown:
            raise InvalidCredential(
                f"the credential's {kind} has fields no context defines, which its signature "
                f"would not cover: {', '.join(unknown)}"
            )

    check("credential", credential)
    subject = credential.get("credentialSubject")
    check("credentialSubject", subject)
    assert isinstance(subject, dict)
    for role in ("exporter", "importer"):
        if role in subject:
            check(role, subject[role])
    evidence = credential.get("evidence")
    for item in evidence if isinstance(evidence, list) else [evidence]:
        check("evidence", item)
    check("proof", credential.get("proof"))


# -- did:key and multibase ------------------------------------------------------------------------
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_PUB = bytes([0xED, 0x01])  # the multicodec prefix of an Ed25519 public key


def base58btc(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _B58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def from_base58btc(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _B58.find(char)
        if digit < 0:
            raise InvalidCredential(f"{char!r} is not a base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return bytes(len(text) - len(text.lstrip("1"))) + body


def did_key(public_key: bytes) -> str:
    """The did:key of an Ed25519 public key (`did:key:z6Mk...`)."""
    return "did:key:z" + base58btc(_ED25519_PUB + public_key)


def public_key_of(did: str) -> bytes:
    """The Ed25519 key a did:key names; InvalidCredential for anything else."""
    if not isinstance(did, str) or not did.startswith("did:key:z"):
        raise InvalidCredential(f"the issuer {did!r} is not a did:key")
    raw = from_base58btc(did.removeprefix("did:key:z").split("#")[0])
    if len(raw) != 34 or raw[:2] != _ED25519_PUB:
        raise InvalidCredential(f"the issuer {did!r} is not an Ed25519 did:key")
    return raw[2:]


def verification_method(public_key: bytes) -> str:
    did = did_key(public_key)
    return f"{did}#{did.removeprefix('did:key:')}"


# -- building ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerEvidence:
    """The ledger's public proofs that travel in the credential, as the node gave them (base64)."""

    chain_id: str
    certificate_proof: str
    register_proof: str | None


def build_credential(
    certificate: Certificate,
    salt: bytes,
    evidence: LedgerEvidence,
    *,
    include_parties: bool,
) -> dict[str, Any]:
    """The unsigned credential for a certificate its issuer holds in full (`cert show`).

    The parties' names and addresses go in only with `include_parties` (the holder's choice); the
    salted commitment to them always does, so that the certificate's digest can be recomputed
    from the credential alone and matched against the ledger's.
    """
    facts = certificate.facts
    commitment = certificate.identities.commitment(salt)
    subject: dict[str, Any] = {
        "type": SUBJECT_TYPE,
        "certificateNumber": facts.number,
        "exportingParticipant": facts.exporting_participant,
        "importingParticipant": facts.importing_participant,
        "countryOfOrigin": list(facts.origin),
        "hsCode": facts.hs_code,
        "caratWeight": _hundredths(facts.carats),
        "valueUSD": _hundredths(facts.value_usd),
        "numberOfParcels": facts.parcels,
        "dateOfIssue": facts.issued_on.isoformat(),
        "dateOfExpiry": facts.expires_on.isoformat(),
    }
    if facts.replaces:
        subject["replaces"] = facts.replaces
    if facts.zone:
        subject["originZone"] = facts.zone
    if include_parties:
        for role, party in (
            ("exporter", certificate.identities.exporter),
            ("importer", certificate.identities.importer),
        ):
            subject[role] = {"partyName": party.name, "partyAddress": party.address}
        subject["identitySalt"] = salt.hex()
    subject["identityCommitment"] = commitment.hex()
    subject["certificateDigest"] = certificate_digest(facts, commitment).hex()
    proofs: dict[str, Any] = {
        "type": EVIDENCE_TYPE,
        "chainId": evidence.chain_id,
        "certificateProof": evidence.certificate_proof,
    }
    if evidence.register_proof is not None:
        proofs["registerProof"] = evidence.register_proof
    return {
        "@context": [VC_V2_CONTEXT, KPLEDGER_CONTEXT],
        "id": f"urn:kpledger:{evidence.chain_id}:{facts.number}",
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "name": f"Kimberley Process Certificate {facts.number}",
        "issuer": "",  # set by sign_credential: the signing key's did:key
        "validFrom": f"{facts.issued_on.isoformat()}T00:00:00Z",
        "validUntil": f"{facts.expires_on.isoformat()}T23:59:59Z",
        "credentialSubject": subject,
        "evidence": [proofs],
    }


def _hundredths(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


# -- the Data Integrity proof -----------------------------------------------------------------------
def _canonical(document: dict[str, Any], loader: Loader) -> str:
    refused: list[InvalidCredential] = []

    def load(url: str, options: Any = None) -> dict[str, Any]:
        try:
            return {"contextUrl": None, "documentUrl": url, "document": loader(url)}
        except InvalidCredential as exc:
            refused.append(exc)
            raise

    try:
        text = jsonld.normalize(
            document,
            {
                "algorithm": "URDNA2015",
                "format": "application/n-quads",
                "documentLoader": load,
                # A term no context defines would silently drop out of what is signed.
                "safe": True,
            },
        )
    except jsonld.JsonLdError as exc:
        if refused:  # the loader's own refusal says it best
            raise refused[0] from exc
        raise InvalidCredential(f"the credential is not valid JSON-LD: {_why(exc)}") from exc
    if not isinstance(text, str):
        raise InvalidCredential("canonicalisation gave no N-Quads")
    return text


def _why(exc: Exception) -> str:
    cause = getattr(exc, "cause", None)
    details = getattr(exc, "details", None) or {}
    text = str(getattr(exc, "message", None) or exc).splitlines()[0]
    if isinstance(details, dict) and details.get("url"):
        text += f" ({details['url']})"
    if cause is not None:
        text += f": {str(cause).splitlines()[0]}"
    return text


def signing_input(credential: dict[str, Any], options: dict[str, Any], loader: Loader) -> bytes:
    """SHA-256(canonical proof options) || SHA-256(canonical credential without its proof)."""
    unsecured = {k: v for k, v in credential.items() if k != "proof"}
    config = {"@context": credential["@context"], **options}
    return (
        hashlib.sha256(_canonical(config, loader).encode()).digest()
        + hashlib.sha256(_canonical(unsecured, loader).encode()).digest()
    )


def sign_credential(
    credential: dict[str, Any],
    public_key: bytes,
    sign_raw: Callable[[bytes], bytes],
    created_ms: int,
    loader: Loader,
) -> dict[str, Any]:
    """The credential with its issuer set to the key's did:key and its proof attached.

    `sign_raw` is the issuing authority's Ed25519 signature over the signing input as it is (a
    key file's `SigningKey.sign_raw`, or a hardware token's signer).
    """
    signed = {**credential, "issuer": did_key(public_key)}
    options = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": datetime.fromtimestamp(created_ms // 1000, tz=UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "verificationMethod": verification_method(public_key),
        "proofPurpose": "assertionMethod",
    }
    signature = sign_raw(signing_input(signed, options, loader))
    return {**signed, "proof": {**options, "proofValue": "z" + base58btc(signature)}}


@dataclass(frozen=True)
class CheckedCredential:
    """What a credential's own proof establishes: who signed which facts, and the evidence."""

    issuer_key: bytes
    certificate: dict[str, Any]  # credentialSubject
    digest: bytes
    evidence: LedgerEvidence
    includes_parties: bool


def verify_credential(credential: Any, loader: Loader) -> CheckedCredential:
    """Check the Data Integrity proof and that the facts hash to the digest they state.

    Whether the ledger recorded that digest, and whether the issuer's key is the exporting
    authority's, the caller checks against genesis with the evidence (node/credentials.py).
    """
    if not isinstance(credential, dict):
        raise InvalidCredential("a credential is a JSON object")
    context = credential.get("@context")
    if not isinstance(context, list) or not context or context[0] != VC_V2_CONTEXT:
        raise InvalidCredential(f"the first @context must be {VC_V2_CONTEXT}")
    types = credential.get("type")
    if not isinstance(types, list) or CREDENTIAL_TYPE not in types:
        raise InvalidCredential(f"the credential is not a {CREDENTIAL_TYPE}")
    proof = credential.get("proof")
    if not isinstance(proof, dict):
        raise InvalidCredential("the credential has no proof (one Data Integrity proof)")
    _check_fields(credential)
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise InvalidCredential(f"the proof is not a DataIntegrityProof of {CRYPTOSUITE}")
    if proof.get("proofPurpose") != "assertionMethod":
        raise InvalidCredential("the proof's purpose is not assertionMethod")
    issuer = credential.get("issuer")
    issuer_key = public_key_of(issuer if isinstance(issuer, str) else "")
    if proof.get("verificationMethod") != verification_method(issuer_key):
        raise InvalidCredential("the proof is not made by the issuer's key")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise InvalidCredential("the proofValue is not multibase base58-btc")
    signature = from_base58btc(value[1:])
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    data = signing_input(credential, options, loader)
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(issuer_key).verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        raise InvalidCredential("the credential's signature does not verify") from exc
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        raise InvalidCredential("the credential has no credentialSubject")
    digest = _subject_digest(subject)
    return CheckedCredential(
        issuer_key=issuer_key,
        certificate=subject,
        digest=digest,
        evidence=_evidence(credential.get("evidence")),
        includes_parties="exporter" in subject,
    )


def _subject_digest(subject: dict[str, Any]) -> bytes:
    """The digest the subject's facts make; checks the stated commitment and digest agree."""
    try:
        commitment = bytes.fromhex(str(subject["identityCommitment"]))
        stated = bytes.fromhex(str(subject["certificateDigest"]))
        parties = {
            role: {
                "name": subject.get(role, {}).get("partyName", "withheld"),
                "address": subject.get(role, {}).get("partyAddress", "withheld"),
            }
            for role in ("exporter", "importer")
        }
        certificate = Certificate.from_json(
            {
                "number": subject["certificateNumber"],
                "exporting_participant": subject["exportingParticipant"],
                "importing_participant": subject["importingParticipant"],
                "origin": subject["countryOfOrigin"],
                "hs_code": subject["hsCode"],
                "carats": subject["caratWeight"],
                "value_usd": subject["valueUSD"],
                "parcels": subject["numberOfParcels"],
                "issued_on": subject["dateOfIssue"],
                "expires_on": subject["dateOfExpiry"],
                **({"replaces": subject["replaces"]} if "replaces" in subject else {}),
                **({"zone": subject["originZone"]} if "originZone" in subject else {}),
                **parties,
            }
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidCredential(f"the credentialSubject is incomplete or malformed: {exc}") from exc
    except LedgerError as exc:
        raise InvalidCredential(
            f"the credentialSubject is not a valid certificate: {exc.message}"
        ) from exc
    if "exporter" in subject:
        try:
            salt = bytes.fromhex(str(subject["identitySalt"]))
        except (KeyError, ValueError) as exc:
            raise InvalidCredential("the parties are given without a valid identitySalt") from exc
        if certificate.identities.commitment(salt) != commitment:
            raise InvalidCredential("the parties do not match the identity commitment")
    digest = certificate_digest(certificate.facts, commitment)
    if digest != stated:
        raise InvalidCredential(
            "the facts do not hash to the certificateDigest the credential states"
        )
    return digest


def _evidence(evidence: Any) -> LedgerEvidence:
    items = [e for e in evidence if isinstance(e, dict)] if isinstance(evidence, list) else []
    found = [
        e
        for e in items
        if e.get("type") == EVIDENCE_TYPE
        or (isinstance(e.get("type"), list) and EVIDENCE_TYPE in e["type"])
    ]
    if len(found) != 1:
        raise InvalidCredential(f"the credential must carry one {EVIDENCE_TYPE} as evidence")
    item = found[0]
    chain_id, proof, register = (
        item.get("chainId"),
        item.get("certificateProof"),
        item.get("registerProof"),
    )
    if not isinstance(chain_id, str) or not isinstance(proof, str):
        raise InvalidCredential("the ledger evidence lacks its chainId or certificateProof")
    if register is not None and not isinstance(register, str):
        raise InvalidCredential("the ledger evidence's registerProof is malformed")
    return LedgerEvidence(chain_id, proof, register)
