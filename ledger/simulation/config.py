"""What a simulation run is asked to do (its configuration) and what it reports, or how it fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from ledger.consensus import TimeoutConfig

CHAIN_ID = "kp-simulation"
#: After GST every message arrives within this many milliseconds.
MAX_DELAY_MS = 60
#: Values whose first byte is below this are invalid (about 6%), so some rounds see nil prevotes.
INVALID_BELOW = 16

Log = Callable[[str], None]


class SimulationFailure(AssertionError):
    """A safety or liveness check failed; the message names the seed to replay."""


Profile = Literal["mixed", "amnesia"]


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    seed: int
    nodes: int = 4
    #: "mixed": the seed draws every fault below that is left as None. "amnesia": the harshest
    #: plan, where Tendermint is safe only thanks to its lock rule: an amnesia attacker, short
    #: timeouts, long delays, lost messages and slow block sync.
    profile: Profile = "mixed"
    #: Every honest node must reach this height, and one more than any had at GST.
    target_height: int = 4
    faults: bool = True
    #: One byzantine validator: None lets the seed decide (about one seed in three).
    byzantine: bool | None = None
    #: "split": at one height it signs two proposals and two votes of each kind and sends each
    #: to one half of the others. "amnesia": at every height it also answers each honest prevote
    #: with its own prevote for the same value, and the first honest precommit for a value with its
    #: precommit for it (later ones get nil), so that one node can decide and the others cannot:
    #: only the lock rule then stops them deciding something else later. "strip": it relays every
    #: honest proposal at once to everyone without its block, and never votes, so every honest
    #: validator is needed and each sees most proposals first without their blocks (issue 13 F1).
    #: "departing": it is the validator that leaves at the set change, and before leaving fills
    #: every node's buffer for the heights after with votes signed as its old index (F3).
    #: "double": at one height it signs two proposals (two real blocks, under the ledger) and two
    #: votes of each kind and sends both to everyone, a plain double signer. None: the seed
    #: chooses ("double" only when asked, or under `governance`).
    byzantine_strategy: Literal["split", "amnesia", "strip", "departing", "double"] | None = None
    #: Simulated time after GST within which every honest node must reach the target (and,
    #: under `governance`, the planned changes be in force). None: 60 s, 180 s under governance.
    liveness_bound_ms: int | None = None
    resend_ms: int = 1000
    #: None lets the seed pick short or long timeouts (short ones make many rounds fail).
    timeouts: TimeoutConfig | None = None
    #: Before GST: the chance that a message is lost, and the longest ordinary delay. None lets
    #: the seed choose.
    drop_rate: float | None = None
    max_delay_ms: int | None = None
    #: Extra delay before a decided node's certificates reach a peer still at that height (block
    #: sync is slower than consensus gossip). None lets the seed choose.
    sync_delay_ms: int | None = None
    #: Proposals that reach a peer without their block (before GST; the block comes later, by a
    #: fetch, or is lost), and relays that never carry one. None lets the seed choose.
    missing_blocks: bool | None = None
    #: At one height a validator leaves the set and a new one (a node that followed as an
    #: observer until then) joins at the end, so the indices after the leaver's shift down.
    #: None lets the seed choose.
    set_change: bool | None = None
    #: Validators that are down from the start to the end (crashed for good): they count
    #: against the f the network tolerates, so at most f of them, and no byzantine one then.
    down: tuple[int, ...] = ()
    #: Run the real ledger under the cores (GovernanceSimulation): every value is the hash of a
    #: block built and re-executed by ledger.chain, and the participants' authorities change the
    #: validator set through governance while the faults go on: a validator added (it enters
    #: once its node attests readiness), one removed, a participant suspended (its validator
    #: leaves), and the byzantine validator's equivocation put on the chain as evidence (it
    #: leaves). Replaces `set_change`; `nodes` counts the genesis validators.
    governance: bool = False


def with_profile(config: SimulationConfig) -> SimulationConfig:
    if config.profile != "amnesia":
        return config
    return replace(
        config,
        byzantine=True if config.byzantine is None else config.byzantine,
        byzantine_strategy=config.byzantine_strategy or "amnesia",
        timeouts=config.timeouts or TimeoutConfig(100, 50, 100, 50, 100, 50),
        drop_rate=0.1 if config.drop_rate is None else config.drop_rate,
        max_delay_ms=config.max_delay_ms or 250,
        sync_delay_ms=2_000 if config.sync_delay_ms is None else config.sync_delay_ms,
    )


@dataclass(frozen=True, slots=True)
class SimulationReport:
    seed: int
    nodes: int
    byzantine: int | None
    gst_ms: int
    finished_ms: int
    height: int
    max_round: int
    events: int
    delivered: int
    dropped: int
    duplicated: int
    crashes: int
    evidence: int
    #: The height from which the second validator set signs, or None.
    set_change_height: int | None = None
    #: Proposals delivered without their block, and blocks that reached a node on their own.
    proposals_without_block: int = 0
    blocks_fetched: int = 0
    #: Under `governance`: the validator set changes in force on the chain, the heights from
    #: which each planned change was in force, and the evidence events the chain recorded.
    set_changes: int = 0
    governance_done: tuple[tuple[str, int], ...] = ()
    evidence_on_chain: int = 0


def nodes_for_seed(seed: int) -> int:
    """The default mix: one seed in four runs seven validators, the others four."""
    return 7 if seed % 4 == 3 else 4


def governance_nodes_for_seed(seed: int) -> int:
    """Under governance, genesis validators by seed: 4, 5, 6, 7 in turn (with 4 only the
    addition keeps the minimum of 4 when the byzantine validator's evidence removes it)."""
    return 4 + seed % 4
