"""KP trade statistics, kept up to date block by block: counts, carats and value per quarter.

What counts (our reading of the KP's quarterly statistics, written in docs/statistics.md):
a certificate counts as an **export** of its exporting participant from issue until it is voided,
and as an **import** of its importing participant once the import is confirmed. Both are filed
under the quarter of the certificate's issue date, so that A's exports to B and B's imports from
A reconcile exactly, certificate by certificate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.state import IMPORT_CONFIRMED, VOIDED, CertificateRecord

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
