"""The authority portal in real Chromium (Playwright, Debian's /usr/bin/chromium) against a live
4-node TLS network: a BE issuer issues to AE through the form, an AE confirmer confirms from
the inbox, auditors read the activity log, the ledger says confirmed; each role's refusals,
wrong passwords and the lock-out, idle expiry, CSRF, escaping, the form's refusals at the field.

Browsers do not take Ed25519 certificates in TLS, so, as a real node's public address does with
a CA-issued certificate (node.toml tls_cert and tls_key, docs/security.md), each node shows the
browser an ECDSA P-256 certificate made here; peers and `kpledger` still pin the node keys of
genesis. The test browser accepts that self-made certificate (ignore_https_errors: this test
browser only). Screenshots of the main pages at 1280 and 390 px go to build/screenshots/.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.browser import DESK, PHONE, chromium_path, screenshot
from tests.e2e.chromium import FLAGS
from tests.e2e.harness import UNTHROTTLED, Network, NodeProcess, http
from tests.node.conftest import override_toml

pytestmark = pytest.mark.slow

PASSWORD = "a long passphrase for tests"
#: The idle time of IN's portal sessions (node.toml portal_idle_minutes): a few seconds.
IDLE_S = 4.0
#: Typed into an exporter's name: it must show as text and run nothing.
SCRIPT_NAME = '<script>window.kpPwned=1</script><img src=x onerror="window.kpPwned=2">Antwerp NV'
OFFICERS = {
    "BE": [("be.issuer", "issuer"), ("be.confirmer", "confirmer"), ("be.auditor", "auditor")],
    "AE": [("ae.confirmer", "confirmer"), ("ae.auditor", "auditor")],
    "IN": [("in.issuer", "issuer")],
}


def browser_certificate(folder: Path) -> dict[str, str]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 and its key, as node.toml values."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "browser.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "browser.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"tls_cert": "browser.crt", "tls_key": "browser.key"}


def kpledger(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    network = Network.create(tmp_path_factory.mktemp("portal"), tls=True)
    try:
        for node in network.nodes:
            values: dict[str, Any] = {
                **UNTHROTTLED,
                "portal": True,
                **browser_certificate(node.config.parent),
            }
            if node.participant == "IN":
                values["portal_idle_minutes"] = IDLE_S / 60
            override_toml(node.config, values)
        network.start()
        # The accounts are made as an operator makes them: `kpledger user add` on the running
        # node, over its TLS, with node.toml's admin token.
        for code, officers in OFFICERS.items():
            config = str(network.node(code).config)
            for name, role in officers:
                done = kpledger(
                    "user", "add", "--config", config, "--name", name, "--role", role,
                    "--password-stdin", stdin=PASSWORD + "\n",
                )  # fmt: skip
                assert done.returncode == 0, done.stderr
                assert f"officer '{name}' added with role {role}" in done.stdout
        yield network
    finally:
        network.close()


class Browser:
    """One signed-in officer's browser context (its own cookies), at a width."""

    def __init__(self, launched: Any, node: NodeProcess, viewport: dict[str, int]) -> None:
        self.node = node
        self.context = launched.new_context(
            viewport=viewport, ignore_https_errors=True, locale="en-GB"
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def goto(self, path: str) -> Any:
        return self.page.goto(self.node.url + path)

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        self.goto("/portal/")
        self.page.get_by_label("Username").fill(name)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def csrf(self) -> str:
        return str(self.page.locator('input[name="csrf"]').first.input_value())

    def shoot(self, name: str) -> None:
        """The page at 1280 px and at 390 px."""
        for label, size in (("1280", DESK), ("390", PHONE)):
            self.page.set_viewport_size(size)
            screenshot(self.page, f"portal-{name}-{label}")
            fits = self.page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth + 1"
            )
            assert fits, f"{name} is wider than the window at {label} px"
        self.page.set_viewport_size(DESK)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """This module's own Chromium, closed with the module: the sync Playwright runs an event
    loop in this thread while it lives, and a session-wide one would be running under every
    later test that calls asyncio.run()."""
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browsers(chromium: Any) -> Iterator[Any]:
    opened: list[Browser] = []

    def open_for(node: NodeProcess, viewport: dict[str, int] = DESK) -> Browser:
        browser = Browser(chromium, node, viewport)
        opened.append(browser)
        return browser

    yield open_for
    for browser in opened:
        # Nothing from another host: every request went to the node that served the page.
        assert all(url.startswith(browser.node.url + "/") for url in browser.requests), [
            url for url in browser.requests if not url.startswith(browser.node.url)
        ]
        browser.close()


SERIAL = iter(range(1, 10_000))


