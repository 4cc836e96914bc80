"""The key ceremony: each participant makes its own keys (`network keygen`) and hands over only a
public descriptor; genesis is assembled from the descriptors alone (`network genesis`), so no
private key ever leaves its participant (SPEC 6, docs/operations.md "Making a real network")."""

from __future__ import annotations

import json
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.certificate import is_country, is_participant_code
from ledger.errors import MalformedInput
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.hashing import sha256
from ledger.keys import is_valid_ed25519_public, is_valid_x25519_public, verify_possession
from node.netinit import (
    InitError,
    ParticipantSpec,
    participant_name,
    write_keys,
    write_node_toml,
)

DESCRIPTOR_FORMAT = "kpledger-descriptor/1"
#: The "chain id" the descriptor's proofs of possession are made for: no chain is named so, and
#: the proofs only show that whoever made the descriptor holds its three private keys.
CEREMONY_CHAIN = "kpledger-key-ceremony/1"
#: The roles, the descriptor field of each public key and of its proof.
ROLES = (
    ("authority", "authority_key", "authority_proof"),
    ("encryption", "encryption_key", "encryption_proof"),
    ("node", "node_key", "node_proof"),
)


@dataclass(frozen=True)
class Descriptor:
    """One participant's public half: code, name, countries, public keys, node address."""

    code: str
    name: str
    countries: tuple[str, ...]
    authority_key: bytes
    encryption_key: bytes
    node_key: bytes
    address: str
    authority_proof: bytes
    encryption_proof: bytes
    node_proof: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "format": DESCRIPTOR_FORMAT,
            "code": self.code,
            "name": self.name,
            "countries": list(self.countries),
            "address": self.address,
            "authority_key": self.authority_key.hex(),
            "encryption_key": self.encryption_key.hex(),
            "node_key": self.node_key.hex(),
            "authority_proof": self.authority_proof.hex(),
            "encryption_proof": self.encryption_proof.hex(),
            "node_proof": self.node_proof.hex(),
        }

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the descriptor's canonical JSON: read out between participants (by
        telephone, in a signed letter) to check that the file that arrived is the one sent."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return sha256(canonical.encode()).hex()

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Descriptor:
        if not isinstance(raw, dict) or raw.get("format") != DESCRIPTOR_FORMAT:
            raise InitError(f"{where}: not a participant descriptor ({DESCRIPTOR_FORMAT})")
        known = {"format", "code", "name", "countries", "address"}
        known |= {f for _, key, proof in ROLES for f in (key, proof)}
        if set(raw) != known:
            extra, missing = sorted(set(raw) - known), sorted(known - set(raw))
            raise InitError(f"{where}: unexpected fields {extra}, missing {missing}")
        code, name, countries, address = raw["code"], raw["name"], raw["countries"], raw["address"]
        if not isinstance(code, str) or not is_participant_code(code):
            raise InitError(f"{where}: code {code!r} is not ISO 3166-1 alpha-2 or EU")
        if not isinstance(name, str) or not name.strip():
            raise InitError(f"{where}: name must be a non-empty string")
        if (
            not isinstance(countries, list)
            or not countries
            or not all(isinstance(c, str) and is_country(c) for c in countries)
        ):
            raise InitError(f"{where}: countries must be ISO 3166-1 alpha-2 codes")
        if not isinstance(address, str) or urllib.parse.urlsplit(address).scheme != "https":
            raise InitError(f"{where}: address must be an https:// URL")
        values: dict[str, bytes] = {}
        for field in [f for _, key, proof in ROLES for f in (key, proof)]:
            try:
                values[field] = bytes.fromhex(raw[field])
            except (TypeError, ValueError) as exc:
                raise InitError(f"{where}: {field} is not hex") from exc
        descriptor = cls(
            code=code,
            name=name,
            countries=tuple(countries),
            address=address,
            **values,
        )
        descriptor.check(where)
        return descriptor

    def check(self, where: str) -> None:
        """Every key a valid point of its curve, and signed for by its holder."""
        for role, key_field, proof_field in ROLES:
            key, proof = getattr(self, key_field), getattr(self, proof_field)
            valid = is_valid_x25519_public if role == "encryption" else is_valid_ed25519_public
            if not valid(key):
                raise InitError(f"{where}: {key_field} is not a valid public key")
            if not verify_possession(key, role, CEREMONY_CHAIN, self.code, proof):
                raise InitError(
                    f"{where}: {proof_field} does not prove possession of the {role} key "
                    "(the descriptor was altered, or not made by `network keygen`)"
                )


