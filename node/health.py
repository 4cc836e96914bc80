"""What /healthz tells: each reason this node is not fit to serve, as last observed.

A node is healthy when its store can be read and written, it keeps up with its peers, it
reaches enough of them to take part in consensus, and its clock agrees with theirs. Each is a
`Problem` with a stable code; /healthz answers 503 with them (docs/operations.md).
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass

from node.metrics import Metrics

log = logging.getLogger("kpledger.health")

#: A node more than this many blocks below the best height its peers answered is behind.
MAX_BLOCKS_BEHIND = 5
#: Clock readings from peers older than this are forgotten (a peer gone quiet says nothing).
CLOCK_SAMPLE_TTL_S = 120.0
#: A skew past the tolerance is logged at most this often (every peer message carries one).
CLOCK_LOG_INTERVAL_S = 60.0

STORE_CORRUPT = "store_corrupt"
STORE_WRITE_FAILED = "store_write_failed"
BEHIND_PEERS = "behind_peers"
TOO_FEW_PEERS = "too_few_peers"
CLOCK_SKEW = "clock_skew"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class Health:
    """The node's observations, kept by the service and the API, read by /healthz and /metrics."""

    def __init__(self, metrics: Metrics, max_drift_ms: int) -> None:
        self.metrics = metrics
        #: The tolerated clock difference (the genesis parameter max_clock_drift_ms).
        self.max_drift_ms = max_drift_ms
        self.corrupt: str | None = None
        self.write_error: str | None = None
        #: Best height a peer answered at the last poll, and how many answered, of how many needed.
        self.best_peer_height = 0
        self.peers_up: int | None = None  # None: no poll yet
        self.peers_needed = 0
        self._clock: dict[str, tuple[int, float]] = {}
        self._clock_logged = 0.0

    # -- the store ----------------------------------------------------------------------------
    def store_corrupt(self, reason: str) -> None:
        """A read found the store corrupt: the node no longer vouches for it (logged once)."""
        if self.corrupt is None:
            log.error(
                "the store is corrupt: this node no longer serves what it cannot vouch for; stop "
                "it, run `kpledger store scrub --data DIR`, and resync it from its peers",
                extra={"reason": reason},
            )
        self.corrupt = reason
        self.metrics.store_corrupt.set(1)

    def write_failed(self, reason: str) -> None:
        if self.write_error is None:
            log.error("a write to the store failed", extra={"reason": reason})
        self.write_error = reason
        self.metrics.store_write_failures.inc()
        self.metrics.store_writable.set(0)

    def write_succeeded(self) -> None:
        if self.write_error is not None:
            log.warning("the store takes writes again", extra={"reason": self.write_error})
        self.write_error = None
        self.metrics.store_writable.set(1)

    @property
    def can_write(self) -> bool:
        """False once a write failed (until one succeeds) or the store is corrupt."""
        return self.write_error is None and self.corrupt is None

    # -- peers ------------------------------------------------------------------------------
    def observe_peers(self, heights: dict[str, int], up: int, needed: int) -> None:
        self.best_peer_height = max(heights.values(), default=0)
        self.peers_up = up
        self.peers_needed = needed

    # -- the clock --------------------------------------------------------------------------
    def observe_clock(self, peer: str, peer_time_ms: int, local_ms: int) -> None:
        """A peer's signed time against ours, when its message arrived."""
        self._clock[peer] = (peer_time_ms - local_ms, time.monotonic())
        offset = self.clock_offset_ms()
        if offset is None:
            return
        self.metrics.clock_offset.set(offset / 1000)
        now = time.monotonic()
        if abs(offset) > self.max_drift_ms and now - self._clock_logged >= CLOCK_LOG_INTERVAL_S:
            self._clock_logged = now
            log.error(
                "this node's clock is off: %s ms %s its peers' (tolerance %d ms); its votes and "
                "blocks are refused until it is fixed (check NTP)",
                abs(offset),
                "ahead of" if offset > 0 else "behind",
                self.max_drift_ms,
                extra={"offset_ms": offset, "peers": len(self._clock)},
            )

    def clock_offset_ms(self) -> int | None:
        """How far this node's clock is ahead of its peers' (the median over recent peers)."""
        cutoff = time.monotonic() - CLOCK_SAMPLE_TTL_S
        for peer in [p for p, (_, at) in self._clock.items() if at < cutoff]:
            del self._clock[peer]
        if not self._clock:
            return None
        return -int(statistics.median(skew for skew, _ in self._clock.values()))

    # -- the verdict ------------------------------------------------------------------------
    def problems(self, height: int) -> list[Problem]:
        out = []
        if self.corrupt is not None:
            out.append(Problem(STORE_CORRUPT, self.corrupt))
        if self.write_error is not None:
            out.append(
                Problem(
                    STORE_WRITE_FAILED,
                    f"the last write to the store failed ({self.write_error}); new events are "
                    "refused",
                )
            )
        behind = self.best_peer_height - height
        self.metrics.blocks_behind.set(max(behind, 0))
        if behind > MAX_BLOCKS_BEHIND:
            out.append(
                Problem(
                    BEHIND_PEERS,
                    f"at height {height}, {behind} blocks behind its peers "
                    f"({self.best_peer_height}; tolerance {MAX_BLOCKS_BEHIND})",
                )
            )
        if self.peers_up is not None and self.peers_up < self.peers_needed:
            out.append(
                Problem(
                    TOO_FEW_PEERS,
                    f"reaches {self.peers_up} peers, needs {self.peers_needed} to take part in "
                    "consensus",
                )
            )
        offset = self.clock_offset_ms()
        if offset is not None and abs(offset) > self.max_drift_ms:
            out.append(
                Problem(
                    CLOCK_SKEW,
                    f"the clock is {abs(offset)} ms {'ahead of' if offset > 0 else 'behind'} "
                    f"its peers' (tolerance {self.max_drift_ms} ms)",
                )
            )
        self.metrics.healthy.set(0 if out else 1)
        return out
