"""What a validator spends on the events its peers relay: decoding them, and gossip's intake.

    .venv/bin/python scripts/bench_intake.py [--committed 10000] [--relayed 6000] [--no-sig]
        [--code DIR] [--json]

Two figures, CPU time (`time.process_time`) per event, the median of `--repeats` passes:
- **decode**: `Event.decode` of the generated events' bytes (scripts/bench_ledger.py `generate`);
- **intake**: `Gossip.on_peer_events` with the node's real admission, over a LevelDB store that
  holds `--committed` final events, in batches of 100 new events plus 50 pending ones relayed
  again (a third of the relayed events are duplicates, as at saturation). Decisions on
  certificates whose issue is not final yet are left out: they would be refused.
`--no-sig` leaves the Ed25519 checks out (the same in any tree: what remains is the node's own
work). `--code DIR` runs another checkout's ledger/ and node/ (a paired A/B of two commits:
`git worktree add /tmp/old <commit>`, then this script with `--code /tmp/old`).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--committed", type=int, default=10_000)
    parser.add_argument("--relayed", type=int, default=6_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-sig", action="store_true", help="leave the Ed25519 checks out")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # That checkout's own bench_ledger (which puts its checkout first on the path) and code.
    sys.path[:0] = [str(args.code.resolve()), str(args.code.resolve() / "scripts")]
    figures = measure(args.committed, args.relayed, args.repeats, no_sig=args.no_sig)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>24}: {value}")


def measure(committed: int, relayed_count: int, repeats: int, *, no_sig: bool) -> dict[str, Any]:
    from bench_ledger import CHAIN_ID, START, Network, generate

    import ledger.events
    import node.service.view
    from ledger.events import Event
    from ledger.pending import PendingBook
    from ledger.store import Store
    from node.health import Health
    from node.mempool import Mempool
    from node.metrics import Metrics
    from node.service.admission import Admission
    from node.service.gossip import Gossip, Outbox
    from node.service.view import ChainView

    net = Network()
    events = generate(net, committed + relayed_count, 7)
    decode_s = []
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        for event in events:
            Event.decode(event.encoded)
        decode_s.append(time.process_time() - started)

    class Unwritten:
        """The durable mempool: a peer's events are never given to it."""

        def accepted(self, event: Event) -> None:
            raise AssertionError("a relayed event is not ours to store")

        def forget(self, event_ids: list[bytes]) -> list[bytes]:
            return []

    class NoLink:
        def send(self, *args: Any) -> None:
            raise AssertionError("intake sends nothing")

    directory = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        store = Store(directory / "data", net.genesis)
        block_ms = int(START.timestamp() * 1000) + 3_600_000
        for offset in range(0, committed, 2000):
            block_ms += 60_000
            block = events[offset : min(offset + 2000, committed)]
            execution = net.next_block(store, block, block_ms)
            cert = net.commit_certificate(execution.header.height, execution.header.hash)
            store.commit(execution, cert)
        # Admission checks events at the next block's time: a minute after the last one.
        node.service.view.now_ms = lambda: block_ms + 60_000  # type: ignore[attr-defined]
        if no_sig:
            ledger.events.verify = lambda *args: True  # type: ignore[attr-defined]
        relayed = [
            e.encoded
            for e in events[committed:]
            if e.type == "certificate.issue" or store.get_certificate(e.number) is not None
        ]
        batches: list[list[bytes]] = []
        for offset in range(0, len(relayed), 100):
            batches.append(relayed[offset : offset + 100] + relayed[max(0, offset - 50) : offset])
        total = sum(len(b) for b in batches)
        intake_s = []
        for _ in range(repeats):
            view = ChainView(CHAIN_ID, net.genesis, net.node[0], store)
            mempool = Mempool(1_000_000)
            metrics = Metrics()
            health = Health(metrics, view.registry.parameters.max_clock_drift_ms)
            admission = Admission(view, mempool, Unwritten(), Outbox(), health, metrics)
            gossip = Gossip(view, mempool, PendingBook(), Outbox(), admission, NoLink(), metrics)
            gc.collect()  # the last pass's garbage is not this pass's cost
            started = time.process_time()
            for batch in batches:
                gossip.on_peer_events(batch)
            intake_s.append(time.process_time() - started)
        admitted = len(mempool)
        store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "code": str(Path(ledger.events.__file__).parents[1]),
        "decode_us": round(1e6 * statistics.median(decode_s) / len(events), 2),
        "decode_us_min": round(1e6 * min(decode_s) / len(events), 2),
        "intake_us": round(1e6 * statistics.median(intake_s) / total, 2),
        "intake_us_min": round(1e6 * min(intake_s) / total, 2),
        "relayed": total,
        "admitted": admitted,
        "signatures": not no_sig,
    }


if __name__ == "__main__":
    main()
