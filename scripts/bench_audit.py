"""Audit benchmark: re-verify a chain of a million events from genesis, and query its statistics.

    .venv/bin/python scripts/bench_audit.py [--events 1000000] [--workers 2] [--dir DIR] [--json]
    .venv/bin/python scripts/bench_audit.py --dir DIR --reuse      # audit a chain built before

First it builds the chain (not measured): about ten years of trade among ten big KP traders,
signed, sealed and stored in blocks with their commit certificates, the way a node stores final
blocks. Then it measures what `kpledger audit --data` does: every hash link, Merkle root,
signature and commit certificate, every state transition re-executed into a fresh state, and the
stored records, indexes and statistics compared with what the events imply. Next to it, the raw
Ed25519 verify rate of this run (one core), timed just before and just after the audit. Last, the
statistics queries the public API and `kpledger stats` answer, on that chain.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ledger import Network, signature_checks, stream, time_verify

from ledger.errors import StatisticsNotPublished
from ledger.genesis import Genesis, Parameters
from ledger.store import Store
from node.audit_pool import verify_chain_parallel
from node.files import load_genesis
from node.reports import live_rows, pair_stats, public_stats

#: Ten of the big traders DOMAIN.md names, with a rough share of the certificates each issues.
TRADERS = ("BE", "AE", "IN", "RU", "BW", "IL", "HK", "CA", "ZA", "AO")
SHARES = (0.20, 0.18, 0.14, 0.10, 0.08, 0.07, 0.07, 0.05, 0.06, 0.05)
START = datetime(2016, 1, 4, 8, tzinfo=UTC)
#: Signatures timed for the Ed25519 rate, before and after the audit each.
CEILING_SAMPLE = 20_000


def build(args: argparse.Namespace, data_dir: Path) -> tuple[Genesis, list[Any], dict[str, Any]]:
    """Generate and store the chain; returns genesis, a sample of its signatures, and figures."""
    net = Network(TRADERS, SHARES, START)
    (data_dir / "genesis.json").write_text(json.dumps(net.genesis.to_json(), indent=2))
    store = Store(data_dir / "chain", net.genesis)
    sample: list[Any] = []
    started = time.perf_counter()
    chunk: list[Any] = []
    block_time = 0
    events = stream(net, args.events, args.seed, start=START, events_per_day=args.events_per_day)
    for n, event in enumerate(events, 1):
        chunk.append(event)
        if len(chunk) < args.block_size and n < args.events:
            continue
        block_time = max(block_time + 1, chunk[-1].created_ms + 60_000)
        execution = net.next_block(store, chunk, block_time)
        if execution.refused:
            _, error = execution.refused[0]
            raise SystemExit(f"the ledger refused a generated event: {error.code}: {error}")
        store.commit(
            execution, net.commit_certificate(execution.header.height, execution.header.hash)
        )
        if len(sample) < CEILING_SAMPLE:
            sample.extend(signature_checks(net.genesis, chunk[:200]))
        chunk = []
        if store.height % 50 == 0:
            elapsed = time.perf_counter() - started
            print(
                f"  built {n:,} events in {store.height} blocks ({n / elapsed:,.0f}/s)",
                file=sys.stderr,
            )
    figures = {"blocks": store.height, "build_s": round(time.perf_counter() - started, 1)}
    store.close()
    return net.genesis, sample, figures


def reuse(data_dir: Path) -> tuple[Genesis, list[Any], dict[str, Any]]:
    """Open a chain built by an earlier run and take its signature sample from its blocks."""
    genesis = load_genesis(data_dir / "genesis.json")
    store = Store(data_dir / "chain", genesis)
    sample: list[Any] = []
    height = 1
    while len(sample) < CEILING_SAMPLE and height <= store.height:
        block = store.block(height)
        assert block is not None
        sample.extend(signature_checks(genesis, list(block.events[:200])))
        height += 1
    figures = {"blocks": store.height, "build_s": None}
    store.close()
    return genesis, sample, figures


def timed(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Milliseconds of the first call (cold: just after the store was opened) and of repeats."""
    t0 = time.perf_counter()
    call()
    cold = (time.perf_counter() - t0) * 1000
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        runs.append((time.perf_counter() - t0) * 1000)
    return {
        "cold_ms": round(cold, 2),
        "p50_ms": round(statistics.median(runs), 2),
        "max_ms": round(max(runs), 2),
    }


