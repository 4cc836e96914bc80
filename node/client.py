"""A small synchronous HTTP client for the CLI, with errors a person can act on."""

from __future__ import annotations

import dataclasses
import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.errors import LedgerError
from ledger.proofs import RegisterProof, verify_register_proof
from node import tls


class ConnectionFailed(Exception):
    """The node could not be reached, or did not answer in JSON."""


def segment(value: str) -> str:
    """One path segment, URL-quoted: a number or id goes on the wire exactly as it is."""
    return urllib.parse.quote(value, safe="")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("error", "error"))
        return "error"

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("message", self.body.get("error", "")))
        return str(self.body)


class Answered:
    """The nodes that have answered in this process, so that a malformed answer is named as such."""

    urls: ClassVar[list[str]] = []

    @classmethod
    def reset(cls) -> None:
        cls.urls = []


class Trust:
    """How this process's clients verify the nodes they talk to (SPEC 6 "Clients verify the
    node"): the CLI sets it once per command from --genesis, --config, --key, --cacert or the
    environment (node/cli_common.py); until then, the system's certificate authorities."""

    current: ClassVar[tls.ClientTrust] = tls.ClientTrust()

    @classmethod
    def use(cls, trust: tls.ClientTrust) -> None:
        cls.current = trust


def urlopen(
    req: urllib.request.Request, timeout: float, trust: tls.ClientTrust | None = None
) -> Any:
    """urllib's urlopen, an https:// URL verified as `trust` (default: Trust.current) says.

    A node that shows a node key its genesis does not list (one governance added or replaced
    since) is trusted if the register it serves, proven against that genesis, lists the key:
    see `follow_register`. The learned trust then serves the rest of the command."""
    if not req.full_url.startswith("https://"):
        return urllib.request.urlopen(req, timeout=timeout)
    current = trust or Trust.current
    try:
        return current.opener(req.full_url).open(req, timeout=timeout)
    except urllib.error.URLError as exc:
        if not isinstance(exc.reason, tls.NodeNotTrusted) or current.genesis is None:
            raise
        learned = follow_register(req.full_url, current, exc.reason, timeout)
    if trust is None:
        Trust.use(learned)
    return learned.opener(req.full_url).open(req, timeout=timeout)


def follow_register(
    url: str, trust: tls.ClientTrust, refused: tls.NodeNotTrusted, timeout: float
) -> tls.ClientTrust:
    """The trust of the register in force, proven against `trust`'s genesis, as the node at
    `url` serves it (GET /v1/public/participants: its register proof).

    The proof is fetched without checking the node's key: the request carries nothing secret
    (no token, a public route) and the answer is believed only for its proof, which a quorum of
    the validators the genesis and the chain's changes name must have signed. A node that could
    show a key the proven register lists was given it by governance, so this trusts no node the
    network did not; a stale proof names at worst a key the network once gave, as the genesis
    itself does. Raises URLError(NodeNotTrusted) saying why when the proof does not check."""
    assert trust.genesis is not None
    parts = urllib.parse.urlsplit(url)
    register_url = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, "/v1/public/participants", "", "")
    )
    unchecked = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=tls.pinned_context())
    )
    request = urllib.request.Request(register_url, headers={"Accept": "application/json"})
    try:
        with unchecked.open(request, timeout=timeout) as response:
            body = json.loads(response.read())
        proof = body.get("proof") if isinstance(body, dict) else None
        if not isinstance(proof, str):
            raise ValueError("it serves no register proof")
        verified = verify_register_proof(RegisterProof.from_base64(proof), trust.genesis)
    except (OSError, ValueError, http.client.HTTPException, LedgerError) as exc:
        why = exc.message if isinstance(exc, LedgerError) else str(exc) or type(exc).__name__
        raise urllib.error.URLError(
            tls.NodeNotTrusted(f"{refused}; nor does the register it serves prove it ({why})")
        ) from exc
    registry = verified.registry
    nodes: list[tuple[str, bytes | None]] = [
        (v.address, v.node_key) for v in (*registry.validators, *registry.pending_validators)
    ]
    nodes += [(p.address, p.node_key) for p in registry.participants.values()]
    source = f"the register at height {verified.head_height}, proven against {trust.source}"
    learned = tls.ClientTrust.from_register(nodes, source)
    return dataclasses.replace(learned, genesis=trust.genesis)


#: The errors of a plain HTTP request that a TLS listener ends (it hangs up on what is not TLS).
_HUNG_UP = (http.client.BadStatusLine, ConnectionResetError, ConnectionAbortedError)


class NodeClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 10.0,
        trust: tls.ClientTrust | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            url = "https://" + url
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.trust = trust

    def _open(self, req: urllib.request.Request) -> Any:
        return urlopen(req, self.timeout, self.trust)

    def unreachable(self, exc: BaseException) -> ConnectionFailed:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, tls.NodeNotTrusted):
            return ConnectionFailed(f"refusing the node at {self.url}: {reason}")
        if isinstance(reason, ssl.SSLCertVerificationError):
            trust = self.trust or Trust.current
            return ConnectionFailed(
                f"the certificate of the node at {self.url} does not verify against "
                f"{trust.source} ({reason.verify_message}); for a kpledger node give the "
                f"network's genesis (--genesis genesis.json or KPLEDGER_GENESIS), whose node "
                f"keys its certificate is checked against, or --cacert FILE"
            )
        hung_up = isinstance(reason, _HUNG_UP) or isinstance(exc, _HUNG_UP)
        if self.url.startswith("http://") and hung_up and tls.speaks_tls(self.url):
            https = "https://" + self.url.removeprefix("http://")
            return ConnectionFailed(f"the node at {self.url} speaks TLS: use https:// ({https})")
        return ConnectionFailed(f"cannot reach the node at {self.url}: {reason}")

    def request(self, method: str, path: str, body: Any = None) -> Answer:
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        except ValueError as exc:
            raise ConnectionFailed(f"{self.url} is not a URL a node can be reached at") from exc
        try:
            with self._open(req) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError, TimeoutError, http.client.BadStatusLine) as exc:
            raise self.unreachable(exc) from exc
        except tls.TlsError as exc:
            raise ConnectionFailed(str(exc)) from exc
        except (http.client.HTTPException, ValueError) as exc:
            # InvalidURL (a space in the URL), a garbled status line: not a node that answers.
            raise ConnectionFailed(f"cannot talk to the node at {self.url}: {exc}") from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError as exc:
            raise ConnectionFailed(f"{self.url}{path} did not answer in JSON") from exc
        Answered.urls.append(self.url)
        return Answer(status, parsed)

    def get(self, path: str, **query: Any) -> Answer:
        params = {k: v for k, v in query.items() if v is not None}
        suffix = ("?" + urllib.parse.urlencode(params)) if params else ""
        return self.request("GET", path + suffix)

    def post(self, path: str, body: Any) -> Answer:
        return self.request("POST", path, body)
