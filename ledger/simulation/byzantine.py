"""The byzantine validator's strategies: equivocating, mirroring votes, stripping blocks, flooding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.consensus import MAX_BUFFERED_PER_VALIDATOR, CommitCertificate, Proposal, Vote, VoteKind
from ledger.simulation.config import CHAIN_ID
from ledger.simulation.nodes import Deliver, Node, byzantine_value, describe

if TYPE_CHECKING:
    from ledger.simulation.run import Simulation


class Adversary:
    """What the one byzantine validator does, by its strategy (SimulationConfig.byzantine_strategy).

    Its plan (strategy, attacked heights, the half of the others that gets its twins) is drawn by
    the simulation with the rest of the fault plan, from the seed.
    """

    def __init__(
        self,
        sim: Simulation,
        strategy: str,
        attack_heights: frozenset[int] | None,
        attack_side: frozenset[int],
    ) -> None:
        self.sim = sim
        self.strategy = strategy
        #: None: every height.
        self.attack_heights = attack_heights
        self.attack_side = attack_side
        self.mirrors: dict[tuple[int, int, int, bytes | None], Vote] = {}
        self.helped: set[tuple[int, int, bytes]] = set()
        self.twins: dict[tuple[int, int, int], Proposal | Vote] = {}
        self.relayed: set[tuple[int, int, bytes]] = set()
        self.flooded = False

    def on_receive(self, node: Node, message: Proposal | Vote | CommitCertificate) -> None:
        """The byzantine node got `message` from a peer (before its core sees it)."""
        if (
            self.strategy == "amnesia"
            and isinstance(message, Vote)
            and not self.sim.own(node, message)
            and self.attacking(message.height)
        ):
            self.mirror(node, message)
        if self.strategy == "strip" and isinstance(message, Proposal):
            self.strip(node, message)

    def intercepts(self, node: Node, message: Proposal | Vote | CommitCertificate) -> bool:
        """The byzantine node's core broadcasts its own `message`: True when the adversary sends
        something else instead (nothing, or a twin to one half), False to send it as it is."""
        if self.strategy == "strip" and isinstance(message, Vote):
            return True  # it never votes: every honest validator is needed
        if (
            self.strategy in ("split", "amnesia", "double")
            and isinstance(message, Proposal | Vote)
            and self.attacking(message.height)
        ):
            if self.strategy == "amnesia" and isinstance(message, Vote):
                return True  # it votes only through its mirrors
            twin = self.twin(node, message)
            self.sim.say(f"node {node.index} EQUIVOCATES: {describe(message)} / {describe(twin)}")
            for peer in range(len(self.sim.nodes)):
                if peer == node.index:
                    continue
                if self.strategy == "double":  # both to everyone: a plain double signer
                    self.sim.send(node.index, peer, message)
                    self.sim.send(node.index, peer, twin)
                else:
                    self.sim.send(node.index, peer, twin if peer in self.attack_side else message)
            return True
        return False

    def strip(self, node: Node, proposal: Proposal) -> None:
        """Relay an honest proposal at once to everyone, without its block."""
        key = (proposal.height, proposal.round, proposal.value)
        if self.sim.own(node, proposal) or key in self.relayed:
            return
        self.relayed.add(key)
        for peer in range(len(self.sim.nodes)):
            if peer != node.index:
                self.sim.push(
                    self.sim.now + 1, Deliver(peer, node.index, proposal, with_block=False)
                )

    def flood(self, node: Node) -> None:
        """The departing validator, at its last height, fills every node's buffer for the heights
        after it with votes signed as its old index: the slots of whoever takes that index."""
        if (
            not node.byzantine
            or self.strategy != "departing"
            or self.sim.change_height is None
            or self.flooded
            or node.core is None
            or node.core.height != self.sim.change_height - 1
        ):
            return
        self.flooded = True
        index = self.sim.index_at(node, self.sim.change_height - 1)
        assert index is not None
        junk = byzantine_value(self.sim.seed, self.sim.change_height, -1)
        for height in range(self.sim.change_height, self.sim.change_height + 3):
            for round in range(MAX_BUFFERED_PER_VALIDATOR):
                for kind in VoteKind:
                    vote = Vote.create(node.key, CHAIN_ID, kind, height, round, junk, index)
                    for peer in range(len(self.sim.nodes)):
                        if peer != node.index:
                            self.sim.push(self.sim.now + 1, Deliver(peer, node.index, vote))
        self.sim.say(f"node {node.index} FLOODS the heights after {self.sim.change_height - 1}")

    def attacking(self, height: int) -> bool:
        return self.attack_heights is None or height in self.attack_heights

    def mirror(self, node: Node, vote: Vote) -> None:
        """The byzantine validator tells an honest voter that it voted the same way, except that
        it helps only the first precommitter of a value towards a decision."""
        value = vote.value
        if vote.kind is VoteKind.PRECOMMIT and value is not None:
            helped = (vote.height, vote.round, value)
            if helped in self.helped:
                value = None
            self.helped.add(helped)
        key = (vote.height, vote.round, int(vote.kind), value)
        mirror = self.mirrors.get(key)
        if mirror is None:
            index = self.sim.index_at(node, vote.height)
            if index is None:
                return  # no longer a validator (evidence removed it)
            mirror = Vote.create(
                node.key, CHAIN_ID, vote.kind, vote.height, vote.round, value, index
            )
            self.mirrors[key] = mirror
        self.sim.send(node.index, vote.validator, mirror)

    def twin(self, node: Node, message: Proposal | Vote) -> Proposal | Vote:
        """The byzantine validator's second, conflicting message for the same slot."""
        key = (
            message.height,
            message.round,
            0 if isinstance(message, Proposal) else int(message.kind),
        )
        twin = self.twins.get(key)
        if twin is not None:
            return twin
        other = self.sim.twin_value(node, message)
        index = self.sim.index_at(node, message.height)
        assert index is not None
        made: Proposal | Vote
        if isinstance(message, Proposal):
            made = Proposal.create(
                node.key, CHAIN_ID, message.height, message.round, other, -1, index
            )
            self.sim.checker.proposed.setdefault(message.height, set()).add(other)
        else:
            value = None if message.value == other else other
            made = Vote.create(
                node.key, CHAIN_ID, message.kind, message.height, message.round, value, index
            )
        self.twins[key] = made
        return made
