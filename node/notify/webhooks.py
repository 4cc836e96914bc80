"""The webhook sender: POSTs each wanted final event to each webhook, signed, until it is taken.

Signed as the Standard Webhooks specification says (`webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; the tests verify with the
`standardwebhooks` package). One delivery per webhook is under way at a time, in chain order:
the next begins once the receiver answered 2xx. A failure is retried after retry_delay_s
(node/notify/outbox.py), with the same `webhook-id` and a new timestamp; after a restart the
delivery under way is tried again at once. What survives a crash is the outbox's cursor.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from ledger.errors import LedgerError, WebhookNotFound
from node.notify.cursor import FinalChain, StreamEvent, next_page
from node.notify.outbox import (
    RETRY_CAP_S,
    RETRY_FIRST_S,
    Webhook,
    WebhookBook,
    message_id,
    retry_delay_s,
)
from node.notify.stream import FinalityBell

log = logging.getLogger("kpledger.webhooks")

USER_AGENT = "kpledger-webhooks/1"


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value (Standard Webhooks, symmetric v1)."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery_body(event: StreamEvent) -> bytes:
    return json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class SenderSettings:
    retry_first_s: float = RETRY_FIRST_S
    retry_cap_s: float = RETRY_CAP_S
    #: One attempt: connect, send and the receiver's answer, within this.
    timeout_s: float = 10.0


class WebhookSender:
    """One task per webhook, each woken by the bell at new final blocks."""

    def __init__(
        self,
        book: WebhookBook,
        chain: FinalChain,
        participant: str,
        bell: FinalityBell,
        settings: SenderSettings,
        now_ms: Callable[[], int],
    ) -> None:
        self.book = book
        self.chain = chain
        self.participant = participant
        self.bell = bell
        self.settings = settings
        self.now_ms = now_ms
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False
        #: Told of each attempt's outcome (True: delivered), for the metrics.
        self.on_attempt: Callable[[bool], None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            headers={"User-Agent": USER_AGENT},
        )
        for webhook in self.book.webhooks():
            self.follow(webhook)

    def follow(self, webhook: Webhook) -> None:
        """Begin delivering to a webhook (at start, and when one is added)."""
        if self._stopping or self._session is None or webhook.webhook_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._deliver_all(webhook))
        self._tasks[webhook.webhook_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(webhook.webhook_id, None))

    def forget(self, webhook_id: str) -> None:
        """Stop delivering to a removed webhook (an attempt under way is abandoned)."""
        task = self._tasks.get(webhook_id)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _deliver_all(self, webhook: Webhook) -> None:
        troubles = 0
        while True:
            try:
                await self._deliver_next(webhook)
                troubles = 0
            except WebhookNotFound:
                return  # removed meanwhile
            except LedgerError as exc:
                # The store failed us (a full disk, a damaged table: the node's health reports
                # it). Nothing moved, so nothing is lost: try again later, backing off.
                troubles += 1
                log.error(
                    "webhook delivery held up: %s",
                    exc.message,
                    extra={"webhook": webhook.webhook_id, "error": exc.code},
                )
                await asyncio.sleep(
                    retry_delay_s(troubles, self.settings.retry_first_s, self.settings.retry_cap_s)
                )

    async def _deliver_next(self, webhook: Webhook) -> None:
        ticket = self.bell.ticket()
        progress = self.book.progress(webhook.webhook_id)
        page = next_page(
            self.chain, webhook.interest_of(self.participant), progress.cursor, max_events=1
        )
        if not page.events:
            if page.cursor != progress.cursor:
                self.book.skipped_to(webhook.webhook_id, page.cursor)
            if page.caught_up:
                await ticket.wait()
            return
        event = page.events[0]
        status, error = await self._post(webhook, event)
        now = self.now_ms()
        ok = status is not None and 200 <= status < 300
        if self.on_attempt is not None:
            self.on_attempt(ok)
        if ok and status is not None:
            self.book.delivered(
                webhook.webhook_id, event.cursor, event.event_id, now_ms=now, status=status
            )
            return
        failed = self.book.failed(
            webhook.webhook_id,
            event.cursor,
            event.event_id,
            now_ms=now,
            status=status,
            error=error,
            first_s=self.settings.retry_first_s,
            cap_s=self.settings.retry_cap_s,
        )
        log.warning(
            "webhook delivery failed",
            extra={
                "webhook": webhook.webhook_id,
                "event_id": event.event_id.hex(),
                "attempts": failed.attempts,
                "status": status,
                "error": error[:200],
            },
        )
        await asyncio.sleep(
            retry_delay_s(failed.attempts, self.settings.retry_first_s, self.settings.retry_cap_s)
        )

    async def _post(self, webhook: Webhook, event: StreamEvent) -> tuple[int | None, str]:
        """(HTTP status or None, what went wrong) of one attempt."""
        assert self._session is not None
        body = delivery_body(event)
        msg_id = message_id(webhook.webhook_id, event.event_id)
        timestamp = self.now_ms() // 1000
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(webhook.secret, msg_id, timestamp, body),
        }
        try:
            async with self._session.post(
                webhook.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                await response.content.readany()  # a little of the answer, never all of it
        except TimeoutError:
            return None, f"no answer within {self.settings.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= status < 300:
            return status, ""
        return status, f"the receiver answered {status}"
