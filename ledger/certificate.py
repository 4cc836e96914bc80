"""The KP certificate: its fields (every KPCS element), their rules, and its document digest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry

from ledger.encoding import encode
from ledger.errors import InvalidCertificate, InvalidCertificateNumber
from ledger.hashing import TAG_CERT_CONFIDENTIAL, TAG_CERT_DIGEST, TAG_IDENTITY_COMMIT, tagged_hash

HS_CODES = ("7102.10", "7102.21", "7102.31")
HS_DESCRIPTIONS = {
    "7102.10": "Unsorted",
    "7102.21": "Industrial, unworked or simply sawn, cleaved or bruted",
    "7102.31": "Non-industrial, unworked or simply sawn, cleaved or bruted",
}
MIXED_ORIGIN = "MIXED"
MULTI_COUNTRY_PARTICIPANTS = frozenset({"EU"})

#: Matched with fullmatch only: `$` with `match` also accepts a trailing newline.
_NUMBER_RE = re.compile(r"[A-Z]{2}-[A-Z0-9-]{1,20}")
_AMOUNT_RE = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?")
NUMBER_RULE = "an ISO alpha-2 prefix, a dash, then 1 to 20 of A-Z, 0-9 and dashes"
NUMBER_EXAMPLE = "BE-2026-000123"
#: Longer than any number can be: what a route or a command reads of one at most.
MAX_NUMBER_INPUT = 64
MAX_NAME = 200
MAX_ADDRESS = 500
MAX_PARCELS = 1_000_000
MAX_ZONE = 64


#: pycountry's own alpha-2 index keys (it looks a code up lower-cased): asking the set gives
#: `pycountry.countries.get(alpha_2=code) is not None` exactly, without a call through its lazy
#: loader and lock on each of the several codes every event carries.
_COUNTRY_KEYS = frozenset(country.alpha_2.lower() for country in pycountry.countries)


def is_country(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code, as the maintained pycountry database knows it."""
    return (
        isinstance(code, str)
        and len(code) == 2
        and code.isupper()
        and code.lower() in _COUNTRY_KEYS
    )


def is_participant_code(code: str) -> bool:
    return is_country(code) or code in MULTI_COUNTRY_PARTICIPANTS


def is_certificate_number(value: object) -> bool:
    """The form SPEC 3 gives a number, exactly: no surrounding space, no trailing newline."""
    return (
        isinstance(value, str) and _NUMBER_RE.fullmatch(value) is not None and is_country(value[:2])
    )


def normalise_number(typed: str) -> str:
    """A certificate number as a person typed or pasted it: trimmed and upper-cased, then checked.

    The one place every command and route reads a number given by hand. Only human input is
    normalised: a number inside a signed event is taken as it is, and refused if not exact.
    Raises InvalidCertificateNumber, saying what a number looks like.
    """
    if not isinstance(typed, str):
        raise InvalidCertificateNumber(f"a certificate number looks like {NUMBER_EXAMPLE}")
    shown = typed if len(typed) <= MAX_NUMBER_INPUT else typed[:MAX_NUMBER_INPUT] + "..."
    number = typed.strip()
    # Upper-case ASCII only: str.upper() would turn some other letters into A-Z (U+017F into S).
    if number.isascii():
        number = number.upper()
    if not _NUMBER_RE.fullmatch(number):
        raise InvalidCertificateNumber(
            f"{shown!r} is not a certificate number, which is {NUMBER_RULE} (e.g. {NUMBER_EXAMPLE})"
        )
    if not is_country(number[:2]):
        raise InvalidCertificateNumber(
            f"{shown!r} is not a certificate number: its prefix {number[:2]!r} is not an "
            "ISO 3166-1 country"
        )
    return number


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country is not None else code


def parse_hundredths(field: str, raw: Any, *, positive: bool) -> int:
    """A decimal amount with at most 2 places, as an integer of hundredths. Never a float."""
    if isinstance(raw, bool | float):
        raise InvalidCertificate(
            field, 'must be a decimal string such as "1250.50", never a binary float'
        )
    if isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise InvalidCertificate(field, 'must be a decimal string such as "1250.50"')
    if not _AMOUNT_RE.fullmatch(text):
        raise InvalidCertificate(
            field, f"{raw!r} is not a non-negative decimal with at most 2 decimal places"
        )
    try:
        hundredths = int(Decimal(text) * 100)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes these
        raise InvalidCertificate(field, f"{raw!r} is not a decimal number") from exc
    if positive and hundredths <= 0:
        raise InvalidCertificate(field, "must be greater than zero")
    return hundredths


