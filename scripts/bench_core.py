"""Core benchmark: the CPU a validator's ledger work costs per event, against the Ed25519 rate.

    .venv/bin/python scripts/bench_core.py [--events 20000] [--block-size 1000] [--json]

What a validator does to each event, outside HTTP and consensus, in one process and in CPU time
of the thread doing it (`time.thread_time`, so the machine's other load weighs little on it, and
LevelDB's compactions, on threads of their own, do not land on whichever step they overlap; their
CPU is given apart, as `other_threads_us`):

- admit: the ledger's rules against the committed state (`Overlay.apply`), the signature check
  left out, as the node's mempool has done it already when it admits;
- build: the proposer's `build_block` of the events it admitted;
- validate: `validate_block`, every validator's re-execution of the block it receives;
- commit: `Store.commit` of the block with its commit certificate (one synced LevelDB batch),
  and the node's read cache taking the block's records and tree nodes.

Reads go through the node's own read cache (`node.readcache.CachedReader`), as they do in a
running node. A validator's figure is admit + validate + commit (the proposer adds build). The
state tree's share is its update of each block's keys done once more, alone, after the block is
validated (the same keys, the same reader, warmed the same way): the part of validate that is the
tree. Signing the events beforehand is not measured. An admission that depends on an earlier event
of the same block (a confirmation of an issue not committed yet) is refused against the committed
state; such events are counted (`admit_refused`) and still timed, as a node would spend them.

Python's cyclic garbage collector runs when allocations pass its thresholds, so its pauses land
on whichever step is running then; `--no-gc` turns it off for the run, for paired comparisons of
one step's own work (the node runs with it on).

The Ed25519 rate is measured in the same run, in the same thread CPU time, on slices of the events'
signatures between the blocks, so that each figure can be set against it (`*_verifications`: the
step's CPU per event in bare verifications).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.chain import build_block, validate_block
from ledger.errors import LedgerError
from ledger.records import state_key
from ledger.registry import EventContext
from ledger.state import Overlay
from ledger.statetree import StateTree
from ledger.store import Store
from node.readcache import CachedReader
from scripts.bench_ledger import (
    CHAIN_ID,
    START,
    Network,
    generate,
    signature_checks,
    time_verify,
)

STEPS = ("admit", "build", "validate", "commit", "state_tree")


def run(args: argparse.Namespace) -> dict[str, Any]:
    net = Network()
    events = generate(net, args.events, args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="kp-bench-core-"))
    if args.no_gc:
        gc.collect()
        gc.disable()
    try:
        store = Store(data_dir / "chain", net.genesis)
        reader = CachedReader(store)
        cpu = dict.fromkeys(STEPS, 0.0)
        admit_refused = 0
        ceiling_n, ceiling_s = 0, 0.0
        block_time = int(START.timestamp() * 1000) + 3_600_000
        process_started, thread_started = time.process_time(), time.thread_time()
        for offset in range(0, len(events), args.block_size):
            chunk = events[offset : offset + args.block_size]
            block_time += 60_000
            ids = {event.event_id for event in chunk}
            head = store.head
            ctx = EventContext(height=store.height + 1, time_ms=block_time, chain_id=CHAIN_ID)

            t0 = time.thread_time()
            for event in chunk:
                try:
                    Overlay(reader).apply(net.registry, event, ctx, verified=True)
                except LedgerError:
                    admit_refused += 1
            t1 = time.thread_time()
            built = build_block(
                reader,
                net.registry,
                net.genesis.hash,
                head,
                chunk,
                chain_id=CHAIN_ID,
                time_ms=block_time,
                proposer=(store.height + 1) % len(net.node),
                verified=ids,
            )
            t2 = time.thread_time()
            execution = validate_block(
                reader,
                net.registry,
                net.genesis.hash,
                head,
                built.block,
                verified=ids,
                chain_id=CHAIN_ID,
            )
            t3 = time.thread_time()
            if built.refused:
                _, error = built.refused[0]
                raise SystemExit(f"the ledger refused a generated event: {error.code}: {error}")

            items = {
                state_key(number): record.leaf_value()
                for number, record in execution.records.items()
            }
            previous_root = head.state_root if head is not None else bytes(32)
            t4 = time.thread_time()
            root, _ = StateTree(reader, previous_root).update(items)
            t5 = time.thread_time()
            if root != execution.header.state_root:
                raise SystemExit("the state tree's replay reached another root than the block's")

            # Gathering the validators' precommits is consensus, not the ledger: not measured.
            certificate = net.commit_certificate(execution.header.height, execution.header.hash)
            t6 = time.thread_time()
            store.commit(execution, certificate)
            reader.committed(execution)
            t7 = time.thread_time()

            cpu["admit"] += t1 - t0
            cpu["build"] += t2 - t1
            cpu["validate"] += t3 - t2
            cpu["state_tree"] += t5 - t4
            cpu["commit"] += t7 - t6
            sample = signature_checks(net.genesis, chunk[: args.ceiling_per_block])
            ceiling_s += time_verify(sample, time.thread_time)
            ceiling_n += len(sample)
        height = store.height
        store.close()
        other_threads_s = (time.process_time() - process_started) - (
            time.thread_time() - thread_started
        )
    finally:
        gc.enable()
        shutil.rmtree(data_dir, ignore_errors=True)

    n = len(events)
    verify_us = 1e6 * ceiling_s / ceiling_n
    per_event = {step: 1e6 * seconds / n for step, seconds in cpu.items()}
    per_event["validator"] = per_event["admit"] + per_event["validate"] + per_event["commit"]
    per_event["other_threads"] = 1e6 * other_threads_s / n
    result: dict[str, Any] = {
        "events": n,
        "blocks": height,
        "block_size": args.block_size,
        "admit_refused": admit_refused,
        "ed25519_verify_per_s": round(1e6 / verify_us),
        "ceiling_sample": ceiling_n,
        "gc": not args.no_gc,
        "python": sys.version.split()[0],
    }
    for step, us in per_event.items():
        result[f"{step}_us"] = round(us, 2)
        result[f"{step}_verifications"] = round(us / verify_us, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events to generate")
    parser.add_argument("--block-size", type=int, default=1000, help="events per block")
    parser.add_argument("--seed", type=int, default=7, help="seed of the trade generator")
    parser.add_argument(
        "--ceiling-per-block",
        type=int,
        default=200,
        help="signatures timed for the Ed25519 rate after each block",
    )
    parser.add_argument(
        "--no-gc", action="store_true", help="turn Python's cyclic garbage collector off"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.block_size < 1 or args.ceiling_per_block < 1:
        parser.error("--events, --block-size and --ceiling-per-block must be positive")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['events']:,} events in {result['blocks']} blocks of {result['block_size']:,} "
        f"({result['admit_refused']} admissions refused against the committed state)"
    )
    print(f"  Ed25519 verify, same run  {result['ed25519_verify_per_s']:,}/s (one core, CPU time)")
    print("  CPU per event             µs     verifications")
    names = {
        "admit": "admit (no signature)",
        "build": "build (proposer)",
        "validate": "validate",
        "commit": "commit",
        "state_tree": "  of validate: state tree",
        "validator": "validator: admit+validate+commit",
        "other_threads": "LevelDB's own threads (apart)",
    }
    for step, name in names.items():
        print(f"  {name:<34}{result[step + '_us']:>8.1f} {result[step + '_verifications']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
