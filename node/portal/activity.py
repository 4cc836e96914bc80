"""The portal's activity log (SPEC 7): every officer action (officer, action, certificate,
event id, time, outcome), append-only in the node's store (the local family `l/a/`)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ledger.encoding import decode, encode
from ledger.errors import MalformedInput, StoreCorrupt

#: The columns of the log and of its CSV download, in order.
COLUMNS = ("seq", "time", "officer", "action", "certificate", "event_id", "outcome", "detail")


class ActivityStore(Protocol):
    def append_activity(self, seq: int, entry: bytes) -> None: ...

    def activity(self, *, reverse: bool = False) -> Iterator[tuple[int, bytes]]: ...


@dataclass(frozen=True)
class Entry:
    seq: int
    time_ms: int
    officer: str
    action: str
    certificate: str
    event_id: str
    outcome: str
    detail: str

    def encode(self) -> bytes:
        return encode(
            [
                1,
                self.time_ms,
                self.officer,
                self.action,
                self.certificate,
                self.event_id,
                self.outcome,
                self.detail,
            ]
        )

    @classmethod
    def decode(cls, seq: int, raw: bytes) -> Entry:
        try:
            version, time_ms, officer, action, number, event_id, outcome, detail = decode(raw)
        except (MalformedInput, ValueError, TypeError) as exc:
            raise StoreCorrupt(f"activity log entry {seq} does not decode: {exc}") from exc
        if version != 1:
            raise StoreCorrupt(f"activity log entry {seq} is not one this node writes")
        return cls(seq, time_ms, officer, action, number, event_id, outcome, detail)

    @property
    def time_text(self) -> str:
        return datetime.fromtimestamp(self.time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def row(self) -> list[str]:
        return [
            str(self.seq),
            self.time_text,
            self.officer,
            self.action,
            self.certificate,
            self.event_id,
            self.outcome,
            self.detail,
        ]


def _csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): a leading = + - @
    tab or CR is quoted by a leading apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class ActivityLog:
    """Appends entries numbered after the last one; nothing here rewrites or deletes one."""

    def __init__(self, store: ActivityStore, clock: Callable[[], int]) -> None:
        self._store = store
        self.clock = clock
        self._lock = threading.Lock()
        last = next(store.activity(reverse=True), None)
        self._next = last[0] + 1 if last is not None else 1

    def record(
        self,
        officer: str,
        action: str,
        outcome: str,
        *,
        certificate: str = "",
        event_id: str = "",
        detail: str = "",
    ) -> Entry:
        with self._lock:
            entry = Entry(
                self._next,
                self.clock(),
                officer,
                action,
                certificate,
                event_id,
                outcome,
                detail[:500],
            )
            self._store.append_activity(entry.seq, entry.encode())
            self._next += 1
        return entry

    def entries(self, *, newest_first: bool = True, limit: int | None = None) -> list[Entry]:
        out: list[Entry] = []
        for seq, raw in self._store.activity(reverse=newest_first):
            out.append(Entry.decode(seq, raw))
            if limit is not None and len(out) >= limit:
                break
        return out

    def csv(self) -> str:
        """The whole log, oldest first, as CSV (RFC 4180)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for entry in self.entries(newest_first=False):
            writer.writerow([_csv_cell(cell) for cell in entry.row()])
        return buffer.getvalue()
