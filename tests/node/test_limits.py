"""The pieces of connection hygiene on their own: log repeats, redaction, caps, config bounds."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from node.config import ConfigError, NodeConfig
from node.connections import (
    FD_RESERVE,
    ConnectionGuard,
    ConnectionLimits,
    client_key,
    parse_fault,
)
from node.limits import RateLimiter, RateLimits, rate_family
from node.logs import JsonFormatter, RepeatFilter


def _logger(name: str, burst: int = 3) -> tuple[logging.Logger, io.StringIO, RepeatFilter]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(["s3cret-token-value-123"]))
    repeats = RepeatFilter(burst=burst, window_s=3600)
    repeats.handler = handler
    handler.addFilter(repeats)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream, repeats


def test_repeated_lines_are_collapsed_into_one_count() -> None:
    logger, stream, repeats = _logger("kp.test.repeats")
    for i in range(1000):
        logger.warning("accept failed from %s", f"10.0.0.{i % 250}")
    logger.info("something else")
    repeats.sweep()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines[:3]] == [
        "accept failed from 10.0.0.0",
        "accept failed from 10.0.0.1",
        "accept failed from 10.0.0.2",
    ]
    assert lines[3]["event"] == "something else"
    assert lines[4]["event"] == "997 similar lines suppressed"
    assert lines[4]["suppressed"] == 997 and lines[4]["level"] == "warning"
    assert lines[4]["similar_to"].startswith("accept failed from")
    assert len(lines) == 5


def test_secrets_and_bearer_credentials_never_reach_a_log_line() -> None:
    logger, stream, _ = _logger("kp.test.redact", burst=100)
    logger.warning("bad header %r", "Bearer s3cret-token-value-123\x01")
    logger.warning("other %s", "authorization: bearer abcdefABCDEF0123456789")
    try:
        raise ValueError("Authorization: Bearer s3cret-token-value-123")
    except ValueError:
        logger.exception("failed")
    out = stream.getvalue()
    assert "s3cret-token-value-123" not in out and "abcdefABCDEF0123456789" not in out
    assert out.count("[redacted]") >= 3


def test_the_peer_pool_and_the_caps_are_counted_apart() -> None:
    guard = ConnectionGuard(
        ConnectionLimits(max_connections=3, max_connections_per_address=2, peer_connections=2),
        trusted=["10.9.0.0/16"],
    )
    guard.peer_addresses = frozenset({"192.0.2.7"})
    assert guard.admit("198.51.100.1") is None
    assert guard.admit("198.51.100.1") is None
    assert guard.admit("198.51.100.1") == "per_address"
    assert guard.admit("198.51.100.2") is None
    assert guard.admit("198.51.100.3") == "max_connections"
    assert guard.admit("192.0.2.7") is None and guard.admit("10.9.3.4") is None
    assert guard.admit("192.0.2.7") == "peer_connections"
    guard.release("198.51.100.1", reserved=False)
    assert guard.admit("198.51.100.3") is None
    assert guard.refused == {"per_address": 1, "max_connections": 1, "peer_connections": 1}


def test_an_ipv6_host_counts_as_its_64_and_a_mapped_ipv4_as_itself() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections_per_address=2))
    assert guard.admit("2001:db8:1:2::10") is None
    assert guard.admit("2001:db8:1:2:ffff::1") is None
    assert guard.admit("2001:db8:1:2::abcd") == "per_address"
    assert guard.admit("2001:db8:1:3::1") is None
    assert client_key("::ffff:198.51.100.9") == "198.51.100.9"
    guard.release("2001:db8:1:2::10", reserved=False)
    assert guard.admit("2001:db8:1:2::77") is None


def test_caps_are_lowered_to_fit_the_open_file_limit() -> None:
    wanted = ConnectionLimits(max_connections=1000, peer_connections=512)
    assert wanted.within_fd_limit(100_000) is wanted
    fitted = wanted.within_fd_limit(1024)
    assert fitted.max_connections + fitted.peer_connections <= 1024 - FD_RESERVE
    assert fitted.peer_connections >= 1 and fitted.max_connections >= 1
    assert fitted.max_connections_per_address <= fitted.max_connections


def test_a_parse_fault_is_named_without_a_byte_of_the_request() -> None:
    from aiohttp.http_exceptions import InvalidHeader, LineTooLong

    assert "too long" in parse_fault(LineTooLong("Bearer tok" * 1000, 8190))
    assert parse_fault(InvalidHeader(b"Bearer tok\x01")) == "a header is malformed"
    assert parse_fault(None) == "the request is malformed"


def test_route_families_and_buckets() -> None:
    assert rate_family("GET", "/v1/public/head") == "public"
    assert rate_family("POST", "/v1/events") == "events"
    assert rate_family("GET", "/v1/events/ab") == "participant"
    assert rate_family("GET", "/explorer/static/x.js") == "explorer"
    assert rate_family("POST", "/peer/events") == "peer"
    assert rate_family("GET", "/metrics") == "ops"
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.wait("a") == 0.0 and limiter.wait("a") == 0.0
    assert 0.0 < limiter.wait("a") <= 1.0
    assert limiter.wait("b") == 0.0  # per client


def test_a_batch_spends_one_token_per_event_of_the_bucket_its_request_spent() -> None:
    """SPEC 10's batches are no way round the events limit: the handler charges the rest."""
    from types import SimpleNamespace

    from aiohttp.test_utils import make_mocked_request

    config = SimpleNamespace(
        **{f"{name}_rate_per_s": 0.001 for name in ("public", "participant", "events", "ops")},
        **{f"{name}_burst": 10 for name in ("public", "participant", "events", "ops")},
        explorer_rate_per_s=0.001,
        explorer_burst=10,
        peer_rate_per_s=0.001,
        peer_burst=10,
        own_rate_per_s=0.001,
        own_burst=100,
    )
    limits = RateLimits(config, "0123456789abcdef0123", SimpleNamespace(peer_keys=set()))
    post = make_mocked_request("POST", "/v1/events")
    assert limits.wait(post) == ("events", 0.0)  # the middleware's one
    assert limits.charge(post, 8) == 0.0  # a batch of 9: 9 of the 10
    assert limits.charge(post, 2) > 0.0  # a batch of 3 more does not fit, and spends nothing
    assert limits.charge(post, 1) == 0.0
    assert limits.wait(post)[1] > 0.0
    # The operator's own clients spend their own budget, batches included.
    own = make_mocked_request(
        "POST", "/v1/events", headers={"Authorization": "Bearer 0123456789abcdef0123"}
    )
    assert limits.charge(own, 100) == 0.0 and limits.charge(own, 1) > 0.0


def _config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        'participant = "BE"\ndata_dir = "data"\nport = 7700\n'
        'api_token = "0123456789abcdef0123"\ngenesis = "genesis.json"\n' + extra,
        encoding="utf-8",
    )
    return path


def test_connection_bounds_in_node_toml(tmp_path: Path) -> None:
    config = NodeConfig.load(_config(tmp_path, ""))
    assert config.header_timeout_s == 10.0 and config.max_connections_per_address == 32
    config = NodeConfig.load(
        _config(tmp_path, 'header_timeout_s = 2\ntrusted_addresses = ["10.0.0.0/8", "::1"]\n')
    )
    assert config.header_timeout_s == 2.0 and config.trusted_addresses == ("10.0.0.0/8", "::1")
    for bad, said in (
        ("header_timeout_s = 0", "above 0"),
        ("max_connections = -1", "above 0"),
        ('max_connections_per_address = "many"', "must be a int"),
        ('trusted_addresses = ["office"]', "not an IP address"),
        ('trusted_addresses = "10.0.0.1"', "list of addresses"),
    ):
        with pytest.raises(ConfigError, match=said):
            NodeConfig.load(_config(tmp_path, bad + "\n"))
