"""History import benchmark: `kpledger history import` of a large file into four real nodes.

    .venv/bin/python scripts/bench_history.py [--rows 20000] [--bad-every 97] [--plain] [--json]

Starts a fresh 4-node network (BE, AE, IN, RU; TLS unless --plain) in a temporary directory,
with the rate limits lifted (all the load comes from one address), writes a history file of
`--rows` rows of BE's archive with a bad row every `--bad-every` (scripts/history_file.py), and:

1. **import**: runs `kpledger history import` on it against BE's node, end to end (reading,
   sealing and signing every row, batches of 1,000, waiting until every event is final), and
   checks that the bad rows are reported by line and the good ones recorded;
2. **again**: runs it a second time and checks that it adds nothing (every good row skipped);
3. **ingest**: AE's archive of the same size, its events signed before the clock starts, sent in
   batches of 1,000 to AE's node and followed until final: the rate the network takes history
   at, without the client's sealing.

Figures: rows/s of each run, the four nodes' CPU seconds and CPU ms per row (the figure least
disturbed by whatever else the machine runs), the importing client's CPU, the load average, and
the Ed25519 verify rate of this machine in the same run. Exit 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger import authoring  # noqa: E402
from ledger.events import Event  # noqa: E402
from ledger.genesis import Parameters  # noqa: E402
from ledger.history import BadRow, read_history  # noqa: E402
from scripts.bench_network import cpu_seconds, ed25519_verify_rate, machine  # noqa: E402
from scripts.history_file import write_history  # noqa: E402
from tests.e2e.harness import Network, NodeProcess  # noqa: E402

TARGET_ROWS_PER_S = 3000.0
BATCH = 1000


def nodes_cpu(net: Network) -> float:
    return sum(cpu_seconds(n.process.pid) for n in net.nodes if n.process is not None)


def kpledger_import(
    net: Network, path: Path, participant: str
) -> tuple[dict[str, Any], float, float]:
    """One `kpledger history import` run: its JSON report, wall seconds and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "node.cli", "history", "import", str(path),
            "--node", net.node(participant).url,
            "--key", str(net.directory / participant / "authority.pem"),
            "--genesis", str(net.directory / "genesis.json"),
            "--batch", str(BATCH), "--json",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=3600,
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if not done.stdout.strip().startswith("{"):
        raise SystemExit(f"the import failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout), wall, cpu


def presigned(net: Network, path: Path, participant: str) -> list[Event]:
    """Every good row of `path` signed as `participant`, as the import would sign it."""
    key = net.authority_key(participant)
    registry = net.registry
    events = []
    for row in read_history(path.open(encoding="utf-8", newline="")):
        if isinstance(row, BadRow):
            continue
        try:
            events.append(
                authoring.historical(
                    registry,
                    net.genesis.chain_id,
                    row.certificate,
                    row.status,
                    participant,
                    key,
                    created_ms=int(time.time() * 1000),
                ).event
            )
        except Exception:  # a participant the register does not list: a bad row
            continue
    return events


def ingest(node: NodeProcess, events: list[Event]) -> tuple[float, int]:
    """Send pre-signed events in batches and follow them until final: (seconds, refused)."""
    start = time.perf_counter()
    refused = 0
    for first in range(0, len(events), BATCH):
        chunk = events[first : first + BATCH]
        status, body = node.post("/v1/events", {"events": [e.to_envelope() for e in chunk]})
        if status != 200:
            raise SystemExit(f"a batch was refused: {status} {body}")
        refused += sum(1 for r in body["results"] if "error" in r)
    last = events[-1].event_id.hex()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status, body = node.get(f"/v1/events/{last}")
        if status == 200 and body["status"] == "final":
            break
        time.sleep(0.05)
    pending = list(events)
    while pending and time.monotonic() < deadline:  # every one final, not only the last
        chunk, pending = pending[:BATCH], pending[BATCH:]
        status, body = node.post("/v1/events", {"events": [e.to_envelope() for e in chunk]})
        waiting = [
            e for e, r in zip(chunk, body["results"], strict=True) if r.get("status") == "pending"
        ]
        if waiting:
            pending = waiting + pending
            time.sleep(0.1)
    return time.perf_counter() - start, refused


def run(args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="kp-bench-history-"))
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    net = Network.create(directory / "net", parameters=Parameters(), tls=not args.plain)
    net.lift_rate_limits()
    results: dict[str, Any] = {
        "transport": "plain HTTP" if args.plain else "TLS 1.3",
        "machine": machine(),
        "rows": args.rows,
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "checks": {},
    }
    try:
        results["ed25519_verify_per_s"] = round(ed25519_verify_rate(2.0))
        log(f"Ed25519 verify rate (one core, this run): {results['ed25519_verify_per_s']}/s")
        be_file, ae_file = directory / "be.csv", directory / "ae.csv"
        expected = write_history(be_file, args.rows, participant="BE", bad_every=args.bad_every)
        write_history(
            ae_file,
            args.rows,
            participant="AE",
            counterparts=("IN", "RU"),
            seed=21,
            start=args.rows + 1,
        )
        good = args.rows - len(expected)
        net.start()
        log(f"network up in {net.directory}; importing {args.rows} rows ({len(expected)} bad) ...")

        cpu0 = nodes_cpu(net)
        report, wall, client_cpu = kpledger_import(net, be_file, "BE")
        node_cpu = nodes_cpu(net) - cpu0
        results["checks"]["bad_rows_by_line"] = {
            b["line"]: b["error"] for b in report["bad"]
        } == expected
        results["checks"]["good_rows_final"] = report["recorded"] == good and report["pending"] == 0
        results["import"] = _figures(args.rows, wall, node_cpu, client_cpu)
        log(f"import: {_line(results['import'])}")

        cpu0 = nodes_cpu(net)
        again, wall, client_cpu = kpledger_import(net, be_file, "BE")
        node_cpu = nodes_cpu(net) - cpu0
        results["checks"]["again_adds_nothing"] = (again["recorded"], again["skipped"]) == (0, good)
        results["again"] = _figures(args.rows, wall, node_cpu, client_cpu)
        log(f"again:  {_line(results['again'])}")

        log("signing AE's archive ahead (not measured) ...")
        events = presigned(net, ae_file, "AE")
        cpu0 = nodes_cpu(net)
        seconds, refused = ingest(net.node("AE"), events)
        node_cpu = nodes_cpu(net) - cpu0
        results["checks"]["ingest_all_final"] = refused == 0
        results["ingest"] = _figures(len(events), seconds, node_cpu, None)
        log(f"ingest: {_line(results['ingest'])}")
        results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        net.close()
        shutil.rmtree(directory, ignore_errors=True)
    return results


def _figures(
    rows: int, seconds: float, node_cpu: float, client_cpu: float | None
) -> dict[str, Any]:
    out = {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds, 1),
        "nodes_cpu_s": round(node_cpu, 2),
        "nodes_cpu_ms_per_row": round(1000 * node_cpu / rows, 3),
    }
    if client_cpu is not None:
        out["client_cpu_s"] = round(client_cpu, 2)
        out["client_cpu_ms_per_row"] = round(1000 * client_cpu / rows, 3)
    return out


def _line(f: dict[str, Any]) -> str:
    client = f" client {f['client_cpu_ms_per_row']} ms CPU/row;" if "client_cpu_s" in f else ""
    return (
        f"{f['rows']} rows in {f['seconds']} s = {f['rows_per_s']} rows/s;{client} "
        f"4 nodes {f['nodes_cpu_ms_per_row']} ms CPU/row"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--bad-every", type=int, default=97)
    parser.add_argument("--plain", action="store_true", help="plain HTTP (say so with figures)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"load average at start {results['machine']['loadavg_at_start']}, "
              f"at end {results['loadavg_at_end']}; checks {results['checks']}")  # fmt: skip
    if not all(results["checks"].values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
