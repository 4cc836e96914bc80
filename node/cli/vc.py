"""`kpledger cert vc` and `kpledger verify --vc`: a certificate as a W3C Verifiable Credential,
signed by the issuing authority and carrying the ledger's proof (docs/verification.md)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from ledger.certificate import Certificate
from ledger.credential import LedgerEvidence, build_credential, did_key, sign_credential
from ledger.errors import InvalidCredential, InvalidProof, LedgerError
from node.cli.cert import TOKEN_HELP
from node.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    Command,
    certificate_number,
    emit,
    fail,
    with_token,
)
from node.cli.common import refused as refused_answer
from node.cli.register import proven_register, trusted_genesis
from node.cli.signing import json_option, key_option, node_option, now_ms, signing_key
from node.client import ConnectionFailed, NodeClient, segment
from node.credentials import check_credential, load_context
from node.files import load_genesis


@click.command("vc", cls=Command)
@click.argument("number")
@node_option
@with_token(TOKEN_HELP, required=True)
@key_option
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the credential (JSON-LD).",
)
@click.option(
    "--include-parties",
    is_flag=True,
    help="Put the exporter's and importer's names and addresses in the credential (off by "
    "default: without them it still binds them, through the ledger's salted commitment).",
)
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The network's genesis.json, against which the credential is checked before it is "
    "written (default: the genesis the node serves).",
)
@json_option
def cert_vc(
    number: str,
    node_url: str,
    token: str,
    key_path: Path,
    out_path: Path,
    include_parties: bool,
    genesis_path: Path | None,
    as_json: bool,
) -> None:
    """Export certificate NUMBER as a Verifiable Credential signed with --key, the exporting
    authority's key, with the ledger's public proof as its evidence.

    A third-party VC 2.0 verifier checks the signature (Data Integrity, eddsa-rdfc-2022, the
    issuer a did:key); `kpledger verify --vc` checks the ledger's proof as well.
    """
    number = certificate_number(number)
    key = signing_key(key_path)
    client = NodeClient(node_url, token)
    genesis = trusted_genesis(client, genesis_path)
    record = _get(client, f"/v1/certificates/{segment(number)}", as_json)
    if not record.get("party") or not isinstance(record.get("identity_salt"), str):
        fail(
            f"{number}: this node cannot read the certificate's parties, so it cannot state the "
            "certificate in full; export it from the exporting authority's node",
            EXIT_REFUSED,
            as_json=as_json,
            code="not_a_party",
        )
    try:
        certificate = Certificate.from_json(record)
        salt = bytes.fromhex(record["identity_salt"])
    except (LedgerError, ValueError) as exc:
        raise ConnectionFailed(f"{client.url} gave a malformed record of {number}: {exc}") from exc
    registry = proven_register(client, genesis).registry
    exporting = certificate.facts.exporting_participant
    if registry.participant(exporting).authority_key != key.public_bytes:
        fail(
            f"{key_path} is not {exporting}'s authority key: only the issuing authority signs "
            "its certificates' credentials",
            EXIT_REFUSED,
            as_json=as_json,
            code="signer_not_allowed",
        )
    public = _get(NodeClient(node_url), f"/v1/public/certificates/{segment(number)}", as_json)
    register = _get(NodeClient(node_url), "/v1/public/participants", as_json)
    if not isinstance(public.get("proof"), str):
        raise ConnectionFailed(f"{client.url} gave no proof of {number}")
    evidence = LedgerEvidence(
        genesis.chain_id,
        public["proof"],
        register["proof"] if isinstance(register.get("proof"), str) else None,
    )
    try:
        unsigned = build_credential(certificate, salt, evidence, include_parties=include_parties)
        credential = sign_credential(
            unsigned, key.public_bytes, key.sign_raw, now_ms(), load_context
        )
        # What we hand out must check as a verifier will check it.
        checked = check_credential(credential, genesis)
    except (InvalidCredential, InvalidProof) as exc:
        fail(
            f"the credential of {number} does not check: {exc.message}; nothing was written",
            EXIT_USAGE,
            as_json=as_json,
            code=exc.code,
        )
    text = json.dumps(credential, indent=2, ensure_ascii=False) + "\n"
    try:
        # It may name the parties, and always states amounts: readable by its owner only.
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        fail(f"cannot write {out_path}: {exc.strerror}", EXIT_USAGE, as_json=as_json, code="usage")
    emit(
        {
            "number": number,
            "credential": str(out_path),
            "issuer": did_key(key.public_bytes),
            "include_parties": include_parties,
            "status": checked.ledger.status,
            "evidence_height": checked.ledger.head_height,
        },
        as_json,
        f"{out_path}: credential of {number} ({checked.ledger.status} at height "
        f"{checked.ledger.head_height}), issuer {did_key(key.public_bytes)}"
        + ("" if include_parties else "\n  the parties are withheld (--include-parties to add)"),
    )


def _get(client: NodeClient, path: str, as_json: bool) -> dict[str, Any]:
    answer = client.get(path)
    if not answer.ok:
        refused_answer(answer, as_json)
    if not isinstance(answer.body, dict):
        raise ConnectionFailed(f"{client.url} gave a malformed answer to {path}")
    return answer.body


def verify_credential_file(path: Path, genesis_path: Path, as_json: bool) -> NoReturn:
    """`kpledger verify --vc FILE --genesis G`: exit 0 in force, 1 not in force, 2 does not check."""
    try:
        genesis = load_genesis(genesis_path)
    except LedgerError as exc:
        fail(exc.message, EXIT_USAGE, as_json=as_json, code="usage")
    try:
        credential = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        fail(f"cannot read {path} as JSON: {exc}", EXIT_USAGE, as_json=as_json, code="usage")
    try:
        checked = check_credential(credential, genesis)
    except (InvalidCredential, InvalidProof) as exc:
        fail(
            f"{path}: THE CREDENTIAL DOES NOT VERIFY: {exc.message}",
            EXIT_USAGE,
            as_json=as_json,
            code=exc.code,
        )
    ledger = checked.ledger
    status = ledger.status or "unknown"
    today = datetime.now(UTC).date().isoformat()
    if status == "issued" and ledger.expires_on is not None and today > ledger.expires_on:
        status = "expired"
    in_force = status in ("issued", "import_confirmed")
    as_of = datetime.fromtimestamp(ledger.head_time_ms / 1000, tz=UTC).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    result: dict[str, Any] = {
        "number": ledger.number,
        "credential": "valid",
        "issuer": did_key(checked.credential.issuer_key),
        "exporting_participant": checked.exporting_participant,
        "importing_participant": ledger.importing_participant,
        "status": status,
        "in_force": in_force,
        "evidence_height": ledger.head_height,
        "evidence_time": as_of,
        "includes_parties": checked.credential.includes_parties,
    }
    message = (
        f"{ledger.number}: {status.upper().replace('_', ' ')} (credential signed by "
        f"{checked.exporting_participant}'s authority; the ledger's proof checks against genesis)"
        f"\n  status as of height {ledger.head_height} ({as_of}); for today's status: "
        f"kpledger verify {ledger.number} --node URL --genesis {genesis_path}"
    )
    if not in_force:
        result.update(error=f"certificate_{status}", message=message)
    emit(result, as_json, message)
    raise SystemExit(0 if in_force else EXIT_REFUSED)
