"""Demo trade for a devnet: certificates shaped like the KP's big flows, with their whole lives."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import authoring
from ledger.certificate import Certificate
from ledger.events import Event
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.registry import Registry
from node.client import NodeClient
from node.files import load_signing_key

#: Relative weight of each participant as an exporter (DOMAIN.md: the big traders).
EXPORT_WEIGHT = {
    "EU": 30,
    "BE": 30,
    "AE": 25,
    "IN": 15,
    "RU": 20,
    "BW": 20,
    "IL": 8,
    "HK": 8,
    "CA": 6,
    "ZA": 6,
}
#: (low, high) US cents per hundredth of a carat... i.e. dollars per carat, by HS code.
PRICE_PER_CARAT = {"7102.10": (60, 180), "7102.21": (4, 20), "7102.31": (120, 950)}
ORIGINS = ["RU", "BW", "CA", "ZA", "AO", "CD", "NA", "ZW", "SL", "AU"]
COMPANIES = {
    "BE": [
        ("Antwerp Rough Trading NV", "Hoveniersstraat 30, 2018 Antwerpen"),
        ("Schupstraat Diamonds BV", "Schupstraat 9, 2018 Antwerpen"),
    ],
    "AE": [
        ("Almas Rough DMCC", "Almas Tower, Jumeirah Lakes Towers, Dubai"),
        ("Gulf Gem Traders FZE", "Dubai Diamond Exchange, Dubai"),
    ],
    "IN": [
        ("Surat Rough Imports Pvt Ltd", "Varachha Road, Surat 395006"),
        ("Bharat Diamond Bourse Member Co", "Bandra Kurla Complex, Mumbai 400051"),
    ],
    "RU": [
        ("Yakutsk Rough Sales JSC", "Lenina 6, Mirny, Sakha"),
        ("Ural Gem Export LLC", "Prospekt Mira 40, Moscow"),
    ],
}


@dataclass
class DemoParticipant:
    code: str
    country: str
    key: SigningKey
    url: str


def _company(code: str, rng: random.Random) -> dict[str, str]:
    options = COMPANIES.get(code) or [(f"{code} Rough Diamond Co", f"Main Street 1, {code}")]
    name, address = rng.choice(options)
    return {"name": name, "address": address}


def make_certificate(
    rng: random.Random, exporter: DemoParticipant, importer: str, serial: int, issued_on: date
) -> dict[str, Any]:
    hs = rng.choices(list(PRICE_PER_CARAT), weights=[5, 2, 6])[0]
    carats_hundredths = rng.randint(50_00, 25_000_00)
    low, high = PRICE_PER_CARAT[hs]
    value_cents = carats_hundredths * rng.randint(low, high)
    origin = ["MIXED"] if rng.random() < 0.3 else [rng.choice(ORIGINS)]
    return {
        "number": f"{exporter.country}-{issued_on.year}-{serial:06d}",
        "exporting_participant": exporter.code,
        "importing_participant": importer,
        "origin": origin,
        "hs_code": hs,
        "carats": f"{carats_hundredths // 100}.{carats_hundredths % 100:02d}",
        "value_usd": f"{value_cents // 100}.{value_cents % 100:02d}",
        "parcels": rng.randint(1, 12),
        "exporter": _company(exporter.code, rng),
        "importer": _company(importer, rng),
        "issued_on": issued_on.isoformat(),
        "expires_on": (issued_on + timedelta(days=rng.choice([30, 60, 90]))).isoformat(),
    }


def load_demo(
    directory: Path, genesis: Genesis, *, count: int = 60, seed: int = 2026, log: Any = print
) -> int:
    """Submit `count` certificates and their follow-ups; returns the number of events final."""
    rng = random.Random(seed)
    registry = Registry.from_genesis(genesis)
    participants = []
    for validator in genesis.validators:
        p = registry.participant(validator.participant)
        participants.append(
            DemoParticipant(
                p.code,
                p.countries[0],
                load_signing_key(directory / p.code / "authority.pem"),
                validator.address,
            )
        )
    if len(participants) < 2:
        return 0
    by_code = {p.code: p for p in participants}
    weights = [EXPORT_WEIGHT.get(p.code, 5) for p in participants]
    today = datetime.now(UTC).date()
    # Dated at most the network's max_backdating_days ago (SPEC 3), with a day to spare in case
    # the block that records a certificate falls on the next day.
    backdating = max(registry.parameters.max_backdating_days - 1, 0)
    issued: list[tuple[DemoParticipant, str, bytes, str]] = []
    submitted: list[tuple[NodeClient, Event]] = []

    def submit(who: DemoParticipant, event: Event) -> None:
        client = NodeClient(who.url)
        answer = client.post("/v1/events", event.to_envelope())
        if not answer.ok:
            log(f"  demo event refused: {answer.error}: {answer.message}")
            return
        submitted.append((client, event))

    for serial in range(1, count + 1):
        exporter = rng.choices(participants, weights=weights)[0]
        importer = rng.choice([p for p in participants if p is not exporter])
        issued_on = today - timedelta(days=rng.randint(0, backdating))
        raw = make_certificate(rng, exporter, importer.code, serial, issued_on)
        result = authoring.issue(
            registry,
            genesis.chain_id,
            Certificate.from_json(raw),
            exporter.key,
            created_ms=_now_ms(),
        )
        submit(exporter, result.event)
        issued.append((exporter, importer.code, result.digest, raw["number"]))
    _wait(submitted, log)
    follow: list[tuple[NodeClient, Event]] = []
    submitted.clear()
    for exporter, importer_code, digest, number in issued:
        importer = by_code[importer_code]
        roll = rng.random()
        if roll < 0.70:
            submit(
                importer,
                authoring.confirm_import(
                    genesis.chain_id,
                    importer.code,
                    number,
                    digest,
                    importer.key,
                    created_ms=_now_ms(),
                ),
            )
        elif roll < 0.76:
            submit(
                importer,
                authoring.reject_import(
                    genesis.chain_id,
                    importer.code,
                    number,
                    digest,
                    rng.choice(
                        [
                            "seal of the container broken on arrival",
                            "parcel count does not match the certificate",
                        ]
                    ),
                    importer.key,
                    created_ms=_now_ms(),
                ),
            )
        elif roll < 0.84:
            submit(
                exporter,
                authoring.void(
                    genesis.chain_id,
                    exporter.code,
                    number,
                    rng.choice(["lost", "error"]),
                    exporter.key,
                    created_ms=_now_ms(),
                ),
            )
    follow.extend(submitted)
    _wait(follow, log)
    return len(issued) + len(follow)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _wait(submitted: list[tuple[NodeClient, Event]], log: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(submitted)
    while pending and time.monotonic() < deadline:
        client, event = pending[-1]
        answer = client.get(f"/v1/events/{event.event_id.hex()}")
        if answer.ok and answer.body["status"] in ("final", "rejected"):
            pending.pop()
            continue
        time.sleep(0.2)
    if pending:
        log(f"  {len(pending)} demo events were not final after {timeout:.0f} s")
