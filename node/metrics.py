"""Prometheus metrics of one node (prometheus-client: the exposition format is its job, not ours)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """Each node process gets its own registry, so tests running several nodes never mix figures."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_accepted = Counter(
            "kpledger_events_accepted_total",
            "Events accepted into the mempool",
            ["type"],
            registry=r,
        )
        self.events_refused = Counter(
            "kpledger_events_refused_total",
            "Events refused, by reason code",
            ["reason"],
            registry=r,
        )
        self.events_final = Counter(
            "kpledger_events_final_total", "Events in final blocks", registry=r
        )
        self.blocks = Counter("kpledger_blocks_total", "Final blocks applied", registry=r)
        self.height = Gauge("kpledger_height", "Height of the latest final block", registry=r)
        self.round = Gauge("kpledger_consensus_round", "Current consensus round", registry=r)
        self.mempool = Gauge("kpledger_mempool_events", "Events waiting for a block", registry=r)
        self.peers_up = Gauge("kpledger_peers_reachable", "Peers that answered lately", registry=r)
        self.finality = Histogram(
            "kpledger_finality_seconds",
            "From an event's admission to its block being final, on the admitting node",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.http = Counter(
            "kpledger_http_requests_total",
            "HTTP requests by route family and status",
            ["family", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "kpledger_http_rate_limited_total",
            "Requests answered 429, by route family (own: the operator's and registered nodes')",
            ["family"],
            registry=r,
        )
        self.connections_refused = Counter(
            "kpledger_connections_refused_total",
            "Connections refused at once, by the cap that refused them",
            ["reason"],
            registry=r,
        )
        self.connections_timed_out = Counter(
            "kpledger_connections_timed_out_total",
            "Connections closed by a deadline (header, keepalive, request)",
            ["phase"],
            registry=r,
        )
        self.peer_untrusted = Counter(
            "kpledger_peer_untrusted_total",
            "Requests to a peer not sent: its TLS certificate is not for the node key the "
            "register lists for it (or its address is not https:// in a TLS network)",
            ["participant"],
            registry=r,
        )
        self.evidence = Counter(
            "kpledger_equivocation_evidence_total", "Equivocations detected", registry=r
        )
        self.proposals_fetched = Counter(
            "kpledger_proposed_blocks_fetched_total",
            "Proposed blocks fetched whole because the proposal named events not yet here",
            registry=r,
        )
        self.pending_writes = Counter(
            "kpledger_pending_writes_total",
            "Synced writes of accepted events to the store (each holds all accepted meanwhile)",
            registry=r,
        )
        self.pending_write_failures = Counter(
            "kpledger_pending_write_failures_total",
            "Writes of accepted events that failed (their clients got 503, nothing was promised)",
            registry=r,
        )
        self.pending_restored = Counter(
            "kpledger_pending_restored_total",
            "Accepted events reloaded from the store at start",
            registry=r,
        )
        self.events_regossiped = Counter(
            "kpledger_events_regossiped_total",
            "Pending events sent again to a peer that may lack them",
            registry=r,
        )
        self.sync_blocks = Counter(
            "kpledger_sync_blocks_total", "Final blocks fetched from peers by catch-up", registry=r
        )
        # What /healthz judges (node/health.py), each as a figure an alert can watch.
        self.healthy = Gauge(
            "kpledger_healthy", "1 when /healthz answers ok, 0 when it lists a problem", registry=r
        )
        self.store_corrupt = Gauge(
            "kpledger_store_corrupt", "1 once a read found the store corrupt", registry=r
        )
        self.store_writable = Gauge(
            "kpledger_store_writable", "0 while the last write to the store failed", registry=r
        )
        self.store_writable.set(1)
        self.store_write_failures = Counter(
            "kpledger_store_write_failures_total", "Writes to the store that failed", registry=r
        )
        self.blocks_behind = Gauge(
            "kpledger_blocks_behind_peers",
            "Blocks between this node's height and the best its peers answered",
            registry=r,
        )
        self.clock_offset = Gauge(
            "kpledger_clock_offset_seconds",
            "How far this node's clock is ahead of its peers' (median of their signed times)",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
