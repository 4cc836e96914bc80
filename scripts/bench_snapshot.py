"""Snapshot benchmark: cut a long chain to a snapshot and restore it into a new node, to serving.

    .venv/bin/python scripts/bench_snapshot.py [--events 1000000] [--dir DIR] [--workers 2]
        [--plain] [--json]

1. Builds (or, with --dir, reuses) a chain of `--events` events held by BE alone
   (scripts/make_long_chain.py: real signatures, blocks and commit certificates). RU's data
   directory is empty: RU is the node that loses its disk.
2. `kpledger snapshot create --data BE/data`: a stopped node's snapshot, timed.
3. BE's node started on the chain; `kpledger snapshot create --config BE/node.toml`: the same
   through the running node's admin API (one LevelDB snapshot, streamed over TLS), timed.
4. `kpledger snapshot restore` of that file into RU's empty data directory (node/snapshots.py's
   restore, as the command runs it): loading the records, then the audit from genesis over
   `--workers` processes, each stage timed.
5. RU's node started on the restored directory: seconds until it answers a public lookup
   (with its proof) for a certificate of the chain. Seconds to serving = restore + start.
6. The Ed25519 verify rate of this machine (one core), before and after, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import bench_public  # noqa: E402
import make_long_chain as long_chain  # noqa: E402
from bench_observer import ed25519_verify_per_s, load_average, read_json  # noqa: E402

from node.files import load_genesis  # noqa: E402
from node.snapshots import restore  # noqa: E402

CHAIN_ID = "kp-bench-snapshot"
#: How often RU is asked for a certificate while it starts.
POLL_S = 0.1


def kpledger(*args: str) -> tuple[dict[str, Any], float]:
    """Run a kpledger command; its --json answer and its wall time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPLEDGER_")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=7200,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kpledger {' '.join(args)} failed: {done.stdout}{done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer, elapsed


def chain(directory: Path, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    return long_chain.built(
        directory,
        events=args.events,
        tls=not args.plain,
        holders=("BE",),
        chain_id=CHAIN_ID,
        log=log,
    )


def bench(directory: Path, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    manifest = chain(directory, args, log)
    events = manifest["events"]
    results: dict[str, Any] = {
        "machine": bench_public.machine(),
        "chain": {k: manifest[k] for k in ("events", "certificates", "blocks")},
        "transport": "plain HTTP" if args.plain else "TLS 1.3",
        "workers": args.workers,
        "load_average_before": load_average(),
        "ed25519_verify_per_s_before": round(ed25519_verify_per_s()),
    }
    be_data = directory / "BE" / "data"
    results["data_dir_bytes"] = sum(p.stat().st_size for p in be_data.iterdir())
    offline = directory / "offline.kpsnap"
    offline.unlink(missing_ok=True)
    log("snapshot create --data (BE stopped) ...")
    made, seconds = kpledger("snapshot", "create", "--data", str(be_data), "--out", str(offline))
    results["create_stopped"] = {
        "seconds": round(seconds, 2),
        "bytes": made["bytes"],
        "records": made["records"],
        "mb_per_s": round(made["bytes"] / seconds / 1e6, 1),
    }
    offline.unlink()

    online = directory / "online.kpsnap"
    online.unlink(missing_ok=True)
    with bench_public.one_node(directory) as (url, _, _):
        log(f"snapshot create --config (BE running at {url}) ...")
        made, seconds = kpledger(
            "snapshot", "create", "--config", str(directory / "BE" / "node.toml"),
            "--out", str(online),
        )  # fmt: skip
    results["create_running"] = {
        "seconds": round(seconds, 2),
        "bytes": made["bytes"],
        "height": made["height"],
        "mb_per_s": round(made["bytes"] / seconds / 1e6, 1),
    }

    ru_data = directory / "RU" / "data"
    shutil.rmtree(ru_data, ignore_errors=True)
    genesis = load_genesis(directory / "genesis.json")
    stages: dict[str, float] = {}
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        stages.setdefault(stage, time.perf_counter())

    log(f"snapshot restore into RU's data directory ({args.workers} workers) ...")
    restored = restore(online, ru_data, genesis, workers=args.workers, progress=progress)
    restore_s = time.perf_counter() - started
    verify_s = restore_s - (stages["verifying"] - started)
    results["restore"] = {
        "seconds": round(restore_s, 2),
        "loading_s": round(stages["verifying"] - started, 2),
        "verifying_s": round(verify_s, 2),
        "events_audited": restored.events,
        "events_per_s": round(events / restore_s),
        "audit_events_per_s": round(restored.events / verify_s),
        "load_average_after": load_average(),
    }
    number = long_chain.number(manifest["certificates"] // 2)
    log("starting RU on the restored directory ...")
    start = time.perf_counter()
    with bench_public.one_node(directory, participant="RU") as (url, _, key):
        while True:
            status, body = read_json(f"{url}/v1/public/certificates/{number}", key)
            if status == 200 and isinstance(body, dict) and body.get("proof"):
                break
            if time.perf_counter() - start > 600:
                raise SystemExit(f"RU did not serve {number} within 10 minutes: {status}")
            time.sleep(POLL_S)
        start_s = time.perf_counter() - start
    results["serving"] = {
        "node_start_to_answer_s": round(start_s, 2),
        "seconds_to_serving": round(restore_s + start_s, 2),
        "looked_up": number,
    }
    results["ed25519_verify_per_s_after"] = round(ed25519_verify_per_s())
    audit_rate = results["restore"]["audit_events_per_s"]
    ceiling = min(results["ed25519_verify_per_s_before"], results["ed25519_verify_per_s_after"])
    results["restore"]["audit_share_of_one_core_verify_rate"] = round(audit_rate / ceiling, 2)
    results["load_average_end"] = load_average()
    online.unlink()
    return results


def report(results: dict[str, Any]) -> None:
    m, c = results["machine"], results["chain"]
    r, s = results["restore"], results["serving"]
    print(
        f"\n{c['events']:,} events ({c['certificates']:,} certificates, {c['blocks']} blocks); "
        f"{m['cpu']}, {m['cores']} cores; load {results['load_average_before']} -> "
        f"{results['load_average_end']}"
    )
    for name in ("create_stopped", "create_running"):
        f = results[name]
        print(f"  {name:<16} {f['seconds']:>8} s  {f['bytes']:,} bytes  {f['mb_per_s']} MB/s")
    print(
        f"  restore          {r['seconds']:>8} s  (loading {r['loading_s']} s, audit "
        f"{r['verifying_s']} s: {r['audit_events_per_s']:,} events/s, "
        f"{r['audit_share_of_one_core_verify_rate']:.0%} of one core's Ed25519 verify rate)"
    )
    print(
        f"  seconds to serving {s['seconds_to_serving']} (the node answered "
        f"{s['node_start_to_answer_s']} s after its start)"
    )
    print(
        f"  Ed25519 verify, one core: {results['ed25519_verify_per_s_before']:,} / "
        f"{results['ed25519_verify_per_s_after']:,} per s (before / after)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the chain here")
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--plain", action="store_true", help="a plain-HTTP network (not TLS)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def log(message: str) -> None:
        if not args.json:
            print(message, flush=True)

    if args.dir is not None:
        results = bench(args.dir, args, log)
    else:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="kpledger-bench-snapshot-") as tmp:
            results = bench(Path(tmp) / "chain", args, log)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
