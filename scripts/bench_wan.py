"""Liveness over slow, lossy peer links: four real nodes, every peer link through a proxy.

    .venv/bin/python scripts/bench_wan.py [--delay-ms 200] [--hold 0.1] [--reset 0.01]
        [--rate 50] [--duration 20] [--settle 60] [--seed 1] [--json]

Each node's genesis address is the port of a proxy (tests/e2e/lossy_proxy.py) that forwards to
the node: every chunk, each way, arrives `--delay-ms` late, a fraction `--hold` of chunks
0.2 to 1 s later still, and a fraction `--reset` of connections is reset. Clients talk to the
nodes directly. A steady `--rate` issuances a second for `--duration` seconds, round robin over
the nodes; each accepted event is polled (GET /v1/events/{id}, on the node that accepted it)
until it is final. Figures: acceptance-to-final p50/p90/p99/max, the share final within 10 s
(the target of issue 13: 90%), blocks made while the load ran and after, and how many events
were never seen final within `--settle` seconds of the load's end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger.genesis import Parameters  # noqa: E402
from tests.e2e.lossy_proxy import (  # noqa: E402
    LinkProfile,
    latencies,
    share_within,
    steady_load,
    wan_network,
)

TARGET_S = 10.0
TARGET_SHARE = 0.9


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="kp-wan-"))
    profile = LinkProfile(
        delay_s=args.delay_ms / 1000, hold_fraction=args.hold, reset_fraction=args.reset
    )
    parameters = None
    if args.timeout_propose_ms:
        parameters = Parameters(
            timeout_propose_ms=args.timeout_propose_ms,
            timeout_vote_ms=args.timeout_vote_ms,
            timeout_delta_ms=args.timeout_delta_ms,
        )
    net, fleet = wan_network(directory / "net", profile, args.seed, parameters)
    try:
        net.lift_rate_limits()
        net.start()
        base = net.nodes[0].height()
        started = time.monotonic()
        tracked = steady_load(net, args.rate, args.duration, args.settle)
        elapsed = time.monotonic() - started
        height = net.nodes[0].height()
        links = fleet.stats()
    finally:
        net.close()
        fleet.close()
    accepted = [r for r in tracked if r.accepted is not None]
    lat = latencies(tracked)
    return {
        "delay_ms": args.delay_ms,
        "hold_fraction": args.hold,
        "reset_fraction": args.reset,
        "rate": args.rate,
        "duration_s": args.duration,
        "timeouts_ms": [
            net.genesis.parameters.timeout_propose_ms,
            net.genesis.parameters.timeout_vote_ms,
            net.genesis.parameters.timeout_delta_ms,
        ],
        "submitted": len(tracked),
        "accepted": len(accepted),
        "final": len(lat),
        "never_final": len(accepted) - len(lat),
        "p50_s": _r(percentile(lat, 0.5)),
        "p90_s": _r(percentile(lat, 0.9)),
        "p99_s": _r(percentile(lat, 0.99)),
        "max_s": _r(lat[-1] if lat else None),
        "share_within_10s": round(share_within(tracked, TARGET_S), 3),
        "met": share_within(tracked, TARGET_S) >= TARGET_SHARE and len(lat) == len(accepted),
        "blocks": height - base,
        "run_s": round(elapsed, 1),
        "links": links.__dict__,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "nproc": os.cpu_count(),
        "_dir": str(directory),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--hold", type=float, default=0.1)
    parser.add_argument("--reset", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout-propose-ms", type=int, default=0)
    parser.add_argument("--timeout-vote-ms", type=int, default=500)
    parser.add_argument("--timeout-delta-ms", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the nodes' logs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    directory = result.pop("_dir")
    if args.keep:
        print(f"logs in {directory}", file=sys.stderr)
    else:
        shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
