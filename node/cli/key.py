"""`kpledger key rotate`, `key prove` and `key hsm-import`: a participant's keys on the ledger and
in its hardware token."""

from __future__ import annotations

from pathlib import Path

import click

from ledger import authoring
from ledger import governance as gov
from ledger.keys import EncryptionKey, Signer, SigningKey
from node.cli.common import (
    EXIT_USAGE,
    Command,
    Group,
    emit,
    fail,
    open_signer,
    passphrase_from_context,
    passphrase_option,
)
from node.cli.register import network_of
from node.cli.signing import (
    as_option,
    json_option,
    key_option,
    node_option,
    now_ms,
    private_key,
    signer_for,
    signing_key,
    submit,
    wait_option,
)
from node.client import NodeClient
from node.custody import (
    PKCS11_SCHEME,
    CustodyError,
    Pkcs11Signer,
    Pkcs11Uri,
    hsm_import,
    load_encryption_key,
    load_signing_key,
)
from node.files import write_private_pem


@click.group(cls=Group)
def key() -> None:
    """Manage this participant's keys on the ledger."""


@key.command("rotate")
@click.option("--kind", "key_kind", required=True, type=click.Choice(gov.KEY_KINDS))
@click.option(
    "--new-key",
    "new_key_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The new private key (PEM); with --generate, where to write it.",
)
@click.option("--generate", is_flag=True, help="Generate the new key and write it (mode 0600).")
@node_option
@key_option
@as_option
@wait_option
@json_option
def key_rotate(
    key_kind: str,
    new_key_path: Path,
    generate: bool,
    node_url: str,
    key_path: Path,
    signer: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Replace this participant's authority or encryption key, signing with the current
    authority key (--key). The new key is in force from the next block; events signed with
    the old one after that are refused. For a lost or stolen key: `kpledger gov propose
    replace_key`."""
    new: SigningKey | EncryptionKey
    pem = b""
    passphrase = passphrase_from_context()
    if generate:
        if new_key_path.exists():
            fail(f"{new_key_path} exists: refusing to overwrite a key", EXIT_USAGE, as_json=as_json)
        new = SigningKey.generate() if key_kind == gov.AUTHORITY else EncryptionKey.generate()
        # Written encrypted when a passphrase is given (--passphrase-file or the environment).
        try:
            pem = new.to_pem(passphrase.get(str(new_key_path)) if passphrase.given else None)
        except CustodyError as exc:
            fail(str(exc), EXIT_USAGE, as_json=as_json, code="key_unavailable")
    else:
        try:
            if key_kind == gov.AUTHORITY:
                new = load_signing_key(new_key_path, passphrase)
            else:
                new = load_encryption_key(new_key_path, passphrase)
        except CustodyError as exc:
            fail(str(exc), EXIT_USAGE, as_json=as_json, code="key_unavailable")
    current = signing_key(key_path)
    client = NodeClient(node_url)
    chain_id, registry = network_of(client)
    participant = signer_for(registry, current, signer)
    new_public = new.public_bytes
    # The new key signs that it is the participant's key of that kind on this chain.
    event = authoring.rotate_key(chain_id, participant, key_kind, new, current, created_ms=now_ms())
    if generate:
        write_private_pem(new_key_path, pem)  # before submitting: the key must never be lost
    submit(
        client,
        event,
        wait,
        as_json,
        {
            "participant": participant,
            "key_kind": key_kind,
            "new_public_key": new_public.hex(),
            "new_key_file": str(new_key_path),
        },
    )


@key.command("prove")
@click.option("--role", required=True, type=click.Choice(gov.KEY_ROLES), help="The key's role.")
@click.option("--participant", required=True, help="The participant whose key it is (to be).")
@click.option(
    "--key-file",
    required=True,
    help="The private key: a PEM file (encrypted or not), Ed25519, or X25519 for the encryption "
    "role; or the pkcs11: URI of an Ed25519 key in a token.",
)
@passphrase_option
@click.option("--chain-id", default=None, help="The network's chain id (or --node).")
@click.option("--node", "node_url", default=None, help="A node of the network, for its chain id.")
@json_option
def key_prove(
    role: str,
    participant: str,
    key_file: str,
    chain_id: str | None,
    node_url: str | None,
    as_json: bool,
) -> None:
    """Print the proof of possession of a key (for `gov propose admit|replace_key` made by
    another participant): the key signs that it is PARTICIPANT's ROLE key on this chain."""
    if chain_id is None:
        if node_url is None:
            fail("give --chain-id or --node", EXIT_USAGE, as_json=as_json, code="usage")
        chain_id, _ = network_of(NodeClient(node_url))
    key: Signer | EncryptionKey | None
    if key_file.startswith(PKCS11_SCHEME):
        if role == gov.ENCRYPTION:
            fail("an encryption key is X25519, which tokens do not hold here: give its PEM file",
                 EXIT_USAGE, as_json=as_json, code="usage")  # fmt: skip
        key = open_signer(key_file)
    else:
        if not Path(key_file).is_file():
            fail(f"--key-file {key_file}: no such file", EXIT_USAGE, as_json=as_json, code="usage")
        key = private_key(key_file)
    wanted = EncryptionKey if role == gov.ENCRYPTION else (SigningKey, Pkcs11Signer)
    if not isinstance(key, wanted):
        curve = "X25519" if role == gov.ENCRYPTION else "Ed25519"
        fail(f"{key_file} holds no {curve} private key", EXIT_USAGE, as_json=as_json, code="usage")
    proof = authoring.prove(key, chain_id, participant.upper(), role)
    data = {
        "participant": participant.upper(),
        "role": role,
        "public_key": key.public_bytes.hex(),
        "proof": proof.hex(),
    }
    emit(data, as_json, proof.hex())


@key.command("hsm-import", cls=Command)
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The key to import: an Ed25519 PKCS#8 PEM file (encrypted or not).",
)
@click.option(
    "--uri",
    required=True,
    help="Where to put it: pkcs11:token=T;object=LABEL?module-path=LIB&pin-source=file:PINFILE "
    "(RFC 7512).",
)
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def hsm_import_command(key_path: Path, uri: str, as_json: bool) -> None:
    """Import the Ed25519 key in KEY.pem into the PKCS#11 token URI names: the token keeps it
    unreadable (sensitive, not extractable) and signs with it; then the URI stands wherever the
    key file did (--key, node.toml's node_key and authority_key). The PEM file is left as it
    is: keep it offline as the backup, or destroy it (docs/security.md)."""
    try:
        parsed = Pkcs11Uri.parse(uri)
        key = load_signing_key(key_path, passphrase_from_context())
        signer = hsm_import(key, parsed)
    except CustodyError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json, code="key_unavailable")
    data = {
        "uri": parsed.shown,
        "public_key": signer.public_bytes.hex(),
        "key_id": key.key_id,
    }
    emit(
        data,
        as_json,
        f"imported {key_path} (key {key.key_id}, public {signer.public_bytes.hex()}) into "
        f"{parsed.shown}\nthe token signs with it now; use the URI as --key or in node.toml",
    )