def format_hundredths(value: int) -> str:
    """The canonical decimal string of an integer of hundredths: always two places."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100}.{value % 100:02d}"


def _parse_date(field: str, raw: Any) -> date:
    if not isinstance(raw, str):
        raise InvalidCertificate(field, "must be an ISO date string YYYY-MM-DD")
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidCertificate(field, f"{raw!r} is not an ISO date YYYY-MM-DD") from exc


def _text(field: str, raw: Any, limit: int) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidCertificate(field, "must be a non-empty string")
    if len(raw) > limit:
        raise InvalidCertificate(field, f"must be at most {limit} characters")
    if any(ord(ch) < 32 and ch not in "\n" for ch in raw):
        raise InvalidCertificate(field, "must not contain control characters")
    return raw.strip()


@dataclass(frozen=True)
class Party:
    """An exporter or importer: the trading company named on the certificate (confidential)."""

    name: str
    address: str

    @classmethod
    def from_json(cls, field: str, raw: Any) -> Party:
        if not isinstance(raw, dict):
            raise InvalidCertificate(field, "must be an object {name, address}")
        extra = set(raw) - {"name", "address"}
        if extra:
            raise InvalidCertificate(field, f"unknown fields {sorted(extra)}")
        return cls(
            name=_text(f"{field}.name", raw.get("name"), MAX_NAME),
            address=_text(f"{field}.address", raw.get("address"), MAX_ADDRESS),
        )

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True)
class Identities:
    """Who traded with whom: the part of a certificate only the parties' authorities may read."""

    exporter: Party
    importer: Party

    def to_wire(self) -> list[Any]:
        return [
            self.exporter.name,
            self.exporter.address,
            self.importer.name,
            self.importer.address,
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> Identities:
        if (
            not isinstance(obj, list)
            or len(obj) != 4
            or not all(isinstance(item, str) for item in obj)
        ):
            raise InvalidCertificate("identities", "malformed identities")
        return cls(Party(obj[0], obj[1]), Party(obj[2], obj[3]))

    def commitment(self, salt: bytes) -> bytes:
        """Salted commitment: binds the identities into the digest without revealing them."""
        return tagged_hash(TAG_IDENTITY_COMMIT, encode([salt, *self.to_wire()]))


@dataclass(frozen=True)
class ShipmentFacts:
    """The facts every participant node may read (network statistics need them)."""

    number: str
    exporting_participant: str
    importing_participant: str
    origin: tuple[str, ...]
    hs_code: str
    carats: int  # hundredths of a carat
    value_usd: int  # US cents
    parcels: int
    issued_on: date
    expires_on: date
    replaces: str | None
    zone: str | None = None  # an approved origin zone, for a restricted participant

    @property
    def prefix(self) -> str:
        return self.number[:2]

    def to_wire(self) -> list[Any]:
        return [
            self.number,
            self.exporting_participant,
            self.importing_participant,
            list(self.origin),
            self.hs_code,
            self.carats,
            self.value_usd,
            self.parcels,
            self.issued_on.isoformat(),
            self.expires_on.isoformat(),
            self.replaces or "",
            self.zone or "",
        ]

    @classmethod
    def from_wire(cls, obj: Any, *, trusted: bool = False) -> ShipmentFacts:
        """Parse facts; `trusted` skips the rule checks for records this node stored itself."""
        if not isinstance(obj, list) or len(obj) != 12:
            raise InvalidCertificate("certificate", "malformed shipment facts")
        (number, exp, imp, origin, hs, carats, value, parcels, issued, expires, repl, zone) = obj
        if not isinstance(origin, list):
            raise InvalidCertificate("origin", "must be a list")
        for name, item in (("carats", carats), ("value_usd", value), ("parcels", parcels)):
            if not isinstance(item, int) or isinstance(item, bool):
                raise InvalidCertificate(name, "must be an integer on the wire")
        facts = cls(
            number=number,
            exporting_participant=exp,
            importing_participant=imp,
            origin=tuple(origin),
            hs_code=hs,
            carats=carats,
            value_usd=value,
            parcels=parcels,
            issued_on=_parse_date("issued_on", issued),
            expires_on=_parse_date("expires_on", expires),
            replaces=repl or None,
            zone=zone or None,
        )
        if trusted:
            return facts
        facts.check()
        if facts.to_wire() != obj:
            raise InvalidCertificate("certificate", "shipment facts are not in canonical form")
        return facts

    def public_wire(self) -> list[Any]:
        """The facts anyone may see: number, participants, dates, and what it replaces."""
        return [
            self.number,
            self.exporting_participant,
            self.importing_participant,
            self.issued_on.isoformat(),
            self.expires_on.isoformat(),
            self.replaces or "",
        ]

    def check(self) -> None:
        """Every rule that needs nothing but the certificate itself."""
        if not isinstance(self.number, str) or not _NUMBER_RE.fullmatch(self.number):
            raise InvalidCertificate("number", f"{self.number!r} must be {NUMBER_RULE}")
        if not is_country(self.prefix):
            raise InvalidCertificate(
                "number", f"prefix {self.prefix!r} is not an ISO 3166-1 country"
            )
        for field in ("exporting_participant", "importing_participant"):
            code = getattr(self, field)
            if not isinstance(code, str) or not is_participant_code(code):
                raise InvalidCertificate(field, f"{code!r} is not an ISO 3166-1 alpha-2 code or EU")
        if not self.origin:
            raise InvalidCertificate("origin", "must name at least one country, or MIXED")
        if MIXED_ORIGIN in self.origin:
            if len(self.origin) != 1:
                raise InvalidCertificate("origin", "MIXED stands alone")
        else:
            for code in self.origin:
                if not isinstance(code, str) or not is_country(code):
                    raise InvalidCertificate(
                        "origin", f"{code!r} is not an ISO 3166-1 alpha-2 code"
                    )
            if len(set(self.origin)) != len(self.origin):
                raise InvalidCertificate("origin", "names a country twice")
            if len(self.origin) > 50:
                raise InvalidCertificate("origin", "names too many countries")
        if self.hs_code not in HS_CODES:
            raise InvalidCertificate(
                "hs_code", f"{self.hs_code!r} must be one of {', '.join(HS_CODES)}"
            )
        if self.carats <= 0:
            raise InvalidCertificate("carats", "must be greater than zero")
        if self.value_usd < 0:
            raise InvalidCertificate("value_usd", "must not be negative")
        if self.carats >= 10**18 or self.value_usd >= 10**18:
            raise InvalidCertificate("carats", "amount out of range")
        if not 1 <= self.parcels <= MAX_PARCELS:
            raise InvalidCertificate("parcels", f"must be a whole number from 1 to {MAX_PARCELS}")
        if self.issued_on > self.expires_on:
            raise InvalidCertificate("expires_on", "must not be before issued_on")
        if self.replaces is not None and (
            not isinstance(self.replaces, str) or not _NUMBER_RE.fullmatch(self.replaces)
        ):
            raise InvalidCertificate("replaces", f"{self.replaces!r} is not a certificate number")
        if self.replaces == self.number:
            raise InvalidCertificate("replaces", "a certificate cannot replace itself")
        if self.zone is not None and (
            not isinstance(self.zone, str) or not 1 <= len(self.zone) <= MAX_ZONE
        ):
            raise InvalidCertificate("zone", f"must be 1 to {MAX_ZONE} characters")


_CERT_FIELDS = {
    "number",
    "exporting_participant",
    "importing_participant",
    "origin",
    "hs_code",
    "carats",
    "value_usd",
    "parcels",
    "exporter",
    "importer",
    "issued_on",
    "expires_on",
    "replaces",
    "zone",
    "identity_salt",
}


#: Fields a node adds when it shows a record; a document exported that way still parses.
_RECORD_FIELDS = {
    "status",
    "ledger_status",
    "digest",
    "history",
    "party",
    "identities",
    "identities_error",
    "replaced_by",
    "reason",
}


@dataclass(frozen=True)
class Certificate:
    """A whole certificate document: the shipment facts and the trading parties."""

    facts: ShipmentFacts
    identities: Identities

    @property
    def number(self) -> str:
        return self.facts.number

    @classmethod
    def from_json(cls, raw: Any) -> Certificate:
        """Parse and check the JSON form of SPEC section 3. Raises InvalidCertificate."""
        if not isinstance(raw, dict):
            raise InvalidCertificate("certificate", "must be a JSON object")
        unknown = set(raw) - _CERT_FIELDS - _RECORD_FIELDS
        if unknown:
            raise InvalidCertificate("certificate", f"unknown fields {sorted(unknown)}")
        for required in _CERT_FIELDS - {"replaces", "zone", "identity_salt"}:
            if required not in raw:
                raise InvalidCertificate(required, "is required")
        origin = raw["origin"]
        if isinstance(origin, str):
            origin = [origin]
        if not isinstance(origin, list):
            raise InvalidCertificate("origin", 'must be a list of ISO alpha-2 codes, or ["MIXED"]')
        parcels = raw["parcels"]
        if isinstance(parcels, bool) or not isinstance(parcels, int):
            raise InvalidCertificate("parcels", "must be a whole number")
        replaces = raw.get("replaces")
        if replaces is not None and not isinstance(replaces, str):
            raise InvalidCertificate("replaces", "must be a certificate number")
        if replaces is not None:
            replaces = replaces.strip()  # as the number is: the document is typed by a person
        zone = raw.get("zone")
        if zone is not None and not isinstance(zone, str):
            raise InvalidCertificate("zone", "must be a string")
        for text_field in ("number", "exporting_participant", "importing_participant", "hs_code"):
            if not isinstance(raw[text_field], str):
                raise InvalidCertificate(text_field, "must be a string")
        facts = ShipmentFacts(
            number=raw["number"].strip(),
            exporting_participant=raw["exporting_participant"].strip(),
            importing_participant=raw["importing_participant"].strip(),
            origin=tuple(origin),
            hs_code=raw["hs_code"].strip(),
            carats=parse_hundredths("carats", raw["carats"], positive=True),
            value_usd=parse_hundredths("value_usd", raw["value_usd"], positive=False),
            parcels=parcels,
            issued_on=_parse_date("issued_on", raw["issued_on"]),
            expires_on=_parse_date("expires_on", raw["expires_on"]),
            replaces=replaces or None,
            zone=zone or None,
        )
        facts.check()
        identities = Identities(
            exporter=Party.from_json("exporter", raw["exporter"]),
            importer=Party.from_json("importer", raw["importer"]),
        )
        return cls(facts=facts, identities=identities)

    def to_json(self) -> dict[str, Any]:
        f = self.facts
        out: dict[str, Any] = {
            "number": f.number,
            "exporting_participant": f.exporting_participant,
            "importing_participant": f.importing_participant,
            "origin": list(f.origin),
            "hs_code": f.hs_code,
            "carats": format_hundredths(f.carats),
            "value_usd": format_hundredths(f.value_usd),
            "parcels": f.parcels,
            "exporter": self.identities.exporter.to_json(),
            "importer": self.identities.importer.to_json(),
            "issued_on": f.issued_on.isoformat(),
            "expires_on": f.expires_on.isoformat(),
        }
        if f.replaces:
            out["replaces"] = f.replaces
        if f.zone:
            out["zone"] = f.zone
        return out

    def digest(self, salt: bytes) -> bytes:
        """The certificate digest the ledger records; binds the identities through their commitment."""
        return certificate_digest(self.facts, self.identities.commitment(salt))


def certificate_digest(facts: ShipmentFacts, identity_commitment: bytes) -> bytes:
    """Digest of the whole document, in two halves so the public can check the public half.

    The confidential half (amounts, origin, and the salted commitment to the parties) is hashed
    first; the public answer shows only that hash, which the salt keeps from being guessed.
    """
    return digest_from_parts(facts.public_wire(), confidential_hash(facts, identity_commitment))


def confidential_hash(facts: ShipmentFacts, identity_commitment: bytes) -> bytes:
    return tagged_hash(
        TAG_CERT_CONFIDENTIAL,
        encode(
            [
                list(facts.origin),
                facts.hs_code,
                facts.carats,
                facts.value_usd,
                facts.parcels,
                facts.zone or "",
                identity_commitment,
            ]
        ),
    )


def digest_from_parts(public_wire: list[Any], confidential: bytes) -> bytes:
    return tagged_hash(TAG_CERT_DIGEST, encode([public_wire, confidential]))
