"""The verification page's own verifier (node/web/verify/kpproof.js), under Node.js, against
docs/testvectors/public_answers.json: the same verdict as ours on every genuine and tampered answer."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def js_verdicts(*flags: str) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed, so the page's verifier cannot run outside a browser")
    done = subprocess.run(
        [node, str(REPO / "tests" / "js" / "public_answers.mjs"), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("engine", ["webcrypto", "fallback"])
def test_every_public_answer_vector_gets_our_verdict(engine: str) -> None:
    vectors = json.loads((REPO / "docs" / "testvectors" / "public_answers.json").read_text())
    got = js_verdicts(*(["--fallback"] if engine == "fallback" else []))
    assert [g["name"] for g in got] == [v["name"] for v in vectors["vectors"]]
    for vector, verdict in zip(vectors["vectors"], got, strict=True):
        want = vector["verdict"]
        verdict.pop("name")
        assert verdict == want, vector["name"]


def test_the_vendored_libraries_are_the_pinned_ones() -> None:
    vendor = REPO / "node" / "web" / "verify" / "vendor"
    listed = {}
    for line in (vendor / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {
        p.relative_to(vendor).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in vendor.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS"
    }
    assert present == listed


def test_the_page_verifier_takes_a_historical_record_as_ours_does(tmp_path: Path) -> None:
    """kpproof.js on answers about historical records (docs/history.md): genuine ones with one
    and two accounts, a node hiding or inventing the mark, and a proof whose history is altered."""
    import base64
    import dataclasses

    from ledger.encoding import encode
    from ledger.proofs import build_certificate_proof
    from ledger.store import Store
    from node.views import public_certificate_json
    from scripts.testvectors.answers import _verdict
    from tests.helpers import TestNetwork

    net = TestNetwork()
    store = Store(tmp_path / "chain", net.genesis)
    try:
        one = net.historical("voided")
        cert = net.certificate(issued_on="2012-02-01", expires_on="2012-04-01")
        first, second = (
            net.historical("expired", cert),
            net.historical("expired", cert, signer="AE"),
        )
        live = net.issue()
        net.commit_block(store, [one.event, first.event, live.event])
        net.commit_block(store, [second.event])
        today = net.today
        answers = []
        for name, number in (
            ("historical, one account", one.event.number),
            ("historical, both accounts", cert.number),
            ("issued on the ledger", live.event.number),
        ):
            record = store.get_certificate(number)
            assert record is not None
            body = public_certificate_json(store, record, today=today)
            proof = build_certificate_proof(store, number)
            body["proof"] = base64.b64encode(encode(proof.to_wire())).decode()
            answers.append((name, number, body, proof))
        _, number, body, proof = answers[0]
        hidden = {k: v for k, v in body.items() if k != "historical"}
        invented = {**answers[2][2], "historical": True}
        forged = dataclasses.replace(
            proof, events=(dataclasses.replace(proof.events[0], type="certificate.issue"),)
        )
        tampered = {**body, "proof": base64.b64encode(encode(forged.to_wire())).decode()}
        vectors = [(n, num, b) for n, num, b, _ in answers] + [
            ("the mark hidden", number, hidden),
            ("the mark invented", answers[2][1], invented),
            ("the history's type altered", number, tampered),
        ]
        expected = []
        for name, num, answer in vectors:
            verdict = _verdict(200, answer, net.genesis, num, today)
            if verdict["accept"]:
                checked = build_certificate_proof(store, num)
                if checked.events[0].type == "certificate.historical":
                    verdict["historical"] = True
            expected.append({"name": name, **verdict})
    finally:
        store.close()
    assert [v["accept"] for v in expected] == [True, True, True, False, False, False]
    assert "historical" in expected[3]["reason"] and "historical" in expected[4]["reason"]
    file = tmp_path / "answers.json"
    file.write_text(
        json.dumps(
            {
                "today": today.isoformat(),
                "vectors": [
                    {"name": n, "number": num, "http_status": 200, "answer": a}
                    for n, num, a in vectors
                ],
            }
        )
    )
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps({"genesis": net.genesis.to_json()}))
    for flags in ((), ("--fallback",)):
        got = js_verdicts("--vectors", str(file), "--genesis", str(genesis), *flags)
        for want, verdict in zip(expected, got, strict=True):
            assert verdict["name"] == want["name"]
            assert verdict["accept"] == want["accept"], (verdict, want)
            if want["accept"]:
                assert verdict == want
            else:
                assert verdict["code"] == want["code"], (verdict, want)
