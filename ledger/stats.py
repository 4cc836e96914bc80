"""KP trade statistics, kept up to date block by block: counts, carats and value per quarter.

What counts (our reading of the KP's quarterly statistics, written in docs/statistics.md):
a certificate counts as an **export** of its exporting participant from issue until it is voided,
and as an **import** of its importing participant once the import is confirmed. Both are filed
under the quarter of the certificate's issue date, so that A's exports to B and B's imports from
A reconcile exactly, certificate by certificate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from ledger.records import IMPORT_CONFIRMED, VOIDED, CertificateRecord

EXPORT = "e"
IMPORT = "i"


@dataclass(frozen=True, order=True)
class StatKey:
    year: int
    quarter: int
    role: str  # EXPORT or IMPORT
    participant: str
    counterparty: str
    hs_code: str

    def encode(self) -> bytes:
        return (
            f"{self.year:04d}{self.quarter}/{self.role}/{self.participant}/"
            f"{self.counterparty}/{self.hs_code}"
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> StatKey:
        period, role, participant, counterparty, hs = raw.decode().split("/")
        return cls(int(period[:4]), int(period[4]), role, participant, counterparty, hs)


@dataclass(frozen=True)
class Figures:
    certificates: int = 0
    carats: int = 0  # hundredths
    value_usd: int = 0  # cents

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.certificates + other.certificates,
            self.carats + other.carats,
            self.value_usd + other.value_usd,
        )

    def __neg__(self) -> Figures:
        return Figures(-self.certificates, -self.carats, -self.value_usd)

    def is_zero(self) -> bool:
        return self.certificates == 0 and self.carats == 0 and self.value_usd == 0


def quarter_of(month: int) -> int:
    return (month - 1) // 3 + 1


def contributions(record: CertificateRecord | None) -> list[tuple[StatKey, Figures]]:
    """What one certificate adds to the statistics in its current status."""
    if record is None:
        return []
    f = record.facts
    year, quarter = f.issued_on.year, quarter_of(f.issued_on.month)
    figures = Figures(1, f.carats, f.value_usd)
    out = []
    if record.status != VOIDED:
        key = StatKey(
            year, quarter, EXPORT, f.exporting_participant, f.importing_participant, f.hs_code
        )
        out.append((key, figures))
    if record.status == IMPORT_CONFIRMED:
        key = StatKey(
            year, quarter, IMPORT, f.importing_participant, f.exporting_participant, f.hs_code
        )
        out.append((key, figures))
    return out


def deltas(
    changes: Iterable[tuple[CertificateRecord | None, CertificateRecord]],
) -> dict[StatKey, Figures]:
    """The change to the statistics when each record goes from its old to its new version."""
    total: dict[StatKey, Figures] = defaultdict(Figures)
    for old, new in changes:
        for key, figures in contributions(old):
            total[key] = total[key] + (-figures)
        for key, figures in contributions(new):
            total[key] = total[key] + figures
    return {k: v for k, v in total.items() if not v.is_zero()}


# -- publication: the public figures of closed quarters, frozen at stated heights ---------------
#
# The public route never shows live figures: reading them before and after one block gives that
# block's certificates' carats and value. Instead each quarter is *published* once, at the first
# block whose time is at least its end plus `stats_freeze_days`, with the figures as they stand
# after that block. Later changes to a published quarter (a late confirmation, a void, a
# certificate dated into it) are *revisions*: they are published together at the next
# publication of any quarter, and a cell is revised only when at least MIN_PUBLIC_CELL
# certificates changed it since its last publication (otherwise it keeps its published figures
# and the change waits). docs/statistics.md says what this leaves a reader able to infer.

#: Public cells with fewer certificates show the count only, and a published cell is revised only
#: when at least this many certificates changed it: one or two would give a shipment away.
MIN_PUBLIC_CELL = 3

DAY_MS = 86_400_000


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    quarter: int

    @property
    def code(self) -> int:
        """A sortable integer: 20263 for 2026 Q3."""
        return self.year * 10 + self.quarter

    @classmethod
    def from_code(cls, code: int) -> Quarter:
        return cls(code // 10, code % 10)

    @classmethod
    def containing(cls, day: date) -> Quarter:
        return cls(day.year, quarter_of(day.month))

    def previous(self) -> Quarter:
        return (
            Quarter(self.year - 1, 4) if self.quarter == 1 else Quarter(self.year, self.quarter - 1)
        )

    def next(self) -> Quarter:
        return (
            Quarter(self.year + 1, 1) if self.quarter == 4 else Quarter(self.year, self.quarter + 1)
        )

    def end(self) -> date:
        """The first day after the quarter."""
        following = self.next()
        return date(following.year, 3 * following.quarter - 2, 1)

    def prefix(self) -> str:
        return f"{self.year:04d}{self.quarter}"

    def __str__(self) -> str:
        return f"{self.year} Q{self.quarter}"


def freeze_ms(quarter: Quarter, freeze_days: int) -> int:
    """The block time from which a quarter is published: its end plus `freeze_days`, 00:00 UTC."""
    end = quarter.end()
    return int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp() * 1000) + (
        freeze_days * DAY_MS
    )


def latest_due(time_ms: int, freeze_days: int) -> Quarter:
    """The latest quarter whose publication time is at or before `time_ms`."""
    moment = datetime.fromtimestamp((time_ms - freeze_days * DAY_MS) / 1000, tz=UTC)
    return Quarter.containing(moment.date()).previous()


@dataclass(frozen=True, order=True)
class PublicCell:
    """One published figure: a participant in one role (exporter or importer) and HS code."""

    role: str
    participant: str
    hs_code: str

    def encode(self, quarter: Quarter) -> bytes:
        return f"{quarter.prefix()}/{self.role}/{self.participant}/{self.hs_code}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> tuple[Quarter, PublicCell]:
        period, role, participant, hs = raw.decode().split("/")
        return Quarter(int(period[:4]), int(period[4])), cls(role, participant, hs)


def cell_of(key: StatKey) -> tuple[Quarter, PublicCell]:
    return Quarter(key.year, key.quarter), PublicCell(key.role, key.participant, key.hs_code)


def changes_of(
    changes: Iterable[tuple[CertificateRecord | None, CertificateRecord]],
) -> tuple[dict[StatKey, Figures], dict[tuple[Quarter, PublicCell], int]]:
    """`deltas(changes)`, and how many certificates changed each public cell (entered it or left
    it), in one pass: each record's contributions made once, and each key's public cell once per
    block. What a commit writes to the statistics comes from it."""
    total: dict[StatKey, list[int]] = {}
    touched: dict[tuple[Quarter, PublicCell], int] = {}
    cells: dict[StatKey, tuple[Quarter, PublicCell]] = {}

    def cell(key: StatKey) -> tuple[Quarter, PublicCell]:
        found = cells.get(key)
        if found is None:
            found = cells[key] = cell_of(key)
        return found

    for old, new in changes:
        before = contributions(old)
        after = contributions(new)
        for sign, contributed in ((-1, before), (1, after)):
            for key, figures in contributed:
                sums = total.get(key)
                if sums is None:
                    sums = total[key] = [0, 0, 0]
                sums[0] += sign * figures.certificates
                sums[1] += sign * figures.carats
                sums[2] += sign * figures.value_usd
        # The cells each version contributes to; their difference is those it entered or left.
        entered_or_left = {cell(key) for key, _ in before} ^ {cell(key) for key, _ in after}
        for moved in entered_or_left:
            touched[moved] = touched.get(moved, 0) + 1
    return {k: Figures(*v) for k, v in total.items() if any(v)}, touched


@dataclass(frozen=True)
class Published:
    """A cell's public figures, the count of changes they include, and the height they date from."""

    figures: Figures
    changes: int
    height: int

    def to_wire(self) -> list[int]:
        f = self.figures
        return [f.certificates, f.carats, f.value_usd, self.changes, self.height]

    @classmethod
    def from_wire(cls, obj: list[int]) -> Published:
        certificates, carats, value, changes, height = obj
        return cls(Figures(certificates, carats, value), changes, height)


