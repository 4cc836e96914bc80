"""The authority portal's pages (SPEC 7, docs/portal.md): sign-in, the inbox, the issue form,
certificate pages and their actions, search, statistics and the activity log, served at
/portal/ when node.toml has `portal = true`. Server-rendered (Jinja2, autoescaped), no script
at all, a strict Content-Security-Policy, every form that changes something CSRF-protected."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from ledger.certificate import HS_CODES, normalise_number
from ledger.errors import (
    CertificateNotFound,
    CsrfRefused,
    InvalidCertificateNumber,
    LedgerError,
    MalformedInput,
)
from ledger.events import VOID_REASONS
from ledger.genesis import PARAMETER_BOUNDS
from ledger.records import ISSUED, STATUSES
from node.http.appkeys import ACCOUNTS, ACTIVITY, NODE, SESSIONS
from node.http.participant import full_certificate_json
from node.http.portal_visit import (
    AUTHORITY,
    HS_LABELS,
    LANG_COOKIE,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    TEMPLATES,
    WEB,
    Visit,
    _cookie,
    _form,
    _secure,
    page,
    render,
    see_other,
    templates,
)
from node.pdf import NotAParty, render_certificate_pdf, verification_url
from node.portal import roles
from node.portal.actions import (
    ISSUE_FIELDS,
    FieldRefused,
    Outcome,
    admit_issue,
    decision_event,
    field_of,
    issue_event,
    wait_final,
)
from node.portal.i18n import LANGUAGES, Translate
from node.portal.sessions import new_secret, same_secret
from node.reports import pair_stats
from node.service import LedgerNode
from node.views import certificate_facts_json

log = logging.getLogger("kpledger.portal")


async def root(request: web.Request) -> web.StreamResponse:
    return _secure(see_other("/portal/"))


@page(None)
async def home(visit: Visit) -> web.StreamResponse:
    return see_other("/portal/inbox" if visit.officer is not None else "/portal/signin")


def _signin_form(visit: Visit, status: int = 200, error: str = "", name: str = "") -> web.Response:
    token = new_secret()
    notice = ""
    if visit.request.query.get("ended"):
        notice = visit.t("Your session has ended. Please sign in again.")
    elif visit.request.query.get("out"):
        notice = visit.t("You have signed out.")
    response = render(
        visit, "signin.html", status, signin_csrf=token, error=error, notice=notice, name=name
    )
    _cookie(response, SIGNIN_COOKIE, token)
    return response


@page(None)
async def signin_page(visit: Visit) -> web.StreamResponse:
    if visit.officer is not None:
        return see_other("/portal/inbox")
    return _signin_form(visit)


@page(None)
async def signin_submit(visit: Visit) -> web.StreamResponse:
    request = visit.request
    form = await _form(request)
    # Login CSRF: the form's token must match the cookie the sign-in page set (double submit).
    if not same_secret(form.get("csrf"), request.cookies.get(SIGNIN_COOKIE, "\x00")):
        raise CsrfRefused("the sign-in form's CSRF token is missing or wrong")
    name = form.get("username", "").strip()[:64]
    password = form.get("password", "")
    book, activity = request.app[ACCOUNTS], request.app[ACTIVITY]
    # Argon2id: tens of milliseconds of CPU and 64 MiB, off the event loop.
    result = await asyncio.to_thread(book.sign_in, name, password)
    activity.record(
        name or "-", "sign_in", result.outcome + (" (locked now)" if result.locked_now else "")
    )
    if result.outcome == "ok" and result.account is not None:
        cookie, _ = request.app[SESSIONS].start(result.account.name)
        log.info("officer signed in", extra={"officer": result.account.name})
        response = see_other("/portal/inbox")
        _cookie(response, SESSION_COOKIE, cookie)
        response.del_cookie(SIGNIN_COOKIE, path="/")
        return response
    t = visit.t
    if result.outcome == "locked":
        until = datetime.fromtimestamp((result.locked_until_ms or 0) / 1000, UTC)
        message = t(
            "This account is locked after too many failed sign-ins. Try again after {time}.",
            time=until.strftime("%H:%M UTC"),
        )
    elif result.outcome == "disabled":
        message = t("This account is disabled. Ask your administrator.")
    else:
        message = t("Wrong username or password.")
    return _signin_form(visit, 401, message, name)


@page(roles.VIEW, post=True)
async def signout(visit: Visit) -> web.StreamResponse:
    request = visit.request
    request.app[SESSIONS].end(request.cookies.get(SESSION_COOKIE))
    request.app[ACTIVITY].record(visit.name, "sign_out", "ok")
    response = see_other("/portal/signin?out=1")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def set_language(request: web.Request) -> web.StreamResponse:
    """The switch on every page: a link, so that it works without script; it changes nothing
    but the page's language, so a GET is right."""
    language = request.match_info["lang"]
    target = request.query.get("next", "/portal/")
    if not target.startswith("/portal/") or "//" in target or "\\" in target:
        target = "/portal/"
    response = see_other(target)
    if language in LANGUAGES:
        _cookie(response, LANG_COOKIE, language, max_age=365 * 86400)
    return _secure(response)


