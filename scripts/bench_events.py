"""The signed events the network benchmarks submit: issuances and import confirmations between
four participants, signed ahead in worker processes (signing is not what is measured)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger import authoring  # noqa: E402
from ledger.certificate import Certificate  # noqa: E402
from ledger.hashing import TAG_EVENT_ID, tagged_hash  # noqa: E402
from ledger.registry import Registry  # noqa: E402
from node.files import load_genesis, load_signing_key  # noqa: E402

CODES = ("BE", "AE", "IN", "RU")
PAIRS = [(a, b) for a in CODES for b in CODES if a != b]
PARTIES = {
    "BE": ("Antwerp Rough Trading NV", "Hoveniersstraat 22, 2018 Antwerpen"),
    "AE": ("Almas Gems DMCC", "Almas Tower, Jumeirah Lakes Towers, Dubai"),
    "IN": ("Surat Diamond Exports Pvt Ltd", "Mahidharpura, Surat 395003, Gujarat"),
    "RU": ("Yakutsk Almaz Trade JSC", "Lenina prospekt 6, Yakutsk 677000"),
}
HS_CODES = ("7102.10", "7102.21", "7102.31")


# -- signing, in worker processes -----------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(directory: str) -> None:
    genesis = load_genesis(Path(directory) / "genesis.json")
    _worker["chain_id"] = genesis.chain_id
    _worker["registry"] = Registry.from_genesis(genesis)
    _worker["keys"] = {c: load_signing_key(Path(directory) / c / "authority.pem") for c in CODES}


def _sign_pairs(serials: Sequence[int]) -> list[tuple[bytes, bytes]]:
    """For each serial, an issuance and the importer's confirmation of it (canonical bytes)."""
    chain_id, registry, keys = _worker["chain_id"], _worker["registry"], _worker["keys"]
    today = datetime.now(UTC).date()
    now = int(time.time() * 1000)
    out = []
    for n in serials:
        exporting, importing = PAIRS[n % len(PAIRS)]
        number = f"{exporting}-BENCH-{n:08d}"
        raw = {
            "number": number,
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": ["MIXED"] if n % 3 == 0 else ["BW"],
            "hs_code": HS_CODES[n % 3],
            "carats": f"{n * 7 % 5000 + 1}.{n % 100:02d}",
            "value_usd": f"{n * 1013 % 900000 + 100}.{n * 3 % 100:02d}",
            "parcels": n % 12 + 1,
            "exporter": {"name": PARTIES[exporting][0], "address": PARTIES[exporting][1]},
            "importer": {"name": PARTIES[importing][0], "address": PARTIES[importing][1]},
            "issued_on": today.isoformat(),
            "expires_on": (today + timedelta(days=90)).isoformat(),
        }
        issuance = authoring.issue(
            registry, chain_id, Certificate.from_json(raw), keys[exporting], created_ms=now
        )
        confirm = authoring.confirm_import(
            chain_id, importing, number, issuance.digest, keys[importing], created_ms=now
        )
        out.append((issuance.event.encoded, confirm.encoded))
    return out


def sign_pairs(directory: Path, first: int, count: int, workers: int) -> list[tuple[bytes, bytes]]:
    if count <= 0:
        return []
    serials = list(range(first, first + count))
    chunk = max(50, math.ceil(count / (workers * 8)))
    chunks = [serials[i : i + chunk] for i in range(0, count, chunk)]
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(str(directory),)) as pool:
        return [pair for part in pool.map(_sign_pairs, chunks) for pair in part]


class Supply:
    """Signed events to submit: confirmations of certificates already final, and issuances."""

    def __init__(self, directory: Path, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        self.serial = 0
        #: Confirmations by the id of their issuance, until that issuance is accepted.
        self.unissued: dict[bytes, bytes] = {}
        #: Confirmations whose issuance was accepted (and became final before the next run).
        self.confirmable: list[bytes] = []

    def issuances(self, count: int) -> list[bytes]:
        pairs = sign_pairs(self.directory, self.serial, count, self.workers)
        self.serial += count
        self.unissued.update((event_id(issue), confirm) for issue, confirm in pairs)
        return [p[0] for p in pairs]

    def settle(self, records: Sequence[Any]) -> None:
        """After a run: the certificates it issued may be confirmed in the next."""
        for record in records:
            if record.status == 202 and record.event_id in self.unissued:
                self.confirmable.append(self.unissued.pop(record.event_id))

    def mixed(self, count: int) -> list[bytes]:
        """`count` events, half confirmations (of earlier issuances) when there are enough."""
        confirms = self.confirmable[: count // 2]
        self.confirmable = self.confirmable[len(confirms) :]
        fresh = self.issuances(count - len(confirms))
        out: list[bytes] = []
        for i in range(max(len(confirms), len(fresh))):
            if i < len(confirms):
                out.append(confirms[i])
            if i < len(fresh):
                out.append(fresh[i])
        return out


def event_id(encoded: bytes) -> bytes:
    return tagged_hash(TAG_EVENT_ID, encoded)
