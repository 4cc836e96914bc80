"""`kpledger audit --data` timed as an operator runs it: wall time, and the CPU of every process.

    .venv/bin/python scripts/bench_audit_cli.py --data DIR/BE/data [--workers 2] [--code DIR] [--json]

The audit runs as a child (`python -m node.cli audit --data DIR --workers N --json`), from this
checkout or from `--code DIR` (another checkout, for pairs with older code, with this venv's
python). Its processes (the audit's own, the signature workers, the state tree's) are read from
/proc every quarter of a second: the CPU figures are each process's last reading, so a process
that ends between two readings loses up to that much. The Ed25519 verify rate (per CPU second,
one core) is measured just before and just after, and the load average at the start is given:
on this 2-core machine the figures mean little without them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_network import cpu_seconds, ed25519_verify_rate

REPO = Path(__file__).resolve().parents[1]
#: Seconds between two readings of the processes' CPU.
POLL_S = 0.25


def _children() -> dict[int, list[int]]:
    """Each process's children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone, or not a process we can read
        children.setdefault(parent, []).append(int(entry.name))
    return children


def _tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    code = Path(args.code).resolve() if args.code else REPO
    load = os.getloadavg()[0]
    before = ed25519_verify_rate(2.0)
    command = [sys.executable, "-m", "node.cli", "audit", "--data", str(args.data)]
    command += ["--workers", str(args.workers), "--json"]
    environment = dict(os.environ, PYTHONPATH=str(code))
    started = time.perf_counter()
    audit = subprocess.Popen(
        command, cwd=code, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    cpu: dict[int, float] = {}
    while audit.poll() is None:
        for pid in _tree(audit.pid):
            seconds = cpu_seconds(pid)
            if seconds:
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    out, err = audit.communicate()
    after = ed25519_verify_rate(2.0)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        raise SystemExit(f"the audit gave no report:\n{err.decode()[-2000:]}") from None
    events = int(report.get("events_checked", 0))
    others = sorted((seconds for pid, seconds in cpu.items() if pid != audit.pid), reverse=True)
    return {
        "code": str(code),
        "data": str(args.data),
        "workers": args.workers,
        "load_average_at_start": round(load, 2),
        "ok": report.get("ok"),
        "fault": report.get("fault"),
        "events": events,
        "wall_s": round(wall, 1),
        "events_per_s": round(events / wall) if wall > 0 else None,
        "cpu_s_all_processes": round(sum(cpu.values()), 1),
        "cpu_s_audit_process": round(cpu.get(audit.pid, 0.0), 1),
        "cpu_s_other_processes": [round(seconds, 1) for seconds in others if seconds >= 0.05],
        "ed25519_verify_per_cpu_s_before_after": [round(before), round(after)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a stopped node's data directory")
    parser.add_argument("--workers", type=int, default=2, help="kpledger audit --workers")
    parser.add_argument("--code", help="run the audit from this checkout (default: this one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be positive")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if result["ok"] else 1
    print(
        f"{result['events']:,} events in {result['wall_s']} s ({result['events_per_s']:,}/s), "
        f"ok={result['ok']}, load average {result['load_average_at_start']} at the start"
    )
    print(
        f"  CPU {result['cpu_s_all_processes']} s in all: the audit's process "
        f"{result['cpu_s_audit_process']} s, the others {result['cpu_s_other_processes']}"
    )
    print(
        f"  Ed25519 per CPU second, before / after: {result['ed25519_verify_per_cpu_s_before_after']}"
    )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
