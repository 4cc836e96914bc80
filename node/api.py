"""The node's HTTP surface: participant API, public verification, peer gossip, health and metrics."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import msgpack
from aiohttp import web

from ledger.certificate import normalise_number
from ledger.confidential import NotARecipient, SealBroken, open_sealed
from ledger.encoding import decode, encode
from ledger.errors import (
    BodyTooLarge,
    CertificateNotFound,
    InvalidProof,
    LedgerError,
    MalformedInput,
    StoreCorrupt,
    TokenRefused,
    TokenRequired,
)
from ledger.events import Event, IssueBody
from ledger.merkle import leaf_hash, node_hash
from ledger.proofs import CertificateProof, FinalHeader, StoreBlocks, build_certificate_proof
from ledger.state import STATUSES, CertificateRecord
from ledger.store import Store
from node import api_governance, explorer_web, reports
from node.limits import RateLimits, query_int, query_middleware
from node.peers import (
    MSGPACK,
    SYNC_PAGE_BLOCKS,
    PeerClockStale,
    PeerGate,
    consensus_body_bound,
    events_body_bound,
)
from node.service import LedgerNode, now_ms
from node.views import certificate_facts_json, history_json, public_certificate_json

log = logging.getLogger("kpledger.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NODE: web.AppKey[LedgerNode] = web.AppKey("node", LedgerNode)


#: Machine codes of the errors aiohttp raises (the ledger's own errors carry theirs).
HTTP_ERROR_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    415: "unsupported_media_type",
}


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
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        response = error_response(500, "internal_error", "the node failed to answer; see its log")
    node.metrics.http.labels(family(request.path), str(response.status)).inc()
    return response


def require_token(request: web.Request) -> None:
    """The node operator's bearer token: missing and wrong are told apart (401 either way)."""
    node = request.app[NODE]
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
    if not hmac.compare_digest(token.strip().encode(), node.config.api_token.encode()):
        raise TokenRefused("token refused: it is not this node's api_token")


async def read_body(request: web.Request, *, allow: tuple[str, ...]) -> bytes:
    content_type = request.content_type
    if content_type not in allow:
        raise web.HTTPUnsupportedMediaType(text=f"send {' or '.join(allow)}, not {content_type!r}")
    limit = request.app[NODE].config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    # read(n) answers what has arrived, up to n bytes: a body sent in several segments needs
    # several reads (one read alone took the first segment for the whole body, now and then).
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
    return b"".join(chunks)


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
        except RecursionError as exc:  # json.loads of '[[[[...' a hundred thousand deep
            raise MalformedInput("the body is not JSON: nested too deeply") from exc
        event = Event.from_envelope(envelope)
    status = node.submit(event)
    if status.status == "pending":
        # 202 is a promise: the event is in this node's store before the answer (docs/api).
        await node.durable(event.event_id)
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
    record = node.store.served_certificate(number, node.reader)
    if record is None:
        raise CertificateNotFound(f"certificate {number} is not on the ledger")
    return record


