"""Network benchmark: four real nodes on 127.0.0.1 under open-loop and saturating event load.

    .venv/bin/python scripts/bench_network.py [--rate 200] [--duration 30] [--saturate] [--json]

Starts a fresh 4-node network (BE, AE, IN, RU) in a temporary directory and signs every event
first (issuances and import confirmations between the four; signing is not measured). Then:

- warm-up: issuances whose confirmations the measured runs submit;
- open loop: events at a fixed rate for `--duration` seconds, spread over the four nodes
  (msgpack bodies), whatever the answers' latency;
- saturation (`--saturate`): as many concurrent submitters as it takes to keep about
  `--backlog` events waiting in the mempools for `--saturate-duration` seconds (first a short
  probe, to know how many events to sign).

Figures, per run: finalised events/s over the window (the events of the blocks that became final
on the first node inside it, from the final chain), commit latency p50/p99 (submission to the
moment the node it was submitted to logged the event's block final), rounds past 0, node CPU
(per node, and CPU ms of the four together per finalised event: the figure least disturbed by
whatever else the machine runs), and the Ed25519 verify rate of this machine, measured in the
same run (the ceiling: every node verifies every event once).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger.block import Block  # noqa: E402
from ledger.encoding import decode  # noqa: E402
from ledger.genesis import Parameters  # noqa: E402
from ledger.hashing import TAG_EVENT  # noqa: E402
from ledger.keys import SigningKey, verify  # noqa: E402
from node.files import load_signing_key  # noqa: E402
from node.peers import MSGPACK, sign_request  # noqa: E402
from scripts.bench_events import (  # noqa: E402
    Supply,
    event_id,
)
from tests.e2e.harness import Network, tls_kwargs, urlopen  # noqa: E402

#: How often the nodes' /healthz is read (mempool level for the saturating driver, rounds).
POLL_INTERVAL_S = 0.05
TARGET_THROUGHPUT = 2000.0
TARGET_SUSTAINED_S = 60.0
TARGET_P50_MS = 250.0
TARGET_P99_MS = 1000.0

Drive = Callable[[aiohttp.ClientSession, "Poller"], Awaitable[list["Submission"]]]


# -- measuring ------------------------------------------------------------------------------------
def ed25519_verify_rate(seconds: float = 2.0) -> float:
    """Ed25519 verifications per CPU second of one core (ledger.keys.verify), measured now.

    CPU time, not wall time: the figures it is set against (a node's CPU per event) are CPU
    time too, and on a loaded machine a wall-clock rate would count the time this process
    waited for a core as the cost of verifying, and so make the nodes look cheaper than they are.
    """
    key = SigningKey.generate()
    payload = os.urandom(400)
    signature = key.sign(TAG_EVENT, payload)
    public = key.public_bytes
    count = 0
    start = time.process_time()
    while True:
        for _ in range(200):
            if not verify(public, TAG_EVENT, payload, signature):
                raise SystemExit("a benchmark signature does not verify")
        count += 200
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return count / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


#: node.toml values for the benchmark's nodes: every "block final" line must be written, and the
#: repeat filter (log_repeat_burst, 20 lines of a kind a minute by default) would keep only the
#: first of each minute's blocks.
EVERY_BLOCK_LOGGED: dict[str, Any] = {"log_repeat_burst": 1_000_000_000}


def log_every_block(net: Network) -> None:
    """Append EVERY_BLOCK_LOGGED to every node's node.toml (before the nodes start)."""
    for n in net.nodes:
        with n.config.open("a", encoding="utf-8") as config:
            config.writelines(f"{key} = {value!r}\n" for key, value in EVERY_BLOCK_LOGGED.items())


def commit_times(log: Path) -> dict[int, float]:
    """When the node logged each block final (wall clock, seconds). A node that suppressed some
    of those lines cannot be measured: that is an error, not a figure."""
    out: dict[int, float] = {}
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        if '"block final"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("similar_to") == "block final":
            raise RuntimeError(
                f"{log} suppressed {entry.get('suppressed')} 'block final' lines: run the nodes "
                f"with {EVERY_BLOCK_LOGGED}"
            )
        stamp = datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        out.setdefault(int(entry["height"]), stamp.timestamp())
    return out


@dataclass
class Submission:
    event_id: bytes
    node: int
    sent: float  # wall clock, seconds
    status: int = 0


@dataclass
class Poller:
    """Each node's /healthz, every POLL_INTERVAL_S: mempool level, height and round."""

    urls: list[str]
    mempool: list[int] = field(default_factory=list)
    height: list[int] = field(default_factory=list)
    #: Highest round seen while working on each height (above 0: something timed out).
    rounds: dict[int, int] = field(default_factory=dict)
    stop: bool = False

    async def run(self, session: aiohttp.ClientSession) -> None:
        self.mempool = [0] * len(self.urls)
        self.height = [0] * len(self.urls)
        while not self.stop:
            answers = await asyncio.gather(
                *(self._health(session, url) for url in self.urls), return_exceptions=True
            )
            for i, health in enumerate(answers):
                if isinstance(health, dict):
                    self.mempool[i] = int(health["mempool"])
                    self.height[i] = int(health["height"])
                    working = self.height[i] + 1
                    self.rounds[working] = max(self.rounds.get(working, 0), int(health["round"]))
            await asyncio.sleep(POLL_INTERVAL_S)

    @staticmethod
    async def _health(session: aiohttp.ClientSession, url: str) -> Any:
        async with session.get(url + "/healthz", **tls_kwargs(url)) as response:
            return await response.json()


async def post(session: aiohttp.ClientSession, url: str, body: bytes, record: Submission) -> None:
    try:
        async with session.post(
            url + "/v1/events", data=body, headers={"Content-Type": MSGPACK}, **tls_kwargs(url)
        ) as response:
            await response.read()
            record.status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        record.status = -1


def envelope(body: bytes) -> dict[str, str]:
    """The JSON envelope of a signed event's encoding: 0x92, the unsigned event, then bin8(64)
    and the signature (as Event.signature_valid slices it)."""
    return {
        "event": base64.b64encode(body[1:-66]).decode("ascii"),
        "signature": base64.b64encode(body[-64:]).decode("ascii"),
    }


async def post_batch(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], records: list[Submission]
) -> None:
    """One POST /v1/events of {"events": [...]} (SPEC 10): each record gets its own event's
    result (202 for accepted, else the refusal's HTTP status)."""
    data = json.dumps({"events": [envelope(b) for b in bodies]}).encode()
    try:
        async with session.post(
            url + "/v1/events",
            data=data,
            headers={"Content-Type": "application/json"},
            **tls_kwargs(url),
        ) as response:
            answer = await response.json() if response.status == 200 else None
            if answer is None:
                for record in records:
                    record.status = response.status
                return
            for record, result in zip(records, answer["results"], strict=True):
                record.status = 202 if "error" not in result else int(result["http_status"])
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError):
        for record in records:
            record.status = -1


