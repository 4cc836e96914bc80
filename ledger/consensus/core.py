"""ConsensusCore: one node's Tendermint state machine (Buchman, Kwon, Milosevic 2018, Algorithm 1)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ledger.consensus.actions import (
    Action,
    Broadcast,
    Decide,
    Persist,
    ReportEvidence,
    ScheduleTimeout,
)
from ledger.consensus.inputs import Application, TimeoutConfig
from ledger.consensus.messages import (
    MAX_HEIGHT,
    VALUE_BYTES,
    CommitCertificate,
    ConflictingProposals,
    EquivocationEvidence,
    Evidence,
    Message,
    Proposal,
    Step,
    Vote,
    VoteKind,
    _is_value,
    _validator_keys,
    proposer_for,
    quorum_size,
    weak_quorum_size,
)
from ledger.consensus.signer import SignerState, _slot
from ledger.consensus.votes import RoundRecord
from ledger.keys import Signer

#: A validator may hold votes in at most this many rounds ahead of ours. CometBFT allows two
#: "catch-up" rounds per peer for the same reason: a byzantine validator must not be able to fill
#: our memory with votes for ever higher rounds, yet f+1 honest validators ahead of us must still be
#: able to pull us up (their latest rounds replace their older ones).
MAX_FUTURE_ROUNDS_PER_VALIDATOR = 2
#: Messages for the next few heights are buffered (a faster node is already there) and replayed
#: when the node advances; each validator gets a fixed number of slots per height.
MAX_BUFFERED_HEIGHTS = 4
MAX_BUFFERED_PER_VALIDATOR = 12
#: An equivocating proposer can sign any number of proposals for a round; two are enough to act on
#: either and to prove the equivocation.
MAX_PROPOSALS_PER_ROUND = 2


class ConsensusCore:
    """One node's Tendermint instance. Every input returns the actions to carry out, in order.

    Line numbers in comments refer to Algorithm 1 of the paper. Values are ids, so the paper's
    id(v) is v itself.
    """

    # Per-height state, (re)set by _reset_height.
    _height: int
    _round: int
    _step: Step
    _locked_round: int
    _locked_value: bytes | None
    _valid_round: int
    _valid_value: bytes | None
    _running: bool
    _resume: bool
    _decision: tuple[bytes, CommitCertificate] | None
    _rounds: dict[int, RoundRecord]
    _future_rounds: dict[int, list[int]]
    _signed: dict[tuple[int, int], Proposal | Vote]
    _scheduled: set[tuple[Step, int]]
    _reported: set[tuple[int, int, int]]
    _known_valid: set[bytes]
    _prevote_timeout_round: int
    _polka_round: int
    _precommit_timeout_round: int

    def __init__(
        self,
        chain_id: str,
        validators: Sequence[bytes],
        signer: Signer | None,
        app: Application,
        height: int,
        timeouts: TimeoutConfig | None = None,
        state: SignerState | None = None,
        *,
        next_validators: Sequence[bytes] | None = None,
    ) -> None:
        if not 1 <= height <= MAX_HEIGHT:
            raise ValueError("heights start at 1")
        self._chain_id = chain_id
        self._signer = signer
        self._app = app
        self._timeouts = timeouts or TimeoutConfig()
        self._validators: tuple[bytes, ...] = ()
        self._next_validators: tuple[bytes, ...] = ()
        self._index: int | None = None
        self._buffer: dict[int, list[tuple[Proposal | Vote, tuple[bytes, ...]]]] = {}
        # Slots are counted per signing key, not per index: a key that leaves the set must not
        # use up the slots of whoever holds its index at the later height.
        self._buffer_slots: Counter[tuple[int, bytes]] = Counter()
        # Proposers whose proposal did not reach us before a propose timeout, and none since.
        self._silent: set[bytes] = set()
        # A state from a later height than ours (the block store lost a block it had applied)
        # waits until we get there, so we never sign against it.
        self._pending_state: SignerState | None = None
        self._out: list[Action] = []
        self._set_validators(validators, next_validators)
        self._reset_height(height)
        if state is not None and state.height >= height:
            self._pending_state = state
            self._restore_if_pending()

    # -- read-only view ----------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    @property
    def round(self) -> int:
        return self._round

    @property
    def step(self) -> Step:
        return self._step

    @property
    def validators(self) -> tuple[bytes, ...]:
        return self._validators

    @property
    def validator_index(self) -> int | None:
        """Our index in the validator set, or None for an observer."""
        return self._index

    @property
    def running(self) -> bool:
        return self._running

    @property
    def decision(self) -> tuple[bytes, CommitCertificate] | None:
        return self._decision

    @property
    def locked(self) -> tuple[int, bytes | None]:
        return (self._locked_round, self._locked_value)

    @property
    def valid(self) -> tuple[int, bytes | None]:
        return (self._valid_round, self._valid_value)

    def current_proposals(self) -> tuple[Proposal, ...]:
        """The proposals received for the current round (at most two: the second is evidence)."""
        record = self._rounds.get(self._round)
        return () if record is None else tuple(record.proposals)

    def signer_state(self) -> SignerState:
        return SignerState(
            height=self._height,
            round=self._round,
            step=self._step,
            locked_round=self._locked_round,
            locked_value=self._locked_value,
            valid_round=self._valid_round,
            valid_value=self._valid_value,
            signed=tuple(self._signed.values()),
        )

    # -- inputs --------------------------------------------------------------------------------

    def start(self, now: int) -> list[Action]:
        """Begin (or, after a restart, resume) the current height. Idempotent."""
        if self._decision is None and not self._running:
            self._ensure_running(now)
            self._run_rules(now)
        return self._take()

    def on_message(self, message: Message, now: int) -> list[Action]:
        """Dispatch any consensus message; evidence is for the node to store, not for the core."""
        if isinstance(message, Proposal):
            return self.on_proposal(message, now)
        if isinstance(message, Vote):
            return self.on_vote(message, now)
        if isinstance(message, CommitCertificate):
            return self.on_commit(message, now)
        return self._take()

    def on_proposal(self, proposal: Proposal, now: int) -> list[Action]:
        if self._accept_proposal(proposal, verified=False, now=now):
            self._run_rules(now)
        return self._take()

    def on_vote(self, vote: Vote, now: int) -> list[Action]:
        if self._accept_vote(vote, verified=False, now=now):
            self._run_rules(now)
        return self._take()

    def on_validity(self, height: int, value: bytes, now: int) -> list[Action]:
        """The application can now judge `value` (its block arrived, or was found bad): the rules
        that waited for it run, and an idle height starts if a valid proposal warrants it."""
        named = any(p.value == value for r in self._rounds.values() for p in r.proposals)
        if height == self._height and named and self._decision is None and self._join(now):
            self._run_rules(now)
        return self._take()

    def on_timeout(self, step: Step, height: int, round: int, now: int) -> list[Action]:
        step = Step(step)
        # Only timeouts we scheduled for where we are now count (lines 57-65).
        if (
            height != self._height
            or round != self._round
            or self._decision is not None
            or not self._running
            or (step, round) not in self._scheduled
        ):
            return self._take()
        if step is Step.PROPOSE and self._step is Step.PROPOSE:
            self._note_silence(round)
            self._step = Step.PREVOTE  # line 57
            self._sign_vote(VoteKind.PREVOTE, None)
        elif step is Step.PREVOTE and self._step is Step.PREVOTE:
            self._step = Step.PRECOMMIT  # line 61
            self._sign_vote(VoteKind.PRECOMMIT, None)
        elif step is Step.PRECOMMIT:
            self._start_round(round + 1, now)  # line 65
        self._run_rules(now)
        return self._take()

    def on_commit(self, certificate: CommitCertificate, now: int) -> list[Action]:
        """A certificate for the current height from gossip or sync decides it at once."""
        if (
            certificate.height == self._height
            and self._decision is None
            and certificate.is_valid(self._chain_id, self._validators)
        ):
            self._decide(certificate)
        return self._take()

    def resend(self, now: int) -> list[Action]:
        """Re-broadcast what peers may have missed: the network drops messages, the algorithm
        assumes eventual delivery between correct processes."""
        if self._decision is not None:
            self._out.append(Broadcast(self._decision[1]))
            return self._take()
        if not self._running:
            return self._take()
        for message in self._signed.values():
            self._out.append(Broadcast(message))
        # Relay the proof of lock behind our valid value and the current proposal: the paper's
        # liveness argument assumes correct processes relay what they received, and the POL may
        # include byzantine prevotes that their signers never send again.
        if self._valid_value is not None:
            record = self._rounds.get(self._valid_round)
            if record is not None:
                for validator, vote in record.prevotes.by_value.get(self._valid_value, {}).items():
                    if validator != self._index:
                        self._out.append(Broadcast(vote))
        current = self._rounds.get(self._round)
        if current is not None:
            for proposal in current.proposals[:1]:
                if proposal.proposer != self._index:
                    self._out.append(Broadcast(proposal))
        return self._take()

    def advance(
        self,
        height: int,
        validators: Sequence[bytes],
        now: int,
        next_validators: Sequence[bytes] | None = None,
    ) -> list[Action]:
        """Move to `height` (the node applied everything below it). The height starts idle.

        `validators` sign `height`; `next_validators` are the set the node expects at the heights
        after it (default: the same), against which messages for those heights are checked
        before they are buffered. Buffered messages are checked again, against the set actually
        in force, when their height comes.
        """
        if height <= self._height:
            raise ValueError(f"cannot advance from height {self._height} to {height}")
        self._set_validators(validators, next_validators)
        self._reset_height(height)
        self._restore_if_pending()
        for buffered_height in sorted(self._buffer):
            if buffered_height < height:
                del self._buffer[buffered_height]
        self._buffer_slots = Counter(
            {slot: c for slot, c in self._buffer_slots.items() if slot[0] > height}
        )
        accepted = False
        for message, checked_against in self._buffer.pop(height, []):
            verified = checked_against == self._validators
            if isinstance(message, Proposal):
                accepted |= self._accept_proposal(message, verified=verified, now=now)
            else:
                accepted |= self._accept_vote(message, verified=verified, now=now)
        if accepted:
            self._run_rules(now)
        return self._take()

    # -- height and restart bookkeeping --------------------------------------------------------

    def _set_validators(
        self, validators: Sequence[bytes], next_validators: Sequence[bytes] | None
    ) -> None:
        keys = _validator_keys(validators)
        self._next_validators = (
            keys if next_validators is None else _validator_keys(next_validators)
        )
        self._silent &= set(keys) | set(self._next_validators)
        self._validators = keys
        self._n = len(keys)
        self._quorum = quorum_size(self._n)
        self._weak_quorum = weak_quorum_size(self._n)
        own = None if self._signer is None else self._signer.public_bytes
        self._index = keys.index(own) if own in keys else None

    def _reset_height(self, height: int) -> None:
        self._height = height
        self._round = 0
        self._step = Step.PROPOSE
        self._locked_round = -1
        self._locked_value = None
        self._valid_round = -1
        self._valid_value = None
        self._running = False
        self._resume = False
        self._decision = None
        self._rounds = {}
        self._future_rounds = {}
        self._signed = {}
        self._scheduled = set()
        self._reported = set()
        self._known_valid = set()
        # Rounds in which the once-per-round upon rules (lines 34, 36, 47) already fired.
        self._prevote_timeout_round = -1
        self._polka_round = -1
        self._precommit_timeout_round = -1

    def _restore_if_pending(self) -> None:
        state = self._pending_state
        if state is None or state.height > self._height:
            return
        self._pending_state = None
        if state.height < self._height:
            return
        self._round = state.round
        self._step = state.step
        self._locked_round, self._locked_value = state.locked_round, state.locked_value
        self._valid_round, self._valid_value = state.valid_round, state.valid_value
        for message in state.signed:
            self._signed[_slot(message)] = message
            if isinstance(message, Proposal):
                self._add_proposal(message)
            else:
                self._add_vote(message)
        self._resume = True

    def _ensure_running(self, now: int) -> None:
        if self._running:
            return
        self._running = True
        if not self._resume:
            self._start_round(0, now)  # line 10: upon start do StartRound(0)
            return
        self._resume = False
        if self._step is Step.PROPOSE:
            # Re-entering the round re-sends our proposal, if we signed one, instead of a new one.
            self._start_round(self._round, now)
            return
        for message in self._signed.values():
            if message.round == self._round:
                self._out.append(Broadcast(message))

    # -- accepting messages --------------------------------------------------------------------

    def _buffer_future(self, message: Proposal | Vote, sender: int) -> None:
        height = message.height
        # Checked against the set expected at those heights, not the current one: a validator
        # whose index changes signs with its new index, and a key that leaves has no slot there.
        expected = self._next_validators
        if height > self._height + MAX_BUFFERED_HEIGHTS or sender >= len(expected):
            return
        queue = self._buffer.setdefault(height, [])
        if any(m == message for m, _ in queue):
            return
        slot = (height, expected[sender])
        if self._buffer_slots[slot] >= MAX_BUFFERED_PER_VALIDATOR:
            return
        # Checked now so a forger cannot use up an honest validator's slots; checked again on
        # replay only if the set in force then is not the one expected.
        if not message.verify(self._chain_id, expected):
            return
        if isinstance(message, Proposal):
            self._silent.discard(expected[sender])
        self._buffer_slots[slot] += 1
        queue.append((message, expected))

    def _accept_proposal(self, proposal: Proposal, *, verified: bool, now: int) -> bool:
        if proposal.height != self._height:
            if proposal.height > self._height:
                self._buffer_future(proposal, proposal.proposer)
            return False
        if self._decision is not None or proposal.proposer >= self._n:
            return False
        record = self._rounds.get(proposal.round)
        if record is not None and proposal in record.proposals:
            return False  # a duplicate: no need to check its signature again
        if not verified and not proposal.verify(self._chain_id, self._validators):
            return False
        self._silent.discard(self._validators[proposal.proposer])
        self._add_proposal(proposal)
        return self._join(now)

    def _accept_vote(self, vote: Vote, *, verified: bool, now: int) -> bool:
        if vote.height != self._height:
            if vote.height > self._height:
                self._buffer_future(vote, vote.validator)
            return False
        if self._decision is not None or vote.validator >= self._n:
            return False
        record = self._rounds.get(vote.round)
        if record is not None and record.votes(vote.kind).has(vote):
            return False  # a duplicate: no need to check its signature again
        if not verified and not vote.verify(self._chain_id, self._validators):
            return False
        self._add_vote(vote)
        return self._join(now)

    def _join(self, now: int) -> bool:
        """Start an idle height when others show there is work at it: a valid proposal, or
        messages from f+1 validators (so from an honest one, which starts a height only when it
        has work). One validator's messages alone, a future-height vote replayed on advance
        for one, do not pull the network into empty rounds. True when running."""
        if not self._running and self._decision is None and self._warrants_start():
            self._ensure_running(now)
        return self._running

    def _warrants_start(self) -> bool:
        senders: set[int] = set()
        for record in self._rounds.values():
            senders |= record.senders
        if len(senders) >= self._weak_quorum:
            return True
        return any(
            self._is_valid(p.value) is True for r in self._rounds.values() for p in r.proposals
        )

    def _record_for(self, round: int, sender: int) -> RoundRecord | None:
        """The record of `round`, or None when `sender` may not take more memory ahead of us."""
        if round > self._round:
            rounds = self._future_rounds.setdefault(sender, [])
            if round not in rounds:
                if len(rounds) >= MAX_FUTURE_ROUNDS_PER_VALIDATOR:
                    lowest = min(rounds)
                    if round < lowest:
                        return None
                    rounds.remove(lowest)
                    self._forget(sender, lowest)
                rounds.append(round)
        record = self._rounds.get(round)
        if record is None:
            record = self._rounds[round] = RoundRecord()
        return record

    def _forget(self, sender: int, round: int) -> None:
        record = self._rounds.get(round)
        if record is None:
            return
        record.proposals = [p for p in record.proposals if p.proposer != sender]
        record.prevotes.remove(sender)
        record.precommits.remove(sender)
        record.senders.discard(sender)
        if record.is_empty():
            del self._rounds[round]

    def _add_proposal(self, proposal: Proposal) -> None:
        record = self._record_for(proposal.round, proposal.proposer)
        if record is None or proposal in record.proposals:
            return
        if record.proposals:
            self._report(ConflictingProposals(record.proposals[0], proposal), proposal.round, 0)
        if len(record.proposals) < MAX_PROPOSALS_PER_ROUND:
            record.proposals.append(proposal)
            record.senders.add(proposal.proposer)

    def _add_vote(self, vote: Vote) -> None:
        record = self._record_for(vote.round, vote.validator)
        if record is None:
            return
        earlier = record.votes(vote.kind).add(vote, self._weak_quorum)
        if earlier is not None:
            self._report(EquivocationEvidence(earlier, vote), vote.round, int(vote.kind))
        record.senders.add(vote.validator)

    def _report(self, evidence: Evidence, round: int, kind: int) -> None:
        key = (evidence.validator, round, kind)
        if key not in self._reported:
            self._reported.add(key)
            self._out.append(ReportEvidence(evidence))

    # -- the upon rules ------------------------------------------------------------------------

    def _run_rules(self, now: int) -> None:
        while self._decision is None:
            if self._try_decide():
                return
            target = self._round_skip_target()
            if target is not None:
                self._start_round(target, now)  # line 55
                continue
            if not self._current_round_rule(now):
                return

    def _try_decide(self) -> bool:
        # Line 49, for any round. We decide on 2f+1 precommits alone, without waiting for the
        # proposal or checking valid(v): values are ids, f+1 of those precommits are honest and
        # were only cast for a valid proposal, and the node fetches the block by its id.
        for record in self._rounds.values():
            for value, voters in record.precommits.by_value.items():
                if value is not None and len(voters) >= self._quorum:
                    self._decide(CommitCertificate.from_precommits(voters.values()))
                    return True
        return False

    def _round_skip_target(self) -> int | None:
        best = None
        for round, record in self._rounds.items():
            if round > self._round and len(record.senders) >= self._weak_quorum:
                best = round if best is None else max(best, round)
        return best

    def _lock_allows(self, value: bytes, pol_round: int) -> bool:
        """Lines 23 and 29: prevote for a value only if not locked on another one since pol_round."""
        return self._locked_round <= pol_round or self._locked_value == value

    def _current_round_rule(self, now: int) -> bool:
        """Fire one rule of the current round if one applies; False when none does."""
        record = self._rounds.get(self._round)
        if record is None:
            return False
        round, quorum = self._round, self._quorum
        if self._step is Step.PROPOSE:
            for proposal in record.proposals:
                pol_round = proposal.pol_round
                if pol_round >= 0 and self._prevotes_for(pol_round, proposal.value) < quorum:
                    continue  # line 28 needs the proof of lock; the propose timeout may fire first
                # Line 22 (no pol_round) or line 28.
                verdict = self._is_valid(proposal.value)
                if verdict is None:
                    continue  # the block is not here yet: wait for it or for the propose timeout
                accept = verdict and self._lock_allows(proposal.value, proposal.pol_round)
                self._step = Step.PREVOTE
                self._sign_vote(VoteKind.PREVOTE, proposal.value if accept else None)
                return True
        if (
            self._step is Step.PREVOTE
            and self._prevote_timeout_round != round
            and len(record.prevotes.first) >= quorum
        ):
            self._prevote_timeout_round = round  # line 34
            self._schedule(Step.PREVOTE, now)
            return True
        if self._step >= Step.PREVOTE and self._polka_round != round:
            for proposal in record.proposals:  # line 36
                if (
                    record.prevotes.count(proposal.value) >= quorum
                    and self._is_valid(proposal.value) is True
                ):
                    self._polka_round = round
                    self._valid_value, self._valid_round = proposal.value, round
                    if self._step is Step.PREVOTE:
                        self._locked_value, self._locked_round = proposal.value, round
                        self._step = Step.PRECOMMIT
                        self._sign_vote(VoteKind.PRECOMMIT, proposal.value)
                    return True
        if self._step is Step.PREVOTE and record.prevotes.count(None) >= quorum:
            self._step = Step.PRECOMMIT  # line 44
            self._sign_vote(VoteKind.PRECOMMIT, None)
            return True
        if record.precommits.count(None) >= quorum:
            # 2f+1 validators precommitted nil: with f < n/3 no value can gather 2f+1 precommits
            # in this round any more, so waiting out timeout_precommit (line 47) could decide
            # nothing. Going on at once is what that timeout would do, only sooner.
            self._start_round(round + 1, now)
            return True
        if self._precommit_timeout_round != round and len(record.precommits.first) >= quorum:
            self._precommit_timeout_round = round  # line 47
            self._schedule(Step.PRECOMMIT, now)
            return True
        return False

    def _prevotes_for(self, round: int, value: bytes) -> int:
        record = self._rounds.get(round)
        return 0 if record is None else record.prevotes.count(value)

    def _is_valid(self, value: bytes) -> bool | None:
        """True, False, or None while the application cannot judge the value yet."""
        # Only "valid" is remembered: a node may lack a block now and have it a moment later.
        if value in self._known_valid:
            return True
        verdict = self._app.is_valid(self._height, value)
        if verdict:
            self._known_valid.add(value)
            return True
        return None if verdict is None else False

    # -- actions -------------------------------------------------------------------------------

    def _start_round(self, round: int, now: int) -> None:
        """StartRound (line 11)."""
        self._round = round
        self._step = Step.PROPOSE
        for rounds in self._future_rounds.values():
            rounds[:] = [r for r in rounds if r > round]
        if self._index is not None and proposer_for(self._height, round, self._n) == self._index:
            value: bytes | None
            if self._valid_value is not None:
                value, pol_round = self._valid_value, self._valid_round
            else:
                value, pol_round = self._app.propose_value(self._height, round), -1
            if value is not None:
                if not _is_value(value):
                    raise ValueError(
                        f"the application proposed a value that is not {VALUE_BYTES} bytes"
                    )
                self._sign_proposal(value, pol_round)
        # The proposer schedules it too: if it had nothing to propose, the round must still end.
        self._schedule(Step.PROPOSE, now)

    def _schedule(self, step: Step, now: int) -> None:
        self._scheduled.add((step, self._round))
        silent = step is Step.PROPOSE and self._proposer_key(self._round) in self._silent
        at_ms = now + self._timeouts.duration(step, self._round, silent_proposer=silent)
        self._out.append(ScheduleTimeout(step, self._height, self._round, at_ms))

    def _proposer_key(self, round: int) -> bytes:
        return self._validators[proposer_for(self._height, round, self._n)]

    def _note_silence(self, round: int) -> None:
        """The propose timeout of `round` fired: remember its proposer if nothing came from it."""
        proposer = proposer_for(self._height, round, self._n)
        record = self._rounds.get(round)
        if proposer == self._index or (record is not None and record.proposals):
            return
        self._silent.add(self._validators[proposer])

    def _sign_proposal(self, value: bytes, pol_round: int) -> None:
        slot = (self._round, 0)
        message = self._signed.get(slot)
        if message is None:
            if self._signer is None or self._index is None:
                return
            message = Proposal.create(
                self._signer,
                self._chain_id,
                self._height,
                self._round,
                value,
                pol_round,
                self._index,
            )
            self._signed[slot] = message
            self._out.append(Persist(self.signer_state()))
        self._out.append(Broadcast(message))
        if isinstance(message, Proposal):
            self._add_proposal(message)

    def _sign_vote(self, kind: VoteKind, value: bytes | None) -> None:
        if self._signer is None or self._index is None:
            return  # an observer follows the steps but never signs
        slot = (self._round, int(kind))
        message = self._signed.get(slot)
        if message is None:
            message = Vote.create(
                self._signer, self._chain_id, kind, self._height, self._round, value, self._index
            )
            self._signed[slot] = message
            # On disk before it can reach anyone: after a crash we must know what we signed.
            self._out.append(Persist(self.signer_state()))
        # else: we signed at this (round, kind) before a restart; send that one again, never a
        # second, different one.
        self._out.append(Broadcast(message))
        if isinstance(message, Vote):
            self._add_vote(message)

    def _decide(self, certificate: CommitCertificate) -> None:
        self._decision = (certificate.value, certificate)
        self._out.append(Decide(self._height, certificate.value, certificate))

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out
