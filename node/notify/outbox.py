"""The webhook outbox: each webhook's settings and a durable cursor into the final chain.

The outbox is not a second copy of the events: what a webhook must still receive is every event
after its cursor that it wants (node/notify/cursor.py), read from the final chain, which the
store writes in one synced batch per block. The cursor moves past an event only once its
receiver answered 2xx (or when the event is not one the webhook wants). So whatever instant the
node is killed at, every event final after the cursor on disk is sent again at the next start:
none is lost, and one delivered whose cursor move did not reach the disk is sent again with the
same `webhook-id` (message_id: the webhook's id and the event's, not a counter). The node never
writes the outbox in the block's batch, so the commit path knows nothing of webhooks.
Keys: ledger/store/keys.py (P_WEBHOOK).
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ledger.encoding import decode, encode
from ledger.errors import MalformedInput, WebhookNotFound
from ledger.events import BODY_TYPES
from ledger.store import keys
from ledger.store.kv import KV
from node.notify.cursor import Cursor, Interest

#: The first retry comes this soon after a failure (SPEC 9: within 10 s), each next one twice as
#: late, at most RETRY_CAP_S apart; a delivery is retried until it succeeds or the webhook is
#: removed (so for at least 24 hours, as SPEC 9 asks, and with no end a receiver could miss).
RETRY_FIRST_S = 5.0
RETRY_CAP_S = 3600.0
#: Deliveries kept per webhook for GET /v1/webhooks (the oldest are dropped).
KEEP_DELIVERIES = 100
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_URL = 2048
#: A webhook's URL may be plain http only to the node's own machine (a receiver beside it).
LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class Webhook:
    """A receiver: where to POST, which event types (empty: every one the stream carries)."""

    webhook_id: str
    url: str
    types: tuple[str, ...]
    secret: bytes
    created_ms: int

    @property
    def secret_text(self) -> str:
        """The signing secret as Standard Webhooks writes it: whsec_ and the key in base64."""
        return SECRET_PREFIX + base64.b64encode(self.secret).decode()

    def interest_of(self, participant: str) -> Interest:
        return Interest(participant, frozenset(self.types))

    def to_wire(self) -> list[Any]:
        return [self.webhook_id, self.url, list(self.types), self.secret, self.created_ms]

    @classmethod
    def from_wire(cls, obj: Any) -> Webhook:
        webhook_id, url, types, secret, created_ms = obj
        return cls(
            str(webhook_id), str(url), tuple(str(t) for t in types), bytes(secret), created_ms
        )


@dataclass(frozen=True)
class Progress:
    """How far a webhook got: `cursor` past every event delivered or not wanted; the delivery
    under way when it has failed so far (`attempts` > 0)."""

    cursor: Cursor
    delivered: int = 0
    attempts: int = 0
    failing_since_ms: int | None = None
    next_attempt_ms: int | None = None
    last_status: int | None = None
    last_error: str | None = None
    pending_event: bytes | None = None
    pending_cursor: Cursor | None = None

    def to_wire(self) -> list[Any]:
        pending = self.pending_cursor
        return [
            self.cursor.height,
            self.cursor.index,
            self.delivered,
            self.attempts,
            self.failing_since_ms,
            self.next_attempt_ms,
            self.last_status,
            self.last_error,
            self.pending_event,
            None if pending is None else [pending.height, pending.index],
        ]

    @classmethod
    def from_wire(cls, obj: Any) -> Progress:
        height, index, delivered, attempts, since, due, status, error, event, pending = obj
        return cls(
            Cursor(height, index),
            delivered,
            attempts,
            since,
            due,
            status,
            error,
            event,
            None if pending is None else Cursor(pending[0], pending[1]),
        )


@dataclass(frozen=True)
class Delivery:
    """One event delivered to a webhook: how many attempts it took and what the receiver said."""

    cursor: Cursor
    event_id: bytes
    message_id: str
    attempts: int
    delivered_ms: int
    status: int

    def to_wire(self) -> list[Any]:
        return [self.event_id, self.message_id, self.attempts, self.delivered_ms, self.status]


def message_id(webhook_id: str, event_id: bytes) -> str:
    """The `webhook-id` of an event's delivery to a webhook: the same at every attempt, after
    every restart, and on every node that holds the webhook's settings."""
    return f"msg_{webhook_id}_{event_id.hex()}"


def retry_delay_s(
    failures: int, first_s: float = RETRY_FIRST_S, cap_s: float = RETRY_CAP_S
) -> float:
    """How long after its `failures`-th failed attempt a delivery is tried again."""
    if failures < 1:
        return 0.0
    return float(min(cap_s, first_s * 2 ** min(failures - 1, 62)))


