"""A small synchronous HTTP client for the CLI, with errors a person can act on."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, ClassVar

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
    """urllib's urlopen, an https:// URL verified as `trust` (default: Trust.current) says."""
    if req.full_url.startswith("https://"):
        return (trust or Trust.current).opener(req.full_url).open(req, timeout=timeout)
    return urllib.request.urlopen(req, timeout=timeout)


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
