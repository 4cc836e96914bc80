"""docs/api/openapi.yaml: a valid OpenAPI document, naming every route, that live answers keep to."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from ledger import authoring
from ledger.keys import SigningKey
from node.config import NodeConfig
from node.http.app import make_app
from node.netinit import init_network, parse_participants
from node.service import LedgerNode
from tests.e2e.conftest import poll
from tests.e2e.harness import REPO, Network, urlopen
from tests.node.conftest import Issued, Signer, build_demo_chain, now_ms, submit, wait_final

SPEC_PATH = REPO / "docs" / "api" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def resolve(obj: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref (#/components/...) to what it names."""
    while "$ref" in obj:
        node: Any = spec()
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        obj = node
    return obj


@cache
def validator(schema_json: str) -> Draft202012Validator:
    # The schema sits in a document that also holds the components, so "#/components/..." resolves.
    schema = {"components": spec()["components"], **json.loads(schema_json)}
    return Draft202012Validator(schema)


def check_answer(template: str, method: str, status: int, content_type: str, body: bytes) -> None:
    """The answer is one the spec documents for this operation, and its body keeps to the schema."""
    operation = spec()["paths"][template][method]
    documented = operation["responses"].get(str(status)) or operation["responses"].get("default")
    assert documented is not None, f"{method.upper()} {template}: undocumented status {status}"
    content = resolve(documented).get("content", {})
    assert content_type in content, f"{method.upper()} {template} {status}: {content_type}"
    if content_type == "application/json":
        errors = sorted(
            validator(json.dumps(content[content_type]["schema"])).iter_errors(json.loads(body)),
            key=str,
        )
        assert not errors, f"{method.upper()} {template} {status}: {errors[0].message}"


def test_the_spec_is_a_valid_openapi_document() -> None:
    validate(spec())
    assert spec()["openapi"].startswith("3.")


def test_the_spec_describes_every_route_of_the_node(tmp_path: Path) -> None:
    init_network(tmp_path, parse_participants("BE,AE"), base_port=7700, chain_id="kp-routes")
    node = LedgerNode(NodeConfig.load(tmp_path / "BE" / "node.toml"))
    try:
        app = make_app(node)
        served = {
            (route.method.lower(), route.resource.canonical)
            for route in app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
    finally:
        node.store.close()
    documented = {
        (method, path)
        for path, operations in spec()["paths"].items()
        for method in operations
        if method in METHODS
    }
    assert served == documented


def test_the_envelope_example_is_a_real_signed_event() -> None:
    from ledger.events import Event
    from ledger.keys import SigningKey

    schema = spec()["components"]["schemas"]["EventEnvelope"]
    event = Event.from_envelope(schema["example"])
    key = SigningKey.from_seed(bytes(range(32)))
    assert event.signature_valid(key.public_bytes)
    assert event.event_id.hex() in schema["description"]
    assert key.public_bytes.hex() in schema["description"]


# -- live answers against the schemas -----------------------------------------------------------
@pytest.fixture(scope="module")
def live(network_factory: Any) -> tuple[Network, list[Issued]]:
    net: Network = network_factory("openapi")
    return net, build_demo_chain(net, Signer.for_network(net), "OA")


def fetch(url: str, token: str | None) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


#: Text for any parameter, never "." or ".." or a "/" (those route elsewhere before our handlers).
_text = st.text(
    st.characters(codec="utf-8", exclude_characters="/\\"),
    min_size=1,
    max_size=24,
).filter(lambda t: t not in (".", ".."))


def value_for(schema: dict[str, Any], known: list[str]) -> st.SearchStrategy[str]:
    """Valid values (from the spec and the live chain) and anything at all, as strings."""
    schema = resolve(schema)
    options: list[st.SearchStrategy[str]] = [_text]
    if known:
        options.append(st.sampled_from(known))
    if "enum" in schema:
        options.append(st.sampled_from([str(v) for v in schema["enum"]]))
    if schema.get("type") == "integer":
        low, high = schema.get("minimum", -10), schema.get("maximum", 10**6)
        options.append(st.integers(low - 2, high + 2).map(str))
    if "pattern" in schema:
        options.append(st.from_regex(schema["pattern"], fullmatch=True))
    if schema.get("format") == "date":
        options.append(st.dates().map(lambda d: d.isoformat()))
    return st.one_of(options)


def is_stream(operation: dict[str, Any]) -> bool:
    """A Server-Sent Events route: its answer never ends (tests/e2e/test_stream_e2e.py)."""
    ok = operation.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {})


