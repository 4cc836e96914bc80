"""The notifications of one node, put together: the bell, the streams' chain, the webhooks.

Made by the HTTP application (node/http/app.py) over a LedgerNode: it hears of each final
block through the consensus driver's `on_commit`, starts the webhook sender with the application and
stops it before the store closes, and ends every stream when the application shuts down.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge

from node import clock
from node.notify.cursor import head_cursor, iso_time
from node.notify.outbox import Webhook, WebhookBook, check_types, check_url, message_id
from node.notify.stream import FinalityBell, StoreChain
from node.notify.webhooks import SenderSettings, WebhookSender
from node.service import LedgerNode


class Notifications:
    def __init__(self, node: LedgerNode) -> None:
        config = node.config
        self.node = node
        self.bell = FinalityBell()
        self.chain = StoreChain(node.store)
        self.book = WebhookBook(node.store.kv)
        self.heartbeat_s = config.stream_heartbeat_s
        self.write_timeout_s = config.request_timeout_s
        self.sender = WebhookSender(
            self.book,
            self.chain,
            node.participant,
            self.bell,
            SenderSettings(
                retry_first_s=config.webhook_retry_first_s,
                retry_cap_s=config.webhook_retry_cap_s,
                timeout_s=config.webhook_timeout_s,
            ),
            now_ms=clock.now_ms,
        )
        registry = node.metrics.registry
        self.streams_open = Gauge(
            "kpledger_streams_open", "Event streams open, by stream", ["stream"], registry=registry
        )
        self.deliveries = Counter(
            "kpledger_webhook_attempts_total",
            "Webhook delivery attempts, by outcome (delivered or failed)",
            ["outcome"],
            registry=registry,
        )
        self.sender.on_attempt = lambda ok: self.deliveries.labels(
            "delivered" if ok else "failed"
        ).inc()
        node.driver.on_commit(lambda execution, _: self.bell.ring(execution.header.height))

    def attach(self, app: web.Application) -> None:
        """Start and stop with the application: the sender before the store closes, the streams
        when it shuts down (so that a clean stop is not held up by them)."""

        async def startup(_: web.Application) -> None:
            await self.sender.start()

        async def shutdown(_: web.Application) -> None:
            self.bell.close()

        async def cleanup(_: web.Application) -> None:
            await self.sender.stop()

        app.on_startup.append(startup)
        app.on_shutdown.append(shutdown)
        app.on_cleanup.append(cleanup)

    # -- webhooks, as the admin API manages them --------------------------------------------
    def add_webhook(self, url: Any, types: Any) -> Webhook:
        """A webhook for the events final from now on; delivering at once, no restart."""
        webhook = self.book.add(
            check_url(url), check_types(types), head_cursor(self.chain), clock.now_ms()
        )
        self.sender.follow(webhook)
        return webhook

    def remove_webhook(self, webhook_id: str) -> None:
        self.book.remove(webhook_id)
        self.sender.forget(webhook_id)

    def webhook_json(self, webhook: Webhook) -> dict[str, Any]:
        """A webhook and its deliveries, for an admin (never its secret)."""
        progress = self.book.progress(webhook.webhook_id)
        pending: dict[str, Any] | None = None
        if progress.attempts and progress.pending_cursor is not None and progress.pending_event:
            pending = {
                "event_id": progress.pending_event.hex(),
                "webhook_id": message_id(webhook.webhook_id, progress.pending_event),
                "cursor": str(progress.pending_cursor),
                "status": "retrying",
                "attempts": progress.attempts,
                "failing_since": _time(progress.failing_since_ms),
                "next_attempt": _time(progress.next_attempt_ms),
                "last_response_status": progress.last_status,
                "last_error": progress.last_error,
            }
        return {
            "id": webhook.webhook_id,
            "url": webhook.url,
            "events": list(webhook.types),
            "created": iso_time(webhook.created_ms),
            "cursor": str(progress.cursor),
            "delivered": progress.delivered,
            "pending": pending,
            "deliveries": [
                {
                    "event_id": d.event_id.hex(),
                    "webhook_id": d.message_id,
                    "cursor": str(d.cursor),
                    "status": "delivered",
                    "attempts": d.attempts,
                    "delivered": iso_time(d.delivered_ms),
                    "response_status": d.status,
                }
                for d in self.book.deliveries(webhook.webhook_id)
            ],
        }


def _time(time_ms: int | None) -> str | None:
    return None if time_ms is None else iso_time(time_ms)
