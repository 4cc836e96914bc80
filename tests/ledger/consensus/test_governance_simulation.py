"""The deterministic simulation over the real ledger: governance changes the validator set while the
network drops, delays, duplicates and crashes; safety and liveness hold across the changes."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from ledger.block import Block
from ledger.governance import ADD_VALIDATOR, EVIDENCE, REMOVE_VALIDATOR, SUSPEND
from ledger.simulation import (
    GovernanceSimulation,
    SimulationConfig,
    SimulationFailure,
    governance_nodes_for_seed,
    run_simulation,
)
from ledger.simulation.ledger_node import CODES, keys_of
from ledger.simulation.nodes import Node

ROOT = Path(__file__).resolve().parents[3]


def _config(seed: int, **overrides: object) -> SimulationConfig:
    fields: dict[str, object] = {"seed": seed, "nodes": governance_nodes_for_seed(seed)}
    fields.update(overrides)
    return SimulationConfig(governance=True, **fields)  # type: ignore[arg-type]


def _run(config: SimulationConfig) -> GovernanceSimulation:
    sim = GovernanceSimulation(config)
    sim.run()
    return sim


def _final_registries(sim: GovernanceSimulation) -> list[object]:
    return [sim.ledgers[node.index].chain.registry for node in sim.honest]


def test_governance_changes_the_validator_set_while_the_chain_stays_safe_and_live() -> None:
    kinds: Counter[str] = Counter()
    for seed in range(12):
        sim = _run(_config(seed))
        # The run ended only once every planned change was in force and the honest nodes went
        # on finalising under the final set; every final block was checked against the set in
        # force at its height (_check_final_chains), and the nodes agreed on every set.
        registries = _final_registries(sim)
        assert all(r == registries[0] for r in registries), seed
        registry = sim.ledgers[sim.honest[0].index].chain.registry
        in_set = set(keys_of(registry.validators))
        for change in sim.authorities.changes:
            assert change.in_force_from is not None, (seed, change.describe())
            kinds[change.kind] += 1
            if change.kind == ADD_VALIDATOR:
                assert change.node_key in in_set
            else:
                assert change.node_key not in in_set
            if change.kind == SUSPEND:
                assert not registry.participants[change.subject].active
        heights = [len(node.chain) for node in sim.honest]
        assert min(heights) >= (sim.authorities.done_height or 0) + 3, seed
    assert kinds[ADD_VALIDATOR] == 12
    assert kinds[REMOVE_VALIDATOR] >= 4 and kinds[SUSPEND] >= 4


def test_the_added_validator_enters_only_after_its_readiness_and_then_signs() -> None:
    sim = _run(_config(2))
    add = sim.authorities.changes[0]
    assert add.kind == ADD_VALIDATOR and add.in_force_from is not None
    chain = sim.ledgers[sim.honest[0].index].chain
    entered = add.in_force_from
    # The block before it records the newcomer's readiness, signed with its node key.
    before = sim.bodies[chain.header(entered - 1).hash]  # type: ignore[union-attr]
    assert any(e.type == "validator.ready" for e in before.events)
    assert add.node_key not in keys_of(chain.validators_at(entered - 1))
    honest = sim.honest[0]
    signed = []
    for height, certificate in enumerate(honest.chain, 1):
        keys = keys_of(chain.validators_at(height))
        if height >= entered and add.node_key in keys:
            signed.append(keys.index(add.node_key) in dict(certificate.signatures))
    # Its precommits are in commit certificates of the heights after (not all: a quorum suffices).
    assert signed and any(signed)
    assert signed


def _evidence_block(sim: GovernanceSimulation) -> tuple[int, Block] | None:
    chain = sim.ledgers[sim.honest[0].index].chain
    for height in range(1, chain.height + 1):
        block = sim.bodies[chain.header(height).hash]  # type: ignore[union-attr]
        if any(e.type == EVIDENCE for e in block.events):
            return height, block
    return None


def test_a_validator_that_signs_two_blocks_at_one_height_leaves_the_set_by_its_evidence() -> None:
    acted_on = 0
    for seed in range(6):
        config = _config(seed, byzantine=True, byzantine_strategy="double")
        sim = _run(config)
        assert sim.byzantine is not None
        offender = sim.validators[sim.byzantine]
        found = _evidence_block(sim)
        if sim.checker.evidence == 0:
            assert found is None  # nobody saw both messages: nothing to put on the chain
            continue
        assert found is not None, seed
        height, _ = found
        chain = sim.ledgers[sim.honest[0].index].chain
        # Out of the set from the height after the block that records the evidence, for good,
        # and the participant stays active (only the validator is removed).
        assert offender in keys_of(chain.validators_at(height))
        for later in range(height + 1, chain.height + 1):
            assert offender not in keys_of(chain.validators_at(later))
        assert chain.registry.participants[CODES[sim.byzantine]].active
        acted_on += 1
    assert acted_on >= 3


def test_changes_with_a_validator_down_throughout_keep_the_chain_live() -> None:
    for seed in range(4):
        sim = _run(_config(seed, nodes=5 + seed % 3, down=(seed % 4,)))
        assert sim.authorities.done, seed


class _StaleRegisterSimulation(GovernanceSimulation):
    """Nodes that give their cores genesis's validators forever, ignoring the register."""

    def signing_set(self, node: Node, height: int) -> tuple[bytes, ...]:
        return self.validators

    def expected_set(self, node: Node, height: int) -> tuple[bytes, ...]:
        return self.validators


@pytest.mark.parametrize("seed", [0, 1])
def test_negative_control_a_node_that_ignores_the_register_is_caught(seed: int) -> None:
    with pytest.raises(SimulationFailure, match=r"commit certificate|liveness"):
        _StaleRegisterSimulation(_config(seed)).run()


def test_governance_simulation_is_deterministic() -> None:
    config = _config(5)
    assert run_simulation(config) == run_simulation(config)


def test_simulate_script_runs_governance_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "simulate_script", ROOT / "scripts" / "simulate.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--governance", "--seeds", "2", "--start", "20"]) == 0
    out = capsys.readouterr().out
    assert "passed 2 of 2 seeds" in out and "governance changes in force" in out
