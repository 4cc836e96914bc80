"""Tests of the deterministic simulation of many cores on a faulty network."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import pytest

from ledger.consensus import (
    Application,
    ConsensusCore,
    SignerState,
    TimeoutConfig,
)
from ledger.keys import SigningKey
from ledger.simulation import (
    SimulationConfig,
    SimulationFailure,
    nodes_for_seed,
    run_simulation,
)

# --- the simulation ------------------------------------------------------------------------------


class LockDisabledCore(ConsensusCore):
    """Prevotes any valid proposal, ignoring its lock: the bug the negative control plants."""

    def _lock_allows(self, value: bytes, pol_round: int) -> bool:
        return True


class ForgetfulCore(ConsensusCore):
    """Ignores its persisted signer state on restart: the other bug the checker must catch."""

    def __init__(
        self,
        chain_id: str,
        validators: Sequence[bytes],
        signer: SigningKey | None,
        app: Application,
        height: int,
        timeouts: TimeoutConfig | None = None,
        state: SignerState | None = None,
        *,
        next_validators: Sequence[bytes] | None = None,
    ) -> None:
        super().__init__(
            chain_id,
            validators,
            signer,
            app,
            height,
            timeouts,
            None,
            next_validators=next_validators,
        )


def test_simulation_seeds() -> None:
    reports = [
        run_simulation(SimulationConfig(seed=seed, nodes=nodes_for_seed(seed)))
        for seed in range(300)
    ]
    assert {r.nodes for r in reports} == {4, 7}
    # The faults the seeds were meant to exercise did happen.
    assert sum(r.byzantine is not None for r in reports) > 60
    assert sum(r.crashes for r in reports) > 40
    assert sum(r.dropped for r in reports) > 0 and sum(r.duplicated for r in reports) > 0
    assert sum(r.evidence for r in reports) > 0
    assert max(r.max_round for r in reports) >= 3
    assert all(r.height >= 4 for r in reports)
    # Validator sets changed, proposals came without their blocks and the blocks came later.
    assert sum(r.set_change_height is not None for r in reports) > 60
    assert sum(r.proposals_without_block for r in reports) > 1_000
    assert sum(r.blocks_fetched for r in reports) > 1_000


def test_simulation_survives_the_amnesia_attack() -> None:
    # The plan under which the lock-less core below breaks: the real one holds.
    for seed in range(80):
        run_simulation(SimulationConfig(seed=seed, profile="amnesia"))
    for seed in range(10):
        run_simulation(SimulationConfig(seed=seed, nodes=7, profile="amnesia"))


def test_simulation_survives_proposals_relayed_without_their_blocks() -> None:
    # Issue 13 F1: a byzantine validator relays every honest proposal at once without its block
    # (and never votes, so every honest validator is needed).
    for seed in range(40):
        config = SimulationConfig(seed=seed, byzantine=True, byzantine_strategy="strip")
        assert run_simulation(config).proposals_without_block > 0


def test_simulation_survives_a_departing_validator_filling_the_next_heights() -> None:
    # Issue 13 F3: the validator that leaves the set signs messages for the heights after as its
    # old index, which another validator holds there.
    for seed in range(30):
        config = SimulationConfig(
            seed=seed, nodes=nodes_for_seed(seed), byzantine=True, byzantine_strategy="departing"
        )
        assert run_simulation(config).set_change_height in (2, 3)


class NoSilenceCore(ConsensusCore):
    """Never remembers a silent proposer: every round waits the whole propose timeout."""

    def _note_silence(self, round: int) -> None:
        pass


def test_simulation_a_validator_down_costs_less_than_its_propose_timeouts() -> None:
    # Issue 13 item 7: every fourth height waited out the propose timeout of the absent proposer.
    timeouts = TimeoutConfig(1000, 500, 1000, 500, 1000, 500)
    config = SimulationConfig(seed=1, faults=False, target_height=41, timeouts=timeouts, down=(3,))
    report, slower = run_simulation(config), run_simulation(config, NoSilenceCore)
    assert report.height >= 41 and slower.height >= 41
    # Validator 3 proposes round 0 of 10 of the 40 heights (and some later rounds): simulated
    # time, not wall-clock, so the figures are exact for the seed. Each of those heights saves
    # at least half of its propose timeout.
    assert slower.finished_ms - report.finished_ms > 10 * 500
    with pytest.raises(ValueError):
        run_simulation(SimulationConfig(seed=1, down=(1, 2)))  # two of four is more than f


def test_simulation_is_deterministic() -> None:
    config = SimulationConfig(seed=11, nodes=7, byzantine=True)
    assert run_simulation(config) == run_simulation(config)


def test_simulation_without_faults() -> None:
    for seed in range(5):
        report = run_simulation(SimulationConfig(seed=seed, faults=False, target_height=5))
        assert report.height >= 5 and report.byzantine is None
        assert report.dropped == report.crashes == report.evidence == 0


def _first_failure(core_class: type[ConsensusCore], configs: list[SimulationConfig]) -> str:
    for config in configs:
        try:
            run_simulation(config, core_class)
        except SimulationFailure as exc:
            return str(exc)
    raise AssertionError("the checker found nothing: it cannot be trusted")


def test_negative_control_checker_catches_a_core_without_the_lock_rule() -> None:
    message = _first_failure(
        LockDisabledCore, [SimulationConfig(seed=seed, profile="amnesia") for seed in range(60)]
    )
    # The same seeds pass with the lock rule: it is the rule, not the plan, that fails.
    seed = int(message.split()[1])
    run_simulation(SimulationConfig(seed=seed, profile="amnesia"))
    assert "agreement:" in message and message.startswith("seed ")
    assert "replay with: python scripts/simulate.py --seed" in message
    assert message.endswith("--profile amnesia")


class ImpatientCore(ConsensusCore):
    """Takes "the block is not here yet" for "invalid", as the core did before issue 13 F1."""

    def _is_valid(self, value: bytes) -> bool | None:
        return super()._is_valid(value) is True


def test_negative_control_checker_catches_a_core_that_prevotes_nil_for_a_missing_block() -> None:
    configs = [
        SimulationConfig(seed=seed, byzantine=True, byzantine_strategy="strip")
        for seed in range(40)
    ]
    message = _first_failure(ImpatientCore, configs)
    assert "liveness:" in message


def test_negative_control_checker_catches_a_core_that_forgets_what_it_signed() -> None:
    configs = [SimulationConfig(seed=seed, nodes=nodes_for_seed(seed)) for seed in range(200)]
    message = _first_failure(ForgetfulCore, configs)
    assert "signed two different messages for one slot" in message


def test_simulate_script_runs_seeds_and_reports_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = Path(__file__).resolve().parents[3] / "scripts" / "simulate.py"
    spec = importlib.util.spec_from_file_location("simulate_script", path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--seeds", "3", "--start", "100"]) == 0
    assert "passed 3 of 3 seeds" in capsys.readouterr().out