def requests(net: Network, demo: list[Issued]) -> st.SearchStrategy[tuple[str, str, str | None]]:
    """(template, url, token) for every GET route but the node-only ones."""
    node = net.node("BE")
    height = node.height()
    known = {
        # Numbers on the ledger, as a person may paste them, and well-formed ones that are not.
        "number": [i.number for i in demo]
        + [f" {demo[0].number.lower()} ", "BE-NEVER-ISSUED-1", "ru-never-2"],
        "event_id": [e for i in demo for e in i.event_ids],
        "height": [str(h) for h in range(1, height + 1)],
        "exporting": ["BE", "AE", "IN", "RU"],
        "importing": ["BE", "AE", "IN", "RU"],
        "digest": [i.issuance.digest.hex() for i in demo],
    }
    strategies = []
    for template, operations in spec()["paths"].items():
        operation = operations.get("get")
        if operation is None or template.startswith("/peer/") or is_stream(operation):
            continue
        path_params = {}
        query_params = {}
        for parameter in (resolve(p) for p in operation.get("parameters", [])):
            values = value_for(parameter["schema"], known.get(parameter["name"], []))
            if parameter["in"] == "path":
                path_params[parameter["name"]] = values
            else:
                query_params[parameter["name"]] = st.one_of(st.none(), values)
        token = (
            st.sampled_from([node.token, node.token, None])
            if operation.get("security")
            else st.none()
        )

        def build(
            path: dict[str, str], query: dict[str, str | None], tok: str | None, t: str = template
        ) -> tuple[str, str, str | None]:
            url = t
            for name, value in path.items():
                url = url.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
            present = {k: v for k, v in query.items() if v is not None}
            if present:
                url += "?" + urllib.parse.urlencode(present)
            return t, node.url + url, tok

        strategies.append(
            st.builds(
                build,
                st.fixed_dictionaries(path_params),
                st.fixed_dictionaries(query_params),
                token,
            )
        )
    return st.one_of(strategies)


@pytest.mark.slow
def test_live_answers_keep_to_the_spec(live: tuple[Network, list[Issued]]) -> None:
    net, demo = live
    seen: dict[str, set[int]] = {}

    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(request: tuple[str, str, str | None]) -> None:
        template, url, token = request
        status, content_type, body = fetch(url, token)
        assert status < 500, (url, status, body[:300])
        check_answer(template, "get", status, content_type, body)
        seen.setdefault(template, set()).add(status)

    @given(requests(net, demo))
    def answers_keep_to_the_spec(request: tuple[str, str, str | None]) -> None:
        check(request)

    answers_keep_to_the_spec()
    # A number well formed but never issued, and one pasted in lower case with spaces, whatever
    # the draw above reached: both certificate routes' 404 and 200 keep to the spec too.
    node = net.node("BE")
    pasted = urllib.parse.quote(f" {demo[0].number.lower()} ", safe="")
    for template in ("/v1/public/certificates/{number}", "/v1/certificates/{number}"):
        for number in ("BE-NEVER-ISSUED-9", pasted):
            check((template, node.url + template.replace("{number}", number), node.token))
    # And every route once with a value from the chain, so that no route depends on the draw.
    first = {"number": demo[0].number, "event_id": demo[0].event_ids[0], "height": "1"}
    gets = {
        t
        for t, ops in spec()["paths"].items()
        if "get" in ops and not t.startswith("/peer/") and not is_stream(ops["get"])
    }
    for template in sorted(gets - set(seen)):
        url = template
        for name in re.findall(r"{(\w+)}", template):
            url = url.replace("{" + name + "}", urllib.parse.quote(first.get(name, "0" * 64)))
        check((template, node.url + url, node.token))
    # Every route was reached, and the certificate routes answered both ways.
    assert set(seen) == gets, gets - set(seen)
    for template in ("/v1/public/certificates/{number}", "/v1/certificates/{number}"):
        assert {200, 404} <= seen[template], (template, seen[template])


