"""What the core is given besides messages and the time: the application it asks, its timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ledger.consensus.messages import Step

#: The propose timeout of a round whose proposer was silent in an earlier round (its proposal never
#: reached us, and none has since) is this fraction of the normal one. Timeouts bear on liveness
#: only; the silence is forgotten at the proposer's next proposal (docs/consensus.md).
SILENT_PROPOSER_DIVISOR = 4


class Application(Protocol):
    """What the core asks of the node: values to propose and whether a value is acceptable."""

    def propose_value(self, height: int, round: int) -> bytes | None:
        """A 32-byte value id to propose, or None when there is nothing to propose now."""
        ...

    def is_valid(self, height: int, value: bytes) -> bool | None:
        """True or False once the application has judged the value (re-executed its block);
        None while it cannot tell yet (the block is not here). The core then waits: it neither
        prevotes for the value nor against it until told (`on_validity`) or until the propose
        timeout. "Not here yet" is not "invalid"."""
        ...


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Timeouts grow linearly with the round so that, after GST, some round is long enough."""

    propose_ms: int = 1000
    propose_delta_ms: int = 500
    prevote_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1000
    precommit_delta_ms: int = 500

    def duration(self, step: Step, round: int, *, silent_proposer: bool = False) -> int:
        if step is Step.PROPOSE:
            full = self.propose_ms + self.propose_delta_ms * round
            return full // SILENT_PROPOSER_DIVISOR if silent_proposer else full
        if step is Step.PREVOTE:
            return self.prevote_ms + self.prevote_delta_ms * round
        return self.precommit_ms + self.precommit_delta_ms * round
