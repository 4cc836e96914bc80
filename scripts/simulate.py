"""Run the deterministic consensus simulation over many seeds, or replay one seed verbosely."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Importable from anywhere: the repository root holds the ledger package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.simulation import (
    SimulationConfig,
    SimulationFailure,
    SimulationReport,
    governance_nodes_for_seed,
    nodes_for_seed,
    run_simulation,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1000, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument(
        "--nodes",
        type=int,
        default=None,
        help="validators per run (default: 4, or 7 every 4th seed; 4 to 7 under --governance)",
    )
    parser.add_argument("--seed", type=int, default=None, help="replay this one seed verbosely")
    parser.add_argument("--target-height", type=int, default=4)
    parser.add_argument(
        "--profile",
        choices=["mixed", "amnesia"],
        default="mixed",
        help="mixed: faults drawn per seed; amnesia: the harshest plan, with an amnesia attacker",
    )
    parser.add_argument("--no-faults", action="store_true", help="a perfect network, for contrast")
    parser.add_argument(
        "--down",
        type=int,
        action="append",
        default=[],
        help="a validator that never starts (repeatable); with --no-faults, what it costs",
    )
    parser.add_argument(
        "--governance",
        action="store_true",
        help="the real ledger under the cores, and governance changing the validator set: a "
        "validator added (with readiness), one removed, a participant suspended, evidence",
    )
    return parser.parse_args(argv)


def _config(args: argparse.Namespace, seed: int) -> SimulationConfig:
    default = governance_nodes_for_seed if args.governance else nodes_for_seed
    nodes = args.nodes if args.nodes is not None else default(seed)
    return SimulationConfig(
        seed=seed,
        nodes=nodes,
        target_height=args.target_height,
        faults=not args.no_faults,
        profile=args.profile,
        down=tuple(args.down),
        governance=args.governance,
    )


def _replay(args: argparse.Namespace, seed: int) -> int:
    try:
        report = run_simulation(_config(args, seed), log=print)
    except SimulationFailure as exc:
        print(f"FAILED: {exc}")
        return 1
    print(report)
    return 0


def _governance_summary(reports: list[SimulationReport]) -> str:
    changes = [change for r in reports for change, _ in r.governance_done]
    if not changes:
        return ""
    kinds = sorted({change.split()[0] for change in changes})
    counts = ", ".join(f"{sum(c.startswith(k) for c in changes)} {k}" for k in kinds)
    return (
        f"  governance changes in force: {counts}; "
        f"evidence events on the chain {sum(r.evidence_on_chain for r in reports)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.seed is not None:
        return _replay(args, args.seed)
    began = time.monotonic()
    reports: list[SimulationReport] = []
    failures: list[str] = []
    seeds = range(args.start, args.start + args.seeds)
    for count, seed in enumerate(seeds, 1):
        try:
            reports.append(run_simulation(_config(args, seed)))
        except SimulationFailure as exc:
            failures.append(str(exc))
            print(f"FAIL {exc}", flush=True)
        if count % 500 == 0 or count == len(seeds):
            print(
                f"{count}/{len(seeds)} seeds, {len(failures)} failed, "
                f"{time.monotonic() - began:.1f} s",
                flush=True,
            )
    elapsed = time.monotonic() - began
    if reports:
        byzantine = sum(1 for r in reports if r.byzantine is not None)
        print(
            f"passed {len(reports)} of {len(seeds)} seeds in {elapsed:.1f} s "
            f"({elapsed / len(seeds) * 1000:.0f} ms a seed)\n"
            f"  nodes: {sum(1 for r in reports if r.nodes == 4)} runs of 4, "
            f"{sum(1 for r in reports if r.nodes == 7)} of 7, "
            f"{sum(1 for r in reports if r.nodes not in (4, 7))} other; "
            f"{byzantine} with a byzantine validator\n"
            f"  heights decided (lowest honest node): {sum(r.height for r in reports)}, "
            f"highest round of a decision: {max(r.max_round for r in reports)}\n"
            f"  messages delivered {sum(r.delivered for r in reports)}, "
            f"dropped {sum(r.dropped for r in reports)}, "
            f"duplicated {sum(r.duplicated for r in reports)}; "
            f"crashes {sum(r.crashes for r in reports)}; "
            f"evidence reports {sum(r.evidence for r in reports)}\n"
            f"  validator set changes "
            f"{sum((r.set_change_height is not None) + r.set_changes for r in reports)}; "
            f"proposals delivered without their block "
            f"{sum(r.proposals_without_block for r in reports)}, "
            f"blocks late or fetched {sum(r.blocks_fetched for r in reports)}\n"
            + _governance_summary(reports)
            + f"  longest time from GST to the target height: "
            f"{max(r.finished_ms - r.gst_ms for r in reports)} ms (simulated)"
        )
    if failures:
        print(f"{len(failures)} FAILED seeds:")
        for failure in failures:
            print(f"  {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
