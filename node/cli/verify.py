"""`kpledger verify`: a certificate, or the participant register, checked against genesis alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from ledger.certificate import Certificate
from ledger.errors import InvalidProof, LedgerError
from ledger.genesis import Genesis
from ledger.proofs import CertificateProof, verify_certificate_proof
from node.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Command,
    certificate_number,
    emit,
    fail,
)
from node.cli.register import describe_age, proven_register
from node.cli.signing import json_option, now_ms
from node.client import NodeClient, segment
from node.files import load_genesis
from node.views import public_answer_contradictions


@click.command(cls=Command)
@click.argument("number", required=False)
@click.option(
    "--register",
    is_flag=True,
    help="Check the participant register (keys, status, validators) instead of a certificate.",
)
@click.option(
    "--vc",
    "vc_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Check a Verifiable Credential file (kpledger cert vc) offline instead: its signature, "
    "its facts and the ledger's proof it carries (no --node needed).",
)
@click.option("--node", "node_url", help="The node's URL (not needed with --vc).")
@click.option(
    "--genesis",
    "genesis_path",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The network's genesis.json: the only thing trusted.",
)
@click.option(
    "--document",
    "document",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The certificate's full data (JSON with identity_salt) to check against the ledger.",
)
@click.option(
    "--max-age-hours",
    default=24.0,
    show_default=True,
    help="Refuse a proof whose latest final header is older (a stale node).",
)
@json_option
def verify(
    number: str | None,
    register: bool,
    vc_path: Path | None,
    node_url: str | None,
    genesis_path: Path,
    document: Path | None,
    max_age_hours: float,
    as_json: bool,
) -> None:
    """Check certificate NUMBER through the public endpoint, trusting nothing but genesis.

    Exit 0: the proof checks and the certificate is in force; 1: unknown, voided, rejected,
    expired, or the document does not match; 2: the proof does not check, or no answer.
    With --vc FILE (and no NUMBER): the credential, offline, with the same exit statuses.
    With --register (and no NUMBER): the participant register the node serves, exit 0 when its
    proof checks, 2 when not.
    """
    if vc_path is not None:
        if number is not None or register or document is not None:
            fail(
                "--vc takes no NUMBER, --register or --document",
                EXIT_USAGE,
                as_json=as_json,
                code="usage",
            )
        from node.cli.vc import verify_credential_file

        verify_credential_file(vc_path, genesis_path, as_json)
    if node_url is None:
        fail("--node URL is needed (or --vc FILE)", EXIT_USAGE, as_json=as_json, code="usage")
    if register == (number is not None) or (register and document is not None):
        fail(
            "give a certificate NUMBER, or --register (without NUMBER or --document)",
            EXIT_USAGE,
            as_json=as_json,
            code="usage",
        )
    try:
        genesis = load_genesis(genesis_path)
    except LedgerError as exc:
        fail(exc.message, EXIT_USAGE, as_json=as_json, code="usage")
    if register:
        _verify_register(NodeClient(node_url), genesis, max_age_hours, as_json)
    assert number is not None
    number = certificate_number(number)
    answer = NodeClient(node_url).get(f"/v1/public/certificates/{segment(number)}")
    if not isinstance(answer.body, dict) or "proof" not in answer.body:
        fail(
            f"the node gave no proof ({answer.status} {answer.error}: {answer.message})",
            EXIT_USAGE,
            as_json=as_json,
            code="no_proof",
        )
    try:
        proof = CertificateProof.from_base64(answer.body["proof"])
        checked = verify_certificate_proof(proof, genesis, number)
    except InvalidProof as exc:
        fail(
            f"the proof does not check: {exc.message}",
            EXIT_USAGE,
            as_json=as_json,
            code="invalid_proof",
        )
    today_date = datetime.now(UTC).date()
    lies = public_answer_contradictions(answer.status, answer.body, checked, today=today_date)
    if lies:
        fail(
            f"the node's answer contradicts its own proof ({'; '.join(lies)}): "
            "the node is lying or broken; ask another node",
            EXIT_USAGE,
            as_json=as_json,
            code="answer_contradicts_proof",
            contradictions=lies,
            head_height=checked.head_height,
        )
    age_s = (now_ms() - checked.head_time_ms) / 1000
    if age_s > max_age_hours * 3600:
        fail(
            f"the proof's latest final header (height {checked.head_height}) is "
            f"{describe_age(age_s)} old, past the limit of {describe_age(max_age_hours * 3600)} "
            "(--max-age-hours): the node may be serving a stale status",
            EXIT_USAGE,
            as_json=as_json,
            code="stale_proof",
            head_height=checked.head_height,
            age_seconds=round(age_s, 1),
        )
    result: dict[str, Any] = {
        "number": number,
        "proof": "valid",
        "head_height": checked.head_height,
    }
    if not checked.found:
        message = (
            f"{number}: NOT ON THE LEDGER (proof of absence checked at height "
            f"{checked.head_height})"
        )
        result.update(
            status="unknown", error="certificate_not_found", message=message, in_force=False
        )
        emit(result, as_json, message)
        raise SystemExit(EXIT_REFUSED)
    today = today_date.isoformat()
    status = checked.status or "unknown"
    if status == "issued" and checked.expires_on is not None and today > checked.expires_on:
        status = "expired"
    in_force = status in ("issued", "import_confirmed")
    result.update(
        status=status,
        in_force=in_force,
        exporting_participant=checked.exporting_participant,
        importing_participant=checked.importing_participant,
        issued_on=checked.issued_on,
        expires_on=checked.expires_on,
        digest=checked.digest.hex() if checked.digest else None,
        history=[{"type": t, "height": h, "event_id": i.hex()} for t, h, i in checked.history],
        historical=checked.historical,
    )
    label = status.upper().replace("_", " ")
    detail = []
    if status == "voided":
        # The reason rides beside the proof, not in it: the status leaf binds the status alone.
        reason = answer.body.get("void_reason")
        if isinstance(reason, str) and reason:
            result["void_reason"] = reason
            label += f" (reason: {reason})"
            detail.append(
                f"  void reason {reason!r} as the node states it (the proof covers the status)"
            )
    elif status == "import_rejected":
        detail.append(
            "  the importing authority's reason is not public (it is free text, and may name the "
            "parties); a party's node shows it: kpledger cert show"
        )
    elif status == "expired":
        label += f" on {checked.expires_on}"
    matches: bool | None = None
    if document is not None:
        matches, why = _document_matches(document, checked.digest or b"")
        result["document"] = "matches" if matches else "does not match"
        if not matches:
            result["document_problem"] = why
    # The verdict that decides the exit status comes first, and says all of it.
    if matches is False:
        exit_status = EXIT_REFUSED
        headline = f"{number}: DOCUMENT DOES NOT MATCH ({document} {why})"
        lines = [headline, f"  the ledger's status of {number}: {label}"]
        result.update(error="document_mismatch", message=headline)
    else:
        exit_status = EXIT_OK if in_force else EXIT_REFUSED
        headline = f"{number}: {label}"
        if matches:
            headline += f", and {document} MATCHES the ledger"
        lines = [headline]
        if not in_force:
            result.update(error=f"certificate_{status}", message=headline)
    lines += detail
    if checked.historical:
        lines.append(
            "  HISTORICAL RECORD: entered from its authority's archive (certificate.historical), "
            "not issued on the ledger"
        )
    lines += [
        f"  {checked.exporting_participant} -> {checked.importing_participant}, issued "
        f"{checked.issued_on}, expires {checked.expires_on}",
        f"  proof checked against genesis: {len(checked.history)} event(s), latest final "
        f"height {checked.head_height} ({describe_age(age_s)} ago)",
    ]
    emit(result, as_json, "\n".join(lines))
    raise SystemExit(exit_status)


def _verify_register(
    client: NodeClient, genesis: Genesis, max_age_hours: float, as_json: bool
) -> NoReturn:
    checked = proven_register(client, genesis, max_age_hours)
    registry = checked.registry
    age_s = (now_ms() - checked.head_time_ms) / 1000
    result = {
        "register": "valid",
        "head_height": checked.head_height,
        "in_force_from": checked.head_height + 1,
        "participants": [registry.participants[c].to_json() for c in sorted(registry.participants)],
        "validators": [v.to_json() for v in registry.validators],
        "pending_validators": [v.to_json() for v in registry.pending_validators],
        "extra_recipients": [
            {"exporting_participant": exp, "name": name, "encryption_key": key.hex()}
            for exp, name, key in registry.extra_recipients
        ],
    }
    if checked.head_height == 0:
        how = "genesis's own (the node has no final block yet)"
    else:
        how = (
            f"proof checked against genesis (final header {checked.head_height}, "
            f"{describe_age(age_s)} ago)"
        )
    lines = [f"the participant register in force from height {checked.head_height + 1}: {how}"]
    for code in sorted(registry.participants):
        p = registry.participants[code]
        state = "active" if p.active else "SUSPENDED"
        lines.append(f"  {code} {state}, encryption key {p.encryption_key.hex()}")
    for exp, name, key in registry.extra_recipients:
        lines.append(f"  extra recipient {name} of {exp}'s certificates: {key.hex()}")
    lines.append(f"  validators: {', '.join(v.participant for v in registry.validators)}")
    emit(result, as_json, "\n".join(lines))
    raise SystemExit(EXIT_OK)


def _document_matches(path: Path, digest: bytes) -> tuple[bool, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        certificate = Certificate.from_json(raw)
    except (OSError, ValueError) as exc:
        return False, f"cannot be read: {exc}"
    except RecursionError:
        return False, "cannot be read: nested too deeply"
    except LedgerError as exc:
        return False, f"is not a valid certificate: {exc.message}"
    salt_hex = raw.get("identity_salt") if isinstance(raw, dict) else None
    if not isinstance(salt_hex, str) or not salt_hex:
        return False, (
            "does not carry identity_salt, so its parties cannot be checked; use the "
            "document as issued (kpledger cert show --json)"
        )
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False, "has a malformed identity_salt"
    if certificate.digest(salt) != digest:
        return False, "differs from the certificate on the ledger (another digest)"
    return True, ""
