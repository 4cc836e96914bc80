"""TLS on node links: the node's self-signed certificate for its Ed25519 node key, the listener's
context, and the checks that peers and clients make of the key a node shows (docs/security.md,
"On the wire")."""

from __future__ import annotations

import dataclasses
import functools
import http.client
import ipaddress
import os
import secrets
import socket
import ssl
import tempfile
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ledger.errors import MalformedInput
from ledger.genesis import Genesis
from ledger.keys import Signer, SigningKey, key_id
from node.files import load_genesis

#: The server name (SNI) a peer or a pinning client asks for: a node then shows the certificate
#: of its node key, even when node.toml gives it a CA-issued certificate for other clients.
NODE_SNI = "kpledger-node"
#: The node certificate's validity. Nobody checks it (the key is what is pinned); it is made
#: again at every start, so it only has to outlast one run of the node.
CERT_DAYS = 3650


class TlsError(Exception):
    """A TLS set-up that cannot work: a certificate or key file missing or wrong, a genesis that
    mixes http:// and https:// addresses."""


class NodeNotTrusted(ssl.SSLError):
    """The node's certificate is not for a key the register lists for it (the connection is
    closed before a byte of the request is sent)."""


# -- the node's certificate ------------------------------------------------------------------------
def _private(key: SigningKey) -> ed25519.Ed25519PrivateKey:
    loaded = serialization.load_pem_private_key(key.to_pem(), password=None)
    if not isinstance(
        loaded, ed25519.Ed25519PrivateKey
    ):  # pragma: no cover - SigningKey is Ed25519
        raise TlsError("the node key is not an Ed25519 key")
    return loaded


def node_certificate(key: SigningKey, now: datetime | None = None) -> x509.Certificate:
    """A self-signed X.509 certificate for the node key: what the node shows to peers.

    Its subject names the key id; what a peer checks is the public key itself (against the
    register), never a name, a date or an issuer.
    """
    now = now or datetime.now(UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kpledger node"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"node key {key.key_id}"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_private(key).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NODE_SNI)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(_private(key), None)
    )


