"""The verification page for people: /verify/{number}?d=<digest hex> and its static files.

The page carries the network's genesis and checks the public answer's proof in the browser
(node/web/verify/, docs/verification.md); the node only serves it. Its Content-Security-Policy
lets it load nothing and talk to nothing but this origin.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from ledger.certificate import normalise_number
from ledger.errors import LedgerError
from node.http.appkeys import NODE

STATIC = ("web", "verify")
#: Files the page may load: suffix -> content type.
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Kimberley Process certificate {number}</title>
<link rel="stylesheet" href="/verify/static/verify.css">
<script type="application/json" id="kp-config">{config}</script>
<script type="module" src="/verify/static/page.js"></script>
</head>
<body>
<main id="kp-verify">
<h1>Kimberley Process certificate</h1>
<p class="number">{number}</p>
<p class="verdict checking" id="verdict" role="status">Checking…</p>
<noscript><p>This page checks the certificate's proof in your browser, with JavaScript. Without
it nothing is verified: use <code>kpledger verify</code> or turn JavaScript on.</p></noscript>
</main>
</body>
</html>
"""


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "</" can close it, no "<!--" open a comment."""
    return json.dumps(value, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


async def verify_page(request: web.Request) -> web.Response:
    node = request.app[NODE]
    typed = request.match_info["number"]
    try:
        number = normalise_number(typed)
    except LedgerError:
        number = typed.strip().upper()  # the page will find no such certificate, and say so
    digest = request.query.get("d", "")
    config = {"genesis": node.genesis.to_json(), "number": number, "digest": digest}
    return web.Response(
        text=PAGE.format(number=html.escape(number), config=script_json(config)),
        content_type="text/html",
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@cache
def _static(name: str) -> bytes | None:
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = resources.files("node").joinpath(*STATIC, *parts)
    return path.read_bytes() if path.is_file() else None


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    body = _static(name) if suffix in CONTENT_TYPES else None
    if body is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=body,
        content_type=CONTENT_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/verify/static/{name:.+}", static_file)
    app.router.add_get("/verify/{number}", verify_page)