def publish_quarter(
    *,
    first: bool,
    height: int,
    live: Mapping[PublicCell, Figures],
    changed: Mapping[PublicCell, int],
    published: Mapping[PublicCell, Published],
) -> tuple[dict[PublicCell, Published], bool]:
    """What a publication at `height` writes for one quarter, and whether any change waits.

    `live` are the quarter's figures after the block, `changed` each cell's count of changes ever,
    `published` what was published before. A first publication takes every cell as it stands; a
    revision takes a cell only when at least MIN_PUBLIC_CELL certificates changed it since.
    """
    writes: dict[PublicCell, Published] = {}
    waiting = False
    for cell in sorted(set(live) | set(published)):
        figures = live.get(cell, Figures())
        count = changed.get(cell, 0)
        before = published.get(cell)
        if before is not None and before.figures == figures and before.changes == count:
            continue
        since = count - (before.changes if before is not None else 0)
        if first or since >= MIN_PUBLIC_CELL:
            writes[cell] = Published(figures, count, height)
        else:
            waiting = True
    return writes, waiting


@dataclass(frozen=True)
class Publication:
    """What one block publishes: new or revised cells, and the quarters left with nothing waiting."""

    height: int
    before: Quarter | None  # the last quarter published before this block (None: the first)
    due: Quarter  # the last quarter published from this block on
    time_ms: int
    cells: dict[tuple[Quarter, PublicCell], Published]
    settled: frozenset[Quarter]

    def record(self) -> list[int]:
        return [self.before.code if self.before is not None else 0, self.due.code, self.time_ms]


