"""`kpledger stats` and `kpledger reconcile`: the KP's quarterly figures and the open loops."""

from __future__ import annotations

import csv
import io
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from node.cli.common import EXIT_USAGE, Command, emit, fail, refused, with_token
from node.client import ConnectionFailed, NodeClient

#: What `stats --csv` writes: the public table, or (with a token) the table per pair.
CSV_TABLES = ("participants", "pairs")


@click.command(cls=Command)
@click.option("--node", "node_url", required=True, help="The node's URL.")
@click.option("--year", type=click.IntRange(1900, 9999), required=True, help="Calendar year.")
@click.option("--quarter", type=click.IntRange(1, 4), help="Quarter (default: the whole year).")
@with_token(
    "Operator token: the live figures (participant API), with figures per pair of "
    "participants. Without it: the public figures, published per closed quarter.",
    required=False,
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV output, one row per line.")
@click.option(
    "--table",
    "csv_table",
    type=click.Choice(CSV_TABLES),
    default=None,
    help="With --csv: which table (default participants; pairs needs the token).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(
    node_url: str,
    year: int,
    quarter: int | None,
    token: str | None,
    as_csv: bool,
    csv_table: str | None,
    as_json: bool,
) -> None:
    """KP statistics: certificates, carats and US$ per participant, role and HS code.

    The public figures cover closed quarters only, each frozen at a stated height after the
    quarter's end (docs/statistics.md); with --token, the live figures as of the head, and the
    figures per pair of participants (in CSV: --csv --table pairs).
    """
    if csv_table is not None and not as_csv:
        fail("--table chooses the table of --csv", EXIT_USAGE, code="usage")
    if as_csv and as_json:
        fail("give --csv or --json, not both", EXIT_USAGE, code="usage")
    if csv_table == "pairs" and not token:
        fail(
            "the figures per pair are on the participant API: give the operator's token",
            EXIT_USAGE,
            code="usage",
        )
    client = NodeClient(node_url, token)
    path = "/v1/stats" if token else "/v1/public/stats"
    answer = client.get(path, year=year, quarter=quarter)
    if not answer.ok:
        refused(answer, as_json)
    data: dict[str, Any] = answer.body
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ConnectionFailed(f"{client.url} gave malformed statistics")
    if token and not isinstance(data.get("pairs"), list):
        raise ConnectionFailed(f"{client.url} gave malformed figures per pair")
    if as_csv and csv_table == "pairs":
        click.echo(pairs_csv(data["pairs"], year, quarter), nl=False)
        return
    if as_csv:
        if "pairs" in data:
            # Not silently dropped: CSV holds one table, so the other is named.
            click.echo("kpledger: the figures per pair are in `--csv --table pairs`", err=True)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "year",
                "quarter",
                "participant",
                "role",
                "hs_code",
                "certificates",
                "carats",
                "value_usd",
            ]
        )
        for row in data["rows"]:
            writer.writerow(
                [
                    year,
                    row.get("quarter", quarter) or "",
                    row["participant"],
                    row["role"],
                    row["hs_code"],
                    row["certificates"],
                    row["carats"] or "",
                    row["value_usd"] or "",
                ]
            )
        click.echo(out.getvalue(), nl=False)
        return
    if as_json:
        emit(data, True, "")
        return
    period = f"{year} Q{quarter}" if quarter else str(year)
    table = stats_table(data, period)
    console = Console()
    console.print(table)
    if "pairs" in data:
        console.print(pairs_table(data["pairs"], f"exports against imports, {period}"))


PAIR_CSV_HEADER = [
    "year",
    "quarter",
    "exporting_participant",
    "importing_participant",
    "exported_certificates",
    "exported_carats",
    "exported_value_usd",
    "imported_certificates",
    "imported_carats",
    "imported_value_usd",
    "unconfirmed_certificates",
    "unconfirmed_carats",
    "unconfirmed_value_usd",
]


