"""Sealing a certificate's trading parties to the authorities allowed to read them (HPKE, RFC 9180)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hpke

from ledger.certificate import Identities
from ledger.encoding import decode, encode
from ledger.errors import LedgerError, MalformedInput, NotARecipient, SealBroken
from ledger.hashing import tagged
from ledger.keys import EncryptionKey
from ledger.memo import once

# DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305: RFC 9180 mode_base, single shot.
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
TAG_SEAL = b"kp/seal/1"
SALT_BYTES = 32
MAX_BOXES = 16


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def _info(number: str, recipient: str) -> bytes:
    # Binds each ciphertext to its certificate and recipient: a box cannot be moved to another.
    return tagged(TAG_SEAL, encode([number, recipient]))


@dataclass(frozen=True)
class SealedBox:
    recipient: str
    ciphertext: bytes


@dataclass(frozen=True)
class SealedIdentities:
    """What the ledger stores of the parties: a salted commitment and one box per recipient."""

    commitment: bytes
    boxes: tuple[SealedBox, ...]

    def to_wire(self) -> list[Any]:
        return [self.commitment, [[b.recipient, b.ciphertext] for b in self.boxes]]

    @classmethod
    def from_wire(cls, obj: Any) -> SealedIdentities:
        if not isinstance(obj, list) or len(obj) != 2:
            raise MalformedInput("sealed identities: expected [commitment, boxes]")
        commitment, boxes = obj
        if not isinstance(commitment, bytes) or len(commitment) != 32:
            raise MalformedInput("sealed identities: the commitment must be 32 bytes")
        if not isinstance(boxes, list) or not 1 <= len(boxes) <= MAX_BOXES:
            raise MalformedInput(f"sealed identities: 1 to {MAX_BOXES} boxes")
        parsed = []
        for box in boxes:
            if (
                not isinstance(box, list)
                or len(box) != 2
                or not isinstance(box[0], str)
                or not isinstance(box[1], bytes)
                or len(box[1]) > 8192
            ):
                raise MalformedInput("sealed identities: each box is [recipient, ciphertext]")
            parsed.append(SealedBox(box[0], box[1]))
        recipients = [b.recipient for b in parsed]
        if len(set(recipients)) != len(recipients):
            raise MalformedInput("sealed identities: a recipient appears twice")
        if len({len(b.ciphertext) for b in parsed}) != 1:
            # Every box seals the same plaintext with the same suite: one length for all.
            raise MalformedInput("sealed identities: the boxes seal one plaintext, of one length")
        return cls(commitment, tuple(parsed))

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(b.recipient for b in self.boxes)

    @once
    def recipient_names(self) -> frozenset[str]:
        """The recipients as a set, made once (admission and the block both check them)."""
        return frozenset(self.recipients)

    def box_for(self, recipient: str) -> SealedBox | None:
        for box in self.boxes:
            if box.recipient == recipient:
                return box
        return None


def seal(
    identities: Identities,
    salt: bytes,
    number: str,
    recipients: Sequence[tuple[str, bytes]],
) -> SealedIdentities:
    """Encrypt the identities (with the salt, so a recipient can re-derive the commitment)."""
    if len(salt) != SALT_BYTES:
        raise MalformedInput(f"the identity salt must be {SALT_BYTES} bytes")
    plaintext = encode([salt, *identities.to_wire()])
    boxes = []
    for name, public_key in recipients:
        key = EncryptionKey.public_from_bytes(public_key)
        boxes.append(SealedBox(name, SUITE.encrypt(plaintext, key, info=_info(number, name))))
    return SealedIdentities(identities.commitment(salt), tuple(boxes))


def open_sealed(
    sealed: SealedIdentities, number: str, recipient: str, key: EncryptionKey
) -> tuple[Identities, bytes]:
    """Open this recipient's box; returns the identities and the salt. Checks the commitment."""
    box = sealed.box_for(recipient)
    if box is None:
        raise NotARecipient(f"{recipient} is not a party to certificate {number}")
    try:
        plaintext = SUITE.decrypt(box.ciphertext, key.raw, info=_info(number, recipient))
    except Exception as exc:  # cryptography raises InvalidTag or ValueError on any tampering
        raise SealBroken(f"the sealed identities of {number} do not open with this key") from exc
    try:
        obj = decode(plaintext)
        if not isinstance(obj, list) or len(obj) != 5 or not isinstance(obj[0], bytes):
            raise MalformedInput("bad plaintext")
        salt = obj[0]
        identities = Identities.from_wire(obj[1:])
    except LedgerError as exc:
        raise SealBroken(f"the sealed identities of {number} are malformed") from exc
    if identities.commitment(salt) != sealed.commitment:
        raise SealBroken(f"the sealed identities of {number} do not match their commitment")
    return identities, salt
