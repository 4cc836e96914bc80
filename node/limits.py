"""Per-address rate limits on every route family, and the checks every query string gets.

Each route family has a token bucket per client address (node.toml `<family>_rate_per_s` and
`<family>_burst`). The participant's own clients have a budget of their own, so that a flood
from an address they share (a NAT, a proxy, the same host) never locks them out:

- a request carrying a token of the node in force (node.toml's api_token, or one node/tokens.py made);
- a /peer/ request naming a registered node key (X-KP-Node). From a registered node's address
  the bucket is that key's; from any other address all claimed keys share one bucket, so that
  naming many keys buys an attacker nothing. The signature is checked by the route, after.
"""

from __future__ import annotations

import functools
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ledger.errors import MalformedInput
from node.connections import client_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The route families, as node.toml names their limits.
FAMILIES = ("public", "participant", "events", "ops", "explorer", "peer")


class RateLimiter:
    """A token bucket per client, with bounded memory (the least recently seen are dropped)."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: OrderedDict[Any, tuple[float, float]] = OrderedDict()

    def wait(self, client: Any, cost: float = 1.0) -> float:
        """0 if a request from `client` costing `cost` tokens may go now (and count it), else
        seconds until one may."""
        now = time.monotonic()
        tokens, last = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= cost
        self.buckets[client] = (tokens - cost if allowed else tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return 0.0 if allowed else (cost - tokens) / self.rate

    def allow(self, client: Any, cost: float = 1.0) -> bool:
        return self.wait(client, cost) == 0.0


def rate_family(method: str, path: str) -> str:
    """The family whose budget a request spends."""
    if path.startswith(("/v1/public/", "/contexts/", "/verify/")):
        return "public"
    if path.startswith("/peer/"):
        return "peer"
    if path == "/v1/events" and method == "POST":
        return "events"
    if path.startswith("/v1/"):
        return "participant"
    if path == "/explorer" or path.startswith("/explorer/"):
        return "explorer"
    return "ops"  # /healthz, /metrics, and paths that are no route


class _Node(Protocol):
    @property
    def peer_keys(self) -> set[bytes]: ...


def _same_token(expected: str, presented: str) -> bool:
    return hmac.compare_digest(
        presented.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


class RateLimits:
    """The buckets of one node: one limiter per family and one for its own clients."""

    def __init__(
        self,
        config: Any,
        token: str | Callable[[str], bool],
        node: _Node,
        reserved: Callable[[str], bool] | None = None,
        on_limited: Callable[[str], None] | None = None,
    ) -> None:
        self.families = {
            name: RateLimiter(
                getattr(config, f"{name}_rate_per_s"), getattr(config, f"{name}_burst")
            )
            for name in FAMILIES
        }
        self.own = RateLimiter(config.own_rate_per_s, config.own_burst)
        #: Whether a bearer credential is one of the node's tokens in force (node/tokens.py),
        #: or, given a string, that one token.
        if isinstance(token, str):
            self.is_token: Callable[[str], bool] = functools.partial(_same_token, token)
        else:
            self.is_token = token
        self.node = node
        self.reserved = reserved or (lambda address: False)
        self.on_limited = on_limited

    def own_client(self, request: web.Request, address: str) -> Any:
        """The own-budget bucket key of a request from the participant's own clients, or None."""
        header = request.headers.get("Authorization")
        if header:
            scheme, _, credential = header.partition(" ")
            if scheme.lower() == "bearer" and self.is_token(credential.strip()):
                return ("token", address)
        claimed = request.headers.get("X-KP-Node")
        if claimed and request.path.startswith("/peer/"):
            try:
                key = bytes.fromhex(claimed)
            except ValueError:
                return None
            if key in self.node.peer_keys:
                reserved = self.reserved(request.remote or "?")
                return ("node", address, key) if reserved else ("node", address)
        return None

    def wait(self, request: web.Request) -> tuple[str, float]:
        """The family spent and 0, or the family and the seconds to wait before retrying."""
        address = client_key(request.remote or "?")
        own = self.own_client(request, address)
        if own is not None:
            return "own", self.own.wait(own)
        name = rate_family(request.method, request.path)
        return name, self.families[name].wait(address)

    def charge(self, request: web.Request, cost: float) -> float:
        """Spend `cost` more tokens of the bucket this request spent (a batch's further events):
        0 if they were there (and are spent), else seconds until they would be."""
        address = client_key(request.remote or "?")
        own = self.own_client(request, address)
        if own is not None:
            return self.own.wait(own, cost)
        return self.families[rate_family(request.method, request.path)].wait(address, cost)

    def middleware(self) -> Any:
        @web.middleware
        async def rate_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            name, wait = self.wait(request)
            if wait > 0:
                if self.on_limited is not None:
                    self.on_limited(name)
                return web.json_response(
                    {
                        "error": "rate_limited",
                        "message": "too many requests from your address; slow down",
                        "retry_after_s": math.ceil(wait),
                    },
                    status=429,
                    headers={"Retry-After": str(math.ceil(wait))},
                )
            return await handler(request)

        return rate_middleware


@web.middleware
async def query_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A query parameter given with no value, or given twice, is refused (400), on every route.

    No route reads an empty value as anything but "left out", so `?status=` would silently mean
    "any status": the client is told instead. The portal's pages are the exception: a browser
    sends every field of a search form, the ones left blank empty, and blank there means "any".
    """
    seen: set[str] = set()
    blank_means_any = request.path.startswith("/portal/")
    for name, value in request.query.items():
        shown = name if len(name) <= 40 and name.isprintable() else "a parameter"
        if value == "" and not blank_means_any:
            raise MalformedInput(f"'{shown}' is empty: give it a value or leave it out")
        if name in seen:
            raise MalformedInput(f"'{shown}' is given more than once")
        seen.add(name)
    return await handler(request)


def query_int(query: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; out of range is refused, not clamped."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw, 10)
    except ValueError as exc:
        raise MalformedInput(f"'{name}' must be a whole number") from exc
    if not low <= value <= high:
        raise MalformedInput(f"'{name}' must be {low} to {high}")
    return value
