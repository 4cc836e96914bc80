"""Public verification benchmark: lookups with proof per second, and p99, on a chain of 100,000+ certificates.

    .venv/bin/python scripts/bench_public.py [--certificates 100000] [--concurrency 32]
        [--duration 10] [--dir DIR] [--json]

1. Builds a 4-participant network and writes its chain offline, straight into the data
   directories (scripts/make_long_chain.py: the real ledger code, real signatures and commit
   certificates; much faster than consensus). With --dir, an existing build is reused.
2. Starts ONE node on it (its public rate limit raised: every request comes from 127.0.0.1).
3. Measures, with `--concurrency` aiohttp clients over keep-alive connections, in
   `--client-procs` processes: GET /healthz (the ceiling: the same HTTP stack, no work),
   GET /v1/public/certificates/{n} over a hot set of 100 numbers (answers cached by the node),
   and over numbers drawn at random from the whole chain (each answer built, proof and all:
   each number is asked once, none that the warm-up asked, and the load ends early when they
   run out, so that no answer comes from the node's cache of answers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from node.config import toml_value  # noqa: E402
from node.files import load_genesis, load_signing_key  # noqa: E402
from node.runner import LISTEN_FD_ENV  # noqa: E402
from node.tls import NODE_SNI, genesis_uses_tls, peer_pin  # noqa: E402
from tests.e2e.harness import Listener, reserve_ports  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import make_long_chain as long_chain  # noqa: E402

CHAIN_ID = "kp-bench-public"
HOT_SET = 100


# -- running one node ---------------------------------------------------------------------------
@contextmanager
def one_node(
    directory: Path, port: int | None = None, *, participant: str = "BE"
) -> Iterator[tuple[str, int, str]]:
    """Start BE's node, or `participant`'s (rate limits raised for the benchmark); yield its URL,
    pid and node key (hex, which the clients pin when the network speaks TLS; "" for a plain
    one). On `port` if given (its genesis address, for a client that pins the register), else
    on any free one."""
    secure = genesis_uses_tls(load_genesis(directory / "genesis.json"))
    home = directory / participant
    node_key = load_signing_key(home / "node.pem").public_bytes.hex() if secure else ""
    config = home / "node.toml"
    limits = tuple(
        f"{family}_{kind}" for family in ("public", "ops") for kind in ("rate_per_s", "burst")
    )
    lines = [
        line
        for line in config.read_text().splitlines()
        if not line.startswith((*limits, "port", "log_level"))
    ]
    # The port is held from here on and handed to the node: nothing can take it in between.
    [listener] = reserve_ports(1) if port is None else [Listener.bind(port)]
    port = listener.port
    for family in ("public", "ops"):  # all the load comes from one address
        lines += [f"{family}_rate_per_s = {toml_value(1e9)}", f"{family}_burst = 1000000000"]
    lines += [f"port = {port}", 'log_level = "warning"']
    config.write_text("\n".join(lines) + "\n")
    url = f"{'https' if secure else 'http'}://127.0.0.1:{port}"
    with node_process(config, listener, directory / f"{participant}.log") as process:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the node exited; see {directory / f'{participant}.log'}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the node did not come up") from None
                time.sleep(0.1)
        yield url, process.pid, node_key


@contextmanager
def node_process(config: Path, listener: Listener, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kpledger node run --config CONFIG` on the port `listener` holds, its output appended to
    `log`; stopped (SIGTERM, then SIGKILL after 20 s) and the port let go at the end."""
    log_file = open(log, "ab")  # noqa: SIM115 - the child's
    process = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "node", "run", "--config", str(config)],
        stdout=log_file,
        stderr=log_file,
        cwd=REPO,
        start_new_session=True,
        env={**os.environ, LISTEN_FD_ENV: str(listener.fileno)},
        pass_fds=(listener.fileno,),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log_file.close()
        listener.close()


# -- measuring ----------------------------------------------------------------------------------
#: The measured node runs alone (its peers are not started), so its /healthz truthfully answers
#: 503 too_few_peers: still the whole HTTP stack and no work, which is what that load measures.
ANSWERED = {"/healthz": (200, 503)}
#: A list of more paths than this is walked, each once (the random numbers); a shorter one is
#: drawn from at random (the hot set).
WALKED = 1_000


