"""A TCP proxy that makes a peer link slow and lossy, for e2e tests and scripts/bench_wan.py.

Each proxy listens on a port of its own and forwards every connection to one real node. Every
chunk read in either direction is delivered `delay_s` later (the one-way delay of the link); a
fraction `hold_fraction` of chunks is held a further `hold_min_s` to `hold_max_s` (a congested
or retransmitting link), and, TCP being ordered, so is every chunk behind it on that
connection. A fraction `reset_fraction` of connections is reset (closed abruptly, RST, both
ways) at a random moment within `reset_within_s` of being opened. The random draws come from one
RNG seeded per proxy; the moments they apply at depend on the scheduler, so a run is not
replayed exactly, only its odds are.

The proxies run on an event loop of their own in a background thread (`ProxyFleet`), so that
the synchronous test code around them does not stall the links.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ledger.genesis import Parameters
from node.files import save_genesis
from tests.e2e.conftest import EventMaker
from tests.e2e.harness import Network, connect, reserve_ports

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class LinkProfile:
    delay_s: float = 0.2
    hold_fraction: float = 0.1
    hold_min_s: float = 0.2
    hold_max_s: float = 1.0
    reset_fraction: float = 0.01
    reset_within_s: float = 5.0


@dataclass
class LinkStats:
    connections: int = 0
    chunks: int = 0
    held: int = 0
    resets: int = 0
    bytes: int = 0


@dataclass
class _Pump:
    """One direction of one connection: chunks delivered in order, each at its due time."""

    writer: asyncio.StreamWriter
    queue: asyncio.Queue[tuple[float, bytes] | None] = field(default_factory=asyncio.Queue)
    #: The due time of the last chunk queued: a chunk is never due before the one ahead of it.
    last_due: float = 0.0


class LossyProxy:
    """Forwards connections on `sock` (a bound socket, listening or not) to `target_port`."""

    def __init__(
        self, sock: socket.socket, target_port: int, profile: LinkProfile, seed: int
    ) -> None:
        self.sock = sock
        self.target_port = target_port
        self.profile = profile
        self.rng = random.Random(seed)
        self.stats = LinkStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, sock=self.sock)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _reset(writer)
            return
        writers = (writer, up_writer)
        self._writers.update(writers)
        to_node, to_client = _Pump(up_writer), _Pump(writer)
        self._spawn(self._read(reader, to_node))
        self._spawn(self._read(up_reader, to_client))
        self._spawn(self._deliver(to_node))
        self._spawn(self._deliver(to_client))
        if self.rng.random() < self.profile.reset_fraction:
            self._spawn(
                self._reset_later(writers, self.rng.uniform(0, self.profile.reset_within_s))
            )

    async def _read(self, reader: asyncio.StreamReader, pump: _Pump) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                due = loop.time() + self.profile.delay_s
                self.stats.chunks += 1
                self.stats.bytes += len(data)
                if self.rng.random() < self.profile.hold_fraction:
                    self.stats.held += 1
                    due += self.rng.uniform(self.profile.hold_min_s, self.profile.hold_max_s)
                pump.last_due = max(pump.last_due, due)
                pump.queue.put_nowait((pump.last_due, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        pump.queue.put_nowait(None)

    async def _deliver(self, pump: _Pump) -> None:
        loop = asyncio.get_running_loop()
        writer = pump.writer
        try:
            while True:
                item = await pump.queue.get()
                if item is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    break
                due, data = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            _reset(writer)
        finally:
            self._writers.discard(writer)

    async def _reset_later(self, writers: Sequence[asyncio.StreamWriter], after: float) -> None:
        await asyncio.sleep(after)
        if any(not w.transport.is_closing() for w in writers):
            self.stats.resets += 1
        for w in writers:
            _reset(w)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN (SO_LINGER 0), as a link that drops a connection does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class ProxyFleet:
    """Proxies on a background event loop: add() each, then start(); close() at the end."""

    def __init__(self) -> None:
        self.proxies: list[LossyProxy] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def add(self, sock: socket.socket, target_port: int, profile: LinkProfile, seed: int) -> None:
        self.proxies.append(LossyProxy(sock, target_port, profile, seed))

    def start(self) -> None:
        self._thread.start()
        for proxy in self.proxies:
            asyncio.run_coroutine_threadsafe(proxy.start(), self._loop).result(10)

    def stats(self) -> LinkStats:
        total = LinkStats()
        for proxy in self.proxies:
            for name in ("connections", "chunks", "held", "resets", "bytes"):
                setattr(total, name, getattr(total, name) + getattr(proxy.stats, name))
        return total

    def close(self) -> None:
        if self._thread.is_alive():
            for proxy in self.proxies:
                try:
                    asyncio.run_coroutine_threadsafe(proxy.stop(), self._loop).result(10)
                except (TimeoutError, RuntimeError):
                    pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            deadline = time.monotonic() + 10
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._loop.is_running():
            self._loop.close()
        for proxy in self.proxies:
            proxy.sock.close()


# -- a network behind the proxies, and a steady load with per-event finality times ----------------
def wan_network(
    directory: Path, profile: LinkProfile, seed: int, parameters: Parameters | None = None
) -> tuple[Network, ProxyFleet]:
    """A 4-node network whose genesis names, for every node, the port of a proxy to it.

    Every peer link (consensus messages, gossip, block fetches and catch-up) goes through a
    proxy; clients (the test, the benchmark) talk to each node's real port (`NodeProcess.url`).
    """
    net = Network.create(directory, parameters=parameters)
    fleet = ProxyFleet()
    held = reserve_ports(len(net.nodes))
    try:
        fronts = {}
        for i, (node, listener) in enumerate(zip(net.nodes, held, strict=True)):
            fleet.add(listener.lend(), int(node.url.rsplit(":", 1)[1]), profile, seed * 1000 + i)
            fronts[node.url] = node.url.rsplit(":", 1)[0] + f":{listener.port}"
        genesis = net.genesis
        genesis = replace(
            genesis,
            validators=tuple(replace(v, address=fronts[v.address]) for v in genesis.validators),
            participants=tuple(
                replace(p, address=fronts.get(p.address, p.address)) for p in genesis.participants
            ),
        )
        genesis_path = directory / "genesis.json"
        genesis_path.unlink()
        save_genesis(genesis, genesis_path)
        net.genesis = genesis
        fleet.start()
    except BaseException:
        fleet.close()
        net.close()
        raise
    finally:
        for listener in held:
            listener.close()  # the fleet holds duplicates of the sockets
    return net, fleet


@dataclass
class Tracked:
    event_id: str
    node: int
    sent: float  # monotonic
    accepted: float | None = None
    final: float | None = None
    status: str = ""


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    return response.status, json.loads(raw) if raw else None


def steady_load(
    net: Network, rate: float, duration: float, settle_s: float, tag: str = "WAN"
) -> list[Tracked]:
    """Submit `rate` issuances a second for `duration` seconds (round robin over the nodes),
    and poll each accepted event on the node that accepted it until it is final, or until
    `settle_s` after the load ended. Times are monotonic seconds."""
    maker = EventMaker.for_network(net, tag)
    count = int(rate * duration)
    bodies = [json.dumps(e.to_envelope()).encode() for e in maker.trade(count)]
    tracked: list[Tracked] = []
    lock = threading.Lock()
    pending: list[Tracked] = []
    done = threading.Event()
    urls = [n.url for n in net.nodes]

    def submitter(which: int) -> None:
        conn = connect(urls[which])
        start = time.monotonic()
        for i in range(which, count, len(urls)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            record = Tracked("", which, time.monotonic())
            try:
                status, answer = _request(conn, "POST", "/v1/events", bodies[i])
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = connect(urls[which])
                status, answer = 0, None
            with lock:
                tracked.append(record)
                if status == 202:
                    record.accepted = time.monotonic()
                    record.event_id = str(answer["event_id"])
                    pending.append(record)
                else:
                    record.status = f"refused {status}"
        conn.close()

    def watcher(which: int) -> None:
        conn = connect(urls[which])
        while True:
            with lock:
                mine = [r for r in pending if r.node == which]
            if not mine and done.is_set():
                break
            for record in mine:
                try:
                    status, answer = _request(conn, "GET", f"/v1/events/{record.event_id}")
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = connect(urls[which])
                    continue
                if status == 200 and answer["status"] in ("final", "rejected"):
                    with lock:
                        record.final = time.monotonic()
                        record.status = str(answer["status"])
                        pending.remove(record)
            time.sleep(0.05)
        conn.close()

    submitters = [threading.Thread(target=submitter, args=(i,)) for i in range(len(urls))]
    watchers = [threading.Thread(target=watcher, args=(i,)) for i in range(len(urls))]
    for thread in submitters + watchers:
        thread.start()
    for thread in submitters:
        thread.join()
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        with lock:
            if not pending:
                break
        time.sleep(0.1)
    done.set()
    with lock:
        pending.clear()
    for thread in watchers:
        thread.join()
    return tracked


def latencies(tracked: list[Tracked]) -> list[float]:
    """Acceptance to final, seconds, of each accepted event seen final."""
    return sorted(
        r.final - r.accepted for r in tracked if r.accepted is not None and r.final is not None
    )


def share_within(tracked: list[Tracked], seconds: float) -> float:
    accepted = [r for r in tracked if r.accepted is not None]
    fast = [r for r in accepted if r.final is not None and r.final - r.accepted <= seconds]
    return len(fast) / len(accepted) if accepted else 0.0