@pytest.mark.slow
def test_every_documented_answer_of_the_demo_chain_keeps_to_the_spec(
    live: tuple[Network, list[Issued]],
) -> None:
    """The answers the property test may miss: every certificate's record, proof and events."""
    net, demo = live
    for code in ("BE", "IN"):
        node = net.node(code)
        for item in demo:
            for template, path, token in (
                (
                    "/v1/public/certificates/{number}",
                    f"/v1/public/certificates/{item.number}",
                    None,
                ),
                ("/v1/public/verify/{number}", f"/v1/public/verify/{item.number}", None),
                ("/v1/certificates/{number}", f"/v1/certificates/{item.number}", node.token),
                ("/v1/events/{event_id}", f"/v1/events/{item.event_ids[-1]}", None),
            ):
                status, content_type, body = fetch(node.url + path, token)
                assert status == 200, (path, body[:300])
                check_answer(template, "get", status, content_type, body)
        status, content_type, body = fetch(node.url + "/v1/certificates?limit=1000", node.token)
        check_answer("/v1/certificates", "get", status, content_type, body)


@pytest.mark.slow
def test_post_event_answers_keep_to_the_spec(live: tuple[Network, list[Issued]]) -> None:
    net, demo = live
    node = net.node("AE")
    cases = [
        (json.dumps(demo[0].issuance.event.to_envelope()).encode(), "application/json"),
        (b"{", "application/json"),
        (b"x", "text/plain"),
        (b"x" * (2 * 1024 * 1024), "application/json"),
        (demo[0].issuance.event.encoded, "application/msgpack"),
        (
            json.dumps({"events": [demo[0].issuance.event.to_envelope(), "x"]}).encode(),
            "application/json",
        ),
    ]
    statuses = set()
    for body, content_type in cases:
        request = urllib.request.Request(
            node.url + "/v1/events",
            data=body,
            method="POST",
            headers={"Content-Type": content_type},
        )
        try:
            with urlopen(request, timeout=10) as response:
                answer = response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as exc:
            answer = exc.code, exc.headers.get_content_type(), exc.read()
        check_answer("/v1/events", "post", *answer)
        statuses.add(answer[0])
    assert statuses == {200, 202, 400, 413, 415}


@pytest.mark.slow
def test_reconcile_refuses_a_year_of_non_decimal_digits(live: tuple[Network, list[Issued]]) -> None:
    net, _ = live
    node = net.node("BE")
    status, _, body = fetch(node.url + "/v1/reconcile?year=%C2%B2", node.token)
    assert status == 400, (status, body)


def test_no_schema_of_a_public_certificate_admits_confidential_fields() -> None:
    public = spec()["components"]["schemas"]["PublicCertificate"]
    assert public["additionalProperties"] is False
    forbidden = {
        "exporter",
        "importer",
        "carats",
        "value_usd",
        "origin",
        "parcels",
        "identity_salt",
    }
    assert not forbidden & set(public["properties"])


