"""`kpledger snapshot create|restore`: a node's chain at one final height to a file, and a new
node's data directory started from one, audited first (SPEC 10, docs/snapshots.md)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ledger.errors import LedgerError, SnapshotTargetInUse, StoreCorrupt, StoreError, StoreLocked
from ledger.snapshot import CHUNK
from node.cli.audit import _default_genesis, _genesis
from node.cli.common import EXIT_USAGE, TOKEN_ENV, Command, Group, emit, fail, refused
from node.cli.manage import managed_node
from node.client import Answer, ConnectionFailed, urlopen
from node.config import ConfigError, NodeConfig
from node.http.admin import SNAPSHOT_TYPE
from node.snapshots import check_file, create_from_data, restore, write_file


@click.group(cls=Group)
def snapshot() -> None:
    """Snapshots of a node's chain: backups, and a new node started without fetching it all from
    its peers.

    A snapshot holds the chain at one final height (blocks, commit certificates, events, the
    state and what derives from it), never the node's own tokens, accounts or keys.
    """


def _download(config_path: Path | None, node_url: str | None, token: str | None, out: Path) -> int:
    managed = managed_node(config_path, node_url, token)
    client = managed.client
    request = urllib.request.Request(
        client.url + "/v1/admin/snapshot",
        headers={
            "Authorization": f"Bearer {client.token}",
            "Accept": f"{SNAPSHOT_TYPE}, application/json",
        },
    )
    try:
        response = urlopen(request, timeout=600)
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except (ValueError, OSError):
            body = None
        refused(Answer(exc.code, body))
    except (urllib.error.URLError, OSError) as exc:
        failed = client.unreachable(exc)
        raise ConnectionFailed(
            f"{failed}. Is the node running (kpledger node run), and is {managed.source} its "
            "address? (A stopped node: --data DIR.)"
        ) from exc
    with response:
        try:
            return write_file(iter(lambda: response.read(CHUNK), b""), out)
        except OSError as exc:
            raise ConnectionFailed(
                f"the snapshot download from {client.url} failed: {exc}"
            ) from exc


@snapshot.command("create", cls=Command)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="The snapshot file to write (whole or not at all).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A running node's node.toml: its address and admin token.",
)
@click.option("--node", "node_url", help="A running node's URL (with --token).")
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    help=f"An admin token (with --node). Rather --config or {TOKEN_ENV}.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="A stopped node's data directory, instead of a running node.",
)
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="genesis.json: with --data, the chain's (found as `audit --data` finds it by default); "
    "with a running node, whose node keys its certificate is checked against.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def snapshot_create(
    out: Path,
    config_path: Path | None,
    node_url: str | None,
    token: str | None,
    data_dir: Path | None,
    genesis_path: Path | None,
    as_json: bool,
) -> None:
    """Write the chain at one final height to --out: of the running node --config (or --node)
    names, through its admin API while it keeps working, or of a stopped node's --data DIR."""
    if data_dir is not None and (config_path or node_url):
        fail("give --data DIR or a running node (--config / --node), not both", EXIT_USAGE)
    if data_dir is not None:
        genesis = _genesis(genesis_path or _default_genesis(data_dir), as_json)
        if not (data_dir / "CURRENT").exists():
            fail(f"{data_dir} holds no LevelDB database", EXIT_USAGE, code="usage")
        try:
            _, size = create_from_data(data_dir, genesis, out)
        except StoreLocked:
            fail(
                f"the store {data_dir} is in use by a running node: snapshot it through its API "
                "(--config node.toml), or stop it first",
                EXIT_USAGE,
                code="store_locked",
            )
        except StoreCorrupt:
            raise
        except StoreError as exc:
            fail(exc.message, EXIT_USAGE, code=exc.code)
        source = str(data_dir)
    else:
        size = _download(config_path, node_url, token, out)
        source = f"--config {config_path}" if config_path else str(node_url)
    try:
        header, records = check_file(out)
    except LedgerError:
        out.unlink(missing_ok=True)
        raise
    emit(
        {**header.to_json(), "file": str(out), "bytes": size, "records": records},
        as_json,
        f"snapshot of {source} at block {header.height} ({header.head_hash.hex()[:16]}) written "
        f"to {out}: {records:,} records, {size:,} bytes",
    )


@snapshot.command("restore", cls=Command)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The new node's node.toml: its data_dir (empty or absent) and its genesis.",
)
@click.option(
    "--workers",
    default=max(1, os.cpu_count() or 1),
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes checking signatures in the audit of the snapshot.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def snapshot_restore(file: Path, config_path: Path, workers: int, as_json: bool) -> None:
    """Start the node.toml's empty data_dir from FILE. The snapshot must be of the genesis that
    node.toml names, and its chain must pass the audit from that genesis (every header's link
    and commit certificate, every state root and record); otherwise nothing is written (exit 1).
    Then `kpledger node run` syncs forward from the peers."""
    try:
        config = NodeConfig.load(config_path)
        genesis = config.genesis()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE, code="config")
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        disable=as_json,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def step(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        with bar:
            restored = restore(file, config.data_dir, genesis, workers=workers, progress=step)
    except SnapshotTargetInUse as exc:
        fail(exc.message, EXIT_USAGE, code=exc.code)
    header = restored.header
    emit(
        {
            **header.to_json(),
            "data_dir": str(config.data_dir),
            "records": restored.records,
            "events_audited": restored.events,
        },
        as_json,
        f"restored block {header.height} ({header.head_hash.hex()[:16]}) of {header.chain_id} "
        f"into {config.data_dir}: {restored.records:,} records, {restored.events:,} events "
        f"audited from genesis.\n  `kpledger node run --config {config_path}` starts the node; "
        "it syncs the blocks after this one from its peers.",
    )
