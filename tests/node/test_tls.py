"""node/tls.py without processes: the node certificate, which networks speak TLS, the trust a
command resolves, the listener's choice of certificate by server name, and node.toml's TLS keys."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.keys import SigningKey
from node import tls
from node.config import ConfigError, NodeConfig
from node.files import load_genesis
from node.netinit import init_network, parse_participants


def network(tmp_path: Path, plain: bool = False) -> Path:
    init_network(tmp_path / "net", parse_participants("BE,AE,IN,RU"), tls=not plain)
    return tmp_path / "net"


def test_the_node_certificate_is_for_the_node_key() -> None:
    key = SigningKey.generate()
    cert = tls.node_certificate(key)
    from cryptography.hazmat.primitives import serialization

    der = cert.public_bytes(serialization.Encoding.DER)
    assert tls.certificate_key(der) == key.public_bytes
    assert tls.certificate_key(b"not a certificate") is None
    assert tls.certificate_key(None) is None


def test_a_network_speaks_tls_exactly_when_every_address_is_https(tmp_path: Path) -> None:

    secure = load_genesis(network(tmp_path) / "genesis.json")
    assert tls.genesis_uses_tls(secure)
    plain = load_genesis(network(tmp_path / "p", plain=True) / "genesis.json")
    assert not tls.genesis_uses_tls(plain)
    first = secure.validators[0]
    mixed = replace(
        secure, validators=(replace(first, address="http://127.0.0.1:1"), *secure.validators[1:])
    )
    with pytest.raises(tls.TlsError, match="mixes"):
        tls.genesis_uses_tls(mixed)


def test_a_command_finds_the_genesis_to_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tls.GENESIS_ENV, raising=False)
    monkeypatch.delenv(tls.CACERT_ENV, raising=False)
    net = network(tmp_path)

    keys = {v.node_key for v in load_genesis(net / "genesis.json").validators}
    # Beside --key (DIR/<CODE>/authority.pem finds DIR/genesis.json), from --config, --genesis.
    for trust in (
        tls.client_trust(key=net / "BE" / "authority.pem"),
        tls.client_trust(config=net / "AE" / "node.toml"),
        tls.client_trust(genesis=net / "genesis.json"),
    ):
        assert trust.pinned and trust.keys == keys
    # An address of genesis pins that node's key only; another URL any of them.
    genesis = load_genesis(net / "genesis.json")
    be = genesis.validators[0]
    trust = tls.client_trust(genesis=net / "genesis.json")
    assert trust.pins_for(be.address + "/v1/public/head") == {be.node_key}
    assert trust.pins_for("https://localhost:1") == keys
    # Nothing given: the system's CAs (never "no verification").
    assert not tls.client_trust().pinned
    monkeypatch.setenv(tls.GENESIS_ENV, str(net / "genesis.json"))
    assert tls.client_trust().keys == keys
    # --cacert wins, and must exist.
    with pytest.raises(tls.TlsError, match="no such file"):
        tls.client_trust(genesis=net / "genesis.json", cacert=tmp_path / "missing.pem")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(tls.TlsError, match="not a genesis"):
        tls.client_trust(genesis=broken)


def serve_once(context: ssl.SSLContext) -> tuple[int, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def run() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            try:
                with context.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except (OSError, ssl.SSLError):
                pass
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_the_listener_shows_the_node_key_to_who_asks_for_it_and_another_cert_to_browsers(
    tmp_path: Path,
) -> None:
    key = SigningKey.generate()
    port, thread = serve_once(tls.server_context(key, tmp_path / "tls"))
    pinned = tls.pinned_context()
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        pinned.wrap_socket(raw, server_hostname=tls.NODE_SNI) as conn,
    ):
        assert conn.version() == "TLSv1.3"
        tls.check_pinned(conn, frozenset({key.public_bytes}), "test")
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        pinned.wrap_socket(raw, server_hostname=None) as conn,
    ):
        shown = tls.certificate_key(conn.getpeercert(binary_form=True))
        assert shown != key.public_bytes  # the browsers' ECDSA certificate
        with pytest.raises(tls.NodeNotTrusted, match="no Ed25519 node key"):
            tls.check_pinned(conn, frozenset({key.public_bytes}), "test")
    thread.join(5)
    assert (tmp_path / "tls" / "node.crt").exists()
    assert (tmp_path / "tls" / "browser.key").stat().st_mode & 0o077 == 0
    assert not [p for p in (tmp_path / "tls").iterdir() if p.name.startswith(".node-key")]


def test_node_toml_tls_keys(tmp_path: Path) -> None:
    net = network(tmp_path)
    config = net / "BE" / "node.toml"
    text = config.read_text()
    config.write_text(text + 'tls_cert = "cert.pem"\n')
    with pytest.raises(ConfigError, match="both 'tls_cert' and 'tls_key'"):
        NodeConfig.load(config)
    config.write_text(text + "tls = false\n")
    with pytest.raises(ConfigError, match="'tls' is not a setting"):
        NodeConfig.load(config)
    config.write_text(text + 'tls_cert = "c.pem"\ntls_key = "k.pem"\n')
    loaded = NodeConfig.load(config)
    assert loaded.tls_cert == (net / "BE" / "c.pem").resolve()


def ca_issued(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate it issued for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Ministry CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node.be.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_a_ca_issued_tls_cert_is_shown_to_clients_and_the_node_key_still_to_peers(
    tmp_path: Path,
) -> None:
    ca, cert, cert_key = ca_issued(tmp_path)
    key = SigningKey.generate()
    port, thread = serve_once(
        tls.server_context(key, tmp_path / "tls", "127.0.0.1", cert, cert_key)
    )
    verifying = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        verifying.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        assert conn.version() == "TLSv1.3"  # verified against the CA, host name included
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        tls.pinned_context().wrap_socket(raw, server_hostname=tls.NODE_SNI) as conn,
    ):
        tls.check_pinned(conn, frozenset({key.public_bytes}), "test")
    thread.join(5)
    with pytest.raises(tls.TlsError, match="cannot load tls_cert"):
        tls.server_context(key, tmp_path / "tls", "127.0.0.1", cert, tmp_path / "missing.pem")
