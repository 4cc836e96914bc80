"""Structured logs: one JSON object a line, on stderr; repeats collapsed, secrets never written."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
#: A bearer credential as it would appear in a header echoed into a log line.
_BEARER = re.compile(r"(?i)(bearer)(\s+|%20|\\x20)[^\s'\",;]+")
#: A token the node made (node/tokens.py), wherever it appears.
_NODE_TOKEN = re.compile(r"kpt_[A-Za-z0-9_-]{20,}")
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    """One JSON object a line. Registered secrets and bearer credentials are replaced."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _NODE_TOKEN.sub(REDACTED, text)
        return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, int | float | str | bool | None) else str(value)
                )
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(out, ensure_ascii=False))


class RepeatFilter(logging.Filter):
    """At most `burst` lines of one kind per `window_s`; then one line saying how many were not.

    A kind is the logger, level and message template (not the formatted message, so that lines
    differing only by an address or a count are one kind). Memory is bounded by `max_kinds`.
    """

    def __init__(self, burst: int = 20, window_s: float = 60.0, max_kinds: int = 2000) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self.max_kinds = max_kinds
        #: kind -> [window start, lines passed, lines suppressed, a sample record]
        self.kinds: OrderedDict[tuple[str, int, str], list[Any]] = OrderedDict()
        self.handler: logging.Handler | None = None
        self._next_sweep = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_summary", False):
            return True
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.window_s
            self.sweep(now)
        kind = (record.name, record.levelno, str(record.msg))
        state = self.kinds.get(kind)
        if state is None or now - state[0] >= self.window_s:
            if state is not None and state[2]:
                self._summarise(kind, state)
            state = [now, 0, 0, record]
            self.kinds[kind] = state
            self.kinds.move_to_end(kind)
            while len(self.kinds) > self.max_kinds:
                old_kind, old = self.kinds.popitem(last=False)
                if old[2]:
                    self._summarise(old_kind, old)
        if state[1] < self.burst:
            state[1] += 1
            return True
        state[2] += 1
        state[3] = record
        return False

    def sweep(self, now: float | None = None) -> None:
        """Say how many lines were suppressed in every window that has ended (all, if now=None)."""
        for kind, state in list(self.kinds.items()):
            if state[2] and (now is None or now - state[0] >= self.window_s):
                self._summarise(kind, state)
                state[2] = 0

    def _summarise(self, kind: tuple[str, int, str], state: list[Any]) -> None:
        if self.handler is None:
            return
        sample: logging.LogRecord = state[3]
        summary = logging.LogRecord(
            kind[0],
            kind[1],
            sample.pathname,
            sample.lineno,
            "%d similar lines suppressed",
            (state[2],),
            None,
        )
        summary.suppressed = state[2]
        summary.similar_to = sample.getMessage()[:200]
        summary.window_s = self.window_s
        summary._summary = True
        node = getattr(sample, "node", None)
        if node is not None:
            summary.node = node
        self.handler.handle(summary)


def setup(
    level: str = "info",
    node: str | None = None,
    *,
    secrets: Iterable[str] = (),
    repeat_burst: int = 20,
    repeat_window_s: float = 60.0,
) -> RepeatFilter:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    repeats = RepeatFilter(repeat_burst, repeat_window_s)
    repeats.handler = handler
    handler.addFilter(repeats)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if node:
        old_factory = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = old_factory(*args, **kwargs)
            record.node = node
            return record

        logging.setLogRecordFactory(factory)
    return repeats
