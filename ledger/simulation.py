"""Deterministic simulation of consensus cores on a faulty network, checking safety and liveness."""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from ledger.consensus import (
    MAX_BUFFERED_PER_VALIDATOR,
    Action,
    Broadcast,
    CommitCertificate,
    ConsensusCore,
    Decide,
    EquivocationEvidence,
    Evidence,
    Persist,
    Proposal,
    ReportEvidence,
    ScheduleTimeout,
    SignerState,
    Step,
    TimeoutConfig,
    Vote,
    VoteKind,
    message_from_wire,
)
from ledger.encoding import decode, encode
from ledger.errors import InvalidCommitCertificate
from ledger.keys import SigningKey

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
    #: every node's buffer for the heights after with votes signed as its old index (F3). None:
    #: the seed chooses.
    byzantine_strategy: Literal["split", "amnesia", "strip", "departing"] | None = None
    #: Simulated time after GST within which every honest node must reach the target.
    liveness_bound_ms: int = 60_000
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


def _with_profile(config: SimulationConfig) -> SimulationConfig:
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


def nodes_for_seed(seed: int) -> int:
    """The default mix: one seed in four runs seven validators, the others four."""
    return 7 if seed % 4 == 3 else 4


def value_for(seed: int, node: int, height: int, round: int) -> bytes:
    return hashlib.sha256(encode(["value", seed, node, height, round])).digest()


def is_acceptable(value: bytes) -> bool:
    return len(value) == 32 and value[0] >= INVALID_BELOW


def _byzantine_value(seed: int, height: int, round: int) -> bytes:
    # Always valid: the attack is more dangerous when honest nodes accept both values.
    attempt = 0
    while True:
        value = hashlib.sha256(encode(["byzantine", seed, height, round, attempt])).digest()
        if is_acceptable(value):
            return value
        attempt += 1


_KEYS: list[SigningKey] = []


def validator_keys(n: int) -> list[SigningKey]:
    while len(_KEYS) < n:
        seed = hashlib.sha256(b"kpledger simulation validator %d" % len(_KEYS)).digest()
        _KEYS.append(SigningKey.from_seed(seed))
    return _KEYS[:n]


class _App:
    """A node's application: its values are valid by their first byte, once it has their block."""

    def __init__(self, seed: int, node: _Node, missing_blocks: bool) -> None:
        self._seed = seed
        self._node = node
        self._missing_blocks = missing_blocks

    def propose_value(self, height: int, round: int) -> bytes | None:
        value = value_for(self._seed, self._node.index, height, round)
        self._node.blocks.add(value)
        return value

    def is_valid(self, height: int, value: bytes) -> bool | None:
        if self._missing_blocks and value not in self._node.blocks:
            return None  # the block is not here (yet)
        return is_acceptable(value)


@dataclass(frozen=True, slots=True)
class _Deliver:
    to: int
    sender: int
    message: Proposal | Vote | CommitCertificate
    #: For a proposal: whether its block comes with it.
    with_block: bool = True


@dataclass(frozen=True, slots=True)
class _BlockArrives:
    """A block reaches a node on its own: late, or fetched from a peer that has it."""

    node: int
    incarnation: int
    height: int
    value: bytes


@dataclass(frozen=True, slots=True)
class _Timer:
    node: int
    incarnation: int
    step: Step
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class _Resend:
    node: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class _Start:
    node: int
    incarnation: int
    height: int


@dataclass(frozen=True, slots=True)
class _Restart:
    node: int


@dataclass(frozen=True, slots=True)
class _Gst:
    pass


_Event = _Deliver | _BlockArrives | _Timer | _Resend | _Start | _Restart | _Gst


class _Node:
    def __init__(self, index: int, key: SigningKey, byzantine: bool) -> None:
        self.index = index
        self.key = key
        self.byzantine = byzantine
        self.core: ConsensusCore | None = None
        self.chain: list[CommitCertificate] = []
        # What is on this node's disk: the encoded SignerState of its last Persist.
        self.persisted: bytes | None = None
        self.up = False
        self.incarnation = 0
        self.cert_replies: dict[tuple[int, int], int] = {}
        #: Values whose block this node holds (lost in a crash), and those it is fetching.
        self.blocks: set[bytes] = set()
        self.fetching: set[bytes] = set()


