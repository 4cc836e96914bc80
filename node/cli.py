"""The `kpledger` command line (click): networks, nodes, certificates, verification and audit."""

from __future__ import annotations

from pathlib import Path

import click

from node import cli_audit, cli_cert, cli_gov, cli_reports, explorer
from node.cli_common import EXIT_USAGE, Group, emit, fail


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kpledger")
def main() -> None:
    """kpledger: a shared ledger of Kimberley Process certificates.

    Each KP participant runs a node; certificates are issued, confirmed, rejected and voided as
    signed events that the nodes agree on. Anyone can verify a certificate through the public
    endpoint with `kpledger verify`.
    """


# -- network and nodes ----------------------------------------------------------------------------
@main.group(cls=Group)
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def network_init(
    directory: Path, participants: str, base_port: int, chain_id: str | None, as_json: bool
) -> None:
    """Write per participant authority.pem, node.pem, encryption.pem and node.toml, and genesis.json."""
    from node.netinit import InitError, init_network, parse_participants

    try:
        specs = parse_participants(participants)
        genesis = init_network(directory, specs, base_port=base_port, chain_id=chain_id)
    except InitError as exc:
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


@main.group(cls=Group)
def node() -> None:
    """Run a node."""


@node.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The node's node.toml.",
)
def node_run(config_path: Path) -> None:
    """Run one node in the foreground; SIGINT or SIGTERM stops it cleanly."""
    from ledger.errors import StoreError
    from node.config import ConfigError
    from node.runner import run

    try:
        run(config_path)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE, code="config")
    except StoreError as exc:
        fail(exc.message, EXIT_USAGE, code=exc.code)


@main.command()
@click.option(
    "--dir",
    "directory",
    default="devnet",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the devnet lives.",
)
@click.option(
    "--nodes",
    default=4,
    show_default=True,
    type=click.IntRange(1, 12),
    help="How many participants and nodes.",
)
@click.option("--base-port", default=7700, show_default=True, type=click.IntRange(1, 65000))
@click.option("--no-demo", is_flag=True, help="Do not load the demo certificates.")
def devnet(directory: Path, nodes: int, base_port: int, no_demo: bool) -> None:
    """Create a local network when absent, run its nodes, load demo trade; Ctrl-C stops it."""
    from node.devnet import run_devnet

    run_devnet(directory, nodes, base_port=base_port, demo=not no_demo)


main.add_command(cli_cert.cert)
cli_cert.cert.add_command(cli_gov.cert_endorse)
main.add_command(cli_gov.gov_group, "gov")
main.add_command(cli_gov.key)
network.add_command(cli_gov.network_join)
main.add_command(cli_cert.verify)
main.add_command(cli_reports.stats)
main.add_command(cli_audit.audit)
main.add_command(cli_audit.store)
main.add_command(cli_reports.reconcile)
main.add_command(explorer.explore)

if __name__ == "__main__":
    main()
