"""`kpledger gov emergency draft|sign|apply`: the recovery of a halted chain, agreed off the chain
by the authorities and recorded on it by the first block it judges (docs/emergency.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.errors import RecoveryDuplicateSigner, StoreLocked
from ledger.genesis import Validator
from ledger.governance import RecoveryDocument, SignedRecovery, check_recovery, recovered_registry
from ledger.registry import Registry
from ledger.store import Store
from node import recovery as recovery_file
from node.cli.common import EXIT_USAGE, Group, emit, fail
from node.cli.signing import key_option, signing_key
from node.config import NodeConfig

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The node.toml of this operator's node (stopped: its store is read and written).",
)
json_flag = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _open(config_path: Path) -> tuple[NodeConfig, Store, Registry]:
    config = NodeConfig.load(config_path)
    genesis = config.genesis()
    try:
        store = Store(config.data_dir, genesis)
    except StoreLocked:
        fail(
            f"the store {config.data_dir} is in use: stop the node first (a recovery is given to "
            "a stopped node and taken when it starts)",
            EXIT_USAGE,
            code="store_locked",
        )
    return config, store, store.registry() or Registry.from_genesis(genesis)


def _summary(signed: SignedRecovery) -> str:
    d = signed.document
    lines = [
        f"recovery of chain {d.chain_id} at height {d.height}, on top of {d.prev_hash.hex()}",
        f"validators ({len(d.validators)}):",
        *(f"  {v.participant} {v.node_key.hex()} {v.address}" for v in d.validators),
    ]
    lines += [f"parameter {name} = {value}" for name, value in d.parameters]
    lines += [f"reason: {d.reason}"] if d.reason else []
    lines.append(
        f"signed by ({len(signed.signatures)}): "
        + (", ".join(code for code, _ in signed.signatures) or "nobody yet")
    )
    return "\n".join(lines)


@click.group(cls=Group)
def emergency() -> None:
    """Recover a halted chain: a new validator set and parameters from the next height, signed
    off the chain by more than 2/3 of the active participants' authority keys."""


@emergency.command("draft")
@config_option
@click.option(
    "--remove",
    "removed",
    multiple=True,
    help="A validator's node key (hex) to leave out of the recovered set (repeatable).",
)
@click.option(
    "--add",
    "added",
    multiple=True,
    help="A validator to add, PARTICIPANT,NODE_KEY_HEX,URL (repeatable).",
)
@click.option(
    "--parameter",
    "parameters",
    multiple=True,
    help="A parameter to change, NAME=VALUE (repeatable); each checked against its bounds.",
)
@click.option("--reason", default="", help="Why: recorded on the chain with the recovery.")
@click.option(
    "--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="The draft."
)
@json_flag
def draft(
    config_path: Path,
    removed: tuple[str, ...],
    added: tuple[str, ...],
    parameters: tuple[str, ...],
    reason: str,
    out: Path,
    as_json: bool,
) -> None:
    """Write the recovery document for the height after this node's final head: the validators
    in force less --remove plus --add, the parameters changed by --parameter. Nobody signed yet."""
    _, store, registry = _open(config_path)
    try:
        head = store.head
        if head is None:
            fail("this node has no final block: there is no chain to recover", EXIT_USAGE)
        gone = set()
        for text in removed:
            try:
                gone.add(bytes.fromhex(text))
            except ValueError:
                fail(f"--remove {text}: not a hex node key", EXIT_USAGE)
        unknown = gone - {v.node_key for v in registry.validators}
        if unknown:
            fail(f"--remove {sorted(unknown)[0].hex()}: no validator in force", EXIT_USAGE)
        validators = [v for v in registry.validators if v.node_key not in gone]
        for text in added:
            parts = text.split(",")
            if len(parts) != 3:
                fail(f"--add {text}: PARTICIPANT,NODE_KEY_HEX,URL", EXIT_USAGE)
            try:
                validators.append(Validator(parts[0], bytes.fromhex(parts[1]), parts[2]))
            except ValueError:
                fail(f"--add {text}: the node key is not hex", EXIT_USAGE)
        changes: dict[str, int] = {}
        for text in parameters:
            name, _, value = text.partition("=")
            if not value.strip().isdigit():
                fail(f"--parameter {text}: NAME=VALUE with a non-negative integer", EXIT_USAGE)
            changes[name.strip()] = int(value)
        document = RecoveryDocument(
            chain_id=store.genesis.chain_id,
            height=head.height + 1,
            prev_hash=head.hash,
            validators=tuple(validators),
            parameters=tuple(sorted(changes.items())),
            reason=reason,
        )
        # Decoded as the chain decodes it, and checked but for the signatures, before anyone signs.
        document = RecoveryDocument.from_wire(document.to_wire())
        recovered_registry(registry, document)
    finally:
        store.close()
    signed = SignedRecovery(document, ())
    recovery_file.write(out, signed)
    emit(recovery_file.to_json(signed), as_json, f"{_summary(signed)}\nwritten to {out}")


@emergency.command("sign")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@key_option
@click.option("--as", "code", required=True, help="The participant whose authority key this is.")
@json_flag
def sign(path: Path, key_path: str, code: str, as_json: bool) -> None:
    """Add this authority's signature to the recovery document in PATH (read it first: the
    signature is over every field of the document, under the tag kp/recovery/1)."""
    signed = recovery_file.read(path)
    if any(signer == code for signer, _ in signed.signatures):
        raise RecoveryDuplicateSigner(f"{code} has signed this recovery already")
    signer = signing_key(key_path)
    signed = signed.with_signature(code, signed.document.sign(signer))
    recovery_file.write(path, signed)
    emit(recovery_file.to_json(signed), as_json, f"{_summary(signed)}\nwritten to {path}")


@emergency.command("apply")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@config_option
@json_flag
def apply(path: Path, config_path: Path, as_json: bool) -> None:
    """Give the signed recovery in PATH to this (stopped) node: checked against its final head
    and register, then kept beside its data directory; the node judges its next block by it
    when it starts, and that block records it."""
    signed = recovery_file.read(path)
    config, store, registry = _open(config_path)
    try:
        head = store.head
        if head is None:
            fail("this node has no final block: there is no chain to recover", EXIT_USAGE)
        check_recovery(signed, registry, store.genesis.chain_id, head.height + 1, head.hash)
    finally:
        store.close()
    target = recovery_file.recovery_path(config.data_dir)
    recovery_file.write(target, signed)
    emit(
        {**recovery_file.to_json(signed), "applied": str(target)},
        as_json,
        f"{_summary(signed)}\napplied: {target}; start the node",
    )
