"""`kpledger cert ...` and `kpledger verify`: signing events for an authority, checking proofs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ledger import authoring
from ledger.certificate import Certificate
from ledger.errors import InvalidProof, LedgerError
from ledger.events import MAX_REASON, Event
from ledger.genesis import Genesis
from ledger.keys import Signer
from ledger.proofs import (
    CertificateProof,
    RegisterProof,
    VerifiedRegister,
    verify_certificate_proof,
    verify_register_proof,
)
from ledger.state import Registry
from node.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Command,
    Group,
    certificate_number,
    emit,
    fail,
    open_signer,
    passphrase_option,
    refused,
    with_token,
)
from node.client import ConnectionFailed, NodeClient, segment
from node.views import public_answer_contradictions, register_answer_contradictions

WAIT_TIMEOUT_S = 120.0

F = TypeVar("F", bound=Callable[..., Any])


def _now_ms() -> int:
    return int(time.time() * 1000)


def _key(ref: str | Path) -> Signer:
    return open_signer(ref)


#: A register proof whose head is older is refused: keys rotated since could be handed out.
REGISTER_MAX_AGE_HOURS = 24.0


def _trusted_genesis(client: NodeClient, genesis_path: Path | None) -> Genesis:
    """--genesis as the trust anchor; without it, the genesis the node serves."""
    if genesis_path is not None:
        try:
            return Genesis.load(genesis_path)
        except LedgerError as exc:
            fail(exc.message, EXIT_USAGE, code="usage")
    served = client.get("/v1/public/genesis")
    if not served.ok:
        # A node's own refusal keeps its code (rate_limited, say); an answer of no kind is a
        # failed connection.
        code = served.error if served.error != "error" else "connection_failed"
        fail(f"the node did not describe its network: {served.message}", EXIT_USAGE, code=code)
    try:
        return Genesis.from_json(served.body)
    except (KeyError, TypeError, ValueError, AttributeError, LedgerError) as exc:
        raise ConnectionFailed(f"{client.url} does not describe a kpledger network: {exc}") from exc


def proven_register(
    client: NodeClient, genesis: Genesis, max_age_hours: float = REGISTER_MAX_AGE_HOURS
) -> VerifiedRegister:
    """The register in force, as its proof establishes it against `genesis`; exit 2 (and nothing
    signed or sent) if the proof does not check, is stale, or the plain fields contradict it."""
    found = client.get("/v1/public/participants")
    if not found.ok:
        code = found.error if found.error != "error" else "connection_failed"
        fail(f"the node did not describe its network: {found.message}", EXIT_USAGE, code=code)
    if not isinstance(found.body, dict) or not isinstance(found.body.get("participants"), list):
        raise ConnectionFailed(f"{client.url} does not describe a kpledger network")
    if found.body.get("proof") is None:
        # Before block 1 the register is genesis's own, which the caller trusts; a node claims
        # that only of a network made within the freshness limit (nodes make a block within
        # minutes), or it could hand out genesis keys rotated since.
        if found.body.get("height") == 0 and _genesis_age_s(genesis) <= max_age_hours * 3600:
            registry = Registry.from_genesis(genesis)
            lies = register_answer_contradictions(found.body, registry)
            if lies:
                fail(
                    f"the node's participant register contradicts genesis ({'; '.join(lies)}): "
                    "the node is lying or broken; nothing was signed or sent",
                    EXIT_USAGE,
                    code="register_contradicts_proof",
                    contradictions=lies,
                )
            return VerifiedRegister(registry, 0, _now_ms())
        fail(
            "the node gave no proof of its participant register, so its keys cannot be "
            "checked; nothing was signed or sent",
            EXIT_USAGE,
            code="no_proof",
        )
    try:
        checked = verify_register_proof(RegisterProof.from_base64(found.body["proof"]), genesis)
    except InvalidProof as exc:
        fail(
            f"the node's participant register does not check: {exc.message}; nothing was "
            "signed or sent",
            EXIT_USAGE,
            code="invalid_register_proof",
        )
    lies = register_answer_contradictions(found.body, checked.registry)
    if lies:
        fail(
            f"the node's participant register contradicts its own proof ({'; '.join(lies)}): "
            "the node is lying or broken; nothing was signed or sent",
            EXIT_USAGE,
            code="register_contradicts_proof",
            contradictions=lies,
        )
    age_s = (_now_ms() - checked.head_time_ms) / 1000
    if age_s > max_age_hours * 3600:
        fail(
            f"the register proof's final header (height {checked.head_height}) is "
            f"{describe_age(age_s)} old, past the limit of {describe_age(max_age_hours * 3600)}: "
            "keys may have been rotated since; nothing was signed or sent",
            EXIT_USAGE,
            code="stale_proof",
            head_height=checked.head_height,
        )
    return checked


def _genesis_age_s(genesis: Genesis) -> float:
    """Seconds since genesis_time (infinite when it is not an ISO 8601 time with a zone)."""
    try:
        made = datetime.fromisoformat(genesis.genesis_time)
    except ValueError:
        return float("inf")
    if made.tzinfo is None:
        return float("inf")
    return time.time() - made.timestamp()


def _network(client: NodeClient, genesis_path: Path | None = None) -> tuple[str, Registry]:
    """The chain id and the participant register in force, checked against its proof."""
    genesis = _trusted_genesis(client, genesis_path)
    return genesis.chain_id, proven_register(client, genesis).registry


def _submit(
    client: NodeClient, event: Event, wait: bool, as_json: bool, extra: dict[str, Any] | None = None
) -> None:
    answer = client.post("/v1/events", event.to_envelope())
    if not answer.ok:
        refused(answer, as_json)
    if not isinstance(answer.body, dict) or not isinstance(answer.body.get("event_id"), str):
        raise ConnectionFailed(f"{client.url} did not answer with an event id")
    event_id = answer.body["event_id"]
    out: dict[str, Any] = {"event_id": event_id, "status": answer.body.get("status", "pending")}
    out.update(extra or {})
    if wait:
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while True:
            status = client.get(f"/v1/events/{event_id}")
            if status.ok and status.body["status"] == "final":
                out.update(status="final", height=status.body["height"])
                break
            if status.ok and status.body["status"] == "rejected":
                out.update(
                    status="rejected",
                    error=status.body.get("error"),
                    message=status.body.get("message"),
                )
                emit(
                    out,
                    as_json,
                    f"{event_id}\nrefused when its block was built: "
                    f"{status.body.get('error')}: {status.body.get('message')}",
                )
                raise SystemExit(EXIT_REFUSED)
            if time.monotonic() > deadline:
                fail(
                    f"event {event_id} was not final after {WAIT_TIMEOUT_S:.0f} s",
                    EXIT_USAGE,
                    as_json=as_json,
                    code="timeout",
                )
            time.sleep(0.1)
    human = event_id if "height" not in out else f"{event_id}\nfinal at height {out['height']}"
    emit(out, as_json, human)


def _public(client: NodeClient, number: str, as_json: bool) -> dict[str, Any]:
    answer = client.get(f"/v1/public/certificates/{segment(number)}")
    if not answer.ok:
        refused(answer, as_json)
    body = answer.body
    if not isinstance(body, dict) or not all(
        isinstance(body.get(k), str)
        for k in ("digest", "exporting_participant", "importing_participant")
    ):
        raise ConnectionFailed(f"{client.url} gave a malformed public view of {number}")
    try:
        bytes.fromhex(body["digest"])
    except ValueError as exc:
        raise ConnectionFailed(f"{client.url} gave a malformed digest for {number}") from exc
    return body


node_option = click.option("--node", "node_url", required=True, help="The node's URL.")
_key_ref_option = click.option(
    "--key",
    "key_path",
    required=True,
    help="The participant's authority key: a PEM file (encrypted or not) or a pkcs11: URI.",
)


def key_option(func: F) -> F:
    """--key (a PEM file or a PKCS#11 URI) and --passphrase-file for an encrypted one."""
    return _key_ref_option(passphrase_option(func))


wait_option = click.option("--wait", is_flag=True, help="Return when the event is final.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(cls=Group)
def cert() -> None:
    """Issue, confirm, reject, void and show certificates."""


#: The write commands sign with --key; a token only lets the node count them as its operator's own.
OWN_TOKEN_HELP = (
    "Optional: the node operator's API token, so that the node counts this command's requests "
    "in its own clients' budget (a flood of public requests from the same address does not "
    "throttle it)."
)


@cert.command("issue")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@node_option
@key_option
@wait_option
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The network's genesis.json: the encryption keys are checked against it (default: "
    "the genesis the node serves).",
)
@json_option
@with_token(OWN_TOKEN_HELP, required=False)
def cert_issue(
    file: Path,
    node_url: str,
    key_path: Path,
    wait: bool,
    genesis_path: Path | None,
    as_json: bool,
    token: str | None,
) -> None:
    """Sign and submit the issuance of the certificate in FILE.json; prints the event id.

    The parties' identities are sealed to the encryption keys of the participant register only
    once its proof checks (a final header, its commit certificate and the validator changes
    from genesis): a node that hands out another key is refused, exit 2, and nothing is sent.
    """
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read {file} as JSON: {exc}", EXIT_USAGE, as_json=as_json, code="usage")
    except RecursionError:
        fail(
            f"cannot read {file} as JSON: nested too deeply",
            EXIT_USAGE,
            as_json=as_json,
            code="usage",
        )
    certificate = Certificate.from_json(raw)
    salt = None
    if isinstance(raw, dict) and raw.get("identity_salt"):
        try:
            salt = bytes.fromhex(raw["identity_salt"])
        except (TypeError, ValueError):
            fail("identity_salt must be 64 hex characters", as_json=as_json, code="malformed")
    key = _key(key_path)
    client = NodeClient(node_url, token)
    chain_id, registry = _network(client, genesis_path)
    issuance = authoring.issue(
        registry, chain_id, certificate, key, created_ms=_now_ms(), salt=salt
    )
    _submit(
        client,
        issuance.event,
        wait,
        as_json,
        {
            "number": certificate.number,
            "digest": issuance.digest.hex(),
            "identity_salt": issuance.salt.hex(),
        },
    )


def _decision(
    number: str,
    node_url: str,
    key_path: Path,
    wait: bool,
    as_json: bool,
    kind: str,
    token: str | None,
    reason: str | None = None,
) -> None:
    number = certificate_number(number)
    key = _key(key_path)
    client = NodeClient(node_url, token)
    chain_id, _ = _network(client)
    public = _public(client, number, as_json)
    digest = bytes.fromhex(public["digest"])
    importer, exporter = public["importing_participant"], public["exporting_participant"]
    now = _now_ms()
    if kind == "confirm":
        event = authoring.confirm_import(chain_id, importer, number, digest, key, created_ms=now)
    elif kind == "reject":
        event = authoring.reject_import(
            chain_id, importer, number, digest, reason or "", key, created_ms=now
        )
    else:
        event = authoring.void(chain_id, exporter, number, reason or "", key, created_ms=now)
    _submit(client, event, wait, as_json, {"number": number})


@cert.command("confirm")
@click.argument("number")
@node_option
@key_option
@wait_option
@json_option
@with_token(OWN_TOKEN_HELP, required=False)
def cert_confirm(
    number: str, node_url: str, key_path: Path, wait: bool, as_json: bool, token: str | None
) -> None:
    """Confirm receipt of the shipment of certificate NUMBER (as the importing authority)."""
    _decision(number, node_url, key_path, wait, as_json, "confirm", token)


@cert.command("reject")
@click.argument("number")
@click.option("--reason", required=True, help="Why the import is refused.")
@node_option
@key_option
@wait_option
@json_option
@with_token(OWN_TOKEN_HELP, required=False)
def cert_reject(
    number: str,
    reason: str,
    node_url: str,
    key_path: Path,
    wait: bool,
    as_json: bool,
    token: str | None,
) -> None:
    """Reject the import of certificate NUMBER (as the importing authority), saying why."""
    # Refused here, before anything is read or sent: the ledger would refuse it too.
    if not reason.strip():
        fail("--reason must say why the import is rejected", EXIT_USAGE, code="usage")
    if len(reason) > MAX_REASON:
        fail(f"--reason is at most {MAX_REASON} characters", EXIT_USAGE, code="usage")
    if any(ord(ch) < 32 and ch != "\n" for ch in reason):
        fail("--reason must not hold control characters", EXIT_USAGE, code="usage")
    _decision(number, node_url, key_path, wait, as_json, "reject", token, reason)


@cert.command("void")
@click.argument("number")
@click.option("--reason", required=True, type=click.Choice(["lost", "stolen", "error", "replaced"]))
@node_option
@key_option
@wait_option
@json_option
@with_token(OWN_TOKEN_HELP, required=False)
def cert_void(
    number: str,
    reason: str,
    node_url: str,
    key_path: Path,
    wait: bool,
    as_json: bool,
    token: str | None,
) -> None:
    """Void certificate NUMBER before any import decision (as the exporting authority)."""
    _decision(number, node_url, key_path, wait, as_json, "void", token, reason)


TOKEN_HELP = "The node operator's API token (api_token in node.toml)."


@cert.command("show")
@click.argument("number")
@node_option
@with_token(TOKEN_HELP, required=True)
@json_option
def cert_show(number: str, node_url: str, token: str, as_json: bool) -> None:
    """The full record of certificate NUMBER, as this participant's node may show it."""
    number = certificate_number(number)
    answer = NodeClient(node_url, token).get(f"/v1/certificates/{segment(number)}")
    if not answer.ok:
        refused(answer, as_json)
    emit(answer.body, as_json, render_record(answer.body))


@cert.command("pdf")
@click.argument("number")
@node_option
@with_token(TOKEN_HELP, required=True)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the PDF.",
)
@json_option
def cert_pdf(number: str, node_url: str, token: str, out_path: Path, as_json: bool) -> None:
    """Print certificate NUMBER as a KP certificate PDF, with a QR code to verify it.

    Only a party's node can: the exporter and importer are readable only by the exporting and
    importing authorities' nodes.
    """
    from node.pdf import NotAParty, render_certificate_pdf, verification_url

    number = certificate_number(number)
    client = NodeClient(node_url, token)
    answer = client.get(f"/v1/certificates/{segment(number)}")
    if not answer.ok:
        refused(answer, as_json)
    record: dict[str, Any] = answer.body
    found = NodeClient(node_url).get("/v1/public/participants")
    names = (
        {p["code"]: p.get("name", p["code"]) for p in found.body.get("participants", [])}
        if found.ok and isinstance(found.body, dict)
        else {}
    )
    url = verification_url(client.url, record["number"], record["digest"])
    try:
        pdf = render_certificate_pdf(
            record, participant_names=names, verify_url=url, node_url=client.url
        )
    except NotAParty as exc:
        fail(
            f"cannot print {number} from this node: {exc}",
            EXIT_REFUSED,
            as_json=as_json,
            code="not_a_party",
        )
    try:
        out_path.write_bytes(pdf)
    except OSError as exc:
        fail(f"cannot write {out_path}: {exc.strerror}", EXIT_USAGE, as_json=as_json, code="usage")
    emit(
        {"number": record["number"], "pdf": str(out_path), "bytes": len(pdf), "verify_url": url},
        as_json,
        f"{out_path}: certificate {record['number']} ({record['status']}), {len(pdf)} bytes\n"
        f"  QR code opens {url}",
    )