# -- the inbox --------------------------------------------------------------------------------------
def _today() -> date:
    return datetime.now(UTC).date()


def days_left_text(t: Translate, expires_on: str, today: date) -> str:
    left = (date.fromisoformat(expires_on) - today).days
    if left < 0:
        return t("expired")
    if left == 0:
        return t("expires today")
    if left == 1:
        return t("1 day left")
    return t("{n} days left", n=left)


#: The most rows a portal table shows.
MAX_ROWS = 500


def _rows(
    node: LedgerNode, t: Translate, *, live_only: bool = False, **query: Any
) -> list[dict[str, Any]]:
    """`live_only`: certificates issued on the ledger, not historical records (which await no
    decision): those dated before the network began, less the longest backdating, are not read."""
    today = _today()
    rows: list[dict[str, Any]] = []
    if live_only:
        query.setdefault("date_from", _first_live_date(node))
    for record in node.store.certificates(limit=10**9, nodes=node.reader, **query):
        if live_only and record.historical:
            continue
        row = certificate_facts_json(record, today=today)
        row["days_left"] = days_left_text(t, row["expires_on"], today)
        rows.append(row)
        if len(rows) >= MAX_ROWS:
            break
    return rows


def _first_live_date(node: LedgerNode) -> str | None:
    """The earliest issue date a certificate issued on this network can have: the genesis date
    less the largest max_backdating_days (governance.md); None if genesis names no time, or the
    issuance dates did not hold from the first block (an older chain: any date)."""
    if node.store.genesis.parameters.issuance_dates_from_height != 1:
        return None
    try:
        made = datetime.fromisoformat(node.store.genesis.genesis_time).date()
    except ValueError:
        return None
    return (made - timedelta(days=PARAMETER_BOUNDS["max_backdating_days"].high)).isoformat()


@page(roles.VIEW)
async def inbox(visit: Visit) -> web.StreamResponse:
    node, me = visit.node, visit.node.participant
    incoming = _rows(node, visit.t, live_only=True, importing=me, status=ISSUED)
    outgoing = _rows(node, visit.t, live_only=True, exporting=me, status=ISSUED)
    # The nearest expiry first: what needs a decision soonest.
    incoming.sort(key=lambda r: (r["expires_on"], r["number"]))
    outgoing.sort(key=lambda r: (r["expires_on"], r["number"]))
    return render(visit, "inbox.html", incoming=incoming, outgoing=outgoing)


