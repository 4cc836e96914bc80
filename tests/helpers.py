"""Shared test fixtures: an in-memory KP network (keys, genesis, registry), events and blocks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from ledger import authoring
from ledger.block import Header
from ledger.certificate import Certificate
from ledger.chain import Execution, build_block, validate_block
from ledger.encoding import encode
from ledger.events import Event
from ledger.genesis import Genesis, Parameters, Participant, Validator
from ledger.keys import EncryptionKey, SigningKey
from ledger.registry import Registry
from ledger.store import Store

#: The four participants of the devnet, one country each.
DEFAULT_PARTICIPANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("BE", ("BE",)),
    ("AE", ("AE",)),
    ("IN", ("IN",)),
    ("RU", ("RU",)),
)
#: A variant with an EU-style participant standing for several countries (none overlapping BE).
EU_PARTICIPANTS = (*DEFAULT_PARTICIPANTS, ("EU", ("DE", "CZ", "FR")))

#: Block time of the first block: 2026-03-02 09:00 UTC. Certificates are issued on that day.
BASE_TIME_MS = int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp() * 1000)
ISSUED_ON = date(2026, 3, 2)
VALIDITY_DAYS = 60

PARTY_NAMES = {
    "BE": ("Antwerp Rough Trading NV", "Hoveniersstraat 22, 2018 Antwerpen"),
    "AE": ("Almas Gems DMCC", "Almas Tower, Jumeirah Lakes Towers, Dubai"),
    "IN": ("Surat Diamond Exports Pvt Ltd", "Mahidharpura, Surat 395003, Gujarat"),
    "RU": ("Yakutsk Almaz Trade JSC", "Lenina prospekt 6, Yakutsk 677000"),
    "EU": ("Idar-Oberstein Edelstein GmbH", "Hauptstrasse 41, 55743 Idar-Oberstein"),
}
ORIGINS = (["CD"], ["BW"], ["RU"], ["ZA"], ["AO", "NA"], ["MIXED"], ["CA"], ["SL"])
HS = ("7102.10", "7102.21", "7102.31")


def _seed(*parts: str) -> bytes:
    return hashlib.sha256("/".join(parts).encode()).digest()


def day_ms(day: date, hour: int = 12) -> int:
    """Milliseconds since the epoch at `hour` UTC on `day` (a block time on that day)."""
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True)
class Member:
    """One participant's keys: authority (signs events), encryption (opens identities), node."""

    code: str
    countries: tuple[str, ...]
    authority: SigningKey
    encryption: EncryptionKey
    node: SigningKey


