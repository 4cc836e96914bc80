"""`kpledger history import`: a participant's certificates from before the network, loaded from a
CSV file as signed `certificate.historical` events, in batches (SPEC 10, docs/history.md)."""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ledger import authoring
from ledger.errors import LedgerError, MalformedInput
from ledger.events import Event
from ledger.history import BadRow, HistoryRow, read_history
from ledger.keys import Signer
from ledger.registry import Registry
from node.cli.common import AUTH_ERRORS, EXIT_REFUSED, EXIT_USAGE, Group, emit, fail, with_token
from node.cli.register import network_of
from node.cli.signing import as_option, json_option, key_option, node_option, now_ms, signer_for
from node.cli.signing import signing_key as open_key
from node.client import Answer, NodeClient

#: The most events one POST /v1/events carries (SPEC 10).
MAX_BATCH = 1000
DEFAULT_BATCH = 500
#: The node's refusals that mean "this participant's record is already on the ledger": skipped.
ALREADY_RECORDED = frozenset({"historical_record_exists", "duplicate_event"})
#: Refusals that say "not now": the batch (or the event) is sent again after a pause.
TRY_AGAIN = frozenset({"mempool_full", "rate_limited"})
#: How long the import waits for the node to make progress (an event final) before it gives up.
STALL_TIMEOUT_S = 120.0
#: A batch's answer can take a while on a loaded node: each event is made durable before it.
BATCH_TIMEOUT_S = 120.0


@dataclass
class Outcome:
    """What happened to the rows of one import."""

    rows: int = 0
    recorded: int = 0
    skipped: int = 0
    bad: list[BadRow] = field(default_factory=list)
    pending: int = 0  # accepted, not yet final (only when the import stopped waiting)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "recorded": self.recorded,
            "skipped": self.skipped,
            "bad": [
                {"line": b.line, "number": b.number, "error": b.code, "message": b.reason}
                for b in self.bad
            ],
            "pending": self.pending,
        }

    def summary(self) -> str:
        lines = [
            f"{self.rows} rows: {self.recorded} recorded, {self.skipped} already on the ledger "
            f"(skipped), {len(self.bad)} bad"
            + (f", {self.pending} not final" if self.pending else "")
        ]
        lines += [f"  line {b.line}: {b.number or '-'}: {b.code}: {b.reason}" for b in self.bad]
        return "\n".join(lines)


