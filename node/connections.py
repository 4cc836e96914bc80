"""Connection hygiene for the node's HTTP server: caps per address and in all, and deadlines.

aiohttp's server alone keeps a connection that never sends a whole request header for its
keep-alive timeout (75 s by default), one whose body never ends for ever, and takes every
connection the kernel hands it until the process runs out of file descriptors. Here:

- a new connection must send a complete request header within `header_timeout_s`, a kept-alive
  one its next header within `keepalive_timeout_s`, and each request must be read, handled and
  answered within `request_timeout_s`; past a deadline the connection is closed (partial data
  does not restart the clock, so a header sent a byte at a time gains nothing);
- at most `max_connections_per_address` connections from one address and `max_connections` in
  all; beyond, a new connection gets a JSON 503 and is closed at once;
- connections from the registered nodes' addresses (and `trusted_addresses`) count in a pool of
  their own (`peer_connections`), so that a flood from elsewhere never locks the peers out;
- a request aiohttp cannot parse gets a JSON 400 that names the kind of fault and echoes nothing
  of the request (a malformed Authorization header would otherwise be logged and echoed whole).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import resource
import socket
import ssl
from asyncio import sslproto
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("kpledger.connections")

#: File descriptors kept for everything but inbound connections: the store's LevelDB files,
#: outbound connections to peers, logs. Inbound caps are lowered to leave these free.
FD_RESERVE = 256


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 15.0
    request_timeout_s: float = 60.0
    max_connections: int = 1000
    max_connections_per_address: int = 32
    peer_connections: int = 512

    @classmethod
    def from_config(cls, config: Any) -> ConnectionLimits:
        return cls(
            header_timeout_s=config.header_timeout_s,
            keepalive_timeout_s=config.keepalive_timeout_s,
            request_timeout_s=config.request_timeout_s,
            max_connections=config.max_connections,
            max_connections_per_address=config.max_connections_per_address,
            peer_connections=config.peer_connections,
        )

    def within_fd_limit(self, fd_limit: int) -> ConnectionLimits:
        """These limits, lowered if need be so that inbound connections leave FD_RESERVE free."""
        budget = max(fd_limit - FD_RESERVE, 2)
        if self.max_connections + self.peer_connections <= budget:
            return self
        peers = max(min(self.peer_connections, budget // 3), 1)
        clients = max(min(self.max_connections, budget - peers), 1)
        return ConnectionLimits(
            self.header_timeout_s,
            self.keepalive_timeout_s,
            self.request_timeout_s,
            clients,
            min(self.max_connections_per_address, clients),
            peers,
        )


def raise_fd_limit(ceiling: int = 1 << 20) -> int:
    """Raise the soft open-file limit to the hard one (at most `ceiling`); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return ceiling if soft == resource.RLIM_INFINITY else soft


