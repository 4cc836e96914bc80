"""The node's application: every family's routes, the middlewares, and the one place where
errors become HTTP answers and the operator's token is checked."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from ledger.errors import LedgerError, StoreCorrupt, TokenRefused, TokenRequired
from node.http import (
    admin,
    contexts,
    explorer,
    governance,
    ops,
    participant,
    peer,
    portal,
    public,
    reports,
    stream,
    users,
    verify,
    webhooks,
)
from node.http.appkeys import (
    ACCOUNTS,
    ACTIVITY,
    BLOCKS,
    CACHE,
    LIMITS,
    NODE,
    NOTIFICATIONS,
    PEER_GATE,
    PRINCIPAL,
    SESSIONS,
    TOKENS,
    VERIFY_CACHE,
)
from node.http.caches import BlockCache, PublicCache, VerifyCache
from node.http.httpcache import http_cache_middleware
from node.http.responses import SCOPE_NEEDED, Handler, error_response
from node.limits import RateLimits, query_middleware
from node.notify.hub import Notifications
from node.peers import PeerGate
from node.portal.accounts import AccountBook
from node.portal.activity import ActivityLog
from node.portal.sessions import SessionBook
from node.service import LedgerNode, now_ms
from node.tokens import READ, Principal, TokenBook

log = logging.getLogger("kpledger.api")


#: Machine codes of the errors aiohttp raises (the ledger's own errors carry theirs).
HTTP_ERROR_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    415: "unsupported_media_type",
}


def family(path: str) -> str:
    if path.startswith("/v1/public/"):
        return "public"
    if path.startswith("/peer/"):
        return "peer"
    if path.startswith("/v1/"):
        return "participant"
    return "ops"


#: Routes any web page may read across origins (SPEC 8: a verifier hosted anywhere, or opened
#: from disk, checks answers in the browser). They hold nothing confidential and need no token.
CROSS_ORIGIN_READS = ("/v1/public/", "/contexts/")


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Access-Control-Allow-Origin: * on the public routes, refusals included (no credentials)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith(CROSS_ORIGIN_READS):
            exc.headers["Access-Control-Allow-Origin"] = "*"
        raise
    if request.path.startswith(CROSS_ORIGIN_READS):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


#: What an observer serves (docs/operations.md, "Observers"): the public routes, the verify
#: page and its contexts, health and metrics. No participant API, no portal, no peer route.
OBSERVER_PATHS = ("/v1/public/", "/verify/", "/contexts/")
OBSERVER_ROUTES = ("/healthz", "/metrics")


@web.middleware
async def observer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On an observer, 404 for every route that is not public (some families mix the two)."""
    if request.path.startswith(OBSERVER_PATHS) or request.path in OBSERVER_ROUTES:
        return await handler(request)
    return error_response(
        404,
        "not_found",
        "this node is an observer: it serves the public routes (/v1/public/...), /verify, "
        "/healthz and /metrics only",
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    node = request.app[NODE]
    try:
        response = await handler(request)
    except LedgerError as exc:
        extra = getattr(exc, "details", None) or {}
        if isinstance(exc, StoreCorrupt):
            node.health.store_corrupt(exc.message)
        response = error_response(exc.http_status, exc.code, exc.message, **extra)
        if isinstance(exc, TokenRequired | TokenRefused):
            challenge = 'Bearer realm="kpledger"'
            if isinstance(exc, TokenRefused):
                challenge += ', error="invalid_token"'
            response.headers["WWW-Authenticate"] = challenge
        if family(request.path) == "peer" and not request.content.is_eof():
            await _close_after(request, response)
    except web.HTTPRequestEntityTooLarge:
        response = error_response(413, "body_too_large", "the request body is too large")
    except web.HTTPException as exc:
        code = HTTP_ERROR_CODES.get(exc.status, "http_error")
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        response = error_response(exc.status, code, message or exc.reason)
        if isinstance(exc, web.HTTPMethodNotAllowed):
            # RFC 9110 15.5.6: a 405 names, in Allow, the methods the resource does answer.
            allowed = sorted(exc.allowed_methods)
            response = error_response(
                405, code, f"{exc.method} is not answered here; use {' or '.join(allowed)}"
            )
            response.headers["Allow"] = ", ".join(allowed)
    except (ConnectionError, RuntimeError) as exc:
        if not _gone(request):
            log.exception("unexpected error", extra={"path": request.path})
            response = error_response(
                500, "internal_error", "the node failed to answer; see its log"
            )
        else:
            # The client closed the connection (or a deadline closed it) while its request was
            # being read: nobody is left to answer, and it is no fault of the node's. aiohttp
            # says so with RuntimeError("Connection closed.") or a connection reset.
            log.info(
                "request cut off: the connection closed before it was read",
                extra={"path": request.path, "fault": type(exc).__name__},
            )
            response = error_response(400, "connection_closed", "the connection closed")
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        response = error_response(500, "internal_error", "the node failed to answer; see its log")
    node.metrics.http.labels(family(request.path), str(response.status)).inc()
    return response


def _gone(request: web.Request) -> bool:
    """Whether the request's connection is closed or closing."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def _close_after(request: web.Request, response: web.Response) -> None:
    """Send a peer's refusal and close the connection, so that the rest of a body refused before
    it was read (a bad signature, over the route's bound) is never read, nor lingered over."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()


def require_token(request: web.Request, needed: str = READ) -> Principal:
    """The request's bearer token, of scope `needed` or more: missing, wrong, revoked and
    expired are told apart (401 each), too small a scope is 403. Logs name the token, never
    show it."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header.strip():
        raise TokenRequired(
            "this route needs the node operator's bearer token (Authorization: Bearer <api_token "
            "from node.toml>)"
        )
    if scheme.lower() != "bearer":
        raise TokenRequired(
            f"this route needs a bearer token (Authorization: Bearer ...), not {scheme[:20]!r}"
        )
    try:
        principal = request.app[TOKENS].check(token.strip())
    except TokenRefused as exc:
        # The reason names a revoked or expired token by its name; the token itself never.
        log.warning(
            "token refused",
            extra={"path": request.path, "reason": exc.code, "detail": exc.message},
        )
        raise
    TokenBook.require(principal, needed)
    request[PRINCIPAL] = principal
    return principal


@web.middleware
async def token_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The token, before a route marked operator_only or admin_only runs (and before it reads)."""
    needed = getattr(request.match_info.handler, SCOPE_NEEDED, None)
    if needed is not None:
        require_token(request, needed)
    return await handler(request)


def make_app(node: LedgerNode, reserved: Callable[[str], bool] | None = None) -> web.Application:
    """The node's application; `reserved` says which addresses are registered nodes' (limits)."""
    tokens = TokenBook(node.store, node.config.api_token, now_ms)
    limits = RateLimits(
        node.config,
        tokens.is_valid,
        node,
        reserved,
        on_limited=lambda name: node.metrics.rate_limited.labels(name).inc(),
    )
    middlewares = [
        cors_middleware,
        http_cache_middleware,
        errors_middleware,
        limits.middleware(),
        query_middleware,
        token_middleware,
    ]
    if node.observer:
        middlewares.insert(3, observer_middleware)  # after errors, before the limits count it
    app = web.Application(
        middlewares=middlewares,
        # Clients' bodies are held to max_body_bytes (read_body); peers' to their route's bound,
        # after their signature (peer_route). Nothing reads more than this.
        client_max_size=node.config.max_body_bytes,
    )
    app[NODE] = node
    app[TOKENS] = tokens
    app[LIMITS] = limits
    app[PEER_GATE] = PeerGate(
        node.chain_id, node.node_key.public_bytes, node.config.peer_replay_entries
    )
    app[CACHE] = PublicCache()
    app[BLOCKS] = BlockCache(node.store)
    app[VERIFY_CACHE] = VerifyCache()
    notifications = Notifications(node)
    notifications.attach(app)
    app[NOTIFICATIONS] = notifications
    # Accounts and the activity log exist whether or not the portal is on, so that an operator
    # can make the first accounts before turning it on (docs/portal.md).
    app[ACCOUNTS] = AccountBook(node.store, now_ms)
    app[ACTIVITY] = ActivityLog(node.store, now_ms)
    app[SESSIONS] = SessionBook(now_ms, int(node.config.portal_idle_minutes * 60_000))
    if node.observer:
        # The families holding public routes (observer_middleware keeps their others closed).
        for routes in (public, governance, reports, explorer, ops, contexts, verify, stream):
            routes.add_routes(app)
        return app
    # The order routes were added in before the split into families (none overlap).
    participant.add_routes(app)
    public.add_routes(app)
    governance.add_routes(app)
    peer.add_routes(app)
    reports.add_routes(app)
    explorer.add_routes(app)
    ops.add_routes(app)
    contexts.add_routes(app)
    admin.add_routes(app)
    verify.add_routes(app)
    stream.add_routes(app)
    webhooks.add_routes(app)
    users.add_routes(app)
    if node.config.portal:
        portal.add_routes(app)
    return app