class Importer:
    """Signs the rows, sends them in batches and follows each event until it is final.

    A row is *recorded* when its event is final, *skipped* when the node says this
    participant's record of the number is already on the ledger (a run resumed or repeated),
    *bad* with its line and the refusal otherwise. The node is the judge of every rule; the file
    is checked here only for what the node could not say by line (the columns, the document's
    own rules, a number twice in the file).
    """

    def __init__(
        self,
        client: NodeClient,
        chain_id: str,
        registry: Registry,
        key: Signer,
        signer: str,
        *,
        batch_size: int = DEFAULT_BATCH,
        report: Callable[[Outcome, int], None] = lambda outcome, sent: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.chain_id = chain_id
        self.registry = registry
        self.key = key
        self.signer = signer
        self.batch_size = batch_size
        self.report = report
        self.sleep = sleep
        self.outcome = Outcome()
        self.sent = 0
        #: Accepted and not yet final: event id -> (row, event).
        self.waiting: dict[bytes, tuple[HistoryRow, Event]] = {}

    # -- sending ----------------------------------------------------------------------------
    def run(self, rows: Iterator[HistoryRow | BadRow]) -> Outcome:
        """Sign batch k + 1 while batch k is on the wire (the node's work and the client's
        overlap); the results are read here, in order."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-send") as wire:
            in_flight: Future[list[tuple[HistoryRow, Event, dict[str, Any]]]] | None = None
            for batch in self._batches(rows):
                signed = self._sign_all(batch)
                if in_flight is not None:
                    self._settle(in_flight.result())
                in_flight = wire.submit(self._deliver, signed) if signed else None
            if in_flight is not None:
                self._settle(in_flight.result())
        self._wait_final()
        self.outcome.bad.sort(key=lambda b: b.line)
        return self.outcome

    def _batches(self, rows: Iterator[HistoryRow | BadRow]) -> Iterator[list[HistoryRow]]:
        batch: list[HistoryRow] = []
        for row in rows:
            self.outcome.rows += 1
            if isinstance(row, BadRow):
                self.outcome.bad.append(row)
                continue
            if self.signer not in (
                row.certificate.facts.exporting_participant,
                row.certificate.facts.importing_participant,
            ):
                self._bad(
                    row,
                    "signer_not_allowed",
                    f"{self.signer} is neither its exporting nor its importing participant",
                )
                continue
            batch.append(row)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _bad(self, row: HistoryRow, code: str, reason: str) -> None:
        self.outcome.bad.append(BadRow(row.line, row.number, code, reason))

    def _sign_all(self, rows: Sequence[HistoryRow]) -> list[tuple[HistoryRow, Event]]:
        signed: list[tuple[HistoryRow, Event]] = []
        for row in rows:
            try:
                event = authoring.historical(
                    self.registry,
                    self.chain_id,
                    row.certificate,
                    row.status,
                    self.signer,
                    self.key,
                    created_ms=now_ms(),
                ).event
            except LedgerError as exc:  # a participant the proven register does not list
                self._bad(row, exc.code, exc.message)
                continue
            signed.append((row, event))
        return signed

    def _deliver(
        self, todo: list[tuple[HistoryRow, Event]]
    ) -> list[tuple[HistoryRow, Event, dict[str, Any]]]:
        """Post one batch (on the sending thread) until no event of it is told "not now"."""
        out: list[tuple[HistoryRow, Event, dict[str, Any]]] = []
        while todo:
            results = self._post([event for _, event in todo])
            again = []
            for (row, event), result in zip(todo, results, strict=True):
                if result.get("error") in TRY_AGAIN:
                    again.append((row, event))
                else:
                    out.append((row, event, result))
            if again:
                self.sleep(1.0)
            todo = again
        return out

    def _settle(self, delivered: list[tuple[HistoryRow, Event, dict[str, Any]]]) -> None:
        for row, event, result in delivered:
            code = result.get("error")
            if code is None:
                if result.get("status") == "final":
                    self.outcome.recorded += 1
                else:
                    self.waiting[event.event_id] = (row, event)
            elif code in ALREADY_RECORDED:
                self.outcome.skipped += 1
            else:
                self._bad(row, str(code), str(result.get("message", "")))
        self.sent += len(delivered)
        self.report(self.outcome, self.sent)

    def _post(self, events: Sequence[Event]) -> list[dict[str, Any]]:
        """One batch's results, in order; a rate-limited batch is sent again when allowed."""
        body = {"events": [event.to_envelope() for event in events]}
        while True:
            answer = self.client.post("/v1/events", body)
            if answer.status == 429:
                retry = answer.body.get("retry_after_s", 1) if isinstance(answer.body, dict) else 1
                self.sleep(min(max(float(retry), 0.1), 30.0))
                continue
            results = answer.body.get("results") if isinstance(answer.body, dict) else None
            if not answer.ok or not isinstance(results, list) or len(results) != len(events):
                raise _Stop(answer)
            return [r if isinstance(r, dict) else {"error": "malformed"} for r in results]

    # -- waiting ----------------------------------------------------------------------------
    def _wait_final(self) -> None:
        """Until every accepted event is final (or refused when its block was built): the
        waiting events are sent again, which a node answers with each one's status."""
        stalled_since = time.monotonic()
        while self.waiting:
            last = next(reversed(self.waiting))
            status = self.client.get(f"/v1/events/{last.hex()}")
            body = status.body if isinstance(status.body, dict) else {}
            if status.ok and body.get("status") == "pending":
                if time.monotonic() - stalled_since > STALL_TIMEOUT_S:
                    break
                self.sleep(0.2)
                continue
            before = len(self.waiting)
            items = list(self.waiting.items())
            for start in range(0, len(items), MAX_BATCH):
                chunk = items[start : start + MAX_BATCH]
                results = self._post([event for _, (_, event) in chunk])
                for (event_id, (row, _)), result in zip(chunk, results, strict=True):
                    code = result.get("error")
                    if (code is None and result.get("status") != "final") or code in TRY_AGAIN:
                        continue  # still pending (or taken again after a refusal in its block)
                    del self.waiting[event_id]
                    if code is None:
                        self.outcome.recorded += 1
                    elif code in ALREADY_RECORDED:
                        self.outcome.skipped += 1
                    else:
                        self._bad(row, str(code), str(result.get("message", "")))
            self.report(self.outcome, self.sent)
            if len(self.waiting) < before:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > STALL_TIMEOUT_S:
                break
            else:
                self.sleep(0.2)
        self.outcome.pending = len(self.waiting)


class _Stop(Exception):
    """The node did not answer a batch with one result per event: the import cannot go on."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.message)
        self.answer = answer


@click.group(cls=Group)
def history() -> None:
    """Load a participant's certificates from before the network (docs/history.md)."""


@history.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@node_option
@key_option
@as_option
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The network's genesis.json: the node and its register are checked against it.",
)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(1, MAX_BATCH),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Events per POST /v1/events.",
)
@json_option
@with_token(
    "Optional: the node operator's API token, so that the node counts the import in its own "
    "clients' (larger) budget of event writes.",
    required=False,
)
def history_import(
    file: Path,
    node_url: str,
    key_path: Path,
    signer: str | None,
    genesis_path: Path | None,
    batch_size: int,
    as_json: bool,
    token: str | None,
) -> None:
    """Load the certificates of FILE.csv as signed certificate.historical events.

    One row per certificate, with the columns of docs/history.md (a header row first). Rows are
    signed with --key as the participant whose authority key it is (or --as), sent in batches
    and followed until final. A bad row is reported with its line number and reason and does not
    stop the others; a record already on the ledger is skipped, so that an import interrupted or
    run again adds nothing twice. Exit 0 when every row is on the ledger, 1 if any row is bad.
    """
    key = open_key(key_path)
    client = NodeClient(node_url, token, timeout=BATCH_TIMEOUT_S)
    chain_id, registry = network_of(client, genesis_path)
    who = signer_for(registry, key, signer)
    try:
        handle = file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", EXIT_USAGE, as_json=as_json, code="usage")
    progress = _Progress(file, as_json)
    with handle, progress:
        try:
            total = _count_rows(handle)
            handle.seek(0)
            progress.start(total)
            importer = Importer(
                client, chain_id, registry, key, who, batch_size=batch_size, report=progress.update
            )
            outcome = importer.run(read_history(handle))
        except MalformedInput as exc:
            fail(f"{file}: {exc.message}", EXIT_USAGE, as_json=as_json, code="malformed")
        except UnicodeDecodeError as exc:
            fail(f"{file} is not UTF-8 text: {exc}", EXIT_USAGE, as_json=as_json, code="usage")
        except _Stop as exc:
            answer = exc.answer
            code = answer.error if answer.error != "error" else "connection_failed"
            status = EXIT_USAGE if code in AUTH_ERRORS or answer.status >= 500 else EXIT_REFUSED
            fail(
                f"the node refused a batch ({answer.status} {code}): {answer.message}; rows sent "
                f"before it stand, and running the import again skips them",
                status,
                as_json=as_json,
                code=code,
            )
    emit(outcome.to_json(), as_json, outcome.summary())
    if outcome.pending:
        fail(
            f"{outcome.pending} events were accepted but not final after {STALL_TIMEOUT_S:.0f} s "
            "without progress; run the import again to see them through",
            EXIT_USAGE,
            as_json=False,
            code="timeout",
        )
    if outcome.bad:
        sys.exit(EXIT_REFUSED)


