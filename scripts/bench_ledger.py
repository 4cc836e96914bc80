"""Ledger benchmark: apply and store signed trade events in blocks, against the Ed25519 ceiling.

    .venv/bin/python scripts/bench_ledger.py [--events 100000] [--block-size 1000] [--json]

Signing the events (and sealing the parties' identities) happens first and is not measured. The
measured part is what a node does with a final block: verify every signature, apply every event
to the state (records, state tree), and write the block in one synced LevelDB batch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import authoring
from ledger.certificate import Certificate
from ledger.chain import Execution, build_block
from ledger.consensus.messages import CommitCertificate, Vote, VoteKind, quorum_size
from ledger.encoding import encode
from ledger.events import Event
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.hashing import TAG_EVENT
from ledger.keys import EncryptionKey, SigningKey, verify
from ledger.registry import Registry
from ledger.store import Store
from ledger.store.leveldb import LevelDB
from node.audit_pool import verify_chain_parallel

CODES = ("BE", "AE", "IN", "RU")
#: Who trades how much, roughly as the big KP traders do (share of certificates issued).
EXPORT_WEIGHTS = (0.35, 0.30, 0.15, 0.20)
EXPORTERS = {
    "BE": ("Antwerp Rough Trading NV", "Hoveniersstraat 22, 2018 Antwerpen"),
    "AE": ("Almas Gems DMCC", "Almas Tower, Jumeirah Lakes Towers, Dubai"),
    "IN": ("Surat Diamond Exports Pvt Ltd", "Mahidharpura, Surat 395003, Gujarat"),
    "RU": ("Yakutsk Almaz Trade JSC", "Lenina prospekt 6, Yakutsk 677000"),
}
ORIGINS = (["BW"], ["RU"], ["CD"], ["AO"], ["ZA"], ["CA"], ["NA", "BW"], ["MIXED"])
HS_CODES = ("7102.10", "7102.21", "7102.31")
START = datetime(2026, 3, 2, 8, tzinfo=UTC)
CHAIN_ID = "kp-bench"


class Network:
    """Participants with fresh keys (by default the four big traders); every one runs a
    validator. `weights` is each one's share of the certificates issued."""

    def __init__(
        self,
        codes: tuple[str, ...] = CODES,
        weights: tuple[float, ...] = EXPORT_WEIGHTS,
        genesis_time: datetime = START,
    ) -> None:
        self.codes = codes
        self.weights = weights
        self.authority = {c: SigningKey.generate() for c in codes}
        self.encryption = {c: EncryptionKey.generate() for c in codes}
        self.node = [SigningKey.generate() for _ in codes]
        self.genesis = Genesis(
            chain_id=CHAIN_ID,
            genesis_time=genesis_time.isoformat(),
            participants=tuple(
                Participant(
                    c,
                    f"{c} KP authority",
                    (c,),
                    self.authority[c].public_bytes,
                    self.encryption[c].public_bytes,
                )
                for c in codes
            ),
            validators=tuple(
                Validator(c, k.public_bytes, f"http://127.0.0.1:{7700 + i}")
                for i, (c, k) in enumerate(zip(codes, self.node, strict=True))
            ),
            # A generated block holds up to a week of trade (bench_audit), its events signed on
            # their own days: they may be up to 8 days older than the block (max_event_age_ms).
            parameters=Parameters(max_event_age_ms=8 * 86_400_000),
        )
        self.registry = Registry.from_genesis(self.genesis)

    def next_block(self, store: Store, events: list[Event], time_ms: int) -> Execution:
        """The block of `events` on top of the store's head, built as its proposer would."""
        return build_block(
            store,
            self.registry,
            self.genesis.hash,
            store.head,
            events,
            chain_id=CHAIN_ID,
            time_ms=time_ms,
            proposer=(store.height + 1) % len(self.node),
        )

    def commit_certificate(self, height: int, value: bytes) -> bytes:
        """Precommits of a quorum of validators for the block (what consensus would gather)."""
        n = quorum_size(len(self.node))
        votes = [
            Vote.create(k, CHAIN_ID, VoteKind.PRECOMMIT, height, 0, value, i)
            for i, k in enumerate(self.node[:n])
        ]
        return encode(CommitCertificate.from_precommits(votes).to_wire())


def generate(net: Network, count: int, seed: int) -> list[Event]:
    """A stream of trade: ~55% issues, ~40% import confirmations, the rest voids and rejections."""
    return list(stream(net, count, seed))