def full_certificate_json(node: LedgerNode, record: CertificateRecord) -> dict[str, Any]:
    """The whole record as a participant node may show it; the parties only on a party's node."""
    out = certificate_facts_json(record, today=datetime.now(UTC).date())
    out["history"] = history_json(node.store, record)
    issue = node.store.event(record.issue_event_id)
    if issue is None or not isinstance(issue.event.body, IssueBody):
        raise StoreCorrupt(f"the store lacks the issue event of certificate {record.number}")
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
    number = normalise_number(request.match_info["number"])
    return json_response(full_certificate_json(node, _record(node, number)))


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
    limit = query_int(q, "limit", 100, 1, 1000)
    for key in ("exporting", "importing"):
        if key in q and not _PARTICIPANT_CODE.fullmatch(q[key]):
            raise MalformedInput(f"'{key}' is a participant code: two capital letters, or EU")
    records = list(
        node.store.certificates(
            exporting=q.get("exporting") or None,
            importing=q.get("importing") or None,
            status=status,
            date_from=q.get("from") or None,
            date_to=q.get("to") or None,
            cursor=q.get("cursor") or None,
            limit=limit,
            nodes=node.reader,
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
    """The register in force (keys, status, restrictions, validators) and its history by height."""
    return json_response(api_governance.register_json(request.app[NODE]))


# -- public routes --------------------------------------------------------------------------------
class PublicCache:
    """Answers that depend only on final blocks, keyed by the head they were built on."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int], PublicAnswer] = OrderedDict()

    def get(self, key: tuple[str, int]) -> PublicAnswer | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: tuple[str, int], value: PublicAnswer) -> None:
        self.items[key] = value
        while len(self.items) > self.size:
            self.items.popitem(last=False)


@dataclass(frozen=True)
class PublicAnswer:
    """A serialised public answer: status, JSON body, and the certificate's digest (hex) if any."""

    status: int
    body: bytes
    digest: str | None

    def with_digest_check(self, claimed: str) -> bytes:
        """The body with "digest_matches" first, spliced in without parsing the JSON again."""
        matches = b"true" if claimed == self.digest else b"false"
        return b'{"digest_matches": ' + matches + b", " + self.body[1:]


class _FinalBlock:
    """One final block as proofs need it: its final header and its events' Merkle tree."""

    def __init__(self, final: FinalHeader, leaves: list[bytes]) -> None:
        self.final = final
        self.leaves = leaves
        self._ids: bytes | None = None
        self._levels: list[bytes] | None = None

    def index_of(self, event_id: bytes) -> int:
        if self._ids is None:
            self._ids = b"".join(_leaf_event_id(leaf) for leaf in self.leaves)
        start = 0
        while (found := self._ids.find(event_id, start)) >= 0:
            if found % 32 == 0:
                return found // 32
            start = found + 1
        raise InvalidProof(f"block {self.final.header.height} holds no event {event_id.hex()}")

    def path(self, index: int) -> tuple[bytes, ...]:
        """PATH(index) of RFC 9162 2.1.3.1, as ledger.merkle.inclusion_proof computes it."""
        if self._levels is None:
            # Each level's hashes concatenated; pairing left to right and lifting a lone last
            # node unchanged builds the RFC's tree (as ledger.merkle does).
            level = [leaf_hash(leaf) for leaf in self.leaves]
            self._levels = [b"".join(level)]
            while len(level) > 1:
                parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    parents.append(level[-1])
                level = parents
                self._levels.append(b"".join(level))
        out = []
        for level_bytes in self._levels[:-1]:
            sibling = index ^ 1
            if sibling * 32 < len(level_bytes):
                out.append(level_bytes[sibling * 32 : sibling * 32 + 32])
            index >>= 1
        return tuple(out)


def _leaf_event_id(leaf: bytes) -> bytes:
    # A leaf is encode([event_id: bin 32, type, number]): 0x93 0xc4 0x20 then the id.
    if leaf[:3] == b"\x93\xc4\x20":
        return leaf[3:35]
    event_id: bytes = decode(leaf)[0]
    return event_id


class BlockCache:
    """Final headers and Merkle trees of final blocks, so a public proof is not rebuilt from scratch.

    Recomputing one inclusion path hashes the whole block (4,000 hashes for 2,000 events) and
    reading a header decodes the block's leaves; a final block never changes, so both are kept.
    """

    def __init__(self, store: Store, size: int = 256) -> None:
        self.store = store
        self.size = size
        self.blocks: OrderedDict[int, _FinalBlock] = OrderedDict()

    def _block(self, height: int) -> _FinalBlock:
        found = self.blocks.get(height)
        if found is not None:
            self.blocks.move_to_end(height)
            return found
        final = StoreBlocks(self.store).final_header(height)
        found = _FinalBlock(final, self.store.event_leaves(height))
        if len(found.leaves) != final.header.event_count:
            raise InvalidProof(f"the store holds block {height}'s events incompletely")
        self.blocks[height] = found
        while len(self.blocks) > self.size:
            self.blocks.popitem(last=False)
        return found

    def final_header(self, height: int) -> FinalHeader:
        return self._block(height).final

    def inclusion(self, height: int, event_id: bytes) -> tuple[int, tuple[bytes, ...]]:
        block = self._block(height)
        index = block.index_of(event_id)
        return index, block.path(index)


CACHE: web.AppKey[PublicCache] = web.AppKey("public_cache", PublicCache)
BLOCKS: web.AppKey[BlockCache] = web.AppKey("block_cache", BlockCache)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_PARTICIPANT_CODE = re.compile(r"[A-Z]{2}")


def proof_base64(proof: CertificateProof) -> str:
    """proof.to_base64(), for the hot path: the same bytes, packed without re-checking each value.

    ledger.encoding.encode checks every value before it packs; a served proof is made only of
    values read from final blocks, which were checked when they were stored.
    """
    packed: bytes = msgpack.packb(proof.to_wire(), use_bin_type=True)
    return base64.b64encode(packed).decode("ascii")


class _AnswerReader:
    """The store as one public answer reads it: tree nodes from the node's cache, the record once.

    State tree nodes are named by their hash, so a cached one is never stale; the proof and the
    public view both need the certificate's record, which is decoded once.
    """

    def __init__(self, node: LedgerNode) -> None:
        self._store = node.store
        self._nodes = node.reader
        self.get_node = node.reader.get_node
        self._records: dict[str, CertificateRecord | None] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_certificate(self, number: str) -> CertificateRecord | None:
        if number not in self._records:
            self._records[number] = self._store.served_certificate(number, self._nodes)
        return self._records[number]


def _public_answer(node: LedgerNode, blocks: BlockCache, number: str) -> PublicAnswer:
    reader = _AnswerReader(node)
    proof = build_certificate_proof(cast(Store, reader), number, blocks)
    record = reader.get_certificate(number)
    if record is None:
        body: dict[str, Any] = {
            "error": "certificate_not_found",
            "message": f"certificate {number} is not on the ledger",
            "number": number,
            "proof": proof_base64(proof),
        }
        return PublicAnswer(404, json.dumps(body).encode(), None)
    body = public_certificate_json(node.store, record, today=datetime.now(UTC).date())
    body["proof"] = proof_base64(proof)
    return PublicAnswer(200, json.dumps(body).encode(), record.digest.hex())


async def public_certificate(request: web.Request) -> web.Response:
    """The public view and proof of one number; `?digest=` (the QR code's) says if it matches."""
    node = request.app[NODE]
    number = normalise_number(request.match_info["number"])
    claimed = request.query.get("digest")
    if claimed is not None and not _HEX64.fullmatch(claimed):
        raise MalformedInput("digest must be 64 hex characters")
    if node.store.head is None:
        return error_response(404, "certificate_not_found", "the ledger has no final block yet")
    key = (number, node.store.height)
    cache = request.app[CACHE]
    answer = cache.get(key)
    if answer is None:
        answer = _public_answer(node, request.app[BLOCKS], number)
        cache.put(key, answer)
    body = answer.body if claimed is None else answer.with_digest_check(claimed.lower())
    return web.Response(status=answer.status, body=body, content_type="application/json")


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
        event_id, event_type, number = decode(leaf)
        events.append({"event_id": event_id.hex(), "type": event_type, "number": number})
    out["events"] = events
    return json_response(out)


async def public_genesis(request: web.Request) -> web.Response:
    node = request.app[NODE]
    out = node.genesis.to_json()
    out["hash"] = node.genesis.hash.hex()
    return json_response(out)


# -- peer routes ----------------------------------------------------------------------------------
PEER_GATE: web.AppKey[PeerGate] = web.AppKey("peer_gate", PeerGate)
PeerHandler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


async def _read_hashed(request: web.Request, limit: int) -> tuple[bytes, bytes]:
    """The body, read chunk by chunk and hashed as it comes, refused once over `limit`."""
    digest = hashlib.sha256()
    chunks = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes, this route's bound")
        digest.update(chunk)
        chunks.append(chunk)
    return b"".join(chunks), digest.digest()


async def _refuse_peer(request: web.Request, exc: LedgerError) -> web.StreamResponse:
    """Answer a refused peer request; if its body was not read, close the connection after the
    answer, so that the rest of the body is never read (nor lingered over)."""
    response = error_response(exc.http_status, exc.code, exc.message)
    if request.content.is_eof():
        return response
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()
    return response


def peer_route(handler: PeerHandler, body_bound: Callable[[LedgerNode], int] | None) -> Handler:
    """A /peer/ route: the signing headers are checked (sender, recipient, time, nonce and
    signature over the body's hash) before any of the body is read; then the body, within
    `body_bound` (None: no body), must hash to what was signed."""

    async def route(request: web.Request) -> web.StreamResponse:
        node = request.app[NODE]
        local = now_ms()
        try:
            try:
                signed = request.app[PEER_GATE].check_headers(
                    request.headers,
                    node.peer_keys,  # validators, and every active participant's registered node
                    request.method,
                    request.path_qs,
                    local,
                )
            except PeerClockStale as stale:
                node.health.observe_clock(stale.node_key.hex(), stale.time_ms, local)
                raise
            node.health.observe_clock(signed.node_key.hex(), signed.time_ms, local)
            limit = 0 if body_bound is None else body_bound(node)
            length = request.content_length
            if length is not None and length > limit:
                raise BodyTooLarge(f"the body is {length} bytes; this route takes at most {limit}")
            body, digest = await _read_hashed(request, limit)
            PeerGate.check_body(signed, digest)
        except LedgerError as exc:
            return await _refuse_peer(request, exc)
        return await handler(request, body)

    return route


def _events_bound(node: LedgerNode) -> int:
    return events_body_bound(node.registry.parameters)


def _consensus_bound(node: LedgerNode) -> int:
    return consensus_body_bound(node.registry.parameters, len(node.registry.validators))


def _peer_items(body: bytes) -> list[Any]:
    items = decode(body)
    if not isinstance(items, list):
        raise MalformedInput("a peer message is a list")
    return items


async def peer_events(request: web.Request, body: bytes) -> web.Response:
    request.app[NODE].on_peer_events(_peer_items(body))
    return web.Response(status=204)


async def peer_consensus(request: web.Request, body: bytes) -> web.Response:
    request.app[NODE].on_peer_consensus(_peer_items(body))
    return web.Response(status=204)


async def peer_status(request: web.Request, body: bytes) -> web.Response:
    node = request.app[NODE]
    head = node.store.head
    answer = encode([node.store.height, head.hash if head else b""])
    return web.Response(body=answer, content_type=MSGPACK)


async def peer_candidate(request: web.Request, body: bytes) -> web.Response:
    """A block proposed at the current height, whole, for a peer that lacks some of its events."""
    try:
        value = bytes.fromhex(request.query.get("value", ""))
    except ValueError as exc:
        raise MalformedInput("value is a block hash in hex") from exc
    block = request.app[NODE].candidate_block(value)
    if block is None:
        return error_response(404, "block_not_found", "no such proposed block here")
    return web.Response(body=block, content_type=MSGPACK)


def _final_blocks_response(request: web.Request) -> web.Response:
    """A page of final blocks: `limit` at most, within `max_bytes` (at most this node's own
    sync_page_bytes; the first block goes even alone, within the network's block bound)."""
    node = request.app[NODE]
    own = node.config.sync_page_bytes
    try:
        start = int(request.query.get("from", "1"))
        limit = min(max(int(request.query.get("limit", "64")), 1), SYNC_PAGE_BLOCKS)
        max_bytes = min(max(int(request.query.get("max_bytes", str(own))), 1), own)
    except ValueError as exc:
        raise MalformedInput("from, limit and max_bytes are whole numbers") from exc
    page = node.final_blocks(max(start, 1), limit, max_bytes)
    return web.Response(body=encode(page), content_type=MSGPACK)


async def peer_blocks(request: web.Request, body: bytes) -> web.Response:
    return _final_blocks_response(request)


async def chain_blocks(request: web.Request) -> web.Response:
    """Whole final blocks with their commit certificates, for an auditor (`kpledger audit --node`).

    Events carry shipment facts that are not public, so this needs the operator's token.
    """
    require_token(request)
    # Out of range is refused here (the peer route clamps, for nodes of older versions).
    query_int(request.query, "from", 1, 1, 2**63 - 1)
    query_int(request.query, "limit", 64, 1, 256)
    return _final_blocks_response(request)


# -- operations -----------------------------------------------------------------------------------
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


def build_app(node: LedgerNode, reserved: Callable[[str], bool] | None = None) -> web.Application:
    """The node's application; `reserved` says which addresses are registered nodes' (limits)."""
    limits = RateLimits(
        node.config,
        node.config.api_token,
        node,
        reserved,
        on_limited=lambda name: node.metrics.rate_limited.labels(name).inc(),
    )
    app = web.Application(
        middlewares=[errors_middleware, limits.middleware(), query_middleware],
        # Clients' bodies are held to max_body_bytes (read_body); peers' to their route's bound,
        # after their signature (peer_route). Nothing reads more than this.
        client_max_size=node.config.max_body_bytes,
    )
    app[NODE] = node
    app[PEER_GATE] = PeerGate(
        node.chain_id, node.node_key.public_bytes, node.config.peer_replay_entries
    )
    app[CACHE] = PublicCache()
    app[BLOCKS] = BlockCache(node.store)
    r = app.router
    r.add_post("/v1/events", post_event)
    r.add_get("/v1/events/{event_id}", get_event)
    r.add_get("/v1/certificates", list_certificates)
    r.add_get("/v1/certificates/{number}", get_certificate)
    r.add_get("/v1/participants", participants)
    r.add_get("/v1/chain/blocks", chain_blocks)
    r.add_get("/v1/public/certificates/{number}", public_certificate)
    r.add_get("/v1/public/head", public_head)
    r.add_get("/v1/public/blocks/{height}", public_block)
    r.add_get("/v1/public/genesis", public_genesis)
    r.add_get("/v1/public/participants", participants)
    api_governance.add_routes(r, node)
    r.add_post("/peer/events", peer_route(peer_events, _events_bound))
    r.add_post("/peer/consensus", peer_route(peer_consensus, _consensus_bound))
    r.add_get("/peer/status", peer_route(peer_status, None))
    r.add_get("/peer/blocks", peer_route(peer_blocks, None))
    r.add_get("/peer/candidate", peer_route(peer_candidate, None))
    reports.register(app, NODE, require_token)
    explorer_web.register(app, NODE)
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    return app
