"""Managing a running node from the command line (SPEC 6, "Managing a running node"): the node
and the admin token that `--config node.toml` names (or `--node URL --token TOKEN`), and its
admin API called with them. `token`, `user`, `webhook` and `snapshot create` use it: the
change is made by the node itself, so no restart and no second process opening its store."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from node.cli.common import EXIT_USAGE, TOKEN_ENV, fail, refused
from node.client import Answer, ConnectionFailed, NodeClient
from node.config import ConfigError, NodeConfig
from node.tls import TlsError, genesis_uses_tls

F = TypeVar("F", bound=Callable[..., Any])

#: Addresses a node may listen on that a client cannot connect to as they are.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True)
class ManagedNode:
    """A running node and the admin token to manage it with."""

    client: NodeClient
    #: Where the node and the token came from, for messages ("--config net/BE/node.toml").
    source: str

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        """One admin request; the node's refusal is the command's exit (SPEC 2's statuses:
        a token refused or of too small a scope is 2, the ledger's no is 1)."""
        try:
            answer = self.client.request(method, path, body)
        except ConnectionFailed as exc:
            raise ConnectionFailed(
                f"{exc}. Managing commands act on the running node: is it running "
                f"(kpledger node run), and is {self.source} its address?"
            ) from exc
        if not answer.ok:
            refused(answer)
        return answer


def node_url_of(config: NodeConfig) -> str:
    """The URL a client on the node's own machine reaches it at: its host and port, https://
    when its network speaks TLS."""
    try:
        scheme = "https" if genesis_uses_tls(config.genesis()) else "http"
    except TlsError as exc:
        raise ConfigError(str(exc)) from exc
    host = _ANY_ADDRESS.get(config.host, config.host)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{config.port}"


def managed_node(config_path: Path | None, node_url: str | None, token: str | None) -> ManagedNode:
    """--config node.toml (the node's address and its api_token, an admin token), or --node URL
    with --token (or KPLEDGER_TOKEN); --node and --token override what the file says."""
    ctx = click.get_current_context()
    token_source = ctx.get_parameter_source("token")
    if token is not None and not token.strip():
        fail("the token is empty", EXIT_USAGE, code="usage")
    if config_path is not None:
        try:
            config = NodeConfig.load(config_path)
            url = node_url or node_url_of(config)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE, code="config")
        # The file's admin token, unless one is typed on the command line for this call.
        if token is None or token_source is not ParameterSource.COMMANDLINE:
            token = config.api_token
        return ManagedNode(NodeClient(url, token.strip()), f"--config {config_path}")
    if node_url is None or not token:
        fail(
            f"name the node to manage: --config node.toml (its address and admin token), or "
            f"--node URL with --token TOKEN (or {TOKEN_ENV})",
            EXIT_USAGE,
            code="usage",
        )
    return ManagedNode(NodeClient(node_url, token.strip()), f"--node {node_url}")


def manage_options(func: F) -> F:
    """--config, --node, --token (and --json) for a managing command; it receives `managed`, a
    ManagedNode, and `as_json`."""

    @functools.wraps(func)
    def command(
        *args: Any,
        config_path: Path | None,
        node_url: str | None,
        token: str | None,
        genesis_path: Path | None,
        **kwargs: Any,
    ) -> Any:
        return func(*args, managed=managed_node(config_path, node_url, token), **kwargs)

    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="The running node's node.toml: its address and admin token (api_token).",
        ),
        click.option(
            "--node",
            "node_url",
            default=None,
            help="The node's URL (with --token), instead of or over --config's address.",
        ),
        click.option(
            "--token",
            envvar=TOKEN_ENV,
            show_envvar=True,
            default=None,
            help=f"An admin token (with --node). Rather --config or {TOKEN_ENV}: a command line "
            "shows in `ps`.",
        ),
        click.option(
            "--genesis",
            "genesis_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="The network's genesis.json, whose node keys the node's certificate is checked "
            "against (default: the one --config names).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    ]
    wrapped: Any = command
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped  # type: ignore[no-any-return]
