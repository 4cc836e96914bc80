"""Debian's nginx, configured as a cache in front of a live node (SPEC 10): repeated lookups of a
final answer do not reach the node, and a status change shows within the answer's max-age."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger.proofs import CertificateProof, verify_certificate_proof
from tests.e2e.harness import Network, NodeProcess, reserve_ports, urlopen
from tests.node.conftest import Signer, submit, wait_final

pytestmark = pytest.mark.slow

#: BE's status answers are fresh this long; short, so the test sees a change soon.
MAX_AGE_S = 3

CONFIG = """
worker_processes 1;
daemon off;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # Nothing but the node's own Cache-Control says how long an answer is fresh.
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=kpledger:4m max_size=64m inactive=1h
                     use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location /v1/public/ {{
            proxy_pass {node};
            # The node speaks TLS 1.3 only (nginx's default for upstreams stops at 1.2).
            proxy_ssl_protocols TLSv1.3;
            proxy_cache kpledger;
            proxy_cache_revalidate on;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip(
            "nginx is not installed, so the HTTP cache test cannot run "
            "(Debian: apt-get install nginx-light; .ci/run does)"
        )
    return found


@dataclass
class Nginx:
    url: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    """A port below the ephemeral range that nothing holds now, let go of for nginx to bind (a
    race with another process is retried: nginx then says "Address already in use")."""
    (listener,) = reserve_ports(1)
    port = int(listener.port)
    listener.close()
    return port


def _serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def net(network_factory: Any) -> Network:
    started: Network = network_factory("nginx", {"BE": {"public_max_age_s": MAX_AGE_S}})
    return started


@pytest.fixture(scope="module")
def nginx(net: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    binary = nginx_binary()
    directory = tmp_path_factory.mktemp("nginx")
    # Run as root, nginx's workers would become `nobody`, who cannot write the test's cache.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    for _attempt in range(5):
        port = _free_port()
        (directory / "nginx.conf").write_text(
            CONFIG.format(user=user, dir=directory, port=port, node=net.node("BE").url),
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while process.poll() is None and not _serving(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None and _serving(port):
            break
        process.kill()
        process.wait()
        log = (directory / "error.log").read_text(errors="replace")
        if "Address already in use" not in log:
            raise AssertionError(f"nginx did not start:\n{log[-2000:]}")
    else:
        raise AssertionError("nginx found no free port in 5 tries")
    try:
        yield Nginx(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urlopen(request, timeout=10) as response:  # the node's own URL: over TLS, pinned
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def public_requests(node: NodeProcess) -> int:
    """How many public requests the node has answered, by its own /metrics."""
    status, _, body = get(node.url + "/metrics")
    assert status == 200
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "kpledger_http_requests":
            total += sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels["family"] == "public"
            )
    return int(total)


def test_repeated_lookups_of_a_final_block_do_not_reach_the_node(
    net: Network, nginx: Nginx
) -> None:
    be = net.node("BE")
    signer = Signer.for_network(net)
    height = wait_final(net, be, [submit(be, signer.issue(signer.document("BE", "AE")).event)])
    path = f"/v1/public/blocks/{height}"
    before = public_requests(be)
    answers = [get(nginx.url + path) for _ in range(20)]
    assert public_requests(be) - before == 1
    assert all(a[0] == 200 and a[2] == answers[0][2] for a in answers)
    assert [a[1]["X-Cache-Status"] for a in answers] == ["MISS"] + ["HIT"] * 19
    assert answers[0][1]["Cache-Control"] == "public, max-age=31536000, immutable"
    # A client that holds the answer hears 304 from the cache, which asks nobody.
    etag = answers[0][1]["ETag"]
    status, _, body = get(nginx.url + path, {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert public_requests(be) - before == 1


def test_a_status_is_served_by_the_cache_and_its_change_seen_within_the_max_age(
    net: Network, nginx: Nginx
) -> None:
    be = net.node("BE")
    signer = Signer.for_network(net)
    issuance = signer.issue(signer.document("BE", "AE", "NGX"))
    wait_final(net, be, [submit(be, issuance.event)])
    path = f"/v1/public/certificates/{issuance.event.number}"
    before = public_requests(be)
    answers = [get(nginx.url + path) for _ in range(10)]
    assert all(a[0] == 200 and a[2] == answers[0][2] for a in answers)
    assert answers[0][1]["Cache-Control"] == f"public, max-age={MAX_AGE_S}"
    # Only the lookups nginx did not serve itself reached the node (the first, and one each
    # time the answer went stale, should the machine be that slow).
    cached = [a[1]["X-Cache-Status"] for a in answers]
    assert cached[0] == "MISS" and "HIT" in cached, cached
    assert public_requests(be) - before == sum(1 for c in cached if c != "HIT")
    # The answer through the cache checks against genesis, as the node's own does.
    body = json.loads(answers[0][2])
    assert verify_certificate_proof(CertificateProof.from_base64(body["proof"]), net.genesis).found
    assert body["status"] == "issued"
    # The certificate is voided. Every stale status after that must come from the cache (a HIT,
    # which nginx serves only while the node's max-age lasts), never from the node; the poll's
    # deadline is only there to end the test should the change never show.
    wait_final(net, be, [submit(be, signer.void(issuance))])
    deadline = time.monotonic() + MAX_AGE_S + 30  # a deadline for the poll, far beyond the max-age
    while time.monotonic() < deadline:
        status, headers, raw = get(nginx.url + path)
        assert status == 200, raw
        now = json.loads(raw)
        if now["status"] == "voided":
            break
        assert headers["X-Cache-Status"] == "HIT", "a stale status came from the node itself"
        time.sleep(0.2)
    else:
        raise AssertionError("the void never showed through the cache")
    assert now["void_reason"] == "error"
