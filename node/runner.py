"""Running one node in the foreground until SIGINT or SIGTERM, then stopping it cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

from node import logs
from node.api import build_app
from node.config import NodeConfig
from node.service import LedgerNode

log = logging.getLogger("kpledger.node")


async def serve(config: NodeConfig, ready: asyncio.Event | None = None) -> None:
    node = LedgerNode(config)
    app = build_app(node)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        node.store.close()
        raise SystemExit(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    await node.start()
    log.info(
        "node started",
        extra={
            "participant": config.participant,
            "url": f"http://{config.host}:{config.port}",
            "height": node.store.height,
            "chain_id": node.chain_id,
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("node stopping", extra={"height": node.store.height})
        await runner.cleanup()
        await node.stop()
        log.info("node stopped")


def run(config_path: Path | str) -> None:
    config = NodeConfig.load(config_path)
    logs.setup(config.log_level, node=config.participant)
    asyncio.run(serve(config))
