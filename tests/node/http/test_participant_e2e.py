"""The participant API of live nodes: POST and GET /v1/events, the token-guarded records, whose
node shows the identities, fuzzing POST /v1/events, and /metrics."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ledger import authoring
from ledger.certificate import Certificate
from ledger.confidential import SealedBox, SealedIdentities
from ledger.encoding import encode
from ledger.events import Event, IssueBody, sign_event
from ledger.keys import SigningKey
from node.files import load_signing_key
from node.peers import MSGPACK
from tests.e2e.harness import Network, NodeProcess, host_port, http, raw_connection
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


def post_raw(node: NodeProcess, body: bytes, content_type: str) -> tuple[int, Any]:
    return http("POST", node.url + "/v1/events", raw=body, content_type=content_type)


# -- operations and routing ---------------------------------------------------------------------
def test_health_and_json_errors_for_unknown_routes(net: Network) -> None:
    be = net.node("BE")
    status, body = be.get("/healthz")
    assert status == 200 and body["status"] == "ok" and body["participant"] == "BE"
    assert body["chain_id"] == net.genesis.chain_id and body["validator"] is True
    assert_error(be.get("/no/such/route"), 404, "not_found")
    assert_error(http("DELETE", be.url + "/healthz"), 405, "method_not_allowed")
    assert_error(http("GET", be.url + "/v1/events"), 405, "method_not_allowed")


# -- POST /v1/events ------------------------------------------------------------------------------
def test_an_event_is_accepted_once_and_its_replay_is_idempotent(
    net: Network, signer: Signer
) -> None:
    be = net.node("BE")
    issuance = signer.issue(signer.document("BE", "IN", "EV"))
    status, body = be.post("/v1/events", issuance.event.to_envelope())
    assert status == 202 and body["event_id"] == issuance.event.event_id.hex()
    assert body["status"] in ("pending", "final")
    # Replayed at once, through another node, and as msgpack: the same event, never twice.
    for node, content in ((be, "json"), (net.node("AE"), "json"), (be, "msgpack")):
        if content == "json":
            again = node.post("/v1/events", issuance.event.to_envelope())
        else:
            again = post_raw(node, issuance.event.encoded, MSGPACK)
        assert again[0] == 202 and again[1]["event_id"] == body["event_id"], again
    height = wait_final(net, be, [body["event_id"]])
    status, body = be.post("/v1/events", issuance.event.to_envelope())
    assert (status, body["status"], body["height"]) == (202, "final", height)
    status, record = be.get(f"/v1/certificates/{issuance.event.number}", token=True)
    assert status == 200 and len(record["history"]) == 1


def test_a_body_sent_in_pieces_is_read_whole(net: Network, signer: Signer) -> None:
    """A client's body may arrive in several TCP segments: the node waits for all of it (it took
    the first segment for the whole body and answered 400 "not JSON", now and then)."""
    be = net.node("BE")
    event = signer.issue(signer.document("BE", "AE", "SEG")).event
    body = json.dumps(event.to_envelope()).encode()
    host, port = host_port(be.url)
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with raw_connection(be.url, timeout=30) as client:
        client.sendall(head + body[: len(body) // 2])
        time.sleep(0.5)  # the node reads the first half before the rest is sent
        client.sendall(body[len(body) // 2 :])
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"202", answer
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["event_id"] == event.event_id.hex()


def test_post_event_errors(net: Network, signer: Signer, demo: list[Issued]) -> None:
    be, ae = net.node("BE"), net.node("AE")
    chain = net.genesis.chain_id
    keys = signer.keys
    good = signer.issue(signer.document("BE", "AE", "ER")).event
    envelope = good.to_envelope()
    # 400: not JSON, not an envelope, not base64, not a canonical event.
    assert_error(post_raw(be, b"{", "application/json"), 400, "malformed")
    assert_error(post_raw(be, b"[" * 100_000, "application/json"), 400, "malformed")
    assert_error(be.post("/v1/events", {"event": envelope["event"]}), 400, "malformed")
    assert_error(be.post("/v1/events", {**envelope, "extra": 1}), 400, "malformed")
    assert_error(be.post("/v1/events", {**envelope, "signature": "!!!"}), 400, "malformed")
    assert_error(post_raw(be, b"\xc1", MSGPACK), 400, "malformed")
    with_a_float = msgpack.packb([1, chain, "certificate.void", "BE", 1.5, ["BE-X-1", "lost"]])
    assert_error(
        be.post(
            "/v1/events",
            {
                "event": base64.b64encode(with_a_float).decode(),
                "signature": envelope["signature"],
            },
        ),
        400,
    )
    # 401: signed with a key that the register does not list.
    forged = authoring.issue(
        net.registry,
        chain,
        Certificate.from_json(signer.document("BE", "AE", "ER")),
        SigningKey.generate(),
        created_ms=now(),
    ).event
    assert_error(be.post("/v1/events", forged.to_envelope()), 401, "bad_signature")
    # 403: signed with another participant's authority key, or with a node key: the answer
    # says whose key signed and who may sign.
    by_another = authoring.issue(
        net.registry,
        chain,
        Certificate.from_json(signer.document("BE", "AE", "ER")),
        keys["IN"],
        created_ms=now(),
    ).event
    refused = assert_error(
        be.post("/v1/events", by_another.to_envelope()), 403, "signed_by_another_participant"
    )
    assert refused["message"].startswith("signed by IN's authority key; only BE, the exporting")
    be_node_key = load_signing_key(net.directory / "BE" / "node.pem")
    with_node_key = authoring.issue(
        net.registry,
        chain,
        Certificate.from_json(signer.document("BE", "AE", "ER")),
        be_node_key,
        created_ms=now(),
    ).event
    refused = assert_error(
        be.post("/v1/events", with_node_key.to_envelope()), 403, "signed_with_node_key"
    )
    assert refused["message"].startswith("signed with BE's node key, not its authority key")
    # 403: a good signature by a participant who may not do this.
    confirmed = by_fate(demo, "issued", "BE")
    by_exporter = authoring.confirm_import(
        chain, "BE", confirmed.number, confirmed.issuance.digest, keys["BE"], created_ms=now()
    )
    assert_error(be.post("/v1/events", by_exporter.to_envelope()), 403, "signer_not_allowed")
    foreign_void = authoring.void(
        chain, "IN", confirmed.number, "lost", keys["IN"], created_ms=now()
    )
    assert_error(be.post("/v1/events", foreign_void.to_envelope()), 403, "signer_not_allowed")
    # 404: a decision about a certificate that does not exist.
    unknown = authoring.void(chain, "BE", "BE-NO-SUCH-1", "lost", keys["BE"], created_ms=now())
    assert_error(be.post("/v1/events", unknown.to_envelope()), 404, "certificate_not_found")
    # 409: conflicts with the ledger's state.
    taken = Certificate.from_json(by_fate(demo, "issued", "BE").document)
    again = authoring.issue(net.registry, chain, taken, keys["BE"], created_ms=now())
    assert_error(be.post("/v1/events", again.event.to_envelope()), 409, "certificate_number_taken")
    decided = by_fate(demo, "import_confirmed", "BE")
    void_decided = signer.void(decided.issuance)
    assert_error(be.post("/v1/events", void_decided.to_envelope()), 409, "import_already_decided")
    voided = by_fate(demo, "voided", "BE")
    assert_error(
        ae.post("/v1/events", signer.confirm(voided.issuance).to_envelope()),
        409,
        "certificate_voided",
    )
    # 413: a body over max_body_bytes, and an event over the network's max_event_bytes.
    assert_error(post_raw(be, b"x" * (1024 * 1024 + 10), "application/json"), 413)
    assert_error(post_raw(be, encode([b"x" * (2 * 1024 * 1024)]), MSGPACK), 413)
    assert_error(be.post("/v1/events", oversized_issue(net, signer).to_envelope()), 413)
    # 415: anything but JSON or msgpack.
    assert_error(post_raw(be, json.dumps(envelope).encode(), "text/plain"), 415)
    assert_error(post_raw(be, b"event=1", "application/x-www-form-urlencoded"), 415)
    # None of it reached the ledger or a mempool.
    assert head_of(be)[2] == 0


def oversized_issue(net: Network, signer: Signer) -> Event:
    """A correctly signed issuance over 64 KiB: its sealed boxes padded with extra recipients."""
    issuance = signer.issue(signer.document("BE", "AE", "BIG"))
    body = issuance.event.body
    # Boxes of one length (as a decodable issuance has), 8000 bytes each: over the event limit.
    names = [*body.sealed.recipients, *(f"X{i}" for i in range(12))]
    padding = tuple(SealedBox(name, b"\x00" * 8000) for name in names)
    sealed = SealedIdentities(body.sealed.commitment, padding)
    return sign_event(
        net.genesis.chain_id, "BE", IssueBody(body.facts, sealed), signer.keys["BE"], now()
    )


# -- POST /v1/events with a batch (SPEC 10) ------------------------------------------------------
def test_a_batch_answers_one_result_per_event_in_order(
    net: Network, signer: Signer, demo: list[Issued]
) -> None:
    """Good and bad events in one batch: each good one admitted and final, each bad one refused
    with its own code, in the order sent; the bad ones change nothing."""
    be = net.node("BE")
    chain = net.genesis.chain_id
    first = signer.issue(signer.document("BE", "AE", "BAT")).event
    second = signer.issue(signer.document("BE", "IN", "BAT")).event
    forged_document = signer.document("BE", "AE", "BAT")
    forged = authoring.issue(
        net.registry,
        chain,
        Certificate.from_json(forged_document),
        SigningKey.generate(),
        created_ms=now(),
    ).event
    by_another = authoring.issue(
        net.registry,
        chain,
        Certificate.from_json(signer.document("BE", "AE", "BAT")),
        signer.keys["IN"],
        created_ms=now(),
    ).event
    taken = Certificate.from_json(by_fate(demo, "issued", "BE").document)
    number_taken = authoring.issue(net.registry, chain, taken, signer.keys["BE"], created_ms=now())
    envelopes: list[Any] = [
        first.to_envelope(),
        forged.to_envelope(),
        {"event": first.to_envelope()["event"]},
        "not an envelope",
        by_another.to_envelope(),
        second.to_envelope(),
        first.to_envelope(),
        number_taken.event.to_envelope(),
    ]
    status, body = be.post("/v1/events", {"events": envelopes})
    assert status == 200, body
    results = body["results"]
    assert len(results) == len(envelopes)
    assert (body["accepted"], body["refused"]) == (3, 5)
    expected: list[tuple[str, str | None]] = [
        ("ok", first.event_id.hex()),
        ("bad_signature", forged.event_id.hex()),
        ("malformed", None),
        ("malformed", None),
        ("signed_by_another_participant", by_another.event_id.hex()),
        ("ok", second.event_id.hex()),
        ("ok", first.event_id.hex()),
        ("certificate_number_taken", number_taken.event.event_id.hex()),
    ]
    for result, (code, event_id) in zip(results, expected, strict=True):
        if code == "ok":
            assert result["status"] in ("pending", "final") and "error" not in result, result
        else:
            assert result["error"] == code and result["message"], result
            assert result["http_status"] in (400, 401, 403, 409), result
        assert result.get("event_id") == event_id, result
    wait_final(net, be, [first.event_id.hex(), second.event_id.hex()])
    # The refused events are nowhere: not in a block, not pending, not a certificate.
    for event in (forged, by_another, number_taken.event):
        assert_error(be.get(f"/v1/events/{event.event_id.hex()}"), 404, "event_not_found")
    assert be.get(f"/v1/certificates/{forged_document['number']}", token=True)[0] == 404
    status, record = be.get(f"/v1/certificates/{first.number}", token=True)
    assert status == 200 and len(record["history"]) == 1


def test_a_bad_batch_is_refused_whole_and_changes_nothing(net: Network, signer: Signer) -> None:
    be = net.node("BE")
    event = signer.issue(signer.document("BE", "AE", "BBAT")).event
    envelope = event.to_envelope()
    assert_error(be.post("/v1/events", {"events": []}), 400, "malformed")
    assert_error(be.post("/v1/events", {"events": envelope}), 400, "malformed")
    assert_error(be.post("/v1/events", {"events": [envelope], "extra": 1}), 400, "malformed")
    # 1,001 events: over the bound of a batch (a body larger than max_body_bytes, read whole).
    too_many = json.dumps({"events": [envelope] * 1001}).encode() + b" " * (1024 * 1024)
    assert_error(post_raw(be, too_many, "application/json"), 413, "batch_too_large")
    # One event alone is still held to max_body_bytes.
    assert_error(post_raw(be, b" " * (1024 * 1024 + 10) + b"{}", "application/json"), 413)
    assert_error(be.get(f"/v1/events/{event.event_id.hex()}"), 404, "event_not_found")


# -- GET /v1/events/{event_id} --------------------------------------------------------------------
def test_event_status(net: Network, signer: Signer, demo: list[Issued]) -> None:
    be = net.node("BE")
    item = demo[0]
    status, body = be.get(f"/v1/events/{item.event_ids[0]}")
    assert status == 200 and body["status"] == "final" and body["height"] >= 1
    assert body["event_id"] == item.event_ids[0]
    assert_error(be.get("/v1/events/" + "ab" * 32), 404, "event_not_found")
    assert_error(be.get("/v1/events/xyz"), 400, "malformed")
    assert_error(be.get("/v1/events/abcd"), 400, "malformed")


def test_a_decision_that_loses_a_race_is_reported_rejected(net: Network, signer: Signer) -> None:
    """A void and a confirmation sent at once to two nodes: both admitted, one refused in a block."""
    be, ae = net.node("BE"), net.node("AE")
    for _attempt in range(5):
        issuance = signer.issue(signer.document("BE", "AE", "RACE"))
        wait_final(net, be, [submit(be, issuance.event)])
        void, confirm = signer.void(issuance), signer.confirm(issuance)
        results = post_together((be, void), (ae, confirm))
        if results[0][0] != 202 or results[1][0] != 202:
            continue  # one was final before the other arrived: no race this time
        answers = {
            "v": net.wait_event(be, void.event_id.hex()),
            "c": net.wait_event(ae, confirm.event_id.hex()),
        }
        statuses = sorted(a["status"] for a in answers.values())
        assert statuses == ["final", "rejected"], answers
        lost = next(a for a in answers.values() if a["status"] == "rejected")
        assert lost["error"] in ("certificate_voided", "import_already_decided"), lost
        assert lost["message"]
        return
    pytest.skip("the two decisions never raced (each was final before the other arrived)")


def post_together(*calls: tuple[NodeProcess, Event]) -> list[tuple[int, Any]]:
    """POST each event to its node at the same moment, from threads."""
    results: list[tuple[int, Any]] = [(0, None)] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int, node: NodeProcess, event: Event) -> None:
        start.wait()
        results[i] = node.post("/v1/events", event.to_envelope())

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- the participant API: bearer token ---------------------------------------------------------
def test_certificates_need_the_operators_token(net: Network, demo: list[Issued]) -> None:
    be = net.node("BE")
    number = demo[0].number
    for path in ("/v1/certificates", f"/v1/certificates/{number}"):
        # No token is told apart from a wrong one: "token required" against "token refused".
        assert_error(be.get(path), 401, "token_required")
        assert_error(http("GET", be.url + path, token="not-the-token-at-all"), 401, "token_refused")
        # Another node's token is not this node's.
        assert_error(http("GET", be.url + path, token=net.node("IN").token), 401, "token_refused")
        answer = http_headers(be.url + path, {"Authorization": f"Basic {be.token}"})
        assert_error(answer, 401, "token_required")
        assert be.get(path, token=True)[0] == 200


def test_certificate_record_and_listing(net: Network, demo: list[Issued]) -> None:
    be = net.node("BE")
    item = by_fate(demo, "import_rejected", "BE")
    status, record = be.get(f"/v1/certificates/{item.number}", token=True)
    assert status == 200
    for key in ("origin", "hs_code", "carats", "value_usd", "parcels", "issued_on", "expires_on"):
        assert record[key] == item.document[key], key
    assert record["status"] == "import_rejected" and record["reason"]
    assert [h["type"] for h in record["history"]] == [
        "certificate.issue",
        "certificate.reject_import",
    ]
    assert record["digest"] == item.issuance.digest.hex()
    assert_error(be.get("/v1/certificates/BE-NOT-THERE", token=True), 404, "certificate_not_found")

    def listing(**query: Any) -> dict[str, Any]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        status, body = be.get(f"/v1/certificates?{qs}", token=True)
        assert status == 200, body
        assert body["count"] == len(body["certificates"])
        return body

    demo_numbers = {i.number for i in demo}
    exported = {c["number"] for c in listing(exporting="BE", limit=1000)["certificates"]}
    assert {i.number for i in demo if i.exporting == "BE"} <= exported
    assert all(n.startswith("BE-") for n in exported)
    imported = {c["number"] for c in listing(importing="RU")["certificates"]}
    assert imported & demo_numbers == {i.number for i in demo if i.importing == "RU"}
    voided = listing(status="voided")["certificates"]
    assert {c["number"] for c in voided} & demo_numbers == {
        i.number for i in demo if i.fate == "voided"
    }
    assert all(c["status"] == "voided" for c in voided)
    assert listing(**{"from": "2000-01-01", "to": "2000-12-31"})["count"] == 0
    # Pages of 5 with the cursor walk the whole set once, in order.
    everything = [c["number"] for c in listing(limit=1000)["certificates"]]
    walked: list[str] = []
    cursor = None
    while True:
        page = listing(limit=5, **({"cursor": cursor} if cursor else {}))
        walked += [c["number"] for c in page["certificates"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert walked == everything and demo_numbers <= set(walked)
    for bad in ("status=lost", "limit=many", "from=2026-13-01", "to=yesterday"):
        assert_error(be.get(f"/v1/certificates?{bad}", token=True), 400, "malformed")


def test_participants(net: Network) -> None:
    for path in ("/v1/participants", "/v1/public/participants"):
        status, body = net.node("IN").get(path)
        assert status == 200
        assert [p["code"] for p in body["participants"]] == ["BE", "AE", "IN", "RU"]
        assert len(body["validators"]) == 4 and "max_validity_days" in body["parameters"]


# -- identities: only on a party's node ---------------------------------------------------------
def test_identities_are_readable_only_on_the_parties_nodes(
    net: Network, demo: list[Issued], tmp_path: Path
) -> None:
    for item in (i for i in demo if (i.exporting, i.importing) == ("BE", "AE")):
        for code in ("BE", "AE"):
            status, record = net.node(code).get(f"/v1/certificates/{item.number}", token=True)
            assert status == 200 and record["party"] is True
            assert record["exporter"] == item.document["exporter"]
            assert record["importer"] == item.document["importer"]
            assert record["identity_salt"] == item.document["identity_salt"]
        for code in ("IN", "RU"):
            status, record = net.node(code).get(f"/v1/certificates/{item.number}", token=True)
            assert status == 200 and record["party"] is False
            assert "exporter" not in record and "importer" not in record
            assert f"{code} is not a party" in record["identities"]
            text = json.dumps(record)
            for secret in item.secrets[:4]:
                assert secret not in text
            # Facts every participant may read (statistics need them) are there.
            assert record["carats"] == item.document["carats"]
    item = by_fate(demo, "import_confirmed", "BE")
    shown = run_cli(
        "cert",
        "show",
        item.number,
        "--node",
        net.node("IN").url,
        "--token",
        net.node("IN").token,
        net=net,
    )
    assert shown.returncode == 0 and "IN is not a party" in shown.stdout
    assert item.document["exporter"]["name"] not in shown.stdout
    shown = run_cli(
        "cert",
        "show",
        item.number,
        "--node",
        net.node("BE").url,
        "--token",
        net.node("BE").token,
        net=net,
    )
    assert shown.returncode == 0 and item.document["exporter"]["name"] in shown.stdout
    # Nor can a third party print the certificate.
    out = tmp_path / "c.pdf"
    printed = run_cli(
        "cert",
        "pdf",
        item.number,
        "--node",
        net.node("RU").url,
        "--token",
        net.node("RU").token,
        "--out",
        str(out),
        net=net,
    )
    assert printed.returncode == 1 and "not a party" in printed.stderr and not out.exists()


# -- fuzzing POST /v1/events ---------------------------------------------------------------------
def _mutations(events: list[bytes]) -> st.SearchStrategy[tuple[bytes, str]]:
    def flip(data: bytes, position: int, mask: int) -> bytes:
        position %= len(data)
        return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]

    mutated = st.builds(flip, st.sampled_from(events), st.integers(0, 10**6), st.integers(1, 255))
    return st.one_of(
        mutated.map(lambda b: (b, MSGPACK)),
        mutated.map(lambda b: (json.dumps(envelope_of(b)).encode(), "application/json")),
    )


def envelope_of(encoded: bytes) -> dict[str, str]:
    """Split a (possibly mangled) signed encoding into the JSON envelope, as far as it goes."""
    try:
        unsigned, signature = msgpack.unpackb(encoded, raw=False, strict_map_key=False)
        unsigned_bytes = msgpack.packb(unsigned, use_bin_type=True)
        signature = signature if isinstance(signature, bytes) else b"x"
    except Exception:
        unsigned_bytes, signature = encoded, b"\x00" * 64
    return {
        "event": base64.b64encode(unsigned_bytes).decode(),
        "signature": base64.b64encode(signature).decode(),
    }


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
_msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=80),
    lambda inner: st.lists(inner, max_size=7),
    max_leaves=30,
)
_b64 = st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())


def bodies(chain_id: str, events: list[bytes]) -> st.SearchStrategy[tuple[bytes, str]]:
    json_type = st.sampled_from(["application/json", "application/json; charset=utf-8"])
    unsigned_events = st.tuples(
        st.just(1),
        st.sampled_from([chain_id, "other-chain", ""]),
        st.sampled_from(
            [
                "certificate.issue",
                "certificate.confirm_import",
                "certificate.reject_import",
                "certificate.void",
                "x",
            ]
        ),
        st.sampled_from(["BE", "AE", "IN", "RU", "XX", ""]),
        st.integers(min_value=-5, max_value=2**64 - 1),
        _msgpack_values,
    ).map(lambda t: msgpack.packb(list(t), use_bin_type=True))
    return st.one_of(
        st.tuples(st.binary(max_size=3000), st.sampled_from(["application/json", MSGPACK])),
        st.tuples(_json.map(lambda v: json.dumps(v).encode()), json_type),
        st.tuples(
            st.fixed_dictionaries(
                {"event": st.one_of(_b64, _json), "signature": st.one_of(_b64, _json)}
            ).map(lambda v: json.dumps(v).encode()),
            json_type,
        ),
        st.tuples(
            st.tuples(unsigned_events, st.binary(min_size=64, max_size=64)).map(
                lambda t: json.dumps(
                    {
                        "event": base64.b64encode(t[0]).decode(),
                        "signature": base64.b64encode(t[1]).decode(),
                    }
                ).encode()
            ),
            json_type,
        ),
        st.tuples(
            st.tuples(
                unsigned_events.map(msgpack.unpackb), st.binary(min_size=60, max_size=66)
            ).map(lambda t: msgpack.packb(list(t), use_bin_type=True)),
            st.just(MSGPACK),
        ),
        st.tuples(
            _msgpack_values.map(lambda v: msgpack.packb(v, use_bin_type=True)), st.just(MSGPACK)
        ),
        _mutations(events),
        st.tuples(st.binary(max_size=200), st.sampled_from(["text/plain", "", "application/xml"])),
    )


def test_fuzzing_post_events_never_breaks_the_node(
    net: Network, signer: Signer, demo: list[Issued]
) -> None:
    be = net.node("BE")
    chain_id = net.genesis.chain_id
    accepted = demo[0].issuance.event
    refused = [
        # Correctly formed, wrongly signed or not allowed: mutations of these are all refused too.
        authoring.issue(
            net.registry,
            chain_id,
            Certificate.from_json(signer.document("BE", "AE", "FZ")),
            signer.keys["AE"],
            created_ms=now(),
        ).event,
        authoring.confirm_import(
            chain_id,
            "BE",
            demo[3].number,
            demo[3].issuance.digest,
            signer.keys["BE"],
            created_ms=now(),
        ),
    ]
    pool = [accepted.encoded, *(e.encoded for e in refused)]
    before = head_of(be)
    answers: dict[int, int] = {}

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(bodies(chain_id, pool))
    def post(case: tuple[bytes, str]) -> None:
        body, content_type = case
        status, answer = post_raw(be, body, content_type)
        answers[status] = answers.get(status, 0) + 1
        assert status < 500, (status, answer, body[:200], content_type)
        assert isinstance(answer, dict), (status, answer)
        if status == 202:
            # Only the exact event already on the ledger gets in, and only as itself.
            assert answer["event_id"] == accepted.event_id.hex() and answer["status"] == "final"
        else:
            assert 400 <= status < 500 and answer["error"] and answer["message"], answer

    post()
    # Exact replays of the accepted event, both encodings, are idempotent.
    assert post_raw(be, accepted.encoded, MSGPACK)[0] == 202
    assert be.post("/v1/events", accepted.to_envelope())[0] == 202
    assert head_of(be) == before, "the fuzzing changed the chain or a mempool"
    assert set(answers) - {202, 400, 401, 403, 404, 409, 413, 415} == set(), answers
    # The strategies reach the parser (400), the content-type check (415) and signatures (401).
    assert answers.get(400, 0) > 100 and answers.get(415, 0) and answers.get(401, 0), answers


# -- /metrics -------------------------------------------------------------------------------------
def metric_values(node: NodeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = fetch(node.url + "/metrics")
    assert status == 200
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_metrics_parse_and_move_with_events(net: Network, signer: Signer) -> None:
    ae = net.node("AE")
    before = metric_values(ae)
    names = {name for name, _ in before}
    for expected in (
        "kpledger_height",
        "kpledger_mempool_events",
        "kpledger_blocks_total",
        "kpledger_events_final_total",
        "kpledger_http_requests_total",
        "kpledger_finality_seconds_bucket",
    ):
        assert expected in names, expected
    issuance = signer.issue(signer.document("AE", "IN", "MX"))
    wait_final(net, ae, [submit(ae, issuance.event)])
    assert ae.post("/v1/events", issuance.event.to_envelope())[0] == 202  # a replay: not counted
    forged = authoring.issue(
        net.registry,
        net.genesis.chain_id,
        Certificate.from_json(signer.document("AE", "IN", "MX")),
        SigningKey.generate(),
        created_ms=now(),
    ).event
    assert ae.post("/v1/events", forged.to_envelope())[0] == 401
    after = metric_values(ae)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("kpledger_events_accepted_total", type="certificate.issue") == 1
    assert delta("kpledger_events_refused_total", reason="bad_signature") == 1
    assert delta("kpledger_blocks_total") >= 1 and delta("kpledger_events_final_total") >= 1
    assert after[("kpledger_height", ())] == head_of(ae)[0]
    assert delta("kpledger_http_requests_total", family="participant", status="401") == 1
    assert delta("kpledger_http_requests_total", family="participant", status="202") == 2
    assert delta("kpledger_finality_seconds_count") == 1
