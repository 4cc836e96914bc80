"""A small synchronous HTTP client for the CLI, with errors a person can act on."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, ClassVar


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


class NodeClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

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
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionFailed(f"cannot reach the node at {self.url}: {reason}") from exc
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
