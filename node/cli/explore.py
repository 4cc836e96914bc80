"""`kpledger explore`: blocks, certificates, participants and statistics, from a node or a data dir."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from node.cli.common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    Group,
    certificate_number,
    emit,
    resolve_token,
    token_options,
)
from node.cli.explore_sources import ApiSource, NotOnLedger, Source, StoreSource

#: How many blocks `explore head` lists by default.
DEFAULT_BLOCKS = 10
STATUS_LABELS = {
    "issued": "ISSUED (in force)",
    "import_confirmed": "IMPORT CONFIRMED",
    "import_rejected": "IMPORT REJECTED",
    "voided": "VOIDED",
    "expired": "EXPIRED",
}


@contextmanager
def _source(
    node_url: str | None, token: str | None, data_dir: Path | None, genesis: Path | None
) -> Iterator[Source]:
    if (node_url is None) == (data_dir is None):
        raise click.UsageError("give either --node URL or --data DIR (with --genesis)")
    if token and not node_url:
        raise click.UsageError("--token goes with --node")
    source: Source
    if data_dir is not None:
        if genesis is None:
            raise click.UsageError("--data needs --genesis genesis.json")
        source = StoreSource(data_dir, genesis)
    else:
        assert node_url is not None
        source = ApiSource(node_url, token, genesis)
    try:
        yield source
    finally:
        source.close()


#: The parameters _source_options adds, as a command receives them.
SOURCE_OPTIONS = ("node_url", "token", "config_path", "data_dir", "genesis_path", "as_json")


def _source_options(func: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--node", "node_url", help="A node's URL: read its public API."),
        *token_options("With --node: the operator's token, for the full records."),
        click.option(
            "--data",
            "data_dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="A stopped node's data directory, read directly.",
        ),
        click.option(
            "--genesis",
            "genesis_path",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="The network's genesis.json (needed with --data; checks proofs with --node).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _explore(render: Callable[[dict[str, Any]], None]) -> Callable[..., Any]:
    """Wrap a subcommand: open its source, fetch, then print JSON or the human form."""

    def decorator(fetch: Callable[..., dict[str, Any]]) -> Callable[..., None]:
        @functools.wraps(fetch)
        def command(**kwargs: Any) -> None:
            # Options given to `explore` itself, before the command, apply to it too.
            context = click.get_current_context()
            group = context.parent.obj if context.parent is not None else None
            inherited = group if isinstance(group, dict) else {}
            given = {k: kwargs.pop(k) or inherited.get(k) for k in SOURCE_OPTIONS}
            as_json = bool(given["as_json"])
            token = given["token"]
            if given["data_dir"] is not None and token and not _token_given(context):
                token = None  # KPLEDGER_TOKEN in the environment does not apply to --data
            elif token or given["config_path"]:
                token = resolve_token(token, given["config_path"], required=False)
            source_args = (given["node_url"], token, given["data_dir"], given["genesis_path"])
            with _source(*source_args) as source:
                try:
                    data = fetch(source, **kwargs)
                except NotOnLedger as exc:
                    _not_found(exc, as_json)
            proof = data.get("proof")
            bad_proof = isinstance(proof, dict) and proof.get("result") != "valid"
            if as_json:
                if bad_proof:
                    assert isinstance(proof, dict)
                    data = {
                        **data,
                        "error": "invalid_proof",
                        "message": f"the proof does not check: {proof.get('message')}",
                    }
                emit(data, True, "")
            else:
                render(data)
            if bad_proof:
                sys.exit(EXIT_USAGE)

        return _source_options(command)

    return decorator


def _token_given(context: click.Context) -> bool:
    """Whether --token was on the command line (here or before the command), not from the env."""
    from click.core import ParameterSource

    while context is not None:
        if context.get_parameter_source("token") is ParameterSource.COMMANDLINE:
            return True
        context = context.parent  # type: ignore[assignment]
    return False


def _not_found(exc: NotOnLedger, as_json: bool) -> NoReturn:
    proof = exc.extra.get("proof")
    if as_json:
        emit({"error": exc.code, "message": exc.message, **exc.extra}, True, "")
    else:
        what = "not published" if exc.code == "statistics_not_published" else "not found"
        click.echo(f"{what}: {exc.message}", err=True)
        if isinstance(proof, dict):
            click.echo(f"  {_proof_line(proof, absence=True)}", err=True)
    bad_proof = isinstance(proof, dict) and proof.get("result") != "valid"
    sys.exit(EXIT_USAGE if bad_proof else EXIT_REFUSED)


def _proof_line(proof: dict[str, Any], absence: bool = False) -> str:
    if proof.get("result") != "valid":
        return f"PROOF DOES NOT CHECK: {proof.get('message')}"
    what = "proof of absence checked" if absence else "proof checked"
    return (
        f"{what} against {proof.get('checked_against')}: latest final height "
        f"{proof['head_height']} ({proof['head_time']})"
    )


def _short(digest: str) -> str:
    return digest[:16] + "…"


def _when(iso: str) -> str:
    """An ISO time in UTC as a person reads it in a table: date and seconds."""
    return iso.replace("T", " ")[:19]


def _kind(event_type: str) -> str:
    return event_type.removeprefix("certificate.")


# -- rendering --------------------------------------------------------------------------------
def render_head(data: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"[bold]{data['chain_id']}[/bold]  head at height [bold]{data['height']}[/bold], "
        f"{_when(data['time'])} UTC  ({data['source']} view)",
        soft_wrap=True,
    )
    console.print(f"head hash {data['hash']}", soft_wrap=True, highlight=False)
    table = Table(title=f"the {len(data['blocks'])} most recent final blocks")
    for column in ("height", "time (UTC)", "events", "proposer", "hash"):
        table.add_column(column, justify="right" if column in ("height", "events") else "left")
    for b in data["blocks"]:
        table.add_row(
            str(b["height"]), _when(b["time"]), str(b["events"]), b["proposer"], _short(b["hash"])
        )
    console.print(table)


def render_block(data: dict[str, Any]) -> None:
    console = Console()
    commit = data["commit"]
    lines = [
        f"[bold]block {data['height']}[/bold]  ({data['source']} view)",
        f"  hash          {data['hash']}",
        f"  previous      {data['prev_hash']}",
        f"  time          {_when(data['time'])} UTC",
        f"  proposer      {data['proposer']}",
        f"  events        {data['event_count']}",
        f"  events root   {data['events_root']}",
        f"  state root    {data['state_root']}",
        f"  commit        round {commit['round']}, signed by {commit['signatures']} validators: "
        f"{', '.join(commit['validators'])}",
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True)
    table = Table(title=f"events of block {data['height']}")
    table.add_column("#", justify="right")
    table.add_column("event id", overflow="fold")
    table.add_column("type")
    table.add_column("certificate")
    for i, e in enumerate(data["events"]):
        table.add_row(str(i), e["event_id"], _kind(e["type"]), e["number"] or "(not public)")
    console.print(table)


def render_certificate(c: dict[str, Any]) -> None:
    console = Console()
    status = c["status"]
    lines = [
        f"[bold]Kimberley Process Certificate {c['number']}[/bold]  ({c['source']} view)",
        f"  status          [bold]{STATUS_LABELS.get(status, status.upper())}[/bold]",
        f"  exporting       {c['exporting_participant']}",
        f"  importing       {c['importing_participant']}",
    ]
    if c.get("historical"):
        lines.insert(
            2,
            "  [bold]historical record[/bold]: from before the network, entered from its "
            "authority's archive",
        )
    for key, label in (
        ("origin", "origin"),
        ("hs_code", "HS code"),
        ("carats", "carats"),
        ("value_usd", "value (US$)"),
        ("parcels", "parcels"),
    ):
        if key in c:
            value = c[key]
            lines.append(f"  {label:<15} {', '.join(value) if isinstance(value, list) else value}")
    lines += [f"  issued on       {c['issued_on']}", f"  expires on      {c['expires_on']}"]
    if c.get("exporter"):
        lines.append(f"  exporter        {c['exporter']['name']}, {c['exporter']['address']}")
        lines.append(f"  importer        {c['importer']['name']}, {c['importer']['address']}")
    elif c.get("identities"):
        lines.append(f"  parties         {c['identities']}")
    for key in ("replaces", "replaced_by", "reason", "void_reason", "zone"):
        if c.get(key):
            lines.append(f"  {key.replace('_', ' '):<15} {c[key]}")
    lines.append(f"  digest          {c['digest']}")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)
    table = Table(title="history")
    for column in ("event", "time (UTC)", "block", "event id"):
        table.add_column(column, justify="right" if column == "block" else "left")
    for h in c.get("history", []):
        table.add_row(_kind(h["type"]), _when(h["time"]), str(h["height"]), h["event_id"])
    console.print(table)
    proof = c["proof"]
    style = "green" if proof.get("result") == "valid" else "bold red"
    console.print(f"[{style}]{_proof_line(proof)}[/{style}]", highlight=False, soft_wrap=True)


def render_participants(data: dict[str, Any]) -> None:
    console = Console()
    table = Table(title="KP participants on this network")
    for column in ("code", "name", "countries", "status", "validator", "restricted"):
        table.add_column(column)
    for p in data["participants"]:
        table.add_row(
            p["code"],
            p["name"],
            ", ".join(p["countries"]),
            "active" if p["active"] else "suspended",
            "yes" if p["validator"] else "no",
            "yes" if p["restricted"] else "no",
        )
    console.print(table)
    validators = Table(title="validators, in proposer order")
    for column in ("#", "participant", "address", "node key"):
        validators.add_column(column, overflow="fold" if column == "node key" else "ellipsis")
    for v in data["validators"]:
        validators.add_row(str(v["index"]), v["participant"], v["address"], _short(v["node_key"]))
    console.print(validators)
    if not data["history"]:
        console.print("The register is still genesis's: governance has changed nothing yet.")
        return
    history = Table(title="register history (each change in force from its height)")
    for column in ("height", "change", "participant", "detail", "decided by"):
        history.add_column(column)
    for h in data["history"]:
        history.add_row(str(h["height"]), h["kind"], h["subject"], h["detail"], _short(h["source"]))
    console.print(history)


def render_stats(data: dict[str, Any]) -> None:
    from node.cli.reports import pairs_table, stats_table

    console = Console()
    period = f"{data['year']} Q{data['quarter']}" if data.get("quarter") else str(data["year"])
    table = stats_table(data, period)
    console.print(table)
    if "pairs" in data:
        console.print(pairs_table(data["pairs"], f"exports against imports, {period}"))


# -- commands ---------------------------------------------------------------------------------
@click.group(
    cls=Group,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@_source_options
@click.pass_context
def explore(ctx: click.Context, /, **source: Any) -> None:
    """Browse the chain: blocks, certificates, participants and statistics.

    Read a node's public API (--node URL), its participant API for full records (--node URL
    --token T), or a stopped node's data directory (--data DIR --genesis genesis.json). The
    source may be given before the command (it applies to it) or after it. Without a command:
    the head of the chain and its recent blocks.
    """
    ctx.obj = source
    if ctx.invoked_subcommand is None:
        if source["node_url"] is None and source["data_dir"] is None:
            click.echo(ctx.get_help())
            return
        ctx.invoke(head, count=DEFAULT_BLOCKS, **source)


@explore.command("head")
@click.option(
    "--blocks",
    "count",
    default=DEFAULT_BLOCKS,
    show_default=True,
    type=click.IntRange(1, 200),
    help="How many recent blocks to list.",
)
@_explore(render_head)
def head(source: Source, count: int) -> dict[str, Any]:
    """The latest final block and the most recent blocks before it."""
    return source.head(count)


@explore.command("block")
@click.argument("height", type=click.IntRange(1))
@_explore(render_block)
def block(source: Source, height: int) -> dict[str, Any]:
    """One final block: its header, commit certificate and events."""
    return source.block(height)


@explore.command("cert")
@click.argument("number")
@_explore(render_certificate)
def cert(source: Source, number: str) -> dict[str, Any]:
    """One certificate's status and history, with its proof checked against genesis."""
    return source.certificate(certificate_number(number))


@explore.command("participants")
@_explore(render_participants)
def participants(source: Source) -> dict[str, Any]:
    """The participant register, the validators, and what governance changed and when."""
    return source.participants()


@explore.command("stats")
@click.option("--year", type=int, required=True, help="Calendar year.")
@click.option("--quarter", type=click.IntRange(1, 4), help="Quarter (default: the whole year).")
@_explore(render_stats)
def stats(source: Source, year: int, quarter: int | None) -> dict[str, Any]:
    """KP statistics per participant, role and HS code (with pairs from --token or --data)."""
    return source.stats(year, quarter)