def _count_rows(lines: Iterator[str]) -> int:
    """The data rows a file holds, for the progress bar (without reading them into certificates)."""
    try:
        records = sum(1 for cells in csv.reader(lines) if any(c.strip() for c in cells))
    except csv.Error:
        return 0  # the import reports where the file stops being CSV
    return max(records - 1, 0)


class _Progress:
    """A progress bar on a terminal; plain progress lines (stderr) when not a terminal."""

    def __init__(self, file: Path, as_json: bool) -> None:
        self.file = file
        self.total = 0
        self.tty = sys.stderr.isatty() and not as_json
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} rows"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.last_line = 0.0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tty:
            self.bar.stop()

    def start(self, total: int) -> None:
        self.total = total
        if self.tty:
            self.bar.start()
            self.task = self.bar.add_task(f"importing {self.file.name}", total=total)
        else:
            click.echo(f"history: {self.file}: {total} rows", err=True)

    def update(self, outcome: Outcome, sent: int) -> None:
        done = outcome.recorded + outcome.skipped + len(outcome.bad)
        if self.tty and self.task is not None:
            self.bar.update(self.task, completed=done)
            return
        now = time.monotonic()
        if now - self.last_line < 1.0 and done < self.total:
            return
        self.last_line = now
        rate = done / max(now - self.started, 1e-3)
        click.echo(
            f"history: {done}/{self.total} rows done ({outcome.recorded} recorded, "
            f"{outcome.skipped} skipped, {len(outcome.bad)} bad; {sent} sent), "
            f"{math.floor(rate)} rows/s",
            err=True,
        )