#: DER of the AlgorithmIdentifier of Ed25519 (RFC 8410): the signature algorithm of both kinds
#: of node certificate.
_ED25519_ALGORITHM = bytes.fromhex("300506032b6570")


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def delegated_certificate(
    node_key: Signer, tls_key: SigningKey, now: datetime | None = None
) -> x509.Certificate:
    """A certificate for `tls_key` signed by the node key, for a node key that never leaves its
    hardware token (OpenSSL cannot hold it): the TLS handshake proves the TLS key, the
    certificate's signature proves that the node key vouched for it. The node key's raw public
    key is the certificate's authority key identifier, so that a peer knows which key to check
    the signature with; what it compares with the register is that key (certificate_key)."""
    now = now or datetime.now(UTC)
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kpledger node"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"node key {key_id(node_key.public_bytes)}"),
        ]
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kpledger node"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"tls key of {key_id(node_key.public_bytes)}"),
        ]
    )
    ephemeral = _private(tls_key)
    draft = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(ephemeral.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NODE_SNI)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier(node_key.public_bytes, None, None), critical=False
        )
        .sign(ephemeral, None)
    )
    # The same to-be-signed part (its signature algorithm is Ed25519's whichever key signs),
    # signed instead by the node key, inside its token.
    tbs = draft.tbs_certificate_bytes
    signature = node_key.sign_raw(tbs)
    der = _der(0x30, tbs + _ED25519_ALGORITHM + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def certificate_key(der: bytes | None) -> bytes | None:
    """The raw Ed25519 node key a DER certificate speaks for, or None (not Ed25519, not a
    cert): the key of a self-signed certificate, or the key (named as the authority key
    identifier) whose valid signature a delegated certificate carries."""
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
        public = cert.public_key()
    except ValueError:
        return None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        return None
    subject = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (x509.ExtensionNotFound, ValueError):
        return subject
    issuer = aki.key_identifier
    if issuer is None or len(issuer) != 32 or issuer == subject:
        return subject
    if not _raw_verify(issuer, cert.tbs_certificate_bytes, cert.signature):
        return None
    return issuer


def _raw_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (ValueError, InvalidSignature):
        return False
    return True


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_NONE  # callers are authenticated by their signed requests
    return context


def _load_node_key(context: ssl.SSLContext, cert_file: Path, key: SigningKey) -> None:
    """Load the node key into `context` without leaving it on disk in the clear: OpenSSL reads
    keys from files only, so it gets a copy encrypted under a one-time password, deleted at once."""
    password = secrets.token_bytes(32)
    encrypted = _private(key).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    fd, name = tempfile.mkstemp(prefix=".node-key-", suffix=".pem", dir=cert_file.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(encrypted)
        context.load_cert_chain(cert_file, name, password=password)
    finally:
        os.unlink(name)


def browser_certificate(tls_dir: Path, host: str) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for web browsers, kept in `tls_dir` (browser.crt,
    browser.key, 0600) so that a browser's exception for it lasts across restarts.

    Browsers do not speak Ed25519 in TLS, so they cannot be shown the node key's certificate;
    they get this one (or node.toml's tls_cert). Nothing is pinned to it: peers and kpledger
    clients ask for NODE_SNI and check the node key.
    """
    cert_file, key_file = tls_dir / "browser.crt", tls_dir / "browser.key"
    if cert_file.is_file() and key_file.is_file():
        return cert_file, key_file
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kpledger node {host}")])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def server_context(
    node_key: Signer,
    tls_dir: Path,
    host: str = "127.0.0.1",
    ca_cert: Path | None = None,
    ca_key: Path | None = None,
) -> ssl.SSLContext:
    """The listener's TLS 1.3 context.

    To a client that asks for NODE_SNI (peers, and kpledger clients pinning the register's
    key) it shows the node key's certificate (written to `tls_dir`/node.crt, made anew at each
    start). To any other client (a web browser, a client verifying a CA) it shows node.toml's
    tls_cert (`ca_cert` with `ca_key`), else browser_certificate().
    """
    tls_dir.mkdir(parents=True, exist_ok=True)
    cert_file = tls_dir / "node.crt"
    if isinstance(node_key, SigningKey):
        tls_key, cert = node_key, node_certificate(node_key)
    else:  # a token's key: a TLS key of this run, vouched for by the node key
        tls_key = SigningKey.generate()
        cert = delegated_certificate(node_key, tls_key)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    node_context = _server_context()
    _load_node_key(node_context, cert_file, tls_key)
    if ca_cert is None or ca_key is None:
        ca_cert, ca_key = browser_certificate(tls_dir, host)
    context = _server_context()
    try:
        context.load_cert_chain(ca_cert, ca_key)
    except (OSError, ValueError) as exc:
        raise TlsError(
            f"cannot load tls_cert {ca_cert} with tls_key {ca_key}: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from exc

    def by_name(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        if name == NODE_SNI:
            sock.context = node_context

    context.sni_callback = by_name
    return context


def genesis_uses_tls(genesis: Genesis) -> bool:
    """Whether a network speaks TLS: every address of its genesis is https:// (True) or every
    one http:// (False, a plain network: benchmarks only, see docs/security.md)."""
    addresses = [v.address for v in genesis.validators]
    addresses += [p.address for p in genesis.participants if p.address]
    schemes = {urllib.parse.urlsplit(a).scheme for a in addresses}
    if schemes == {"https"}:
        return True
    if schemes <= {"http"}:
        return False
    raise TlsError(
        "genesis mixes http:// and https:// addresses (or names another scheme): every node of "
        "a network speaks TLS (https://), or, for a benchmark, none"
    )


# -- peers: aiohttp ------------------------------------------------------------------------------
class PeerPin(aiohttp.Fingerprint):
    """aiohttp's check of a server's certificate, made to check the node key the register lists
    for the peer instead of a certificate hash. It runs right after the handshake, before the
    request is written. (aiohttp then uses its unverified client context: no CA, no name.)"""

    def __init__(self, node_key: bytes) -> None:
        super().__init__(node_key)  # 32 bytes: accepted as a "SHA-256" length, never compared
        self.node_key = node_key

    def check(self, transport: Any) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        got = certificate_key(sslobj.getpeercert(binary_form=True)) if sslobj else None
        if got != self.node_key or sslobj is None or sslobj.version() != "TLSv1.3":
            peer = transport.get_extra_info("peername") or ("?", 0)
            raise aiohttp.ServerFingerprintMismatch(self.node_key, got or b"", peer[0], peer[1])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PeerPin) and other.node_key == self.node_key

    def __hash__(self) -> int:
        return hash(self.node_key)


@functools.lru_cache(maxsize=4096)
def peer_pin(node_key: bytes) -> PeerPin:
    return PeerPin(node_key)


# -- clients: urllib -------------------------------------------------------------------------------
def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port


@dataclass(frozen=True)
class ClientTrust:
    """How a client verifies a node: the node keys a register lists (pinned; by address where
    the URL is a registered address, else any of them), else a CA file, else the system's CAs.

    `source` says where the trust came from, for messages.
    """

    keys_by_address: dict[tuple[str, int], frozenset[bytes]] = field(default_factory=dict)
    keys: frozenset[bytes] = frozenset()
    cafile: Path | None = None
    source: str = "the system's certificate authorities"
    #: The genesis the pins came from, if they did: a register proven against it may replace
    #: them (node/client.py follows it when a node shows a key governance gave it since).
    genesis: Genesis | None = None

    @classmethod
    def from_genesis(cls, genesis: Genesis, source: str) -> ClientTrust:
        trust = cls.from_register(
            [(v.address, v.node_key) for v in genesis.validators]
            + [(p.address, p.node_key) for p in genesis.participants if p.node_key],
            source,
        )
        return dataclasses.replace(trust, genesis=genesis)

    @classmethod
    def from_register(
        cls, nodes: Iterable[tuple[str, bytes | None]], source: str, cafile: Path | None = None
    ) -> ClientTrust:
        by_address: dict[tuple[str, int], set[bytes]] = {}
        keys: set[bytes] = set()
        for address, node_key in nodes:
            if not node_key:
                continue
            keys.add(node_key)
            where = _host_port(address) if address else None
            if where is not None:
                by_address.setdefault(where, set()).add(node_key)
        return cls(
            {k: frozenset(v) for k, v in by_address.items()}, frozenset(keys), cafile, source
        )

    @property
    def pinned(self) -> bool:
        return bool(self.keys)

    def pins_for(self, url: str) -> frozenset[bytes]:
        """The node keys a node at `url` may show: those the register lists at that address,
        else (the URL is not a registered address, e.g. a name for 127.0.0.1) any of its keys."""
        where = _host_port(url)
        return self.keys_by_address.get(where, self.keys) if where else self.keys

    def opener(self, url: str) -> urllib.request.OpenerDirector:
        if self.pinned:
            return urllib.request.build_opener(_PinnedHandler(self.pins_for(url), self.source))
        context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))

    def aiohttp_ssl(self, url: str) -> PeerPin | ssl.SSLContext:
        """What to pass as aiohttp's `ssl=` for a request to `url` (with server_hostname=
        NODE_SNI when pinned): one pinned key (the register lists one node key per address)."""
        if self.pinned:
            pins = self.pins_for(url)
            if len(pins) == 1:
                return peer_pin(next(iter(pins)))
            raise TlsError(f"{url} is not the registered address of one node: give its address")
        return ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)


