"""The web explorer every node serves at /explorer, and the public proof check behind it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ledger.certificate import normalise_number
from ledger.errors import InvalidProof
from ledger.genesis import Genesis
from ledger.proofs import CertificateProof, build_certificate_proof, verify_certificate_proof
from ledger.store import Store
from node.http.appkeys import NODE, VERIFY_CACHE

log = logging.getLogger("kpledger.explorer")

WEB_DIR = Path(__file__).parent.parent / "web"
#: The only files served: the page and its script and style sheet (no directory listing).
ASSETS = {
    "explorer.html": "text/html",
    "explorer.js": "text/javascript",
    "explorer.css": "text/css",
}
#: The page fetches from this node only: no CDN, no inline script, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
IN_FORCE = ("issued", "import_confirmed")


def verify_own_proof(store: Store, genesis: Genesis, number: str) -> tuple[int, dict[str, Any]]:
    """Build the proof this node serves for `number` and check its bytes against genesis."""
    try:
        proof = build_certificate_proof(store, number)
        # Check what goes on the wire, decoded as any client would, not the objects in memory.
        checked = verify_certificate_proof(CertificateProof.decode(proof.encode()), genesis, number)
    except InvalidProof as exc:
        record = store.get_certificate(number)
        return 200, {
            "number": number,
            "status": record.effective_status(datetime.now(UTC).date()) if record else "unknown",
            "proof": "invalid",
            "message": f"this node's proof does not check against genesis: {exc.message}",
        }
    if not checked.found:
        return 404, {
            "error": "certificate_not_found",
            "number": number,
            "status": "unknown",
            "proof": "valid",
            "head_height": checked.head_height,
            "message": f"certificate {number} is not on the ledger: the proof of absence checks "
            f"against genesis at height {checked.head_height}",
        }
    status = checked.status or "unknown"
    today = datetime.now(UTC).date().isoformat()
    if status == "issued" and checked.expires_on is not None and today > checked.expires_on:
        status = "expired"
    return 200, {
        "number": number,
        "status": status,
        "in_force": status in IN_FORCE,
        "proof": "valid",
        "head_height": checked.head_height,
        "events": len(checked.history),
        "historical": checked.historical,
        "message": f"the proof checks against genesis: {len(checked.history)} event(s) in final "
        f"blocks, each signed by more than two thirds of the validators, up to height "
        f"{checked.head_height}",
    }


def add_routes(app: web.Application) -> None:
    """/explorer, its static files, and GET /v1/public/verify/{number}."""

    async def verify(request: web.Request) -> web.Response:
        node = request.app[NODE]
        number = normalise_number(request.match_info["number"])
        if node.store.head is None:
            return web.json_response(
                {"error": "no_blocks", "message": "the ledger has no final block yet"}, status=404
            )
        key = (number, node.store.height)
        cache = request.app[VERIFY_CACHE]
        cached = cache.get(key)
        if cached is None:
            status, body = verify_own_proof(node.store, node.genesis, number)
            cached = (status, json.dumps(body).encode())
            cache.put(key, cached)
        return web.Response(status=cached[0], body=cached[1], content_type="application/json")

    def asset(name: str) -> web.Response:
        try:
            body = (WEB_DIR / name).read_bytes()
        except OSError as exc:
            log.warning("explorer asset missing", extra={"file": name, "error": str(exc)})
            raise web.HTTPNotFound(text="the explorer's files are not installed") from exc
        return web.Response(
            body=body, content_type=ASSETS[name], charset="utf-8", headers=SECURITY_HEADERS
        )

    async def page(request: web.Request) -> web.Response:
        return asset("explorer.html")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS or name.endswith(".html"):
            raise web.HTTPNotFound(text=f"no explorer file {name!r}")
        return asset(name)

    app.router.add_get("/v1/public/verify/{number}", verify)
    app.router.add_get("/explorer", page)
    app.router.add_get("/explorer/", page)
    app.router.add_get("/explorer/static/{name}", static)
