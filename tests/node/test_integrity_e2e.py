"""A real node on a store damaged at rest: 503 store_corrupt, or no start; never a wrong 200.

Issue 13 item 2: one flipped bit in a certificate's stored digest was served with 200 by the
public and participant routes, and the QR check said digest_matches: false for the genuine
document.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ledger.records import CertificateRecord
from ledger.store import Store, keys
from node.config import NodeConfig
from tests.e2e.harness import Network
from tests.helpers import compact, poke
from tests.ledger.store.test_integrity import zero_footer
from tests.node.conftest import Signer, submit, wait_final

REPO = Path(__file__).resolve().parents[2]


def test_a_record_damaged_at_rest_is_answered_503_never_200(
    network_factory: Callable[..., Network],
) -> None:
    net = network_factory("integrity")
    signer = Signer.for_network(net)
    documents = [signer.document("BE", "AE", "INT") for _ in range(3)]
    issuances = [signer.issue(d) for d in documents]
    ids = [submit(net.node("BE"), i.event) for i in issuances]
    for node in net.nodes:
        wait_final(net, node, ids)
    be = net.node("BE")
    target = documents[1]["number"]
    genuine = issuances[1].digest.hex()
    status, body = be.get(f"/v1/public/certificates/{target}?digest={genuine}")
    assert status == 200 and body["digest_matches"] is True

    be.stop()
    data_dir = NodeConfig.load(be.config).data_dir
    store = Store(data_dir, net.genesis)
    try:
        key = keys.certificate(target)
        record = CertificateRecord.decode(store.kv.get(key))
        flipped = bytes([record.digest[0] ^ 1]) + record.digest[1:]
        poke(store, key, dataclasses.replace(record, digest=flipped).encode())
    finally:
        store.close()
    be.start()
    be.wait_healthy()

    status, body = be.get(f"/v1/public/certificates/{target}?digest={genuine}")
    assert status == 503 and body["error"] == "store_corrupt", (status, body)
    status, body = be.get(f"/v1/certificates/{target}", token=True)
    assert status == 503 and body["error"] == "store_corrupt", (status, body)
    status, body = be.get("/v1/certificates?exporting=BE", token=True)
    assert status == 503 and body["error"] == "store_corrupt", (status, body)
    # The others are still vouched for, and answered.
    status, body = be.get(f"/v1/public/certificates/{documents[0]['number']}")
    assert status == 200, (status, body)

    # The node says so, and takes no new work it could not vouch for.
    status, body = be.get("/healthz")
    assert status == 503 and "store_corrupt" in [p["code"] for p in body["problems"]]
    status, body = be.post(
        "/v1/events", signer.issue(signer.document("BE", "AE")).event.to_envelope()
    )
    assert status == 503 and body["error"] == "store_corrupt", (status, body)
    _status, metrics = be.get("/metrics")
    assert b"kpledger_store_corrupt 1.0" in metrics

    # A table whose footer is damaged: the node refuses to start, and says why.
    be.stop()
    store = Store(data_dir, net.genesis)
    try:
        compact(store)
    finally:
        store.close()
    zero_footer(max(data_dir.glob("*.ldb"), key=lambda p: p.stat().st_size))
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "node", "run", "--config", str(be.config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "corrupt" in done.stderr and "will not start" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
