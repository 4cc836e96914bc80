"""The history file of `kpledger history import` (ledger/history.py, docs/history.md): its
header, each row read into a certificate or a bad row with its line, under hypothesis too."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.certificate import HS_CODES, format_hundredths
from ledger.errors import MalformedInput
from ledger.events import HISTORICAL_STATUSES
from ledger.history import HISTORY_COLUMNS, BadRow, HistoryRow, read_history

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "history.csv"
GOOD = {
    "number": "BE-2009-000455",
    "exporting_participant": "BE",
    "importing_participant": "RU",
    "origin": "BW+ZA",
    "hs_code": "7102.21",
    "carats": "8800.00",
    "value_usd": "412000.5",
    "parcels": "6",
    "exporter_name": "Antwerp Rough Trading NV",
    "exporter_address": "Hoveniersstraat 22, 2018 Antwerpen",
    "importer_name": "Yakutsk Almaz Trade JSC",
    "importer_address": "Lenina prospekt 6, Yakutsk 677000",
    "issued_on": "2009-06-30",
    "expires_on": "2009-08-29",
    "status": "rejected",
}


def text(rows: list[dict[str, str]], header: list[str] | None = None) -> list[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    names = header if header is not None else list(HISTORY_COLUMNS)
    writer.writerow(names)
    for row in rows:
        writer.writerow([row.get(name, "") for name in names])
    return list(io.StringIO(out.getvalue(), newline=""))


def read(lines: list[str]) -> list[HistoryRow | BadRow]:
    return list(read_history(lines))


def test_the_example_file_reads_whole() -> None:
    with EXAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        rows = read(list(handle))
    assert len(rows) == 10 and all(isinstance(r, HistoryRow) for r in rows)
    assert [r.line for r in rows] == list(range(2, 12))
    assert {r.status for r in rows if isinstance(r, HistoryRow)} == set(HISTORICAL_STATUSES)


def test_a_row_is_the_certificate_it_describes() -> None:
    (row,) = read(text([GOOD]))
    assert isinstance(row, HistoryRow) and row.line == 2 and row.status == "rejected"
    facts = row.certificate.facts
    assert facts.origin == ("BW", "ZA") and facts.carats == 880000 and facts.value_usd == 41200050
    assert facts.parcels == 6 and facts.issued_on == date(2009, 6, 30)
    assert row.certificate.identities.importer.name == "Yakutsk Almaz Trade JSC"
    (mixed,) = read(text([{**GOOD, "origin": "mixed"}]))
    assert isinstance(mixed, HistoryRow) and mixed.certificate.facts.origin == ("MIXED",)


def test_the_header_names_the_columns_in_order_and_more_may_follow() -> None:
    extra = [*HISTORY_COLUMNS, "archive_ref", "notes"]
    (row,) = read(text([{**GOOD, "archive_ref": "AWDC/1"}], extra))
    assert isinstance(row, HistoryRow)
    assert isinstance(read(["\ufeff" + text([GOOD])[0], *text([GOOD])[1:]])[0], HistoryRow)
    swapped = list(HISTORY_COLUMNS)
    swapped[5], swapped[6] = swapped[6], swapped[5]
    with pytest.raises(MalformedInput, match="column 6 must be 'carats', not 'value_usd'"):
        read(text([GOOD], swapped))
    with pytest.raises(MalformedInput, match="column 15 must be 'status', not nothing"):
        read(text([GOOD], list(HISTORY_COLUMNS[:-1])))
    with pytest.raises(MalformedInput, match="empty"):
        read([])


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"issued_on": "2009-02-30"}, "invalid_certificate", "issued_on"),
        ({"hs_code": "7102.99"}, "invalid_certificate", "hs_code"),
        ({"carats": "12.345"}, "invalid_certificate", "carats"),
        ({"carats": "0"}, "invalid_certificate", "carats"),
        ({"parcels": "two"}, "malformed", "parcels"),
        ({"parcels": "٣"}, "malformed", "parcels"),  # a digit, but not an ASCII one
        ({"origin": "BW+XX"}, "invalid_certificate", "origin"),
        ({"origin": "MIXED+BW"}, "invalid_certificate", "origin"),
        ({"number": "BE 2009 1"}, "invalid_certificate", "number"),
        ({"status": "issued"}, "malformed", "status"),
        ({"expires_on": "2009-06-29"}, "invalid_certificate", "expires_on"),
        ({"importer_name": " "}, "invalid_certificate", "importer.name"),
        ({"exporter_address": "x" * 2001}, "malformed", "longer than"),
    ],
)
def test_a_bad_row_says_why_with_its_line(change: dict[str, str], code: str, words: str) -> None:
    rows = read(text([GOOD, {**GOOD, "number": "BE-2009-000456", **change}]))
    assert isinstance(rows[0], HistoryRow)
    bad = rows[1]
    assert isinstance(bad, BadRow) and bad.line == 3 and bad.code == code, bad
    assert words in bad.reason


def test_lines_are_counted_as_a_person_sees_them() -> None:
    multi = {**GOOD, "exporter_address": "Hoveniersstraat 22\n2018 Antwerpen"}
    lines = text([multi, {**GOOD, "number": "BE-2009-000457", "hs_code": "1"}])
    lines.insert(1, "\n")  # a blank line is skipped, and counted
    rows = read(lines)
    assert [(type(r).__name__, r.line) for r in rows] == [("HistoryRow", 3), ("BadRow", 5)]
    short = read([*text([])[:1], "BE-2009-1,BE,RU\n"])
    assert isinstance(short[0], BadRow) and "3 columns" in short[0].reason


def test_a_number_twice_in_the_file_is_bad_from_its_second_line() -> None:
    rows = read(text([GOOD, GOOD, {**GOOD, "number": "BE-2009-000458"}, GOOD]))
    assert [(type(r).__name__, r.line) for r in rows] == [
        ("HistoryRow", 2),
        ("BadRow", 3),
        ("HistoryRow", 4),
        ("BadRow", 5),
    ]
    assert rows[1].reason == "BE-2009-000455 is already on line 2 of this file"  # type: ignore[union-attr]


def test_a_broken_quote_stops_the_reading_at_its_line() -> None:
    lines = [*text([GOOD]), 'BE-2009-9,"BE,RU\n', "more\n"]
    rows = read(lines)
    assert isinstance(rows[-1], BadRow) and rows[-1].line == 3
    assert "rest of the file is unread" in rows[-1].reason


# -- properties -------------------------------------------------------------------------------------

countries = st.sampled_from(["BW", "ZA", "RU", "CD", "AO", "NA", "CA", "SL"])


@st.composite
def good_rows(draw: st.DrawFn) -> dict[str, str]:
    issued = draw(st.dates(date(2003, 1, 1), date(2026, 1, 1)))
    origin = draw(
        st.one_of(
            st.just("MIXED"), st.lists(countries, min_size=1, max_size=4, unique=True).map("+".join)
        )
    )
    return {
        **GOOD,
        "number": "BE-" + draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=20)),
        "origin": origin,
        "hs_code": draw(st.sampled_from(HS_CODES)),
        "carats": format_hundredths(draw(st.integers(1, 10**12))),
        "value_usd": format_hundredths(draw(st.integers(0, 10**12))),
        "parcels": str(draw(st.integers(1, 1_000_000))),
        "exporter_name": draw(st.text(st.characters(min_codepoint=32, exclude_characters='\x7f'), min_size=1, max_size=40).filter(str.strip)),
        "issued_on": issued.isoformat(),
        "expires_on": (issued + timedelta(days=draw(st.integers(0, 400)))).isoformat(),
        "status": draw(st.sampled_from(HISTORICAL_STATUSES)),
    }  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(good_rows(), min_size=1, max_size=8, unique_by=lambda r: r["number"]))
def test_every_good_row_reads_back_as_written(rows: list[dict[str, str]]) -> None:
    read_back = read(text(rows))
    assert all(isinstance(r, HistoryRow) for r in read_back)
    for written, got in zip(rows, read_back, strict=True):
        assert isinstance(got, HistoryRow)
        facts = got.certificate.facts
        assert facts.number == written["number"] and got.status == written["status"]
        assert format_hundredths(facts.carats) == written["carats"]
        assert format_hundredths(facts.value_usd) == written["value_usd"]
        assert "+".join(facts.origin) == written["origin"]
        assert facts.issued_on.isoformat() == written["issued_on"]
        assert got.certificate.identities.exporter.name == written["exporter_name"].strip()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(max_size=30), max_size=18), max_size=6))
def test_no_row_breaks_the_reader(cells: list[list[str]]) -> None:
    """Whatever the rows hold, each is read or reported bad with a line and a reason: nothing
    else comes out of the reader, and the lines only grow."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HISTORY_COLUMNS)
    writer.writerows(cells)
    lines = list(io.StringIO(out.getvalue(), newline=""))
    results = read(lines)
    assert all(isinstance(r, HistoryRow | BadRow) for r in results)
    assert all(r.reason for r in results if isinstance(r, BadRow))
    seen = [r.line for r in results]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert all(2 <= line <= len(lines) for line in seen)
