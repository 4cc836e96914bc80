"""The participant API (/v1/...): signed events in, event status, and the token-guarded records."""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ledger.certificate import normalise_number
from ledger.confidential import open_sealed
from ledger.errors import (
    BatchTooLarge,
    CertificateNotFound,
    LedgerError,
    MalformedInput,
    NotARecipient,
    SealBroken,
    StoreCorrupt,
)
from ledger.events import Event, HistoricalBody, IssueBody
from ledger.records import STATUSES, CertificateRecord
from node.http.appkeys import LIMITS, NODE
from node.http.peer import final_blocks_response
from node.http.responses import (
    error_response,
    json_response,
    operator_only,
    read_body,
    sync_only,
)
from node.limits import query_int
from node.peers import MSGPACK
from node.service import EventStatus, LedgerNode
from node.views import certificate_facts_json, history_json

_PARTICIPANT_CODE = re.compile(r"[A-Z]{2}")


#: The most events one POST /v1/events may carry as {"events": [...]} (SPEC 10).
MAX_BATCH_EVENTS = 1000


async def post_event(request: web.Request) -> web.Response:
    """One signed event (a JSON envelope or its msgpack encoding), or a batch of envelopes."""
    node = request.app[NODE]
    body = await read_body(
        request, allow=("application/json", MSGPACK), limit=node.config.max_batch_body_bytes
    )
    if request.content_type == MSGPACK:
        _within_one_body(node, body)
        event = Event.decode(body)
    else:
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            _within_one_body(node, body)
            raise MalformedInput(f"the body is not JSON: {exc}") from exc
        except RecursionError as exc:  # json.loads of '[[[[...' a hundred thousand deep
            _within_one_body(node, body)
            raise MalformedInput("the body is not JSON: nested too deeply") from exc
        if isinstance(envelope, dict) and "events" in envelope:
            return await _post_batch(request, envelope)
        _within_one_body(node, body)
        event = Event.from_envelope(envelope)
    status = node.submit(event)
    if status.status == "pending":
        # 202 is a promise: the event is in this node's store before the answer (docs/api).
        await node.durable(event.event_id)
    return json_response(_accepted(event.event_id, status), status=202)


def _within_one_body(node: LedgerNode, body: bytes) -> None:
    """One event's body (or one that is no JSON) is held to max_body_bytes; only a batch may
    be larger, up to max_batch_body_bytes."""
    limit = node.config.max_body_bytes
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))


def _accepted(event_id: bytes, status: EventStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"event_id": event_id.hex(), "status": status.status}
    if status.height is not None:
        out["height"] = status.height
    return out


def _refused(exc: LedgerError, event_id: bytes | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "error": exc.code,
        "message": exc.message,
        "http_status": exc.http_status,
    }
    out.update(getattr(exc, "details", None) or {})
    if event_id is not None:
        out["event_id"] = event_id.hex()
    return out


async def _post_batch(request: web.Request, batch: dict[str, Any]) -> web.Response:
    """{"events": [envelope, ...]}: each event admitted or refused on its own, as if posted
    alone; one result per event, in order. A refused event changes nothing; the others stand."""
    node = request.app[NODE]
    if set(batch) != {"events"}:
        extra = ", ".join(sorted(repr(k) for k in set(batch) - {"events"}))
        raise MalformedInput(f'a batch is {{"events": [envelope, ...]}} and nothing else: {extra}')
    envelopes = batch["events"]
    if not isinstance(envelopes, list) or not envelopes:
        raise MalformedInput('"events" is a list of one or more event envelopes')
    if len(envelopes) > MAX_BATCH_EVENTS:
        raise BatchTooLarge(
            f"a batch holds at most {MAX_BATCH_EVENTS} events, not {len(envelopes)}: "
            "send it in several"
        )
    # The events rate limit counts events, not requests: the middleware spent one.
    wait = request.app[LIMITS].charge(request, len(envelopes) - 1)
    if wait > 0:
        refusal = error_response(
            429,
            "rate_limited",
            f"a batch of {len(envelopes)} events is more than your address may send now; "
            "slow down or send smaller batches",
            retry_after_s=math.ceil(wait),
        )
        refusal.headers["Retry-After"] = str(math.ceil(wait))
        return refusal
    results: list[dict[str, Any]] = []
    pending: dict[int, bytes] = {}
    for index, envelope in enumerate(envelopes):
        event_id: bytes | None = None
        try:
            event = Event.from_envelope(envelope)
            event_id = event.event_id
            status = node.submit(event)
        except LedgerError as exc:
            results.append(_refused(exc, event_id))
            continue
        results.append(_accepted(event.event_id, status))
        if status.status == "pending":
            pending[index] = event.event_id
    # As for one event: an accepted event is in this node's store before the answer. The
    # writes' futures are awaited together (a task for each took 4% of a node's Python time
    # at saturation, with batches of 100).
    waits = {i: f for i, event_id in pending.items() if (f := node.written(event_id)) is not None}
    outcomes = await asyncio.gather(*waits.values(), return_exceptions=True)
    for index, outcome in zip(waits, outcomes, strict=True):
        if isinstance(outcome, LedgerError):
            results[index] = _refused(outcome, pending[index])
        elif isinstance(outcome, BaseException):
            raise outcome
    accepted = sum(1 for r in results if "error" not in r)
    return json_response(
        {"results": results, "accepted": accepted, "refused": len(results) - accepted}
    )


