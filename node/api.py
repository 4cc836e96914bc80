"""The node's HTTP surface: participant API, public verification, peer gossip, health and metrics."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ledger.confidential import NotARecipient, SealBroken, open_sealed
from ledger.encoding import decode, encode
from ledger.errors import CertificateNotFound, LedgerError, MalformedInput
from ledger.events import Event, IssueBody
from ledger.proofs import build_certificate_proof
from ledger.state import STATUSES, CertificateRecord
from node import reports
from node.peers import MSGPACK, PeerAuthError, check_request
from node.service import LedgerNode, now_ms
from node.views import certificate_facts_json, history_json, public_certificate_json

log = logging.getLogger("kpledger.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NODE: web.AppKey[LedgerNode] = web.AppKey("node", LedgerNode)


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def family(path: str) -> str:
    if path.startswith("/v1/public/"):
        return "public"
    if path.startswith("/peer/"):
        return "peer"
    if path.startswith("/v1/"):
        return "participant"
    return "ops"


class RateLimiter:
    """A token bucket per client address, for the public routes. Bounded memory."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        tokens, last = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self.buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return allowed


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    node = request.app[NODE]
    try:
        response = await handler(request)
    except LedgerError as exc:
        response = error_response(exc.http_status, exc.code, exc.message)
    except web.HTTPRequestEntityTooLarge:
        response = error_response(413, "body_too_large", "the request body is too large")
    except web.HTTPException as exc:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        response = error_response(exc.status, code, message or exc.reason)
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        response = error_response(500, "internal_error", "the node failed to answer; see its log")
    node.metrics.http.labels(family(request.path), str(response.status)).inc()
    return response


def make_rate_middleware(limiter: RateLimiter) -> Any:
    @web.middleware
    async def rate_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/public/") and not limiter.allow(request.remote or "?"):
            return error_response(
                429, "rate_limited", "too many requests from your address; slow down"
            )
        return await handler(request)

    return rate_middleware


def require_token(request: web.Request) -> None:
    node = request.app[NODE]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), node.config.api_token.encode()
    ):
        raise web.HTTPUnauthorized(text="this route needs the node operator's bearer token")


async def read_body(request: web.Request, *, allow: tuple[str, ...]) -> bytes:
    content_type = request.content_type
    if content_type not in allow:
        raise web.HTTPUnsupportedMediaType(text=f"send {' or '.join(allow)}, not {content_type!r}")
    limit = request.app[NODE].config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


