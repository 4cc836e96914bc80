"""`kpledger token add|list|revoke`: the running node's API tokens, through its admin API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from node.cli.common import Command, Group, emit
from node.cli.manage import ManagedNode, manage_options
from node.client import segment
from node.tokens import MAX_EXPIRES_DAYS, SCOPES


@click.group(cls=Group)
def token() -> None:
    """Manage the running node's API tokens: scoped (sync, read, admin), revocable, expiring.

    Each command acts on the running node that --config node.toml describes, with the admin
    token the file holds (or --node URL --token TOKEN); the change holds at once, no restart.
    """


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@token.command("add", cls=Command)
@click.option("--name", required=True, help="What logs and `token list` call it (a-z, 0-9, . _ -).")
@click.option(
    "--scope",
    required=True,
    type=click.Choice(SCOPES),
    help="sync (an observer's: the block pages only), read or admin.",
)
@click.option(
    "--expires-days",
    type=click.IntRange(1, MAX_EXPIRES_DAYS),
    default=None,
    help="Refused this many days from now (default: until revoked).",
)
@manage_options
def token_add(
    name: str, scope: str, expires_days: int | None, managed: ManagedNode, as_json: bool
) -> None:
    """Make a token and print it, once: the node keeps only its hash."""
    body: dict[str, Any] = {"name": name, "scope": scope}
    if expires_days is not None:
        body["expires_days"] = expires_days
    made = managed.call("POST", "/v1/admin/tokens", body).body
    human = (
        f"{made['token']}\n"
        f"token {made['name']!r} (scope {made['scope']}, expires {_when(made['expires_ms'])}): "
        f"shown this once; the node keeps only its hash"
    )
    emit(made, as_json, human)


@token.command("list", cls=Command)
@manage_options
def token_list(managed: ManagedNode, as_json: bool) -> None:
    """The node's tokens: name, scope, state (active, revoked, expired), dates. Never a token."""
    tokens = managed.call("GET", "/v1/admin/tokens").body["tokens"]
    lines = [f"{'name':<24} {'scope':<6} {'state':<8} {'created':<21} expires"]
    lines += [
        f"{t['name']:<24} {t['scope']:<6} {t['state']:<8} {_when(t['created_ms']):<21} "
        f"{_when(t['expires_ms'])}"
        for t in tokens
    ]
    emit(
        {"tokens": tokens},
        as_json,
        "\n".join(lines) if tokens else "no tokens (node.toml's api_token is the admin token)",
    )


@token.command("revoke", cls=Command)
@click.argument("name")
@manage_options
def token_revoke(name: str, managed: ManagedNode, as_json: bool) -> None:
    """Revoke token NAME: refused (401) from the node's next request on."""
    record = managed.call("DELETE", f"/v1/admin/tokens/{segment(name)}").body
    emit(record, as_json, f"token {record['name']!r} revoked at {_when(record['revoked_ms'])}")