def stats_queries(store: Store, year: int) -> dict[str, Any]:
    """The public figures (published quarters only: None when the year has none yet) and live."""
    rows = len(live_rows(store, year, None))
    out: dict[str, Any] = {"year": year, "rows": rows}
    for name, quarter in (("public_year", None), ("public_quarter", 2)):
        try:
            public_stats(store, year, quarter)
        except StatisticsNotPublished:
            out[name] = None
            continue
        out[name] = timed(lambda q=quarter: public_stats(store, year, q), 50)
    out["pairs_year"] = timed(lambda: pair_stats(store, year, None), 50)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="kp-bench-audit-"))
    try:
        if args.reuse:
            genesis, sample, built = reuse(data_dir)
        else:
            if (data_dir / "chain").exists():
                shutil.rmtree(data_dir / "chain")
            data_dir.mkdir(parents=True, exist_ok=True)
            genesis, sample, built = build(args, data_dir)
        random.Random(0).shuffle(sample)

        before = len(sample) / time_verify(sample)
        store = Store(data_dir / "chain", genesis)
        last = [0.0]

        def progress(height: int, head: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 10:
                last[0] = now
                print(f"  audited block {height:,} of {head:,}", file=sys.stderr)

        t0 = time.perf_counter()
        report = verify_chain_parallel(store, genesis, workers=args.workers, progress=progress)
        audit_s = time.perf_counter() - t0
        store.close()
        after = len(sample) / time_verify(sample)
        if not report.ok:
            raise SystemExit(f"the audit found a fault: {report.fault}")

        store = Store(data_dir / "chain", genesis)  # reopened: the first query reads cold
        head = store.head
        assert head is not None
        # The last whole year of trade (the first year, if the chain is shorter than two).
        year = max(START.year, datetime.fromtimestamp(head.time_ms / 1000, UTC).year - 1)
        queries = stats_queries(store, year)
        store.close()
        ed25519 = (before + after) / 2
        rate = report.events_checked / audit_s
        return {
            "events": report.events_checked,
            "blocks": built["blocks"],
            "build_s": built["build_s"],
            "workers": args.workers,
            "audit_s": round(audit_s, 1),
            "audit_events_per_s": round(rate),
            "ed25519_verify_per_s_one_core": round(ed25519),
            "ed25519_before_after": [round(before), round(after)],
            "audit_share_of_one_core_verify": round(rate / ed25519, 3),
            "stats": queries,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "python": sys.version.split()[0],
        }
    finally:
        if not args.dir:
            shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the chain")
    parser.add_argument("--block-size", type=int, default=1000, help="events per block")
    parser.add_argument(
        "--events-per-day",
        type=int,
        default=300,
        help="pace of the generated trade (300 a day is about the KP's 55,000 certificates a year)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="audit processes")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trade generator")
    parser.add_argument("--dir", help="keep the chain under DIR (default: a temporary dir)")
    parser.add_argument("--reuse", action="store_true", help="audit the chain already in --dir")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.block_size < 1 or args.workers < 1 or args.events_per_day < 1:
        parser.error("--events, --block-size, --events-per-day and --workers must be positive")
    span = Parameters().max_backdating_days
    if args.block_size > span * args.events_per_day:
        # The block's time is its last event's: certificates dated early in a block spanning
        # more than max_backdating_days would be refused as backdated too far (SPEC 3).
        parser.error(
            f"a block may span at most {span} days of trade (--block-size, --events-per-day)"
        )
    if args.reuse and not args.dir:
        parser.error("--reuse needs --dir")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['events']:,} events in {result['blocks']:,} blocks")
    print(
        f"  audit                  {result['audit_events_per_s']:,} events/s with "
        f"{result['workers']} workers ({result['audit_s']} s)"
    )
    print(
        f"  Ed25519 verify, 1 core {result['ed25519_verify_per_s_one_core']:,}/s "
        f"(audit at {result['audit_share_of_one_core_verify']:.0%} of it)"
    )
    q = result["stats"]
    for name in ("public_year", "public_quarter", "pairs_year"):
        t = q[name]
        if t is None:
            print(f"  stats {name:<16} not published yet ({q['year']})")
            continue
        print(
            f"  stats {name:<16} {t['p50_ms']} ms p50, {t['max_ms']} ms max, "
            f"{t['cold_ms']} ms cold ({q['year']}, {q['rows']} rows a year)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