class Simulation:
    """One seeded run. Every random choice comes from one random.Random(seed)."""

    def __init__(
        self,
        config: SimulationConfig,
        core_class: type[ConsensusCore] = ConsensusCore,
        log: Log | None = None,
    ) -> None:
        self.profile = config.profile
        config = _with_profile(config)
        self.config = config
        self.seed = config.seed
        self.rng = random.Random(config.seed)
        self.core_class = core_class
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
        self.strategy = config.byzantine_strategy or rng.choice(["split", "amnesia"])
        # None: every height.
        split_height = rng.randint(1, 3)
        self.attack_heights = None if self.strategy == "amnesia" else frozenset([split_height])
        self.mirrors: dict[tuple[int, int, int, bytes | None], Vote] = {}
        self.helped: set[tuple[int, int, bytes]] = set()
        others = [i for i in range(self.n) if i != self.byzantine]
        rng.shuffle(others)
        self.attack_side = frozenset(others[: len(others) // 2])
        self.twins: dict[tuple[int, int, int], Proposal | Vote] = {}
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
        self.nodes = [_Node(i, keys[i], i == self.byzantine) for i in range(count)]
        self.honest = [
            node for node in self.nodes if not node.byzantine and node.index not in config.down
        ]
        self.flooded = False

        self.now = 0
        self.seq = 0
        self.queue: list[tuple[int, int, _Event]] = []
        self.target = config.target_height
        self.after_gst = not faults
        # What the checker knows: every decision, every proposed value, every honest signature.
        self.decided: dict[int, bytes] = {}
        self.proposed: dict[int, set[bytes]] = {}
        self.honest_signed: dict[tuple[int, int, int, int], Proposal | Vote] = {}
        self.events = self.delivered = self.dropped = self.duplicated = 0
        self.crashes = self.evidence = 0
        self.without_block = self.fetched = 0
        self.relayed: set[tuple[int, int, bytes]] = set()

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        """The validator set that signs `height`."""
        current = self.sets[0][1]
        for start, keys in self.sets:
            if start <= height:
                current = keys
        return current

    def index_at(self, node: _Node, height: int) -> int | None:
        keys = self.validators_at(height)
        key = node.key.public_bytes
        return keys.index(key) if key in keys else None

    # -- running ---------------------------------------------------------------------------

    def fail(self, what: str) -> SimulationFailure:
        return SimulationFailure(
            f"seed {self.seed} (nodes={self.n}, byzantine={self.byzantine}) at {self.now} ms: "
            f"{what}; replay with: python scripts/simulate.py --seed {self.seed} --nodes {self.n}"
            + ("" if self.profile == "mixed" else f" --profile {self.profile}")
        )

    def run(self) -> SimulationReport:
        for node in self.nodes:
            at = self.rng.randint(0, 200)
            if node.index not in self.config.down:
                self._boot(node, at=at)
        self._push(self.gst, _Gst())
        deadline = self.gst + self.config.liveness_bound_ms
        while self.queue:
            at, _, event = heapq.heappop(self.queue)
            if at > deadline:
                heights = [len(node.chain) for node in self.nodes]
                raise self.fail(
                    f"liveness: honest nodes did not all reach height {self.target} within "
                    f"{self.config.liveness_bound_ms} ms after GST (heights {heights})"
                )
            self.now = at
            self.events += 1
            self._handle(event)
            if self.after_gst and all(len(node.chain) >= self.target for node in self.honest):
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
            evidence=self.evidence,
            set_change_height=self.change_height,
            proposals_without_block=self.without_block,
            blocks_fetched=self.fetched,
        )

    def _push(self, at: int, event: _Event) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, event))

    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log(f"{self.now:>8} ms  {text}")

    def _faulty_now(self) -> bool:
        return self.now < self.gst

    # -- events ----------------------------------------------------------------------------

    def _handle(self, event: _Event) -> None:
        if isinstance(event, _Deliver):
            self._deliver(event)
        elif isinstance(event, _BlockArrives):
            node = self.nodes[event.node]
            node.fetching.discard(event.value)
            if node.up and node.incarnation == event.incarnation and node.core is not None:
                self.fetched += 1
                node.blocks.add(event.value)
                self._say(f"node {node.index} gets the block of {event.value.hex()[:8]}")
                self._execute(node, node.core.on_validity(event.height, event.value, self.now))
        elif isinstance(event, _Timer):
            node = self.nodes[event.node]
            if node.up and node.incarnation == event.incarnation and node.core is not None:
                self._say(
                    f"node {node.index} timeout {event.step.name} h{event.height} r{event.round}"
                )
                actions = node.core.on_timeout(event.step, event.height, event.round, self.now)
                self._execute(node, actions)
        elif isinstance(event, _Resend):
            node = self.nodes[event.node]
            if node.up and node.incarnation == event.incarnation and node.core is not None:
                self._execute(node, node.core.resend(self.now))
                self._sync(node)
                jitter = self.rng.randint(-200, 200)
                self._push(self.now + self.config.resend_ms + jitter, event)
        elif isinstance(event, _Start):
            node = self.nodes[event.node]
            if (
                node.up
                and node.incarnation == event.incarnation
                and node.core is not None
                and node.core.height == event.height
            ):
                self._execute(node, node.core.start(self.now))
        elif isinstance(event, _Restart):
            node = self.nodes[event.node]
            if not node.up:
                self._boot(node, at=self.now)
        else:
            self.after_gst = True
            highest = max(len(node.chain) for node in self.honest)
            self.target = max(self.config.target_height, highest + 1)
            self._say(f"GST: faults stop; every honest node must reach height {self.target}")

    def _boot(self, node: _Node, at: int) -> None:
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
            self.validators_at(height),
            node.key,
            _App(self.seed, node, self.missing_blocks),
            height=height,
            timeouts=self.timeouts,
            state=state,
            next_validators=self.validators_at(height + 1),
        )
        self._say(f"node {node.index} boots at height {node.core.height} (state {state})")
        self._flood(node)
        self._push(
            at + self.rng.randint(0, self.config.resend_ms), _Resend(node.index, node.incarnation)
        )
        self._push(at, _Start(node.index, node.incarnation, node.core.height))

    def _deliver(self, event: _Deliver) -> None:
        node = self.nodes[event.to]
        if not node.up or node.core is None:
            self.dropped += 1
            return
        self.delivered += 1
        message = event.message
        core = node.core
        if (
            isinstance(message, Proposal | Vote)
            and message.height < core.height
            and message.height <= len(node.chain)
        ):
            self._send_certificates(node, event.sender, message.height)
        self._say(f"node {node.index} <- {event.sender}: {_describe(message)}")
        if isinstance(message, Proposal):
            self._receive_block(node, message, event.with_block)
        if (
            node.byzantine
            and self.strategy == "amnesia"
            and isinstance(message, Vote)
            and not self._own(node, message)
            and self._attacking(message.height)
        ):
            self._mirror(node, message)
        if node.byzantine and self.strategy == "strip" and isinstance(message, Proposal):
            self._strip(node, message)
        self._execute(node, core.on_message(message, self.now))

    def _receive_block(self, node: _Node, proposal: Proposal, with_block: bool) -> None:
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
        self._push(
            self.now + delay, _BlockArrives(node.index, node.incarnation, proposal.height, value)
        )

    def _strip(self, node: _Node, proposal: Proposal) -> None:
        """Relay an honest proposal at once to everyone, without its block."""
        key = (proposal.height, proposal.round, proposal.value)
        if self._own(node, proposal) or key in self.relayed:
            return
        self.relayed.add(key)
        for peer in range(len(self.nodes)):
            if peer != node.index:
                self._push(self.now + 1, _Deliver(peer, node.index, proposal, with_block=False))

    def _sync(self, node: _Node) -> None:
        """The node's sync loop: a node that signs nothing (an observer, one that left the set)
        would never be answered with certificates otherwise; it asks a peer that is ahead."""
        ahead = [
            peer
            for peer in self.nodes
            if peer.up and not peer.byzantine and len(peer.chain) > len(node.chain)
        ]
        if ahead:
            self._send_certificates(self.rng.choice(ahead), node.index, len(node.chain) + 1)

    def _send_certificates(self, node: _Node, peer: int, height: int) -> None:
        # The sync path: a peer still working on a height we decided gets its certificates.
        last = node.cert_replies.get((peer, height))
        if last is not None and self.now - last < self.config.resend_ms:
            return
        node.cert_replies[(peer, height)] = self.now
        for h in range(height, min(height + 3, len(node.chain) + 1)):
            self._send(node.index, peer, node.chain[h - 1], extra_delay=self.sync_delay)

    # -- carrying out actions --------------------------------------------------------------

    def _execute(self, node: _Node, actions: list[Action]) -> None:
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
            self._say(f"node {node.index} applies block {next_height - 1}, advances")
            self._push(
                self.now + self.rng.randint(0, self.block_interval),
                _Start(node.index, node.incarnation, next_height),
            )
            actions = core.advance(
                next_height,
                self.validators_at(next_height),
                self.now,
                self.validators_at(next_height + 1),
            )
            self._execute(node, actions)
            self._flood(node)

    def _crash(self, node: _Node) -> None:
        self.crash_budget -= 1
        self.crashes += 1
        node.up = False
        node.core = None
        restart = min(self.now + self.rng.randint(100, 4_000), self.gst)
        self._say(f"node {node.index} CRASHES, restarts at {restart} ms")
        self._push(restart, _Restart(node.index))

    def _apply(self, node: _Node, action: Action) -> bool:
        if isinstance(action, Persist):
            node.persisted = encode(action.state.to_wire())
        elif isinstance(action, Broadcast):
            self._broadcast(node, action.message)
        elif isinstance(action, ScheduleTimeout):
            if action.at_ms < self.now:
                raise self.fail(f"node {node.index} scheduled a timeout in the past")
            self._push(
                action.at_ms,
                _Timer(node.index, node.incarnation, action.step, action.height, action.round),
            )
        elif isinstance(action, Decide):
            self._check_decision(node, action)
            return True
        elif isinstance(action, ReportEvidence):
            self._check_evidence(node, action.evidence)
        return False

    def _own(self, node: _Node, message: Proposal | Vote) -> bool:
        """Signed by this node's key (its index may differ from one validator set to the next)."""
        return self.index_at(node, message.height) == _signer_of(message)

    def _broadcast(self, node: _Node, message: Proposal | Vote | CommitCertificate) -> None:
        # Through the wire format once, as a real node would send it.
        wire = message_from_wire(decode(encode(message.to_wire())))
        if wire != message:
            raise self.fail(f"{type(message).__name__} does not survive its wire encoding")
        own = isinstance(message, Proposal | Vote) and self._own(node, message)
        if isinstance(message, Proposal):
            self.proposed.setdefault(message.height, set()).add(message.value)
        if own and not node.byzantine:
            assert isinstance(message, Proposal | Vote)
            self._check_honest_signature(node, message)
        if own and node.byzantine and self.strategy == "strip" and isinstance(message, Vote):
            return  # it never votes: every honest validator is needed
        if (
            own
            and node.byzantine
            and self.strategy in ("split", "amnesia")
            and isinstance(message, Proposal | Vote)
            and self._attacking(message.height)
        ):
            if self.strategy == "amnesia" and isinstance(message, Vote):
                return  # it votes only through its mirrors
            twin = self._twin(node, message)
            self._say(f"node {node.index} EQUIVOCATES: {_describe(message)} / {_describe(twin)}")
            for peer in range(len(self.nodes)):
                if peer != node.index:
                    self._send(node.index, peer, twin if peer in self.attack_side else message)
            return
        self._say(f"node {node.index} broadcasts {_describe(message)}")
        # A relay carries the block only if the relaying node has it (the node before issue 13
        # F1 relayed without it), and a proposer's own block may reach a peer late.
        with_block = isinstance(message, Proposal) and message.value in node.blocks
        for peer in range(len(self.nodes)):
            if peer != node.index:
                self._send(node.index, peer, message, with_block=with_block)

    def _flood(self, node: _Node) -> None:
        """The departing validator, at its last height, fills every node's buffer for the heights
        after it with votes signed as its old index: the slots of whoever takes that index."""
        if (
            not node.byzantine
            or self.strategy != "departing"
            or self.change_height is None
            or self.flooded
            or node.core is None
            or node.core.height != self.change_height - 1
        ):
            return
        self.flooded = True
        index = self.index_at(node, self.change_height - 1)
        assert index is not None
        junk = _byzantine_value(self.seed, self.change_height, -1)
        for height in range(self.change_height, self.change_height + 3):
            for round in range(MAX_BUFFERED_PER_VALIDATOR):
                for kind in VoteKind:
                    vote = Vote.create(node.key, CHAIN_ID, kind, height, round, junk, index)
                    for peer in range(len(self.nodes)):
                        if peer != node.index:
                            self._push(self.now + 1, _Deliver(peer, node.index, vote))
        self._say(f"node {node.index} FLOODS the heights after {self.change_height - 1}")

    def _attacking(self, height: int) -> bool:
        return self.attack_heights is None or height in self.attack_heights

    def _mirror(self, node: _Node, vote: Vote) -> None:
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
            index = self.index_at(node, vote.height)
            assert index is not None
            mirror = Vote.create(
                node.key, CHAIN_ID, vote.kind, vote.height, vote.round, value, index
            )
            self.mirrors[key] = mirror
        self._send(node.index, vote.validator, mirror)

    def _twin(self, node: _Node, message: Proposal | Vote) -> Proposal | Vote:
        """The byzantine validator's second, conflicting message for the same slot."""
        key = (
            message.height,
            message.round,
            0 if isinstance(message, Proposal) else int(message.kind),
        )
        twin = self.twins.get(key)
        if twin is not None:
            return twin
        other = _byzantine_value(self.seed, message.height, message.round)
        index = self.index_at(node, message.height)
        assert index is not None
        made: Proposal | Vote
        if isinstance(message, Proposal):
            if message.value == other:
                other = _byzantine_value(self.seed, message.height, message.round + 10**6)
            made = Proposal.create(
                node.key, CHAIN_ID, message.height, message.round, other, -1, index
            )
            self.proposed.setdefault(message.height, set()).add(other)
        else:
            value = None if message.value == other else other
            made = Vote.create(
                node.key, CHAIN_ID, message.kind, message.height, message.round, value, index
            )
        self.twins[key] = made
        return made

    def _send(
        self,
        sender: int,
        to: int,
        message: Proposal | Vote | CommitCertificate,
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
                late = _BlockArrives(to, self.nodes[to].incarnation, message.height, message.value)
                self.nodes[to].fetching.add(message.value)
                self._push(self.now + rng.randint(50, 3_000), late)
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
                self._push(
                    self.now + rng.randint(1, 2_000), _Deliver(to, sender, message, with_block)
                )
        self._push(self.now + delay, _Deliver(to, sender, message, with_block))

    # -- the checks ------------------------------------------------------------------------

    def _check_honest_signature(self, node: _Node, message: Proposal | Vote) -> None:
        slot = 0 if isinstance(message, Proposal) else int(message.kind)
        key = (node.index, message.height, message.round, slot)
        earlier = self.honest_signed.setdefault(key, message)
        if earlier != message:
            raise self.fail(
                f"honest validator {node.index} signed two different messages for one slot: "
                f"{_describe(earlier)} and {_describe(message)}"
            )

    def _check_decision(self, node: _Node, decision: Decide) -> None:
        height, value = decision.height, decision.value
        self._say(f"node {node.index} DECIDES h{height} = {value.hex()[:8]}")
        if node.byzantine:
            node.chain.append(decision.certificate)
            return
        if height != len(node.chain) + 1:
            raise self.fail(
                f"node {node.index} decided height {height} with {len(node.chain)} decided: "
                "a decided height changed or was skipped"
            )
        certificate = decision.certificate
        if (certificate.height, certificate.value) != (height, value):
            raise self.fail(f"node {node.index}: the certificate is for another decision")
        try:
            certificate.verify(CHAIN_ID, self.validators_at(height))
        except InvalidCommitCertificate as exc:
            raise self.fail(f"node {node.index}: its decision's certificate: {exc}") from exc
        agreed = self.decided.setdefault(height, value)
        if agreed != value:
            raise self.fail(
                f"agreement: node {node.index} decided {value.hex()[:8]} at height {height}, "
                f"another honest node decided {agreed.hex()[:8]}"
            )
        if value not in self.proposed.get(height, set()) or not is_acceptable(value):
            raise self.fail(f"validity: height {height} decided a value never validly proposed")
        node.chain.append(certificate)

    def _check_evidence(self, node: _Node, evidence: Evidence) -> None:
        self.evidence += 1
        self._say(f"node {node.index} reports evidence against {evidence.validator}")
        first = (
            evidence.vote_a if isinstance(evidence, EquivocationEvidence) else evidence.proposal_a
        )
        keys = self.validators_at(first.height)
        if not evidence.verify(CHAIN_ID, keys):
            raise self.fail(f"node {node.index} reported evidence that does not verify")
        if self.byzantine is None or keys[evidence.validator] != self.validators[self.byzantine]:
            raise self.fail(f"node {node.index} accuses honest validator {evidence.validator}")


def _signer_of(message: Proposal | Vote) -> int:
    return message.proposer if isinstance(message, Proposal) else message.validator


def _describe(message: Proposal | Vote | CommitCertificate) -> str:
    if isinstance(message, Proposal):
        return (
            f"proposal h{message.height} r{message.round} {message.value.hex()[:8]} "
            f"pol {message.pol_round} by {message.proposer}"
        )
    if isinstance(message, Vote):
        value = "nil" if message.value is None else message.value.hex()[:8]
        return (
            f"{message.kind.name.lower()} h{message.height} r{message.round} {value} "
            f"by {message.validator}"
        )
    return f"commit h{message.height} r{message.round} {message.value.hex()[:8]}"


def run_simulation(
    config: SimulationConfig,
    core_class: type[ConsensusCore] = ConsensusCore,
    log: Log | None = None,
) -> SimulationReport:
    """Run one seed; raise SimulationFailure (an AssertionError naming the seed) on any violation."""
    return Simulation(config, core_class, log).run()