@pytest.mark.slow
def test_a_restricted_participants_answers_keep_to_the_spec(
    live: tuple[Network, list[Issued]],
) -> None:
    """Governance restricts RU under a monitoring team; its endorsed and confirmed certificate
    has three history entries (issue, endorse, confirm), and every answer about it, the register
    and the proposal keep to the spec. Runs last in this module: it changes the register."""
    net, _ = live
    signer = Signer.for_network(net)
    node = net.node("BE")
    monitor = SigningKey.generate()
    proposal = authoring.propose(
        signer.chain_id,
        "BE",
        "restrict",
        "RU",
        [["OA-ZONE-1"], monitor.public_bytes],
        node.height() + 8,
        signer.keys["BE"],
        created_ms=now_ms(),
    )
    wait_final(net, node, [submit(node, proposal)])
    pid = proposal.event_id.hex()
    votes = [
        authoring.vote(
            signer.chain_id, v, proposal.event_id, True, signer.keys[v], created_ms=now_ms()
        )
        for v in ("AE", "IN")
    ]
    wait_final(net, node, [submit(node, vote) for vote in votes])

    def enacted() -> dict[str, Any] | None:
        status, body = node.get(f"/v1/public/governance/proposals/{pid}")
        assert status == 200 and body["status"] in ("open", "passed", "enacted"), body
        return dict(body) if body["status"] == "enacted" else None

    record: dict[str, Any] = poll(enacted, 90, "the restriction to take effect", 0.2)
    net.wait_height(record["effective_height"] - 1, [node, net.node("RU"), net.node("IN")])

    document = signer.document("RU", "IN", "OR")
    document["zone"] = "OA-ZONE-1"
    issuance = signer.issue(document)
    wait_final(net, node, [submit(net.node("RU"), issuance.event)])
    endorsement = authoring.endorse(
        signer.chain_id,
        "RU",
        document["number"],
        issuance.digest,
        monitor,
        created_ms=now_ms(),
    )
    wait_final(net, node, [submit(node, endorsement)])
    confirmation = signer.confirm(issuance)
    wait_final(net, node, [submit(net.node("IN"), confirmation)])

    number = document["number"]
    status, _, body = fetch(f"{node.url}/v1/public/certificates/{number}", None)
    assert status == 200, body[:300]
    answer = json.loads(body)
    assert [h["type"] for h in answer["history"]] == [
        "certificate.issue",
        "certificate.endorse",
        "certificate.confirm_import",
    ]
    assert answer["status"] == "import_confirmed"
    for template, path, token in (
        ("/v1/public/certificates/{number}", f"/v1/public/certificates/{number}", None),
        ("/v1/public/verify/{number}", f"/v1/public/verify/{number}", None),
        ("/v1/certificates/{number}", f"/v1/certificates/{number}", node.token),
        ("/v1/certificates", "/v1/certificates?limit=1000", node.token),
        ("/v1/events/{event_id}", f"/v1/events/{endorsement.event_id.hex()}", None),
        ("/v1/public/participants", "/v1/public/participants", None),
        ("/v1/participants", "/v1/participants", node.token),
        ("/v1/public/governance/proposals", "/v1/public/governance/proposals", None),
        (
            "/v1/public/governance/proposals/{proposal_id}",
            f"/v1/public/governance/proposals/{pid}",
            None,
        ),
    ):
        status, content_type, body = fetch(node.url + path, token)
        assert status == 200, (path, body[:300])
        check_answer(template, "get", status, content_type, body)
    # An issuance of RU without its zone is refused (409), and a confirmation of a number that is
    # not on the ledger is the 404 of POST /v1/events: both answers keep to the spec.
    unzoned = signer.issue(signer.document("RU", "IN", "OR"))
    never = authoring.confirm_import(
        signer.chain_id,
        "IN",
        "RU-OR-NEVER-1",
        issuance.digest,
        signer.keys["IN"],
        created_ms=now_ms(),
    )
    for event, expected, code in (
        (unzoned.event, 409, "zone_not_approved"),
        (never, 404, "certificate_not_found"),
    ):
        request = urllib.request.Request(
            node.url + "/v1/events",
            data=json.dumps(event.to_envelope()).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urlopen(request, timeout=10) as response:
                got = response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as exc:
            got = exc.code, exc.headers.get_content_type(), exc.read()
        assert got[0] == expected and json.loads(got[2])["error"] == code, got
        check_answer("/v1/events", "post", *got)


def test_post_events_documents_every_status_and_404_code_of_the_rule_book() -> None:
    """Every status a rule of docs/rules.md answers is a documented answer of POST /v1/events,
    and its 404 names each code a rule answers 404 with."""
    from tests.ledger.test_rules_doc import RULES, tables

    responses = spec()["paths"]["/v1/events"]["post"]["responses"]
    statuses: set[str] = set()
    not_found: set[str] = set()
    for heading, header, rows in tables(RULES.read_text(encoding="utf-8")):
        if "code" not in header or "HTTP" not in header or heading == "Index of codes":
            continue
        for row in rows:
            status = row[header.index("HTTP")]
            if status:
                statuses.add(status)
            if status == "404":
                not_found |= set(re.findall(r"`([a-z_]+)`", row[header.index("code")]))
    assert statuses - set(responses) == set()
    assert not_found == {"certificate_not_found", "unknown_proposal"}
    described = resolve(responses["404"])["description"]
    assert all(f"`{code}`" in described for code in not_found), described
