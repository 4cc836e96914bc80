"""`kpledger network observer`: an observer's node key, its copy of genesis, its sync tokens and
its node.toml (docs/operations.md, "Observers")."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import MalformedInput
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from node.config import ConfigError, observer_peers, read_sync_tokens, write_toml
from node.files import load_genesis, save_genesis, write_private_pem
from node.netinit import InitError
from node.tls import TlsError, genesis_uses_tls

DEFAULT_OBSERVER_PORT = 7800
TOKEN_FILE = "sync.token"


@dataclass(frozen=True)
class Observer:
    config: Path
    node_key: bytes
    address: str
    peers: tuple[str, ...]
    #: The peers genesis does not list (a node admitted later): skipped until the chain lists it.
    unlisted: tuple[str, ...]
    #: Whether DIR/sync.token was written (else the operator puts the peers' tokens there).
    token_written: bool


def listed_addresses(genesis: Genesis) -> set[str]:
    addresses = {v.address.rstrip("/") for v in genesis.validators}
    addresses |= {p.address.rstrip("/") for p in genesis.participants if p.address}
    return addresses


def init_observer(
    genesis_path: Path,
    directory: Path,
    peers: list[str],
    *,
    port: int = DEFAULT_OBSERVER_PORT,
    host: str = "127.0.0.1",
    token_file: Path | None = None,
    passphrase: bytes | None = None,
) -> Observer:
    """Write DIR/node.pem (the observer's own TLS identity: it signs nothing on the chain),
    DIR/genesis.json, DIR/sync.token (from `token_file`) and DIR/node.toml."""
    directory = Path(directory)
    config = directory / "node.toml"
    if config.exists() or (directory / "node.pem").exists():
        raise InitError(f"{directory} already holds an observer: refusing to overwrite it")
    if not 0 < port < 65536:
        raise InitError("--port must be 1 to 65535")
    try:
        genesis = load_genesis(genesis_path)
        secure = genesis_uses_tls(genesis)
    except OSError as exc:
        raise InitError(f"cannot read {genesis_path}: {exc.strerror}") from exc
    except (MalformedInput, TlsError) as exc:
        raise InitError(f"{genesis_path}: {exc}") from exc
    try:
        urls = observer_peers(config, peers)
    except ConfigError as exc:
        raise InitError(str(exc).replace(f"{config}: an observer's 'peers'", "--peers")) from exc
    if secure:
        plain = [u for u in urls if urllib.parse.urlsplit(u).scheme != "https"]
        if plain:
            raise InitError(f"the network speaks TLS: give https:// URLs, not {', '.join(plain)}")
    listed = listed_addresses(genesis)
    unlisted = tuple(u for u in urls if u not in listed)
    if len(unlisted) == len(urls):
        raise InitError(
            "no peer is a node that genesis lists (its validators' and participants' addresses): "
            "an observer syncs from a registered node, whose key its TLS must show"
        )
    directory.mkdir(parents=True, exist_ok=True)
    written = False
    if token_file is not None:
        try:
            read_sync_tokens(token_file, urls)
        except ConfigError as exc:
            raise InitError(str(exc)) from exc
        target = directory / TOKEN_FILE
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token_file.read_text(encoding="utf-8"))
        written = True
    key = SigningKey.generate()
    write_private_pem(directory / "node.pem", key.to_pem(passphrase))
    if Path(genesis_path).resolve() != (directory / "genesis.json").resolve():
        save_genesis(genesis, directory / "genesis.json")
    write_toml(
        config,
        {
            "role": "observer",
            "data_dir": "data",
            "host": host,
            "port": port,
            "genesis": "genesis.json",
            "node_key": "node.pem",
            "peers": list(urls),
            "sync_token_file": TOKEN_FILE,
        },
        f"kpledger observer of {genesis.chain_id}: no participant, no vote; it syncs final blocks "
        f"from its peers\nwith the sync tokens in {TOKEN_FILE} and serves the public routes. "
        "Paths are relative to this file.",
    )
    return Observer(
        config=config,
        node_key=key.public_bytes,
        address=f"{'https' if secure else 'http'}://{host}:{port}",
        peers=urls,
        unlisted=unlisted,
        token_written=written,
    )
