"""The operations routes: /healthz and /metrics."""

from __future__ import annotations

import time

from aiohttp import web

from node.http.appkeys import NODE
from node.http.responses import json_response


async def healthz(request: web.Request) -> web.Response:
    """200 "ok", or 503 "unhealthy" with each problem (node/health.py), and the same figures."""
    node = request.app[NODE]
    head = node.store.head
    problems = node.health.problems(node.store.height)
    offset = node.health.clock_offset_ms()
    return json_response(
        {
            "status": "unhealthy" if problems else "ok",
            "problems": [p.to_json() for p in problems],
            "participant": node.participant,
            "chain_id": node.chain_id,
            "height": node.store.height,
            "head_hash": head.hash.hex() if head else None,
            "validator": node.is_validator,
            "observer": node.observer,
            "mempool": len(node.mempool),
            "round": node.core.round,
            "uptime_s": round(time.time() - node.started_at, 1),
            "best_peer_height": node.health.best_peer_height,
            "peers_reachable": node.health.peers_up,
            "clock_offset_ms": offset,
        },
        status=503 if problems else 200,
    )


async def metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    node.metrics.mempool.set(len(node.mempool))
    node.metrics.height.set(node.store.height)
    node.health.problems(node.store.height)  # the health figures as of now
    return web.Response(
        body=node.metrics.render(), headers={"Content-Type": node.metrics.content_type}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
