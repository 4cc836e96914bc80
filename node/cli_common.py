"""What every `kpledger` command shares: exit statuses, output, and turning errors into them."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from ledger.errors import LedgerError
from node.client import Answer, ConnectionFailed

#: Exit statuses, as SPEC section 2 fixes them.
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def emit(data: Any, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else human)


def fail(
    message: str, status: int = EXIT_REFUSED, *, as_json: bool = False, code: str = "error"
) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": code, "message": message}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(status)


def refused(answer: Answer, as_json: bool) -> NoReturn:
    """The node said no: 4xx is the ledger's answer (exit 1); anything else is trouble (exit 2)."""
    status = EXIT_REFUSED if 400 <= answer.status < 500 and answer.status != 429 else EXIT_USAGE
    if as_json:
        click.echo(
            json.dumps(answer.body if isinstance(answer.body, dict) else {"error": answer.error})
        )
    else:
        click.echo(f"refused ({answer.status} {answer.error}): {answer.message}", err=True)
    sys.exit(status)


class Group(click.Group):
    """Turns connection failures and ledger refusals into the exit statuses of SPEC section 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConnectionFailed as exc:
            fail(str(exc), EXIT_USAGE, code="connection_failed")
        except LedgerError as exc:
            fail(exc.message, EXIT_REFUSED, code=exc.code)