def publication(
    *,
    height: int,
    time_ms: int,
    freeze_days: int,
    last: Quarter | None,
    dirty: Iterable[Quarter],
    live: Callable[[Quarter], Mapping[PublicCell, Figures]],
    changed: Callable[[Quarter], Mapping[PublicCell, int]],
    published: Callable[[Quarter], Mapping[PublicCell, Published]],
) -> Publication | None:
    """The publication block `height` makes, if its time passes a quarter's publication time.

    `dirty` are the quarters changed since they were last published (this block included);
    `live`, `changed` and `published` give a quarter's figures after the block, its cells'
    counts of changes, and what was published of it before.
    """
    due = latest_due(time_ms, freeze_days)
    if last is not None and due <= last:
        return None
    cells: dict[tuple[Quarter, PublicCell], Published] = {}
    settled = set()
    for quarter in sorted(q for q in set(dirty) if q <= due):
        writes, waiting = publish_quarter(
            first=last is None or quarter > last,
            height=height,
            live={c: f for c, f in live(quarter).items() if not f.is_zero()},
            changed=changed(quarter),
            published=published(quarter),
        )
        cells.update({(quarter, cell): p for cell, p in writes.items()})
        if not waiting:
            settled.add(quarter)
    return Publication(height, last, due, time_ms, cells, frozenset(settled))


def public_cells(figures: Iterable[tuple[StatKey, Figures]]) -> dict[PublicCell, Figures]:
    """Live aggregates summed over counterparties: the cells the public route shows."""
    out: dict[PublicCell, Figures] = defaultdict(Figures)
    for key, f in figures:
        out[cell_of(key)[1]] += f
    return dict(out)


@dataclass
class PublicBook:
    """The public statistics' bookkeeping in memory, block by block: what the store's `p/`
    family must hold (the audit rebuilds it from the chain and compares)."""

    live: dict[Quarter, dict[StatKey, Figures]] = field(default_factory=dict)
    changed: dict[Quarter, dict[PublicCell, int]] = field(default_factory=dict)
    published: dict[Quarter, dict[PublicCell, Published]] = field(default_factory=dict)
    dirty: set[Quarter] = field(default_factory=set)
    publications: dict[int, list[int]] = field(default_factory=dict)
    last: Quarter | None = None

    def apply(
        self,
        height: int,
        time_ms: int,
        freeze_days: int,
        changes: list[tuple[CertificateRecord | None, CertificateRecord]],
    ) -> None:
        moved, touched = changes_of(changes)
        for key, delta in moved.items():
            quarter = Quarter(key.year, key.quarter)
            figures = self.live.setdefault(quarter, {})
            total = figures.get(key, Figures()) + delta
            if total.is_zero():
                figures.pop(key, None)
            else:
                figures[key] = total
        for (quarter, cell), count in touched.items():
            counts = self.changed.setdefault(quarter, {})
            counts[cell] = counts.get(cell, 0) + count
            self.dirty.add(quarter)
        made = publication(
            height=height,
            time_ms=time_ms,
            freeze_days=freeze_days,
            last=self.last,
            dirty=self.dirty,
            live=lambda q: public_cells(self.live.get(q, {}).items()),
            changed=lambda q: self.changed.get(q, {}),
            published=lambda q: self.published.get(q, {}),
        )
        if made is None:
            return
        for (quarter, cell), published in made.cells.items():
            self.published.setdefault(quarter, {})[cell] = published
        self.dirty -= made.settled
        self.publications[height] = made.record()
        self.last = made.due