# -- the issue form -----------------------------------------------------------------------------
def _issue_form(
    visit: Visit, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> web.Response:
    node = visit.node
    me = node.participant
    partners = sorted(
        (p.code, p.name) for p in node.registry.participants.values() if p.code != me and p.active
    )
    countries = node.registry.participant(me).countries
    return render(
        visit,
        "issue.html",
        status,
        values=values,
        errors=errors,
        partners=partners,
        hs_codes=[(code, HS_LABELS.get(code, "")) for code in HS_CODES],
        example=f"{countries[0]}-{_today().year}-000123",
    )


@page(roles.ISSUE)
async def issue_page(visit: Visit) -> web.StreamResponse:
    today = _today().isoformat()
    return _issue_form(visit, {"issued_on": today, "parcels": "1"}, {})


@page(roles.ISSUE, post=True)
async def issue_submit(visit: Visit) -> web.StreamResponse:
    node, request = visit.node, visit.request
    values = {name: visit.form.get(name, "") for name in ISSUE_FIELDS}
    activity = request.app[ACTIVITY]
    number = values["number"].strip().upper()
    try:
        number, event = issue_event(node, request.app[AUTHORITY], values)
        admit_issue(node, event)
    except FieldRefused as exc:
        activity.record(
            visit.name, "issue", exc.error.code, certificate=number, detail=exc.error.message
        )
        return _issue_form(visit, values, {exc.field: exc.error.message}, 422)
    outcome = await wait_final(node, event)
    _record_outcome(visit, "issue", number, outcome)
    if outcome.state == "refused" and outcome.error is not None:
        return _issue_form(visit, values, {field_of(outcome.error): outcome.error.message}, 422)
    return see_other(f"/portal/certificates/{number}?done=issue&event={outcome.event_id}")


def _record_outcome(visit: Visit, action: str, number: str, outcome: Outcome) -> None:
    state = outcome.state if outcome.error is None else outcome.error.code
    detail = (
        outcome.error.message
        if outcome.error is not None
        else (f"height {outcome.height}" if outcome.height is not None else "")
    )
    visit.request.app[ACTIVITY].record(
        visit.name, action, state, certificate=number, event_id=outcome.event_id, detail=detail
    )


# -- certificate pages ---------------------------------------------------------------------------
def _our_record(visit: Visit) -> Any:
    """The certificate of the URL, when this participant is a party to it (else CertificateNotFound)."""
    node = visit.node
    try:
        number = normalise_number(visit.request.match_info["number"])
    except (InvalidCertificateNumber, MalformedInput) as exc:
        raise CertificateNotFound(visit.request.match_info["number"][:40]) from exc
    record = node.store.served_certificate(number, node.reader)
    me = node.participant
    if record is None or me not in (
        record.facts.exporting_participant,
        record.facts.importing_participant,
    ):
        raise CertificateNotFound(number)
    return record


def _not_found(visit: Visit, number: str) -> web.Response:
    t = visit.t
    return render(
        visit,
        "error.html",
        404,
        title=t("Not found"),
        message=t(
            "{number} is not a certificate of {participant}.",
            number=number,
            participant=visit.node.participant,
        ),
    )


def _offered(visit: Visit, record: Any) -> dict[str, bool]:
    """The buttons the role and the certificate's state allow (the same test accepts them)."""
    me = visit.node.participant
    f = record.facts
    issued = record.status == ISSUED and not record.historical  # no event follows history
    expired = _today() > f.expires_on
    importer, exporter = f.importing_participant == me, f.exporting_participant == me
    return {
        "confirm": issued and importer and not expired and visit.may(roles.CONFIRM),
        "reject": issued and importer and visit.may(roles.REJECT),
        "void": issued and exporter and visit.may(roles.VOID),
    }


DONE_MESSAGES = {
    "issue": "The certificate is recorded on the ledger.",
    "confirm": "Receipt confirmed on the ledger.",
    "reject": "Import rejected on the ledger.",
    "void": "Certificate voided on the ledger.",
}


def _certificate_view(
    visit: Visit, record: Any, *, status: int = 200, notice: str = "", error: str = ""
) -> web.Response:
    cert = full_certificate_json(visit.node, record)
    return render(
        visit,
        "certificate.html",
        status,
        cert=cert,
        offered=_offered(visit, record),
        void_reasons=VOID_REASONS,
        notice=notice,
        error=error,
        names={code: p.name for code, p in visit.node.registry.participants.items()},
    )


@page(roles.VIEW)
async def certificate_page(visit: Visit) -> web.StreamResponse:
    try:
        record = _our_record(visit)
    except CertificateNotFound as exc:
        return _not_found(visit, exc.message)
    t, query = visit.t, visit.request.query
    notice = ""
    if query.get("done") in DONE_MESSAGES:
        notice = t(DONE_MESSAGES[query["done"]])
        if record.status == ISSUED and query["done"] != "issue":
            notice = t(
                "Sent to the network; not yet in a final block. Event {event_id}.",
                event_id=query.get("event", "")[:64],
            )
    elif query.get("pending"):
        notice = t(
            "Sent to the network; not yet in a final block. Event {event_id}.",
            event_id=query.get("event", "")[:64],
        )
    return _certificate_view(visit, record, notice=notice)


@page(roles.VIEW)
async def certificate_pdf(visit: Visit) -> web.StreamResponse:
    try:
        record = _our_record(visit)
    except CertificateNotFound as exc:
        return _not_found(visit, exc.message)
    node = visit.node
    cert = full_certificate_json(node, record)
    origin = str(visit.request.url.origin())
    try:
        pdf = render_certificate_pdf(
            cert,
            participant_names={code: p.name for code, p in node.registry.participants.items()},
            verify_url=verification_url(origin, record.number, record.digest.hex()),
            node_url=origin,
        )
    except NotAParty as exc:
        return render(visit, "error.html", 409, title=visit.t("Not allowed"), message=str(exc))
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{record.number}.pdf"'},
    )


