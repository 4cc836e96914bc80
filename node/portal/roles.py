"""What each portal role may do (SPEC 7): one table, read by the pages (what is offered) and by
the form handlers (what is accepted)."""

from __future__ import annotations

ISSUER = "issuer"
CONFIRMER = "confirmer"
AUDITOR = "auditor"
ADMIN = "admin"
ROLES = (ISSUER, CONFIRMER, AUDITOR, ADMIN)

#: The actions the portal knows.
VIEW = "view"  # the inbox, certificate pages, their PDF, search
ISSUE = "issue"
VOID = "void"
CONFIRM = "confirm"
REJECT = "reject"
STATISTICS = "statistics"
ACTIVITY = "activity"
ACCOUNTS = "accounts"

_ALLOWED: dict[str, frozenset[str]] = {
    ISSUER: frozenset({VIEW, ISSUE, VOID}),
    CONFIRMER: frozenset({VIEW, CONFIRM, REJECT}),
    AUDITOR: frozenset({VIEW, STATISTICS, ACTIVITY}),
    ADMIN: frozenset({VIEW, ISSUE, VOID, CONFIRM, REJECT, STATISTICS, ACTIVITY, ACCOUNTS}),
}


def may(role: str, action: str) -> bool:
    """Whether an officer of `role` may do `action` (an unknown role may do nothing)."""
    return action in _ALLOWED.get(role, frozenset())
