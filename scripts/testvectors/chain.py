"""A fixed network of four members and the chain of events the vectors are read from."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from ledger.block import Header
from ledger.certificate import Certificate
from ledger.chain import build_block, validate_block
from ledger.confidential import TAG_SEAL, SealedBox, SealedIdentities
from ledger.consensus.messages import CommitCertificate, Vote, VoteKind
from ledger.encoding import encode
from ledger.errors import LedgerError
from ledger.events import ConfirmImportBody, Event, IssueBody, VoidBody, sign_event
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.governance import EndorseBody
from ledger.hashing import (
    tagged,
)
from ledger.keys import EncryptionKey, SigningKey
from ledger.registry import Registry
from ledger.store import Store
from scripts.testvectors.crypto import hpke_seal, seed


# -- a fixed network and chain -------------------------------------------------------------------
@dataclasses.dataclass
class Member:
    code: str
    countries: tuple[str, ...]
    authority: SigningKey
    encryption: EncryptionKey
    node: SigningKey


def member(code: str, countries: tuple[str, ...]) -> Member:
    return Member(
        code,
        countries,
        SigningKey.from_seed(seed(code, "authority")),
        EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(seed(code, "encryption"))),
        SigningKey.from_seed(seed(code, "node")),
    )


MEMBERS = {m.code: m for m in (member(c, (c,)) for c in ("BE", "AE", "IN", "RU"))}
MONITOR = SigningKey.from_seed(seed("RU", "monitoring"))
EXTRA = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(seed("IN-monitor", "extra")))
CHAIN_ID = "kp-testvectors"
#: Block times: 2026-03-02 12:00 UTC and one second apart after.
T0 = int(datetime(2026, 3, 2, 12, tzinfo=UTC).timestamp() * 1000)
DAY = date(2026, 3, 2)


def genesis() -> Genesis:
    return Genesis(
        chain_id=CHAIN_ID,
        genesis_time="2026-03-01T00:00:00Z",
        participants=tuple(
            Participant(
                code=m.code,
                name=f"{m.code} KP authority",
                countries=m.countries,
                authority_key=m.authority.public_bytes,
                encryption_key=m.encryption.public_bytes,
                restricted_zones=("ZONE-A",) if m.code == "RU" else (),
                monitoring_key=MONITOR.public_bytes if m.code == "RU" else None,
                node_key=m.node.public_bytes,
                address=f"http://127.0.0.1:{7700 + i}",
            )
            for i, m in enumerate(MEMBERS.values())
        ),
        validators=tuple(
            Validator(m.code, m.node.public_bytes, f"http://127.0.0.1:{7700 + i}")
            for i, m in enumerate(MEMBERS.values())
        ),
        parameters=Parameters(),
        extra_recipients=(("IN", "IN-monitor", EXTRA.public_bytes),),
    )


def certificate(
    number: str, exporting: str, importing: str, zone: str | None = None
) -> Certificate:
    raw: dict[str, Any] = {
        "number": number,
        "exporting_participant": exporting,
        "importing_participant": importing,
        "origin": ["BW"],
        "hs_code": "7102.31",
        "carats": "1250.50",
        "value_usd": "98760.25",
        "parcels": 3,
        "exporter": {"name": f"Exporter of {number}", "address": "1 Mine Road"},
        "importer": {"name": f"Importer of {number}", "address": "2 Port Quay"},
        "issued_on": DAY.isoformat(),
        "expires_on": "2026-05-31",
    }
    if zone is not None:
        raw["zone"] = zone
    return Certificate.from_json(raw)


def issue_event(
    registry: Registry, cert: Certificate, created_ms: int
) -> tuple[Any, bytes, list[Any]]:
    """The issuance with deterministic salt and HPKE boxes; returns (event, digest, box details)."""
    facts = cert.facts
    salt = seed(facts.number, "salt")
    plaintext = encode([salt, *cert.identities.to_wire()])
    boxes, details = [], []
    for name, key in registry.recipients_for(
        facts.exporting_participant, facts.importing_participant
    ):
        info = tagged(TAG_SEAL, encode([facts.number, name]))
        sealed = hpke_seal(key, info, plaintext, seed(facts.number, name, "ephemeral"))
        boxes.append(SealedBox(name, sealed["ciphertext"]))
        details.append((name, key, info, plaintext, seed(facts.number, name, "ephemeral"), sealed))
    body = IssueBody(facts, SealedIdentities(cert.identities.commitment(salt), tuple(boxes)))
    event = sign_event(
        CHAIN_ID,
        facts.exporting_participant,
        body,
        MEMBERS[facts.exporting_participant].authority,
        created_ms,
    )
    return event, cert.digest(salt), details


def commit_bytes(header: Header, signers: range | None = None) -> bytes:
    keys = [m.node for m in MEMBERS.values()]
    chosen = range(len(keys)) if signers is None else signers
    votes = [
        Vote.create(keys[i], CHAIN_ID, VoteKind.PRECOMMIT, header.height, 0, header.hash, i)
        for i in chosen
    ]
    cert = CommitCertificate(
        header.height, 0, header.hash, tuple((v.validator, v.signature) for v in votes)
    )
    return encode(cert.to_wire())


@contextmanager
def built_chain() -> Iterator[tuple[Genesis, Store, dict[str, Any]]]:
    """Block 1: issues of A (BE to AE), B (BE to IN), C (IN to RU, with IN's extra recipient),
    D (RU, restricted, to BE). Block 2: A confirmed, B voided, D endorsed. Block 3: D confirmed,
    E (AE to IN) issued and confirmed in the same block."""
    g = genesis()
    registry = Registry.from_genesis(g)

    def confirm(number: str, digest: bytes, importing: str, created_ms: int) -> Event:
        body = ConfirmImportBody(number, digest)
        return sign_event(CHAIN_ID, importing, body, MEMBERS[importing].authority, created_ms)

    issued = {}
    for name, (exp, imp, zone) in {
        "A": ("BE", "AE", None),
        "B": ("BE", "IN", None),
        "C": ("IN", "RU", None),
        "D": ("RU", "BE", "ZONE-A"),
        "E": ("AE", "IN", None),
    }.items():
        number = f"{exp}-2026-00000{ord(name) - 64}"
        issued[name] = issue_event(registry, certificate(number, exp, imp, zone), T0 - 60_000)
    num = {k: v[0].body.facts.number for k, v in issued.items()}
    dig = {k: v[1] for k, v in issued.items()}
    blocks = [
        [issued[k][0] for k in "ABCD"],
        [
            confirm(num["A"], dig["A"], "AE", T0 - 50_000),
            sign_event(
                CHAIN_ID, "BE", VoidBody(num["B"], "error"), MEMBERS["BE"].authority, T0 - 50_000
            ),
            sign_event(
                CHAIN_ID, "monitor/RU", EndorseBody(num["D"], dig["D"]), MONITOR, T0 - 50_000
            ),
        ],
        [
            confirm(num["D"], dig["D"], "BE", T0 - 40_000),
            issued["E"][0],
            confirm(num["E"], dig["E"], "IN", T0 - 40_000),
        ],
    ]
    with tempfile.TemporaryDirectory(prefix="kp-testvectors-") as tmp:
        store = Store(Path(tmp) / "chain", g)
        try:
            for i, events in enumerate(blocks):
                prev = store.head
                reg = store.registry() or registry
                built = build_block(
                    store,
                    reg,
                    g.hash,
                    prev,
                    events,
                    chain_id=CHAIN_ID,
                    time_ms=T0 + 1000 * i,
                    proposer=(i + 1) % 4,
                )
                if built.refused:
                    raise RuntimeError(
                        f"block {i + 1} refused {[(e.type, x.code) for e, x in built.refused]}"
                    )
                checked = validate_block(store, reg, g.hash, prev, built.block, chain_id=CHAIN_ID)
                store.commit(checked, commit_bytes(checked.header))
            yield g, store, {"numbers": num, "digests": dig, "issued": issued, "blocks": blocks}
        finally:
            store.close()


# -- the vector files ------------------------------------------------------------------------------
def typed(value: Any) -> Any:
    """A msgpack value as JSON that keeps its type: {"int": 1}, {"str": ""}, {"bin": hex}..."""
    if value is None:
        return {"nil": None}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    return {"array": [typed(v) for v in value]}


def untyped(obj: dict[str, Any]) -> Any:
    ((kind, value),) = obj.items()
    if kind == "bin":
        return bytes.fromhex(value)
    if kind == "array":
        return [untyped(v) for v in value]
    return value


def refusal(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except LedgerError as exc:
        return exc.code
    return None
