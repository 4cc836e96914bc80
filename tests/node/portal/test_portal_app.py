"""The portal's pages in process (a node's app over aiohttp's test server, consensus not
running): sign-in, lock-out, idle expiry, roles, CSRF, escaping, the issue form's refusals at
the field at fault, and the admin routes for accounts. The browser flows over a live network
are in tests/e2e/test_portal_browser.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer, unused_port

from node.config import NodeConfig
from node.http.app import make_app
from node.http.appkeys import ACCOUNTS, ACTIVITY, NODE, SESSIONS
from node.netinit import init_network, parse_participants
from node.portal import accounts as accounts_module
from node.service import LedgerNode
from tests.node.conftest import override_toml

Run = Callable[[TestClient[Any, Any]], Awaitable[None]]
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("portal")
    init_network(directory, parse_participants("BE,AE"), base_port=7700, chain_id="kp-portal")
    override_toml(directory / "BE" / "node.toml", {"portal": True})
    return directory


@pytest.fixture(autouse=True)
def fast_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with small costs in process (the real node keeps the library's defaults)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        accounts_module,
        "PasswordHasher",
        lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )


def serve(config: Path, run: Run) -> None:
    async def main() -> None:
        node = LedgerNode(NodeConfig.load(config))
        app = make_app(node)
        for name, role in (("iris", "issuer"), ("cora", "confirmer"), ("audrey", "auditor")):
            if app[ACCOUNTS].get(name) is None:
                app[ACCOUNTS].add(name, role, PASSWORD)
        # The portal's cookies are Secure: this plain-HTTP test server is taken as a secure
        # origin by the test client's jar (the browser tests speak https to a real node).
        port = unused_port()
        jar = CookieJar(unsafe=True, treat_as_secure_origin=[f"http://127.0.0.1:{port}"])
        try:
            server = TestServer(app, host="127.0.0.1", port=port)
            async with TestClient(server, cookie_jar=jar) as client:
                await run(client)
        finally:
            node.store.close()

    asyncio.run(main())


async def sign_in(client: TestClient[Any, Any], name: str, password: str = PASSWORD) -> Any:
    page = await client.get("/portal/signin")
    token = CSRF.search(await page.text())
    assert token is not None
    return await client.post(
        "/portal/signin",
        data={"csrf": token.group(1), "username": name, "password": password},
        allow_redirects=False,
    )


async def csrf_of(client: TestClient[Any, Any], path: str = "/portal/inbox") -> str:
    found = CSRF.search(await (await client.get(path)).text())
    assert found is not None
    return found.group(1)


def test_sign_in_sets_a_strict_session_cookie_and_headers(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/portal/inbox", allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"] == "/portal/signin"
        page = await client.get("/portal/signin")
        html = await page.text()
        assert 'for="username">Username<' in html and 'for="password">Password<' in html
        assert ">Sign in</button>" in html
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "<script" not in html
        answer = await sign_in(client, "iris")
        assert answer.status == 303 and answer.headers["Location"] == "/portal/inbox"
        cookie = next(
            v for k, v in answer.headers.items() if k == "Set-Cookie" and "kp_session" in v
        )
        for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            assert flag in cookie
        inbox = await client.get("/portal/inbox")
        assert inbox.status == 200 and "Signed in as iris" in await inbox.text()

    serve(network / "BE" / "node.toml", run)


def test_wrong_password_and_lock_out_after_five(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        client.app[ACCOUNTS].add("lola", "issuer", PASSWORD)
        for _ in range(4):
            answer = await sign_in(client, "lola", "not the password")
            assert answer.status == 401
            assert "Wrong username or password." in await answer.text()
        answer = await sign_in(client, "lola", "not the password")
        assert "locked after too many failed sign-ins" in await answer.text()
        # The right password now is refused too, for 15 minutes.
        answer = await sign_in(client, "lola")
        assert answer.status == 401 and "locked" in await answer.text()
        assert client.app[ACCOUNTS].get("lola").locked_until_ms is not None  # type: ignore[union-attr]
        outcomes = [e.outcome for e in client.app[ACTIVITY].entries() if e.officer == "lola"]
        assert outcomes[:2] == ["locked", "locked (locked now)"]

    serve(network / "BE" / "node.toml", run)


def test_idle_session_ends(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        sessions = client.app[SESSIONS]
        now = [1_000_000]
        sessions.clock = lambda: now[0]
        assert (await sign_in(client, "iris")).status == 303
        now[0] += sessions.idle_ms - 1
        assert (await client.get("/portal/inbox", allow_redirects=False)).status == 200
        now[0] += sessions.idle_ms  # idle for the whole idle time since the last request
        answer = await client.get("/portal/inbox", allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"] == "/portal/signin?ended=1"

    serve(network / "BE" / "node.toml", run)


def test_roles_neither_offered_nor_accepted(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        await sign_in(client, "audrey")
        inbox = await (await client.get("/portal/inbox")).text()
        assert 'href="/portal/issue"' not in inbox and 'href="/portal/activity"' in inbox
        assert (await client.get("/portal/issue")).status == 403
        token = await csrf_of(client)
        answer = await client.post("/portal/issue", data={"csrf": token, "number": "BE-1"})
        assert answer.status == 403
        await client.post("/portal/signout", data={"csrf": token})
        await sign_in(client, "cora")
        token = await csrf_of(client)
        answer = await client.post(
            "/portal/certificates/BE-2026-1/void", data={"csrf": token, "reason": "lost"}
        )
        assert answer.status == 403
        assert (await client.get("/portal/activity")).status == 403
        assert (await client.get("/portal/statistics")).status == 403
        refused = [e for e in client.app[ACTIVITY].entries() if e.outcome == "role_forbidden"]
        assert {(e.officer, e.action) for e in refused} >= {("audrey", "issue"), ("cora", "void")}

    serve(network / "BE" / "node.toml", run)


def test_a_post_without_the_csrf_token_is_refused(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        await sign_in(client, "iris")
        before = len(client.app[ACTIVITY].entries())
        answer = await client.post("/portal/issue", data={"number": "BE-2026-CSRF1"})
        assert answer.status == 403 and "did not come from this portal" in await answer.text()
        answer = await client.post(
            "/portal/issue", data={"csrf": "x" * 43, "number": "BE-2026-CSRF1"}
        )
        assert answer.status == 403
        # The sign-in form too needs its own token (login CSRF).
        answer = await client.post(
            "/portal/signin", data={"username": "iris", "password": PASSWORD}
        )
        assert answer.status == 403
        entries = client.app[ACTIVITY].entries()
        assert [e.outcome for e in entries[: len(entries) - before]] == ["csrf_refused"] * 3

    serve(network / "BE" / "node.toml", run)


def _form(**changes: str) -> dict[str, str]:
    today = datetime.now(UTC).date()
    form = {
        "number": "BE-2026-PORTAL1",
        "importing_participant": "AE",
        "origin": "BW",
        "hs_code": "7102.31",
        "carats": "120.50",
        "value_usd": "50000.00",
        "parcels": "2",
        "exporter_name": "Antwerp Rough NV",
        "exporter_address": "Hoveniersstraat 30, Antwerpen",
        "importer_name": "Almas DMCC",
        "importer_address": "Almas Tower, Dubai",
        "issued_on": today.isoformat(),
        "expires_on": (today + timedelta(days=30)).isoformat(),
    }
    form.update(changes)
    return form


def test_the_issue_form_shows_the_ledgers_refusal_at_the_field(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        await sign_in(client, "iris")
        token = await csrf_of(client, "/portal/issue")
        yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
        for changes, field, text in (
            ({"carats": "1.125"}, "carats", "carats"),
            ({"expires_on": yesterday, "issued_on": yesterday}, "expires_on", "expired"),
            ({"origin": "XX"}, "origin", "origin"),
            ({"number": "AE-2026-1"}, "number", "prefix"),
        ):
            answer = await client.post("/portal/issue", data={"csrf": token, **_form(**changes)})
            html = await answer.text()
            assert answer.status == 422, html
            error = re.search(rf'<p class="error" id="e-{field}" role="alert">([^<]+)</p>', html)
            assert error is not None and text in error.group(1), html
            assert 'aria-invalid="true"' in html
            # What the officer typed comes back in the form, escaped.
            assert "Antwerp Rough NV" in html
        # Nothing changed: nothing was admitted, nothing is on the ledger.
        node = client.app[NODE]
        assert len(node.mempool) == 0 and node.store.get_certificate("BE-2026-PORTAL1") is None
        refused = [e for e in client.app[ACTIVITY].entries() if e.action == "issue"]
        assert {e.outcome for e in refused[:4]} <= {"invalid_certificate", "expired_on_issue"}

    serve(network / "BE" / "node.toml", run)


def test_a_script_in_a_name_comes_back_as_text(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        await sign_in(client, "iris")
        token = await csrf_of(client, "/portal/issue")
        evil = '<script>alert("x")</script>'
        answer = await client.post(
            "/portal/issue",
            data={"csrf": token, **_form(exporter_name=evil, carats="1.001")},
        )
        html = await answer.text()
        assert evil not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html

    serve(network / "BE" / "node.toml", run)


def test_languages_from_the_browser_and_the_switch(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        page = await client.get("/portal/signin", headers={"Accept-Language": "fr-BE,fr;q=0.9"})
        html = await page.text()
        assert '<html lang="fr">' in html and "Nom d&#39;utilisateur" in html
        answer = await client.get("/portal/lang/en?next=/portal/signin", allow_redirects=False)
        assert answer.status == 303 and answer.headers["Location"] == "/portal/signin"
        page = await client.get("/portal/signin", headers={"Accept-Language": "fr"})
        assert '<html lang="en">' in await page.text()
        # The switch goes back only into the portal.
        answer = await client.get("/portal/lang/fr?next=//evil.example/", allow_redirects=False)
        assert answer.headers["Location"] == "/portal/"

    serve(network / "BE" / "node.toml", run)


def test_the_admin_routes_for_accounts(network: Path) -> None:
    admin = NodeConfig.load(network / "BE" / "node.toml").api_token
    auth = {"Authorization": f"Bearer {admin}"}

    async def run(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/v1/admin/users")).status == 401
        answer = await client.post(
            "/v1/admin/users",
            json={"name": "ada", "role": "admin", "password": PASSWORD},
            headers=auth,
        )
        body = await answer.json()
        assert answer.status == 201 and body["role"] == "admin" and "password_hash" not in body
        again = await client.post(
            "/v1/admin/users",
            json={"name": "ada", "role": "issuer", "password": PASSWORD},
            headers=auth,
        )
        assert again.status == 409 and (await again.json())["error"] == "officer_exists"
        short = await client.post(
            "/v1/admin/users",
            json={"name": "bob", "role": "issuer", "password": "short"},
            headers=auth,
        )
        assert short.status == 400 and (await short.json())["error"] == "weak_password"
        assert (await sign_in(client, "ada")).status == 303
        answer = await client.post("/v1/admin/users/ada/disable", headers=auth)
        assert (await answer.json())["state"] == "disabled"
        # Her session ended at once, and she cannot sign in again.
        assert (await client.get("/portal/inbox", allow_redirects=False)).status == 303
        assert "disabled" in await (await sign_in(client, "ada")).text()
        answer = await client.post(
            "/v1/admin/users/ada/reset", json={"password": "a brand new passphrase"}, headers=auth
        )
        assert (await answer.json())["state"] == "active"
        assert (await sign_in(client, "ada", "a brand new passphrase")).status == 303
        listed = await (await client.get("/v1/admin/users", headers=auth)).json()
        assert "ada" in {u["name"] for u in listed["users"]}
        assert all("hash" not in str(u) for u in listed["users"])
        missing = await client.post("/v1/admin/users/nobody/disable", headers=auth)
        assert missing.status == 404 and (await missing.json())["error"] == "unknown_officer"

    serve(network / "BE" / "node.toml", run)


def test_no_portal_unless_node_toml_says_so(network: Path) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/portal/signin")).status == 404

    serve(network / "AE" / "node.toml", run)


def test_a_search_form_with_blank_fields_means_any(network: Path) -> None:
    """A browser sends every field of a GET form, blank ones empty: the portal reads them as
    "any" (the API refuses an empty parameter; the portal's forms would all be 400)."""

    async def run(client: TestClient[Any, Any]) -> None:
        await sign_in(client, "iris")
        answer = await client.get("/portal/search?number=&partner=AE&status=&from=&to=")
        assert answer.status == 200 and "No certificate matches." in await answer.text()
        await client.post("/portal/signout", data={"csrf": await csrf_of(client)})
        await sign_in(client, "audrey")
        answer = await client.get("/portal/statistics?year=2026&quarter=")
        assert answer.status == 200 and "No trade in this period." in await answer.text()
        # The API still refuses an empty parameter.
        assert (await client.get("/v1/public/stats?year=")).status == 400

    serve(network / "BE" / "node.toml", run)
