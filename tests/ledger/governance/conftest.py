"""Fixtures of the governance tests (defined with the helpers, which other test modules share)."""

from tests.ledger.governance.helpers import chain, full_chain

__all__ = ["chain", "full_chain"]
