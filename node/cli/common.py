"""What every `kpledger` command shares: exit statuses, output, the token, and errors turned into them."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click.core import ParameterSource

from ledger.certificate import normalise_number
from ledger.errors import InvalidCertificateNumber, LedgerError
from node import tls
from node.client import Answer, Answered, ConnectionFailed, Trust
from node.config import ConfigError, read_api_token
from node.custody import PASSPHRASE_ENV, CustodyError, Passphrase, load_signer

#: Exit statuses, as SPEC section 2 fixes them: 0 success, 1 the ledger said no (refused,
#: invalid, not found), 2 usage, connection or authorisation trouble.
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

#: Where a token comes from when --token is not given (SPEC 2), so it need not be on a command
#: line (which `ps` and shell history show).
TOKEN_ENV = "KPLEDGER_TOKEN"

#: Error codes of the node that mean "your token", not "the ledger's answer": exit 2.
#: ("unauthorized" is what nodes before token_required and token_refused answered.)
AUTH_ERRORS = frozenset(
    {
        "token_required",
        "token_refused",
        "token_revoked",
        "token_expired",
        "token_scope",
        "unauthorized",
    }
)

if TYPE_CHECKING:
    from ledger.keys import Signer

F = TypeVar("F", bound=Callable[..., Any])


def json_wanted() -> bool:
    """Whether the command running asked for --json (here or on an enclosing group)."""
    return json_wanted_in(click.get_current_context(silent=True))


def json_wanted_in(ctx: click.Context | None) -> bool:
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return False


def emit(data: Any, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else human)


def fail(
    message: str,
    status: int = EXIT_REFUSED,
    *,
    as_json: bool | None = None,
    code: str = "error",
    **extra: Any,
) -> NoReturn:
    """Say why and exit: with --json, `{"error", "message"}` on stdout; else a line on stderr."""
    if as_json is None:
        as_json = json_wanted()
    if as_json:
        click.echo(json.dumps({"error": code, "message": message, **extra}, ensure_ascii=False))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(status)


def answer_status(answer: Answer) -> int:
    """The exit status of a node's refusal: its 4xx is the ledger saying no, except for the token."""
    if answer.error in AUTH_ERRORS:
        return EXIT_USAGE
    if 400 <= answer.status < 500 and answer.status != 429:
        return EXIT_REFUSED
    return EXIT_USAGE


def refused(answer: Answer, as_json: bool | None = None) -> NoReturn:
    """The node said no (or could not answer): its reason, and the exit status SPEC 2 gives it."""
    if as_json is None:
        as_json = json_wanted()
    status = answer_status(answer)
    if as_json:
        body = answer.body if isinstance(answer.body, dict) else {}
        out = {k: v for k, v in body.items() if k != "proof"}
        out.update(error=answer.error, message=answer.message, http_status=answer.status)
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        click.echo(f"refused ({answer.status} {answer.error}): {answer.message}", err=True)
        if answer.error in AUTH_ERRORS:
            click.echo(
                f"  the token comes from --token, --config node.toml (its api_token) or "
                f"{TOKEN_ENV}",
                err=True,
            )
    sys.exit(status)


def certificate_number(typed: str) -> str:
    """A number typed by a person, normalised; a clear exit 1 when it is still not a number."""
    try:
        return normalise_number(typed)
    except InvalidCertificateNumber as exc:
        fail(exc.message, EXIT_REFUSED, code=exc.code)


# -- keys ----------------------------------------------------------------------------------------
_PASSPHRASE_FILE = "kpledger.passphrase_file"


def _remember_passphrase_file(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[_PASSPHRASE_FILE] = value


#: --passphrase-file, on every command that opens a key; what it names reaches open_signer
#: through the click context, so that no command has to pass it along.
passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    expose_value=False,
    callback=_remember_passphrase_file,
    help=f"A file whose first line is the passphrase of encrypted keys (else {PASSPHRASE_ENV}, "
    "else a prompt).",
)


def passphrase_from_context() -> Passphrase:
    """The passphrase source of the command running: --passphrase-file, KPLEDGER_PASSPHRASE or a
    prompt."""
    ctx = click.get_current_context(silent=True)
    file = ctx.meta.get(_PASSPHRASE_FILE) if ctx is not None else None
    return Passphrase(file)


def open_signer(ref: str | Path) -> Signer:
    """The signing key --key names (a PEM file, encrypted or not, or a pkcs11: URI); exit 2 with
    the reason when it cannot be opened."""
    try:
        return load_signer(str(ref), passphrase_from_context())
    except CustodyError as exc:
        fail(str(exc), EXIT_USAGE, code="key_unavailable")


# -- the token -----------------------------------------------------------------------------------
def token_from_config(path: Path) -> str:
    """The api_token of a node.toml, for commands given --config instead of --token."""
    try:
        return read_api_token(path)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE, code="config")


def resolve_token(token: str | None, config_path: Path | None, *, required: bool) -> str | None:
    """--token, else --config's api_token, else KPLEDGER_TOKEN (click reads it into `token`)."""
    ctx = click.get_current_context()
    source = ctx.get_parameter_source("token")
    if config_path is not None:
        if token and source is ParameterSource.COMMANDLINE:
            fail("give --token or --config, not both", EXIT_USAGE, code="usage")
        token = token_from_config(config_path)
    if token is not None and not token.strip():
        fail(
            f"the token is empty (from {'--token' if source is ParameterSource.COMMANDLINE else TOKEN_ENV})",
            EXIT_USAGE,
            code="usage",
        )
    if token and not all(33 <= ord(ch) < 127 for ch in token.strip()):
        # An HTTP header carries printable ASCII only; the node could not even parse the request.
        fail(
            "the token holds a space, a control character or a non-ASCII character: it is not "
            "a node's api_token (check what was pasted)",
            EXIT_USAGE,
            code="usage",
        )
    if required and not token:
        fail(
            f"this command needs the node operator's token: --token T, --config node.toml, or "
            f"{TOKEN_ENV}=T in the environment",
            EXIT_USAGE,
            code="usage",
        )
    return token.strip() if token else None


