"""Webhook signing (checked by the standardwebhooks library), the retry schedule, the outbox's
records, and the receiver docs/api/notifications.md shows."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from standardwebhooks import Webhook as Verifier
from standardwebhooks import WebhookVerificationError

from ledger.errors import MalformedInput, StoreWriteFailed, WebhookNotFound
from ledger.store.kv import MemoryKV
from node.notify.cursor import Cursor, StreamEvent
from node.notify.outbox import (
    KEEP_DELIVERIES,
    RETRY_CAP_S,
    RETRY_FIRST_S,
    WebhookBook,
    check_types,
    check_url,
    message_id,
    retry_delay_s,
)
from node.notify.webhooks import delivery_body, sign

DOC = Path(__file__).resolve().parents[3] / "docs" / "api" / "notifications.md"


def event(height: int = 5, index: int = 1) -> StreamEvent:
    return StreamEvent(
        Cursor(height, index), bytes([height]) * 32, "certificate.issue", "BE-1", 1_700_000_000_000
    )


def headers(secret: bytes, msg_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def test_a_signature_is_the_one_standard_webhooks_verifies() -> None:
    book = WebhookBook(MemoryKV())
    webhook = book.add("https://example.org/h", (), Cursor(0, 0), 1)
    body = delivery_body(event())
    msg_id = message_id(webhook.webhook_id, event().event_id)
    now = int(time.time())
    verifier = Verifier(webhook.secret_text)
    assert verifier.verify(body, headers(webhook.secret, msg_id, body, now))["cursor"] == "5:1"
    good = headers(webhook.secret, msg_id, body, now)
    cases = [
        (body + b" ", good),  # another body
        (body, {**good, "webhook-id": msg_id + "x"}),  # another id
        (body, headers(b"\x00" * 32, msg_id, body, now)),  # another secret
        (body, headers(webhook.secret, msg_id, body, now - 3600)),  # an old one replayed
    ]
    for data, bad in cases:
        with pytest.raises(WebhookVerificationError):
            verifier.verify(data, bad)


def test_the_documented_receiver_verifies_a_delivery() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    (receiver,) = [b for b in blocks if "standardwebhooks" in b]
    book = WebhookBook(MemoryKV())
    webhook = book.add("https://example.org/h", (), Cursor(0, 0), 1)
    recorded: list[tuple[str, Any]] = []
    scope: dict[str, Any] = {
        "SECRET": webhook.secret_text,
        "record": lambda msg_id, e: recorded.append((msg_id, e)),
    }
    exec(receiver, scope)

    async def deliver() -> list[int]:
        app = web.Application()
        app.router.add_post("/hook", scope["hook"])
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            body = delivery_body(event())
            msg_id = message_id(webhook.webhook_id, event().event_id)
            good = headers(webhook.secret, msg_id, body, int(time.time()))
            forged = headers(b"\x01" * 32, msg_id, body, int(time.time()))
            statuses = []
            for h in (good, forged):
                response = await client.post("/hook", data=body, headers=h)
                statuses.append(response.status)
            return statuses
        finally:
            await client.close()

    assert asyncio.run(deliver()) == [204, 400]
    assert recorded == [(message_id(webhook.webhook_id, event().event_id), event().to_json())]


def test_retries_come_soon_then_back_off_and_never_stop() -> None:
    assert retry_delay_s(0) == 0
    assert 0 < retry_delay_s(1) == RETRY_FIRST_S <= 10
    delays = [retry_delay_s(n) for n in range(1, 200)]
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[1] == 2 * delays[0] and max(delays) == RETRY_CAP_S
    # Retried for at least 24 hours: past a day of failures the next one is still scheduled.
    elapsed, n = 0.0, 1
    while elapsed < 24 * 3600:
        elapsed += retry_delay_s(n)
        n += 1
    assert retry_delay_s(n) == RETRY_CAP_S


def test_the_outbox_moves_past_an_event_only_once_it_is_delivered() -> None:
    kv = MemoryKV()
    book = WebhookBook(kv)
    hook = book.add("https://example.org/h", ("certificate.issue",), Cursor(4, 0), 10)
    other = book.add("https://example.org/other", (), Cursor(4, 0), 11)
    assert [w.webhook_id for w in book.webhooks()] == [hook.webhook_id, other.webhook_id]
    assert book.get(hook.webhook_id) == hook and hook.secret_text.startswith("whsec_")
    e = event()
    first = book.failed(hook.webhook_id, e.cursor, e.event_id, now_ms=1000, status=503, error="x")
    again = book.failed(hook.webhook_id, e.cursor, e.event_id, now_ms=6000, status=None, error="y")
    assert (first.attempts, again.attempts) == (1, 2)
    assert again.cursor == Cursor(4, 0), "a failed delivery never moves the cursor"
    assert again.failing_since_ms == 1000 and again.next_attempt_ms == 6000 + 10_000
    synced = kv.synced_batches
    done = book.delivered(hook.webhook_id, e.cursor, e.event_id, now_ms=9000, status=204)
    assert kv.synced_batches == synced + 1, "the cursor's move past a delivery is synced"
    assert done.cursor == e.cursor and done.attempts == 0 and done.delivered == 1
    (delivery,) = book.deliveries(hook.webhook_id)
    assert (delivery.attempts, delivery.status, delivery.message_id) == (
        3,
        204,
        message_id(hook.webhook_id, e.event_id),
    )
    for i in range(KEEP_DELIVERIES + 5):
        later = event(6 + i, 0)
        book.delivered(hook.webhook_id, later.cursor, later.event_id, now_ms=10_000, status=200)
    kept = book.deliveries(hook.webhook_id)
    assert len(kept) == KEEP_DELIVERIES and kept[0].cursor == Cursor(6 + KEEP_DELIVERIES + 4, 0)
    book.remove(hook.webhook_id)
    assert book.get(hook.webhook_id) is None
    assert not [k for k in kv.keys(b"") if hook.webhook_id.encode() in k]
    assert book.progress(other.webhook_id).cursor == Cursor(4, 0)
    with pytest.raises(WebhookNotFound):
        book.remove(hook.webhook_id)
    with pytest.raises(WebhookNotFound):
        book.delivered(hook.webhook_id, e.cursor, e.event_id, now_ms=1, status=200)
    assert not [k for k in kv.keys(b"") if hook.webhook_id.encode() in k], "it stays removed"


@pytest.mark.parametrize(
    "url",
    [
        "https://customs.example/kp",
        "http://127.0.0.1:9000/h",
        "http://[::1]:9000/h",
        "http://localhost/h",
    ],
)
def test_receiver_urls_taken(url: str) -> None:
    assert check_url(f" {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "customs.example/kp",
        "http://customs.example/kp",
        "http://10.0.0.1/kp",
        "ftp://127.0.0.1/x",
        "https://u:p@customs.example/",
        "https://customs.example:99999/",
        "https://" + "a" * 3000,
        42,
    ],
)
def test_receiver_urls_refused(url: Any) -> None:
    with pytest.raises(MalformedInput):
        check_url(url)


def test_event_types() -> None:
    assert check_types(None) == () and check_types([]) == ()
    assert check_types("certificate.void, certificate.issue") == (
        "certificate.issue",
        "certificate.void",
    )
    for bad in (["certificate.nope"], [1], "x.y", {"a": 1}):
        with pytest.raises(MalformedInput):
            check_types(bad)


class FlakyBook(WebhookBook):
    """A book whose first write of a delivery fails, as a full disk makes it fail."""

    def __init__(self) -> None:
        super().__init__(MemoryKV())
        self.failures = 1

    def delivered(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise StoreWriteFailed("cannot write to the store: No space left on device")
        return super().delivered(*args, **kwargs)


def test_a_store_that_fails_a_write_holds_deliveries_up_but_loses_none() -> None:
    """The sender goes on after the store failed it: the delivery is sent again (same id) and
    the next follows. (It used to stop for good until the node restarted.)"""
    from node.notify.stream import FinalityBell
    from node.notify.webhooks import SenderSettings, WebhookSender
    from tests.node.notify.test_cursor import ListChain

    events = [(bytes([i]) * 32, "governance.vote", "AE") for i in (1, 2)]
    chain = ListChain([events[:1], events[1:]])
    book = FlakyBook()
    seen: list[tuple[str, str]] = []
    made: dict[str, Any] = {}

    async def run() -> None:
        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            Verifier(made["webhook"].secret_text).verify(body, dict(request.headers))
            seen.append((request.headers["webhook-id"], (await request.json())["event_id"]))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        server = TestServer(app)
        await server.start_server()
        webhook = book.add(str(server.make_url("/hook")), (), Cursor(0, 0), 1)
        made["webhook"] = webhook
        bell = FinalityBell()
        settings = SenderSettings(retry_first_s=0.05, retry_cap_s=0.1, timeout_s=5)
        sender = WebhookSender(book, chain, "AE", bell, settings, lambda: int(time.time() * 1000))
        await sender.start()
        try:
            deadline = time.monotonic() + 20
            while book.progress(webhook.webhook_id).delivered < 2:
                assert time.monotonic() < deadline, (seen, book.progress(webhook.webhook_id))
                await asyncio.sleep(0.02)
        finally:
            await sender.stop()
            await server.close()

    asyncio.run(run())
    first, second = (e[0].hex() for e in events)
    assert [e for _, e in seen] == [first, first, second]
    assert seen[0][0] == seen[1][0] == message_id(made["webhook"].webhook_id, events[0][0])