def descriptor_path(directory: Path, code: str) -> Path:
    return Path(directory) / f"{code}.descriptor.json"


def keygen(
    directory: Path,
    spec: ParticipantSpec,
    host: str,
    port: int,
    passphrase: bytes | None = None,
) -> Descriptor:
    """One participant's keys (DIR/<CODE>/*.pem, 0600) and node.toml, and its public
    descriptor DIR/<CODE>.descriptor.json. Genesis, once assembled, goes in DIR/genesis.json."""
    directory = Path(directory)
    folder = directory / spec.code
    out = descriptor_path(directory, spec.code)
    if (folder / "authority.pem").exists() or out.exists():
        raise InitError(f"{folder} already holds keys for {spec.code}: refusing to overwrite them")
    if not 0 < port < 65536:
        raise InitError("--port must be 1 to 65535")
    if not host or any(ch in host for ch in "/@?# \t:"):
        raise InitError(f"--host {host!r} is not a host name or IPv4 address")
    authority, node_key, encryption = write_keys(folder, passphrase)
    # node.toml's host is where the node listens: the address itself on a loopback test
    # machine, else every interface (the operator narrows it to the public one if need be).
    write_node_toml(folder, spec, host if host.startswith("127.") else "0.0.0.0", port)
    descriptor = Descriptor(
        code=spec.code,
        name=participant_name(spec),
        countries=spec.countries,
        authority_key=authority.public_bytes,
        encryption_key=encryption.public_bytes,
        node_key=node_key.public_bytes,
        address=f"https://{host}:{port}",
        authority_proof=authority.prove_possession(CEREMONY_CHAIN, spec.code, "authority"),
        encryption_proof=encryption.prove_possession(CEREMONY_CHAIN, spec.code, "encryption"),
        node_proof=node_key.prove_possession(CEREMONY_CHAIN, spec.code, "node"),
    )
    out.write_text(json.dumps(descriptor.to_json(), indent=2) + "\n", encoding="utf-8")
    return descriptor


def load_descriptor(path: Path) -> Descriptor:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InitError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InitError(f"{path} is not JSON: {exc}") from exc
    return Descriptor.from_json(raw, str(path))


def assemble_genesis(
    descriptors: list[Descriptor],
    *,
    chain_id: str | None = None,
    parameters: Parameters | None = None,
) -> Genesis:
    """Genesis from the descriptors alone, validators in the order given."""
    if not descriptors:
        raise InitError("give at least one --descriptor")
    seen: dict[tuple[str, str], str] = {}
    for d in descriptors:
        for what, value in [
            ("participant code", d.code),
            ("address", d.address),
            *[("public key", getattr(d, key).hex()) for _, key, _ in ROLES],
            *[("country", c) for c in d.countries],
        ]:
            if (what, value) in seen:
                raise InitError(f"{seen[what, value]} and {d.code} share the {what} {value}")
            seen[what, value] = d.code
    now = datetime.now(UTC).replace(microsecond=0)
    participants = tuple(
        Participant(
            code=d.code,
            name=d.name,
            countries=d.countries,
            authority_key=d.authority_key,
            encryption_key=d.encryption_key,
            node_key=d.node_key,
            address=d.address,
        )
        for d in descriptors
    )
    try:
        genesis = Genesis(
            chain_id=chain_id or f"kp-{now.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}",
            genesis_time=now.isoformat(),
            participants=participants,
            validators=tuple(Validator(d.code, d.node_key, d.address) for d in descriptors),
            parameters=parameters or Parameters(),
        )
        # What a node will read back: the same checks as loading genesis.json.
        Genesis.from_json(genesis.to_json())
    except MalformedInput as exc:
        raise InitError(f"the descriptors do not make a valid genesis: {exc}") from exc
    return genesis
