"""`kpledger network init`: keys, genesis.json and node.toml for each participant of a new network."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledger.certificate import country_name, is_country, is_participant_code
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.keys import EncryptionKey, SigningKey
from node.config import write_toml
from node.files import load_genesis, save_genesis, write_private_pem
from node.tls import genesis_uses_tls

DEFAULT_BASE_PORT = 7700

#: Display names for the participants whose code is not a country.
PARTICIPANT_NAMES = {"EU": "European Union"}


class InitError(Exception):
    """The participant list or the target directory is not usable."""


@dataclass(frozen=True)
class ParticipantSpec:
    code: str
    countries: tuple[str, ...]


def parse_participants(text: str) -> list[ParticipantSpec]:
    """`BE,AE,IN,RU` or `EU:BE+DE+CZ,AE`: codes, with the countries of multi-country participants."""
    specs = []
    for item in [part.strip() for part in text.split(",") if part.strip()]:
        code, _, countries_text = item.partition(":")
        code = code.strip().upper()
        if not is_participant_code(code):
            raise InitError(f"{code!r} is not an ISO 3166-1 alpha-2 code or EU")
        if countries_text:
            countries = tuple(
                c.strip().upper() for c in re.split(r"[+ ]", countries_text) if c.strip()
            )
        elif code == "EU":
            raise InitError("EU stands for several countries: write it EU:BE+DE+CZ")
        else:
            countries = (code,)
        for country in countries:
            if not is_country(country):
                raise InitError(f"{country!r} (in {item}) is not an ISO 3166-1 alpha-2 code")
        specs.append(ParticipantSpec(code, countries))
    if len(specs) < 1:
        raise InitError("name at least one participant")
    codes = [s.code for s in specs]
    if len(set(codes)) != len(codes):
        raise InitError("a participant is named twice")
    all_countries = [c for s in specs for c in s.countries]
    if len(set(all_countries)) != len(all_countries):
        raise InitError("a country belongs to two participants")
    return specs


def write_keys(
    folder: Path, passphrase: bytes | None = None
) -> tuple[SigningKey, SigningKey, EncryptionKey]:
    """A participant's three new keys, as PKCS#8 PEM files readable by their owner only;
    encrypted under `passphrase` when one is given (docs/security.md, "Keys at rest")."""
    folder.mkdir(parents=True, exist_ok=True)
    authority, node_key, encryption = (
        SigningKey.generate(),
        SigningKey.generate(),
        EncryptionKey.generate(),
    )
    write_private_pem(folder / "authority.pem", authority.to_pem(passphrase))
    write_private_pem(folder / "node.pem", node_key.to_pem(passphrase))
    write_private_pem(folder / "encryption.pem", encryption.to_pem(passphrase))
    return authority, node_key, encryption


def participant_name(spec: ParticipantSpec) -> str:
    return PARTICIPANT_NAMES.get(spec.code) or country_name(spec.code)


def init_network(
    directory: Path,
    specs: list[ParticipantSpec],
    *,
    base_port: int = DEFAULT_BASE_PORT,
    host: str = "127.0.0.1",
    chain_id: str | None = None,
    parameters: Parameters | None = None,
    tls: bool = True,
    passphrase: bytes | None = None,
) -> Genesis:
    """Write every participant's keys (encrypted under `passphrase` if given) and node.toml,
    and the shared genesis.json.

    The addresses are https:// and the nodes speak TLS (docs/security.md); `tls=False`
    makes a plain network, for benchmarks that measure what TLS costs."""
    directory = Path(directory)
    if (directory / "genesis.json").exists():
        raise InitError(f"{directory}/genesis.json already exists: refusing to overwrite a network")
    if not 0 < base_port < 65536 - len(specs):
        raise InitError("--base-port leaves no room for the nodes' ports")
    directory.mkdir(parents=True, exist_ok=True)
    participants = []
    validators = []
    for index, spec in enumerate(specs):
        folder = directory / spec.code
        authority, node_key, encryption = write_keys(folder, passphrase)
        port = base_port + index
        address = f"{'https' if tls else 'http'}://{host}:{port}"
        participants.append(
            Participant(
                code=spec.code,
                name=participant_name(spec),
                countries=spec.countries,
                authority_key=authority.public_bytes,
                encryption_key=encryption.public_bytes,
                node_key=node_key.public_bytes,
                address=address,
            )
        )
        validators.append(Validator(spec.code, node_key.public_bytes, address))
        write_node_toml(folder, spec, host, port)
    now = datetime.now(UTC).replace(microsecond=0)
    genesis = Genesis(
        chain_id=chain_id or f"kp-{now.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}",
        genesis_time=now.isoformat(),
        participants=tuple(participants),
        validators=tuple(validators),
        parameters=parameters or Parameters(),
    )
    save_genesis(genesis, directory / "genesis.json")
    return genesis


def write_node_toml(folder: Path, spec: ParticipantSpec, host: str, port: int) -> Path:
    toml_path = folder / "node.toml"
    write_toml(
        toml_path,
        {
            "participant": spec.code,
            "data_dir": "data",
            "host": host,
            "port": port,
            "api_token": secrets.token_urlsafe(24),
            "genesis": "../genesis.json",
            "node_key": "node.pem",
            "encryption_key": "encryption.pem",
            "authority_key": "authority.pem",
        },
        f"kpledger node of {participant_name(spec)} ({spec.code}). Paths are relative to this file.",
    )
    os.chmod(toml_path, 0o600)  # it holds the API token
    return toml_path


@dataclass(frozen=True)
class Joiner:
    """A participant prepared to join a running network: its files and the public half of its
    keys, which the `admit` proposal names."""

    spec: ParticipantSpec
    name: str
    config: Path
    address: str
    authority_key: bytes
    encryption_key: bytes
    node_key: bytes
    #: Each key's proof of possession (for this chain, participant and role): the `admit` names them.
    authority_proof: bytes = b""
    encryption_proof: bytes = b""
    node_proof: bytes = b""


def init_joiner(
    directory: Path,
    spec: ParticipantSpec,
    *,
    port: int,
    host: str = "127.0.0.1",
    passphrase: bytes | None = None,
) -> Joiner:  # the joiner's scheme is the network's: https:// when its genesis speaks TLS
    """Keys and node.toml for a new participant of the network in `directory` (its genesis.json
    stays as it is: the node learns of the admission from the chain)."""
    directory = Path(directory)
    if not (directory / "genesis.json").exists():
        raise InitError(f"{directory}/genesis.json does not exist: no network to join")
    folder = directory / spec.code
    if (folder / "authority.pem").exists():
        raise InitError(f"{folder} already holds keys: refusing to overwrite them")
    if not 0 < port < 65536:
        raise InitError("--port must be 1 to 65535")
    genesis = load_genesis(directory / "genesis.json")
    chain_id = genesis.chain_id
    scheme = "https" if genesis_uses_tls(genesis) else "http"
    authority, node_key, encryption = write_keys(folder, passphrase)
    config = write_node_toml(folder, spec, host, port)
    return Joiner(
        spec=spec,
        name=participant_name(spec),
        config=config,
        address=f"{scheme}://{host}:{port}",
        authority_key=authority.public_bytes,
        encryption_key=encryption.public_bytes,
        node_key=node_key.public_bytes,
        authority_proof=authority.prove_possession(chain_id, spec.code, "authority"),
        encryption_proof=encryption.prove_possession(chain_id, spec.code, "encryption"),
        node_proof=node_key.prove_possession(chain_id, spec.code, "node"),
    )
