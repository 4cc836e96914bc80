"""The simulation over the real ledger: blocks built and re-executed by ledger.chain, and governance
changing the validator set (additions with readiness, removals, suspensions, evidence) meanwhile."""

from __future__ import annotations

import random
from dataclasses import replace

from ledger import authoring
from ledger.block import Block
from ledger.chain import Execution, build_block, validate_block
from ledger.consensus import (
    Application,
    ConsensusCore,
    Decide,
    Evidence,
    Proposal,
    Vote,
    proposer_for,
)
from ledger.errors import InvalidCommitCertificate, LedgerError
from ledger.events import Event
from ledger.genesis import validators_hash
from ledger.governance import EVIDENCE, NODE_PREFIX, READY, ProposalRecord, next_registry
from ledger.registry import EventContext
from ledger.simulation.authorities import Authorities, plan_changes
from ledger.simulation.config import CHAIN_ID, Log, SimulationConfig, SimulationReport
from ledger.simulation.ledger_node import (
    BASE_TIME_MS,
    CODES,
    ChainState,
    LedgerNode,
    keys_of,
    make_genesis,
)
from ledger.simulation.nodes import Node, describe, validator_keys
from ledger.simulation.run import Simulation
from ledger.state import Overlay


class LedgerApp:
    """A node's application over the real ledger: it proposes the header hash of a block it
    builds from its mempool, and judges a value by re-executing its block."""

    def __init__(self, sim: GovernanceSimulation, node: Node) -> None:
        self._sim = sim
        self._node = node

    def propose_value(self, height: int, round: int) -> bytes | None:
        return self._sim.build(self._node, height, round)

    def is_valid(self, height: int, value: bytes) -> bool | None:
        return self._sim.judge(self._node, height, value)


