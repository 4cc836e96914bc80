"""Deterministic simulation of consensus cores on a faulty network, checking safety and liveness.

The parts: `config` (what a run is asked and what it reports), `nodes` (the simulated nodes, their
values and application, the scheduled events), `run` (the fault plan, the event loop and the
network), `byzantine` (the byzantine validator's strategies) and `checks` (the checker). Under
`SimulationConfig.governance`, `governance` runs the real ledger under the cores (`ledger_node`:
the genesis and each node's chain) while `authorities` change the validator set.
"""

from ledger.consensus import ConsensusCore
from ledger.simulation.config import (
    CHAIN_ID,
    Log,
    SimulationConfig,
    SimulationFailure,
    SimulationReport,
    governance_nodes_for_seed,
    nodes_for_seed,
)
from ledger.simulation.governance import GovernanceSimulation
from ledger.simulation.nodes import is_acceptable, validator_keys, value_for
from ledger.simulation.run import Simulation

__all__ = [
    "CHAIN_ID",
    "GovernanceSimulation",
    "Simulation",
    "SimulationConfig",
    "SimulationFailure",
    "SimulationReport",
    "governance_nodes_for_seed",
    "is_acceptable",
    "nodes_for_seed",
    "run_simulation",
    "validator_keys",
    "value_for",
]


def run_simulation(
    config: SimulationConfig,
    core_class: type[ConsensusCore] = ConsensusCore,
    log: Log | None = None,
) -> SimulationReport:
    """Run one seed; raise SimulationFailure (an AssertionError naming the seed) on any violation."""
    kind = GovernanceSimulation if config.governance else Simulation
    return kind(config, core_class, log).run()
