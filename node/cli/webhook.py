"""`kpledger webhook add|list|remove`: a running node's webhooks, through its admin API."""

from __future__ import annotations

import click

from node.cli.common import Command, Group, emit
from node.cli.manage import ManagedNode, manage_options
from node.client import segment


@click.group("webhook", cls=Group)
def webhook() -> None:
    """Webhooks: a signed POST of each final event to a national system's URL (SPEC 9).

    Acts on the running node (no restart). docs/api/notifications.md shows a receiver.
    """


@webhook.command("add", cls=Command)
@click.option(
    "--url", required=True, help="Where to POST: https://..., or http:// to this machine."
)
@click.option(
    "--events",
    default=None,
    help="Only these event types, comma-separated (default: every type the stream carries).",
)
@manage_options
def webhook_add(url: str, events: str | None, managed: ManagedNode, as_json: bool) -> None:
    """Add a webhook; prints its signing secret (whsec_...) once: keep it for the receiver."""
    types = [t.strip() for t in events.split(",") if t.strip()] if events else []
    body = managed.call("POST", "/v1/webhooks", {"url": url, "events": types}).body
    human = "\n".join(
        [
            f"webhook {body['id']} added: {body['url']}",
            f"  events: {', '.join(body['events']) or 'every event the stream carries'}",
            f"  from:   after {body['cursor']}",
            f"  secret: {body['secret']}",
            "  (shown this once: give it to the receiver, which verifies each delivery with it)",
        ]
    )
    emit(body, as_json, human)


@webhook.command("list", cls=Command)
@manage_options
def webhook_list(managed: ManagedNode, as_json: bool) -> None:
    """The webhooks, with the delivery under way and the latest deliveries."""
    answer = managed.call("GET", "/v1/webhooks")
    lines = []
    for w in answer.body["webhooks"]:
        lines.append(f"{w['id']}  {w['url']}")
        lines.append(f"  events: {', '.join(w['events']) or 'all'}; delivered: {w['delivered']}")
        lines.append(f"  cursor: {w['cursor']}")
        pending = w.get("pending")
        if pending:
            lines.append(
                f"  retrying {pending['event_id'][:16]}... ({pending['attempts']} attempts since "
                f"{pending['failing_since']}; next {pending['next_attempt']}): "
                f"{pending['last_error']}"
            )
        for d in w["deliveries"][:5]:
            lines.append(
                f"  delivered {d['event_id'][:16]}... at {d['cursor']} on {d['delivered']} "
                f"({d['attempts']} attempt{'s' if d['attempts'] != 1 else ''}, "
                f"{d['response_status']})"
            )
    emit(answer.body, as_json, "\n".join(lines) or "no webhooks")


@webhook.command("remove", cls=Command)
@click.argument("webhook_id")
@manage_options
def webhook_remove(webhook_id: str, managed: ManagedNode, as_json: bool) -> None:
    """Remove a webhook: deliveries to it stop at once."""
    answer = managed.call("DELETE", f"/v1/webhooks/{segment(webhook_id.strip())}")
    emit(answer.body, as_json, f"webhook {webhook_id.strip()} removed")
