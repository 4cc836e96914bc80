"""`kpledger gov ...` (proposals and votes on the participant register) and `kpledger cert endorse`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ledger import authoring
from ledger import governance as gov
from ledger.errors import MalformedInput
from ledger.keys import is_encrypted_pem
from node.cli.common import (
    EXIT_USAGE,
    Command,
    Group,
    certificate_number,
    emit,
    fail,
    passphrase_option,
    refused,
)
from node.cli.register import network_of
from node.cli.signing import (
    as_option,
    json_option,
    key_option,
    node_option,
    now_ms,
    private_key,
    public_view,
    signer_for,
    signing_key,
    submit,
    wait_option,
)
from node.client import NodeClient, segment

#: By default a change takes effect this many blocks after the current height.
DEFAULT_LEAD = 10


def public_key(value: str, what: str) -> bytes:
    """A public key given as 64 hex characters, or as a PEM file (private or public, Ed25519 or
    X25519): the 32 raw bytes."""
    text = value.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    path = Path(value)
    try:
        data = path.read_bytes()
    except OSError:
        fail(f"{what}: {value} is neither 64 hex characters nor a readable PEM file", EXIT_USAGE)
    if is_encrypted_pem(data):  # an encrypted private key: opened with the passphrase
        opened = private_key(value)
        if opened is None:
            fail(f"{what}: {value} holds no Ed25519 or X25519 key", EXIT_USAGE)
        return opened.public_bytes
    key: Any
    try:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError):
            fail(f"{what}: {value} holds no PEM key", EXIT_USAGE)
    if not isinstance(key, ed25519.Ed25519PublicKey | x25519.X25519PublicKey):
        fail(f"{what}: {value} is not an Ed25519 or X25519 key", EXIT_USAGE)
    raw: bytes = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def proof_of(
    what: str,
    key_option_value: str | None,
    proof_hex: str | None,
    chain_id: str,
    participant: str,
    role: str,
    public: bytes,
) -> bytes:
    """The proof of possession of `public`: made here from its private key file, or given in hex
    (the key's holder made it: `kpledger key prove`, printed by `kpledger network join`)."""
    if proof_hex is not None:
        try:
            proof = bytes.fromhex(proof_hex.strip())
        except ValueError:
            proof = b""
        if len(proof) != 64:
            fail(f"{what}: a proof of possession is 128 hex characters", EXIT_USAGE, code="usage")
        return proof
    key = private_key(key_option_value)
    if key is None or key.public_bytes != public:
        fail(
            f"{what}: the proof of possession of the key is needed: give its private key file, "
            "or the proof its holder made (kpledger key prove)",
            EXIT_USAGE,
            code="usage",
        )
    return authoring.prove(key, chain_id, participant, role)


def _height(client: NodeClient) -> int:
    head = client.get("/v1/public/head")
    if head.status == 404:
        return 0
    if not head.ok:
        refused(head, False)
    return int(head.body["header"]["height"])


@click.group(cls=Group)
def gov_group() -> None:
    """Propose changes to the participant register, vote on them, and follow them."""


@gov_group.command("propose")
@click.argument("kind", type=click.Choice(gov.KINDS))
@click.option("--participant", "subject", default="", help="The participant the change concerns.")
@click.option("--name", default=None, help="admit: the participant's name.")
@click.option("--countries", default=None, help="admit: its ISO countries, e.g. BW or DE+CZ.")
@click.option(
    "--authority-key-file",
    default=None,
    type=click.Path(path_type=Path, dir_okay=False),
    help="admit: its authority key (PEM, private or public).",
)
@click.option("--authority-pub", default=None, help="admit: its authority public key (hex).")
@click.option("--authority-proof", default=None, help="admit: its proof of possession (hex).")
@click.option("--encryption-pub", default=None, help="admit: its X25519 key (hex or PEM file).")
@click.option("--encryption-proof", default=None, help="admit: its proof of possession (hex).")
@click.option("--node-pub", default=None, help="admit/add_validator/remove_validator: node key.")
@click.option("--node-proof", default=None, help="admit: the node key's proof of possession.")
@click.option("--address", default=None, help="admit/add_validator: the node's URL.")
@click.option("--zones", default=None, help="restrict: approved zones, comma-separated.")
@click.option("--monitoring-pub", default=None, help="restrict: the monitoring team's key.")
@click.option("--parameter", default=None, help="set_parameter: the parameter's name.")
@click.option("--value", default=None, type=click.IntRange(0), help="set_parameter: its value.")
@click.option(
    "--key-kind", default=None, type=click.Choice(gov.KEY_KINDS), help="replace_key: which key."
)
@click.option("--new-pub", default=None, help="replace_key: the new public key (hex or PEM).")
@click.option("--new-proof", default=None, help="replace_key: its proof of possession (hex).")
@click.option(
    "--effective-height",
    default=None,
    type=click.IntRange(1),
    help=f"Height the change takes effect at (default: current height + {DEFAULT_LEAD}).",
)
@node_option
@key_option
@as_option
@wait_option
@json_option
def gov_propose(
    kind: str,
    subject: str,
    name: str | None,
    countries: str | None,
    authority_key_file: Path | None,
    authority_pub: str | None,
    authority_proof: str | None,
    encryption_pub: str | None,
    encryption_proof: str | None,
    node_pub: str | None,
    node_proof: str | None,
    address: str | None,
    zones: str | None,
    monitoring_pub: str | None,
    parameter: str | None,
    value: int | None,
    key_kind: str | None,
    new_pub: str | None,
    new_proof: str | None,
    effective_height: int | None,
    node_url: str,
    key_path: Path,
    signer: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Propose a change of KIND to the register; prints the proposal id (your vote is yes).

    It passes when more than the network's threshold (default 2/3) of active participants vote
    yes by effective height - 2, and takes effect at the effective height.
    """
    key = signing_key(key_path)
    client = NodeClient(node_url)
    chain_id, registry = network_of(client)
    proposer = signer_for(registry, key, signer)
    subject = subject.upper()
    if kind != gov.SET_PARAMETER and not subject:
        fail(f"{kind} needs --participant CODE", EXIT_USAGE, as_json=as_json, code="usage")
    current = registry.participants.get(subject)

    def need(value: Any, option: str) -> Any:
        if value is None:
            fail(f"{kind} needs {option}", EXIT_USAGE, as_json=as_json, code="usage")
        return value

    args: list[Any] = []
    if kind == gov.ADMIT:
        from ledger.certificate import country_name

        authority_source = (
            str(authority_key_file)
            if authority_key_file is not None
            else need(authority_pub, "--authority-pub")
        )
        authority = public_key(authority_source, "--authority-key-file/--authority-pub")
        encryption_source = need(encryption_pub, "--encryption-pub")
        encryption = public_key(encryption_source, "--encryption-pub")
        node_key = public_key(node_pub, "--node-pub") if node_pub else b""
        args = [
            name or country_name(subject),
            [c.strip().upper() for c in (countries or subject).replace(",", "+").split("+")],
            authority,
            encryption,
            node_key,
            (address or "") if node_key else "",
            proof_of(
                "admit",
                authority_source,
                authority_proof,
                chain_id,
                subject,
                gov.AUTHORITY,
                authority,
            ),
            proof_of(
                "admit",
                encryption_source,
                encryption_proof,
                chain_id,
                subject,
                gov.ENCRYPTION,
                encryption,
            ),
            proof_of("admit", node_pub, node_proof, chain_id, subject, gov.NODE, node_key)
            if node_key
            else b"",
        ]
    elif kind == gov.ADD_VALIDATOR:
        registered = current.node_key if current is not None else None
        validator_key = public_key(node_pub, "--node-pub") if node_pub else registered
        args = [
            need(validator_key, "--node-pub"),
            need(address or (current.address if current is not None else None), "--address"),
        ]
    elif kind == gov.REMOVE_VALIDATOR:
        if node_pub:
            args = [public_key(node_pub, "--node-pub")]
        else:
            theirs = [
                bytes.fromhex(v["node_key"])
                for v in _validators(client)
                if v["participant"] == subject
            ]
            if len(theirs) != 1:
                fail("name the validator with --node-pub", EXIT_USAGE, as_json=as_json)
            args = [theirs[0]]
    elif kind == gov.RESTRICT:
        zone_list = [z.strip() for z in need(zones, "--zones").split(",") if z.strip()]
        args = [zone_list, public_key(need(monitoring_pub, "--monitoring-pub"), "--monitoring-pub")]
    elif kind == gov.SET_PARAMETER:
        subject = ""
        args = [need(parameter, "--parameter"), need(value, "--value")]
    elif kind == gov.REPLACE_KEY:
        kind_of_key = need(key_kind, "--key-kind")
        new_public = public_key(need(new_pub, "--new-pub"), "--new-pub")
        proof = proof_of(
            "replace_key", new_pub, new_proof, chain_id, subject, kind_of_key, new_public
        )
        args = [kind_of_key, new_public, proof]
    effective = effective_height or _height(client) + DEFAULT_LEAD
    try:
        event = authoring.propose(
            chain_id, proposer, kind, subject, args, effective, key, created_ms=now_ms()
        )
    except MalformedInput as exc:
        fail(exc.message, EXIT_USAGE, as_json=as_json, code=exc.code)
    submit(
        client,
        event,
        wait,
        as_json,
        {
            "proposal_id": event.event_id.hex(),
            "kind": kind,
            "subject": subject,
            "effective_height": effective,
            "proposer": proposer,
        },
    )


def _validators(client: NodeClient) -> list[dict[str, Any]]:
    found = client.get("/v1/public/participants")
    if not found.ok:
        refused(found, False)
    validators: list[dict[str, Any]] = found.body.get("validators", [])
    return validators


@gov_group.command("vote")
@click.argument("proposal_id")
@click.option("--yes/--no", "approve", default=None, help="Your vote.")
@node_option
@key_option
@as_option
@wait_option
@json_option
def gov_vote(
    proposal_id: str,
    approve: bool | None,
    node_url: str,
    key_path: Path,
    signer: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Vote on proposal PROPOSAL_ID (one vote per participant; votes close at effective - 2)."""
    if approve is None:
        fail("say --yes or --no", EXIT_USAGE, as_json=as_json, code="usage")
    pid = _proposal_id(proposal_id)
    key = signing_key(key_path)
    client = NodeClient(node_url)
    chain_id, registry = network_of(client)
    voter = signer_for(registry, key, signer)
    event = authoring.vote(chain_id, voter, pid, bool(approve), key, created_ms=now_ms())
    submit(
        client,
        event,
        wait,
        as_json,
        {"proposal_id": pid.hex(), "voter": voter, "approve": bool(approve)},
    )


def _proposal_id(typed: str) -> bytes:
    """A proposal id as a person pastes it (spaces around it, any case): 32 bytes, or exit 2."""
    try:
        pid = bytes.fromhex(typed.strip())
    except ValueError:
        pid = b""
    if len(pid) != 32:
        fail("a proposal id is 64 hex characters", EXIT_USAGE, code="usage")
    return pid


def _render(p: dict[str, Any]) -> str:
    tally = p["tally"]
    needed = f" of {tally['needed']} needed" if "needed" in tally else ""
    args = ", ".join(f"{k}={v}" for k, v in p.get("args", {}).items())
    lines = [
        f"{p['proposal_id']}",
        f"  {p['kind']} {p['subject'] or ''}{(' (' + args + ')') if args else ''}",
        f"  status          {p['status']}",
        f"  proposed        by {p['proposer']} at height {p['proposed_height']}",
        f"  effective       height {p['effective_height']} (votes close at {p['voting_closes']})",
        f"  tally           {tally['yes']} yes, {tally['no']} no{needed}",
    ]
    if p.get("note"):
        lines.append(f"  note            {p['note']}")
    for v in p.get("votes", []):
        lines.append(
            f"    {v['participant']:>3} {'yes' if v['approve'] else 'no ':<3} {v['height']}"
        )
    return "\n".join(lines)


@gov_group.command("list")
@click.option("--status", default=None, type=click.Choice(gov.PROPOSAL_STATUSES))
@node_option
@json_option
def gov_list(status: str | None, node_url: str, as_json: bool) -> None:
    """Every proposal on the ledger, with its status and tally."""
    answer = NodeClient(node_url).get("/v1/public/governance/proposals", status=status)
    if not answer.ok:
        refused(answer, as_json)
    items = answer.body["proposals"]
    lines = [
        f"{p['proposal_id'][:16]}  {p['status']:<8} {p['kind']:<16} {p['subject'] or '-':<3} "
        f"effective {p['effective_height']:<7} {p['tally']['yes']} yes {p['tally']['no']} no"
        for p in items
    ]
    emit(answer.body, as_json, "\n".join(lines) or "no proposals")


@gov_group.command("show")
@click.argument("proposal_id")
@node_option
@json_option
def gov_show(proposal_id: str, node_url: str, as_json: bool) -> None:
    """One proposal: the change, its status, the tally and each vote."""
    pid = _proposal_id(proposal_id).hex()
    answer = NodeClient(node_url).get(f"/v1/public/governance/proposals/{segment(pid)}")
    if not answer.ok:
        refused(answer, as_json)
    emit(answer.body, as_json, _render(answer.body))


# -- endorsement --------------------------------------------------------------------------------
@click.command("endorse", cls=Command)
@click.argument("number")
@node_option
@click.option(
    "--key",
    "key_path",
    required=True,
    help="The monitoring team's key for the restricted exporting participant: a PEM file "
    "(encrypted or not) or a pkcs11: URI.",
)
@passphrase_option
@wait_option
@json_option
def cert_endorse(number: str, node_url: str, key_path: str, wait: bool, as_json: bool) -> None:
    """Endorse certificate NUMBER as the monitoring team of its restricted exporter; only then
    may the importer confirm it."""
    number = certificate_number(number)
    monitoring_key = signing_key(key_path)
    client = NodeClient(node_url)
    chain_id, _ = network_of(client)
    public = public_view(client, number, as_json)
    event = authoring.endorse(
        chain_id,
        public["exporting_participant"],
        number,
        bytes.fromhex(public["digest"]),
        monitoring_key,
        created_ms=now_ms(),
    )
    submit(client, event, wait, as_json, {"number": number})