async def get_event(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        event_id = bytes.fromhex(request.match_info["event_id"])
    except ValueError as exc:
        raise MalformedInput("an event id is 64 hex characters") from exc
    if len(event_id) != 32:
        raise MalformedInput("an event id is 64 hex characters")
    status = node.event_status(event_id)
    if status is None:
        return error_response(404, "event_not_found", "this node has never seen that event")
    out: dict[str, Any] = {"event_id": event_id.hex(), "status": status.status}
    if status.height is not None:
        out["height"] = status.height
    if status.error is not None:
        out["error"] = status.error
        out["message"] = status.message
    return json_response(out)


def _record(node: LedgerNode, number: str) -> CertificateRecord:
    record = node.store.served_certificate(number, node.reader)
    if record is None:
        raise CertificateNotFound(f"certificate {number} is not on the ledger")
    return record


def full_certificate_json(node: LedgerNode, record: CertificateRecord) -> dict[str, Any]:
    """The whole record as a participant node may show it; the parties only on a party's node."""
    out = certificate_facts_json(record, today=datetime.now(UTC).date())
    out["history"] = history_json(node.store, record)
    issue = node.store.event(record.issue_event_id)
    if issue is None or not isinstance(issue.event.body, IssueBody | HistoricalBody):
        raise StoreCorrupt(f"the store lacks the issue event of certificate {record.number}")
    sealed = issue.event.body.sealed
    if node.encryption_key is None:  # an observer's (it serves no participant route)
        raise NotARecipient("this node holds no encryption key: it is an observer")
    try:
        identities, salt = open_sealed(sealed, record.number, node.participant, node.encryption_key)
        out["exporter"] = identities.exporter.to_json()
        out["importer"] = identities.importer.to_json()
        out["identity_salt"] = salt.hex()
        out["party"] = True
    except NotARecipient:
        out["party"] = False
        out["identities"] = (
            f"{node.participant} is not a party to this certificate: the exporter and importer "
            "are readable only by the exporting and importing authorities"
        )
    except SealBroken as exc:
        out["party"] = True
        out["identities_error"] = exc.message
    return out


@operator_only
async def get_certificate(request: web.Request) -> web.Response:
    node = request.app[NODE]
    number = normalise_number(request.match_info["number"])
    return json_response(full_certificate_json(node, _record(node, number)))


@operator_only
async def list_certificates(request: web.Request) -> web.Response:
    node = request.app[NODE]
    q = request.query
    status = q.get("status") or None
    if status is not None and status not in STATUSES:
        raise MalformedInput(f"status is one of {', '.join(STATUSES)}")
    for key in ("from", "to"):
        if q.get(key):
            try:
                datetime.strptime(q[key], "%Y-%m-%d")
            except ValueError as exc:
                raise MalformedInput(f"'{key}' must be an ISO date YYYY-MM-DD") from exc
    limit = query_int(q, "limit", 100, 1, 1000)
    for key in ("exporting", "importing"):
        if key in q and not _PARTICIPANT_CODE.fullmatch(q[key]):
            raise MalformedInput(f"'{key}' is a participant code: two capital letters, or EU")
    records = list(
        node.store.certificates(
            exporting=q.get("exporting") or None,
            importing=q.get("importing") or None,
            status=status,
            date_from=q.get("from") or None,
            date_to=q.get("to") or None,
            cursor=q.get("cursor") or None,
            limit=limit,
            nodes=node.reader,
        )
    )
    today = datetime.now(UTC).date()
    items = [certificate_facts_json(r, today=today) for r in records]
    out: dict[str, Any] = {"certificates": items, "count": len(items)}
    if len(records) == limit:
        last = records[-1].facts
        out["next_cursor"] = f"{last.issued_on.isoformat()}/{last.number}"
    return json_response(out)


@sync_only
async def chain_blocks(request: web.Request) -> web.Response:
    """Whole final blocks with their commit certificates, for an auditor (`kpledger audit --node`)
    and for the observers the operator authorised (docs/security.md, "Observers").

    Events carry shipment facts that are not public, so this needs a token: of scope `sync` (an
    observer's, which opens nothing else) or more.
    """
    # Out of range is refused here (the peer route clamps, for nodes of older versions).
    query_int(request.query, "from", 1, 1, 2**63 - 1)
    query_int(request.query, "limit", 64, 1, 256)
    return final_blocks_response(request)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/events", post_event)
    r.add_get("/v1/events/{event_id}", get_event)
    r.add_get("/v1/certificates", list_certificates)
    r.add_get("/v1/certificates/{number}", get_certificate)
    r.add_get("/v1/chain/blocks", chain_blocks)
