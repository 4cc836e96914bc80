"""`kpledger user add|list|disable|reset`: the running node's portal officer accounts (SPEC 7),
through its admin API."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from node.cli.common import EXIT_USAGE, Command, Group, emit, fail
from node.cli.manage import ManagedNode, manage_options
from node.client import segment
from node.portal.accounts import MAX_PASSWORD, MIN_PASSWORD
from node.portal.roles import ROLES


@click.group(cls=Group)
def user() -> None:
    """Manage the running node's portal officer accounts: roles issuer, confirmer, auditor, admin.

    Each command acts on the running node that --config node.toml describes, with the admin
    token the file holds (or --node URL --token TOKEN); the change holds at once, no restart.
    Passwords are hashed by the node with Argon2id; they are never shown again.
    """


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _password(from_stdin: bool) -> str:
    """The password from standard input (its first line) or typed twice at a prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt(
            f"Password ({MIN_PASSWORD} to {MAX_PASSWORD} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    else:
        fail(
            "give the password with --password-stdin (or run this at a terminal to be asked)",
            EXIT_USAGE,
            code="usage",
        )
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        fail(
            f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            EXIT_USAGE,
            code="weak_password",
        )
    return password


_PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (else you are asked twice).",
)


@user.command("add", cls=Command)
@click.option("--name", required=True, help="The officer's sign-in name (a-z, 0-9, . _ -).")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the officer may do.")
@_PASSWORD_STDIN
@manage_options
def user_add(
    name: str, role: str, password_stdin: bool, managed: ManagedNode, as_json: bool
) -> None:
    """Make a portal account for an officer of this participant."""
    password = _password(password_stdin)
    made = managed.call(
        "POST", "/v1/admin/users", {"name": name, "role": role, "password": password}
    ).body
    emit(made, as_json, f"officer {made['name']!r} added with role {made['role']}")


@user.command("list", cls=Command)
@manage_options
def user_list(managed: ManagedNode, as_json: bool) -> None:
    """The node's officers: name, role, state (active, locked, disabled), dates."""
    users = managed.call("GET", "/v1/admin/users").body["users"]
    lines = [f"{'name':<24} {'role':<10} {'state':<9} {'created':<21} password set"]
    lines += [
        f"{u['name']:<24} {u['role']:<10} {u['state']:<9} {_when(u['created_ms']):<21} "
        f"{_when(u['password_set_ms'])}"
        for u in users
    ]
    emit({"users": users}, as_json, "\n".join(lines) if users else "no officer accounts")


@user.command("disable", cls=Command)
@click.argument("name")
@manage_options
def user_disable(name: str, managed: ManagedNode, as_json: bool) -> None:
    """Disable officer NAME: refused at sign-in, their sessions end at once."""
    record = managed.call("POST", f"/v1/admin/users/{segment(name)}/disable").body
    emit(record, as_json, f"officer {record['name']!r} disabled at {_when(record['disabled_ms'])}")


@user.command("reset", cls=Command)
@click.argument("name")
@_PASSWORD_STDIN
@manage_options
def user_reset(name: str, password_stdin: bool, managed: ManagedNode, as_json: bool) -> None:
    """Give officer NAME a new password; the account is enabled and unlocked again."""
    password = _password(password_stdin)
    record = managed.call(
        "POST", f"/v1/admin/users/{segment(name)}/reset", {"password": password}
    ).body
    emit(record, as_json, f"officer {record['name']!r}: new password set; account active")
