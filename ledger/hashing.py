"""Domain-separated SHA-256: every hash and signed message names the kind of object it covers."""

from __future__ import annotations

import hashlib

# Tags, one per kind of object and version. A signature over one can never be replayed as another.
TAG_EVENT = b"kp/event/1"
TAG_EVENT_ID = b"kp/event-id/1"
TAG_HEADER = b"kp/header/1"
TAG_VOTE = b"kp/vote/1"
TAG_PROPOSAL = b"kp/proposal/1"
TAG_PEER = b"kp/peer/2"
TAG_CERT_DIGEST = b"kp/certificate/1"
TAG_CERT_CONFIDENTIAL = b"kp/certificate-confidential/1"
TAG_IDENTITY_COMMIT = b"kp/identities/1"
TAG_STATE_LEAF = b"kp/state-leaf/1"
TAG_STATE_NODE = b"kp/state-node/1"
TAG_STATE_VALUE = b"kp/state-value/1"
TAG_GENESIS = b"kp/genesis/1"
TAG_VALIDATORS = b"kp/validators/1"
TAG_REGISTRY = b"kp/registry/1"
TAG_KEY_ID = b"kp/key-id/1"
TAG_KEY_POSSESSION = b"kp/key-possession/1"
TAG_RECOVERY = b"kp/recovery/1"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tagged(tag: bytes, data: bytes) -> bytes:
    """The message a tag covers: tag, a zero byte, then the data (tags never contain a zero byte)."""
    return tag + b"\x00" + data


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    return hashlib.sha256(tag + b"\x00" + data).digest()
