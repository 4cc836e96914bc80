"""Network benchmark: four real nodes on 127.0.0.1 under open-loop and saturating event load.

    .venv/bin/python scripts/bench_network.py [--rate 200] [--duration 30] [--saturate] [--json]

Starts a fresh 4-node network (BE, AE, IN, RU) in a temporary directory, signs every event first
(issuances and import confirmations between the four; signing is not measured), then:

- open loop: submits at a fixed rate for `--duration` seconds, spread over the four nodes
  (msgpack bodies), whatever the answers' latency;
- saturation (`--saturate`): a short probe, then as many concurrent submitters as it takes to
  keep every mempool full for `--saturate-duration` seconds.

Figures: finalised events/s over the window (from the final chain: each block's events, counted
when the reference node first reports the block's height), commit latency p50/p99 (submission to
the event's block being final on the node it was submitted to: each node's height is polled
every few milliseconds), node CPU use, and the Ed25519 verify rate of this machine measured in
the same run (the ceiling: every node verifies every event once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger import authoring  # noqa: E402
from ledger.block import Block  # noqa: E402
from ledger.certificate import Certificate  # noqa: E402
from ledger.encoding import decode  # noqa: E402
from ledger.genesis import Genesis, Parameters  # noqa: E402
from ledger.hashing import TAG_EVENT, TAG_EVENT_ID, tagged_hash  # noqa: E402
from ledger.keys import SigningKey, load_signing_key, verify  # noqa: E402
from ledger.state import Registry  # noqa: E402
from node.peers import MSGPACK, sign_request  # noqa: E402
from tests.e2e.harness import Network  # noqa: E402

CODES = ("BE", "AE", "IN", "RU")
PAIRS = [(a, b) for a in CODES for b in CODES if a != b]
PARTIES = {
    "BE": ("Antwerp Rough Trading NV", "Hoveniersstraat 22, 2018 Antwerpen"),
    "AE": ("Almas Gems DMCC", "Almas Tower, Jumeirah Lakes Towers, Dubai"),
    "IN": ("Surat Diamond Exports Pvt Ltd", "Mahidharpura, Surat 395003, Gujarat"),
    "RU": ("Yakutsk Almaz Trade JSC", "Lenina prospekt 6, Yakutsk 677000"),
}
HS_CODES = ("7102.10", "7102.21", "7102.31")
#: How often each node's height is read, to time finality (the latency figures' resolution).
WATCH_INTERVAL_S = 0.01
TARGET_THROUGHPUT = 2000.0
TARGET_P50_MS = 250.0
TARGET_P99_MS = 1000.0


# -- signing, in worker processes -----------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(directory: str) -> None:
    genesis = Genesis.load(Path(directory) / "genesis.json")
    _worker["chain_id"] = genesis.chain_id
    _worker["registry"] = Registry.from_genesis(genesis)
    _worker["keys"] = {c: load_signing_key(Path(directory) / c / "authority.pem") for c in CODES}


def _sign_pairs(serials: Sequence[int]) -> list[tuple[bytes, bytes]]:
    """For each serial, an issuance and the importer's confirmation of it (canonical bytes)."""
    chain_id, registry, keys = _worker["chain_id"], _worker["registry"], _worker["keys"]
    today = datetime.now(UTC).date()
    now = int(time.time() * 1000)
    out = []
    for n in serials:
        exporting, importing = PAIRS[n % len(PAIRS)]
        raw = {
            "number": f"{exporting}-BENCH-{n:08d}",
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": ["MIXED"] if n % 3 == 0 else ["BW"],
            "hs_code": HS_CODES[n % 3],
            "carats": f"{n * 7 % 5000 + 1}.{n % 100:02d}",
            "value_usd": f"{n * 1013 % 900000 + 100}.{n * 3 % 100:02d}",
            "parcels": n % 12 + 1,
            "exporter": {"name": PARTIES[exporting][0], "address": PARTIES[exporting][1]},
            "importer": {"name": PARTIES[importing][0], "address": PARTIES[importing][1]},
            "issued_on": today.isoformat(),
            "expires_on": (today + timedelta(days=90)).isoformat(),
        }
        issuance = authoring.issue(
            registry, chain_id, Certificate.from_json(raw), keys[exporting], created_ms=now
        )
        confirm = authoring.confirm_import(
            chain_id, importing, raw["number"], issuance.digest, keys[importing], created_ms=now
        )
        out.append((issuance.event.encoded, confirm.encoded))
    return out