class GovernanceSimulation(Simulation):
    """One seeded run with the real ledger under the cores (SimulationConfig.governance).

    Node i is participant CODES[i]'s node; the first `nodes` validate from genesis and one more
    (the newcomer) follows as an observer until governance adds it. Each node has its chain in
    memory (kept across its crashes), executes every final block with ledger.chain, and gives
    its core the validators the register in force names, and those the node expects next
    (node/service/view.py's expected_next_validators). Events travel by gossip over the same faulty network as consensus.
    The checks of Simulation hold (agreement, validity, certificates against the set in force
    at each height, evidence only against the byzantine validator), and besides: every node's
    execution of a height yields the same next validator set, each planned change comes into
    force, and equivocation reported by an honest node removes the offender from the set.
    """

    def __init__(
        self,
        config: SimulationConfig,
        core_class: type[ConsensusCore] = ConsensusCore,
        log: Log | None = None,
    ) -> None:
        # The governance plan has its own stream, so that the fault plan is drawn as ever.
        plan = random.Random(f"kpledger governance {config.seed}")
        strategy = config.byzantine_strategy or plan.choice(
            ["double", "double", "split", "amnesia"]
        )
        config = replace(config, set_change=False, byzantine_strategy=strategy)
        super().__init__(config, core_class, log)
        changes, newcomer = plan_changes(plan, self.n, self.byzantine)
        keys = validator_keys(newcomer + 1)
        self.nodes.append(Node(newcomer, keys[newcomer], False))
        self.honest.append(self.nodes[newcomer])
        self.genesis = make_genesis(keys, self.n)
        self.genesis_hash = self.genesis.hash
        self.ledgers = [LedgerNode(ChainState.from_genesis(self.genesis)) for _ in self.nodes]
        #: Every block any node built, by its value (the header hash): a node that lacks one
        #: fetches it from a peer, as catch-up does.
        self.bodies: dict[bytes, Block] = {}
        #: The validator set that signs each height, as the first node to execute the height
        #: before found it; every other node's execution must agree.
        self.agreed: dict[int, tuple[bytes, ...]] = {1: self.validators}
        self.set_changes = 0
        self.evidence_on_chain = 0
        self.authorities = Authorities(self, plan, changes)

    # -- the validator sets ----------------------------------------------------------------

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        best = max(h for h in self.agreed if h <= height)
        return self.agreed[best]

    def signing_set(self, node: Node, height: int) -> tuple[bytes, ...]:
        chain = self.ledgers[node.index].chain
        if chain.height + 1 != height:
            raise self.fail(f"node {node.index} at height {height} holds {chain.height} blocks")
        return keys_of(chain.registry.validators)

    def expected_set(self, node: Node, height: int) -> tuple[bytes, ...]:
        # The register in force with the passed changes due then (the node's expected_next_validators, node/service/view.py).
        chain = self.ledgers[node.index].chain
        return keys_of(next_registry(chain.registry, {}, {}, height - 1).registry.validators)

    # -- the application -------------------------------------------------------------------

    def application(self, node: Node) -> Application:
        return LedgerApp(self, node)

    def build(self, node: Node, height: int, round: int, *, later_ms: int = 0) -> bytes | None:
        """Propose a block of the node's mempool on its chain; its header hash is the value."""
        ledger = self.ledgers[node.index]
        chain = ledger.chain
        if chain.height + 1 != height:
            return None
        execution = build_block(
            chain,
            chain.registry,
            self.genesis_hash,
            chain.head,
            list(ledger.mempool.values()),
            chain_id=CHAIN_ID,
            time_ms=BASE_TIME_MS + self.now + later_ms,
            proposer=proposer_for(height, round, len(chain.registry.validators)),
        )
        for event, refusal in execution.refused:
            # Refused by the state it would enter (rejected, with the reason): out of the pool.
            self.say(f"node {node.index} drops {describe(event)}: {refusal.code}")
            ledger.mempool.pop(event.event_id, None)
        value = execution.header.hash
        self.bodies[value] = execution.block
        ledger.judged[value] = execution
        node.blocks.add(value)
        return value

    def judge(self, node: Node, height: int, value: bytes) -> bool | None:
        if self.missing_blocks and value not in node.blocks:
            return None  # the block is not here (yet)
        found = self._execute_block(node, height, value)
        return None if found is None else found is not False

    def _execute_block(self, node: Node, height: int, value: bytes) -> Execution | bool | None:
        """The execution of the block named `value` on the node's chain; False when it does not
        execute, None when no such block exists (a byzantine twin's value)."""
        ledger = self.ledgers[node.index]
        if value in ledger.judged:
            return ledger.judged[value] or False
        body = self.bodies.get(value)
        if body is None:
            return None
        chain = ledger.chain
        execution: Execution | None = None
        if body.header.height == height == chain.height + 1:
            try:
                execution = validate_block(
                    chain, chain.registry, self.genesis_hash, chain.head, body, chain_id=CHAIN_ID
                )
            except LedgerError as exc:
                self.say(f"node {node.index} finds block {value.hex()[:8]} invalid: {exc.code}")
        ledger.judged[value] = execution
        return execution or False

    def acceptable(self, value: bytes) -> bool:
        return value in self.bodies  # and the deciding node executed it: on_decide

    def twin_value(self, node: Node, message: Proposal | Vote) -> bytes:
        if isinstance(message, Proposal):
            # A second real block for the height: the same events, another time.
            other = self.build(node, message.height, message.round, later_ms=7)
            if other is not None and other != message.value:
                return other
        return super().twin_value(node, message)

    # -- a final block -----------------------------------------------------------------------

    def on_decide(self, node: Node, decision: Decide) -> None:
        ledger = self.ledgers[node.index]
        chain = ledger.chain
        height, value = decision.height, decision.value
        if chain.height + 1 != height:
            raise self.fail(f"node {node.index} decided height {height} on {chain.height} blocks")
        execution = self._execute_block(node, height, value)
        if not isinstance(execution, Execution):
            raise self.fail(
                f"validity: node {node.index} decided {value.hex()[:8]} at height {height}, "
                "which is no block that executes on its chain"
            )
        if execution.header.hash != value or decision.certificate.value != value:
            raise self.fail(f"node {node.index}: the decided value is not its block's header")
        chain.apply(execution)
        for event in execution.block.events:
            ledger.mempool.pop(event.event_id, None)
        ledger.judged.clear()
        self._recheck_mempool(node)
        next_keys = keys_of(chain.registry.validators)
        known = self.agreed.get(height + 1)
        if known is None:
            if next_keys != self.validators_at(height):
                self.set_changes += 1
                self.say(f"VALIDATORS from height {height + 1}: {len(next_keys)}")
            self.agreed[height + 1] = next_keys
            self.evidence_on_chain += sum(e.type == EVIDENCE for e in execution.block.events)
        elif known != next_keys:
            raise self.fail(
                f"execution: node {node.index}'s block {height} yields another validator set "
                "than another node's did"
            )
        self.authorities.on_final(height, chain.registry)
        self._attest_readiness(node)

    def _attest_readiness(self, node: Node) -> None:
        """A node governance added attests, after each block while it is pending (the node's
        attest_ready in node/service/own_events.py): signed with its node key, naming its head."""
        ledger = self.ledgers[node.index]
        chain = ledger.chain
        key = node.key.public_bytes
        pending = next((v for v in chain.registry.pending_validators if v.node_key == key), None)
        head = chain.head
        if pending is None or head is None or node.byzantine:
            return
        signer = NODE_PREFIX + pending.participant
        if any(e.type == READY and e.signer == signer for e in ledger.mempool.values()):
            return  # one attestation at a time; a stale one is dropped by the next block
        event = authoring.ready(
            CHAIN_ID, pending.participant, node.key, head.height, head.hash, created_ms=self._ms()
        )
        self.submit(node, event, gossip=True)

    def on_evidence(self, node: Node, evidence: Evidence) -> None:
        """Equivocation found: the node puts it on the chain, signed with its node key."""
        if node.byzantine:
            return
        event = authoring.evidence(
            CHAIN_ID, CODES[node.index], node.key, evidence, created_ms=self._ms()
        )
        self.submit(node, event, gossip=True)

    # -- events: admission and gossip --------------------------------------------------------

    def _ms(self) -> int:
        return BASE_TIME_MS + self.now

    def submit(self, node: Node, event: Event, *, gossip: bool) -> str | None:
        """Admit `event` at `node` as node/service/admission.py's Admission.submit does (every rule against its committed
        state); None when accepted (or known), else the refusal's code."""
        ledger = self.ledgers[node.index]
        chain = ledger.chain
        if chain.has_event(event.event_id) or event.event_id in ledger.mempool:
            return None
        head = chain.head
        time_ms = self._ms() if head is None else max(self._ms(), head.time_ms + 1)
        try:
            ctx = EventContext(chain.height + 1, time_ms, CHAIN_ID)
            Overlay(chain).apply(chain.registry, event, ctx, attribute=False)
        except LedgerError as exc:
            self.say(f"node {node.index} refuses {describe(event)}: {exc.code}")
            return exc.code
        ledger.mempool[event.event_id] = event
        self.say(f"node {node.index} accepts {describe(event)}")
        if gossip:
            self._gossip(node, event)
        return None

    def _recheck_mempool(self, node: Node) -> None:
        """After a block, each pending event is checked again against the state now in force
        (Admission.recheck): what no longer applies leaves the pool, as refused."""
        ledger = self.ledgers[node.index]
        pending = list(ledger.mempool.values())
        ledger.mempool.clear()
        for event in pending:
            self.submit(node, event, gossip=False)

    def client_submit(self, event: Event, rng: random.Random, height: int) -> str | None:
        """A client gives `event` to one node that is up and has final block `height` (it waits
        for a node that has seen what the event refers to), one that `rng` draws."""
        nodes = [
            n
            for n in self.nodes
            if n.up
            and not n.byzantine
            and n.core is not None
            and self.ledgers[n.index].chain.height >= height
        ]
        if not nodes:
            return "no node up at that height"
        return self.submit(rng.choice(nodes), event, gossip=True)

    def _gossip(self, node: Node, event: Event) -> None:
        for peer in range(len(self.nodes)):
            if peer != node.index:
                self.send(node.index, peer, event)

    def on_event(self, node: Node, event: Event) -> None:
        self.submit(node, event, gossip=False)

    def on_resend(self, node: Node) -> None:
        # Re-gossip until final: gossip is lost before GST, and a restarted peer forgot nothing
        # durable of ours.
        for event in list(self.ledgers[node.index].mempool.values()):
            self._gossip(node, event)

    def closed_proposal(self, proposal_id: bytes) -> ProposalRecord | None:
        """A proposal no longer open, as the most advanced node's chain records it."""
        chain = max((self.ledgers[n.index].chain for n in self.honest), key=lambda c: c.height)
        return chain.get_proposal(proposal_id)

    # -- the end -----------------------------------------------------------------------------

    def _offender_remains(self) -> bool:
        """An honest node reported the byzantine validator's equivocation and it still signs."""
        if self.checker.evidence == 0 or self.byzantine is None:
            return False
        latest = self.validators_at(max(self.agreed))
        return self.validators[self.byzantine] in latest

    def finished(self) -> bool:
        return self.authorities.done and not self._offender_remains() and super().finished()

    def unfinished(self) -> str:
        what = f"; governance: {self.authorities.describe()}"
        if self._offender_remains():
            what += "; the equivocating validator is still in the set"
        return what

    def _check_final_chains(self) -> None:
        """Every honest node's chain, block by block, against its own record of the sets: each
        final block's header names the set in force at its height, and its commit certificate
        is valid for that set."""
        for node in self.honest:
            chain = self.ledgers[node.index].chain
            if chain.height != len(node.chain):
                raise self.fail(
                    f"node {node.index} decided {len(node.chain)} blocks, holds {chain.height}"
                )
            for height, certificate in enumerate(node.chain, 1):
                header = chain.header(height)
                in_force = chain.validators_at(height)
                assert header is not None
                if header.validators_hash != validators_hash(in_force):
                    raise self.fail(f"node {node.index}: header {height} names another set")
                if certificate.value != header.hash:
                    raise self.fail(f"node {node.index}: certificate {height} is not its header's")
                try:
                    certificate.verify(CHAIN_ID, keys_of(in_force))
                except InvalidCommitCertificate as exc:
                    raise self.fail(f"node {node.index}: block {height}: {exc}") from exc

    def _report(self) -> SimulationReport:
        self._check_final_chains()
        return replace(
            super()._report(),
            set_changes=self.set_changes,
            governance_done=tuple(
                (f"{c.kind} {c.subject}", c.in_force_from or 0) for c in self.authorities.changes
            ),
            evidence_on_chain=self.evidence_on_chain,
        )
