"""HTTP caching of the public answers (SPEC 10): ETag, Cache-Control, and 304 to a conditional GET.

Every public answer is checked by its reader against genesis alone, so any cache may hold it:
a final block never changes (`immutable`); what depends on the head (a certificate's status,
the head itself, the register) is fresh for a short `max-age` (node.toml's `public_max_age_s`).
Refusals that say something about the request rather than the ledger (400, 429, 5xx) are never
stored.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from node.http.appkeys import NODE
from node.http.responses import Handler

#: What a cache may keep for ever: a final block, and the genesis of the node's chain.
IMMUTABLE = "public, max-age=31536000, immutable"
NO_STORE = "no-store"
#: The routes that answer only from final blocks (or genesis), whose 200 never changes.
_IMMUTABLE_PREFIXES = ("/v1/public/blocks/", "/v1/public/genesis")
#: Answers about the ledger, which a cache may hold for a short while: a found answer, and a
#: "not (yet) on the ledger" (a certificate's 404 carries its proof of absence).
_CACHEABLE_STATUSES = (200, 404)


def is_cached_route(request: web.Request) -> bool:
    """Reads of the public family: what HTTP caches in front of a node (and observers) carry."""
    return request.method in ("GET", "HEAD") and request.path.startswith("/v1/public/")


def cache_control(path: str, status: int, max_age_s: int) -> str:
    """The Cache-Control of a public answer of `status` at `path`."""
    if status not in _CACHEABLE_STATUSES:
        return NO_STORE
    if status == 200 and path.startswith(_IMMUTABLE_PREFIXES):
        return IMMUTABLE
    return f"public, max-age={max_age_s}"


def entity_tag(body: bytes) -> str:
    """A strong ETag: the hash of the exact bytes served (RFC 9110 8.8.3)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(header: str, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weak comparison, RFC 9110 13.1.2), or is `*`."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


@web.middleware
async def http_cache_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ETag and Cache-Control on the public reads, and 304 when the client holds the answer."""
    response = await handler(request)
    if not is_cached_route(request):
        return response
    # A stream (/v1/public/stream) is already on its way and has no one body to tag.
    if not isinstance(response, web.Response) or response.prepared:
        return response
    if "Cache-Control" not in response.headers:
        max_age = request.app[NODE].config.public_max_age_s
        response.headers["Cache-Control"] = cache_control(request.path, response.status, max_age)
    if response.headers["Cache-Control"] == NO_STORE or not isinstance(response.body, bytes):
        return response
    etag = entity_tag(response.body)
    response.headers["ETag"] = etag
    conditional = request.headers.get("If-None-Match")
    # Only a found answer has a representation to match (a 404 is sent again, whole).
    if response.status == 200 and conditional is not None and none_match(conditional, etag):
        # RFC 9110 15.4.5: a 304 carries the validators and Cache-Control the 200 would have.
        return web.Response(
            status=304,
            headers={"ETag": etag, "Cache-Control": response.headers["Cache-Control"]},
        )
    return response
