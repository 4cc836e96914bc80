"""The public routes of live nodes: the public view and its proof, statistics, head, blocks and
genesis, rate limits, the peer gate, `kpledger verify`, and what a third party's node holds."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ledger.certificate import parse_hundredths
from ledger.encoding import encode
from ledger.errors import InvalidProof
from ledger.keys import SigningKey
from ledger.proofs import CertificateProof, verify_certificate_proof
from ledger.store.leveldb import LevelDB
from node.files import load_signing_key
from node.peers import MSGPACK
from tests.e2e.harness import Network, NodeProcess, http, urlopen
from tests.helpers import TestNetwork
from tests.ledger.test_proofs import graft_stale_status, tamperings
from tests.node.conftest import Issued, Signer, submit, wait_final
from tests.node.http.conftest import (
    assert_error,
    by_fate,
    fetch,
    head_of,
    http_headers,
    now,
    run_cli,
)

pytestmark = pytest.mark.slow

PUBLIC_CERTIFICATE_KEYS = {
    "number",
    "status",
    "ledger_status",
    "exporting_participant",
    "importing_participant",
    "issued_on",
    "expires_on",
    "digest",
    "history",
    "proof",
    "replaces",
    "replaced_by",
    "void_reason",
    "digest_matches",
}


# -- the public view ----------------------------------------------------------------------------
def public_walk(
    net: Network, node: NodeProcess, demo: list[Issued]
) -> list[tuple[str, int, bytes]]:
    """GET every public route (and the open operational ones): (path, status, body bytes)."""
    paths = ["/v1/public/head", "/v1/public/genesis", "/v1/public/participants"]
    paths += ["/v1/participants", "/healthz", "/metrics", "/v1/public/stats"]
    paths += ["/v1/public/stats?year=2026", "/v1/public/stats?year=2026&quarter=4"]
    for item in demo:
        paths.append(f"/v1/public/certificates/{item.number}")
        paths.append(f"/v1/public/certificates/{item.number}?digest={item.issuance.digest.hex()}")
        paths.append(f"/v1/public/certificates/{item.number}?digest={'0' * 64}")
        paths += [f"/v1/events/{event_id}" for event_id in item.event_ids]
    paths += [f"/v1/public/verify/{item.number}" for item in demo]
    paths += ["/v1/public/certificates/BE-LK-99999", "/v1/public/certificates/ZZ"]
    paths += ["/v1/public/verify/BE-LK-99999", "/explorer", "/explorer/"]
    paths += ["/explorer/static/explorer.js", "/explorer/static/explorer.css"]
    height = head_of(node)[0]
    paths += [f"/v1/public/blocks/{h}" for h in range(0, height + 2)]
    out = []
    for path in paths:
        status, body = fetch(node.url + path)
        assert status < 500, (path, status, body)
        out.append((path, status, body))
    return out


def hidden_in(body: bytes) -> list[bytes]:
    """The body, and every base64 proof in it decoded, as bytes to search."""
    found = [body]
    try:
        parsed = json.loads(body)
    except ValueError:
        return found
    if isinstance(parsed, dict) and isinstance(parsed.get("proof"), str):
        try:
            found.append(base64.b64decode(parsed["proof"], validate=True))
        except ValueError:
            pass  # /v1/public/verify says "valid" or "invalid" there
    return found


def test_the_public_view_leaks_no_party_carats_or_value(net: Network, demo: list[Issued]) -> None:
    needles: list[tuple[str, bytes]] = []
    for item in demo:
        for secret in item.secrets:
            needles.append((secret, secret.encode()))
        # In a proof, amounts would travel as integers of hundredths in msgpack. (Not as decimal
        # digits: any 7 digits turn up now and then in the hex of headers and signatures.)
        for field in ("carats", "value_usd"):
            hundredths = parse_hundredths(field, item.document[field], positive=False)
            needles.append((f"{field}={hundredths} (msgpack)", encode(hundredths)))
    walked = public_walk(net, net.node("BE"), demo) + public_walk(net, net.node("IN"), demo)
    assert any(
        path.startswith("/v1/public/blocks/") and status == 200 for path, status, _ in walked
    )
    proofs = 0
    for path, _status, body in walked:
        for haystack in hidden_in(body):
            proofs += haystack is not body
            for what, needle in needles:
                assert needle not in haystack, f"{what} found in the answer to {path}"
    assert proofs >= 2 * 3 * len(demo)
    for path, status, body in walked:
        if path.startswith("/v1/public/certificates/") and status == 200:
            assert set(json.loads(body)) <= PUBLIC_CERTIFICATE_KEYS, path


def test_public_stats_never_single_out_a_certificate(net: Network, demo: list[Issued]) -> None:
    today = datetime.now(UTC).date()
    year, quarter = today.year, (today.month - 1) // 3 + 1
    node = net.node("BE")
    # The demo trade is in the open quarter: not published, with the date it will be.
    status, refused = node.get(f"/v1/public/stats?year={year}&quarter={quarter}")
    assert status == 404 and refused["error"] == "statistics_not_published"
    assert refused["publishes_on"] > today.isoformat() and "/v1/stats" in refused["message"]
    status, whole = node.get(f"/v1/public/stats?year={year}")
    if quarter == 1:
        assert status == 404 and whole["error"] == "statistics_not_published"
    else:
        assert status == 200 and whole["rows"] == []
        assert [q["published"] for q in whole["quarters"]] == [q < quarter for q in range(1, 5)]
    # The live figures, every one of them, are for the participants (token).
    assert node.get(f"/v1/stats?year={year}")[0] == 401
    status, live = node.get(f"/v1/stats?year={year}&quarter={quarter}", token=True)
    assert status == 200 and live["live"] is True
    exported = sum(r["certificates"] for r in live["rows"] if r["role"] == "exporter")
    assert exported >= sum(1 for i in demo if i.fate != "voided")  # other tests issue more
    assert not any(r.get("suppressed") for r in live["rows"])


def test_public_certificate_answers(net: Network, demo: list[Issued]) -> None:
    be = net.node("IN")
    item = by_fate(demo, "voided", "BE")
    status, body = be.get(f"/v1/public/certificates/{item.number}")
    assert status == 200 and "digest_matches" not in body
    assert body["status"] == "voided" and body["void_reason"] == "error"
    assert body["digest"] == item.issuance.digest.hex()
    assert [h["type"] for h in body["history"]] == ["certificate.issue", "certificate.void"]
    digest = item.issuance.digest.hex()
    path = f"/v1/public/certificates/{item.number}?digest="
    assert be.get(path + digest)[1]["digest_matches"] is True
    assert be.get(path + digest.upper())[1]["digest_matches"] is True
    assert be.get(path + "ab" * 32)[1]["digest_matches"] is False
    assert_error(be.get(path + "xyz"), 400, "malformed")
    # An unknown number: 404, with a proof of its absence that checks against genesis.
    status, body = be.get("/v1/public/certificates/BE-NEVER-1?digest=" + digest)
    assert status == 404 and body["error"] == "certificate_not_found"
    assert body["digest_matches"] is False
    checked = verify_certificate_proof(CertificateProof.from_base64(body["proof"]), net.genesis)
    assert not checked.found
    assert_error(be.get("/v1/public/certificates/" + "A" * 41), 400, "invalid_certificate_number")


def test_head_blocks_and_genesis(net: Network, demo: list[Issued]) -> None:
    node = net.node("AE")
    status, head = node.get("/v1/public/head")
    assert status == 200
    height = head["header"]["height"]
    assert head["commit_certificate"]["height"] == height
    assert len(head["commit_certificate"]["signatures"]) >= 3
    status, block = node.get(f"/v1/public/blocks/{height}")
    assert status == 200 and block["header"] == head["header"]
    assert len(block["events"]) == block["header"]["event_count"]
    seen = {
        e["event_id"]
        for h in range(1, height + 1)
        for e in node.get(f"/v1/public/blocks/{h}")[1]["events"]
    }
    assert {i.event_ids[0] for i in demo} <= seen
    assert_error(node.get("/v1/public/blocks/0"), 404, "block_not_found")
    assert_error(node.get(f"/v1/public/blocks/{height + 1000}"), 404, "block_not_found")
    assert_error(node.get("/v1/public/blocks/-1"), 404)
    assert_error(node.get("/v1/public/blocks/two"), 400, "malformed")
    status, genesis = node.get("/v1/public/genesis")
    assert status == 200 and genesis["chain_id"] == net.genesis.chain_id
    assert genesis["hash"] == net.genesis.hash.hex()


def raw_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """Status, headers and body of a GET, whatever the status."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_public_answers_carry_etag_cache_control_and_answer_304(
    net: Network, demo: list[Issued]
) -> None:
    """SPEC 10: final blocks immutable, status answers a short max-age, 304 to If-None-Match."""
    node = net.node("AE")
    height = node.height()
    number = by_fate(demo, "import_confirmed", "BE").number
    cases = {
        f"/v1/public/blocks/{height}": "public, max-age=31536000, immutable",
        "/v1/public/genesis": "public, max-age=31536000, immutable",
        f"/v1/public/certificates/{number}": "public, max-age=5",
        "/v1/public/head": "public, max-age=5",
    }
    for path, expected in cases.items():
        status, headers, body = raw_get(node.url + path)
        assert status == 200 and headers["Cache-Control"] == expected, (path, dict(headers))
        etag = headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag
        for conditional in (etag, f'"other", W/{etag}', "*"):
            again = raw_get(node.url + path, {"If-None-Match": conditional})
            assert again[0] == 304 and again[2] == b"", (path, conditional, again)
            assert again[1]["ETag"] == etag and again[1]["Cache-Control"] == expected
        # Another tag is not a match: the whole answer, the same bytes.
        status, headers, again_body = raw_get(node.url + path, {"If-None-Match": '"stale"'})
        assert (status, headers["ETag"], again_body) == (200, etag, body)
    # The digest check is another answer, with its own tag.
    plain = raw_get(node.url + f"/v1/public/certificates/{number}")[1]["ETag"]
    checked = raw_get(node.url + f"/v1/public/certificates/{number}?digest=" + "ab" * 32)
    assert checked[0] == 200 and checked[1]["ETag"] != plain
    # "Not on the ledger (yet)" may be cached briefly, never answered 304; a refusal never.
    status, headers, _ = raw_get(node.url + f"/v1/public/blocks/{height + 1000}")
    assert status == 404 and headers["Cache-Control"] == "public, max-age=5"
    missing = raw_get(node.url + "/v1/public/certificates/BE-NEVER-2")
    assert missing[0] == 404
    conditional = raw_get(
        node.url + "/v1/public/certificates/BE-NEVER-2", {"If-None-Match": missing[1]["ETag"]}
    )
    assert conditional[0] == 404 and conditional[2] == missing[2]
    status, headers, _ = raw_get(node.url + "/v1/public/blocks/two")
    assert status == 400 and headers["Cache-Control"] == "no-store" and "ETag" not in headers
    # The participant API is nobody's to cache.
    status, headers, _ = raw_get(node.url + "/healthz")
    assert "ETag" not in headers and "Cache-Control" not in headers


