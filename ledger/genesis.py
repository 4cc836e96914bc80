"""Genesis: the chain id, the participant register, the validators and the network's parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ledger.certificate import is_country, is_participant_code
from ledger.encoding import encode
from ledger.errors import MalformedInput
from ledger.hashing import TAG_GENESIS, TAG_VALIDATORS, tagged_hash


def _hex32(what: str, raw: Any) -> bytes:
    try:
        value = bytes.fromhex(raw) if isinstance(raw, str) else b""
    except ValueError:
        value = b""
    if len(value) != 32:
        raise MalformedInput(f"{what}: expected 64 hex characters")
    return value


@dataclass(frozen=True)
class Participant:
    """A KP participant: one country, or several (the EU), with its authority's keys."""

    code: str
    name: str
    countries: tuple[str, ...]
    authority_key: bytes  # Ed25519, signs certificate events
    encryption_key: bytes  # X25519, receives sealed identities
    active: bool = True
    #: Approved origin zones and the monitoring key that endorses, when restricted.
    restricted_zones: tuple[str, ...] = ()
    monitoring_key: bytes | None = None
    #: The participant's node (Ed25519 node key and URL), validator or not: it may use /peer/*.
    node_key: bytes | None = None
    address: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "countries": list(self.countries),
            "authority_key": self.authority_key.hex(),
            "encryption_key": self.encryption_key.hex(),
            "active": self.active,
        }
        if self.monitoring_key is not None:
            out["restricted_zones"] = list(self.restricted_zones)
            out["monitoring_key"] = self.monitoring_key.hex()
        if self.node_key is not None:
            out["node_key"] = self.node_key.hex()
            out["address"] = self.address
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Participant:
        if not isinstance(raw, dict):
            raise MalformedInput("participant: must be an object")
        code = raw.get("code")
        if not isinstance(code, str) or not is_participant_code(code):
            raise MalformedInput(f"participant code {code!r} is not ISO 3166-1 alpha-2 or EU")
        countries = raw.get("countries") or [code]
        if not isinstance(countries, list) or not all(
            isinstance(c, str) and is_country(c) for c in countries
        ):
            raise MalformedInput(f"participant {code}: countries must be ISO 3166-1 alpha-2 codes")
        monitoring = raw.get("monitoring_key")
        node_key = raw.get("node_key")
        return cls(
            code=code,
            name=str(raw.get("name") or code),
            countries=tuple(countries),
            authority_key=_hex32(f"participant {code} authority_key", raw.get("authority_key")),
            encryption_key=_hex32(f"participant {code} encryption_key", raw.get("encryption_key")),
            active=bool(raw.get("active", True)),
            restricted_zones=tuple(raw.get("restricted_zones") or ()),
            monitoring_key=_hex32(f"participant {code} monitoring_key", monitoring)
            if monitoring
            else None,
            node_key=_hex32(f"participant {code} node_key", node_key) if node_key else None,
            address=str(raw.get("address") or ""),
        )

    def to_wire(self) -> list[Any]:
        return [
            self.code,
            self.name,
            list(self.countries),
            self.authority_key,
            self.encryption_key,
            self.active,
            list(self.restricted_zones),
            self.monitoring_key or b"",
            self.node_key or b"",
            self.address,
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> Participant:
        if not isinstance(obj, list) or len(obj) != 10:
            raise MalformedInput("a participant is a list of 10 fields")
        code, name, countries, authority, encryption, active, zones, monitoring, node, address = obj
        return cls(
            code,
            name,
            tuple(countries),
            authority,
            encryption,
            active,
            tuple(zones),
            monitoring or None,
            node or None,
            address,
        )


@dataclass(frozen=True)
class Validator:
    """A node allowed to propose and vote: its participant, its node key and where it listens."""

    participant: str
    node_key: bytes
    address: str

    def to_json(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "node_key": self.node_key.hex(),
            "address": self.address,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Validator:
        if not isinstance(raw, dict):
            raise MalformedInput("validator: must be an object")
        return cls(
            participant=str(raw.get("participant")),
            node_key=_hex32("validator node_key", raw.get("node_key")),
            address=str(raw.get("address")),
        )

    def to_wire(self) -> list[Any]:
        return [self.participant, self.node_key, self.address]

    @classmethod
    def from_wire(cls, obj: Any) -> Validator:
        if not isinstance(obj, list) or len(obj) != 3:
            raise MalformedInput("a validator is [participant, node_key, address]")
        participant, node_key, address = obj
        if not isinstance(node_key, bytes) or len(node_key) != 32:
            raise MalformedInput("a validator's node key is 32 bytes")
        return cls(str(participant), node_key, str(address))


#: The longest wait, in days after a quarter's end, before its public statistics are frozen.
STATS_FREEZE_DAYS_MAX = 365

#: Parameters added after the first networks were made, with the value that a genesis (or a
#: stored register) without them means. The wire leaves a parameter out at that value, so that
#: the genesis hash and the register hashes of an existing chain do not change.
LATER_PARAMETERS: dict[str, int] = {
    "max_backdating_days": 7,
    "issuance_dates_from_height": 0,
    "stats_freeze_days": 30,
    "max_event_age_ms": 86_400_000,
    "event_times_from_height": 0,
    "governance_dormant_days": 0,
    "history_from": 20030101,
}


@dataclass(frozen=True)
class Parameters:
    """Network parameters; governance may change them later at a stated height."""

    max_validity_days: int = 180
    max_block_events: int = 2000
    max_block_bytes: int = 4 * 1024 * 1024
    max_event_bytes: int = 64 * 1024
    #: Largest allowed drift of a block's time ahead of a validator's clock.
    max_clock_drift_ms: int = 10_000
    timeout_propose_ms: int = 1000
    timeout_vote_ms: int = 500
    timeout_delta_ms: int = 500
    #: Share of active participants whose yes votes pass a governance proposal, as num/den.
    governance_threshold_num: int = 2
    governance_threshold_den: int = 3
    #: Days after a quarter's end before its statistics are published (frozen) on the public
    #: route, between 1 and STATS_FREEZE_DAYS_MAX (docs/statistics.md).
    stats_freeze_days: int = 30
    #: How many days before the date of the block that records it a certificate may be dated.
    max_backdating_days: int = 7
    #: The first height at which the issuance date rules apply (0: not in force on this chain).
    issuance_dates_from_height: int = 1
    #: How long before the time of the block that records it an event may have been created.
    max_event_age_ms: int = 86_400_000
    #: The first height at which an event's created_ms is bounded (0: not in force).
    event_times_from_height: int = 1
    #: A participant that signed nothing for this many days is dormant: it does not count in the
    #: electorate of governance thresholds (0: every active participant counts; older chains).
    governance_dormant_days: int = 180
    #: The earliest date of issue of a historical certificate (SPEC 10), as YYYYMMDD: the KPCS
    #: began on 2003-01-01.
    history_from: int = 20030101

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def violation(self) -> str | None:
        """Why these parameters could stop the chain (a bound or a rule between them), or None."""
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            bound = PARAMETER_BOUNDS.get(name)
            if bound is None:  # pragma: no cover - test_every_parameter_has_a_bound
                return f"{name} has no documented range"
            if not bound.low <= value <= bound.high:
                return (
                    f"{name} must be {bound.low} to {bound.high} ({bound.why}); it would be {value}"
                )
        for rule, holds in PARAMETER_RULES:
            if not holds(self):
                return rule
        return None

    @classmethod
    def from_json(cls, raw: Any) -> Parameters:
        """Parse genesis's `parameters`; a later parameter left out takes its value of `LATER`."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise MalformedInput("parameters: must be an object")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise MalformedInput(f"parameters: unknown {sorted(unknown)}")
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MalformedInput(f"parameters.{key}: must be a non-negative integer")
        parameters = replace(cls(), **{**LATER_PARAMETERS, **raw})
        problem = parameters.violation()
        if problem is not None:
            raise MalformedInput(f"parameters: {problem}")
        return parameters

    def to_wire(self) -> list[Any]:
        return [
            [name, getattr(self, name)]
            for name in self.__dataclass_fields__
            if LATER_PARAMETERS.get(name) != getattr(self, name)
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> Parameters:
        if not isinstance(obj, list) or not all(isinstance(p, list) and len(p) == 2 for p in obj):
            raise MalformedInput("parameters are [[name, value]...]")
        if not all(isinstance(name, str) for name, _ in obj):
            raise MalformedInput("a parameter's name is a string")
        parsed = cls.from_json(dict(obj))
        if parsed.to_wire() != obj:
            raise MalformedInput("parameters are not in their canonical order and form")
        return parsed

    def history_from_date(self) -> date:
        """`history_from` as a date (PARAMETER_RULES keep it a calendar date)."""
        value = self.history_from
        return date(value // 10000, value // 100 % 100, value % 100)

    def issuance_dates_apply(self, height: int) -> bool:
        """Whether the issuance date rules (SPEC 3) judge an issuance recorded at `height`."""
        return 0 < self.issuance_dates_from_height <= height

    def event_times_apply(self, height: int) -> bool:
        """Whether an event's created_ms is bounded by the time of a block at `height`."""
        return 0 < self.event_times_from_height <= height


@dataclass(frozen=True)
class Bound:
    """The documented range of one parameter (docs/governance.md, "Parameters")."""

    low: int
    high: int
    why: str


#: Largest encoding of any governance event (propose, vote, rotate_key, validator.ready, ...),
#: with every field at its limit (test_the_largest_governance_event_fits). Event limits never go
#: below it: the vote that would undo a change must always fit in an event and in a block.
MAX_GOVERNANCE_EVENT_BYTES = 32 * 1024

#: One line per parameter; a new parameter of Parameters needs its line here and in
#: docs/governance.md (tests check both). Values are integers; the rules below relate them.
PARAMETER_BOUNDS: dict[str, Bound] = {
    "max_validity_days": Bound(1, 730, "a certificate is valid for days, not decades"),
    "max_block_events": Bound(100, 10_000, "a vote always finds room in a block"),
    "max_block_bytes": Bound(
        MAX_GOVERNANCE_EVENT_BYTES, 32 * 1024 * 1024, "a block travels in one peer message"
    ),
    "max_event_bytes": Bound(
        MAX_GOVERNANCE_EVENT_BYTES, 512 * 1024, "every governance event fits; one HTTP body"
    ),
    "max_clock_drift_ms": Bound(2_000, 600_000, "honest clocks agree; a block is not refused"),
    "timeout_propose_ms": Bound(200, 60_000, "a round ends in a minute at most"),
    "timeout_vote_ms": Bound(100, 60_000, "a round ends in a minute at most"),
    "timeout_delta_ms": Bound(50, 60_000, "a round ends in a minute at most"),
    "governance_threshold_num": Bound(1, 999, "with den: more than 1/2, less than 1"),
    "governance_threshold_den": Bound(2, 1000, "with num: more than 1/2, less than 1"),
    "stats_freeze_days": Bound(
        1, STATS_FREEZE_DAYS_MAX, "a closed quarter is published within the following year"
    ),
    "max_backdating_days": Bound(0, 90, "a certificate is recorded within weeks of its issue"),
    "issuance_dates_from_height": Bound(
        0, 2**53 - 1, "a height; 0 (an older genesis): not in force until governance sets it"
    ),
    "max_event_age_ms": Bound(
        3_600_000, 30 * 86_400_000, "a signed event is submitted within hours, not months"
    ),
    "event_times_from_height": Bound(
        0, 2**53 - 1, "a height; 0 (an older genesis): not in force until governance sets it"
    ),
    "governance_dormant_days": Bound(
        0, 3650, "0 (off), or at least 30 days: a member is not dormant for a short silence"
    ),
    "history_from": Bound(
        19000101, 99991231, "a date YYYYMMDD: the first day of the history a network takes"
    ),
}


#: Rules between parameters: what must hold, and the check.
def _is_calendar_date(value: int) -> bool:
    try:
        date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return False
    return True


PARAMETER_RULES: tuple[tuple[str, Callable[[Parameters], bool]], ...] = (
    (
        "history_from is a calendar date written YYYYMMDD (20030101: 2003-01-01)",
        lambda p: _is_calendar_date(p.history_from),
    ),
    (
        "governance_dormant_days is 0 (off) or at least 30",
        lambda p: p.governance_dormant_days == 0 or p.governance_dormant_days >= 30,
    ),
    (
        "max_block_bytes must be at least max_event_bytes (a block holds the largest event)",
        lambda p: p.max_block_bytes >= p.max_event_bytes,
    ),
    (
        "the governance threshold must be more than 1/2 and less than 1",
        lambda p: (
            2 * p.governance_threshold_num > p.governance_threshold_den
            and p.governance_threshold_num < p.governance_threshold_den
        ),
    ),
)


def validators_hash(validators: tuple[Validator, ...]) -> bytes:
    return tagged_hash(TAG_VALIDATORS, encode([v.to_wire() for v in validators]))


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time: str
    participants: tuple[Participant, ...]
    validators: tuple[Validator, ...]
    parameters: Parameters = field(default_factory=Parameters)
    #: Extra recipients of sealed identities, by exporting participant (e.g. a monitoring team).
    extra_recipients: tuple[tuple[str, str, bytes], ...] = ()

    def __post_init__(self) -> None:
        codes = [p.code for p in self.participants]
        if len(set(codes)) != len(codes):
            raise MalformedInput("genesis: a participant code appears twice")
        countries = [c for p in self.participants for c in p.countries]
        if len(set(countries)) != len(countries):
            raise MalformedInput("genesis: a country belongs to two participants")
        if not self.validators:
            raise MalformedInput("genesis: at least one validator is needed")
        keys = [v.node_key for v in self.validators]
        if len(set(keys)) != len(keys):
            raise MalformedInput("genesis: a validator node key appears twice")
        for v in self.validators:
            if v.participant not in codes:
                raise MalformedInput(f"genesis: validator of unknown participant {v.participant}")
        if not self.chain_id or len(self.chain_id) > 64:
            raise MalformedInput("genesis: chain_id must be 1 to 64 characters")
        problem = self.parameters.violation()
        if problem is not None:
            raise MalformedInput(f"genesis: parameters: {problem}")

    def participant(self, code: str) -> Participant | None:
        for p in self.participants:
            if p.code == code:
                return p
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "participants": [p.to_json() for p in self.participants],
            "validators": [v.to_json() for v in self.validators],
            "parameters": self.parameters.to_json(),
            "extra_recipients": [
                {"exporting_participant": exp, "name": name, "encryption_key": key.hex()}
                for exp, name, key in self.extra_recipients
            ],
        }

    @classmethod
    def from_json(cls, raw: Any) -> Genesis:
        if not isinstance(raw, dict):
            raise MalformedInput("genesis: must be a JSON object")
        extra = []
        for item in raw.get("extra_recipients") or []:
            if not isinstance(item, dict):
                raise MalformedInput("genesis: extra_recipients entries must be objects")
            extra.append(
                (
                    str(item.get("exporting_participant")),
                    str(item.get("name")),
                    _hex32("extra recipient encryption_key", item.get("encryption_key")),
                )
            )
        participants = raw.get("participants")
        validators = raw.get("validators")
        if not isinstance(participants, list) or not isinstance(validators, list):
            raise MalformedInput("genesis: participants and validators must be lists")
        return cls(
            chain_id=str(raw.get("chain_id") or ""),
            genesis_time=str(raw.get("genesis_time") or ""),
            participants=tuple(Participant.from_json(p) for p in participants),
            validators=tuple(Validator.from_json(v) for v in validators),
            parameters=Parameters.from_json(raw.get("parameters")),
            extra_recipients=tuple(extra),
        )

    def to_wire(self) -> list[Any]:
        return [
            self.chain_id,
            self.genesis_time,
            [p.to_wire() for p in self.participants],
            [v.to_wire() for v in self.validators],
            self.parameters.to_wire(),
            [[exp, name, key] for exp, name, key in self.extra_recipients],
        ]

    @property
    def hash(self) -> bytes:
        """Binds every node to the same genesis: the previous hash of block 1."""
        return tagged_hash(TAG_GENESIS, encode(self.to_wire()))