def client_key(address: str) -> str:
    """Whom a connection counts against: the IPv4 address, or the /64 of an IPv6 one.

    One IPv6 host commonly holds a whole /64, so caps and rate limits per single IPv6 address
    would give it 2^64 budgets. An IPv4-mapped IPv6 address counts as its IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _refusal(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": code, "message": message}).encode()
    reason = {503: "Service Unavailable"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    )
    return head.encode("ascii") + body


class ConnectionGuard:
    """Counts the open connections by address and decides whether a new one is taken."""

    def __init__(self, limits: ConnectionLimits, trusted: Iterable[str] = ()) -> None:
        self.limits = limits
        self.trusted = [ipaddress.ip_network(t, strict=False) for t in trusted]
        self.peer_addresses: frozenset[str] = frozenset()
        self.by_address: Counter[str] = Counter()
        self.clients = 0  # open connections outside the peer pool
        self.peers = 0  # open connections in the peer pool
        self.refused: Counter[str] = Counter()
        self.timed_out: Counter[str] = Counter()
        self.on_refused: Callable[[str], None] | None = None
        self.on_timed_out: Callable[[str], None] | None = None

    def reserved(self, address: str) -> bool:
        """A registered node's address, or one the operator trusts: the peer pool."""
        if address in self.peer_addresses:
            return True
        if not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def admit(self, address: str) -> str | None:
        """Take a connection from `address` (None), or say why not (a machine code)."""
        reserved = self.reserved(address)
        address = client_key(address)
        if reserved:
            if self.peers >= self.limits.peer_connections:
                return self._refuse("peer_connections")
            self.peers += 1
        elif self.by_address[address] >= self.limits.max_connections_per_address:
            return self._refuse("per_address")
        elif self.clients >= self.limits.max_connections:
            return self._refuse("max_connections")
        else:
            self.clients += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str, reserved: bool) -> None:
        address = client_key(address)
        if reserved:
            self.peers -= 1
        else:
            self.clients -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def _refuse(self, reason: str) -> str:
        self.refused[reason] += 1
        if self.on_refused is not None:
            self.on_refused(reason)
        return reason

    def note_timeout(self, phase: str) -> None:
        self.timed_out[phase] += 1
        if self.on_timed_out is not None:
            self.on_timed_out(phase)

    async def resolve_peers(self, urls: Iterable[str]) -> None:
        """The addresses the registered nodes' URLs name (host names resolved), as the pool's."""
        loop = asyncio.get_running_loop()
        found: set[str] = set()
        for url in urls:
            host = urlsplit(url if "//" in url else "//" + url).hostname
            if not host:
                continue
            try:
                found.add(str(ipaddress.ip_address(host)))
                continue
            except ValueError:
                pass
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                log.warning("cannot resolve a peer's host", extra={"host": host, "error": str(exc)})
                continue
            found.update(str(info[4][0]) for info in infos)
        # An IPv4 peer may connect as an IPv4-mapped IPv6 address on a dual-stack socket.
        found.update(f"::ffff:{a}" for a in list(found) if ":" not in a)
        self.peer_addresses = frozenset(found)


_PARSE_FAULTS: tuple[tuple[type[BaseException], str], ...] = (
    (http_exceptions.LineTooLong, "a header or the request line is too long"),
    (http_exceptions.InvalidHeader, "a header is malformed"),
    (http_exceptions.BadHttpMethod, "the request method is malformed"),
    (http_exceptions.BadStatusLine, "the request line is malformed"),
    (http_exceptions.InvalidURLError, "the request target is malformed"),
    (http_exceptions.PayloadEncodingError, "the request body's encoding is malformed"),
    (http_exceptions.BadHttpMessage, "the request is malformed"),
)


def parse_fault(exc: BaseException | None) -> str:
    """What was wrong with a request aiohttp could not parse, without a byte of the request."""
    for kind, text in _PARSE_FAULTS:
        if isinstance(exc, kind):
            return text
    return "the request is malformed"