def test_public_routes_are_rate_limited_per_client(net: Network) -> None:
    ru = net.node("RU")
    answers = [ru.get("/v1/public/head") for _ in range(12)]
    limited = [a for a in answers if a[0] == 429]
    assert limited and all(a[0] in (200, 429) for a in answers)
    assert_error(limited[0], 429, "rate_limited")
    # The participant and operational routes are not throttled.
    assert all(ru.get("/healthz")[0] == 200 for _ in range(10))
    assert all(ru.get("/v1/certificates?limit=1", token=True)[0] == 200 for _ in range(10))


def test_peer_routes_need_a_listed_node_key(net: Network) -> None:
    be = net.node("BE")
    unsigned = http("POST", be.url + "/peer/events", raw=b"\x90", content_type=MSGPACK)
    assert_error(unsigned, 401, "peer_unauthenticated")
    assert_error(be.get("/peer/status"), 401, "peer_unauthenticated")
    stranger = SigningKey.from_seed(b"\x05" * 32)
    from node.peers import sign_request

    be_key = load_signing_key(net.directory / "BE" / "node.pem").public_bytes
    chain_id = net.genesis.chain_id
    headers = sign_request(stranger, chain_id, "GET", "/peer/status", b"", now(), be_key)
    assert_error(http_headers(be.url + "/peer/status", headers), 403, "peer_not_allowed")


