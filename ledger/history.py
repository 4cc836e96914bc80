"""The history file of `kpledger history import` (SPEC 10, docs/history.md): its columns, and each
row read into a certificate and the final status its authority recorded, or the reason it is bad."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ledger.certificate import MIXED_ORIGIN, Certificate
from ledger.errors import LedgerError, MalformedInput
from ledger.events import HISTORICAL_STATUSES

#: The columns SPEC 10 names, in its order; a file's header starts with exactly these (more
#: columns may follow, and are not read).
HISTORY_COLUMNS = (
    "number",
    "exporting_participant",
    "importing_participant",
    "origin",
    "hs_code",
    "carats",
    "value_usd",
    "parcels",
    "exporter_name",
    "exporter_address",
    "importer_name",
    "importer_address",
    "issued_on",
    "expires_on",
    "status",
)

#: A cell longer than this is refused before it is read (the longest field, an address, is 500).
MAX_CELL = 2000
#: What joins the countries of a mixed-origin-free parcel in the origin column: `BW+ZA`.
ORIGIN_SEPARATOR = "+"


@dataclass(frozen=True)
class HistoryRow:
    """A good row: the certificate and the final status it names, with the line it starts on."""

    line: int
    certificate: Certificate
    status: str

    @property
    def number(self) -> str:
        return self.certificate.number


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be a historical record, and why (a person reads `reason`)."""

    line: int
    number: str
    code: str
    reason: str


def check_header(header: Sequence[str]) -> None:
    """The header row names SPEC 10's columns first, in order. Raises MalformedInput saying what
    it expected."""
    names = [cell.strip().lstrip("\ufeff").strip() for cell in header]
    if tuple(names[: len(HISTORY_COLUMNS)]) != HISTORY_COLUMNS:
        for position, expected in enumerate(HISTORY_COLUMNS):
            found = names[position] if position < len(names) else None
            if found != expected:
                shown = "nothing" if found is None else repr(found)
                raise MalformedInput(
                    f"the header row's column {position + 1} must be {expected!r}, not {shown}; "
                    f"a history file starts with the columns {', '.join(HISTORY_COLUMNS)}"
                )


def parse_row(line: int, cells: Sequence[str]) -> HistoryRow:
    """One data row (its cells, as the CSV reader gives them). Raises LedgerError saying what is
    wrong: the certificate's own rules (SPEC 3), the status, the shape of the row."""
    if len(cells) < len(HISTORY_COLUMNS):
        raise MalformedInput(
            f"the row has {len(cells)} columns; a history row has at least {len(HISTORY_COLUMNS)}"
        )
    for name, cell in zip(HISTORY_COLUMNS, cells, strict=False):
        if len(cell) > MAX_CELL:
            raise MalformedInput(f"{name}: longer than {MAX_CELL} characters")
    row = {name: cell.strip() for name, cell in zip(HISTORY_COLUMNS, cells, strict=False)}
    parcels = row["parcels"]
    if not parcels.isascii() or not parcels.isdigit():
        raise MalformedInput(f"parcels: {parcels!r} is not a whole number")
    origin = row["origin"]
    countries = [MIXED_ORIGIN] if origin.upper() == MIXED_ORIGIN else origin.split(ORIGIN_SEPARATOR)
    certificate = Certificate.from_json(
        {
            "number": row["number"],
            "exporting_participant": row["exporting_participant"],
            "importing_participant": row["importing_participant"],
            "origin": [c.strip() for c in countries],
            "hs_code": row["hs_code"],
            "carats": row["carats"],
            "value_usd": row["value_usd"],
            "parcels": int(parcels),
            "exporter": {"name": row["exporter_name"], "address": row["exporter_address"]},
            "importer": {"name": row["importer_name"], "address": row["importer_address"]},
            "issued_on": row["issued_on"],
            "expires_on": row["expires_on"],
        }
    )
    status = row["status"].lower()
    if status not in HISTORICAL_STATUSES:
        raise MalformedInput(
            f"status: {row['status']!r} is not a final status; one of {', '.join(HISTORICAL_STATUSES)}"
        )
    return HistoryRow(line, certificate, status)


def read_history(lines: Iterable[str]) -> Iterator[HistoryRow | BadRow]:
    """Every data row of a history file, read or refused, with the line it starts on.

    `lines` are the file's text lines (newlines kept, as a file object gives them). The header
    is checked first (MalformedInput if it is wrong: nothing can be read then). Blank lines are
    skipped. A number given twice in the file is a bad row from its second occurrence on (one
    participant's account of a certificate is one record).
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise MalformedInput("the history file is empty: it needs a header row") from None
    except csv.Error as exc:
        raise MalformedInput(f"line 1: the header row is not CSV ({exc})") from exc
    check_header(header)
    seen: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader cannot go on past a broken quote: the rest of the file is one bad row.
            yield BadRow(line, "", "malformed", f"not CSV ({exc}); the rest of the file is unread")
            return
        if not any(cell.strip() for cell in cells):
            continue
        number = cells[0].strip() if cells else ""
        try:
            row = parse_row(line, cells)
        except LedgerError as exc:
            yield BadRow(line, number, exc.code, exc.message)
            continue
        first = seen.setdefault(row.number, line)
        if first != line:
            yield BadRow(
                line,
                row.number,
                "duplicate_row",
                f"{row.number} is already on line {first} of this file",
            )
            continue
        yield row