async def _load(
    url: str, paths: list[str], concurrency: int, duration: float, seed: int, node_key: str
) -> tuple[int, int, list[float], float]:
    """`concurrency` clients GET `paths` for `duration` s: (ok, failed, latencies, seconds).

    A long list (more than WALKED paths) is walked in order, each number asked once, and the
    run ends early when the list does, so that no answer in it comes from the node's cache of
    answers; a short one (the hot set, /healthz) is drawn from at random for the whole time.
    """
    rng = random.Random(seed)
    walk = iter(paths) if len(paths) > WALKED else None
    latencies: list[float] = []
    failed = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    # Over TLS the clients check the node key, as peers and the CLI do (one handshake per
    # kept-alive connection).
    pinned: dict[str, Any] = (
        {"ssl": peer_pin(bytes.fromhex(node_key)), "server_hostname": NODE_SNI} if node_key else {}
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        stop = started + duration

        async def client() -> None:
            nonlocal failed
            while time.perf_counter() < stop:
                if walk is not None:
                    path = next(walk, None)
                    if path is None:
                        return  # every number asked once: a repeat would be a cached answer
                else:
                    path = paths[rng.randrange(len(paths))]
                t0 = time.perf_counter()
                async with session.get(url + path, **pinned) as response:
                    await response.read()
                    if response.status not in ANSWERED.get(path, (200,)):
                        failed += 1
                        continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return len(latencies), failed, latencies, seconds


def _load_process(
    args: tuple[str, list[str], int, float, int, str],
) -> tuple[int, int, list[float], float]:
    return asyncio.run(_load(*args))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str,
    paths: list[str],
    concurrency: int,
    duration: float,
    procs: int,
    pid: int,
    node_key: str = "",
) -> dict[str, Any]:
    per = max(1, concurrency // procs)
    jobs = [(url, paths[seed::procs], per, duration, seed, node_key) for seed in range(procs)]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        cpu_before = cpu_seconds(pid)
        results = pool.map(_load_process, jobs)
        cpu = cpu_seconds(pid) - cpu_before
    latencies = sorted(x for _, _, lat, _ in results for x in lat)
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    if not latencies:
        return {"ok": 0, "failed": failed}
    # A walked list may end before `duration`: the rate is over the time the load ran.
    seconds = max(r[3] for r in results)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "requests_per_s": round(ok / seconds),
        "seconds": round(seconds, 2),
        # The node's own CPU per answer: what it costs, whatever else the machine is doing.
        "node_cpu_ms_per_request": round(cpu * 1000 / max(1, ok + failed), 3),
        "node_cpu_share": round(cpu / seconds, 2),
        "ok": ok,
        "failed": failed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--client-procs", type=int, default=1, help="load-generating processes")
    parser.add_argument("--dir", type=Path, default=None, help="build here (reused if built)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plain", action="store_true", help="a plain-HTTP network, not TLS")
    parser.add_argument(
        "--compare-plain",
        action="store_true",
        help="measure over TLS, then the same over plain HTTP (chains in DIR/tls and DIR/plain)",
    )
    args = parser.parse_args(argv)
    log = (lambda _m: None) if args.json else print
    temporary = args.dir is None
    directory = Path(tempfile.mkdtemp(prefix="kp-bench-public-")) if temporary else args.dir
    try:
        if not args.compare_plain:
            results = bench(directory, args, not args.plain, log)
            if args.json:
                print(json.dumps(results, indent=2))
            else:
                report(results, args)
            return 0
        both = {
            "tls": bench(directory / "tls", args, True, log),
            "plain": bench(directory / "plain", args, False, log),
        }
        both["tls_cost"] = {
            name: {
                "requests_per_s": [
                    both["tls"][name].get("requests_per_s", 0),
                    both["plain"][name].get("requests_per_s", 0),
                ],
                "throughput_loss_percent": round(
                    100
                    * (
                        1
                        - both["tls"][name].get("requests_per_s", 0)
                        / max(1, both["plain"][name].get("requests_per_s", 0))
                    ),
                    1,
                ),
                "node_cpu_ms_per_request": [
                    both["tls"][name].get("node_cpu_ms_per_request"),
                    both["plain"][name].get("node_cpu_ms_per_request"),
                ],
            }
            for name in ("healthz", "hot_set", "random")
        }
        if args.json:
            print(json.dumps(both, indent=2))
        else:
            report(both["tls"], args)
            report(both["plain"], args)
            print("\nTLS against plain, same run:", json.dumps(both["tls_cost"]))
        return 0
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


def random_paths(count: int) -> tuple[list[str], list[str]]:
    """Every certificate's lookup once, in random order, split in two: a quarter to warm the
    node up with, the rest for the measured load, so that no number the load asks for was
    answered (and its answer cached) before."""
    paths = [f"/v1/public/certificates/{long_chain.number(i)}" for i in range(count)]
    random.Random(2026).shuffle(paths)
    return paths[: count // 4], paths[count // 4 :]


def bench(directory: Path, args: argparse.Namespace, tls: bool, log: Any) -> dict[str, Any]:
    """Build (or reuse) the chain in `directory` and measure the three loads on one node."""
    count = long_chain.built(
        directory, certificates=args.certificates, tls=tls, chain_id=CHAIN_ID, log=log
    )["certificates"]
    number = long_chain.number
    hot = [f"/v1/public/certificates/{number(i)}" for i in range(0, count, count // HOT_SET)]
    warm, fresh = random_paths(count)
    results: dict[str, Any] = {
        "machine": machine(),
        "certificates": count,
        "transport": "TLS 1.3" if tls else "plain HTTP",
    }
    with one_node(directory) as (url, pid, node_key):
        # Warm up (the hot set's answers, every block's Merkle tree), then measure each load.
        measure(url, hot, 4, 1.0, 1, pid, node_key)
        measure(url, warm, 8, 3.0, 1, pid, node_key)
        for name, paths in (
            ("healthz", ["/healthz"]),
            ("hot_set", hot),
            ("random", fresh),
        ):
            log(f"measuring {name} ({results['transport']}) ...")
            results[name] = measure(
                url, paths, args.concurrency, args.duration, args.client_procs, pid, node_key
            )
    results["settings"] = {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "client_procs": args.client_procs,
    }
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    m = results["machine"]
    count = results["certificates"]
    print(
        f"\n{count:,} certificates over {results['transport']}; {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}"
    )
    print(f"{args.concurrency} concurrent clients in {args.client_procs} process(es)")
    print(
        f"{'load':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'failed':>7} {'node CPU ms/req':>16} {'node CPU':>9}"
    )
    for name in ("healthz", "hot_set", "random"):
        r = results[name]
        print(
            f"{name:<10} {r.get('requests_per_s', 0):>8} {r.get('p50_ms', '-'):>8} "
            f"{r.get('p99_ms', '-'):>8} {r.get('max_ms', '-'):>8} {r['failed']:>7} "
            f"{r.get('node_cpu_ms_per_request', '-'):>16} "
            f"{r.get('node_cpu_share', 0):>8.0%}"
        )
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    raise SystemExit(main())