# -- kpledger verify ------------------------------------------------------------------------------
def verify(
    net: Network, number: str, *extra: str, node: str | None = None
) -> subprocess.CompletedProcess[str]:
    url = node or net.node("IN").url
    genesis = str(net.directory / "genesis.json")
    return run_cli("verify", number, "--node", url, "--genesis", genesis, *extra)


def test_verify_exit_statuses(net: Network, demo: list[Issued], tmp_path: Path) -> None:
    confirmed = by_fate(demo, "import_confirmed", "BE")
    issued = by_fate(demo, "issued", "BE")
    result = verify(net, confirmed.number, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "import_confirmed" and answer["proof"] == "valid"
    assert answer["digest"] == confirmed.issuance.digest.hex()
    assert verify(net, issued.number).returncode == 0
    for fate in ("voided", "import_rejected"):
        result = verify(net, by_fate(demo, fate).number)
        assert result.returncode == 1, (fate, result.stdout, result.stderr)
        assert fate.replace("_", " ").upper() in result.stdout
    result = verify(net, "BE-LK-00000")
    assert result.returncode == 1 and "NOT ON THE LEDGER" in result.stdout
    # The document as issued matches; with the exporter's name changed, it does not.
    document = tmp_path / "doc.json"
    document.write_text(json.dumps(confirmed.document))
    result = verify(net, confirmed.number, "--document", str(document))
    assert result.returncode == 0 and "MATCHES the ledger" in result.stdout
    changed = json.loads(json.dumps(confirmed.document))
    changed["exporter"]["name"] += " Ltd"
    document.write_text(json.dumps(changed))
    result = verify(net, confirmed.number, "--document", str(document))
    assert result.returncode == 1 and "DOES NOT MATCH" in result.stdout
    # A head older than --max-age-hours: the node may be serving a stale status.
    time.sleep(0.5)
    result = verify(net, confirmed.number, "--max-age-hours", "0.0001")
    assert result.returncode == 2 and "stale" in result.stderr
    # No node there at all.
    result = verify(net, confirmed.number, node="http://127.0.0.1:9")
    assert result.returncode == 2 and "cannot reach" in result.stderr


@contextmanager
def serving(answer: dict[str, Any], status: int = 200) -> Iterator[str]:
    """A stand-in node that gives one canned JSON answer to every GET: a lying node."""
    payload = json.dumps(answer).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def validator_keys(net: Network) -> list[SigningKey]:
    return [
        load_signing_key(net.directory / v.participant / "node.pem") for v in net.genesis.validators
    ]


def test_proofs_from_a_live_node_resist_tampering(
    net: Network, signer: Signer, demo: list[Issued]
) -> None:
    be = net.node("BE")
    item = by_fate(demo, "import_confirmed", "BE")
    status, body = be.get(f"/v1/public/certificates/{item.number}")
    assert status == 200
    proof = CertificateProof.from_base64(body["proof"])
    verify_certificate_proof(proof, net.genesis, item.number)
    cases = tamperings(proof, net.genesis, validator_keys(net))
    messages = set()
    for name, altered, message in cases:
        with pytest.raises(InvalidProof, match=re.escape(message)):
            verify_certificate_proof(
                CertificateProof.from_base64(altered.to_base64()), net.genesis, item.number
            )
            pytest.fail(f"{name}: verified")
        messages.add(message)
    assert len(messages) >= 9
    # `kpledger verify` against a node that serves one of them: exit 2, the check that failed.
    name, altered, message = cases[1]
    with serving({**body, "proof": altered.to_base64()}) as url:
        result = verify(net, item.number, node=url)
    assert result.returncode == 2 and "the proof does not check" in result.stderr, name
    assert message in result.stderr


def test_an_older_status_cannot_pass_for_the_current_one(net: Network, signer: Signer) -> None:
    be = net.node("BE")
    issuance = signer.issue(signer.document("BE", "AE", "STALE"))
    wait_final(net, be, [submit(be, issuance.event)])
    number = issuance.event.number
    old = CertificateProof.from_base64(be.get(f"/v1/public/certificates/{number}")[1]["proof"])
    wait_final(net, be, [submit(net.node("AE"), signer.void(issuance))])
    new = CertificateProof.from_base64(be.get(f"/v1/public/certificates/{number}")[1]["proof"])
    assert verify_certificate_proof(new, net.genesis, number).status == "voided"
    for name, forged in graft_stale_status(old, new):
        with pytest.raises(InvalidProof, match="stale or altered status"):
            verify_certificate_proof(forged, net.genesis, number)
            pytest.fail(name)
    # Whole, the old proof is genuine but older: only its head's age can give it away.
    assert verify_certificate_proof(old, net.genesis, number).head_height < new.head.header.height


# -- SPEC 3a: a third party's node holds no identities, on disk or in its log ---------------------
def test_third_party_nodes_hold_no_identities_on_disk(net: Network, demo: list[Issued]) -> None:
    """Runs last: it stops IN's and RU's nodes to read everything they wrote."""
    for code in ("IN", "RU"):
        net.node(code).stop()
    for code in ("IN", "RU"):
        others = [i for i in demo if code not in (i.exporting, i.importing)]
        assert len(others) >= 4
        needles = {s.encode() for i in others for s in i.secrets[:4]}
        files = [p for p in (net.directory / code).rglob("*") if p.is_file()]
        files.append(net.node(code).log)
        assert any(p.name.endswith(".ldb") or p.name.endswith(".log") for p in files)
        for path in files:
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"{needle!r} in {path}"
        # And through LevelDB itself, in case a table is compressed.
        db = LevelDB(net.directory / code / "data")
        try:
            for key, value in db.items():
                for needle in needles:
                    assert needle not in key and needle not in value, (
                        f"{needle!r} in {code}'s store"
                    )
        finally:
            db.close()


def test_audit_of_a_live_node_with_and_without_its_token(
    net: Network, demo: list[Issued], tmp_path: Path
) -> None:
    be = net.nodes[0]
    done = run_cli("audit", "--node", be.url, "--json", net=net)
    assert done.returncode == 0, done.stdout + done.stderr
    public = json.loads(done.stdout)
    assert public["ok"] and public["scope"] == "public"
    assert public["events_checked"] >= len(demo)
    done = run_cli("audit", "--node", be.url, "--token", be.token, "--json", net=net)
    assert done.returncode == 0, done.stdout + done.stderr
    full = json.loads(done.stdout)
    assert full["ok"] and full["scope"] == "full"
    assert full["height_checked"] >= public["height_checked"]
    # Against another network's genesis: the node does not show a node key it lists, so the
    # CLI does not talk to it (exit 2).
    other = tmp_path / "other-genesis.json"
    other.write_text(json.dumps(TestNetwork(seed="elsewhere").genesis.to_json()))
    done = run_cli("audit", "--node", be.url, "--genesis", str(other))
    assert done.returncode == 2 and "not a node key" in done.stderr, done
    # Nor does the register it serves prove its key against that genesis.
    assert "nor does the register it serves prove it" in done.stderr, done