def stream(
    net: Network, count: int, seed: int, *, start: datetime = START, events_per_day: int = 0
) -> Iterator[Event]:
    """The events of `generate`, one at a time. With `events_per_day`, the trade is spread over
    the days from `start` at that pace (its certificates dated accordingly, which is what a
    statistics query over years needs); with 0, it all happens on the start day."""
    rng = random.Random(seed)
    open_certificates: list[authoring.Issuance] = []
    created = int(start.timestamp() * 1000)
    serial = 0
    today = start.date()
    for n in range(count):
        if events_per_day and n and n % events_per_day == 0:
            today += timedelta(days=1)
            created = max(created, int(datetime.combine(today, start.timetz()).timestamp() * 1000))
        created += 1
        roll = rng.random()
        if roll < 0.55 or not open_certificates:
            serial += 1
            exporting = rng.choices(net.codes, net.weights)[0]
            importing = rng.choice([c for c in net.codes if c != exporting])
            cert = _certificate(rng, serial, exporting, importing, today)
            issuance = authoring.issue(
                net.registry, CHAIN_ID, cert, net.authority[exporting], created_ms=created
            )
            open_certificates.append(issuance)
            yield issuance.event
            continue
        # Decide a certificate issued a while ago (not always the latest one).
        pick = rng.randrange(max(0, len(open_certificates) - 200), len(open_certificates))
        issuance = open_certificates.pop(pick)
        facts = issuance.event.body.facts
        exp, imp = facts.exporting_participant, facts.importing_participant
        if roll < 0.95:
            yield (
                authoring.confirm_import(
                    CHAIN_ID,
                    imp,
                    facts.number,
                    issuance.digest,
                    net.authority[imp],
                    created_ms=created,
                )
            )
        elif roll < 0.975:
            yield (
                authoring.reject_import(
                    CHAIN_ID,
                    imp,
                    facts.number,
                    issuance.digest,
                    "seal of the container broken on arrival",
                    net.authority[imp],
                    created_ms=created,
                )
            )
        else:
            yield (
                authoring.void(
                    CHAIN_ID,
                    exp,
                    facts.number,
                    rng.choice(["lost", "error"]),
                    net.authority[exp],
                    created_ms=created,
                )
            )


def _certificate(
    rng: random.Random, serial: int, exporting: str, importing: str, today: date
) -> Certificate:
    carats = rng.randint(50, 5_000_000)  # hundredths: 0.50 to 50,000 carats
    usd_per_carat = rng.randint(20, 900)
    exporter, importer = _company(exporting), _company(importing)
    return Certificate.from_json(
        {
            "number": f"{exporting}-{today.year}-{serial:07d}",
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": rng.choice(ORIGINS),
            "hs_code": rng.choice(HS_CODES),
            "carats": f"{carats // 100}.{carats % 100:02d}",
            "value_usd": f"{carats * usd_per_carat // 100}.{rng.randint(0, 99):02d}",
            "parcels": rng.randint(1, 40),
            "exporter": {"name": exporter[0], "address": exporter[1]},
            "importer": {"name": importer[0], "address": importer[1]},
            "issued_on": today.isoformat(),
            "expires_on": (today + timedelta(days=60)).isoformat(),
        }
    )