@functools.lru_cache(maxsize=1)
def pinned_context() -> ssl.SSLContext:
    """A client context that does not check names or CAs: the node key is checked instead.
    (One for the process: making a context costs more than a handshake with it.)"""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def check_pinned(sock: ssl.SSLSocket, pins: frozenset[bytes], source: str) -> None:
    got = certificate_key(sock.getpeercert(binary_form=True))
    if got not in pins:
        sock.close()
        shown = f"node key {key_id(got)}" if got else "no Ed25519 node key"
        raise NodeNotTrusted(
            f"the node shows {shown}, not a node key that {source} lists for it: it is not that "
            f"network's node (or the network changed its key and {source} is out of date)"
        )


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, *, pins: frozenset[bytes], source: str, **kwargs: Any) -> None:
        super().__init__(host, context=pinned_context(), **kwargs)
        self._pins = pins
        self._source = source

    def connect(self) -> None:
        # The TCP connection of plain HTTP, then the handshake and the pin check before any
        # byte of the request (the bearer token among them) is written.
        http.client.HTTPConnection.connect(self)
        tls = pinned_context().wrap_socket(self.sock, server_hostname=NODE_SNI)
        check_pinned(tls, self._pins, self._source)
        self.sock = tls


class _PinnedHandler(urllib.request.HTTPSHandler):
    def __init__(self, pins: frozenset[bytes], source: str) -> None:
        super().__init__()
        self._pins = pins
        self._source = source

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(PinnedHTTPSConnection, pins=self._pins, source=self._source)
        return self.do_open(connection, req)