async def open_loop(
    session: aiohttp.ClientSession, urls: list[str], events: list[bytes], rate: float
) -> list[Submission]:
    """Submit event i at start + i/rate, to node i mod 4, without waiting for answers."""
    records: list[Submission] = []
    tasks = set()
    start = time.monotonic()
    for i, body in enumerate(events):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        record = Submission(event_id(body), i % len(urls), time.time())
        records.append(record)
        task = asyncio.create_task(post(session, urls[record.node], body, record))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    return records


async def saturating_loop(
    session: aiohttp.ClientSession,
    poller: Poller,
    events: Iterator[bytes],
    seconds: float,
    per_node: int,
    backlog: int,
    batch: int = 1,
) -> list[Submission]:
    """`per_node` submitters per node, each sending its next event as soon as the last is
    answered while the fullest mempool holds fewer than `backlog` events, for `seconds`.
    With `batch` above 1, each request is a batch of that many events (SPEC 10), not one."""
    records: list[Submission] = []
    deadline = time.monotonic() + seconds
    urls = poller.urls

    async def submitter(node: int) -> None:
        while time.monotonic() < deadline:
            if max(poller.mempool, default=0) >= backlog:
                await asyncio.sleep(0.01)
                continue
            bodies = list(itertools.islice(events, batch))
            if not bodies:
                return
            sent = time.time()
            batch_records = [Submission(event_id(body), node, sent) for body in bodies]
            records.extend(batch_records)
            if batch == 1:
                await post(session, urls[node], bodies[0], batch_records[0])
            else:
                await post_batch(session, urls[node], bodies, batch_records)
            if any(r.status == 503 for r in batch_records):
                await asyncio.sleep(0.05)  # the mempool is full: back off a moment

    await asyncio.gather(*(submitter(n) for n in range(len(urls)) for _ in range(per_node)))
    return records