class GuardedHandler(RequestHandler):
    """aiohttp's per-connection protocol, with the guard's caps and deadlines."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._address = "?"
        self._admitted = False
        self._reserved = False
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = "header"
        #: Admitted already, before its TLS handshake, by the GuardedTls around it.
        self.preadmitted: tuple[str, bool] | None = None

    # -- the connection's life --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.preadmitted is not None:
            self._admitted = True
            self._address, self._reserved = self.preadmitted
            super().connection_made(transport)
            self._arm("header", self._guard.limits.header_timeout_s)
            return
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        refused = self._guard.admit(address)
        if refused is not None:
            log.warning(
                "connection refused: too many connections",
                extra={"client": address, "reason": refused},
            )
            message = (
                "too many connections from your address; close some and retry"
                if refused == "per_address"
                else "the node has too many connections; retry shortly"
            )
            write = getattr(transport, "write", None)
            if write is not None:
                write(_refusal(503, "too_many_connections", message))
            transport.close()
            return
        self._admitted = True
        self._address = address
        self._reserved = self._guard.reserved(address)
        super().connection_made(transport)
        self._arm("header", self._guard.limits.header_timeout_s)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._disarm()
        if self.preadmitted is None:  # else the GuardedTls around it releases it
            self._guard.release(self._address, self._reserved)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            super().data_received(data)

    # -- deadlines --------------------------------------------------------------------------
    def request_started(self) -> None:
        """A complete request header arrived: its body, handling and answer have a deadline."""
        self._arm("request", self._guard.limits.request_timeout_s)

    def stream_started(self) -> None:
        """The answer is a stream (node/notify/stream.py): no request deadline, as its writes
        have their own; the keep-alive deadline returns when it ends."""
        self._disarm()
        self._phase = "stream"

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            if self._admitted:
                self._arm("keepalive", self._guard.limits.keepalive_timeout_s)

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._deadline = self._loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self._admitted:
            return
        self._guard.note_timeout(self._phase)
        log.info(
            "connection closed: deadline passed",
            extra={"client": self._address, "phase": self._phase},
        )
        transport = self.transport
        self.force_close()
        if transport is not None:
            transport.abort()  # a client that does not read must not hold it open either

    # -- requests aiohttp cannot parse ------------------------------------------------------
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was begun already; the connection is dropped")
        if status == 500:
            log.error("unexpected error", exc_info=exc, extra={"client": self._address})
            code, text = "internal_error", "the node failed to answer; see its log"
        elif status == 504:
            code, text = "timeout", "the node did not answer in time"
        else:
            log.info(
                "malformed request refused",
                extra={"client": self._address, "fault": type(exc).__name__ if exc else None},
            )
            code, text = "malformed_request", f"the request could not be parsed: {parse_fault(exc)}"
        body = json.dumps({"error": code, "message": text}).encode()
        resp = web.Response(status=status, body=body, content_type="application/json")
        resp.force_close()
        return resp


class GuardedTls(sslproto.SSLProtocol):
    """TLS around a GuardedHandler, admitted by the guard before the handshake: a connection
    over the caps is closed at once (there is no way to say why before TLS), and one that does
    not finish its handshake within the header deadline is closed then, so that connections
    stuck in handshakes count in the caps and hold no file for long (docs/security.md)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handler: GuardedHandler,
        context: ssl.SSLContext,
        guard: ConnectionGuard,
    ) -> None:
        # (typeshed wants a waiter future and whole seconds; asyncio takes None and floats)
        super().__init__(
            loop,
            handler,
            context,
            None,  # type: ignore[arg-type]
            server_side=True,
            ssl_handshake_timeout=guard.limits.header_timeout_s,  # type: ignore[arg-type]
            ssl_shutdown_timeout=guard.limits.header_timeout_s,
        )
        self._handler = handler
        self._guard = guard
        self._admission: tuple[str, bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        refused = self._guard.admit(address)
        if refused is not None:
            log.warning(
                "connection refused: too many connections",
                extra={"client": address, "reason": refused},
            )
            transport.close()
            return
        self._admission = (address, self._guard.reserved(address))
        self._handler.preadmitted = self._admission
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._admission is None:
            return
        address, reserved = self._admission
        self._admission = None
        self._guard.release(address, reserved)
        super().connection_lost(exc)


class GuardedServer(web.Server):
    """aiohttp's Server, making GuardedHandler protocols and telling them when a header is in."""

    def __init__(
        self, plain: web.Server, guard: ConnectionGuard, tls: ssl.SSLContext | None = None
    ) -> None:
        factory = plain.request_factory

        def request_factory(
            message: Any, payload: Any, protocol: Any, writer: Any, task: Any
        ) -> web.BaseRequest:
            if isinstance(protocol, GuardedHandler):
                protocol.request_started()
            return factory(message, payload, protocol, writer, task)

        super().__init__(
            plain.request_handler,
            request_factory=request_factory,
            handler_cancellation=plain.handler_cancellation,
            # The keyword arguments aiohttp's AppRunner gave its own Server (timeouts, sizes,
            # the access logger): the same, for the same protocol.
            **plain._kwargs,
        )
        self.guard = guard
        self.tls = tls

    def __call__(self) -> Any:
        handler = GuardedHandler(self, self.guard, loop=self._loop, **self._kwargs)
        if self.tls is None:
            return handler
        return GuardedTls(self._loop, handler, self.tls, self.guard)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer (speaking TLS with `tls`: give the sites no
    ssl_context of their own, the server wraps each connection itself)."""

    def __init__(
        self,
        app: web.Application,
        guard: ConnectionGuard,
        tls: ssl.SSLContext | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard
        self.tls = tls

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self.guard, self.tls)
