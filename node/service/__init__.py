"""One running node, as parts that each own one concern (LedgerNode in node.py wires them)."""

from node.service.admission import EventStatus
from node.service.node import STOP_FLUSH_S, LedgerNode, now_ms

__all__ = ["STOP_FLUSH_S", "EventStatus", "LedgerNode", "now_ms"]