def speaks_tls(url: str, timeout: float = 3.0) -> bool:
    """Whether whatever listens at `url`'s host and port completes a TLS handshake (to tell a
    person who typed http:// for a TLS node to type https://)."""
    where = _host_port(url)
    if where is None:
        return False
    try:
        with (
            socket.create_connection(where, timeout=timeout) as raw,
            pinned_context().wrap_socket(raw, server_hostname=NODE_SNI),
        ):
            return True
    except (OSError, ValueError):
        return False


# -- which trust a command uses ----------------------------------------------------------------
#: The genesis a command pins node keys from when it is given none (SPEC 6).
GENESIS_ENV = "KPLEDGER_GENESIS"
#: A CA file to verify nodes against (their tls_cert), when no genesis is given.
CACERT_ENV = "KPLEDGER_CACERT"


def _genesis_of_config(config: Path) -> Path | None:
    try:
        raw = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the command itself says what is wrong with its --config
    name = raw.get("genesis")
    return (config.resolve().parent / name) if isinstance(name, str) and name else None


def _genesis_beside_key(key: Path) -> Path | None:
    """DIR/genesis.json for a key DIR/<CODE>/authority.pem, as `network init` and `network
    keygen` lay keys out (or genesis.json in the key's own directory)."""
    if not key.is_file():
        return None
    folder = key.resolve().parent
    for candidate in (folder / "genesis.json", folder.parent / "genesis.json"):
        if candidate.is_file():
            return candidate
    return None


def client_trust(
    *,
    genesis: Path | None = None,
    config: Path | None = None,
    key: Path | None = None,
    cacert: Path | None = None,
) -> ClientTrust:
    """The trust of one command, from the first of: --cacert (or KPLEDGER_CACERT); --genesis;
    the genesis --config's node.toml names; the genesis.json beside --key's directory (the
    layout of `network init`); KPLEDGER_GENESIS; else the system's certificate authorities.

    Raises TlsError when the genesis or CA file named cannot be read.
    """
    if cacert is None and os.environ.get(CACERT_ENV):
        cacert = Path(os.environ[CACERT_ENV])
    if cacert is not None:
        if not cacert.is_file():
            raise TlsError(f"--cacert {cacert}: no such file")
        return ClientTrust(cafile=cacert, source=f"the certificate authorities of {cacert}")
    found: tuple[Path, str] | None = None
    if genesis is not None:
        found = (genesis, f"--genesis {genesis}")
    elif config is not None and (named := _genesis_of_config(config)) is not None:
        found = (named, f"{named} (named by {config})")
    elif key is not None and (beside := _genesis_beside_key(key)) is not None:
        found = (beside, f"{beside} (beside the key {key})")
    elif os.environ.get(GENESIS_ENV):
        path = Path(os.environ[GENESIS_ENV])
        found = (path, f"{path} ({GENESIS_ENV})")
    if found is None:
        return ClientTrust()
    path, source = found
    try:
        loaded = load_genesis(path)
    except OSError as exc:
        raise TlsError(f"cannot read the genesis {source}: {exc.strerror}") from exc
    except MalformedInput as exc:
        raise TlsError(f"the genesis {source} is not a genesis file: {exc}") from exc
    return ClientTrust.from_genesis(loaded, f"the genesis {source}")
