"""What the commands that sign events share: the options, the authority key, and submitting an
event (and waiting for it to be final)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ledger.errors import MalformedInput, WrongPassphrase
from ledger.events import Event
from ledger.keys import EncryptionKey, Signer, SigningKey, is_encrypted_pem
from ledger.registry import Registry
from node.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    emit,
    fail,
    open_signer,
    passphrase_from_context,
    passphrase_option,
    refused,
)
from node.client import ConnectionFailed, NodeClient, segment
from node.custody import CustodyError

WAIT_TIMEOUT_S = 120.0

F = TypeVar("F", bound=Callable[..., Any])

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

as_option = click.option(
    "--as",
    "signer",
    default=None,
    help="The participant the key signs for (default: the one whose authority key it is).",
)


def now_ms() -> int:
    return int(time.time() * 1000)


def signing_key(ref: str | Path) -> Signer:
    """The authority key --key names: a PEM file (encrypted or not) or a pkcs11: URI."""
    return open_signer(ref)


def private_key(value: str | None) -> SigningKey | EncryptionKey | None:
    """The private key a PEM file holds (for its proof of possession), or None (hex, or a public
    key file)."""
    if value is None or len(value.strip()) == 64:
        return None
    path = Path(value)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    secret = None
    if is_encrypted_pem(data):
        try:
            secret = passphrase_from_context().get(str(path))
        except CustodyError as exc:
            fail(str(exc), EXIT_USAGE, code="key_unavailable")
    for load in (SigningKey.from_pem, EncryptionKey.from_pem):
        try:
            return load(data, secret)
        except WrongPassphrase as exc:
            fail(f"{path}: {exc.message}", EXIT_USAGE, code="key_unavailable")
        except MalformedInput:
            continue
    return None


def signer_for(registry: Registry, key: Signer, given: str | None) -> str:
    if given:
        return given
    for participant in registry.participants.values():
        if participant.authority_key == key.public_bytes:
            return participant.code
    fail(
        "the key is no participant's registered authority key (name the participant with --as)",
        EXIT_USAGE,
        code="usage",
    )


def submit(
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


def public_view(client: NodeClient, number: str, as_json: bool) -> dict[str, Any]:
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
