"""The public routes (/v1/public/...): a certificate's view and proof, the head, blocks, genesis."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import msgpack
from aiohttp import web

from ledger.block import decode_event_leaf
from ledger.certificate import normalise_number
from ledger.errors import MalformedInput
from ledger.proofs import CertificateProof, build_served_certificate
from node.http.appkeys import BLOCKS, CACHE, NODE
from node.http.caches import BlockCache, PublicAnswer
from node.http.responses import error_response, json_response
from node.service import LedgerNode
from node.views import final_header_json, public_certificate_json

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def proof_base64(proof: CertificateProof) -> str:
    """proof.to_base64(), for the hot path: the same bytes, packed without re-checking each value.

    ledger.encoding.encode checks every value before it packs; a served proof is made only of
    values read from final blocks, which were checked when they were stored.
    """
    packed: bytes = msgpack.packb(proof.to_wire(), use_bin_type=True)
    return base64.b64encode(packed).decode("ascii")


def _public_answer(node: LedgerNode, blocks: BlockCache, number: str) -> PublicAnswer:
    # The record as the node serves it: checked against the state tree and its issue event, on
    # what the proof read (Store.served_certificate's checks, without reading it all twice).
    proof, record = build_served_certificate(node.store, number, blocks, node.reader)
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
    found = final_header_json(node.store, height)
    if found is None:
        raise web.HTTPNotFound(text=f"no final block at height {height}")
    return found


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
        event_id, event_type, number = decode_event_leaf(leaf)
        events.append({"event_id": event_id.hex(), "type": event_type, "number": number})
    out["events"] = events
    return json_response(out)


async def public_genesis(request: web.Request) -> web.Response:
    node = request.app[NODE]
    out = node.genesis.to_json()
    out["hash"] = node.genesis.hash.hex()
    return json_response(out)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/public/certificates/{number}", public_certificate)
    r.add_get("/v1/public/head", public_head)
    r.add_get("/v1/public/blocks/{height}", public_block)
    r.add_get("/v1/public/genesis", public_genesis)
