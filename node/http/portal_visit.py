"""What every portal page shares: the visit (session, officer, language), templates and
rendering, cookies and security headers, and `page`, the decorator that checks the role and the
CSRF token before a handler runs (node/http/portal.py has the pages)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from ledger.errors import (
    CsrfRefused,
    LedgerError,
    PortalForbidden,
)
from ledger.keys import Signer
from node.http.appkeys import ACCOUNTS, ACTIVITY, NODE, SESSIONS
from node.portal import roles
from node.portal.accounts import Account
from node.portal.i18n import LANGUAGES, Translate, choose, translator
from node.portal.sessions import Session, same_secret
from node.service import LedgerNode

log = logging.getLogger("kpledger.portal")

WEB = Path(__file__).resolve().parent.parent / "web" / "portal"
#: The session cookie and the sign-in form's own CSRF cookie. `__Host-` makes the browser
#: insist on Secure, Path=/ and no Domain (RFC 6265bis), so no sibling host can set them.
SESSION_COOKIE = "__Host-kp_session"
SIGNIN_COOKIE = "__Host-kp_signin"
LANG_COOKIE = "__Host-kp_lang"
#: No script at all, nothing from another host, no framing, forms only to this node.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HS_LABELS = {
    "7102.10": "unsorted",
    "7102.21": "industrial, unworked",
    "7102.31": "non-industrial, unworked",
}

AUTHORITY: web.AppKey[Signer] = web.AppKey("portal_authority", Signer)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("portal_templates", jinja2.Environment)


@dataclass
class Visit:
    """One request to the portal: who (if signed in), in which language, and its form."""

    request: web.Request
    node: LedgerNode
    language: str
    t: Translate
    session: Session | None = None
    officer: Account | None = None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.officer.name if self.officer is not None else ""

    @property
    def role(self) -> str:
        return self.officer.role if self.officer is not None else ""

    def may(self, action: str) -> bool:
        return self.officer is not None and roles.may(self.officer.role, action)


PageHandler = Callable[[Visit], Awaitable[web.StreamResponse]]


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(WEB / "templates")),
        autoescape=True,  # everything an officer typed is escaped wherever it is shown again
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render(visit: Visit, template: str, status: int = 200, **values: Any) -> web.Response:
    t = visit.t
    nav = [
        ("/portal/inbox", t("Inbox"), roles.VIEW),
        ("/portal/issue", t("Issue certificate"), roles.ISSUE),
        ("/portal/search", t("Search"), roles.VIEW),
        ("/portal/statistics", t("Statistics"), roles.STATISTICS),
        ("/portal/activity", t("Activity log"), roles.ACTIVITY),
    ]
    node = visit.node
    html = (
        visit.request.app[TEMPLATES]
        .get_template(template)
        .render(
            t=t,
            lang=visit.language,
            languages=LANGUAGES,
            officer=visit.officer,
            csrf=visit.session.csrf if visit.session is not None else "",
            nav=[(href, label) for href, label, action in nav if visit.may(action)],
            path=visit.request.path,
            participant=node.participant,
            participant_name=_participant_name(node, node.participant),
            **values,
        )
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def _participant_name(node: LedgerNode, code: str) -> str:
    found = node.registry.participants.get(code)
    return found.name if found is not None else code


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _cookie(
    response: web.StreamResponse, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
        max_age=max_age,
    )


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    return response


async def _visit(request: web.Request) -> Visit:
    language = choose(request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"))
    visit = Visit(request, request.app[NODE], language, translator(language))
    cookie = request.cookies.get(SESSION_COOKIE)
    session = request.app[SESSIONS].get(cookie)
    if session is not None:
        officer = request.app[ACCOUNTS].get(session.name)
        if officer is None or officer.disabled_ms is not None:
            request.app[SESSIONS].end(cookie)
        else:
            visit.session, visit.officer = session, officer
    return visit


def page(action: str | None, *, post: bool = False) -> Callable[[PageHandler], Any]:
    """A portal route: signed in with a role that may do `action` (else the sign-in page, or
    403: what a role may not do is not accepted), and for a form, its CSRF token."""

    def wrap(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            visit = await _visit(request)
            try:
                if action is not None:
                    if visit.officer is None:
                        ended = SESSION_COOKIE in request.cookies
                        return _secure(see_other("/portal/signin" + ("?ended=1" if ended else "")))
                    if post:
                        visit.form = await _form(request)
                    if not visit.may(action):
                        raise PortalForbidden(f"the role {visit.role} may not {action}")
                    if post and (
                        visit.session is None
                        or not same_secret(visit.form.get("csrf"), visit.session.csrf)
                    ):
                        raise CsrfRefused("the form's CSRF token is missing or not this session's")
                response = await handler(visit)
            except PortalForbidden as exc:
                _note_refusal(visit, action or "", exc)
                response = render(
                    visit,
                    "error.html",
                    403,
                    title=visit.t("Not allowed"),
                    message=visit.t(
                        "Your role ({role}) does not allow this.", role=visit.t(visit.role)
                    ),
                )
            except CsrfRefused as exc:
                _note_refusal(visit, action or "", exc)
                response = render(
                    visit,
                    "error.html",
                    403,
                    title=visit.t("Not allowed"),
                    message=visit.t(
                        "This form has expired or did not come from this portal. Open the page "
                        "again and retry."
                    ),
                )
            return _secure(response)

        return run

    return wrap


def _note_refusal(visit: Visit, action: str, exc: LedgerError) -> None:
    if visit.officer is not None:
        visit.request.app[ACTIVITY].record(
            visit.name,
            action,
            exc.code,
            certificate=visit.request.match_info.get("number", ""),
            detail=f"{visit.request.method} {visit.request.path}",
        )


async def _form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {key: value for key, value in data.items() if isinstance(value, str)}


# -- sign-in ------------------------------------------------------------------------------------
