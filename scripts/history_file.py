"""Writes a history file for `kpledger history import` (docs/history.md): `count` rows of one
participant's archive, with bad rows of every kind at known lines (for the tests and
scripts/bench_history.py).

    .venv/bin/python scripts/history_file.py --out history.csv --rows 20000 --bad-every 97
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import date, timedelta
from pathlib import Path

from ledger.history import HISTORY_COLUMNS

PARTIES = {
    "BE": ("Antwerp Rough Trading NV", "Hoveniersstraat 22, 2018 Antwerpen"),
    "AE": ("Almas Gems DMCC", "Almas Tower, Jumeirah Lakes Towers, Dubai"),
    "IN": ("Surat Diamond Exports Pvt Ltd", "Mahidharpura, Surat 395003, Gujarat"),
    "RU": ("Yakutsk Almaz Trade JSC", "Lenina prospekt 6, Yakutsk 677000"),
}
ORIGINS = ("MIXED", "BW", "BW+ZA", "RU", "CD", "AO+NA", "CA")
HS_CODES = ("7102.10", "7102.21", "7102.31")
STATUSES = ("confirmed", "confirmed", "confirmed", "rejected", "voided", "expired")

#: The kinds of bad row, in turn, and the code the import reports for each (the first four are
#: found in the file, the others by the node).
BAD_KINDS = (
    ("no_such_date", "invalid_certificate"),
    ("hs_code", "invalid_certificate"),
    ("status", "malformed"),
    ("duplicate", "duplicate_row"),
    ("before_history_from", "backdated_too_far"),
    ("not_yet_expired", "not_yet_expired"),
    ("unknown_participant", "unknown_participant"),
)


def row(
    serial: int, participant: str, counterpart: str, *, exporting: bool, rng: random.Random
) -> dict[str, str]:
    """One good row: `participant`'s account, as exporter or importer of the certificate."""
    exp, imp = (participant, counterpart) if exporting else (counterpart, participant)
    issued = date(2003, 1, 1) + timedelta(days=rng.randrange(0, 8000))
    return {
        "number": f"{exp}-H{issued.year}-{serial:07d}",
        "exporting_participant": exp,
        "importing_participant": imp,
        "origin": rng.choice(ORIGINS),
        "hs_code": rng.choice(HS_CODES),
        "carats": f"{rng.randrange(1, 50_000)}.{rng.randrange(100):02d}",
        "value_usd": f"{rng.randrange(100, 9_000_000)}.{rng.randrange(100):02d}",
        "parcels": str(rng.randrange(1, 13)),
        "exporter_name": PARTIES[exp][0],
        "exporter_address": PARTIES[exp][1],
        "importer_name": PARTIES[imp][0],
        "importer_address": PARTIES[imp][1],
        "issued_on": issued.isoformat(),
        "expires_on": (issued + timedelta(days=60)).isoformat(),
        "status": rng.choice(STATUSES),
    }


def spoil(good: dict[str, str], kind: str, earlier: str, participant: str) -> dict[str, str]:
    bad = dict(good)
    if kind == "no_such_date":
        bad["issued_on"] = bad["issued_on"][:5] + "02-30"
    elif kind == "hs_code":
        bad["hs_code"] = "7102.99"
    elif kind == "status":
        bad["status"] = "pending"
    elif kind == "duplicate":
        bad["number"] = earlier
    elif kind == "before_history_from":
        bad["issued_on"], bad["expires_on"] = "2001-06-01", "2001-07-31"
        bad["number"] = bad["number"].replace("-H", "-O", 1)
    elif kind == "not_yet_expired":
        bad["issued_on"], bad["expires_on"] = date.today().isoformat(), "2099-01-01"
        bad["status"] = "expired"
    elif kind == "unknown_participant":  # CA: a country, but no participant of the network
        if good["exporting_participant"] == participant:
            bad["importing_participant"] = "CA"
        else:
            bad["exporting_participant"] = "CA"
            bad["number"] = "CA" + bad["number"][2:]
    return bad


def write_history(
    path: Path,
    count: int,
    *,
    participant: str = "BE",
    counterparts: tuple[str, ...] = ("AE", "IN", "RU"),
    bad_every: int = 0,
    seed: int = 20,
    start: int = 1,
) -> dict[int, str]:
    """Write `count` data rows to `path`; every `bad_every`-th is bad (0: none). Returns the
    line of each bad row and the code the import reports for it."""
    rng = random.Random(seed)
    expected: dict[int, str] = {}
    numbers: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([*HISTORY_COLUMNS, "archive_ref"])
        for i in range(count):
            line = i + 2
            counterpart = counterparts[i % len(counterparts)]
            good = row(start + i, participant, counterpart, exporting=i % 4 != 3, rng=rng)
            if bad_every and i % bad_every == bad_every - 1 and numbers:
                kind, code = BAD_KINDS[(i // bad_every) % len(BAD_KINDS)]
                good = spoil(good, kind, numbers[0], participant)
                expected[line] = code
            else:
                numbers.append(good["number"])
            out.writerow([*(good[c] for c in HISTORY_COLUMNS), f"ARCH/{start + i}"])
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--participant", default="BE")
    parser.add_argument("--bad-every", type=int, default=0)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    bad = write_history(
        args.out, args.rows, participant=args.participant, bad_every=args.bad_every, seed=args.seed
    )
    print(f"{args.out}: {args.rows} rows, {len(bad)} bad")


if __name__ == "__main__":
    main()