def fetch_blocks(net: Network, first: int, last: int) -> dict[int, list[bytes]]:
    """Event ids of each final block in [first, last] on the first node (signed peer route)."""
    node = net.nodes[0]
    key = load_signing_key(net.directory / node.participant / "node.pem")
    out: dict[int, list[bytes]] = {}
    height = first
    while height <= last:
        path = f"/peer/blocks?from={height}&limit=256"
        now = int(time.time() * 1000)
        headers = sign_request(key, net.genesis.chain_id, "GET", path, b"", now, key.public_bytes)
        with urlopen(urllib.request.Request(node.url + path, headers=headers), 60) as response:
            items = decode(response.read())
        if not items:
            break
        for block_bytes, _cert in items:
            block = Block.decode(block_bytes)
            out[block.header.height] = [e.event_id for e in block.events]
        height = max(out) + 1
    return out


@dataclass
class RunResult:
    name: str
    offered_per_s: float | None
    seconds: float
    window_s: float
    submitted: int
    accepted: int
    refused: dict[str, int]
    finalised: int
    finalised_per_s: float
    blocks: int
    events_per_block: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    not_final: int
    heights_past_round_0: int
    max_round: int
    node_cpu_percent: list[float]
    #: CPU time of the four nodes together per event finalised while they ran.
    node_cpu_ms_per_event: float | None
    bench_cpu_percent: float
    supply_ran_out: bool = False