def certificate_form(**changes: str) -> dict[str, str]:
    today = datetime.now(UTC).date()
    values = {
        "Certificate number": f"BE-{today.year}-P{next(SERIAL):05d}",
        "Country of origin": "BW",
        "Carat weight": "120.50",
        "Value (USD)": "48200.00",
        "Number of parcels": "3",
        "Exporter name": "Schupstraat Diamonds BV",
        "Exporter address": "Schupstraat 9, 2018 Antwerpen",
        "Importer name": "Almas Rough DMCC",
        "Importer address": "Almas Tower, JLT, Dubai",
        "Date of issue": today.isoformat(),
        "Date of expiry": (today + timedelta(days=30)).isoformat(),
    }
    values.update(changes)
    return values


def fill_issue_form(browser: Browser, values: dict[str, str]) -> None:
    page = browser.page
    page.get_by_role("link", name="Issue certificate").click()
    page.get_by_label("Importing participant").select_option("AE")
    page.get_by_label("HS code").select_option("7102.31")
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def public_status(node: NodeProcess, number: str) -> tuple[int, Any]:
    return http("GET", f"{node.url}/v1/public/certificates/{number}")


def test_a_be_issuer_issues_and_an_ae_confirmer_confirms(net: Network, browsers: Any) -> None:
    be_node, ae_node = net.node("BE"), net.node("AE")
    issuer = browsers(be_node)
    issuer.goto("/portal/inbox")
    assert issuer.page.url.endswith("/portal/signin")
    issuer.shoot("signin")
    issuer.sign_in("be.issuer")
    assert issuer.page.url.endswith("/portal/inbox")
    values = certificate_form(**{"Exporter name": SCRIPT_NAME})
    number = values["Certificate number"]
    fill_issue_form(issuer, values)
    issuer.shoot("issue")
    issuer.page.get_by_role("button", name="Issue certificate").click()
    page = issuer.page
    assert page.url.split("?")[0].endswith(f"/portal/certificates/{number}")
    assert page.locator("#status").get_attribute("data-status") == "issued"
    assert "recorded on the ledger" in page.locator(".notice").inner_text()
    # The script in the exporter's name is text, and ran nothing.
    assert page.locator("#exporter .name").inner_text() == SCRIPT_NAME
    assert page.evaluate("window.kpPwned") is None
    issuer.shoot("certificate-issued")
    # An issuer is offered Void on an issued certificate of its own, not Confirm or Reject.
    assert page.get_by_role("button", name="Void").count() == 1
    assert page.get_by_role("button", name="Confirm receipt").count() == 0

    confirmer = browsers(ae_node)
    confirmer.sign_in("ae.confirmer")
    incoming = confirmer.page.locator("section", has=confirmer.page.locator("#incoming"))
    row = incoming.locator("tr", has_text=number)
    assert row.count() == 1 and "30 days left" in row.inner_text()
    assert "BE" in row.inner_text()
    confirmer.shoot("inbox")
    row.get_by_role("link", name=number).click()
    page = confirmer.page
    assert page.locator("#exporter .name").inner_text() == SCRIPT_NAME
    assert page.evaluate("window.kpPwned") is None
    assert page.get_by_role("button", name="Void").count() == 0
    page.get_by_role("button", name="Confirm receipt").click()
    assert page.locator("#status").get_attribute("data-status") == "import_confirmed"
    assert "Receipt confirmed on the ledger." in page.locator(".notice").inner_text()
    history = page.locator("table.history").inner_text()
    assert "issue" in history and "import confirmed" in history
    confirmer.shoot("certificate-confirmed")
    # No longer awaiting a decision: gone from the inbox.
    confirmer.goto("/portal/inbox")
    assert confirmer.page.locator("tr", has_text=number).count() == 0

    # The auditors read who did what, each in their own node's log, and download it.
    for node, officer, action in (
        (ae_node, "ae.confirmer", "confirm"),
        (be_node, "be.issuer", "issue"),
    ):
        auditor = browsers(node)
        auditor.sign_in(officer.split(".")[0] + ".auditor")
        auditor.page.get_by_role("link", name="Activity log").click()
        line = auditor.page.locator("table.activity tr", has_text=number).filter(has_text=action)
        assert line.count() == 1, auditor.page.content()
        assert officer in line.inner_text() and "final" in line.inner_text()
        if node is ae_node:
            auditor.shoot("activity")
        csv_answer = auditor.page.request.get(node.url + "/portal/activity?format=csv")
        assert csv_answer.status == 200 and csv_answer.headers["content-type"].startswith(
            "text/csv"
        )
        assert number in csv_answer.text() and officer in csv_answer.text()
        # And the certificate page shows both events to the auditor.
        auditor.goto(f"/portal/certificates/{number}")
        assert auditor.page.locator("#status").get_attribute("data-status") == "import_confirmed"
        assert auditor.page.get_by_role("button").filter(has_text="Void").count() == 0

    # The ledger says so: the public endpoint, and `kpledger verify` against genesis alone.
    status, body = public_status(ae_node, number)
    assert status == 200 and body["status"] == "import_confirmed"
    done = kpledger(
        "verify", number, "--node", be_node.url, "--genesis", str(net.directory / "genesis.json")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{number}: IMPORT CONFIRMED" in done.stdout


def test_each_role_is_refused_what_it_may_not_do(net: Network, browsers: Any) -> None:
    be_node = net.node("BE")
    issuer = browsers(be_node)
    issuer.sign_in("be.issuer")
    values = certificate_form()
    number = values["Certificate number"]
    fill_issue_form(issuer, values)
    issuer.page.get_by_role("button", name="Issue certificate").click()
    assert issuer.page.locator("#status").get_attribute("data-status") == "issued"

    # An auditor: no issue form offered, and none accepted.
    auditor = browsers(be_node)
    auditor.sign_in("be.auditor")
    assert auditor.page.get_by_role("link", name="Issue certificate").count() == 0
    assert auditor.goto("/portal/issue").status == 403
    answer = auditor.page.request.post(
        be_node.url + "/portal/issue",
        form={"csrf": auditor.csrf(), "number": f"BE-2026-X{number[-5:]}"},
        max_redirects=0,
    )
    assert answer.status == 403

    # A confirmer: no Void offered on an issued certificate of its own participant, and a
    # void sent anyway is refused; the certificate stays issued.
    confirmer = browsers(be_node)
    confirmer.sign_in("be.confirmer")
    confirmer.goto(f"/portal/certificates/{number}")
    assert confirmer.page.get_by_role("button", name="Void").count() == 0
    answer = confirmer.page.request.post(
        be_node.url + f"/portal/certificates/{number}/void",
        form={"csrf": confirmer.csrf(), "reason": "lost"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert public_status(be_node, number)[1]["status"] == "issued"

    # The issuer may void it, giving a reason.
    issuer.goto(f"/portal/certificates/{number}")
    issuer.page.get_by_label("Reason").select_option("error")
    issuer.page.get_by_role("button", name="Void").click()
    assert issuer.page.locator("#status").get_attribute("data-status") == "voided"
    assert public_status(be_node, number)[1]["status"] == "voided"


def test_a_post_without_the_csrf_token_changes_nothing(net: Network, browsers: Any) -> None:
    be_node = net.node("BE")
    issuer = browsers(be_node)
    issuer.sign_in("be.issuer")
    today = datetime.now(UTC).date()
    number = f"BE-{today.year}-CSRF{next(SERIAL):03d}"
    form = {
        "number": number,
        "importing_participant": "AE",
        "origin": "BW",
        "hs_code": "7102.10",
        "carats": "10.00",
        "value_usd": "1000.00",
        "parcels": "1",
        "exporter_name": "A",
        "exporter_address": "B",
        "importer_name": "C",
        "importer_address": "D",
        "issued_on": today.isoformat(),
        "expires_on": (today + timedelta(days=10)).isoformat(),
    }
    answer = issuer.page.request.post(be_node.url + "/portal/issue", form=form, max_redirects=0)
    assert answer.status == 403
    answer = issuer.page.request.post(
        be_node.url + "/portal/issue", form={**form, "csrf": "not-the-token"}, max_redirects=0
    )
    assert answer.status == 403
    assert public_status(be_node, number)[0] == 404


def test_the_form_shows_the_ledgers_refusal_at_the_field(net: Network, browsers: Any) -> None:
    be_node = net.node("BE")
    issuer = browsers(be_node)
    issuer.sign_in("be.issuer")
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    for changes, field in (
        ({"Carat weight": "120.125"}, "carats"),
        ({"Date of issue": yesterday, "Date of expiry": yesterday}, "expires_on"),
    ):
        values = certificate_form(**changes)
        fill_issue_form(issuer, values)
        issuer.page.get_by_role("button", name="Issue certificate").click()
        page = issuer.page
        error = page.locator(f"#e-{field}")
        assert error.count() == 1, page.content()
        assert page.locator(f"#f-{field}").get_attribute("aria-invalid") == "true"
        assert "nothing was recorded" in page.locator(".banner").inner_text()
        # What the officer typed is still in the form.
        assert page.get_by_label("Exporter name").input_value() == values["Exporter name"]
        if field == "carats":
            assert "carats" in error.inner_text() and "2" in error.inner_text()
            issuer.shoot("issue-refused")
        else:
            assert "expired" in error.inner_text()
        assert public_status(be_node, values["Certificate number"])[0] == 404


def test_wrong_password_and_the_lock_out_after_five(net: Network, browsers: Any) -> None:
    be_node = net.node("BE")
    config = str(be_node.config)
    done = kpledger(
        "user", "add", "--config", config, "--name", "be.locky", "--role", "issuer",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    officer = browsers(be_node)
    for attempt in range(1, 6):
        officer.sign_in("be.locky", "not the password at all")
        alert = officer.page.get_by_role("alert").inner_text()
        if attempt < 5:
            assert alert == "Wrong username or password.", attempt
        else:
            assert "locked after too many failed sign-ins" in alert
    officer.sign_in("be.locky")
    assert "locked" in officer.page.get_by_role("alert").inner_text()
    assert officer.page.url.endswith("/portal/signin")
    listed = kpledger("user", "list", "--config", config, "--json")
    states = {u["name"]: u["state"] for u in json.loads(listed.stdout)["users"]}
    assert states["be.locky"] == "locked" and states["be.issuer"] == "active"
    # The admin's reset unlocks it, with a new password.
    done = kpledger(
        "user", "reset", "be.locky", "--config", config, "--password-stdin",
        stdin="another long passphrase\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    officer.sign_in("be.locky", "another long passphrase")
    assert officer.page.url.endswith("/portal/inbox")
    # Disabled: the session ends at once.
    assert kpledger("user", "disable", "be.locky", "--config", config).returncode == 0
    officer.goto("/portal/inbox")
    assert "/portal/signin" in officer.page.url


def test_an_idle_session_ends(net: Network, browsers: Any) -> None:
    in_node = net.node("IN")
    officer = browsers(in_node)
    officer.sign_in("in.issuer")
    assert officer.page.url.endswith("/portal/inbox")
    # Every request renews the session, so the wait is a wait: IN's idle time is IDLE_S.
    time.sleep(IDLE_S + 0.5)
    officer.goto("/portal/inbox")
    assert officer.page.url.endswith("/portal/signin?ended=1")
    assert "session has ended" in officer.page.get_by_role("status").inner_text()


def test_french_and_the_keyboard(net: Network, browsers: Any) -> None:
    officer = browsers(net.node("AE"), PHONE)
    officer.goto("/portal/signin")
    officer.page.get_by_role("link", name="Français").click()
    page = officer.page
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_label("Nom d'utilisateur").count() == 1
    officer.shoot("signin-fr")
    # Reached and used by keyboard alone: Tab to the fields, type, Enter.
    focused = ""
    for _ in range(8):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        if focused == "username":
            break
    assert focused == "username"
    page.keyboard.type("ae.confirmer")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "Se connecter"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/portal/inbox$"))
    assert "Boîte de réception" in page.locator("h1").inner_text()


def test_search_statistics_and_the_pdf(net: Network, browsers: Any) -> None:
    be_node = net.node("BE")
    issuer = browsers(be_node)
    issuer.sign_in("be.issuer")
    values = certificate_form(**{"Carat weight": "7.25"})
    number = values["Certificate number"]
    fill_issue_form(issuer, values)
    issuer.page.get_by_role("button", name="Issue certificate").click()
    assert issuer.page.locator("#status").get_attribute("data-status") == "issued"
    pdf = issuer.page.request.get(f"{be_node.url}/portal/certificates/{number}/pdf")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    # Search by partner and status finds it; by its number too; another's number is not shown.
    issuer.page.get_by_role("link", name="Search").click()
    page = issuer.page
    page.get_by_label("Partner").select_option("AE")
    page.get_by_label("Status").select_option("issued")
    page.get_by_role("button", name="Search").click()
    assert page.locator("tr", has_text=number).count() == 1, page.content()
    issuer.shoot("search")
    page.get_by_label("Certificate number").fill(number.lower())
    page.get_by_label("Partner").select_option("")
    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Search").click()
    assert page.locator("tbody tr").count() == 1
    assert issuer.goto("/portal/certificates/IN-2026-000001").status == 404
    # The auditor's statistics count it, and download as CSV.
    auditor = browsers(be_node)
    auditor.sign_in("be.auditor")
    auditor.page.get_by_role("link", name="Statistics").click()
    table = auditor.page.locator("table").inner_text()
    assert "exporter" in table and "7102.31" in table
    auditor.shoot("statistics")
    answer = auditor.page.request.get(
        f"{be_node.url}/portal/statistics?year={datetime.now(UTC).year}&format=csv"
    )
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    lines = answer.text().splitlines()
    assert lines[0] == "year,quarter,participant,role,hs_code,certificates,carats,value_usd"
    assert any(",BE,exporter,7102.31," in line for line in lines[1:])
