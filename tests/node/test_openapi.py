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

from node.api import build_app
from node.config import NodeConfig
from node.netinit import init_network, parse_participants
from node.service import LedgerNode
from tests.e2e.harness import REPO, Network
from tests.node.conftest import Issued, Signer, build_demo_chain

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
        app = build_app(node)
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
        with urllib.request.urlopen(request, timeout=10) as response:
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
        if operation is None or template.startswith("/peer/"):
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
    gets = {t for t, ops in spec()["paths"].items() if "get" in ops and not t.startswith("/peer/")}
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
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as exc:
            answer = exc.code, exc.headers.get_content_type(), exc.read()
        check_answer("/v1/events", "post", *answer)
        statuses.add(answer[0])
    assert statuses == {202, 400, 413, 415}


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