async def measure(
    net: Network,
    supply: Supply,
    name: str,
    drive: Drive,
    *,
    offered: float | None,
    warmup_s: float,
) -> RunResult:
    urls = [n.url for n in net.nodes]
    pids = [n.process.pid for n in net.nodes if n.process is not None]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        poller = Poller(urls)
        polling = asyncio.create_task(poller.run(session))
        await asyncio.sleep(0.3)
        base_height = poller.height[0]
        cpu_before = [cpu_seconds(p) for p in pids]
        own_before = time.process_time()
        started, started_mono = time.time(), time.monotonic()
        records = await drive(session, poller)
        ended, elapsed = time.time(), time.monotonic() - started_mono
        cpu_after = [cpu_seconds(p) for p in pids]
        own_after = time.process_time()
        accepted = [r for r in records if r.status == 202]
        supply.settle(records)
        wanted = {r.event_id for r in accepted}
        # Wait for what was accepted to become final (or not), for the latency figures.
        final_at: dict[bytes, int] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            blocks = await asyncio.to_thread(fetch_blocks, net, base_height + 1, poller.height[0])
            final_at = {eid: h for h, ids in blocks.items() for eid in ids}
            if wanted <= final_at.keys():
                break
        await asyncio.sleep(0.3)  # the other nodes log their commits too
        poller.stop = True
        await polling
    committed = [commit_times(n.log) for n in net.nodes]
    per_block: dict[int, int] = {}
    for height in final_at.values():
        per_block[height] = per_block.get(height, 0) + 1
    window_start = started + warmup_s
    window = max(ended - window_start, 1e-9)
    in_window = [
        h for h, t in committed[0].items() if h in per_block and window_start <= t <= ended
    ]
    finalised = sum(per_block[h] for h in in_window)
    while_running = sum(
        per_block[h] for h, t in committed[0].items() if h in per_block and started <= t <= ended
    )
    latencies, not_final = [], 0
    for r in accepted:
        final_height = final_at.get(r.event_id)
        at = committed[r.node].get(final_height) if final_height is not None else None
        if at is None:
            not_final += 1
        elif r.sent >= window_start:
            latencies.append((at - r.sent) * 1000)
    refused: dict[str, int] = {}
    for r in records:
        if r.status != 202:
            refused[str(r.status)] = refused.get(str(r.status), 0) + 1
    node_cpu = [a - b for a, b in zip(cpu_after, cpu_before, strict=True)]
    late = {h: r for h, r in poller.rounds.items() if h > base_height and r > 0}
    return RunResult(
        name=name,
        offered_per_s=offered,
        seconds=round(elapsed, 2),
        window_s=round(window, 2),
        submitted=len(records),
        accepted=len(accepted),
        refused=refused,
        finalised=finalised,
        finalised_per_s=round(finalised / window, 1),
        blocks=len(in_window),
        events_per_block=round(finalised / len(in_window), 1) if in_window else 0.0,
        latency_p50_ms=_round(percentile(latencies, 0.50)),
        latency_p99_ms=_round(percentile(latencies, 0.99)),
        latency_max_ms=_round(max(latencies) if latencies else None),
        not_final=not_final,
        heights_past_round_0=len(late),
        max_round=max(late.values(), default=0),
        node_cpu_percent=[round(100 * c / elapsed, 1) for c in node_cpu],
        node_cpu_ms_per_event=round(1000 * sum(node_cpu) / while_running, 3)
        if while_running
        else None,
        bench_cpu_percent=round(100 * (own_after - own_before) / elapsed, 1),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def warm_up(net: Network, supply: Supply, events: list[bytes]) -> None:
    """Submit, and wait until the first node has every one of them final."""
    urls = [n.url for n in net.nodes]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        poller = Poller(urls)
        polling = asyncio.create_task(poller.run(session))
        records = await saturating_loop(session, poller, iter(events), 3600, 8, 4000)
        if any(r.status != 202 for r in records):
            raise SystemExit(f"warm-up events refused: {sorted({r.status for r in records})}")
        supply.settle(records)
        wanted = {event_id(b) for b in events}
        while True:
            await asyncio.sleep(0.3)
            blocks = await asyncio.to_thread(fetch_blocks, net, 1, poller.height[0])
            if wanted <= {eid for ids in blocks.values() for eid in ids}:
                break
        poller.stop = True
        await polling


# -- the whole run --------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # The machine may be shared: what else was running shows here.
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="kp-bench-"))
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    parameters = Parameters()
    if args.timeout_propose_ms:
        parameters = Parameters(timeout_propose_ms=args.timeout_propose_ms)
    net = Network.create(directory / "net", parameters=parameters, tls=not args.plain)
    net.lift_rate_limits()  # all the load comes from one address
    log_every_block(net)  # block times are read from the logs
    supply = Supply(net.directory, max(1, min(args.sign_workers, os.cpu_count() or 1)))
    results: dict[str, Any] = {
        "transport": "plain HTTP" if args.plain else "TLS 1.3",
        "saturation_events_per_request": args.batch,
        "machine": machine(),
        "timeout_propose_ms": parameters.timeout_propose_ms,
        "targets": {
            "finalised_per_s": TARGET_THROUGHPUT,
            "sustained_s": TARGET_SUSTAINED_S,
            "p50_ms_at_200_per_s": TARGET_P50_MS,
            "p99_ms_at_200_per_s": TARGET_P99_MS,
        },
    }
    try:
        total = int(args.rate * args.duration)
        log(f"signing {total // 2} warm-up issuances ...")
        warm = supply.issuances(total // 2)
        results["ed25519_verify_per_s"] = round(ed25519_verify_rate(2.0))
        log(f"Ed25519 verify rate (one core, this run): {results['ed25519_verify_per_s']}/s")
        net.start()
        log(f"network up in {net.directory}; warm-up with {len(warm)} issuances ...")
        asyncio.run(warm_up(net, supply, warm))
        log(f"signing {total} open-loop events (half confirmations of the warm-up's) ...")
        open_events = supply.mixed(total)

        async def drive_open(session: aiohttp.ClientSession, poller: Poller) -> Any:
            return await open_loop(session, poller.urls, open_events, args.rate)

        log(f"open loop: {args.rate:g} events/s for {args.duration:g} s ...")
        warm_s = min(2.0, args.duration / 5)
        result = asyncio.run(
            measure(net, supply, "open_loop", drive_open, offered=args.rate, warmup_s=warm_s)
        )
        results["open_loop"] = asdict(result)
        log(_describe(result))
        if args.saturate:
            results["saturation"] = saturate(net, supply, args, log)
        results["final_heights"] = {n.participant: n.height() for n in net.nodes}
    finally:
        net.close()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return results


def saturate(net: Network, supply: Supply, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    def driver(events: list[bytes], seconds: float) -> Drive:
        async def drive(session: aiohttp.ClientSession, poller: Poller) -> list[Submission]:
            return await saturating_loop(
                session, poller, iter(events), seconds, args.per_node, args.backlog, args.batch
            )

        return drive

    probe_events = supply.mixed(args.probe_events)
    log(f"saturation probe: up to {len(probe_events)} events for 10 s ...")
    probe = asyncio.run(
        measure(net, supply, "probe", driver(probe_events, 10.0), offered=None, warmup_s=3.0)
    )
    log(_describe(probe))
    # Sized by the faster of the probe's two rates: a probe whose few blocks met a round change
    # finalises far less than the nodes take in, and a supply sized by that ran out before the
    # run's end (2026-12-02: 286 finalised/s in the probe, the 60 s run over at 38 s).
    taken = probe.accepted / probe.seconds if probe.seconds > 0 else 0.0
    rate = max(probe.finalised_per_s, taken, 100.0)
    count = min(int(rate * 1.5 * args.saturate_duration) + 2 * args.backlog, args.max_events)
    log(f"signing {count} events for {args.saturate_duration:g} s of saturation ...")
    events = supply.mixed(count)
    log(f"saturation: {args.saturate_duration:g} s, backlog {args.backlog} ...")
    result = asyncio.run(
        measure(
            net,
            supply,
            "saturation",
            driver(events, args.saturate_duration),
            offered=None,
            warmup_s=min(5.0, args.saturate_duration / 5),
        )
    )
    result.supply_ran_out = result.submitted >= len(events)
    log(_describe(result))
    return asdict(result)


def _describe(r: RunResult) -> str:
    offered = f"offered {r.offered_per_s:g}/s, " if r.offered_per_s else ""
    ran_out = " (ran out of signed events)" if r.supply_ran_out else ""
    return (
        f"  {r.name}: {offered}{r.accepted}/{r.submitted} accepted in {r.seconds:g} s{ran_out}; "
        f"{r.finalised_per_s:g} finalised/s over {r.window_s:g} s "
        f"({r.blocks} blocks, {r.events_per_block:g} events/block); "
        f"latency p50 {r.latency_p50_ms} ms, p99 {r.latency_p99_ms} ms, max {r.latency_max_ms} ms; "
        f"not final {r.not_final}; refused {r.refused or 'none'}; "
        f"heights past round 0: {r.heights_past_round_0} (max round {r.max_round}); "
        f"node CPU {r.node_cpu_percent}% = {r.node_cpu_ms_per_event} ms per event (4 nodes); "
        f"bench CPU {r.bench_cpu_percent}%"
    )


def _summary(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"transport: {results['transport']}",
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}, Python {m['python']}, "
        f"load average at start {m['loadavg_at_start']}",
        f"Ed25519 verify (one core): {results['ed25519_verify_per_s']}/s",
    ]
    o = results["open_loop"]
    lines.append(
        f"open loop {o['offered_per_s']:g}/s: {o['finalised_per_s']} finalised/s, "
        f"p50 {o['latency_p50_ms']} ms (target <= {TARGET_P50_MS:g}), "
        f"p99 {o['latency_p99_ms']} ms (target <= {TARGET_P99_MS:g})"
    )
    if "saturation" in results:
        s = results["saturation"]
        lines.append(
            f"saturation ({results['saturation_events_per_request']} events a request): "
            f"{s['finalised_per_s']} finalised/s over {s['window_s']} s "
            f"(target >= {TARGET_THROUGHPUT:g} for {TARGET_SUSTAINED_S:g} s), "
            f"{s['node_cpu_ms_per_event']} node CPU ms per event, "
            f"p50 {s['latency_p50_ms']} ms, p99 {s['latency_p99_ms']} ms"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="Open-loop events per second.")
    parser.add_argument("--duration", type=float, default=30.0, help="Open-loop seconds.")
    parser.add_argument("--saturate", action="store_true", help="Also run a saturation test.")
    parser.add_argument("--saturate-duration", type=float, default=TARGET_SUSTAINED_S)
    parser.add_argument(
        "--backlog", type=int, default=4000, help="Events kept waiting in the mempools."
    )
    parser.add_argument("--per-node", type=int, default=16, help="Saturating submitters per node.")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="Events per request in the saturation runs: 1 sends each alone (msgpack), more "
        'sends {"events": [...]} batches of that many (SPEC 10).',
    )
    parser.add_argument("--probe-events", type=int, default=12_000)
    parser.add_argument("--max-events", type=int, default=300_000)
    parser.add_argument("--sign-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--timeout-propose-ms",
        type=int,
        default=0,
        help="The genesis's propose timeout (default: the genesis default, 1000 ms). At "
        "saturation a proposer builds 2,000-event blocks on a shared core, and a short timeout "
        "ends rounds before its proposal arrives.",
    )
    parser.add_argument("--dir", help="Where to create the network (default: a temp dir).")
    parser.add_argument("--keep", action="store_true", help="Keep the network's directory.")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="A plain-HTTP network (network init --plain-http) instead of TLS: to measure what "
        "TLS costs.",
    )
    parser.add_argument(
        "--compare-plain",
        action="store_true",
        help="Run over TLS, then the same over plain HTTP, and report both and TLS's cost.",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch is 1 to 1000 events a request (a batch holds at most 1,000)")
    # Killed politely (timeout, Ctrl-C): still stop the nodes, in run's finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.compare_plain:
        results = run(args)
        print(json.dumps(results, indent=2) if args.json else _summary(results))
        return
    tls_run = run(argparse.Namespace(**{**vars(args), "plain": False, "dir": None}))
    plain_run = run(argparse.Namespace(**{**vars(args), "plain": True, "dir": None}))
    compared = {"tls": tls_run, "plain": plain_run, "tls_cost": tls_cost(tls_run, plain_run)}
    if args.json:
        print(json.dumps(compared, indent=2))
    else:
        print(_summary(tls_run), _summary(plain_run), sep="\n\n")
        print("\nTLS against plain, same run:", json.dumps(compared["tls_cost"]))


def tls_cost(tls_run: dict[str, Any], plain_run: dict[str, Any]) -> dict[str, Any]:
    """Per measured run: throughput lost and node CPU added by TLS, in percent of plain."""
    cost: dict[str, Any] = {}
    for name in ("open_loop", "saturation"):
        if name not in tls_run or name not in plain_run:
            continue
        t, p = tls_run[name], plain_run[name]
        cost[name] = {
            "finalised_per_s": [t["finalised_per_s"], p["finalised_per_s"]],
            "throughput_loss_percent": round(
                100 * (1 - t["finalised_per_s"] / p["finalised_per_s"]), 1
            )
            if p["finalised_per_s"]
            else None,
            "node_cpu_ms_per_event": [t["node_cpu_ms_per_event"], p["node_cpu_ms_per_event"]],
            "latency_p50_ms": [t["latency_p50_ms"], p["latency_p50_ms"]],
            "latency_p99_ms": [t["latency_p99_ms"], p["latency_p99_ms"]],
        }
    return cost


if __name__ == "__main__":
    main()
