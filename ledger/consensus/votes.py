"""What a core heard in one round: its proposals and its prevote and precommit sets."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.consensus.messages import Proposal, Vote, VoteKind


@dataclass(slots=True)
class VoteSet:
    """The prevotes or precommits of one round.

    "2f+1 votes of any value" counts validators, by their first vote. "2f+1 votes for v" counts the
    validators that signed a vote for v, as in the paper: an equivocator's second vote counts for
    its own value too. That is safe (two quorums for different values would still need an honest
    validator to sign both) and it is needed for liveness: a byzantine prevote that completed some
    nodes' proof of lock must also count at the nodes that first saw its twin, or those nodes never
    accept the locked value. A second vote is kept only for a value already signed by f+1
    validators (so one honest did), which bounds what an equivocator can make us store.
    """

    first: dict[int, Vote] = field(default_factory=dict)
    by_value: dict[bytes | None, dict[int, Vote]] = field(default_factory=dict)

    def count(self, value: bytes | None) -> int:
        voters = self.by_value.get(value)
        return 0 if voters is None else len(voters)

    def has(self, vote: Vote) -> bool:
        voters = self.by_value.get(vote.value)
        return voters is not None and voters.get(vote.validator) == vote

    def add(self, vote: Vote, weak_quorum: int) -> Vote | None:
        """Record `vote`; return the validator's earlier, different vote if it equivocates."""
        earlier = self.first.get(vote.validator)
        if earlier is None:
            self.first[vote.validator] = vote
            self.by_value.setdefault(vote.value, {})[vote.validator] = vote
            return None
        if earlier.value == vote.value:
            return None
        voters = self.by_value.get(vote.value)
        if voters is not None and vote.validator not in voters and len(voters) >= weak_quorum:
            voters[vote.validator] = vote
        return earlier

    def remove(self, validator: int) -> None:
        self.first.pop(validator, None)
        for value in list(self.by_value):
            voters = self.by_value[value]
            voters.pop(validator, None)
            if not voters:
                del self.by_value[value]


@dataclass(slots=True)
class RoundRecord:
    """What we heard in one round."""

    proposals: list[Proposal] = field(default_factory=list)
    prevotes: VoteSet = field(default_factory=VoteSet)
    precommits: VoteSet = field(default_factory=VoteSet)
    #: Validators with any message in this round (line 55 counts them).
    senders: set[int] = field(default_factory=set)

    def votes(self, kind: VoteKind) -> VoteSet:
        return self.prevotes if kind is VoteKind.PREVOTE else self.precommits

    def is_empty(self) -> bool:
        return not (self.proposals or self.prevotes.first or self.precommits.first)
