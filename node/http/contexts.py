"""The JSON-LD contexts a credential verifier resolves: /contexts/kpledger-v1.jsonld.

Every node serves the kpledger vocabulary that credentials also carry inline (ledger/credential.py),
so that a verifier resolves every context without another host. The answer never changes for a
release: it is cached for a day by anyone.
"""

from __future__ import annotations

import json

from aiohttp import web

from node.credentials import kpledger_context_document


async def kpledger_context(request: web.Request) -> web.Response:
    return web.Response(
        text=json.dumps(kpledger_context_document(), indent=2) + "\n",
        content_type="application/ld+json",
        headers={"Cache-Control": "public, max-age=86400", "Access-Control-Allow-Origin": "*"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/contexts/kpledger-v1.jsonld", kpledger_context)
