"""`kpledger cert ...`: issuing, confirming, rejecting, voiding and showing certificates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ledger import authoring
from ledger.certificate import Certificate
from ledger.events import MAX_REASON
from node.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    Group,
    certificate_number,
    emit,
    fail,
    refused,
    with_token,
)
from node.cli.register import network_of
from node.cli.signing import (
    json_option,
    key_option,
    node_option,
    now_ms,
    public_view,
    signing_key,
    submit,
    wait_option,
)
from node.client import NodeClient, segment


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
    key = signing_key(key_path)
    client = NodeClient(node_url, token)
    chain_id, registry = network_of(client, genesis_path)
    issuance = authoring.issue(registry, chain_id, certificate, key, created_ms=now_ms(), salt=salt)
    submit(
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
    key = signing_key(key_path)
    client = NodeClient(node_url, token)
    chain_id, _ = network_of(client)
    public = public_view(client, number, as_json)
    digest = bytes.fromhex(public["digest"])
    importer, exporter = public["importing_participant"], public["exporting_participant"]
    now = now_ms()
    if kind == "confirm":
        event = authoring.confirm_import(chain_id, importer, number, digest, key, created_ms=now)
    elif kind == "reject":
        event = authoring.reject_import(
            chain_id, importer, number, digest, reason or "", key, created_ms=now
        )
    else:
        event = authoring.void(chain_id, exporter, number, reason or "", key, created_ms=now)
    submit(client, event, wait, as_json, {"number": number})


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
        f"  status          {c['status']}"
        + ("  (historical record: from before the network)" if c.get("historical") else ""),
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
