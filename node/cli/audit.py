"""`kpledger audit`: re-verify a whole chain from genesis, from a data directory or a live node."""

from __future__ import annotations

import json
import os
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.audit import AuditReport, PublicBlock, verify_public_chain
from ledger.block import Block, event_leaf
from ledger.encoding import decode
from ledger.errors import LedgerError, StoreCorrupt, StoreError, StoreLocked
from ledger.genesis import Genesis, Validator
from ledger.scrub import ScrubReport, scrub
from ledger.store import Store
from node.audit_pool import verify_chain_parallel
from node.cli.common import EXIT_REFUSED, EXIT_USAGE, Command, Group, emit, fail, with_token
from node.client import ConnectionFailed, NodeClient, urlopen
from node.files import load_genesis

BATCH = 128


def _fetch_blocks(url: str, token: str, start: int, limit: int) -> list[Any]:
    request = urllib.request.Request(
        f"{url}/v1/chain/blocks?from={start}&limit={limit}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/msgpack"},
    )
    try:
        with urlopen(request, timeout=60) as response:
            items = decode(response.read())
    except urllib.error.HTTPError as exc:
        reason = ""
        try:
            body = json.loads(exc.read())
            reason = f": {body['error']}: {body['message']}"
        except (ValueError, KeyError, TypeError, OSError):
            pass
        raise ConnectionFailed(f"the node refused the block download ({exc.code}{reason})") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NodeClient(url).unreachable(exc) from exc
    if not isinstance(items, list):
        raise ConnectionFailed("the node's block download is malformed")
    return items


def _download(url: str, token: str, store: Store, head: int, progress: Progress) -> Iterator[int]:
    task = progress.add_task("downloading", total=head)
    height = 0
    while height < head:
        items = _fetch_blocks(url, token, height + 1, BATCH)
        if not items:
            raise ConnectionFailed(f"the node stopped answering blocks at height {height + 1}")
        for block_bytes, cert_bytes in items:
            block = Block.decode(block_bytes)
            if block.header.height != height + 1:
                raise ConnectionFailed(
                    f"the node sent block {block.header.height}, not {height + 1}"
                )
            store.put_raw_block(block, cert_bytes)
            height += 1
            progress.update(task, completed=height)
            yield height


@click.command(cls=Command)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="A stopped node's data directory.",
)
@click.option(
    "--node",
    "node_url",
    help="A live node's URL: with --token, whole blocks; without, what its public routes show.",
)
@with_token("The node operator's API token (with --node): a full audit.", required=False)
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="genesis.json. Default with --data: the genesis the node.toml beside DIR names, else "
    "DIR/../../genesis.json (as `network init` lays a network out), else DIR/../genesis.json; "
    "with --node: the node's own.",
)
@click.option(
    "--workers",
    default=max(1, (os.cpu_count() or 1)),
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes checking signatures.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit(
    data_dir: Path | None,
    node_url: str | None,
    token: str | None,
    genesis_path: Path | None,
    workers: int,
    as_json: bool,
) -> None:
    """Re-verify a whole chain from genesis: hash links, Merkle roots, every signature, every
    commit certificate, every state transition, and (for a data directory) that the stored
    records, indexes and statistics are exactly what the events imply. Exit 1 on any fault."""
    if (data_dir is None) == (node_url is None):
        fail("give either --data DIR or --node URL", EXIT_USAGE, as_json=as_json, code="usage")
    scope = "full"
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} blocks"),
        TimeRemainingColumn(),
        disable=as_json,
        transient=False,
    )
    if data_dir is not None:
        genesis = _genesis(genesis_path or _default_genesis(data_dir), as_json)
        if not (data_dir / "CURRENT").exists():
            fail(f"{data_dir} holds no LevelDB database", EXIT_USAGE, as_json=as_json, code="usage")
        try:
            store = Store(data_dir, genesis)
        except StoreLocked:
            fail(
                f"the store {data_dir} is in use by a running node; use audit --node URL "
                "(with --token for a full audit), or stop the node first",
                EXIT_USAGE,
                as_json=as_json,
                code="store_locked",
            )
        except StoreCorrupt as exc:
            # A damaged store is what an audit exists to find: a fault (exit 1), not a misuse.
            message = f"FAULT: {exc.message}"
            emit(
                {
                    "source": str(data_dir),
                    "scope": scope,
                    "ok": False,
                    "height_checked": 0,
                    "events_checked": 0,
                    "fault": exc.message,
                    "error": "store_corrupt",
                    "message": message,
                },
                as_json,
                message,
            )
            raise SystemExit(EXIT_REFUSED) from exc
        except StoreError as exc:
            if "another genesis" in exc.message:
                raise  # the chain is not of this genesis: a fault (exit 1), not a misuse
            fail(exc.message, EXIT_USAGE, as_json=as_json, code=exc.code)
        try:
            report = _verify(store, genesis, workers, progress, check_derived=True)
        finally:
            store.close()
        source = str(data_dir)
    else:
        assert node_url is not None
        client = NodeClient(node_url, token)
        if genesis_path is not None:
            genesis = _genesis(genesis_path, as_json)
        else:
            answer = _public_get(client, "/v1/public/genesis")
            if not answer.ok:
                fail(f"the node gave no genesis: {answer.message}", EXIT_USAGE, as_json=as_json)
            genesis = Genesis.from_json(answer.body)
        health = client.get("/healthz")
        # An unhealthy node (503) still says its height: the audit checks what it has.
        head = (
            int(health.body["height"])
            if isinstance(health.body, dict) and "height" in health.body
            else 0
        )
        if token:
            with tempfile.TemporaryDirectory(prefix="kpledger-audit-") as tmp:
                store = Store(Path(tmp) / "chain", genesis)
                try:
                    with progress:
                        for _ in _download(client.url, token, store, head, progress):
                            pass
                    report = _verify(store, genesis, workers, progress, check_derived=False)
                finally:
                    store.close()
        else:
            scope = "public"
            report = _verify_public(client, genesis, head, progress)
        source = client.url
    data = {
        "source": source,
        "scope": scope,
        "ok": report.ok,
        "height_checked": report.height_checked,
        "events_checked": report.events_checked,
        "fault": report.fault,
    }
    if report.ok:
        summary = (
            f"chain of {source} verified: {report.height_checked} blocks, "
            f"{report.events_checked} events, no fault"
        )
        if scope == "public":
            summary += (
                "\n  checked from the public routes: hash links, every commit certificate "
                "against the validators in force, every block's events root.\n  Event "
                "signatures and state transitions need whole blocks: --token T (the participant "
                "API) or --data DIR."
            )
        emit(data, as_json, summary)
        return
    message = f"FAULT after height {report.height_checked}: {report.fault}"
    emit({**data, "error": "chain_fault", "message": message}, as_json, message)
    raise SystemExit(EXIT_REFUSED)


