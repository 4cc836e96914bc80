"""Observer benchmark: a fresh observer's catch-up over a long chain, and public lookups through it.

    .venv/bin/python scripts/bench_observer.py [--events 1000000] [--dir DIR] [--concurrency 32]
        [--duration 10] [--no-nginx] [--plain] [--json]

1. Builds (or, with --dir, reuses) a chain of `--events` events held by BE alone
   (scripts/make_long_chain.py: real signatures, blocks and commit certificates).
2. Starts BE's node on it, issues a `sync` token through BE's admin API (`kpledger token add
   --scope sync`), prepares an observer with `kpledger network observer` and starts it on an
   empty data dir: the catch-up is timed from the observer's start to its /healthz showing BE's
   height (every commit certificate checked, every event's signature verified and every block
   re-executed, as `node run` does it), with both processes' CPU time.
3. Measures public lookups through the observer (as bench_public.py does on a validator): a hot
   set of 100 numbers, and numbers at random from the whole chain; then the hot set through
   Debian's nginx as a cache in front of the observer (the nginx test's configuration), counting
   the requests that reached the observer.
4. Times Ed25519 verification (ledger.keys.verify, one core) before and after, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import bench_public  # noqa: E402
import make_long_chain as long_chain  # noqa: E402
from bench_network import ed25519_verify_rate  # noqa: E402

from node.config import toml_value  # noqa: E402
from node.files import load_genesis, load_signing_key  # noqa: E402
from node.tls import ClientTrust, genesis_uses_tls  # noqa: E402
from tests.e2e.harness import Listener, reserve_ports  # noqa: E402

CHAIN_ID = "kp-bench-observer"
HOT_SET = 100
#: How often the observer's height is read while it catches up.
POLL_S = 0.25


def ed25519_verify_per_s() -> float:
    """Ed25519 verifications per CPU second of one core, now (bench_network's measurement)."""
    return ed25519_verify_rate(1.0)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def kpledger(*args: str, genesis: Path | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPLEDGER_")}
    if genesis is not None:
        env["KPLEDGER_GENESIS"] = str(genesis)
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"kpledger {' '.join(args)} failed: {done.stdout}{done.stderr}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@contextmanager
def observer_node(
    directory: Path, peer_url: str, keep: bool = False
) -> Iterator[tuple[str, int, str, float]]:
    """Authorise and start a fresh observer of BE's node (with `keep`, the one a previous run
    left in DIR/observer, on its own port); yield its URL, pid, node key (hex) and the
    monotonic time it was started at."""
    genesis = directory / "genesis.json"
    where = directory / "observer"
    config = where / "node.toml"
    if keep and config.exists():
        port = int(tomllib.loads(config.read_text())["port"])
        [listener] = [Listener.bind(port)]
        scheme = "https" if genesis_uses_tls(load_genesis(genesis)) else "http"
        prepared = {
            "address": f"{scheme}://127.0.0.1:{port}",
            "node_key": load_signing_key(where / "node.pem").public_bytes.hex(),
        }
    else:
        made = kpledger(
            "token", "add", "--config", str(directory / "BE" / "node.toml"),
            "--name", f"bench-observer-{int(time.time())}", "--scope", "sync", genesis=genesis,
        )  # fmt: skip
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir()
        (where.parent / "observer.token").write_text(made["token"] + "\n")
        [listener] = reserve_ports(1)
        prepared = kpledger(
            "network", "observer", "--genesis", str(genesis), "--dir", str(where),
            "--peers", peer_url, "--port", str(listener.port),
            "--token-file", str(where.parent / "observer.token"),
        )  # fmt: skip
        with config.open("a", encoding="utf-8") as out:
            for family in ("public", "ops"):  # all the load comes from one address
                out.write(f"{family}_rate_per_s = {toml_value(1e9)}\n{family}_burst = 1000000000\n")
            out.write('log_level = "warning"\n')
    started = time.monotonic()
    with bench_public.node_process(config, listener, directory / "observer.log") as process:
        yield prepared["address"], process.pid, prepared["node_key"], started


def read_json(url: str, node_key: str) -> tuple[int, Any]:
    import urllib.error

    trust = ClientTrust(keys=frozenset({bytes.fromhex(node_key)})) if node_key else ClientTrust()
    try:
        with trust.opener(url).open(url, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError:
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def height_of(url: str, node_key: str) -> int:
    status, body = read_json(url + "/healthz", node_key)
    return int(body["height"]) if status in (200, 503) and isinstance(body, dict) else -1


def public_requests(url: str, node_key: str) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    trust = ClientTrust(keys=frozenset({bytes.fromhex(node_key)})) if node_key else ClientTrust()
    with trust.opener(url).open(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "kpledger_http_requests":
            total += sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels["family"] == "public"
            )
    return int(total)


def catch_up(url: str, pid: int, node_key: str, started: float, target: int) -> dict[str, Any]:
    """Wait for the observer to reach `target`; the time from its start, sampled every POLL_S."""
    samples: list[tuple[float, int]] = []
    cpu_at_start = 0.0
    while True:
        height = height_of(url, node_key)
        now = time.monotonic() - started
        if height >= 0:
            samples.append((round(now, 2), height))
        if height >= target:
            break
        if now > 3600:
            raise SystemExit(f"the observer did not catch up within an hour: at {height}")
        time.sleep(POLL_S)
    cpu = bench_public.cpu_seconds(pid) - cpu_at_start
    first = next((t for t, h in samples if h > 0), samples[-1][0])
    return {
        "seconds_to_head": samples[-1][0],
        "seconds_first_block": first,
        "observer_cpu_s": round(cpu, 1),
        "samples": [*samples[:: max(1, len(samples) // 20)], samples[-1]],
    }


@contextmanager
def nginx_cache(directory: Path, upstream: str) -> Iterator[str]:
    """Debian's nginx with the cache test's configuration in front of `upstream` (1024 worker
    connections instead of its 64)."""
    import getpass

    from tests.node.http.test_nginx_cache_e2e import CONFIG

    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        raise SystemExit("nginx is not installed (Debian: apt-get install nginx-light)")
    where = directory / "nginx"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    [listener] = reserve_ports(1)
    port = listener.port
    listener.close()
    config = CONFIG.format(user=user, dir=where, port=port, node=upstream)
    # The test's 64 connections are two per client here (the client's, and the upstream's).
    config = config.replace("worker_connections 64;", "worker_connections 1024;")
    (where / "nginx.conf").write_text(config, encoding="utf-8")
    process = subprocess.Popen(
        [binary, "-p", str(where), "-c", str(where / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"nginx did not start: {where / 'error.log'}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench(directory: Path, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    tls = not args.plain
    manifest = long_chain.built(
        directory, events=args.events, tls=tls, holders=("BE",), chain_id=CHAIN_ID, log=log
    )
    count = manifest["certificates"]
    results: dict[str, Any] = {
        "machine": bench_public.machine(),
        "chain": {k: manifest[k] for k in ("events", "certificates", "blocks")},
        "transport": "TLS 1.3" if tls else "plain HTTP",
        "load_average_before": load_average(),
        "ed25519_verify_per_s_before": round(ed25519_verify_per_s()),
    }
    number = long_chain.number
    hot = [
        f"/v1/public/certificates/{number(i)}" for i in range(0, count, max(1, count // HOT_SET))
    ]
    warm, fresh = bench_public.random_paths(count)
    # BE listens at its genesis address: the observer pins the register's key for that address.
    address = next(v.address for v in load_genesis(directory / "genesis.json").validators)
    port = urllib.parse.urlsplit(address).port
    with bench_public.one_node(directory, port) as (be_url, be_pid, be_key):
        target = height_of(be_url, be_key)
        log(f"BE serves {target} blocks at {be_url}; starting the observer ...")
        be_cpu = bench_public.cpu_seconds(be_pid)
        with observer_node(directory, be_url, args.keep_observer) as (url, pid, key, started):
            caught = catch_up(url, pid, key, started, target)
            caught["kept"] = bool(args.keep_observer and caught["samples"][0][1] >= target)
            caught["peer_cpu_s"] = round(bench_public.cpu_seconds(be_pid) - be_cpu, 1)
            caught["events_per_s"] = (
                None if caught["kept"] else round(manifest["events"] / caught["seconds_to_head"])
            )
            caught["load_average_after"] = load_average()
            results["catch_up"] = caught
            log(
                f"at the head after {caught['seconds_to_head']} s: {caught['events_per_s']} events/s"
            )
            results["ed25519_verify_per_s_after"] = round(ed25519_verify_per_s())
            # Warm up, then measure, as bench_public does.
            bench_public.measure(url, hot, 4, 1.0, 1, pid, key)
            bench_public.measure(url, warm, 8, 3.0, 1, pid, key)
            for name, paths in (("hot_set", hot), ("random", fresh)):
                log(f"measuring {name} through the observer ...")
                results[f"observer_{name}"] = bench_public.measure(
                    url, paths, args.concurrency, args.duration, args.client_procs, pid, key
                )
            # The same loads on BE, a validator over the same chain, in the same run (paired):
            # what the observer costs against what any node costs.
            bench_public.measure(be_url, warm, 8, 3.0, 1, be_pid, be_key)
            for name, paths in (("hot_set", hot), ("random", fresh)):
                log(f"measuring {name} on BE (a validator) ...")
                results[f"validator_{name}"] = bench_public.measure(
                    be_url,
                    paths,
                    args.concurrency,
                    args.duration,
                    args.client_procs,
                    be_pid,
                    be_key,
                )
            if not args.no_nginx:
                with nginx_cache(directory, url) as cache:
                    before = public_requests(url, key)
                    log("measuring the hot set through nginx ...")
                    measured = bench_public.measure(
                        cache, hot, args.concurrency, args.duration, args.client_procs, pid
                    )
                    measured["reached_observer"] = public_requests(url, key) - before
                    results["nginx_hot_set"] = measured
    results["load_average_end"] = load_average()
    results["settings"] = {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "client_procs": args.client_procs,
    }
    return results


def report(results: dict[str, Any]) -> None:
    m, chain, caught = results["machine"], results["chain"], results["catch_up"]
    print(
        f"\n{chain['events']:,} events ({chain['certificates']:,} certificates, {chain['blocks']} "
        f"blocks) over {results['transport']}; {m['cpu']}, {m['cores']} cores; load "
        f"{results['load_average_before']} -> {results['load_average_end']}"
    )
    print(
        f"Ed25519 verify (one core): {results['ed25519_verify_per_s_before']:,}/s before, "
        f"{results['ed25519_verify_per_s_after']:,}/s after the catch-up"
    )
    if caught["kept"]:
        print("catch-up: not timed (--keep-observer: the observer was at the head already)")
    else:
        print(
            f"catch-up: {caught['seconds_to_head']} s to the head ({caught['events_per_s']:,} "
            f"events/s), first block at {caught['seconds_first_block']} s; observer CPU "
            f"{caught['observer_cpu_s']} s, BE CPU {caught['peer_cpu_s']} s"
        )
    names = ("observer_hot_set", "observer_random", "validator_hot_set", "validator_random")
    for name in (*names, "nginx_hot_set"):
        if name in results:
            r = results[name]
            extra = (
                f", reached the observer {r['reached_observer']}" if "reached_observer" in r else ""
            )
            print(
                f"{name:<18} {r.get('requests_per_s', 0):>7,}/s  p50 {r.get('p50_ms')} ms  "
                f"p99 {r.get('p99_ms')} ms  node CPU/request "
                f"{r.get('node_cpu_ms_per_request')} ms{extra}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--client-procs", type=int, default=1, help="load-generating processes")
    parser.add_argument("--dir", type=Path, default=None, help="build here (reused if built)")
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx measurement")
    parser.add_argument(
        "--keep-observer",
        action="store_true",
        help="start the observer a previous run left in DIR (no catch-up to time): lookups only",
    )
    parser.add_argument("--plain", action="store_true", help="a plain-HTTP network, not TLS")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    log = (lambda _m: None) if args.json else print
    temporary = args.dir is None
    directory = Path(tempfile.mkdtemp(prefix="kp-bench-observer-")) if temporary else args.dir
    try:
        results = bench(directory, args, log)
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            report(results)
        return 0
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
