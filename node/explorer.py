"""`kpledger explore`: blocks, certificates, participants and statistics, from a node or a data dir."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

import click
from rich.console import Console
from rich.table import Table

from ledger.encoding import decode
from ledger.errors import InvalidProof, LedgerError, StoreError
from ledger.genesis import Genesis, Validator
from ledger.proofs import CertificateProof, build_certificate_proof, verify_certificate_proof
from ledger.state import Registry
from ledger.store import Store
from node.cli_common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    Group,
    certificate_number,
    emit,
    fail,
    json_wanted,
    refused,
    resolve_token,
    token_options,
)
from node.client import NodeClient, segment
from node.views import certificate_facts_json, history_json

#: How many blocks `explore head` lists by default.
DEFAULT_BLOCKS = 10
STATUS_LABELS = {
    "issued": "ISSUED (in force)",
    "import_confirmed": "IMPORT CONFIRMED",
    "import_rejected": "IMPORT REJECTED",
    "voided": "VOIDED",
    "expired": "EXPIRED",
}


class NotOnLedger(Exception):
    """The ledger has no such block or certificate (exit 1)."""

    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}


def iso_time(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _proposer(validators: list[str], index: int) -> str:
    return validators[index] if 0 <= index < len(validators) else f"validator #{index}"


def block_summary(header: dict[str, Any], validators: list[str]) -> dict[str, Any]:
    """One line of a block listing, from a header in its JSON form."""
    return {
        "height": header["height"],
        "time": iso_time(header["time_ms"]),
        "time_ms": header["time_ms"],
        "events": header["event_count"],
        "proposer": _proposer(validators, header["proposer"]),
        "hash": header["hash"],
    }


def block_detail(
    header: dict[str, Any],
    signers: list[int],
    round_: int,
    events: list[dict[str, Any]],
    validators: list[str],
) -> dict[str, Any]:
    out = block_summary(header, validators)
    out.update(
        prev_hash=header["prev_hash"],
        event_count=header["event_count"],
        events_root=header["events_root"],
        state_root=header["state_root"],
        commit={
            "round": round_,
            "signatures": len(signers),
            "validators": [_proposer(validators, i) for i in signers],
        },
        events=events,
    )
    return out


def check_proof(proof_b64: str | None, genesis: Genesis, number: str) -> dict[str, Any]:
    """The result of checking a public proof against genesis, as the explorer reports it."""
    if not proof_b64:
        return {"result": "missing", "message": "the node gave no proof"}
    try:
        checked = verify_certificate_proof(CertificateProof.from_base64(proof_b64), genesis, number)
    except InvalidProof as exc:
        return {"result": "invalid", "message": exc.message}
    out: dict[str, Any] = {
        "result": "valid",
        "head_height": checked.head_height,
        "head_time": iso_time(checked.head_time_ms),
        "found": checked.found,
        "status": checked.status,
        "events": len(checked.history),
    }
    return out


class Source(Protocol):
    """Where the explorer reads the chain: a node's API or a stopped node's data directory."""

    kind: str

    def head(self, count: int) -> dict[str, Any]: ...

    def block(self, height: int) -> dict[str, Any]: ...

    def certificate(self, number: str) -> dict[str, Any]: ...

    def participants(self) -> dict[str, Any]: ...

    def stats(self, year: int, quarter: int | None) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ApiSource:
    """A node's public API; with the operator's token, its participant API too."""

    def __init__(self, url: str, token: str | None, genesis_path: Path | None) -> None:
        self.client = NodeClient(url, token)
        self.public = NodeClient(url)
        self.token = token
        self.kind = "participant" if token else "public"
        self.genesis_path = genesis_path
        self._validators: list[str] | None = None

    def close(self) -> None:
        pass

    def _get(self, path: str, client: NodeClient | None = None, **query: Any) -> dict[str, Any]:
        answer = (client or self.public).get(path, **query)
        if answer.status == 404 and isinstance(answer.body, dict):
            raise NotOnLedger(answer.error, answer.message, answer.body)
        if not answer.ok:
            refused(answer, _as_json())
        body: dict[str, Any] = answer.body
        return body

    def validators(self) -> list[str]:
        if self._validators is None:
            found = self._get("/v1/public/participants")
            self._validators = [v["participant"] for v in found["validators"]]
        return self._validators

    def head(self, count: int) -> dict[str, Any]:
        head = self._get("/v1/public/head")["header"]
        validators = self.validators()
        blocks = [block_summary(head, validators)]
        for height in range(head["height"] - 1, max(head["height"] - count, 0), -1):
            header = self._get(f"/v1/public/blocks/{height}")["header"]
            blocks.append(block_summary(header, validators))
        return {
            "source": self.kind,
            "chain_id": head["chain_id"],
            "height": head["height"],
            "hash": head["hash"],
            "time": iso_time(head["time_ms"]),
            "blocks": blocks[:count],
        }

    def block(self, height: int) -> dict[str, Any]:
        found = self._get(f"/v1/public/blocks/{height}")
        commit = found["commit_certificate"]
        # The public route gives event ids and types only: which certificate an event concerns
        # is read from the ledger's own store (--data), never published per block.
        events = [
            {"event_id": e["event_id"], "type": e["type"], "number": None} for e in found["events"]
        ]
        out = block_detail(
            found["header"],
            [s["validator"] for s in commit["signatures"]],
            commit["round"],
            events,
            self.validators(),
        )
        out["source"] = self.kind
        return out

    def _genesis(self) -> tuple[Genesis, str]:
        if self.genesis_path is not None:
            return _load_genesis(self.genesis_path), str(self.genesis_path)
        raw = self._get("/v1/public/genesis")
        try:
            return Genesis.from_json(raw), "the node's own genesis (pass --genesis to check it)"
        except LedgerError as exc:
            fail(f"the node's genesis does not read: {exc.message}", EXIT_USAGE, as_json=_as_json())

    def certificate(self, number: str) -> dict[str, Any]:
        genesis, against = self._genesis()
        answer = self.public.get(f"/v1/public/certificates/{segment(number)}")
        body = answer.body if isinstance(answer.body, dict) else {}
        if not answer.ok and answer.status != 404:
            refused(answer, _as_json())
        proof = check_proof(body.get("proof"), genesis, number)
        proof["checked_against"] = against
        if answer.status == 404:
            extra = {"number": number, "proof": proof} if "proof" in body else {"number": number}
            raise NotOnLedger(answer.error, answer.message, extra)
        public = {k: v for k, v in body.items() if k != "proof"}
        if proof["result"] == "valid" and proof["status"] != public.get("ledger_status"):
            proof = {
                "result": "invalid",
                "message": f"the node says {public.get('ledger_status')} but its proof says "
                f"{proof['status']}",
                "checked_against": against,
            }
        path = f"/v1/certificates/{segment(number)}"
        record = self._get(path, self.client) if self.token else public
        return {"source": self.kind, **record, "proof": proof}

    def participants(self) -> dict[str, Any]:
        path = "/v1/participants" if self.token else "/v1/public/participants"
        found = self._get(path, self.client)
        return _participants_json(
            found["participants"], found["validators"], self.kind, found.get("history", [])
        )

    def stats(self, year: int, quarter: int | None) -> dict[str, Any]:
        # With a token the participant API's live figures (and pairs); without, the public ones,
        # published per closed quarter (an open quarter is refused, saying when it will be).
        if self.token:
            data = self._get("/v1/stats", self.client, year=year, quarter=quarter)
        else:
            data = self._get("/v1/public/stats", year=year, quarter=quarter)
        return {"source": self.kind, **data}


class StoreSource:
    """A stopped node's LevelDB directory, opened through ledger.store and only read."""

    kind = "data"

    def __init__(self, data_dir: Path, genesis_path: Path) -> None:
        self.genesis = _load_genesis(genesis_path)
        # Store() would create an empty database in a wrong path: refuse before opening.
        if not (data_dir / "CURRENT").is_file():
            fail(f"{data_dir} is not a node's data directory (no LevelDB in it)", EXIT_USAGE)
        try:
            self.store = Store(data_dir, self.genesis)
        except StoreError as exc:
            fail(exc.message, EXIT_USAGE, as_json=_as_json(), code=exc.code)
        # Governance keeps the register in force in the store; until a change it is genesis's.
        stored = self.store.registry() if hasattr(self.store, "registry") else None
        self.registry = stored or Registry.from_genesis(self.genesis)

    def close(self) -> None:
        self.store.close()

    def validators(self, height: int) -> list[str]:
        """The validator set that signed block `height`, in order (proposer indexes into it)."""
        current = self.genesis.validators
        if hasattr(self.store, "validator_sets"):
            for first, validators in self.store.validator_sets():
                if first <= height:
                    current = validators
        return [v.participant for v in current]

    def _header(self, height: int) -> dict[str, Any]:
        header = self.store.header(height)
        if header is None:
            raise NotOnLedger("block_not_found", f"no final block at height {height}")
        out: dict[str, Any] = header.to_json()
        return out

    def head(self, count: int) -> dict[str, Any]:
        if self.store.head is None:
            raise NotOnLedger("no_blocks", "the ledger has no final block yet")
        height = self.store.height
        blocks = [
            block_summary(self._header(h), self.validators(h))
            for h in range(height, max(height - count, 0), -1)
        ]
        return {
            "source": self.kind,
            "chain_id": self.store.head.chain_id,
            "height": height,
            "hash": self.store.head.hash.hex(),
            "time": iso_time(self.store.head.time_ms),
            "blocks": blocks,
        }

    def block(self, height: int) -> dict[str, Any]:
        header = self._header(height)
        raw = self.store.commit_certificate_bytes(height)
        commit = decode(raw) if raw is not None else [None, height, 0, b"", []]
        events = []
        for leaf in self.store.event_leaves(height):
            event_id, event_type, number = decode(leaf)
            events.append({"event_id": event_id.hex(), "type": event_type, "number": number})
        signers = [i for i, _ in commit[4]]
        out = block_detail(header, signers, commit[2], events, self.validators(height))
        out["source"] = self.kind
        return out

    def certificate(self, number: str) -> dict[str, Any]:
        if self.store.head is None:
            raise NotOnLedger("no_blocks", "the ledger has no final block yet")
        try:
            proof = check_proof(
                build_certificate_proof(self.store, number).to_base64(), self.genesis, number
            )
        except InvalidProof as exc:
            proof = {"result": "invalid", "message": exc.message}
        proof["checked_against"] = "genesis.json, from this node's own store"
        record = self.store.get_certificate(number)
        if record is None:
            raise NotOnLedger(
                "certificate_not_found",
                f"certificate {number} is not on the ledger",
                {"number": number, "proof": proof},
            )
        out = certificate_facts_json(record, today=datetime.now(UTC).date())
        out["history"] = history_json(self.store, record)
        out["identities"] = (
            "sealed: the exporter and importer are readable only by the exporting and importing "
            "authorities' nodes"
        )
        return {"source": self.kind, **out, "proof": proof}

    def participants(self) -> dict[str, Any]:
        participants = [
            {**p.to_json(), "restricted": p.monitoring_key is not None}
            for p in self.registry.participants.values()
        ]
        validators = [v.to_json() for v in self.registry.validators]
        history = [
            {"height": height, "changes": [c.to_json() for c in changes]}
            for height, changes in self.store.register_history()
        ]
        return _participants_json(participants, validators, self.kind, history)

    def stats(self, year: int, quarter: int | None) -> dict[str, Any]:
        from node.reports import pair_stats

        # The data directory is the operator's own: the live figures, as the participant API.
        return {"source": self.kind, **pair_stats(self.store, year, quarter)}


def _participants_json(
    participants: list[dict[str, Any]],
    validators: list[dict[str, Any]],
    kind: str,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    validating = {v["participant"] for v in validators}
    return {
        "source": kind,
        "participants": [
            {
                "code": p["code"],
                "name": p["name"],
                "countries": p["countries"],
                "active": p["active"],
                "restricted": bool(p.get("restricted")),
                "validator": p["code"] in validating,
                "authority_key": p["authority_key"],
            }
            for p in participants
        ],
        "validators": [
            {"index": i, **Validator.from_json(v).to_json()} for i, v in enumerate(validators)
        ],
        # What governance changed, by the height each change is in force from.
        "history": [{"height": h["height"], **change} for h in history for change in h["changes"]],
    }


def _load_genesis(path: Path) -> Genesis:
    try:
        return Genesis.load(path)
    except LedgerError as exc:
        fail(exc.message, EXIT_USAGE, as_json=_as_json(), code="usage")


def _as_json() -> bool:
    return json_wanted()


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
    from node.cli_reports import pairs_table, stats_table

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