def _verify(
    store: Store, genesis: Genesis, workers: int, progress: Progress, *, check_derived: bool
) -> AuditReport:
    with progress:
        task = progress.add_task("verifying", total=store.height)

        def step(height: int, head: int) -> None:
            progress.update(task, completed=height, total=head)

        return verify_chain_parallel(
            store, genesis, progress=step, workers=workers, check_derived=check_derived
        )


def _public_get(client: NodeClient, path: str) -> Any:
    """GET a public route, waiting out the node's per-address rate limit (429)."""
    delay = 0.1
    while True:
        answer = client.get(path)
        if answer.status != 429 or delay > 10:
            return answer
        time.sleep(delay)
        delay *= 1.5


def _verify_public(
    client: NodeClient, genesis: Genesis, head: int, progress: Progress
) -> AuditReport:
    """The light-client audit: headers, commit certificates and events roots, no token."""
    answer = _public_get(client, "/v1/public/participants")
    if not answer.ok:
        raise ConnectionFailed(f"the node gave no validator history: {answer.message}")
    sets = {
        int(entry["height"]): tuple(Validator.from_json(v) for v in entry["validators"])
        for entry in answer.body.get("validator_history", [])
    }

    def blocks() -> Iterator[PublicBlock]:
        for height in range(1, head + 1):
            found = _public_get(client, f"/v1/public/blocks/{height}")
            if not found.ok:
                raise ConnectionFailed(f"the node gave no block {height}: {found.message}")
            body = found.body
            leaves = [
                event_leaf(bytes.fromhex(e["event_id"]), e["type"], e["number"])
                for e in body["events"]
            ]
            yield PublicBlock(
                bytes.fromhex(body["header"]["encoded"]),
                bytes.fromhex(body["commit_certificate"]["encoded"]),
                leaves,
            )

    task = progress.add_task("verifying", total=head)
    with progress:
        try:
            return verify_public_chain(
                genesis,
                blocks(),
                sets,
                head,
                progress=lambda height, _: progress.update(task, completed=height),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConnectionFailed(f"the node's public block answer is malformed: {exc}") from exc


def _default_genesis(data_dir: Path) -> Path:
    """Where --help says: the node.toml beside the data directory, then the usual layout."""
    candidates = []
    config = data_dir.parent / "node.toml"
    try:
        raw = tomllib.loads(config.read_text(encoding="utf-8"))
        named = raw.get("genesis")
        if isinstance(named, str) and named:
            candidates.append(config.parent / named)
    except (OSError, ValueError):
        pass  # no readable node.toml there: the layout `network init` writes
    candidates += [data_dir.parent.parent / "genesis.json", data_dir.parent / "genesis.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    fail(
        f"no genesis.json at {' or '.join(str(c) for c in candidates)}: give --genesis",
        EXIT_USAGE,
        code="usage",
    )


def _genesis(path: Path, as_json: bool) -> Genesis:
    try:
        return load_genesis(path)
    except LedgerError as exc:
        fail(exc.message, EXIT_USAGE, as_json=as_json, code="usage")
    except json.JSONDecodeError as exc:  # pragma: no cover - load_genesis wraps these
        fail(str(exc), EXIT_USAGE, as_json=as_json, code="usage")


@click.group(cls=Group)
def store() -> None:
    """Look after a node's data directory."""


def _stopped_store_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every `store` command takes: --data, --genesis, --json."""
    command = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(
        command
    )
    command = click.option(
        "--genesis",
        "genesis_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="genesis.json; by default found as `audit --data` finds it.",
    )(command)
    return click.option(
        "--data",
        "data_dir",
        required=True,
        type=click.Path(path_type=Path, file_okay=False),
        help="A stopped node's data directory.",
    )(command)


def _stopped_store_genesis(data_dir: Path, genesis_path: Path | None, as_json: bool) -> Genesis:
    """The genesis a `store` command opens `data_dir` with, once it is known to hold a store."""
    genesis = _genesis(genesis_path or _default_genesis(data_dir), as_json)
    if not (data_dir / "CURRENT").exists():
        fail(f"{data_dir} holds no LevelDB database", EXIT_USAGE, as_json=as_json, code="usage")
    return genesis


def _store_locked(data_dir: Path, as_json: bool) -> NoReturn:
    fail(
        f"the store {data_dir} is in use by a running node; stop the node first",
        EXIT_USAGE,
        as_json=as_json,
        code="store_locked",
    )


def _bytes_on_disk(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in data_dir.iterdir() if f.is_file())


@store.command("scrub")
@_stopped_store_options
def store_scrub(data_dir: Path, genesis_path: Path | None, as_json: bool) -> None:
    """Read the whole store back, checking every LevelDB checksum and table, every header,
    event, certificate record, index entry and state tree node against what vouches for it
    (no signatures, no re-execution: `audit --data` does those). Changes nothing. Exit 1 on
    any problem: resync the node from its peers into an empty data directory."""
    genesis = _stopped_store_genesis(data_dir, genesis_path, as_json)
    report = ScrubReport()
    try:
        opened = Store(data_dir, genesis)
    except StoreLocked:
        _store_locked(data_dir, as_json)
    except StoreCorrupt as exc:
        report.add(exc.message)
    except StoreError as exc:
        fail(exc.message, EXIT_USAGE, as_json=as_json, code=exc.code)
    else:
        try:
            report = scrub(opened)
        finally:
            opened.close()
    data = {
        "source": str(data_dir),
        "ok": report.ok,
        "height": report.height,
        "blocks": report.blocks,
        "events": report.events,
        "certificates": report.certificates,
        "state_nodes": report.state_nodes,
        "problems": report.problems,
        "more_problems": report.more,
    }
    if report.ok:
        emit(
            data,
            as_json,
            f"store {data_dir} scrubbed: {report.blocks} blocks, {report.events} events, "
            f"{report.certificates} certificates, {report.state_nodes} state nodes, no problem",
        )
        return
    lines = [f"store {data_dir} is corrupt: {len(report.problems) + report.more} problems"]
    lines += [f"  {p}" for p in report.problems]
    if report.more:
        lines.append(f"  ... and {report.more} more")
    lines.append("  resync the node from its peers into an empty data directory")
    emit({**data, "error": "store_corrupt", "message": lines[0]}, as_json, "\n".join(lines))
    raise SystemExit(EXIT_REFUSED)


@store.command("compact")
@_stopped_store_options
def store_compact(data_dir: Path, genesis_path: Path | None, as_json: bool) -> None:
    """Rewrite the store's tables so that what later blocks overwrote or pruned (old
    certificate records, state tree nodes no longer reached) leaves the disk. Changes no entry:
    the chain, its proofs and its audit are the same. LevelDB compacts by itself only as its
    levels fill, so a long-running node carries about 10% of such dead entries; this takes them
    off (seconds per GB)."""
    genesis = _stopped_store_genesis(data_dir, genesis_path, as_json)
    before = _bytes_on_disk(data_dir)
    try:
        opened = Store(data_dir, genesis)
    except StoreLocked:
        _store_locked(data_dir, as_json)
    except StoreError as exc:
        fail(
            exc.message,
            EXIT_REFUSED if isinstance(exc, StoreCorrupt) else EXIT_USAGE,
            as_json=as_json,
            code=exc.code,
        )
    try:
        started = time.monotonic()
        opened.compact()
        seconds = time.monotonic() - started
    except StoreError as exc:
        fail(exc.message, EXIT_REFUSED, as_json=as_json, code=exc.code)
    finally:
        opened.close()
    after = _bytes_on_disk(data_dir)
    data = {
        "source": str(data_dir),
        "ok": True,
        "bytes_before": before,
        "bytes_after": after,
        "seconds": round(seconds, 3),
    }
    emit(
        data,
        as_json,
        f"store {data_dir} compacted in {seconds:.1f} s: {before:,} bytes before, {after:,} after",
    )