async def _decide(visit: Visit, action: str) -> web.StreamResponse:
    node, request = visit.node, visit.request
    try:
        record = _our_record(visit)
    except CertificateNotFound as exc:
        return _not_found(visit, exc.message)
    activity = request.app[ACTIVITY]
    if not _offered(visit, record)[action]:
        activity.record(
            visit.name, action, "not_possible", certificate=record.number, detail=record.status
        )
        return _certificate_view(
            visit,
            record,
            status=409,
            error=visit.t("This action is not possible in the certificate's present state."),
        )
    reason = visit.form.get("reason", "").strip()
    try:
        event = decision_event(node, request.app[AUTHORITY], record, action, reason)
        node.submit(event)
    except LedgerError as exc:
        activity.record(visit.name, action, exc.code, certificate=record.number, detail=exc.message)
        return _certificate_view(
            visit,
            record,
            status=422,
            error=visit.t("The ledger refused: {message}", message=exc.message),
        )
    outcome = await wait_final(node, event)
    _record_outcome(visit, action, record.number, outcome)
    if outcome.state == "refused" and outcome.error is not None:
        fresh = _our_record(visit)
        return _certificate_view(
            visit,
            fresh,
            status=422,
            error=visit.t("The ledger refused: {message}", message=outcome.error.message),
        )
    return see_other(f"/portal/certificates/{record.number}?done={action}&event={outcome.event_id}")


@page(roles.CONFIRM, post=True)
async def confirm(visit: Visit) -> web.StreamResponse:
    return await _decide(visit, "confirm")


@page(roles.REJECT, post=True)
async def reject(visit: Visit) -> web.StreamResponse:
    return await _decide(visit, "reject")


@page(roles.VOID, post=True)
async def void(visit: Visit) -> web.StreamResponse:
    return await _decide(visit, "void")


# -- search -----------------------------------------------------------------------------------------
@page(roles.VIEW)
async def search(visit: Visit) -> web.StreamResponse:
    node, q, t = visit.node, visit.request.query, visit.t
    me = node.participant
    criteria = {
        key: q.get(key, "").strip() for key in ("number", "partner", "status", "from", "to")
    }
    error = ""
    results: list[dict[str, Any]] = []
    searched = any(criteria.values())
    if criteria["number"]:
        try:
            number = normalise_number(criteria["number"])
            record = node.store.served_certificate(number, node.reader)
            if record is not None and me in (
                record.facts.exporting_participant,
                record.facts.importing_participant,
            ):
                row = certificate_facts_json(record, today=_today())
                row["days_left"] = days_left_text(t, row["expires_on"], _today())
                results = [row]
        except LedgerError as exc:
            error = exc.message
    elif searched:
        status = criteria["status"] if criteria["status"] in STATUSES else None
        dates: dict[str, Any] = {}
        for key, name in (("from", "date_from"), ("to", "date_to")):
            if criteria[key]:
                try:
                    date.fromisoformat(criteria[key])
                    dates[name] = criteria[key]
                except ValueError:
                    error = f"{criteria[key]!r}: YYYY-MM-DD"
        partner = criteria["partner"].upper()
        for mine, theirs in (
            ("exporting", "importing_participant"),
            ("importing", "exporting_participant"),
        ):
            party: dict[str, Any] = {mine: me}
            for row in _rows(node, t, **party, status=status, **dates):
                if not partner or row[theirs] == partner:
                    row["direction"] = "export" if mine == "exporting" else "import"
                    results.append(row)
        results.sort(key=lambda r: (r["issued_on"], r["number"]), reverse=True)
    partners = sorted(p.code for p in node.registry.participants.values() if p.code != me)
    return render(
        visit,
        "search.html",
        criteria=criteria,
        results=results,
        searched=searched,
        error=error,
        partners=partners,
        statuses=STATUSES,
    )


