"""The typed keys by which route handlers reach the node and the app's caches."""

from __future__ import annotations

from aiohttp import web

from node.http.caches import BlockCache, PublicCache, VerifyCache
from node.limits import RateLimits
from node.notify.hub import Notifications
from node.peers import PeerGate
from node.portal.accounts import AccountBook
from node.portal.activity import ActivityLog
from node.portal.sessions import SessionBook
from node.service import LedgerNode
from node.tokens import Principal, TokenBook

NODE: web.AppKey[LedgerNode] = web.AppKey("node", LedgerNode)
CACHE: web.AppKey[PublicCache] = web.AppKey("public_cache", PublicCache)
BLOCKS: web.AppKey[BlockCache] = web.AppKey("block_cache", BlockCache)
VERIFY_CACHE: web.AppKey[VerifyCache] = web.AppKey("verify_cache", VerifyCache)
PEER_GATE: web.AppKey[PeerGate] = web.AppKey("peer_gate", PeerGate)
TOKENS: web.AppKey[TokenBook] = web.AppKey("tokens", TokenBook)
ACCOUNTS: web.AppKey[AccountBook] = web.AppKey("accounts", AccountBook)
SESSIONS: web.AppKey[SessionBook] = web.AppKey("sessions", SessionBook)
ACTIVITY: web.AppKey[ActivityLog] = web.AppKey("activity", ActivityLog)
#: Who the request's token stands for, set by app.py's token check (routes that need one).
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
NOTIFICATIONS: web.AppKey[Notifications] = web.AppKey("notifications", Notifications)
#: The rate limits, for a route that spends more than one request's worth (a batch of events).
LIMITS: web.AppKey[RateLimits] = web.AppKey("limits", RateLimits)
