"""A node's configuration: node.toml, the keys it names and the genesis it follows."""

from __future__ import annotations

import ipaddress
import json
import secrets
import tomllib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ledger.errors import MalformedInput
from ledger.genesis import Genesis
from ledger.keys import EncryptionKey, Signer
from node.custody import PKCS11_SCHEME, CustodyError, Passphrase, load_encryption_key, load_signer
from node.files import load_genesis

T = TypeVar("T")


class ConfigError(Exception):
    """node.toml, or a file it names, is missing or wrong."""


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    participant: str
    data_dir: Path
    host: str
    port: int
    api_token: str
    genesis_path: Path
    #: A PEM file (resolved) or a PKCS#11 URI, as node.toml's `node_key` gives it (SPEC 6).
    node_key_ref: str
    #: None for an observer, which holds no participant key (it opens no sealed identity).
    encryption_key_path: Path | None
    #: The participant's authority key (a PEM file or a PKCS#11 URI), for what the node signs
    #: as its participant's authority; None when node.toml names none.
    authority_key_ref: str | None = None
    #: Body size limits and the public routes' rate limit, per client address.
    max_body_bytes: int = 1024 * 1024
    #: The largest body of a batch on POST /v1/events (up to MAX_BATCH_EVENTS events, SPEC 10).
    max_batch_body_bytes: int = 16 * 1024 * 1024
    public_rate_per_s: float = 50.0
    public_burst: int = 200
    #: How long an HTTP cache may serve a public answer that depends on the head (a status, the
    #: head itself) without asking again (SPEC 10: a short max-age); final blocks are immutable.
    public_max_age_s: int = 5
    #: The other route families' rate limits, per client address (token buckets; 429 beyond).
    participant_rate_per_s: float = 50.0
    participant_burst: int = 500
    events_rate_per_s: float = 200.0
    events_burst: int = 2000
    ops_rate_per_s: float = 50.0
    ops_burst: int = 500
    explorer_rate_per_s: float = 20.0
    explorer_burst: int = 200
    peer_rate_per_s: float = 10.0
    peer_burst: int = 50
    #: The participant's own clients (the operator's token, a registered node key): their own
    #: budget per address, so that a flood from a shared address cannot lock them out.
    own_rate_per_s: float = 2000.0
    own_burst: int = 10_000
    #: Connections: how long a new connection may take to send a complete request header, how
    #: long a kept-alive connection may stay idle, how long one request may take from its header
    #: to its last response byte (its body read included); how many connections at once.
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 15.0
    request_timeout_s: float = 60.0
    max_connections: int = 1000
    max_connections_per_address: int = 32
    #: Connections from the registered nodes' addresses and `trusted_addresses`: a pool of their
    #: own, outside the caps above, so that a flood never locks the peers out.
    peer_connections: int = 512
    trusted_addresses: tuple[str, ...] = ()
    #: Longest request line and header field (bytes), most header fields in one request.
    max_header_bytes: int = 8190
    max_headers: int = 64
    #: Each kind of log line at most `log_repeat_burst` times per `log_repeat_window_s`; past
    #: it, one "similar lines suppressed" line with the count (a flood never fills the disk).
    log_repeat_burst: int = 20
    log_repeat_window_s: float = 60.0
    #: Pending events kept at most; past it the node answers 503 (back-pressure).
    mempool_limit: int = 50_000
    #: Wait this long for more events before proposing a block (batching).
    block_delay_ms: int = 20
    log_level: str = "info"
    #: Byte budget of one catch-up page, asked for and served (/peer/blocks, /v1/chain/blocks):
    #: blocks are added while they fit, the first always (docs/security.md, "Peer links").
    sync_page_bytes: int = 8 * 1024 * 1024
    #: Nonces of peer requests remembered per sender, against replays (docs/security.md).
    peer_replay_entries: int = 50_000
    #: A CA-issued certificate (PEM chain) and its private key shown to API clients instead of
    #: the node key's own certificate (peers always get that one); both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: The authority portal (SPEC 7, docs/portal.md): served at /portal/ when on; its sessions
    #: end after this many minutes without a request.
    portal: bool = False
    portal_idle_minutes: float = 30.0
    #: Where the passphrase of encrypted keys comes from (node run --passphrase-file, or
    #: KPLEDGER_PASSPHRASE, or a prompt): asked only when an encrypted key is opened.
    passphrase: Passphrase = field(default_factory=Passphrase, compare=False, repr=False)
    #: Notifications (docs/api/notifications.md): an idle stream's comment line this often; a
    #: failed webhook delivery's first retry this soon, each next one twice as late, at most
    #: webhook_retry_cap_s apart; one delivery attempt at most webhook_timeout_s.
    stream_heartbeat_s: float = 15.0
    webhook_retry_first_s: float = 5.0
    webhook_retry_cap_s: float = 3600.0
    webhook_timeout_s: float = 10.0
    #: PARTICIPANT (a participant's node, validator or not) or OBSERVER: a node of no
    #: participant that syncs final blocks from `observer_peers` with the sync token each gave
    #: (docs/operations.md, "Observers"), and serves the public routes only.
    role: str = "participant"
    observer_peers: tuple[str, ...] = ()
    #: (peer URL, its sync token), one for each of observer_peers.
    sync_tokens: tuple[tuple[str, str], ...] = ()

    @property
    def observer(self) -> bool:
        return self.role == OBSERVER

    @classmethod
    def load(cls, path: Path | str, passphrase: Passphrase | None = None) -> NodeConfig:
        path = Path(path).resolve()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        base = path.parent

        def rel(key: str, default: str | None = None) -> Path:
            value = raw.get(key, default)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{path}: '{key}' must name a file or directory")
            return (base / value).resolve()

        def key_ref(key: str, default: str | None) -> str | None:
            value = raw.get(key, default)
            if value is None:
                return None
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{path}: '{key}' must name a key file or a pkcs11: URI")
            if value.startswith(PKCS11_SCHEME):
                return value
            return str((base / value).resolve())

        def get(key: str, kind: type, default: Any = None) -> Any:
            value = raw.get(key, default)
            if value is None:
                raise ConfigError(f"{path}: '{key}' is required")
            if kind is float and isinstance(value, int):
                value = float(value)
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise ConfigError(f"{path}: '{key}' must be a {kind.__name__}")
            return value

        def positive(key: str, kind: type) -> Any:
            value = get(key, kind, getattr(cls, key))
            if value <= 0:
                raise ConfigError(f"{path}: '{key}' must be above 0")
            return value

        def trusted() -> tuple[str, ...]:
            value = raw.get("trusted_addresses", [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: 'trusted_addresses' must be a list of addresses")
            for item in value:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError as exc:
                    raise ConfigError(
                        f"{path}: 'trusted_addresses': {item!r} is not an IP address or network"
                    ) from exc
            return tuple(value)

        role = get("role", str, PARTICIPANT)
        if role not in (PARTICIPANT, OBSERVER):
            raise ConfigError(f"{path}: 'role' is {PARTICIPANT!r} or {OBSERVER!r}, not {role!r}")
        if role == OBSERVER:
            for key in ("participant", "authority_key", "encryption_key", "portal"):
                if key in raw:
                    raise ConfigError(
                        f"{path}: an observer is no participant and holds no participant key: "
                        f"'{key}' is not an observer's setting (docs/operations.md, \"Observers\")"
                    )
            peers = observer_peers(path, raw.get("peers"))
            tokens = read_sync_tokens(rel("sync_token_file", "sync.token"), peers)
            # An observer serves no token route; its own token is one nobody holds.
            raw.setdefault("api_token", secrets.token_urlsafe(32))
        else:
            peers, tokens = (), ()
            if "peers" in raw or "sync_token_file" in raw:
                raise ConfigError(
                    f"{path}: 'peers' and 'sync_token_file' are an observer's settings "
                    '(role = "observer")'
                )
        port = get("port", int)
        if not 0 < port < 65536:
            raise ConfigError(f"{path}: 'port' must be 1 to 65535")
        token = get("api_token", str)
        if len(token) < 16:
            raise ConfigError(f"{path}: 'api_token' must be at least 16 characters")
        sync_page_bytes = get("sync_page_bytes", int, cls.sync_page_bytes)
        if not 64 * 1024 <= sync_page_bytes <= 32 * 1024 * 1024:
            raise ConfigError(f"{path}: 'sync_page_bytes' must be 65536 to 33554432 (32 MiB)")
        replay_entries = get("peer_replay_entries", int, cls.peer_replay_entries)
        if ("tls_cert" in raw) != ("tls_key" in raw):
            raise ConfigError(f"{path}: give both 'tls_cert' and 'tls_key', or neither")
        if "tls" in raw:
            raise ConfigError(
                f"{path}: 'tls' is not a setting: a node speaks TLS when its genesis's addresses "
                "are https:// (docs/security.md)"
            )
        portal = get("portal", bool, False)
        idle = get("portal_idle_minutes", float, cls.portal_idle_minutes)
        if not 0 < idle <= 24 * 60:
            raise ConfigError(f"{path}: 'portal_idle_minutes' must be above 0 and at most 1440")
        if portal and "authority_key" not in raw:
            raise ConfigError(
                f"{path}: 'portal = true' needs 'authority_key': the node signs what officers do "
                "with the participant's authority key"
            )
        if not 1_000 <= replay_entries <= 10_000_000:
            raise ConfigError(f"{path}: 'peer_replay_entries' must be 1000 to 10000000")
        if get("webhook_retry_first_s", float, cls.webhook_retry_first_s) > 10.0:
            raise ConfigError(f"{path}: 'webhook_retry_first_s' is at most 10 (SPEC 9)")
        return cls(
            path=path,
            participant=OBSERVER if role == OBSERVER else get("participant", str),
            data_dir=rel("data_dir"),
            host=get("host", str, "127.0.0.1"),
            port=port,
            api_token=token,
            genesis_path=rel("genesis"),
            node_key_ref=key_ref("node_key", "node.pem") or "",
            encryption_key_path=(
                None if role == OBSERVER else rel("encryption_key", "encryption.pem")
            ),
            authority_key_ref=key_ref("authority_key", None),
            max_body_bytes=get("max_body_bytes", int, cls.max_body_bytes),
            public_rate_per_s=get("public_rate_per_s", float, cls.public_rate_per_s),
            public_burst=get("public_burst", int, cls.public_burst),
            **{key: positive(key, kind) for key, kind in _BOUNDS.items()},
            trusted_addresses=trusted(),
            mempool_limit=get("mempool_limit", int, cls.mempool_limit),
            block_delay_ms=get("block_delay_ms", int, cls.block_delay_ms),
            log_level=get("log_level", str, cls.log_level),
            sync_page_bytes=sync_page_bytes,
            peer_replay_entries=replay_entries,
            tls_cert=rel("tls_cert") if "tls_cert" in raw else None,
            tls_key=rel("tls_key") if "tls_key" in raw else None,
            portal=portal,
            portal_idle_minutes=idle,
            passphrase=passphrase or Passphrase(),
            role=role,
            observer_peers=peers,
            sync_tokens=tokens,
        )

    def genesis(self) -> Genesis:
        try:
            return load_genesis(self.genesis_path)
        except MalformedInput as exc:
            raise ConfigError(str(exc)) from exc

    def node_key(self) -> Signer:
        """The node key: from its PEM file (decrypted with the passphrase) or its token."""
        return _load(lambda: load_signer(self.node_key_ref, self.passphrase))

    def encryption_key(self) -> EncryptionKey:
        path = self.encryption_key_path
        if path is None:
            raise ConfigError(f"{self.path}: an observer holds no encryption key")
        return _load(lambda: load_encryption_key(path, self.passphrase))

    def authority_key(self) -> Signer:
        """The participant's authority key node.toml names (`authority_key`)."""
        if self.authority_key_ref is None:
            raise ConfigError(f"{self.path} names no authority_key")
        ref = self.authority_key_ref
        return _load(lambda: load_signer(ref, self.passphrase))

    def open_keys(self) -> None:
        """Open every key the node runs with now, so that a wrong passphrase, PIN or path
        stops `node run` before it listens (exit 2) rather than inside the running node."""
        self.node_key()
        if not self.observer:
            self.encryption_key()

    def secrets(self) -> tuple[str, ...]:
        """What the logs must never show: the API token, and an observer's sync tokens."""
        return (self.api_token, *(token for _, token in self.sync_tokens))


PARTICIPANT = "participant"
OBSERVER = "observer"


def observer_peers(path: Path, value: Any) -> tuple[str, ...]:
    """node.toml's `peers`: the URLs of the nodes an observer syncs from (at least one)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: an observer's 'peers' is a list of node URLs (at least one)")
    peers = []
    for url in value:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"{path}: 'peers': {url!r} is not an https:// URL of a node")
        peers.append(url.strip().rstrip("/"))
    if len(set(peers)) != len(peers):
        raise ConfigError(f"{path}: 'peers' names a node twice")
    return tuple(peers)


def read_sync_tokens(path: Path, peers: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The sync token of each peer, from an observer's token file: lines `URL TOKEN` (a token
    one peer issued) or a bare `TOKEN` (for the peers without a line of their own); blank lines
    and lines starting with # are skipped. Every peer must end with a token."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the observer's sync token file {path}: {exc.strerror} (the "
            "participant's operator issues one: kpledger token add --scope sync)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not a text file of tokens") from exc
    default: str | None = None
    own: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) == 1:
            if default is not None:
                raise ConfigError(f"{path}:{number}: a second token for every peer")
            default = words[0]
        elif len(words) == 2:
            url = words[0].rstrip("/")
            if url not in peers:
                raise ConfigError(f"{path}:{number}: {url} is not one of node.toml's peers")
            if url in own:
                raise ConfigError(f"{path}:{number}: a second token for {url}")
            own[url] = words[1]
        else:
            raise ConfigError(f"{path}:{number}: a line is `TOKEN` or `URL TOKEN`")
    tokens = []
    for url in peers:
        token = own.get(url, default)
        if token is None:
            raise ConfigError(f"{path} holds no sync token for {url}")
        if len(token) < 16:
            raise ConfigError(f"{path}: the token for {url} is too short to be a token")
        tokens.append((url, token))
    return tuple(tokens)


#: The bounds node.toml may set, each above 0, by kind.
_BOUNDS: dict[str, type] = {
    "public_max_age_s": int,
    "max_batch_body_bytes": int,
    "participant_rate_per_s": float,
    "participant_burst": int,
    "events_rate_per_s": float,
    "events_burst": int,
    "ops_rate_per_s": float,
    "ops_burst": int,
    "explorer_rate_per_s": float,
    "explorer_burst": int,
    "peer_rate_per_s": float,
    "peer_burst": int,
    "own_rate_per_s": float,
    "own_burst": int,
    "header_timeout_s": float,
    "keepalive_timeout_s": float,
    "request_timeout_s": float,
    "max_connections": int,
    "max_connections_per_address": int,
    "peer_connections": int,
    "max_header_bytes": int,
    "max_headers": int,
    "log_repeat_burst": int,
    "log_repeat_window_s": float,
    "stream_heartbeat_s": float,
    "webhook_retry_first_s": float,
    "webhook_retry_cap_s": float,
    "webhook_timeout_s": float,
}


def read_api_token(path: Path | str) -> str:
    """The api_token of a node.toml, and nothing else of it: what the CLI's --config reads."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    token = raw.get("api_token")
    if not isinstance(token, str) or not token.strip():
        raise ConfigError(f"{path} holds no api_token")
    return token.strip()


def _load(loader: Callable[[], T]) -> T:
    try:
        return loader()
    except CustodyError as exc:
        raise ConfigError(str(exc)) from exc


def toml_value(value: Any) -> str:
    """A TOML literal for the few kinds node.toml holds (JSON strings are valid TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_toml(path: Path, values: dict[str, Any], comment: str) -> None:
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
