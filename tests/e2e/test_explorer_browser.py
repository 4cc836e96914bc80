"""The web explorer in a real headless Chromium against a live 4-node network."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.e2e.harness import Network, http
from tests.node.conftest import Issued, Signer, build_demo_chain, start_network

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Virtual time runs the page's script until its fetches are done, then the DOM is dumped.
    "--virtual-time-budget=10000",
]


@pytest.fixture(scope="module")
def browser() -> str:
    """Chromium's path; the test is skipped, saying why, on a machine without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        )
    return found


def dump_dom(browser: str, urls: list[str]) -> list[str]:
    """The DOM of each page after its JavaScript ran, one browser process per page, in parallel."""
    with tempfile.TemporaryDirectory(prefix="kp-chromium-") as profiles:
        processes = [
            subprocess.Popen(
                [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profiles}/{i}", "--dump-dom", url],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for i, url in enumerate(urls)
        ]
        pages = []
        try:
            for process in processes:
                out, _ = process.communicate(timeout=90)
                assert process.returncode == 0, f"chromium exited with {process.returncode}"
                pages.append(out)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return pages


def element(page: str, element_id: str) -> tuple[dict[str, str], str]:
    """The attributes and text of the element with this id (the page keeps such elements flat)."""
    found = re.search(rf'<(\w+)([^>]*\bid="{element_id}"[^>]*)>(.*?)</\1>', page, re.S)
    assert found is not None, f"no #{element_id} in the page:\n{page[:3000]}"
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', found.group(2)))
    text = html.unescape(re.sub(r"<[^>]+>", "", found.group(3)))
    return attrs, " ".join(text.split())


@pytest.fixture(scope="module")
def trade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Network, list[Issued]]]:
    net = start_network(tmp_path_factory.mktemp("browser"))
    try:
        yield net, build_demo_chain(net, Signer.for_network(net), tag="WEB")
    finally:
        net.close()


def test_the_explorer_page_looks_certificates_up(
    browser: str, trade: tuple[Network, list[Issued]]
) -> None:
    net, issued = trade
    confirmed = next(i for i in issued if i.fate == "import_confirmed")
    voided = next(i for i in issued if i.fate == "voided")
    # Each page from a different node: every node serves the same explorer and proofs.
    base = [n.url for n in net.nodes]
    urls = [
        f"{base[1]}/explorer?cert={confirmed.number}",
        f"{base[2]}/explorer?cert={voided.number.lower()}",
        f"{base[3]}/explorer?cert=BE-WEB-99999",
    ]
    page_confirmed, page_voided, page_unknown = dump_dom(browser, urls)

    attrs, text = element(page_confirmed, "cert-status")
    assert attrs["data-status"] == "import_confirmed" and text == "Import confirmed"
    attrs, text = element(page_confirmed, "cert-verification")
    assert attrs["data-proof"] == "valid" and "Proof checked: valid" in text
    assert "kpledger verify" in text
    _, title = element(page_confirmed, "cert-title")
    assert confirmed.number in title
    assert f"{confirmed.exporting} (" in page_confirmed and confirmed.importing in page_confirmed

    attrs, text = element(page_voided, "cert-status")
    assert attrs["data-status"] == "voided" and text == "Voided"
    assert element(page_voided, "cert-verification")[0]["data-proof"] == "valid"

    attrs, text = element(page_unknown, "cert-status")
    assert attrs["data-status"] == "not_found" and text == "Not on the ledger"
    attrs, text = element(page_unknown, "cert-verification")
    assert attrs["data-proof"] == "valid" and "Proof of absence checked" in text

    # The rest of the page rendered from the public API: blocks, statistics, the register.
    assert re.search(r'aria-label="Show block \d+"', page_confirmed)
    assert "Latest final block: height" in element(page_confirmed, "head-summary")[1]
    # Statistics: public figures cover closed quarters only. The demo trade is dated today, in
    # the open quarter, so the page says when that quarter will be published, not its figures.
    _, stats_text = element(page_confirmed, "stats-result")
    assert "not published yet" in stats_text.lower(), stats_text
    year = datetime.now(UTC).year
    status, stats = http("GET", f"{base[1]}/v1/public/stats?year={year}")
    if status == 200:  # some quarter of this year is closed: the charts show what it published
        assert 'id="chart-quarters"' in page_confirmed
        assert stats["rows"] == [] and "No certificates in the published figures" in stats_text
    else:
        assert stats["error"] == "statistics_not_published"
    assert "United Arab Emirates" in element(page_confirmed, "participants-result")[1]

    # Public data only: no party, address, carats or value of any certificate.
    for page in (page_confirmed, page_voided, page_unknown):
        for item in issued:
            for secret in item.secrets[:4]:
                assert secret not in page


def test_the_verify_route_checks_the_node_s_own_proof(
    trade: tuple[Network, list[Issued]],
) -> None:
    net, issued = trade
    node = net.nodes[0]
    for item in issued:
        status, body = http("GET", f"{node.url}/v1/public/verify/{item.number}")
        assert status == 200, body
        assert body["proof"] == "valid" and body["status"] == item.fate, body
        assert body["in_force"] is (item.fate in ("issued", "import_confirmed"))
    status, body = http("GET", f"{node.url}/v1/public/verify/BE-WEB-99999")
    assert status == 404 and body["status"] == "unknown" and body["proof"] == "valid"
    status, body = http("GET", f"{node.url}/v1/public/verify/{'X' * 41}")
    assert status == 400
    status, page = http("GET", f"{node.url}/explorer")
    assert status == 200 and b"Certificate ledger explorer" in page
    for name in ("explorer.js", "explorer.css"):
        status, _ = http("GET", f"{node.url}/explorer/static/{name}")
        assert status == 200
    for name in ("explorer.html", "..%2Fapi.py", "nothing.js"):
        status, _ = http("GET", f"{node.url}/explorer/static/{name}")
        assert status == 404