def sign_pairs(directory: Path, first: int, count: int, workers: int) -> list[tuple[bytes, bytes]]:
    if count <= 0:
        return []
    serials = list(range(first, first + count))
    chunk = max(50, math.ceil(count / (workers * 8)))
    chunks = [serials[i : i + chunk] for i in range(0, count, chunk)]
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(str(directory),)) as pool:
        return [pair for part in pool.map(_sign_pairs, chunks) for pair in part]


def interleave(a: Sequence[bytes], b: Sequence[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append(a[i])
        if i < len(b):
            out.append(b[i])
    return out


def event_id(encoded: bytes) -> bytes:
    return tagged_hash(TAG_EVENT_ID, encoded)


# -- measuring ------------------------------------------------------------------------------------
def ed25519_verify_rate(seconds: float = 2.0) -> float:
    key = SigningKey.generate()
    payload = os.urandom(400)
    signature = key.sign(TAG_EVENT, payload)
    public = key.public_bytes
    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(200):
            verify(public, TAG_EVENT, payload, signature)
        count += 200
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its (waited-for) children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Submission:
    event_id: bytes
    node: int
    sent: float
    status: int = 0


@dataclass
class Watcher:
    """Each node's height, polled: when each height was first seen on each node."""

    urls: list[str]
    seen: list[dict[int, float]] = field(default_factory=list)
    #: Heights at which some node was seen in a round above 0 (a proposer or vote timed out).
    late_rounds: dict[int, int] = field(default_factory=dict)
    stop: bool = False

    async def run(self, session: aiohttp.ClientSession) -> None:
        self.seen = [{} for _ in self.urls]
        last = [0 for _ in self.urls]
        while not self.stop:
            answers = await asyncio.gather(
                *(self._height(session, url) for url in self.urls), return_exceptions=True
            )
            now = time.monotonic()
            for i, answer in enumerate(answers):
                if not isinstance(answer, tuple):
                    continue
                height, round_ = answer
                if height > last[i]:
                    for h in range(last[i] + 1, height + 1):
                        self.seen[i][h] = now
                    last[i] = height
                if round_ > 0:
                    working = height + 1
                    self.late_rounds[working] = max(self.late_rounds.get(working, 0), round_)
            await asyncio.sleep(WATCH_INTERVAL_S)

    @staticmethod
    async def _height(session: aiohttp.ClientSession, url: str) -> tuple[int, int]:
        async with session.get(url + "/healthz") as response:
            health = await response.json()
            return int(health["height"]), int(health["round"])


async def post(session: aiohttp.ClientSession, url: str, body: bytes, record: Submission) -> None:
    try:
        async with session.post(
            url + "/v1/events", data=body, headers={"Content-Type": MSGPACK}
        ) as response:
            await response.read()
            record.status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError):
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
        record = Submission(event_id(body), i % len(urls), time.monotonic())
        records.append(record)
        task = asyncio.create_task(post(session, urls[record.node], body, record))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    return records


async def closed_loop(
    session: aiohttp.ClientSession,
    urls: list[str],
    events: Iterator[bytes],
    seconds: float,
    per_node: int,
) -> list[Submission]:
    """`per_node` submitters per node, each sending its next event as soon as the last is
    answered, until `seconds` have passed or the events run out."""
    records: list[Submission] = []
    deadline = time.monotonic() + seconds

    async def submitter(node: int) -> None:
        while time.monotonic() < deadline:
            body = next(events, None)
            if body is None:
                return
            record = Submission(event_id(body), node, time.monotonic())
            records.append(record)
            await post(session, urls[node], body, record)
            if record.status == 503:
                await asyncio.sleep(0.05)  # the mempool is full: back off a moment

    await asyncio.gather(*(submitter(n) for n in range(len(urls)) for _ in range(per_node)))
    return records


def fetch_blocks(net: Network, node: int, first: int, last: int) -> dict[int, list[bytes]]:
    """Event ids of each final block in [first, last], through the signed peer route."""
    import urllib.request

    key = load_signing_key(net.directory / net.nodes[node].participant / "node.pem")
    chain_id = net.genesis.chain_id
    out: dict[int, list[bytes]] = {}
    height = first
    while height <= last:
        path = f"/peer/blocks?from={height}&limit=256"
        headers = sign_request(key, chain_id, "GET", path, b"", int(time.time() * 1000))
        request = urllib.request.Request(net.nodes[node].url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
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
    bench_cpu_percent: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def measure(
    net: Network,
    name: str,
    drive: Any,
    *,
    offered: float | None,
    warmup_s: float,
    grace_s: float = 20.0,
) -> RunResult:
    urls = [n.url for n in net.nodes]
    pids = [n.process.pid for n in net.nodes if n.process is not None]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        watcher = Watcher(urls)
        watch = asyncio.create_task(watcher.run(session))
        await asyncio.sleep(0.2)
        base_height = max(watcher.seen[0]) if watcher.seen[0] else 0
        cpu_before = [cpu_seconds(p) for p in pids]
        own_before = time.process_time()
        started = time.monotonic()
        records: list[Submission] = await drive(session, urls)
        ended = time.monotonic()
        cpu_after = [cpu_seconds(p) for p in pids]
        own_after = time.process_time()
        accepted = [r for r in records if r.status == 202]
        # Let what was accepted become final (or not), for the latency figures.
        wanted = {r.event_id for r in accepted}
        deadline = time.monotonic() + grace_s
        final_ids: dict[bytes, int] = {}
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            top = max(watcher.seen[0]) if watcher.seen[0] else 0
            blocks = await asyncio.to_thread(fetch_blocks, net, 0, base_height + 1, top)
            final_ids = {eid: h for h, ids in blocks.items() for eid in ids}
            if wanted <= final_ids.keys():
                break
        await asyncio.sleep(0.2)
        watcher.stop = True
        await watch
    # Throughput: events of the blocks that became final on node 0 inside the window.
    window_start = started + warmup_s
    window = max(ended - window_start, 1e-9)
    in_window = [
        h for h, t in watcher.seen[0].items() if h > base_height and window_start <= t <= ended
    ]
    counts: dict[int, int] = {}
    for h in final_ids.values():
        counts[h] = counts.get(h, 0) + 1
    finalised = sum(counts.get(h, 0) for h in in_window)
    latencies = []
    not_final = 0
    for r in accepted:
        height = final_ids.get(r.event_id)
        seen = watcher.seen[r.node].get(height) if height is not None else None
        if seen is None:
            not_final += 1
        elif r.sent >= window_start:
            latencies.append((seen - r.sent) * 1000)
    refused: dict[str, int] = {}
    for r in records:
        if r.status != 202:
            refused[str(r.status)] = refused.get(str(r.status), 0) + 1
    elapsed = ended - started
    blocks_in_window = len(in_window)
    return RunResult(
        name=name,
        offered_per_s=offered,
        window_s=round(window, 2),
        submitted=len(records),
        accepted=len(accepted),
        refused=refused,
        finalised=finalised,
        finalised_per_s=round(finalised / window, 1),
        blocks=blocks_in_window,
        events_per_block=round(finalised / blocks_in_window, 1) if blocks_in_window else 0.0,
        latency_p50_ms=_round(percentile(latencies, 0.50)),
        latency_p99_ms=_round(percentile(latencies, 0.99)),
        latency_max_ms=_round(max(latencies) if latencies else None),
        not_final=not_final,
        heights_past_round_0=sum(1 for h in watcher.late_rounds if h > base_height),
        max_round=max((r for h, r in watcher.late_rounds.items() if h > base_height), default=0),
        node_cpu_percent=[
            round(100 * (a - b) / elapsed, 1) for a, b in zip(cpu_after, cpu_before, strict=True)
        ],
        bench_cpu_percent=round(100 * (own_after - own_before) / elapsed, 1),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def submit_all(net: Network, events: Iterable[bytes], concurrency: int = 32) -> None:
    """Warm-up: submit and wait until node 0 has every one of them final."""
    urls = [n.url for n in net.nodes]
    bodies = list(events)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        records = await closed_loop(session, urls, iter(bodies), 3600, concurrency // 4 or 1)
        if any(r.status != 202 for r in records):
            codes = sorted({r.status for r in records})
            raise SystemExit(f"warm-up events refused (statuses {codes})")
        wanted = {event_id(b) for b in bodies}
        while True:
            async with session.get(urls[0] + "/healthz") as response:
                height = int((await response.json())["height"])
            blocks = await asyncio.to_thread(fetch_blocks, net, 0, 1, height)
            if wanted <= {eid for ids in blocks.values() for eid in ids}:
                return
            await asyncio.sleep(0.3)


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
        "loadavg_at_start": list(os.getloadavg()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="kp-bench-"))
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    net = Network.create(directory / "net", parameters=Parameters())
    workers = max(1, min(args.sign_workers, os.cpu_count() or 1))
    results: dict[str, Any] = {
        "machine": machine(),
        "targets": {
            "finalised_per_s": TARGET_THROUGHPUT,
            "p50_ms_at_200_per_s": TARGET_P50_MS,
            "p99_ms_at_200_per_s": TARGET_P99_MS,
        },
    }
    try:
        total = int(args.rate * args.duration)
        half = total // 2
        log(f"signing {total} issuances and their confirmations ...")
        pairs = sign_pairs(net.directory, 0, total, workers)
        warm = pairs[:half]
        live = pairs[half:]
        open_events = interleave([p[1] for p in warm], [p[0] for p in live])[:total]
        results["ed25519_verify_per_s"] = round(ed25519_verify_rate(2.0))
        log(f"Ed25519 verify rate (one core): {results['ed25519_verify_per_s']}/s")
        net.start()
        log(f"network up in {net.directory}; warm-up: {len(warm)} issuances ...")
        asyncio.run(submit_all(net, [p[0] for p in warm]))

        async def drive_open(session: aiohttp.ClientSession, urls: list[str]) -> Any:
            return await open_loop(session, urls, open_events, args.rate)

        log(f"open loop: {args.rate:g} events/s for {args.duration:g} s ...")
        result = asyncio.run(
            measure(
                net,
                "open_loop",
                drive_open,
                offered=args.rate,
                warmup_s=min(2.0, args.duration / 5),
            )
        )
        results["open_loop"] = result.to_json()
        log(_describe(result))
        if args.saturate:
            serial = total
            # The live issuances' confirmations are valid now; new issuances too.
            confirms = [p[1] for p in live]

            def supply(count: int) -> list[bytes]:
                nonlocal serial, confirms
                fresh = sign_pairs(net.directory, serial, count, workers)
                serial += count
                take, confirms = confirms[:count], confirms[count:]
                return interleave(take, [p[0] for p in fresh])

            probe_events = supply(args.probe_events)
            log(
                f"saturation probe: {len(probe_events)} events, {args.per_node} submitters/node ..."
            )

            async def drive_probe(session: aiohttp.ClientSession, urls: list[str]) -> Any:
                return await closed_loop(session, urls, iter(probe_events), 8.0, args.per_node)

            probe = asyncio.run(measure(net, "probe", drive_probe, offered=None, warmup_s=2.0))
            log(_describe(probe))
            need = int(max(probe.finalised_per_s, 100) * 1.5 * args.saturate_duration) + 1000
            need = min(need, args.max_events)
            log(f"signing {need} more events for a {args.saturate_duration:g} s saturation run ...")
            sat_events = supply(need // 2)

            async def drive_sat(session: aiohttp.ClientSession, urls: list[str]) -> Any:
                return await closed_loop(
                    session, urls, iter(sat_events), args.saturate_duration, args.per_node
                )

            sat = asyncio.run(
                measure(net, "saturation", drive_sat, offered=None, warmup_s=3.0, grace_s=30)
            )
            results["saturation"] = sat.to_json()
            log(_describe(sat))
        results["final_heights"] = {n.participant: n.height() for n in net.nodes}
    finally:
        net.kill_all()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return results


def _describe(r: RunResult) -> str:
    offered = f"offered {r.offered_per_s:g}/s, " if r.offered_per_s else ""
    return (
        f"  {r.name}: {offered}{r.accepted}/{r.submitted} accepted, "
        f"{r.finalised_per_s:g} finalised/s over {r.window_s:g} s "
        f"({r.blocks} blocks, {r.events_per_block:g} events/block), "
        f"latency p50 {r.latency_p50_ms} ms p99 {r.latency_p99_ms} ms max {r.latency_max_ms} ms, "
        f"not final {r.not_final}, refused {r.refused or 'none'}, "
        f"heights past round 0: {r.heights_past_round_0} (max round {r.max_round}), "
        f"node CPU {r.node_cpu_percent}%, bench CPU {r.bench_cpu_percent}%"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="Open-loop events per second.")
    parser.add_argument("--duration", type=float, default=30.0, help="Open-loop seconds.")
    parser.add_argument("--saturate", action="store_true", help="Also run a saturation test.")
    parser.add_argument("--saturate-duration", type=float, default=60.0)
    parser.add_argument("--per-node", type=int, default=24, help="Saturation submitters per node.")
    parser.add_argument("--probe-events", type=int, default=4000)
    parser.add_argument("--max-events", type=int, default=200_000)
    parser.add_argument("--sign-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dir", help="Where to create the network (default: a temp dir).")
    parser.add_argument("--keep", action="store_true", help="Keep the network's directory.")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(_summary(results))


def _summary(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}, Python {m['python']}",
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
            f"saturation: {s['finalised_per_s']} finalised/s over {s['window_s']} s "
            f"(target >= {TARGET_THROUGHPUT:g} for 60 s), p50 {s['latency_p50_ms']} ms, "
            f"p99 {s['latency_p99_ms']} ms"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