class TestNetwork:
    """A whole KP network in memory, with deterministic keys derived from `seed`."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(
        self,
        participants: Sequence[tuple[str, tuple[str, ...]]] = DEFAULT_PARTICIPANTS,
        *,
        seed: str = "kp-test",
        chain_id: str = "kp-test",
        parameters: Parameters | None = None,
        suspended: Iterable[str] = (),
        extra_recipients: Sequence[tuple[str, str]] = (),
        validators: Sequence[str] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.members: dict[str, Member] = {}
        suspended = set(suspended)
        for code, countries in participants:
            self.members[code] = Member(
                code=code,
                countries=countries,
                authority=SigningKey.from_seed(_seed(seed, code, "authority")),
                encryption=EncryptionKey(
                    x25519.X25519PrivateKey.from_private_bytes(_seed(seed, code, "encryption"))
                ),
                node=SigningKey.from_seed(_seed(seed, code, "node")),
            )
        #: Extra recipients (e.g. a monitoring team) by exporting participant, with their keys.
        self.extra_keys: dict[str, EncryptionKey] = {}
        extra: list[tuple[str, str, bytes]] = []
        for exporting, name in extra_recipients:
            key = EncryptionKey(
                x25519.X25519PrivateKey.from_private_bytes(_seed(seed, name, "extra"))
            )
            self.extra_keys[name] = key
            extra.append((exporting, name, key.public_bytes))
        self.genesis = Genesis(
            chain_id=chain_id,
            genesis_time="2026-01-01T00:00:00Z",
            participants=tuple(
                Participant(
                    code=m.code,
                    name=f"{m.code} KP authority",
                    countries=m.countries,
                    authority_key=m.authority.public_bytes,
                    encryption_key=m.encryption.public_bytes,
                    active=m.code not in suspended,
                )
                for m in self.members.values()
            ),
            validators=tuple(
                Validator(m.code, m.node.public_bytes, f"http://127.0.0.1:{7700 + i}")
                for i, m in enumerate(self.members.values())
                if validators is None or m.code in validators
            ),
            # Without `parameters`, created_ms is not bounded (as on a network older than that
            # rule): many tests sign an event at one time and record it months later, to reach
            # an expiry. The tests of the rule, and those that pass parameters, have it.
            parameters=parameters or Parameters(event_times_from_height=0),
            extra_recipients=tuple(extra),
        )
        self.registry = Registry.from_genesis(self.genesis)
        self.now_ms = BASE_TIME_MS
        self._serial = 0

    # -- keys and time ---------------------------------------------------------------------
    def key(self, code: str) -> SigningKey:
        return self.members[code].authority

    @property
    def validator_keys(self) -> list[SigningKey]:
        """Node keys in the order of the genesis validators."""
        by_key = {m.node.public_bytes: m.node for m in self.members.values()}
        return [by_key[v.node_key] for v in self.genesis.validators]

    @property
    def today(self) -> date:
        """The UTC date of the network's clock: certificates are dated on it by default."""
        return datetime.fromtimestamp(self.now_ms / 1000, tz=UTC).date()

    def tick(self, ms: int = 1000) -> int:
        self.now_ms += ms
        return self.now_ms

    # -- certificates ----------------------------------------------------------------------
    def next_number(self, exporting: str = "BE") -> str:
        self._serial += 1
        country = self.members[exporting].countries[0] if exporting in self.members else exporting
        return f"{country}-2026-{self._serial:06d}"

    def certificate_json(
        self,
        exporting: str = "BE",
        importing: str = "AE",
        *,
        number: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A valid certificate as JSON, with realistic values; `overrides` replace fields."""
        serial = self._serial + 1
        number = number or self.next_number(exporting)
        exporter = PARTY_NAMES.get(exporting, ("Exporter Ltd", "1 Main Street"))
        importer = PARTY_NAMES.get(importing, ("Importer Ltd", "2 Main Street"))
        raw: dict[str, Any] = {
            "number": number,
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": ORIGINS[serial % len(ORIGINS)],
            "hs_code": HS[serial % len(HS)],
            "carats": f"{(serial * 7919) % 50000 + 1}.{serial % 100:02d}",
            "value_usd": f"{(serial * 104729) % 9000000 + 1000}.{(serial * 3) % 100:02d}",
            "parcels": serial % 12 + 1,
            "exporter": {"name": exporter[0], "address": exporter[1]},
            "importer": {"name": importer[0], "address": importer[1]},
            "issued_on": self.today.isoformat(),
            "expires_on": (self.today + timedelta(days=VALIDITY_DAYS)).isoformat(),
        }
        raw.update(overrides)
        return {k: v for k, v in raw.items() if v is not None}

    def certificate(
        self, exporting: str = "BE", importing: str = "AE", **overrides: Any
    ) -> Certificate:
        return Certificate.from_json(self.certificate_json(exporting, importing, **overrides))

    # -- signed events ---------------------------------------------------------------------
    def issue(
        self,
        certificate: Certificate | None = None,
        *,
        signer: str | None = None,
        key: SigningKey | None = None,
        created_ms: int | None = None,
        salt: bytes | None = None,
        **cert_fields: Any,
    ) -> authoring.Issuance:
        """An issuance signed by the exporting authority (or `signer`/`key` to break the rules)."""
        cert = certificate or self.certificate(**cert_fields)
        signer = signer or cert.facts.exporting_participant
        salt = salt if salt is not None else _seed("salt", cert.number)
        created = created_ms if created_ms is not None else self.tick()
        if signer == cert.facts.exporting_participant:
            return authoring.issue(
                self.registry,
                self.chain_id,
                cert,
                key or self.key(signer),
                created_ms=created,
                salt=salt,
            )
        # Signed by someone else than the exporter: authoring never does that, so sign by hand.
        from ledger.confidential import seal
        from ledger.events import IssueBody, sign_event

        recipients = self.registry.recipients_for(
            cert.facts.exporting_participant, cert.facts.importing_participant
        )
        sealed = seal(cert.identities, salt, cert.number, recipients)
        event = sign_event(
            self.chain_id, signer, IssueBody(cert.facts, sealed), key or self.key(signer), created
        )
        return authoring.Issuance(event, salt, cert.digest(salt))

    def historical(
        self,
        status: str = "confirmed",
        certificate: Certificate | None = None,
        *,
        signer: str | None = None,
        key: SigningKey | None = None,
        created_ms: int | None = None,
        issued_on: date = date(2019, 5, 6),
        **cert_fields: Any,
    ) -> authoring.Issuance:
        """A participant's account of a certificate from before the network (default: the
        exporter's, issued in 2019 for 60 days)."""
        cert = certificate or self.certificate(
            issued_on=issued_on.isoformat(),
            expires_on=(issued_on + timedelta(days=VALIDITY_DAYS)).isoformat(),
            **cert_fields,
        )
        signer = signer or cert.facts.exporting_participant
        return authoring.historical(
            self.registry,
            self.chain_id,
            cert,
            status,
            signer,
            key or self.key(signer),
            created_ms=created_ms if created_ms is not None else self.tick(),
            salt=_seed("salt", cert.number, signer),
        )

    def confirm(
        self,
        issuance: authoring.Issuance,
        *,
        signer: str | None = None,
        key: SigningKey | None = None,
        digest: bytes | None = None,
        created_ms: int | None = None,
    ) -> Event:
        facts = issuance.event.body.facts
        signer = signer or facts.importing_participant
        return authoring.confirm_import(
            self.chain_id,
            signer,
            facts.number,
            digest or issuance.digest,
            key or self.key(signer),
            created_ms=created_ms if created_ms is not None else self.tick(),
        )

    def reject(
        self,
        issuance: authoring.Issuance,
        reason: str = "seal of the container broken on arrival",
        *,
        signer: str | None = None,
        digest: bytes | None = None,
        key: SigningKey | None = None,
    ) -> Event:
        facts = issuance.event.body.facts
        signer = signer or facts.importing_participant
        return authoring.reject_import(
            self.chain_id,
            signer,
            facts.number,
            digest or issuance.digest,
            reason,
            key or self.key(signer),
            created_ms=self.tick(),
        )

    def void(
        self,
        issuance: authoring.Issuance,
        reason: str = "error",
        *,
        signer: str | None = None,
        key: SigningKey | None = None,
    ) -> Event:
        facts = issuance.event.body.facts
        signer = signer or facts.exporting_participant
        return authoring.void(
            self.chain_id,
            signer,
            facts.number,
            reason,
            key or self.key(signer),
            created_ms=self.tick(),
        )

    # -- blocks and commit certificates ---------------------------------------------------
    def commit_certificate(
        self,
        header: Header,
        *,
        round_: int = 0,
        signers: Sequence[int] | None = None,
        value: bytes | None = None,
    ) -> Any:
        """A commit certificate for `header`: precommits by the validators at index `signers`.

        Default: every validator. Returns ledger.consensus.messages.CommitCertificate (imported lazily).
        """
        from ledger.consensus.messages import CommitCertificate, Vote, VoteKind

        keys = self.validator_keys
        chosen = range(len(keys)) if signers is None else signers
        value = header.hash if value is None else value
        votes = [
            Vote.create(keys[i], self.chain_id, VoteKind.PRECOMMIT, header.height, round_, value, i)
            for i in chosen
        ]
        # Built by hand rather than from_precommits, so tests can repeat or misorder signers.
        return CommitCertificate(
            header.height, round_, value, tuple((v.validator, v.signature) for v in votes)
        )

    def commit_certificate_bytes(self, header: Header, **kwargs: Any) -> bytes:
        """The stored form of a commit certificate: the canonical encoding of its wire form."""
        return encode(self.commit_certificate(header, **kwargs).to_wire())

    def execute(
        self, store: Store, events: Sequence[Event], *, time_ms: int | None = None
    ) -> Execution:
        """Propose a block of `events` on top of the store's head, then re-validate it."""
        prev = store.head
        time_ms = time_ms if time_ms is not None else self.tick()
        proposer = (store.height + 1) % len(self.genesis.validators)
        built = build_block(
            store,
            self.registry,
            self.genesis.hash,
            prev,
            events,
            chain_id=self.chain_id,
            time_ms=time_ms,
            proposer=proposer,
        )
        checked = validate_block(
            store, self.registry, self.genesis.hash, prev, built.block, chain_id=self.chain_id
        )
        checked.refused = built.refused
        return checked

    def commit_block(
        self, store: Store, events: Sequence[Event], *, time_ms: int | None = None
    ) -> Execution:
        """build_block -> validate_block -> Store.commit with a full commit certificate."""
        execution = self.execute(store, events, time_ms=time_ms)
        store.commit(execution, self.commit_certificate_bytes(execution.header))
        return execution

    def open_store(self, path: Path | str) -> Store:
        return Store(path, self.genesis)


def public_blocks(store: Store) -> list[Any]:
    """The chain as its public routes show it: headers, commit certificates, event leaves."""
    from ledger.audit import PublicBlock

    out = []
    for height in range(1, store.height + 1):
        header, commit = store.header(height), store.commit_certificate_bytes(height)
        assert header is not None and commit is not None
        out.append(PublicBlock(header.encoded, commit, store.event_leaves(height)))
    return out


# -- tampering with a store, as an attacker or a failing disk would (tests only) -----------------
def poke(store: Store, key: bytes, value: bytes) -> None:
    """Overwrite one stored value behind the store's back, through its backend."""
    with store.kv.batch() as batch:
        batch.put(key, value)


def erase(store: Store, key: bytes) -> None:
    """Delete one stored key behind the store's back, through its backend."""
    with store.kv.batch() as batch:
        batch.delete(key)


def compact(store: Store) -> None:
    """Move a LevelDB store's data into its table files (which crash tests then damage)."""
    from ledger.store.leveldb import LevelDB

    assert isinstance(store.kv, LevelDB), "only a LevelDB store has tables"
    store.kv.compact()