def check_url(raw: Any) -> str:
    """A receiver URL: https, or http to this machine only (loopback); refused otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise MalformedInput("a webhook needs a url (https://...)")
    url = raw.strip()
    if len(url) > MAX_URL:
        raise MalformedInput(f"a webhook url is at most {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise MalformedInput(f"a webhook url is https://host/path, not {url[:80]!r}")
    if parts.username or parts.password:
        raise MalformedInput("a webhook url carries no user or password (deliveries are signed)")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise MalformedInput(
            "a webhook url must be https:// (plain http:// only to this machine: 127.0.0.1, "
            "::1 or localhost)"
        )
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError as exc:
        raise MalformedInput(f"a webhook url's port is wrong: {exc}") from exc
    return url


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_types(types: Any) -> tuple[str, ...]:
    """Event types a webhook asks for: each one the ledger knows (empty: all of them)."""
    if types is None:
        return ()
    if isinstance(types, str):
        types = [t for t in (part.strip() for part in types.split(",")) if t]
    if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
        raise MalformedInput("events is a list of event types")
    unknown = sorted(set(types) - set(BODY_TYPES))
    if unknown:
        raise MalformedInput(
            f"unknown event type {', '.join(unknown)}; the types are {', '.join(sorted(BODY_TYPES))}"
        )
    return tuple(sorted(set(types)))


class WebhookBook:
    """The webhooks in the node's store: settings, progress and the latest deliveries."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv

    def add(self, url: str, types: tuple[str, ...], start: Cursor, now_ms: int) -> Webhook:
        """A new webhook, delivering the events final after `start`; durable before it returns."""
        webhook = Webhook(
            "wh_" + secrets.token_hex(6), url, types, secrets.token_bytes(SECRET_BYTES), now_ms
        )
        with self.kv.batch(sync=True) as batch:
            batch.put(keys.webhook_settings(webhook.webhook_id), encode(webhook.to_wire()))
            batch.put(keys.webhook_progress(webhook.webhook_id), encode(Progress(start).to_wire()))
        return webhook

    def remove(self, webhook_id: str) -> None:
        if self.get(webhook_id) is None:
            raise WebhookNotFound(f"no webhook {webhook_id!r} on this node")
        found = list(self.kv.keys(keys.webhook(webhook_id)))
        with self.kv.batch(sync=True) as batch:
            for key in found:
                batch.delete(key)

    def get(self, webhook_id: str) -> Webhook | None:
        if "/" in webhook_id:
            return None
        raw = self.kv.get(keys.webhook_settings(webhook_id))
        return None if raw is None else Webhook.from_wire(decode(raw))

    def webhooks(self) -> list[Webhook]:
        out = []
        for key, raw in self.kv.items(keys.P_WEBHOOK):
            webhook_id = key[len(keys.P_WEBHOOK) :].split(b"/", 1)[0].decode()
            if key == keys.webhook_settings(webhook_id):
                out.append(Webhook.from_wire(decode(raw)))
        return sorted(out, key=lambda w: (w.created_ms, w.webhook_id))

    def progress(self, webhook_id: str) -> Progress:
        raw = self.kv.get(keys.webhook_progress(webhook_id))
        if raw is None:
            raise WebhookNotFound(f"no webhook {webhook_id!r} on this node")
        return Progress.from_wire(decode(raw))

    def skipped_to(self, webhook_id: str, cursor: Cursor) -> Progress:
        """Nothing the webhook wants up to `cursor` (not synced: redoing the scan costs nothing)."""
        progress = replace(self.progress(webhook_id), cursor=cursor)
        self.kv_put(webhook_id, progress, sync=False)
        return progress

    def failed(
        self,
        webhook_id: str,
        cursor: Cursor,
        event_id: bytes,
        *,
        now_ms: int,
        status: int | None,
        error: str,
        first_s: float = RETRY_FIRST_S,
        cap_s: float = RETRY_CAP_S,
    ) -> Progress:
        """An attempt failed: when the next one is due (not synced: a count lost to a crash only
        makes the next retry come sooner)."""
        old = self.progress(webhook_id)
        attempts = old.attempts + 1 if old.pending_cursor == cursor else 1
        progress = replace(
            old,
            attempts=attempts,
            failing_since_ms=old.failing_since_ms if attempts > 1 else now_ms,
            next_attempt_ms=now_ms + int(retry_delay_s(attempts, first_s, cap_s) * 1000),
            last_status=status,
            last_error=error[:300],
            pending_event=event_id,
            pending_cursor=cursor,
        )
        self.kv_put(webhook_id, progress, sync=False)
        return progress

    def delivered(
        self, webhook_id: str, cursor: Cursor, event_id: bytes, *, now_ms: int, status: int
    ) -> Progress:
        """The receiver took the event: the cursor moves past it, with its delivery record, in
        one synced batch (the oldest record beyond KEEP_DELIVERIES leaves in it too)."""
        old = self.progress(webhook_id)
        attempts = old.attempts + 1 if old.pending_cursor == cursor else 1
        delivery = Delivery(
            cursor, event_id, message_id(webhook_id, event_id), attempts, now_ms, status
        )
        progress = Progress(cursor, old.delivered + 1)
        prefix = keys.webhook_deliveries(webhook_id)
        old_keys = list(self.kv.keys(prefix))
        with self.kv.batch(sync=True) as batch:
            batch.put(keys.webhook_progress(webhook_id), encode(progress.to_wire()))
            batch.put(
                keys.webhook_delivery(webhook_id, cursor.height, cursor.index),
                encode(delivery.to_wire()),
            )
            for key in old_keys[: max(0, len(old_keys) + 1 - KEEP_DELIVERIES)]:
                batch.delete(key)
        return progress

    def deliveries(self, webhook_id: str) -> list[Delivery]:
        """The latest deliveries, newest first."""
        prefix = keys.webhook_deliveries(webhook_id)
        out = []
        for key, raw in self.kv.items(prefix, reverse=True):
            rest = key[len(prefix) :]
            height = int.from_bytes(rest[:8], "big")
            index = int.from_bytes(rest[8:12], "big")
            event_id, msg_id, attempts, delivered_ms, status = decode(raw)
            out.append(
                Delivery(Cursor(height, index), event_id, msg_id, attempts, delivered_ms, status)
            )
        return out

    def kv_put(self, webhook_id: str, progress: Progress, *, sync: bool) -> None:
        with self.kv.batch(sync=sync) as batch:
            batch.put(keys.webhook_progress(webhook_id), encode(progress.to_wire()))
