"""Running one node in the foreground until SIGINT or SIGTERM, then stopping it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import time
from pathlib import Path

from aiohttp import web

from node import logs, tls
from node.config import ConfigError, NodeConfig
from node.connections import ConnectionGuard, ConnectionLimits, GuardedRunner, raise_fd_limit
from node.custody import Passphrase
from node.http.app import make_app
from node.service import LedgerNode

log = logging.getLogger("kpledger.node")

#: A supervisor that already holds the node's port (bound to node.toml's host and port) hands
#: the socket over by leaving it open in the child and naming its file descriptor here; the node
#: then listens on it instead of binding the port itself, so nothing can take the port between
#: the supervisor choosing it and the node listening. The test harness starts nodes this way.
LISTEN_FD_ENV = "KPLEDGER_LISTEN_FD"

#: How often the registered nodes' host names are resolved again, when the register is unchanged.
RESOLVE_EVERY_S = 600.0

#: At SIGTERM, requests under way get this long to finish; then they are cancelled and get as
#: long again to unwind (aiohttp waits twice). With the node's own flush (STOP_FLUSH_S) a clean
#: stop ends within STOP_WITHIN_S whatever connections are open: an operator's script or systemd
#: that waits that long never has to kill a node that is stopping cleanly (issue 13).
SHUTDOWN_GRACE_S = 1.5
STOP_WITHIN_S = 5.0


def connection_guard(config: NodeConfig) -> ConnectionGuard:
    """The connection caps of node.toml, lowered if the open-file limit could not hold them."""
    fd_limit = raise_fd_limit()
    wanted = ConnectionLimits.from_config(config)
    limits = wanted.within_fd_limit(fd_limit)
    if limits != wanted:
        log.warning(
            "connection caps lowered to fit the open-file limit",
            extra={
                "fd_limit": fd_limit,
                "max_connections": limits.max_connections,
                "max_connections_per_address": limits.max_connections_per_address,
                "peer_connections": limits.peer_connections,
            },
        )
    return ConnectionGuard(limits, config.trusted_addresses)


def listener_context(config: NodeConfig, node: LedgerNode) -> ssl.SSLContext:
    """The TLS 1.3 context of the node's listener: its node key's certificate, kept in the data
    directory (tls/node.crt, made anew at each start), and node.toml's tls_cert for clients."""
    return tls.server_context(
        node.node_key, config.data_dir / "tls", config.host, config.tls_cert, config.tls_key
    )


def node_urls(node: LedgerNode) -> list[str]:
    """Where the registered nodes are: every validator's and every participant's address."""
    urls = [v.address for v in node.registry.validators]
    urls += [p.address for p in node.registry.participants.values() if p.address]
    return urls


async def keep_peer_addresses(node: LedgerNode, guard: ConnectionGuard) -> None:
    """Keep the guard's peer pool on the addresses the register names, as it changes."""
    seen = None
    since = 0.0
    loop = asyncio.get_running_loop()
    while True:
        if node.registry.hash != seen or loop.time() - since > RESOLVE_EVERY_S:
            seen, since = node.registry.hash, loop.time()
            await guard.resolve_peers(node_urls(node))
        await asyncio.sleep(2.0)


async def sweep_logs(repeats: logs.RepeatFilter) -> None:
    """Write the "similar lines suppressed" counts as each window ends, even if nothing follows."""
    while True:
        await asyncio.sleep(repeats.window_s)
        repeats.sweep(time.monotonic())


def inherited_socket(config: NodeConfig) -> socket.socket | None:
    """The listening socket named by KPLEDGER_LISTEN_FD, checked against node.toml, or None.

    The variable is removed from the environment, so that nothing the node starts inherits it.
    """
    raw = os.environ.pop(LISTEN_FD_ENV, None)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise ConfigError(f"{LISTEN_FD_ENV}={raw!r} is not a file descriptor number")
    try:
        sock = socket.socket(fileno=int(raw))
    except OSError as exc:
        raise ConfigError(f"{LISTEN_FD_ENV}={raw}: not an open socket ({exc.strerror})") from exc
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        sock.close()
        raise ConfigError(f"{LISTEN_FD_ENV}={raw}: not a TCP socket")
    host, port = sock.getsockname()[:2]
    try:
        wanted = {info[4][0] for info in socket.getaddrinfo(config.host, None)}
    except OSError:
        wanted = {config.host}
    if port != config.port or host not in wanted:
        sock.close()
        raise ConfigError(
            f"{LISTEN_FD_ENV}={raw} is bound to {host}:{port}, but {config.path} says "
            f"{config.host}:{config.port}"
        )
    return sock


async def serve(
    config: NodeConfig,
    ready: asyncio.Event | None = None,
    repeats: logs.RepeatFilter | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Run the node until SIGINT or SIGTERM, listening on `sock` if given (see LISTEN_FD_ENV),
    else on node.toml's host and port."""
    try:
        secure = tls.genesis_uses_tls(config.genesis())
    except tls.TlsError as exc:
        raise ConfigError(f"{config.genesis_path}: {exc}") from exc
    node = LedgerNode(config)
    try:
        context = listener_context(config, node) if secure else None
    except (tls.TlsError, OSError, ValueError) as exc:
        node.store.close()
        raise ConfigError(f"{config.path}: cannot set up TLS: {exc}") from exc
    guard = connection_guard(config)
    guard.on_refused = lambda reason: node.metrics.connections_refused.labels(reason).inc()
    guard.on_timed_out = lambda phase: node.metrics.connections_timed_out.labels(phase).inc()
    await guard.resolve_peers(node_urls(node))
    app = make_app(node, guard.reserved)
    runner = GuardedRunner(
        app,
        guard,
        tls=context,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=config.keepalive_timeout_s,
        max_line_size=config.max_header_bytes,
        max_field_size=config.max_header_bytes,
        max_headers=config.max_headers,
        lingering_time=min(2.0, config.request_timeout_s),
        shutdown_timeout=SHUTDOWN_GRACE_S,
    )
    await runner.setup()
    site: web.BaseSite
    if sock is not None:
        site = web.SockSite(runner, sock)
    else:
        site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        node.store.close()
        raise SystemExit(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    await node.start()
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(keep_peer_addresses(node, guard))]
    if repeats is not None:
        tasks.append(loop.create_task(sweep_logs(repeats)))
    log.info(
        "node started",
        extra={
            "participant": config.participant,
            "url": f"{'https' if secure else 'http'}://{config.host}:{config.port}",
            "tls": secure,
            "height": node.store.height,
            "chain_id": node.chain_id,
        },
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("node stopping", extra={"height": node.store.height})
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
        await node.stop()
        log.info("node stopped")


def run(config_path: Path | str, passphrase: Passphrase | None = None) -> None:
    config = NodeConfig.load(config_path, passphrase)
    config.open_keys()  # a wrong passphrase or PIN stops here, before the port is taken
    sock = inherited_socket(config)
    repeats = logs.setup(
        config.log_level,
        node=config.participant,
        secrets=config.secrets(),
        repeat_burst=config.log_repeat_burst,
        repeat_window_s=config.log_repeat_window_s,
    )
    try:
        asyncio.run(serve(config, repeats=repeats, sock=sock))
    finally:
        repeats.sweep()
