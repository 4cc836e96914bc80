"""The web explorer in a real headless Chromium against a live 4-node network."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.chain import build_block
from ledger.consensus.messages import CommitCertificate, Vote, VoteKind, quorum_size
from ledger.encoding import encode
from ledger.events import Event
from ledger.genesis import Parameters
from ledger.store import Store
from node.files import load_signing_key
from tests.e2e.chromium import FLAGS, View, look
from tests.e2e.harness import Network, http
from tests.node.conftest import (
    DEFAULT_OVERRIDES,
    Issued,
    Signer,
    build_demo_chain,
    override_toml,
    start_network,
)

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    *FLAGS,
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


# -- published statistics, in the charts and on a phone ---------------------------------------------
@dataclass
class Published:
    """BE's node serving a chain whose quarter `year` Q`quarter` is published, with cells too
    small to publish (fewer than 3 certificates) beside published ones."""

    net: Network
    year: int
    quarter: int

    @property
    def url(self) -> str:
        return f"{self.net.node('BE').url}/explorer?year={self.year}&quarter={self.quarter}"


def last_closed_quarter(today: date) -> tuple[int, int, date]:
    """The latest quarter that ended at least 2 days before `today`: (year, quarter, its end)."""
    start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    if (today - start).days < 2:
        start = (
            date(start.year - 1, 10, 1)
            if start.month == 1
            else date(start.year, start.month - 3, 1)
        )
    first = (
        date(start.year - 1, 10, 1) if start.month == 1 else date(start.year, start.month - 3, 1)
    )
    return first.year, (first.month - 1) // 3 + 1, start


def ms(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def commit_certificate(net: Network, height: int, value: bytes) -> bytes:
    keys = [
        load_signing_key(net.directory / v.participant / "node.pem") for v in net.genesis.validators
    ]
    votes = [
        Vote.create(keys[i], net.genesis.chain_id, VoteKind.PRECOMMIT, height, 0, value, i)
        for i in range(quorum_size(len(keys)))
    ]
    cert = CommitCertificate(height, 0, value, tuple((v.validator, v.signature) for v in votes))
    return encode(cert.to_wire())


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """Blocks dated in the last closed quarter, then one a day past its end (the freeze is one
    day here), which publishes it. Cells (participant, role, HS code):

    - BE exports 7102.10: 4 certificates, published; AE imports them (confirmed): published.
    - AE exports 7102.21: 2 certificates, too few: AE's exports are not published at all; IN
      imports them: not published either.
    - IN exports 7102.31: 3 certificates, published, and 7102.10: 1, not: IN's exports are
      published in part. BE never confirms them: BE imports nothing (a true zero).
    """
    net = Network.create(
        tmp_path_factory.mktemp("published"),
        # The blocks are dated in the past but their events are signed now: created_ms is not
        # bounded on this network (event_times_from_height 0, as on an older genesis).
        parameters=Parameters(
            timeout_propose_ms=600,
            timeout_vote_ms=300,
            timeout_delta_ms=200,
            stats_freeze_days=1,
            event_times_from_height=0,
        ),
    )
    try:
        year, quarter, end = last_closed_quarter(datetime.now(UTC).date())
        issued_on = end - timedelta(days=10)
        signer = Signer.for_network(net)
        trade = [("BE", "AE", "7102.10")] * 4 + [("AE", "IN", "7102.21")] * 2
        trade += [("IN", "BE", "7102.31")] * 3 + [("IN", "BE", "7102.10")]
        issues, confirms = [], []
        for exporting, importing, hs in trade:
            document = signer.document(exporting, importing, "PUB")
            document.update(
                hs_code=hs,
                issued_on=issued_on.isoformat(),
                expires_on=(issued_on + timedelta(days=60)).isoformat(),
            )
            issuance = signer.issue(document)
            issues.append(issuance.event)
            if importing != "BE":
                confirms.append(signer.confirm(issuance))
        blocks: list[tuple[int, list[Event]]] = [
            (ms(issued_on), issues),
            (ms(issued_on + timedelta(days=1)), confirms),
            (ms(end + timedelta(days=1), hour=6), []),  # the freeze: the quarter is published
        ]
        store = Store(net.directory / "BE" / "data", net.genesis)
        try:
            for time_ms, events in blocks:
                execution = build_block(
                    store,
                    net.registry,
                    net.genesis.hash,
                    store.head,
                    events,
                    chain_id=net.genesis.chain_id,
                    time_ms=time_ms,
                    proposer=(store.height + 1) % 4,
                    verified={e.event_id for e in events},
                )
                assert not execution.refused, execution.refused
                store.commit(
                    execution,
                    commit_certificate(net, execution.header.height, execution.header.hash),
                )
        finally:
            store.close()
        override_toml(net.node("BE").config, DEFAULT_OVERRIDES["BE"])
        net.start("BE")  # alone: it serves its chain; the others are not needed to read it
        status, stats = http(
            "GET", f"{net.node('BE').url}/v1/public/stats?year={year}&quarter={quarter}"
        )
        assert status == 200, stats
        yield Published(net, year, quarter)
    finally:
        net.close()


#: The page is ready when the statistics and the blocks are drawn.
READY = (
    "!!document.querySelector('#chart-carats text') && !!document.querySelector('#stats-table')"
    " && document.getElementById('head-summary').textContent.startsWith('Latest')"
)

#: What the charts draw, by chart: each bar (its tooltip and size), the value labels, the note.
CHARTS = """(() => {
  const out = {};
  for (const svg of document.querySelectorAll('svg.chart-svg')) {
    const figure = svg.closest('figure');
    const note = figure && figure.querySelector('.chart-note');
    out[svg.id] = {
      bars: [...svg.querySelectorAll('rect')].filter((r) => r.querySelector('title')).map((r) => ({
        title: r.querySelector('title').textContent, width: r.getBBox().width, height: r.getBBox().height,
      })),
      labels: [...svg.querySelectorAll('text.value')].map((t) => t.textContent),
      note: note ? note.textContent.replace(/\\s+/g, ' ').trim() : null,
    };
  }
  return out;
})()"""

#: The type and boxes a reader sees: every visible caption and chart label, and page overflow.
LAYOUT = """(() => {
  const vw = document.documentElement.clientWidth;
  const visible = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && getComputedStyle(e).visibility !== 'hidden';
  };
  // The part of the page an element can be seen in: the viewport, cut by scrolling boxes.
  const clip = (e) => {
    let left = 0, right = vw;
    for (let a = e.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') {
        const r = a.getBoundingClientRect();
        left = Math.max(left, r.left); right = Math.min(right, r.right);
      }
    }
    return { left, right };
  };
  const captions = [...document.querySelectorAll('caption, .table-caption, figcaption, .chart-note')]
    .filter(visible)
    .map((e) => {
      const r = e.getBoundingClientRect(), c = clip(e);
      return { text: e.textContent.replace(/\\s+/g, ' ').trim().slice(0, 50), px: parseFloat(getComputedStyle(e).fontSize),
               cut: r.left < c.left - 1 || r.right > c.right + 1 };
    });
  const labels = [...document.querySelectorAll('svg.chart-svg text')].filter(visible).map((t) => {
    const m = t.getScreenCTM(), r = t.getBoundingClientRect(), s = t.ownerSVGElement.getBoundingClientRect();
    return { chart: t.ownerSVGElement.id, text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b),
             inside: r.left >= s.left - 1 && r.right <= s.right + 1 && r.top >= s.top - 1 && r.bottom <= s.bottom + 1 };
  });
  return { viewport: vw, scrollWidth: document.documentElement.scrollWidth, captions, labels };
})()"""


def test_the_charts_draw_only_published_cells_and_say_what_they_leave_out(
    browser: str, published: Published, tmp_path: Path
) -> None:
    [view] = look(browser, published.url, [1280], ready=READY, measure=CHARTS, shots=tmp_path)
    charts: dict[str, Any] = view.measured
    for chart, unit in (("chart-carats", " ct"), ("chart-value", "$")):
        drawn = charts[chart]
        titles = [b["title"] for b in drawn["bars"]]
        # Nothing is drawn for what is not published: no 0 ct / $0 bar beside a table that says
        # "not published", and no zero for BE's imports either (there are none: it says so).
        for hidden in ("AE (United Arab Emirates), exported", "IN (India), imported"):
            assert not [t for t in titles if t.startswith(hidden)], (chart, titles)
        assert not [label for label in drawn["labels"] if label in ("0 ct", "$0")], drawn["labels"]
        assert any(t.startswith("BE (Belgium), exported") for t in titles), titles
        assert any(t.startswith("AE (United Arab Emirates), imported") for t in titles), titles
        # IN's exports are drawn from their published cell, and marked as partial.
        [partial] = [b for b in drawn["bars"] if b["title"].startswith("IN (India), exported")]
        assert partial["width"] > 0 and "1 certificate in a cell too small" in partial["title"]
        assert sum(label == "not published" for label in drawn["labels"]) == 2, drawn["labels"]
        assert any(label.endswith("*") for label in drawn["labels"]), drawn["labels"]
        # The caption says what the chart leaves out.
        note = drawn["note"]
        assert note is not None, chart
        assert "Not drawn: AE exports, IN imports" in note, note
        assert "IN exports (1 certificate left out)" in note, note
        assert "BE imports: none" in note, note
        assert unit  # both charts alike
    # Per quarter: a quarter not published yet has no bars (not two zeros); it says so.
    year_answer = http(
        "GET", f"{published.net.node('BE').url}/v1/public/stats?year={published.year}"
    )[1]
    waiting = [q["quarter"] for q in year_answer["quarters"] if not q["published"]]
    quarters = charts["chart-quarters"]
    for q in range(1, 5):
        bars = [b for b in quarters["bars"] if b["title"].startswith(f"Q{q},")]
        assert (bars == []) is (q in waiting), (q, waiting, quarters["bars"])
    if waiting:
        assert f"Q{waiting[0]}" in (quarters["note"] or ""), quarters["note"]
        assert "not yet published" in " ".join(quarters["labels"]), quarters["labels"]
    else:
        assert "nothing is left out" in (quarters["note"] or ""), quarters["note"]


def test_the_explorer_reads_on_a_phone(browser: str, published: Published, tmp_path: Path) -> None:
    """390 px wide, as a phone: type at least 12 px, captions whole, nothing wider than the page.
    Screenshots of both widths are written to the test's temp dir."""
    views: list[View] = look(
        browser, published.url, [390, 1280], ready=READY, measure=LAYOUT, shots=tmp_path
    )
    for view in views:
        layout = view.measured
        assert layout["scrollWidth"] <= layout["viewport"], (view.width, layout["scrollWidth"])
        assert layout["captions"] and layout["labels"], layout
        for caption in layout["captions"]:
            assert not caption["cut"], (view.width, caption)
            assert caption["px"] >= 12, (view.width, caption)
        for label in layout["labels"]:
            assert label["px"] >= 12, (view.width, label)
            assert label["inside"], (view.width, label)
        assert view.screenshot.stat().st_size > 10_000
