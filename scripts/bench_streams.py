"""Slow stream clients against one node's memory: what 200 clients that read nothing cost it.

    .venv/bin/python scripts/bench_streams.py [--blocks 300] [--clients 200] [--json]

1. Starts a 4-participant network (TLS; --plain: HTTP) on 127.0.0.1 and makes `--blocks` final blocks of events that
   concern AE (one BE->AE issuance each, submitted one after another).
2. Reads AE's whole public stream and its participant stream once with a fast client: what a
   client resuming from the start is owed (bytes), so what buffering it all would cost.
3. Opens `--clients` slow clients on AE (half /v1/public/stream?after=0, half
   /v1/stream?after=0:0), each with a 4 KiB receive buffer, reading nothing; measures AE's
   resident memory before, with them connected, and while `--more` further events become
   final meanwhile (their finality, submission to final on AE, is measured too); then closes
   them and measures again.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import EventMaker, submit  # noqa: E402
from tests.e2e.harness import Network  # noqa: E402
from tests.e2e.sse import SSEClient, rss_bytes, slow_clients  # noqa: E402


def settle_rss(pid: int, seconds: float = 2.0) -> int:
    """The largest resident size seen over `seconds` (the node keeps sending meanwhile)."""
    deadline = time.monotonic() + seconds
    top = 0
    while time.monotonic() < deadline:
        top = max(top, rss_bytes(pid))
        time.sleep(0.1)
    return top


def stream_bytes(url: str, token: str | None) -> tuple[int, int]:
    """(messages, bytes) a client reading the whole stream from its start receives."""
    client = SSEClient(url, token=token)
    try:
        got = client.until_idle(120)
    finally:
        client.close()
    return len(got), sum(len(json.dumps(m.data)) + 40 for m in got)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--more", type=int, default=20, help="events final while connected")
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-bench-streams-") as tmp:
        net = Network.create(Path(tmp) / "net", tls=not args.plain)
        net.lift_rate_limits()
        for n in net.nodes:
            with n.config.open("a", encoding="utf-8") as config:
                config.write(
                    f"max_connections_per_address = {args.clients + 50}\n"
                    f"max_connections = {args.clients + 200}\n"
                    "stream_heartbeat_s = 1.0\n"
                )
        try:
            net.start()
            result = measure(net, args)
        finally:
            net.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


def measure(net: Network, args: argparse.Namespace) -> dict[str, object]:
    maker = EventMaker.for_network(net, tag="BS")
    be, ae = net.node("BE"), net.node("AE")
    assert ae.process is not None
    pid = ae.process.pid
    built = time.monotonic()
    for _ in range(args.blocks):
        event_id = submit(be, maker.issue("BE", "AE"))
        net.wait_event(ae, event_id)
    build_s = time.monotonic() - built
    height = ae.height()
    public_messages, public_bytes = stream_bytes(ae.url + "/v1/public/stream?after=0", None)
    events_messages, events_bytes = stream_bytes(ae.url + "/v1/stream?after=0:0", ae.token)
    before = settle_rss(pid)
    half = args.clients // 2
    paths = ["/v1/public/stream?after=0"] * half + ["/v1/stream?after=0:0"] * (args.clients - half)
    sockets = slow_clients(ae.url, paths, ae.token)
    try:
        connected = settle_rss(pid, 3.0)
        finality = []
        for _ in range(args.more):
            start = time.monotonic()
            event_id = submit(be, maker.issue("BE", "AE"))
            answer = net.wait_event(ae, event_id)
            assert answer["status"] == "final", answer
            finality.append(time.monotonic() - start)
        during = settle_rss(pid, 1.0)
        status, _ = ae.get("/healthz")
    finally:
        for sock in sockets:
            sock.close()
    after = settle_rss(pid, 2.0)
    owed = half * public_bytes + (args.clients - half) * events_bytes
    finality.sort()
    return {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "blocks": height,
        "build_s": round(build_s, 1),
        "clients": args.clients,
        "tls": not args.plain,
        "public_stream_from_start": {"messages": public_messages, "bytes": public_bytes},
        "participant_stream_from_start": {"messages": events_messages, "bytes": events_bytes},
        "owed_to_all_clients_mb": round(owed / 2**20, 1),
        "rss_mb": {
            "before": round(before / 2**20, 1),
            "clients_connected": round(connected / 2**20, 1),
            "while_finalising": round(during / 2**20, 1),
            "after_close": round(after / 2**20, 1),
        },
        "rss_growth_per_client_kb": round((during - before) / args.clients / 1024, 1),
        "finality_while_connected_s": {
            "events": len(finality),
            "p50": round(finality[len(finality) // 2], 3) if finality else None,
            "max": round(finality[-1], 3) if finality else None,
        },
        "healthz_while_connected": status,
    }


if __name__ == "__main__":
    main()
