"""Deterministic simulation of consensus cores on a faulty network, checking safety and liveness.

The parts: `config` (what a run is asked and what it reports), `nodes` (the simulated nodes, their
values and application, the scheduled events), `run` (the fault plan, the event loop and the
network), `byzantine` (the byzantine validator's strategies) and `checks` (the checker).
"""

from ledger.simulation.config import (
    CHAIN_ID,
    SimulationConfig,
    SimulationFailure,
    SimulationReport,
    nodes_for_seed,
)
from ledger.simulation.nodes import is_acceptable, validator_keys, value_for
from ledger.simulation.run import Simulation, run_simulation

__all__ = [
    "CHAIN_ID",
    "Simulation",
    "SimulationConfig",
    "SimulationFailure",
    "SimulationReport",
    "is_acceptable",
    "nodes_for_seed",
    "run_simulation",
    "validator_keys",
    "value_for",
]
