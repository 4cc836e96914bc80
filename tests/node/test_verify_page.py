"""The verification page a certificate's QR code opens, in a real Chromium at phone width against
a live network: the proof is checked in the browser, and every verdict SPEC 8 names is reached."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import zxingcpp

from tests.e2e.browser import PHONE, screenshot
from tests.e2e.harness import REPO, Network, urlopen
from tests.node.conftest import Signer, submit, wait_final
from tests.node.test_pdf import pdf_images

pytestmark = pytest.mark.slow


class Trade:
    def __init__(self, net: Network) -> None:
        self.net = net
        self.signer = Signer.for_network(net)

    def issue(self, tag: str) -> tuple[dict[str, Any], Any]:
        document = self.signer.document("BE", "AE", tag)
        issuance = self.signer.issue(document)
        wait_final(self.net, self.net.node("BE"), [submit(self.net.node("BE"), issuance.event)])
        return document, issuance

    def settle(self, code: str, event: Any) -> None:
        event_id = submit(self.net.node(code), event)
        for node in self.net.nodes:
            wait_final(self.net, node, [event_id])


@pytest.fixture(scope="module")
def trade(network_factory: Callable[..., Network]) -> Trade:
    return Trade(network_factory("verify-page"))


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    """A phone-sized page that records every request it makes. The nodes' certificates are
    self-signed for their register keys, which a test browser cannot pin: it ignores TLS errors
    (a real node's public address shows a CA-issued tls_cert, docs/security.md)."""
    context = chromium.new_context(viewport=PHONE, ignore_https_errors=True, locale="en-GB")
    page = context.new_page()
    page.requests = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.requests.append(request.url))  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def qr_url(net: Network, number: str, tmp: Path) -> str:
    node = net.node("BE")
    out = tmp / f"{number}.pdf"
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "cert", "pdf", number, "--node", node.url,
         "--token", node.token, "--out", str(out), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        env={**os.environ, "KPLEDGER_GENESIS": str(net.directory / "genesis.json")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [image] = pdf_images(out.read_bytes())
    [url] = [r.text for r in zxingcpp.read_barcodes(image)]
    return url


def verdict(page: Any, url: str) -> tuple[str, str, bool]:
    page.goto(url)
    page.wait_for_selector("#verdict[data-verdict]", timeout=30_000)
    shown = page.locator("#verdict")
    return (
        shown.get_attribute("data-verdict"),
        shown.inner_text().strip(),
        shown.get_attribute("data-verified") == "true",
    )


def test_the_qr_code_opens_a_page_that_verifies_in_the_browser(
    trade: Trade, phone: Any, tmp_path: Path
) -> None:
    document, issuance = trade.issue("PAGE")
    url = qr_url(trade.net, document["number"], tmp_path)
    assert url.startswith(trade.net.node("BE").url + "/verify/")
    assert verdict(phone, url) == ("IN_FORCE", "IN FORCE", True)
    assert "Verified in this browser" in phone.inner_text("#verified")
    text = phone.inner_text("main")
    assert document["number"] in text and "AE" in text and document["expires_on"] in text
    for secret in (
        document["exporter"]["name"],
        document["importer"]["address"],
        document["carats"],
    ):
        assert secret not in text
    # Made for a phone: nothing is wider than the screen.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "verify-in-force-390")
    origin = urllib.parse.urlsplit(url)
    assert all(urllib.parse.urlsplit(r)[:2] == origin[:2] for r in phone.requests), phone.requests

    trade.settle("AE", trade.signer.confirm(issuance))
    assert verdict(phone, url) == ("IMPORT_CONFIRMED", "IMPORT CONFIRMED", True)
    altered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert verdict(phone, altered) == ("DOCUMENT_DOES_NOT_MATCH", "DOCUMENT DOES NOT MATCH", True)


def test_voided_and_unknown_numbers(trade: Trade, phone: Any, tmp_path: Path) -> None:
    document, issuance = trade.issue("VOID")
    url = qr_url(trade.net, document["number"], tmp_path)
    trade.settle("BE", trade.signer.void(issuance))
    assert verdict(phone, url) == ("VOIDED", "VOIDED", True)
    base = trade.net.node("RU").url
    assert verdict(phone, f"{base}/verify/BE-2026-NOSUCH1")[:2] == (
        "UNKNOWN_NUMBER",
        "UNKNOWN NUMBER",
    )


def test_french_and_russian_from_the_browser_language(trade: Trade, chromium: Any) -> None:
    document, _ = trade.issue("LANG")
    url = f"{trade.net.node('IN').url}/verify/{document['number']}"
    for locale, word in (("fr-FR", "EN VIGUEUR"), ("ru-RU", "ДЕЙСТВУЕТ")):
        context = chromium.new_context(viewport=PHONE, ignore_https_errors=True, locale=locale)
        try:
            page = context.new_page()
            assert verdict(page, url)[1] == word
            # The switch on the page goes back to English, by keyboard.
            page.get_by_role("button", name="English").focus()
            page.keyboard.press("Enter")
            assert page.inner_text("#verdict").strip() == "IN FORCE"
        finally:
            context.close()


class FlippingProxy(BaseHTTPRequestHandler):
    """Passes everything to the node, but flips one byte inside the proof of every answer."""

    target = ""

    def do_GET(self) -> None:
        with urlopen(self.target + self.path) as answer:
            status, body, kind = answer.status, answer.read(), answer.headers["Content-Type"]
        if self.path.startswith("/v1/public/certificates/"):
            data = json.loads(body)
            proof = bytearray(base64.b64decode(data["proof"]))
            proof[len(proof) // 2] ^= 0x01
            data["proof"] = base64.b64encode(bytes(proof)).decode()
            body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_proof_altered_in_transit_cannot_be_verified(trade: Trade, phone: Any) -> None:
    document, _ = trade.issue("FLIP")
    handler = type("Proxy", (FlippingProxy,), {"target": trade.net.node("AE").url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/verify/{document['number']}"
        shown = verdict(phone, url)
        assert shown[:2] == ("CANNOT_BE_VERIFIED", "CANNOT BE VERIFIED") and not shown[2]
        assert "could not be verified" in phone.inner_text("#verified")
    finally:
        server.shutdown()
        server.server_close()


def test_the_exported_verifier_opened_from_disk_checks_against_a_live_node(
    trade: Trade, phone: Any, tmp_path: Path
) -> None:
    document, _ = trade.issue("FILE")
    out = tmp_path / "verifier.html"
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "verifier", "export", "--genesis",
         str(trade.net.directory / "genesis.json"), "--out", str(out), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["genesis_hash"] == trade.net.genesis.hash.hex()
    page_text = out.read_text()
    assert "<script src" not in page_text and "<link" not in page_text  # self-contained
    phone.goto(out.as_uri())
    phone.get_by_label("Node (public endpoint URL)").fill(trade.net.node("RU").url)
    phone.get_by_label("Certificate number").fill(document["number"].lower())
    phone.get_by_role("button", name="Check").click()
    phone.wait_for_selector("#verdict[data-verdict]", timeout=30_000)
    assert phone.get_attribute("#verdict", "data-verdict") == "IN_FORCE"
    assert phone.get_attribute("#verdict", "data-verified") == "true"
    # Nothing but the node it was pointed at.
    node = urllib.parse.urlsplit(trade.net.node("RU").url)
    others = [r for r in phone.requests if not r.startswith("file:")]
    assert others and all(urllib.parse.urlsplit(r)[:2] == node[:2] for r in others), others
