"""`kpledger node run` and `kpledger devnet`: running nodes in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import (
    EXIT_USAGE,
    Command,
    Group,
    fail,
    passphrase_from_context,
    passphrase_option,
)


@click.group(cls=Group)
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
@passphrase_option
def node_run(config_path: Path) -> None:
    """Run one node in the foreground; SIGINT or SIGTERM stops it cleanly.

    Encrypted keys are opened with the passphrase from --passphrase-file, KPLEDGER_PASSPHRASE
    or a prompt; node.toml's keys may also be PKCS#11 URIs (docs/security.md)."""
    from ledger.errors import StoreError
    from node.config import ConfigError
    from node.runner import run

    try:
        run(config_path, passphrase_from_context())
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE, code="config")
    except StoreError as exc:
        fail(exc.message, EXIT_USAGE, code=exc.code)


@click.command(cls=Command)
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