def token_options(help_text: str) -> list[Callable[[F], F]]:
    """--token (or KPLEDGER_TOKEN) and --config node.toml, as every command that takes one has."""
    return [
        click.option(
            "--token",
            envvar=TOKEN_ENV,
            show_envvar=True,
            default=None,
            help=f"{help_text} Rather --config or {TOKEN_ENV}: a command line shows in `ps`.",
        ),
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="The node's node.toml: its api_token is the token.",
        ),
    ]


def with_token(help_text: str, *, required: bool) -> Callable[[F], F]:
    """Add the token options to a command; it receives one `token` (None when optional)."""

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, token: str | None, config_path: Path | None, **kwargs: Any) -> Any:
            return func(*args, token=resolve_token(token, config_path, required=required), **kwargs)

        wrapped: Any = command
        for option in reversed(token_options(help_text)):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorator


# -- errors into exit statuses -------------------------------------------------------------------
def _json_in(args: Sequence[str]) -> bool:
    return "--json" in args[: args.index("--")] if "--" in args else "--json" in args


#: What reading a node's answer raises when the answer is not of the form expected.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def _exit_for(exc: Exception, as_json: bool) -> NoReturn:
    """The exit of SPEC 2 for an exception out of a command, or the exception again."""
    if isinstance(exc, ConnectionFailed):
        fail(str(exc), EXIT_USAGE, as_json=as_json, code="connection_failed")
    if isinstance(exc, LedgerError):
        fail(exc.message, EXIT_REFUSED, as_json=as_json, code=exc.code)
    if isinstance(exc, _SHAPE_ERRORS) and Answered.urls:
        # A node answered, but not in the form a kpledger node of this version answers.
        fail(
            f"the node at {Answered.urls[-1]} answered in a form kpledger does not expect "
            f"({type(exc).__name__}: {exc}); is it a kpledger node of this version?",
            EXIT_USAGE,
            as_json=as_json,
            code="unexpected_answer",
        )
    raise exc  # not from a node's answer: a defect, to be seen as one


def _given(ctx: click.Context | None, name: str) -> Any:
    """A parameter's value on this command, else on an enclosing group (or its obj)."""
    while ctx is not None:
        if ctx.params.get(name) is not None:
            return ctx.params[name]
        if isinstance(ctx.obj, dict) and ctx.obj.get(name) is not None:
            return ctx.obj[name]
        ctx = ctx.parent
    return None


def use_trust(ctx: click.Context, cacert: Path | None) -> None:
    """How this command verifies the nodes it talks to (SPEC 6 "Clients verify the node"): from
    its --cacert, --genesis, --config or --key (the genesis beside it), or the environment."""
    key = _given(ctx, "key_path")
    try:
        trust = tls.client_trust(
            genesis=_given(ctx, "genesis_path"),
            config=_given(ctx, "config_path"),
            key=Path(key)
            if isinstance(key, str | Path) and not str(key).startswith("pkcs11:")
            else None,
            cacert=cacert,
        )
    except tls.TlsError as exc:
        fail(str(exc), EXIT_USAGE, as_json=json_wanted_in(ctx), code="tls")
    Trust.use(trust)


class Command(click.Command):
    """Turns connection failures, refusals and malformed answers into SPEC 2's exit statuses;
    a command that talks to a node (`--node`) also takes --cacert and verifies the node."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.callback is None or not any(p.name == "node_url" for p in self.params):
            return
        self.params.append(
            click.Option(
                ["--cacert"],
                type=click.Path(path_type=Path, dir_okay=False),
                envvar=tls.CACERT_ENV,
                show_envvar=True,
                help="Verify the node's certificate against these CAs (a node with a "
                "CA-issued tls_cert) instead of the node keys of the genesis (--genesis, "
                "--config's, the one beside --key, or KPLEDGER_GENESIS).",
            )
        )
        callback = self.callback

        # Wrapped, not done in invoke(): a group may ctx.invoke() the command directly.
        @functools.wraps(callback)
        def verifying(*args: Any, cacert: Path | None = None, **kwargs: Any) -> Any:
            use_trust(click.get_current_context(), cacert)
            return callback(*args, **kwargs)

        self.callback = verifying

    def invoke(self, ctx: click.Context) -> Any:
        Answered.reset()
        try:
            return super().invoke(ctx)
        except (ConnectionFailed, LedgerError, *_SHAPE_ERRORS) as exc:
            _exit_for(exc, json_wanted_in(ctx))


class Group(click.Group):
    """A group whose commands are `Command`s; usage errors too are JSON under --json."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        args = [*ctx._protected_args, *ctx.args]
        Answered.reset()
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if not (ctx.params.get("as_json") or _json_in(args)):
                raise
            fail(exc.format_message(), EXIT_USAGE, as_json=True, code="usage")
        except (ConnectionFailed, LedgerError, *_SHAPE_ERRORS) as exc:
            _exit_for(exc, json_wanted_in(ctx) or _json_in(args))
