"""The checker: agreement, validity, certificates, evidence and honest signatures, after every action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.consensus import Decide, EquivocationEvidence, Evidence, Proposal, Vote
from ledger.errors import InvalidCommitCertificate
from ledger.simulation.config import CHAIN_ID
from ledger.simulation.nodes import Node, describe

if TYPE_CHECKING:
    from ledger.simulation.run import Simulation


class Checker:
    """What the checker knows: every decision, every proposed value, every honest signature."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.decided: dict[int, bytes] = {}
        self.proposed: dict[int, set[bytes]] = {}
        self.honest_signed: dict[tuple[int, int, int, int], Proposal | Vote] = {}
        self.evidence = 0

    def honest_signature(self, node: Node, message: Proposal | Vote) -> None:
        slot = 0 if isinstance(message, Proposal) else int(message.kind)
        key = (node.index, message.height, message.round, slot)
        earlier = self.honest_signed.setdefault(key, message)
        if earlier != message:
            raise self.sim.fail(
                f"honest validator {node.index} signed two different messages for one slot: "
                f"{describe(earlier)} and {describe(message)}"
            )

    def decision(self, node: Node, decision: Decide) -> None:
        height, value = decision.height, decision.value
        self.sim.say(f"node {node.index} DECIDES h{height} = {value.hex()[:8]}")
        if node.byzantine:
            node.chain.append(decision.certificate)
            return
        if height != len(node.chain) + 1:
            raise self.sim.fail(
                f"node {node.index} decided height {height} with {len(node.chain)} decided: "
                "a decided height changed or was skipped"
            )
        certificate = decision.certificate
        if (certificate.height, certificate.value) != (height, value):
            raise self.sim.fail(f"node {node.index}: the certificate is for another decision")
        try:
            certificate.verify(CHAIN_ID, self.sim.validators_at(height))
        except InvalidCommitCertificate as exc:
            raise self.sim.fail(f"node {node.index}: its decision's certificate: {exc}") from exc
        agreed = self.decided.setdefault(height, value)
        if agreed != value:
            raise self.sim.fail(
                f"agreement: node {node.index} decided {value.hex()[:8]} at height {height}, "
                f"another honest node decided {agreed.hex()[:8]}"
            )
        if value not in self.proposed.get(height, set()) or not self.sim.acceptable(value):
            raise self.sim.fail(f"validity: height {height} decided a value never validly proposed")
        node.chain.append(certificate)

    def evidence_report(self, node: Node, evidence: Evidence) -> None:
        self.evidence += 1
        self.sim.say(f"node {node.index} reports evidence against {evidence.validator}")
        first = (
            evidence.vote_a if isinstance(evidence, EquivocationEvidence) else evidence.proposal_a
        )
        keys = self.sim.validators_at(first.height)
        if not evidence.verify(CHAIN_ID, keys):
            raise self.sim.fail(f"node {node.index} reported evidence that does not verify")
        if (
            self.sim.byzantine is None
            or keys[evidence.validator] != self.sim.validators[self.sim.byzantine]
        ):
            raise self.sim.fail(f"node {node.index} accuses honest validator {evidence.validator}")
