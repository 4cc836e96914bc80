"""The node's clock: wall time in milliseconds.

`KPLEDGER_CLOCK_OFFSET_MS` shifts it by that many milliseconds: a test hook, for the tests of
clock skew (docs/operations.md, "Health"); never set on a real node.
"""

from __future__ import annotations

import os
import time

OFFSET_ENV = "KPLEDGER_CLOCK_OFFSET_MS"


def _offset() -> int:
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{OFFSET_ENV} is a whole number of milliseconds, not {raw!r}") from None


OFFSET_MS = _offset()


def now_ms() -> int:
    return int(time.time() * 1000) + OFFSET_MS