# -- statistics ---------------------------------------------------------------------------------
def _period(query: Any) -> tuple[int, int | None]:
    try:
        year = int(query.get("year") or _today().year)
        quarter = int(query["quarter"]) if query.get("quarter") else None
    except ValueError:
        year, quarter = _today().year, None
    if not 1900 <= year <= 9999:
        year = _today().year
    if quarter is not None and not 1 <= quarter <= 4:
        quarter = None
    return year, quarter


@page(roles.STATISTICS)
async def statistics(visit: Visit) -> web.StreamResponse:
    node = visit.node
    year, quarter = _period(visit.request.query)
    figures = pair_stats(node.store, year, quarter)
    me = node.participant
    rows = [row for row in figures["rows"] if row.get("participant") == me]
    if visit.request.query.get("format") == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(
            [
                "year",
                "quarter",
                "participant",
                "role",
                "hs_code",
                "certificates",
                "carats",
                "value_usd",
            ]
        )
        for row in rows:
            writer.writerow(
                [
                    year,
                    quarter or "",
                    me,
                    row.get("role"),
                    row.get("hs_code"),
                    row.get("certificates"),
                    row.get("carats"),
                    row.get("value_usd"),
                ]
            )
        return web.Response(
            text=buffer.getvalue(),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{me}-{year}{"-Q" + str(quarter) if quarter else ""}.csv"'
            },
        )
    return render(
        visit,
        "statistics.html",
        year=year,
        quarter=quarter,
        rows=rows,
        height=figures["height"],
    )


# -- the activity log ---------------------------------------------------------------------------
@page(roles.ACTIVITY)
async def activity_page(visit: Visit) -> web.StreamResponse:
    log_ = visit.request.app[ACTIVITY]
    if visit.request.query.get("format") == "csv":
        return web.Response(
            text=log_.csv(),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{visit.node.participant}-activity.csv"'
            },
        )
    return render(visit, "activity.html", entries=log_.entries(limit=500))


# -- static files -------------------------------------------------------------------------------
STATIC = {"portal.css": "text/css"}


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = (WEB / "static" / name).read_bytes()
    response = web.Response(
        body=body, content_type=STATIC[name], headers={"Cache-Control": "max-age=300"}
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def add_routes(app: web.Application) -> None:
    """The portal's routes; the authority key is opened here, at start, so that a wrong
    passphrase or PIN stops the node before it listens rather than at an officer's click."""
    node = app[NODE]
    app[AUTHORITY] = node.config.authority_key()
    app[TEMPLATES] = templates()
    r = app.router
    r.add_get("/portal", root)
    r.add_get("/portal/", home)
    r.add_get("/portal/signin", signin_page)
    r.add_post("/portal/signin", signin_submit)
    r.add_post("/portal/signout", signout)
    r.add_get("/portal/lang/{lang}", set_language)
    r.add_get("/portal/inbox", inbox)
    r.add_get("/portal/issue", issue_page)
    r.add_post("/portal/issue", issue_submit)
    r.add_get("/portal/certificates/{number}", certificate_page)
    r.add_get("/portal/certificates/{number}/pdf", certificate_pdf)
    r.add_post("/portal/certificates/{number}/confirm", confirm)
    r.add_post("/portal/certificates/{number}/reject", reject)
    r.add_post("/portal/certificates/{number}/void", void)
    r.add_get("/portal/search", search)
    r.add_get("/portal/statistics", statistics)
    r.add_get("/portal/activity", activity_page)
    r.add_get("/portal/static/{name}", static_file)
