"""`kpledger network init`, `join`, `keygen`, `genesis` and `observer`: keys, genesis.json and node.toml files."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import EXIT_USAGE, Command, Group, emit, fail
from node.cli.signing import json_option


@click.group(cls=Group)
def network() -> None:
    """Create a network: keys, genesis.json and node configuration."""


@network.command("init")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to create the network in.",
)
@click.option(
    "--participants",
    required=True,
    help="Comma-separated participant codes, e.g. BE,AE,IN,RU or EU:BE+DE+CZ,AE.",
)
@click.option(
    "--base-port",
    default=7700,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Node i listens on base-port + i.",
)
@click.option("--chain-id", default=None, help="Chain id (default: generated).")
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Encrypt the new private keys (PKCS#8) with the passphrase on this file's first line.",
)
@click.option(
    "--plain-http",
    is_flag=True,
    help="No TLS: http:// addresses, for a benchmark measuring what TLS costs, never for a "
    "network that carries certificates (docs/security.md).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def network_init(
    directory: Path,
    participants: str,
    base_port: int,
    chain_id: str | None,
    passphrase_file: Path | None,
    plain_http: bool,
    as_json: bool,
) -> None:
    """Write per participant authority.pem, node.pem, encryption.pem and node.toml, and genesis.json.

    The nodes speak TLS (https:// addresses in genesis), each showing a certificate for its node
    key, which its peers and clients check against genesis.
    """
    from node.custody import CustodyError, new_passphrase
    from node.netinit import InitError, init_network, parse_participants

    try:
        passphrase = new_passphrase(passphrase_file) if passphrase_file is not None else None
        specs = parse_participants(participants)
        genesis = init_network(
            directory,
            specs,
            base_port=base_port,
            chain_id=chain_id,
            passphrase=passphrase,
            tls=not plain_http,
        )
    except (InitError, CustodyError) as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json, code="usage")
    data = {
        "chain_id": genesis.chain_id,
        "genesis": str(directory / "genesis.json"),
        "nodes": [
            {
                "participant": v.participant,
                "url": v.address,
                "config": str(directory / v.participant / "node.toml"),
            }
            for v in genesis.validators
        ],
    }
    lines = [f"network {genesis.chain_id} created in {directory}"]
    lines += [
        f"  {v.participant:>3}  {v.address}  {directory / v.participant / 'node.toml'}"
        for v in genesis.validators
    ]
    emit(data, as_json, "\n".join(lines))


@network.command("join", cls=Command)
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The network's directory (holding genesis.json).",
)
@click.option("--participant", required=True, help="The new participant, e.g. BW or EU:DE+CZ.")
@click.option("--port", required=True, type=click.IntRange(1, 65535), help="Its node's port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Encrypt the new private keys (PKCS#8) with the passphrase on this file's first line.",
)
@json_option
def network_join(
    directory: Path,
    participant: str,
    port: int,
    host: str,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Prepare a new participant's keys and node.toml; prints the `gov propose admit` to run."""
    from node.custody import CustodyError, new_passphrase
    from node.netinit import InitError, init_joiner, parse_participants

    try:
        passphrase = new_passphrase(passphrase_file) if passphrase_file is not None else None
        [spec] = parse_participants(participant)
        joiner = init_joiner(directory, spec, port=port, host=host, passphrase=passphrase)
    except (InitError, CustodyError, ValueError) as exc:
        fail(str(exc) or "name one participant", EXIT_USAGE, as_json=as_json, code="usage")
    folder = directory / spec.code
    command = (
        f"kpledger gov propose admit --participant {spec.code} --name '{joiner.name}' "
        f"--countries {'+'.join(spec.countries)} --authority-pub {joiner.authority_key.hex()} "
        f"--authority-proof {joiner.authority_proof.hex()} "
        f"--encryption-pub {joiner.encryption_key.hex()} "
        f"--encryption-proof {joiner.encryption_proof.hex()} --node-pub {joiner.node_key.hex()} "
        f"--node-proof {joiner.node_proof.hex()} "
        f"--address {joiner.address} --node URL --key YOUR_AUTHORITY.pem"
    )
    data = {
        "participant": spec.code,
        "config": str(joiner.config),
        "address": joiner.address,
        "authority_key": joiner.authority_key.hex(),
        "encryption_key": joiner.encryption_key.hex(),
        "node_key": joiner.node_key.hex(),
        "authority_proof": joiner.authority_proof.hex(),
        "encryption_proof": joiner.encryption_proof.hex(),
        "node_proof": joiner.node_proof.hex(),
        "propose": command,
    }
    emit(
        data,
        as_json,
        f"{spec.code} prepared in {folder} (node {joiner.address})\n"
        f"once admitted, run: kpledger node run --config {joiner.config}\n"
        f"an active participant proposes its admission:\n  {command}",
    )


# -- the key ceremony (SPEC 6 "Keys stay with their participant") ---------------------------------
@network.command("keygen")
@click.option(
    "--participant", required=True, help="This participant: a code, e.g. BE, or EU:BE+DE+CZ."
)
@click.option("--host", required=True, help="The host name or address other nodes reach it at.")
@click.option("--port", required=True, type=click.IntRange(1, 65535), help="Its node's port.")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write DIR/<CODE>/ (keys, node.toml) and DIR/<CODE>.descriptor.json.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Encrypt the new private keys (PKCS#8) with the passphrase on this file's first line.",
)
@json_option
def network_keygen(
    participant: str,
    host: str,
    port: int,
    directory: Path,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Make this participant's keys on this machine, and its public descriptor.

    Send only DIR/<CODE>.descriptor.json (public keys, countries, address: no private key) to
    whoever assembles genesis, and read its fingerprint to them by another channel. Put the
    genesis.json they send back in DIR/.
    """
    from node.ceremony import descriptor_path, keygen
    from node.custody import CustodyError, new_passphrase
    from node.netinit import InitError, parse_participants

    try:
        passphrase = new_passphrase(passphrase_file) if passphrase_file is not None else None
        [spec] = parse_participants(participant)
        descriptor = keygen(directory, spec, host, port, passphrase)
    except (InitError, CustodyError, ValueError) as exc:
        fail(str(exc) or "name one participant", EXIT_USAGE, as_json=as_json, code="usage")
    out = descriptor_path(directory, spec.code)
    data = {
        "participant": spec.code,
        "descriptor": str(out),
        "fingerprint": descriptor.fingerprint,
        "address": descriptor.address,
        "config": str(directory / spec.code / "node.toml"),
    }
    emit(
        data,
        as_json,
        f"{spec.code}: keys in {directory / spec.code}/ (private: they stay here)\n"
        f"  descriptor  {out}\n  fingerprint {descriptor.fingerprint}\n"
        f"  send the descriptor to whoever assembles genesis; put genesis.json in {directory}/",
    )


@network.command("genesis")
@click.option(
    "--descriptor",
    "descriptors",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A participant's descriptor (repeat; the validators are in this order).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The genesis.json to write.",
)
@click.option("--chain-id", default=None, help="Chain id (default: generated).")
@json_option
def network_genesis(
    descriptors: tuple[Path, ...], out: Path, chain_id: str | None, as_json: bool
) -> None:
    """Assemble genesis.json from the participants' public descriptors alone."""
    from node.ceremony import assemble_genesis, load_descriptor
    from node.files import save_genesis
    from node.netinit import InitError

    if out.exists():
        fail(f"{out} already exists: refusing to overwrite a genesis", EXIT_USAGE, code="usage")
    try:
        loaded = [load_descriptor(path) for path in descriptors]
        genesis = assemble_genesis(loaded, chain_id=chain_id)
    except InitError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json, code="usage")
    save_genesis(genesis, out)
    data = {
        "chain_id": genesis.chain_id,
        "genesis": str(out),
        "genesis_hash": genesis.hash.hex(),
        "participants": [
            {"code": d.code, "address": d.address, "fingerprint": d.fingerprint} for d in loaded
        ],
    }
    lines = [f"genesis of {genesis.chain_id} written to {out} (hash {genesis.hash.hex()})"]
    lines += [f"  {d.code:>3}  {d.address}  descriptor {d.fingerprint}" for d in loaded]
    emit(data, as_json, "\n".join(lines))


@network.command("observer", cls=Command)
@click.option(
    "--genesis",
    "genesis_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The network's genesis.json (copied into DIR).",
)
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the observer's node.toml, node.pem and genesis.json.",
)
@click.option(
    "--peers",
    required=True,
    help="Comma-separated URLs of the registered nodes it syncs from (the ones that issued it "
    "a sync token).",
)
@click.option("--port", default=7800, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The sync tokens (`TOKEN`, or one `URL TOKEN` line per peer), copied to DIR/sync.token.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Encrypt the observer's node key (PKCS#8) with the passphrase on this file's first line.",
)
@json_option
def network_observer(
    genesis_path: Path,
    directory: Path,
    peers: str,
    port: int,
    host: str,
    token_file: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Prepare an observer: a node of no participant that never votes, syncs final blocks from
    its peers (checking every commit certificate) and serves the public routes and /verify.

    Each peer's operator authorises it with `kpledger token add --scope sync` (the blocks carry
    shipment facts that are not public); put the tokens in DIR/sync.token.
    """
    from node.custody import CustodyError, new_passphrase
    from node.netinit import InitError
    from node.observer_setup import TOKEN_FILE, init_observer

    try:
        passphrase = new_passphrase(passphrase_file) if passphrase_file is not None else None
        made = init_observer(
            genesis_path,
            directory,
            [p for p in peers.split(",") if p.strip()],
            port=port,
            host=host,
            token_file=token_file,
            passphrase=passphrase,
        )
    except (InitError, CustodyError) as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json, code="usage")
    data = {
        "config": str(made.config),
        "address": made.address,
        "node_key": made.node_key.hex(),
        "peers": list(made.peers),
        "unlisted_peers": list(made.unlisted),
        "token_file": str(directory / TOKEN_FILE),
        "token_written": made.token_written,
    }
    lines = [f"observer prepared in {directory} (listening at {made.address})"]
    if made.unlisted:
        lines.append(
            f"  not in genesis (skipped until the chain admits them): {', '.join(made.unlisted)}"
        )
    if not made.token_written:
        lines.append(
            "  each peer's operator issues a token: kpledger token add --config node.toml "
            f"--name observer --scope sync\n  put them in {directory / TOKEN_FILE} "
            "(`TOKEN`, or one `URL TOKEN` line per peer)"
        )
    lines.append(f"run: kpledger node run --config {made.config}")
    emit(data, as_json, "\n".join(lines))