def render_record(c: dict[str, Any]) -> str:
    lines = [
        f"Kimberley Process Certificate {c['number']}",
        f"  status          {c['status']}",
        f"  exporting       {c['exporting_participant']}",
        f"  importing       {c['importing_participant']}",
        f"  origin          {', '.join(c['origin'])}",
        f"  HS code         {c['hs_code']}",
        f"  carats          {c['carats']}",
        f"  value (USD)     {c['value_usd']}",
        f"  parcels         {c['parcels']}",
        f"  issued on       {c['issued_on']}",
        f"  expires on      {c['expires_on']}",
    ]
    if c.get("exporter"):
        lines.append(f"  exporter        {c['exporter']['name']}, {c['exporter']['address']}")
        lines.append(f"  importer        {c['importer']['name']}, {c['importer']['address']}")
    elif c.get("identities"):
        lines.append(f"  parties         {c['identities']}")
    for key in ("replaces", "replaced_by", "reason", "zone"):
        if c.get(key):
            lines.append(f"  {key:<15} {c[key]}")
    lines.append(f"  digest          {c['digest']}")
    lines.append("  history")
    for h in c.get("history", []):
        lines.append(f"    {h['time']}  height {h['height']:<7} {h['type']}")
    return "\n".join(lines)


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
        genesis = Genesis.load(genesis_path)
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
    age_s = (_now_ms() - checked.head_time_ms) / 1000
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
    age_s = (_now_ms() - checked.head_time_ms) / 1000
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


def describe_age(seconds: float) -> str:
    """An age as a person reads it: seconds, minutes, hours or days, never "0.0 hours"."""
    seconds = max(seconds, 0.0)
    if seconds < 90:
        whole = round(seconds)
        return f"{whole} second{'s' if whole != 1 else ''}"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    if seconds < 48 * 3600:
        hours = seconds / 3600
        return f"{hours:.1f} hours" if hours < 10 else f"{round(hours)} hours"
    return f"{seconds / 86400:.1f} days"


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