def _company(code: str) -> tuple[str, str]:
    return EXPORTERS.get(code, (f"{code} Rough Diamond Trading Ltd", f"1 Exchange Street, {code}"))


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes on disk as du counts them, apparent size) of every file under path."""
    used = apparent = 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(root, name))
            used += st.st_blocks * 512
            apparent += st.st_size
    return used, apparent


def signature_checks(genesis: Genesis, events: list[Event]) -> list[tuple[bytes, bytes, bytes]]:
    """(authority key, signed bytes, signature) of each event, for timing bare verification."""
    keys = {p.code: p.authority_key for p in genesis.participants}
    return [(keys[e.signer], encode(e.unsigned_wire), e.signature) for e in events]


def time_verify(
    checks: list[tuple[bytes, bytes, bytes]], clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds (of `clock`: wall-clock by default) to verify these signatures one by one
    through ledger.keys.verify."""
    started = clock()
    for public_key, payload, signature in checks:
        if not verify(public_key, TAG_EVENT, payload, signature):
            raise SystemExit("a benchmark signature does not verify")
    return clock() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    net = Network()
    started = time.perf_counter()
    events = generate(net, args.events, args.seed)
    signing_s = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event.type] = kinds.get(event.type, 0) + 1

    data_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="kp-bench-"))
    db_dir = data_dir / "chain"
    if db_dir.exists():
        shutil.rmtree(db_dir)
    store = Store(db_dir, net.genesis)
    apply_s = commit_s = 0.0
    # The ceiling is timed in slices between the blocks, so that whatever else loads the machine
    # weighs on it as on the blocks.
    ceiling_n, ceiling_s = 0, 0.0
    refused = 0
    block_time = int(START.timestamp() * 1000) + 3_600_000
    for offset in range(0, len(events), args.block_size):
        chunk = events[offset : offset + args.block_size]
        block_time += 60_000
        t0 = time.perf_counter()
        execution = net.next_block(store, chunk, block_time)
        t1 = time.perf_counter()
        # Gathering the validators' precommits is consensus, not storage: not measured.
        certificate = net.commit_certificate(execution.header.height, execution.header.hash)
        t2 = time.perf_counter()
        store.commit(execution, certificate)
        t3 = time.perf_counter()
        apply_s += t1 - t0
        commit_s += t3 - t2
        sample = signature_checks(net.genesis, chunk[: args.ceiling_per_block])
        ceiling_s += time_verify(sample)
        ceiling_n += len(sample)
        refused += len(execution.refused)
        if refused:
            _, error = execution.refused[0]
            raise SystemExit(f"the ledger refused a generated event: {error.code}: {error}")
    height = store.height

    audit: dict[str, Any] | None = None
    if args.audit_workers > 0:
        t0 = time.perf_counter()
        report = verify_chain_parallel(store, net.genesis, workers=args.audit_workers)
        audit_s = time.perf_counter() - t0
        if not report.ok:
            raise SystemExit(f"the audit found a fault: {report.fault}")
        audit = {
            "workers": args.audit_workers,
            "seconds": round(audit_s, 2),
            "events_per_s": round(report.events_checked / audit_s),
        }
    store.close()

    used, apparent = disk_usage(db_dir)
    db = LevelDB(db_dir)
    db.compact()
    db.close()
    used_compact, apparent_compact = disk_usage(db_dir)
    ceiling = ceiling_n / ceiling_s
    total_s = apply_s + commit_s
    result: dict[str, Any] = {
        "events": len(events),
        "kinds": kinds,
        "blocks": height,
        "block_size": args.block_size,
        "signing_s": round(signing_s, 2),
        "apply_s": round(apply_s, 2),
        "commit_s": round(commit_s, 2),
        "events_per_s": round(len(events) / total_s),
        "apply_events_per_s": round(len(events) / apply_s),
        "ed25519_verify_per_s": round(ceiling),
        "ceiling_sample": ceiling_n,
        "share_of_ceiling": round(len(events) / total_s / ceiling, 3),
        "disk_bytes": used,
        "disk_bytes_per_event": round(used / len(events), 1),
        "apparent_bytes_per_event": round(apparent / len(events), 1),
        "compacted_disk_bytes_per_event": round(used_compact / len(events), 1),
        "compacted_apparent_bytes_per_event": round(apparent_compact / len(events), 1),
        "audit": audit,
        "python": sys.version.split()[0],
    }
    if not args.dir:
        shutil.rmtree(data_dir)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to generate")
    parser.add_argument("--block-size", type=int, default=1000, help="events per block")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trade generator")
    parser.add_argument("--dir", help="keep the store under DIR (default: a temporary dir)")
    parser.add_argument(
        "--ceiling-per-block",
        type=int,
        default=200,
        help="signatures timed for the Ed25519 ceiling after each block",
    )
    parser.add_argument(
        "--audit-workers",
        type=int,
        default=0,
        help="also time a full audit of the chain with this many processes (0: skip)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.block_size < 1:
        parser.error("--events and --block-size must be positive")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    kinds = ", ".join(f"{k.split('.')[1]} {v}" for k, v in sorted(result["kinds"].items()))
    print(f"{result['events']:,} events ({kinds}) in {result['blocks']} blocks")
    print(f"  signing (not measured)   {result['signing_s']:.1f} s")
    print(
        f"  apply + store            {result['events_per_s']:,} events/s "
        f"(apply {result['apply_s']:.1f} s, commit {result['commit_s']:.1f} s)"
    )
    print(
        f"  Ed25519 verify ceiling   {result['ed25519_verify_per_s']:,}/s "
        f"({result['share_of_ceiling']:.0%} reached)"
    )
    print(
        f"  disk per event           {result['disk_bytes_per_event']:,} B "
        f"(after compact_range: {result['compacted_disk_bytes_per_event']:,} B)"
    )
    if result["audit"]:
        audit = result["audit"]
        print(
            f"  audit                    {audit['events_per_s']:,} events/s "
            f"with {audit['workers']} workers ({audit['seconds']} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