def pairs_csv(pairs: list[dict[str, Any]], year: int, quarter: int | None) -> str:
    """Exports of A to B against imports of B from A, one row per ordered pair."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAIR_CSV_HEADER)
    for p in pairs:
        row: list[Any] = [
            year,
            quarter or "",
            p["exporting_participant"],
            p["importing_participant"],
        ]
        for part in ("exported", "imported", "unconfirmed"):
            row += [p[part]["certificates"], p[part]["carats"], p[part]["value_usd"]]
        writer.writerow(row)
    return out.getvalue()


def _amount(value: str | None) -> str:
    return "suppressed" if value is None else value


def publication_note(data: dict[str, Any]) -> str:
    """When the figures shown were frozen, and what is not published yet."""
    if data.get("live"):
        return f"live figures as of height {data['height']}, not published"

    def one(q: dict[str, Any]) -> str:
        if not q["published"]:
            return f"Q{q['quarter']} not published before {q['publishes_on']}"
        revised = q["revised_at"]
        note = f"Q{q['quarter']} frozen at height {q['frozen_at']} ({q['frozen_on']})"
        return note + (f", revised at {', '.join(map(str, revised))}" if revised else "")

    quarters = data.get("quarters") or [data]
    return "; ".join(one(q) for q in quarters)


def stats_table(data: dict[str, Any], period: str) -> Table:
    """The statistics as a table; public small cells show their count only."""
    by_quarter = any("quarter" in row for row in data["rows"])
    table = Table(title=f"KP statistics {period}")
    columns = ["participant", "role", "HS code", "certificates", "carats", "value (US$)"]
    for column in (["quarter"] if by_quarter else []) + columns:
        table.add_column(column, justify="right" if column[0] in "cv" else "left")
    for row in data["rows"]:
        cells = [
            row["participant"],
            row["role"],
            row["hs_code"],
            str(row["certificates"]),
            _amount(row["carats"]),
            _amount(row["value_usd"]),
        ]
        table.add_row(*([f"Q{row['quarter']}"] if by_quarter else []), *cells)
    notes = [publication_note(data)]
    if not data["rows"]:
        notes.append("no certificates in this period")
    elif any(row.get("suppressed") for row in data["rows"]):
        notes.append(
            f"cells of fewer than {data.get('min_cell', 3)} certificates show the count only"
        )
    table.caption = "\n".join(notes)
    return table


def pairs_table(pairs: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("exporter", "importer", "exported", "imported", "unconfirmed"):
        table.add_column(column)
    for p in pairs:
        table.add_row(
            p["exporting_participant"],
            p["importing_participant"],
            f"{p['exported']['certificates']} / {p['exported']['carats']} ct",
            f"{p['imported']['certificates']} / {p['imported']['carats']} ct",
            f"{p['unconfirmed']['certificates']} / {p['unconfirmed']['carats']} ct",
        )
    return table


@click.command(cls=Command)
@click.option("--node", "node_url", required=True, help="The node's URL.")
@with_token("The node operator's API token (api_token in node.toml).", required=True)
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(0, 36500),
    help="Issued but not confirmed after this many days counts as overdue.",
)
@click.option(
    "--participant",
    default=None,
    help="Historical records: only those this participant is a party to (default: all).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def reconcile(node_url: str, token: str, days: int, participant: str | None, as_json: bool) -> None:
    """Close the loop: unconfirmed, expired and rejected certificates; exports against imports;
    historical records, the exporter's account against the importer's (docs/history.md)."""
    answer = NodeClient(node_url, token, timeout=120).get(
        "/v1/reconcile", days=days, participant=participant
    )
    if not answer.ok:
        refused(answer, as_json)
    data = answer.body
    if as_json:
        emit(data, True, "")
        return
    console = Console()
    for key, title in (
        ("not_confirmed_after_days", f"issued, not confirmed after {days} days"),
        ("expired_unconfirmed", "expired without confirmation"),
        ("rejected", "import rejected"),
    ):
        table = Table(title=f"{title}: {len(data[key])}")
        for column in ("number", "exporter", "importer", "issued on", "expires / reason"):
            table.add_column(column)
        for c in data[key]:
            table.add_row(
                c["number"],
                c["exporting_participant"],
                c["importing_participant"],
                c["issued_on"],
                c.get("expires_on") or c.get("reason") or "",
            )
        console.print(table)
    console.print(pairs_table(data["pairs"], "exports against imports, this year"))
    historical = data.get("historical")
    if historical and historical["pairs"]:
        console.print(historical_table(historical))


def historical_table(historical: dict[str, Any]) -> Table:
    """Historical records (docs/history.md): the exporter's account against the importer's."""
    table = Table(title="historical records: the exporter's account against the importer's")
    for column in (
        "exporter",
        "importer",
        "matched",
        "differing",
        "exporter only",
        "importer only",
    ):
        table.add_column(column)
    for p in historical["pairs"]:
        table.add_row(
            p["exporting_participant"],
            p["importing_participant"],
            str(p["matched"]),
            str(p["differing"]),
            str(p["exporter_only"]),
            str(p["importer_only"]),
        )
    for item in historical["differing"]:
        what = ", ".join(
            f"{name} {d['exporter']} / {d['importer']}" for name, d in item["differs"].items()
        )
        table.caption = (table.caption + "\n" if table.caption else "") + (
            f"{item['number']}: {what}"
        )
    return table
