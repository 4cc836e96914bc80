"""One seeded run of consensus cores on a faulty network: the fault plan, the event loop, the nodes'
actions carried out, and the network that drops, delays and duplicates."""

from __future__ import annotations

import heapq
import random

from ledger.consensus import (
    Action,
    Application,
    Broadcast,
    CommitCertificate,
    ConsensusCore,
    Decide,
    Evidence,
    Persist,
    Proposal,
    ReportEvidence,
    ScheduleTimeout,
    SignerState,
    TimeoutConfig,
    Vote,
    message_from_wire,
)
from ledger.encoding import decode, encode
from ledger.events import Event
from ledger.simulation.byzantine import Adversary
from ledger.simulation.checks import Checker
from ledger.simulation.config import (
    CHAIN_ID,
    MAX_DELAY_MS,
    Log,
    SimulationConfig,
    SimulationFailure,
    SimulationReport,
    with_profile,
)
from ledger.simulation.nodes import (
    BlockArrives,
    Deliver,
    Gst,
    Node,
    OpaqueApp,
    Resend,
    Restart,
    ScheduledEvent,
    Start,
    Timer,
    byzantine_value,
    describe,
    is_acceptable,
    signer_of,
    validator_keys,
)


class Simulation:
    """One seeded run. Every random choice comes from one random.Random(seed)."""

    def __init__(
        self,
        config: SimulationConfig,
        core_class: type[ConsensusCore] = ConsensusCore,
        log: Log | None = None,
    ) -> None:
        self.profile = config.profile
        config = with_profile(config)
        self.config = config
        self.seed = config.seed
        self.rng = random.Random(config.seed)
        self.core_class = core_class
        self.liveness_bound_ms = config.liveness_bound_ms or (
            180_000 if config.governance else 60_000
        )
        self.log = log
        self.n = config.nodes
        # One key more than validators: the validator that joins at the set change, if any.
        keys = validator_keys(self.n + 1)
        self.validators = tuple(k.public_bytes for k in keys[: self.n])
        rng = self.rng
        byzantine = config.byzantine
        if config.down:
            if byzantine or len(config.down) > (self.n - 1) // 3:
                raise ValueError("down validators and a byzantine one must be at most f together")
            byzantine = False
        if byzantine is None:
            byzantine = config.faults and rng.random() < 0.35
        self.byzantine: int | None = rng.randrange(self.n) if byzantine else None

        # The fault plan, all drawn up front from the seed.
        faults = config.faults
        self.gst = rng.randint(2_000, 8_000) if faults else 0
        self.drop_p = rng.choice([0.0, 0.05, 0.15, 0.3]) if faults else 0.0
        if faults and config.drop_rate is not None:
            self.drop_p = config.drop_rate
        self.dup_p = rng.choice([0.0, 0.05, 0.2]) if faults else 0.0
        self.long_delay_p = rng.choice([0.0, 0.02, 0.1]) if faults else 0.0
        self.crash_p = rng.choice([0.0, 0.003, 0.01]) if faults else 0.0
        self.crash_budget = rng.randint(1, 4)
        self.sync_delay = rng.choice([0, 0, 300, 1500])
        if config.sync_delay_ms is not None:
            self.sync_delay = config.sync_delay_ms
        self.block_interval = rng.choice([100, 500, 1500])
        # Delays comparable to the timeouts make rounds fail: that is where the lock rules work.
        self.max_delay = rng.choice([MAX_DELAY_MS, 250, 800]) if faults else MAX_DELAY_MS
        if faults and config.max_delay_ms is not None:
            self.max_delay = config.max_delay_ms
        self.timeouts = config.timeouts
        if self.timeouts is None:
            base = rng.choice([100, 300, 1000])
            self.timeouts = TimeoutConfig(base, base // 2, base, base // 2, base, base // 2)
        self.partition: tuple[int, int, frozenset[int]] | None = None
        if faults and rng.random() < 0.5:
            start = rng.randint(0, self.gst)
            end = rng.randint(start, self.gst)
            side = frozenset(rng.sample(range(self.n), rng.randint(1, self.n - 1)))
            self.partition = (start, end, side)
        self.strategy: str = config.byzantine_strategy or rng.choice(["split", "amnesia"])
        # None: every height.
        split_height = rng.randint(1, 3)
        attack_heights = None if self.strategy == "amnesia" else frozenset([split_height])
        others = [i for i in range(self.n) if i != self.byzantine]
        rng.shuffle(others)
        attack_side = frozenset(others[: len(others) // 2])
        # Drawn after the plan above, so that it stays what it was for each seed.
        if config.byzantine_strategy is None and self.byzantine is not None:
            self.strategy = rng.choice([self.strategy, self.strategy, "strip", "departing"])
        missing = config.missing_blocks
        if missing is None:
            missing = faults and rng.random() < 0.5
        self.missing_blocks = missing or self.strategy == "strip"
        self.missing_p = rng.choice([0.1, 0.3, 0.6]) if missing and faults else 0.0
        change = config.set_change
        if change is None:
            change = faults and rng.random() < 0.35
        change = change or (self.byzantine is not None and self.strategy == "departing")
        # validator sets by the height from which they sign
        self.sets: list[tuple[int, tuple[bytes, ...]]] = [(1, self.validators)]
        self.change_height: int | None = None
        count = self.n
        if change:
            self.change_height = rng.randint(2, 3)
            if self.byzantine is not None and self.strategy == "departing":
                leaver = self.byzantine
            else:
                leaver = rng.choice([i for i in range(self.n) if i != self.byzantine])
            joined = tuple(k for i, k in enumerate(self.validators) if i != leaver)
            self.sets.append((self.change_height, (*joined, keys[self.n].public_bytes)))
            count += 1
        self.nodes = [Node(i, keys[i], i == self.byzantine) for i in range(count)]
        self.honest = [
            node for node in self.nodes if not node.byzantine and node.index not in config.down
        ]

        self.now = 0
        self.seq = 0
        self.queue: list[tuple[int, int, ScheduledEvent]] = []
        self.target = config.target_height
        self.after_gst = not faults
        self.adversary = Adversary(self, self.strategy, attack_heights, attack_side)
        self.checker = Checker(self)
        self.events = self.delivered = self.dropped = self.duplicated = 0
        self.crashes = 0
        self.without_block = self.fetched = 0

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        """The validator set that signs `height`."""
        current = self.sets[0][1]
        for start, keys in self.sets:
            if start <= height:
                current = keys
        return current

    def index_at(self, node: Node, height: int) -> int | None:
        keys = self.validators_at(height)
        key = node.key.public_bytes
        return keys.index(key) if key in keys else None

    # -- what the chain under the cores decides (OpaqueApp here; the real ledger in
    # -- governance.GovernanceSimulation) -------------------------------------------------

    def application(self, node: Node) -> Application:
        return OpaqueApp(self.seed, node, self.missing_blocks)

    def signing_set(self, node: Node, height: int) -> tuple[bytes, ...]:
        """The validators `node` gives its core for `height` (after applying the block before)."""
        return self.validators_at(height)

    def expected_set(self, node: Node, height: int) -> tuple[bytes, ...]:
        """The validators `node` expects at `height`, the one after its current height."""
        return self.validators_at(height)

    def acceptable(self, value: bytes) -> bool:
        """Whether a decided value is one a correct proposer could have proposed (validity)."""
        return is_acceptable(value)

    def twin_value(self, node: Node, message: Proposal | Vote) -> bytes:
        """The value of the byzantine validator's second message for the slot of `message`."""
        other = byzantine_value(self.seed, message.height, message.round)
        if isinstance(message, Proposal) and message.value == other:
            other = byzantine_value(self.seed, message.height, message.round + 10**6)
        return other

    def on_decide(self, node: Node, decision: Decide) -> None:
        """`node` decided (the checker took it): the block is applied with the decision."""

    def on_evidence(self, node: Node, evidence: Evidence) -> None:
        """`node`'s core found equivocation (the checker took it)."""

    def on_resend(self, node: Node) -> None:
        """`node`'s resend timer fired (after its core's resend)."""

    def on_event(self, node: Node, event: Event) -> None:
        """A signed ledger event gossiped to `node`: only a simulation of the ledger sends any."""
        raise self.fail(f"node {node.index} got a ledger event in a simulation without one")

    def finished(self) -> bool:
        """After GST: the run has shown liveness."""
        return all(len(node.chain) >= self.target for node in self.honest)

    def unfinished(self) -> str:
        """For a liveness failure: what else was not done."""
        return ""

    # -- running ---------------------------------------------------------------------------

    def fail(self, what: str) -> SimulationFailure:
        return SimulationFailure(
            f"seed {self.seed} (nodes={self.n}, byzantine={self.byzantine}) at {self.now} ms: "
            f"{what}; replay with: python scripts/simulate.py --seed {self.seed} --nodes {self.n}"
            + ("" if self.profile == "mixed" else f" --profile {self.profile}")
            + (" --governance" if self.config.governance else "")
            + "".join(f" --down {i}" for i in self.config.down)
        )

    def run(self) -> SimulationReport:
        for node in self.nodes:
            at = self.rng.randint(0, 200)
            if node.index not in self.config.down:
                self._boot(node, at=at)
        self.push(self.gst, Gst())
        deadline = self.gst + self.liveness_bound_ms
        while self.queue:
            at, _, event = heapq.heappop(self.queue)
            if at > deadline:
                heights = [len(node.chain) for node in self.nodes]
                raise self.fail(
                    f"liveness: honest nodes did not all reach height {self.target} within "
                    f"{self.liveness_bound_ms} ms after GST (heights {heights})" + self.unfinished()
                )
            self.now = at
            self.events += 1
            self._handle(event)
            if self.after_gst and self.finished():
                return self._report()
        raise self.fail("the event queue ran dry")  # pragma: no cover - resend timers never stop

    def _report(self) -> SimulationReport:
        rounds = [cert.round for node in self.honest for cert in node.chain]
        return SimulationReport(
            seed=self.seed,
            nodes=self.n,
            byzantine=self.byzantine,
            gst_ms=self.gst,
            finished_ms=self.now,
            height=min(len(node.chain) for node in self.honest),
            max_round=max(rounds, default=0),
            events=self.events,
            delivered=self.delivered,
            dropped=self.dropped,
            duplicated=self.duplicated,
            crashes=self.crashes,
            evidence=self.checker.evidence,
            set_change_height=self.change_height,
            proposals_without_block=self.without_block,
            blocks_fetched=self.fetched,
        )

    def push(self, at: int, event: ScheduledEvent) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, event))

    def say(self, text: str) -> None:
        if self.log is not None:
            self.log(f"{self.now:>8} ms  {text}")

    def _faulty_now(self) -> bool:
        return self.now < self.gst

    # -- events ----------------------------------------------------------------------------

    def _handle(self, event: ScheduledEvent) -> None:
        if isinstance(event, Deliver):
            self._deliver(event)
        elif isinstance(event, BlockArrives):
            node = self.nodes[event.node]
            node.fetching.discard(event.value)
            if node.up and node.incarnation == event.incarnation and node.core is not None:
                self.fetched += 1
                node.blocks.add(event.value)
                self.say(f"node {node.index} gets the block of {event.value.hex()[:8]}")
                self._execute(node, node.core.on_validity(event.height, event.value, self.now))
        elif isinstance(event, Timer):
            node = self.nodes[event.node]
            if node.up and node.incarnation == event.incarnation and node.core is not None:
                self.say(
                    f"node {node.index} timeout {event.step.name} h{event.height} r{event.round}"
                )
                actions = node.core.on_timeout(event.step, event.height, event.round, self.now)
                self._execute(node, actions)
        elif isinstance(event, Resend):
            node = self.nodes[event.node]
            if node.up and node.incarnation == event.incarnation and node.core is not None:
                self._execute(node, node.core.resend(self.now))
                self.on_resend(node)
                self._sync(node)
                jitter = self.rng.randint(-200, 200)
                self.push(self.now + self.config.resend_ms + jitter, event)
        elif isinstance(event, Start):
            node = self.nodes[event.node]
            if (
                node.up
                and node.incarnation == event.incarnation
                and node.core is not None
                and node.core.height == event.height
            ):
                self._execute(node, node.core.start(self.now))
        elif isinstance(event, Restart):
            node = self.nodes[event.node]
            if not node.up:
                self._boot(node, at=self.now)
        else:
            self.after_gst = True
            highest = max(len(node.chain) for node in self.honest)
            self.target = max(self.config.target_height, highest + 1)
            self.say(f"GST: faults stop; every honest node must reach height {self.target}")

    def _boot(self, node: Node, at: int) -> None:
        """Start (or restart) a node from what is on its disk: its chain and its signer state."""
        node.incarnation += 1
        node.up = True
        state = None
        # The blocks it held were in memory; those it proposed it can build again.
        node.blocks.clear()
        node.fetching.clear()
        if node.persisted is not None:
            state = SignerState.from_wire(decode(node.persisted))
            node.blocks.update(m.value for m in state.signed if isinstance(m, Proposal))
        height = len(node.chain) + 1
        node.core = self.core_class(
            CHAIN_ID,
            self.signing_set(node, height),
            node.key,
            self.application(node),
            height=height,
            timeouts=self.timeouts,
            state=state,
            next_validators=self.expected_set(node, height + 1),
        )
        self.say(f"node {node.index} boots at height {node.core.height} (state {state})")
        self.adversary.flood(node)
        self.push(
            at + self.rng.randint(0, self.config.resend_ms), Resend(node.index, node.incarnation)
        )
        self.push(at, Start(node.index, node.incarnation, node.core.height))

    def _deliver(self, event: Deliver) -> None:
        node = self.nodes[event.to]
        if not node.up or node.core is None:
            self.dropped += 1
            return
        self.delivered += 1
        message = event.message
        if isinstance(message, Event):
            self.on_event(node, message)
            return
        core = node.core
        if (
            isinstance(message, Proposal | Vote)
            and message.height < core.height
            and message.height <= len(node.chain)
        ):
            self._send_certificates(node, event.sender, message.height)
        self.say(f"node {node.index} <- {event.sender}: {describe(message)}")
        if isinstance(message, Proposal):
            self._receive_block(node, message, event.with_block)
        if node.byzantine:
            self.adversary.on_receive(node, message)
        self._execute(node, core.on_message(message, self.now))

    def _receive_block(self, node: Node, proposal: Proposal, with_block: bool) -> None:
        """The block comes with the proposal, or the node fetches it from a peer that has it."""
        value = proposal.value
        if value in node.blocks or not self.missing_blocks:
            return
        if with_block:
            node.blocks.add(value)
            return
        self.without_block += 1
        if value in node.fetching:
            return
        holders = [
            peer
            for peer in self.nodes
            if peer is not node and peer.up and value in peer.blocks and not peer.byzantine
        ]
        if not holders:
            return  # nobody has it yet: tried again when the proposal comes again
        rng = self.rng
        if self._faulty_now():
            if rng.random() < self.drop_p:
                return
            delay = rng.randint(1, 2 * self.max_delay)
        else:
            delay = rng.randint(2, 2 * MAX_DELAY_MS)
        node.fetching.add(value)
        self.push(
            self.now + delay, BlockArrives(node.index, node.incarnation, proposal.height, value)
        )

    def _sync(self, node: Node) -> None:
        """The node's sync loop: a node that signs nothing (an observer, one that left the set)
        would never be answered with certificates otherwise; it asks a peer that is ahead."""
        ahead = [
            peer
            for peer in self.nodes
            if peer.up and not peer.byzantine and len(peer.chain) > len(node.chain)
        ]
        if ahead:
            self._send_certificates(self.rng.choice(ahead), node.index, len(node.chain) + 1)

    def _send_certificates(self, node: Node, peer: int, height: int) -> None:
        # The sync path: a peer still working on a height we decided gets its certificates.
        last = node.cert_replies.get((peer, height))
        if last is not None and self.now - last < self.config.resend_ms:
            return
        node.cert_replies[(peer, height)] = self.now
        for h in range(height, min(height + 3, len(node.chain) + 1)):
            self.send(node.index, peer, node.chain[h - 1], extra_delay=self.sync_delay)

    # -- carrying out actions --------------------------------------------------------------

    def _execute(self, node: Node, actions: list[Action]) -> None:
        cut = len(actions) + 1
        if (
            actions
            and not node.byzantine
            and self._faulty_now()
            and self.crash_budget > 0
            and self.rng.random() < self.crash_p
        ):
            # A crash part-way through carrying out the actions: the disk holds what a prefix
            # of them wrote, the network got what a prefix of them sent.
            cut = self.rng.randint(0, len(actions))
        decided = False
        for i, action in enumerate(actions):
            if i == cut:
                break
            decided |= self._apply(node, action)
        if cut <= len(actions):
            self._crash(node)
            return
        core = node.core
        if decided and core is not None:
            next_height = len(node.chain) + 1
            self.say(f"node {node.index} applies block {next_height - 1}, advances")
            self.push(
                self.now + self.rng.randint(0, self.block_interval),
                Start(node.index, node.incarnation, next_height),
            )
            actions = core.advance(
                next_height,
                self.signing_set(node, next_height),
                self.now,
                self.expected_set(node, next_height + 1),
            )
            self._execute(node, actions)
            self.adversary.flood(node)

    def _crash(self, node: Node) -> None:
        self.crash_budget -= 1
        self.crashes += 1
        node.up = False
        node.core = None
        restart = min(self.now + self.rng.randint(100, 4_000), self.gst)
        self.say(f"node {node.index} CRASHES, restarts at {restart} ms")
        self.push(restart, Restart(node.index))

    def _apply(self, node: Node, action: Action) -> bool:
        if isinstance(action, Persist):
            node.persisted = encode(action.state.to_wire())
        elif isinstance(action, Broadcast):
            self._broadcast(node, action.message)
        elif isinstance(action, ScheduleTimeout):
            if action.at_ms < self.now:
                raise self.fail(f"node {node.index} scheduled a timeout in the past")
            self.push(
                action.at_ms,
                Timer(node.index, node.incarnation, action.step, action.height, action.round),
            )
        elif isinstance(action, Decide):
            self.checker.decision(node, action)
            self.on_decide(node, action)
            return True
        elif isinstance(action, ReportEvidence):
            self.checker.evidence_report(node, action.evidence)
            self.on_evidence(node, action.evidence)
        return False

    def own(self, node: Node, message: Proposal | Vote) -> bool:
        """Signed by this node's key (its index may differ from one validator set to the next)."""
        return self.index_at(node, message.height) == signer_of(message)

    def _broadcast(self, node: Node, message: Proposal | Vote | CommitCertificate) -> None:
        # Through the wire format once, as a real node would send it.
        wire = message_from_wire(decode(encode(message.to_wire())))
        if wire != message:
            raise self.fail(f"{type(message).__name__} does not survive its wire encoding")
        own = isinstance(message, Proposal | Vote) and self.own(node, message)
        if isinstance(message, Proposal):
            self.checker.proposed.setdefault(message.height, set()).add(message.value)
        if own and not node.byzantine:
            assert isinstance(message, Proposal | Vote)
            self.checker.honest_signature(node, message)
        if own and node.byzantine and self.adversary.intercepts(node, message):
            return
        self.say(f"node {node.index} broadcasts {describe(message)}")
        # A relay carries the block only if the relaying node has it (the node before issue 13
        # F1 relayed without it), and a proposer's own block may reach a peer late.
        with_block = isinstance(message, Proposal) and message.value in node.blocks
        for peer in range(len(self.nodes)):
            if peer != node.index:
                self.send(node.index, peer, message, with_block=with_block)

    def send(
        self,
        sender: int,
        to: int,
        message: Proposal | Vote | CommitCertificate | Event,
        extra_delay: int = 0,
        *,
        with_block: bool = True,
    ) -> None:
        rng = self.rng
        delay = rng.randint(1, MAX_DELAY_MS) + extra_delay
        if to == self.byzantine and self.strategy == "strip":
            delay = 1  # the stripper is close to everyone: its relays overtake the proposals
        if with_block and self.missing_p and self._faulty_now() and rng.random() < self.missing_p:
            # The block travels on its own: it comes late, or is lost and fetched.
            with_block = False
            if rng.random() >= self.drop_p and isinstance(message, Proposal):
                late = BlockArrives(to, self.nodes[to].incarnation, message.height, message.value)
                self.nodes[to].fetching.add(message.value)
                self.push(self.now + rng.randint(50, 3_000), late)
        if self._faulty_now():
            delay = rng.randint(1, self.max_delay) + extra_delay
            if self.partition is not None:
                start, end, side = self.partition
                if start <= self.now < end and (sender in side) != (to in side):
                    self.dropped += 1
                    return
            if rng.random() < self.drop_p:
                self.dropped += 1
                return
            if rng.random() < self.long_delay_p:
                delay = rng.randint(300, 4_000)
            if rng.random() < self.dup_p:
                self.duplicated += 1
                self.push(
                    self.now + rng.randint(1, 2_000), Deliver(to, sender, message, with_block)
                )
        self.push(self.now + delay, Deliver(to, sender, message, with_block))