# -- participant API ------------------------------------------------------------------------------
async def post_event(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await read_body(request, allow=("application/json", MSGPACK))
    if request.content_type == MSGPACK:
        event = Event.decode(body)
    else:
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedInput(f"the body is not JSON: {exc}") from exc
        event = Event.from_envelope(envelope)
    status = node.submit(event)
    out: dict[str, Any] = {"event_id": event.event_id.hex(), "status": status.status}
    if status.height is not None:
        out["height"] = status.height
    return json_response(out, status=202)


async def get_event(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        event_id = bytes.fromhex(request.match_info["event_id"])
    except ValueError as exc:
        raise MalformedInput("an event id is 64 hex characters") from exc
    if len(event_id) != 32:
        raise MalformedInput("an event id is 64 hex characters")
    status = node.event_status(event_id)
    if status is None:
        return error_response(404, "event_not_found", "this node has never seen that event")
    out: dict[str, Any] = {"event_id": event_id.hex(), "status": status.status}
    if status.height is not None:
        out["height"] = status.height
    if status.error is not None:
        out["error"] = status.error
        out["message"] = status.message
    return json_response(out)


def _record(node: LedgerNode, number: str) -> CertificateRecord:
    record = node.store.get_certificate(number)
    if record is None:
        raise CertificateNotFound(f"certificate {number} is not on the ledger")
    return record


def full_certificate_json(node: LedgerNode, record: CertificateRecord) -> dict[str, Any]:
    """The whole record as a participant node may show it; the parties only on a party's node."""
    out = certificate_facts_json(record, today=datetime.now(UTC).date())
    out["history"] = history_json(node.store, record)
    issue = node.store.event(record.issue_event_id)
    assert issue is not None and isinstance(issue.event.body, IssueBody)
    sealed = issue.event.body.sealed
    try:
        identities, salt = open_sealed(sealed, record.number, node.participant, node.encryption_key)
        out["exporter"] = identities.exporter.to_json()
        out["importer"] = identities.importer.to_json()
        out["identity_salt"] = salt.hex()
        out["party"] = True
    except NotARecipient:
        out["party"] = False
        out["identities"] = (
            f"{node.participant} is not a party to this certificate: the exporter and importer "
            "are readable only by the exporting and importing authorities"
        )
    except SealBroken as exc:
        out["party"] = True
        out["identities_error"] = exc.message
    return out


async def get_certificate(request: web.Request) -> web.Response:
    require_token(request)
    node = request.app[NODE]
    return json_response(full_certificate_json(node, _record(node, request.match_info["number"])))


async def list_certificates(request: web.Request) -> web.Response:
    require_token(request)
    node = request.app[NODE]
    q = request.query
    status = q.get("status") or None
    if status is not None and status not in STATUSES:
        raise MalformedInput(f"status is one of {', '.join(STATUSES)}")
    for key in ("from", "to"):
        if q.get(key):
            try:
                datetime.strptime(q[key], "%Y-%m-%d")
            except ValueError as exc:
                raise MalformedInput(f"'{key}' must be an ISO date YYYY-MM-DD") from exc
    try:
        limit = min(max(int(q.get("limit", "100")), 1), 1000)
    except ValueError as exc:
        raise MalformedInput("limit must be a whole number") from exc
    records = list(
        node.store.certificates(
            exporting=q.get("exporting") or None,
            importing=q.get("importing") or None,
            status=status,
            date_from=q.get("from") or None,
            date_to=q.get("to") or None,
            cursor=q.get("cursor") or None,
            limit=limit,
        )
    )
    today = datetime.now(UTC).date()
    items = [certificate_facts_json(r, today=today) for r in records]
    out: dict[str, Any] = {"certificates": items, "count": len(items)}
    if len(records) == limit:
        last = records[-1].facts
        out["next_cursor"] = f"{last.issued_on.isoformat()}/{last.number}"
    return json_response(out)


async def participants(request: web.Request) -> web.Response:
    node = request.app[NODE]
    registry = node.registry
    return json_response(
        {
            "participants": [
                {
                    "code": p.code,
                    "name": p.name,
                    "countries": list(p.countries),
                    "active": p.active,
                    "authority_key": p.authority_key.hex(),
                    "encryption_key": p.encryption_key.hex(),
                    "restricted": p.monitoring_key is not None,
                }
                for p in registry.participants.values()
            ],
            "validators": [v.to_json() for v in registry.validators],
            "parameters": registry.parameters.to_json(),
        }
    )


# -- public routes --------------------------------------------------------------------------------
class PublicCache:
    """Answers that depend only on final blocks, keyed by the head they were built on."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int], tuple[int, bytes]] = OrderedDict()

    def get(self, key: tuple[str, int]) -> tuple[int, bytes] | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: tuple[str, int], value: tuple[int, bytes]) -> None:
        self.items[key] = value
        while len(self.items) > self.size:
            self.items.popitem(last=False)


CACHE: web.AppKey[PublicCache] = web.AppKey("public_cache", PublicCache)


async def public_certificate(request: web.Request) -> web.Response:
    node = request.app[NODE]
    number = request.match_info["number"]
    if len(number) > 40:
        raise MalformedInput("not a certificate number")
    key = (number, node.store.height)
    cache = request.app[CACHE]
    cached = cache.get(key)
    if cached is None:
        if node.store.head is None:
            return error_response(404, "certificate_not_found", "the ledger has no final block yet")
        proof = build_certificate_proof(node.store, number)
        record = node.store.get_certificate(number)
        if record is None:
            body: dict[str, Any] = {
                "error": "certificate_not_found",
                "message": f"certificate {number} is not on the ledger",
                "number": number,
                "proof": proof.to_base64(),
            }
            status = 404
        else:
            body = public_certificate_json(node.store, record, today=datetime.now(UTC).date())
            body["proof"] = proof.to_base64()
            status = 200
        cached = (status, json.dumps(body).encode())
        cache.put(key, cached)
    return web.Response(status=cached[0], body=cached[1], content_type="application/json")


def _final_header_json(node: LedgerNode, height: int) -> dict[str, Any]:
    header = node.store.header(height)
    cert = node.store.commit_certificate_bytes(height)
    if header is None or cert is None:
        raise web.HTTPNotFound(text=f"no final block at height {height}")
    commit = decode(cert)
    return {
        "header": header.to_json(),
        "commit_certificate": {
            "height": commit[1],
            "round": commit[2],
            "block_hash": commit[3].hex(),
            "signatures": [{"validator": i, "signature": s.hex()} for i, s in commit[4]],
            "encoded": cert.hex(),
        },
    }


async def public_head(request: web.Request) -> web.Response:
    node = request.app[NODE]
    if node.store.head is None:
        return error_response(404, "no_blocks", "the ledger has no final block yet")
    return json_response(_final_header_json(node, node.store.height))


async def public_block(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        height = int(request.match_info["height"])
    except ValueError as exc:
        raise MalformedInput("a height is a whole number") from exc
    if not 1 <= height <= node.store.height:
        return error_response(404, "block_not_found", f"no final block at height {height}")
    out = _final_header_json(node, height)
    leaves = node.store.event_leaves(height)
    events = []
    for leaf in leaves:
        event_id, event_type, _number = decode(leaf)
        events.append({"event_id": event_id.hex(), "type": event_type})
    out["events"] = events
    return json_response(out)


async def public_genesis(request: web.Request) -> web.Response:
    node = request.app[NODE]
    out = node.genesis.to_json()
    out["hash"] = node.genesis.hash.hex()
    return json_response(out)


# -- peer routes ----------------------------------------------------------------------------------
async def _peer_body(request: web.Request) -> bytes:
    node = request.app[NODE]
    body = await request.read()
    try:
        check_request(
            request.headers,
            node.validator_keys,
            node.chain_id,
            request.method,
            request.path_qs,
            body,
            now_ms(),
        )
    except PeerAuthError as exc:
        raise web.HTTPForbidden(text=str(exc)) from exc
    return body


def _peer_items(body: bytes) -> list[Any]:
    items = decode(body)
    if not isinstance(items, list):
        raise MalformedInput("a peer message is a list")
    return items


async def peer_events(request: web.Request) -> web.Response:
    body = await _peer_body(request)
    request.app[NODE].on_peer_events(_peer_items(body))
    return web.Response(status=204)


async def peer_consensus(request: web.Request) -> web.Response:
    body = await _peer_body(request)
    request.app[NODE].on_peer_consensus(_peer_items(body))
    return web.Response(status=204)


async def peer_status(request: web.Request) -> web.Response:
    await _peer_body(request)
    node = request.app[NODE]
    head = node.store.head
    body = encode([node.store.height, head.hash if head else b""])
    return web.Response(body=body, content_type=MSGPACK)


async def peer_blocks(request: web.Request) -> web.Response:
    await _peer_body(request)
    node = request.app[NODE]
    try:
        start = int(request.query.get("from", "1"))
        limit = min(max(int(request.query.get("limit", "64")), 1), 256)
    except ValueError as exc:
        raise MalformedInput("from and limit are whole numbers") from exc
    return web.Response(body=encode(node.final_blocks(max(start, 1), limit)), content_type=MSGPACK)


# -- operations -----------------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    head = node.store.head
    return json_response(
        {
            "status": "ok",
            "participant": node.participant,
            "chain_id": node.chain_id,
            "height": node.store.height,
            "head_hash": head.hash.hex() if head else None,
            "validator": node.is_validator,
            "mempool": len(node.mempool),
            "round": node.core.round,
            "uptime_s": round(time.time() - node.started_at, 1),
        }
    )


async def metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    node.metrics.mempool.set(len(node.mempool))
    node.metrics.height.set(node.store.height)
    return web.Response(
        body=node.metrics.render(), headers={"Content-Type": node.metrics.content_type}
    )


def build_app(node: LedgerNode) -> web.Application:
    limiter = RateLimiter(node.config.public_rate_per_s, node.config.public_burst)
    app = web.Application(
        middlewares=[errors_middleware, make_rate_middleware(limiter)],
        # Blocks between peers are large; clients' bodies are held to max_body_bytes in read_body.
        client_max_size=64 * 1024 * 1024,
    )
    app[NODE] = node
    app[CACHE] = PublicCache()
    r = app.router
    r.add_post("/v1/events", post_event)
    r.add_get("/v1/events/{event_id}", get_event)
    r.add_get("/v1/certificates", list_certificates)
    r.add_get("/v1/certificates/{number}", get_certificate)
    r.add_get("/v1/participants", participants)
    r.add_get("/v1/public/certificates/{number}", public_certificate)
    r.add_get("/v1/public/head", public_head)
    r.add_get("/v1/public/blocks/{height}", public_block)
    r.add_get("/v1/public/genesis", public_genesis)
    r.add_get("/v1/public/participants", participants)
    r.add_post("/peer/events", peer_events)
    r.add_post("/peer/consensus", peer_consensus)
    r.add_get("/peer/status", peer_status)
    r.add_get("/peer/blocks", peer_blocks)
    reports.register(app, NODE, require_token)
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    return app
