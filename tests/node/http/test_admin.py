"""The admin routes and the token scopes, in process: a node's app answering real requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from node.config import NodeConfig
from node.http.app import make_app
from node.http.appkeys import TOKENS
from node.netinit import init_network, parse_participants
from node.service import LedgerNode

Run = Callable[[TestClient[Any, Any]], Awaitable[None]]


def serve(config: Path, run: Run) -> None:
    """`run` against the app of the node `config` describes (its store closed afterwards)."""

    async def main() -> None:
        node = LedgerNode(NodeConfig.load(config))
        try:
            async with TestClient(TestServer(make_app(node))) as client:
                await run(client)
        finally:
            node.store.close()

    asyncio.run(main())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_net(tmp_path: Path) -> tuple[Path, str]:
    init_network(tmp_path, parse_participants("BE,AE"), base_port=7700, chain_id="kp-admin")
    config = tmp_path / "BE" / "node.toml"
    return config, NodeConfig.load(config).api_token


def test_each_scope_where_it_is_allowed_and_refused(tmp_path: Path) -> None:
    config, admin = make_net(tmp_path)
    made: dict[str, str] = {}

    async def run(client: TestClient[Any, Any]) -> None:
        # Without a token, or with a wrong one, the admin routes are 401.
        answer = await client.get("/v1/admin/tokens")
        assert answer.status == 401 and (await answer.json())["error"] == "token_required"
        answer = await client.get("/v1/admin/tokens", headers=bearer("kpt_" + "x" * 43))
        assert answer.status == 401 and (await answer.json())["error"] == "token_refused"
        # node.toml's api_token is admin: it makes a read token and an admin token.
        for name, scope in (("reader", "read"), ("deputy", "admin")):
            answer = await client.post(
                "/v1/admin/tokens", json={"name": name, "scope": scope}, headers=bearer(admin)
            )
            body = await answer.json()
            assert answer.status == 201, body
            assert body["name"] == name and body["scope"] == scope and body["state"] == "active"
            made[name] = body["token"]
        # read: the confidential reads, not the admin routes.
        answer = await client.get("/v1/certificates", headers=bearer(made["reader"]))
        assert answer.status == 200, await answer.text()
        answer = await client.get("/v1/admin/tokens", headers=bearer(made["reader"]))
        assert answer.status == 403 and (await answer.json())["error"] == "token_scope"
        answer = await client.delete("/v1/admin/tokens/deputy", headers=bearer(made["reader"]))
        assert answer.status == 403
        # admin: both.
        answer = await client.get("/v1/certificates", headers=bearer(made["deputy"]))
        assert answer.status == 200
        answer = await client.get("/v1/admin/tokens", headers=bearer(made["deputy"]))
        listed = (await answer.json())["tokens"]
        assert [t["name"] for t in listed] == ["deputy", "reader"]
        assert all("token" not in t and "digest" not in t for t in listed)
        # A name in force is a conflict; a malformed request a 400; neither changes anything.
        for body, status, code in (
            ({"name": "reader", "scope": "read"}, 409, "token_exists"),
            ({"name": "Bad Name", "scope": "read"}, 400, "malformed"),
            ({"name": "x", "scope": "write"}, 400, "malformed"),
            ({"name": "x", "scope": "read", "expires_days": "9"}, 400, "malformed"),
            ({"name": "x", "scope": "read", "colour": "red"}, 400, "malformed"),
        ):
            answer = await client.post("/v1/admin/tokens", json=body, headers=bearer(admin))
            assert answer.status == status and (await answer.json())["error"] == code, body
        answer = await client.get("/v1/admin/tokens", headers=bearer(admin))
        assert len((await answer.json())["tokens"]) == 2

    serve(config, run)


def test_revoked_and_expired_tokens_get_401_at_once(tmp_path: Path) -> None:
    config, admin = make_net(tmp_path)

    async def run(client: TestClient[Any, Any]) -> None:
        answer = await client.post(
            "/v1/admin/tokens",
            json={"name": "soon", "scope": "read", "expires_days": 1},
            headers=bearer(admin),
        )
        soon = (await answer.json())["token"]
        answer = await client.post(
            "/v1/admin/tokens", json={"name": "victim", "scope": "admin"}, headers=bearer(admin)
        )
        victim = (await answer.json())["token"]
        assert (await client.get("/v1/certificates", headers=bearer(victim))).status == 200
        answer = await client.delete("/v1/admin/tokens/victim", headers=bearer(admin))
        assert answer.status == 200 and (await answer.json())["state"] == "revoked"
        answer = await client.get("/v1/certificates", headers=bearer(victim))
        assert answer.status == 401 and (await answer.json())["error"] == "token_revoked"
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        answer = await client.delete("/v1/admin/tokens/nobody", headers=bearer(admin))
        assert answer.status == 404 and (await answer.json())["error"] == "unknown_token"
        # A day later, by the node's clock: expired, from the next request on.
        book = client.app[TOKENS] if client.app is not None else None
        assert book is not None
        real = book.clock
        book.clock = lambda: real() + 86_400_000
        answer = await client.get("/v1/certificates", headers=bearer(soon))
        assert answer.status == 401 and (await answer.json())["error"] == "token_expired"

    serve(config, run)


def test_tokens_outlive_a_restart(tmp_path: Path) -> None:
    config, admin = make_net(tmp_path)
    made: dict[str, str] = {}

    async def first(client: TestClient[Any, Any]) -> None:
        for name in ("kept", "dropped"):
            answer = await client.post(
                "/v1/admin/tokens", json={"name": name, "scope": "read"}, headers=bearer(admin)
            )
            made[name] = (await answer.json())["token"]
        await client.delete("/v1/admin/tokens/dropped", headers=bearer(admin))

    async def second(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/v1/certificates", headers=bearer(made["kept"]))).status == 200
        answer = await client.get("/v1/certificates", headers=bearer(made["dropped"]))
        assert (await answer.json())["error"] == "token_revoked"

    serve(config, first)
    serve(config, second)


def test_the_snapshot_route_is_the_admins_and_says_when_there_is_nothing_to_cut(
    tmp_path: Path,
) -> None:
    """GET /v1/admin/snapshot: no token 401, a read token 403, and before block 1 a 404
    `no_blocks` (the running node's snapshot itself is tests/e2e/test_snapshot_e2e.py)."""
    config, admin = make_net(tmp_path)

    async def run(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/v1/admin/snapshot")
        assert answer.status == 401 and (await answer.json())["error"] == "token_required"
        answer = await client.post(
            "/v1/admin/tokens", json={"name": "reader", "scope": "read"}, headers=bearer(admin)
        )
        reader = (await answer.json())["token"]
        answer = await client.get("/v1/admin/snapshot", headers=bearer(reader))
        assert answer.status == 403 and (await answer.json())["error"] == "token_scope"
        answer = await client.get("/v1/admin/snapshot", headers=bearer(admin))
        assert answer.status == 404 and (await answer.json())["error"] == "no_blocks"

    serve(config, run)
