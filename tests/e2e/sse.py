"""A Server-Sent Events client for tests: one socket, a reader thread, messages in a queue."""

from __future__ import annotations

import json
import queue
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from node.tls import NODE_SNI, check_pinned, pinned_context
from tests.e2e.harness import harness_trust


def _tls(sock: socket.socket, url: str, context: ssl.SSLContext | None) -> ssl.SSLSocket:
    """TLS to a test node: its node key pinned as the harness pins it (or `context`'s CAs)."""
    if context is not None:
        return context.wrap_socket(sock, server_hostname=urlsplit(url).hostname)
    trust = harness_trust()
    tls = pinned_context().wrap_socket(sock, server_hostname=NODE_SNI)
    check_pinned(tls, trust.pins_for(url), trust.source)
    return tls


@dataclass(frozen=True)
class Message:
    """One SSE message as a client sees it: `comment` for a comment line alone."""

    id: str | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None
    at: float = field(default=0.0, compare=False)


class SSEClient:
    """GET a stream and read it in a thread (HTTP/1.0: the body is the stream, no chunking)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        last_event_id: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        raw = socket.create_connection((host, port), timeout=10)
        raw.settimeout(None)
        self.sock: socket.socket = raw
        if parts.scheme == "https":
            self.sock = _tls(raw, url, context)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {path} HTTP/1.0", f"Host: {host}:{port}", "Accept: text/event-stream"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.messages: queue.Queue[Message | None] = queue.Queue()
        self.last_id: str | None = last_event_id
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self.thread.start()
        else:
            self.body = self.file.read().decode()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        data: list[str] = []
        try:
            for raw in self.file:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if fields or data:
                        payload = json.loads("\n".join(data)) if data else None
                        message = Message(
                            fields.get("id"), fields.get("event"), payload, at=time.monotonic()
                        )
                        self.messages.put(message)
                    fields, data = {}, []
                    continue
                if line.startswith(":"):
                    self.messages.put(Message(comment=line[1:].strip(), at=time.monotonic()))
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value
        except (OSError, ValueError):
            pass
        self.messages.put(None)  # the stream ended

    def next(self, timeout: float) -> Message | None:
        """The next message (None: the stream ended); AssertionError past `timeout`."""
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no stream message within {timeout:.0f} s") from None
        if message is not None and message.id is not None:
            self.last_id = message.id
        return message

    def events(self, count: int, timeout: float) -> list[Message]:
        """The next `count` event messages (comments and id-only messages are read past)."""
        deadline = time.monotonic() + timeout
        out: list[Message] = []
        while len(out) < count:
            message = self.next(max(0.01, deadline - time.monotonic()))
            assert message is not None, f"the stream ended after {len(out)} of {count} events"
            if message.event is not None:
                out.append(message)
        return out

    def until_idle(self, timeout: float) -> list[Message]:
        """Every event message until the next heartbeat comment (the server is caught up)."""
        deadline = time.monotonic() + timeout
        out: list[Message] = []
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            assert message is not None, "the stream ended"
            if message.comment is not None:
                return out
            if message.event is not None:
                out.append(message)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.thread.is_alive():
            self.thread.join(5)


def slow_clients(
    url: str,
    paths: list[str],
    token: str | None = None,
    context: ssl.SSLContext | None = None,
) -> list[socket.socket]:
    """Stream clients that ask and then read nothing (a receive buffer of 4 KiB): the node
    can send each only what fits in its own bounded buffers before it has to wait."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    out: list[socket.socket] = []
    try:
        for path in paths:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect((host, port))
            if parts.scheme == "https":
                sock = _tls(sock, url, context)
            lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
            if token and not path.startswith("/v1/public/"):
                lines.append(f"Authorization: Bearer {token}")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            out.append(sock)
    except BaseException:
        for sock in out:
            sock.close()
        raise
    return out


def rss_bytes(pid: int) -> int:
    """A process's resident memory (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
