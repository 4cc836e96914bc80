"""Admission, suspension, validator changes, evidence, dormant members; the stored register."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ledger import errors
from ledger import governance as gov
from ledger.audit import verify_chain, verify_public_chain
from ledger.consensus import (
    ConflictingProposals,
    Proposal,
)
from ledger.encoding import decode, encode
from ledger.genesis import (
    Genesis,
    Parameters,
    Validator,
)
from ledger.keys import SigningKey
from ledger.records import IMPORT_CONFIRMED, ISSUED
from ledger.registry import Registry
from ledger.store import Store
from tests.helpers import TestNetwork, public_blocks
from tests.ledger.governance.helpers import (
    Chain,
    _double_vote,
    _report,
    _seed,
    admit_args,
    newcomer,
)

# -- admission, suspension, validators ---------------------------------------------------------


def test_an_admitted_participant_trades_from_its_effective_height(chain: Chain) -> None:
    c = chain
    bw = newcomer()
    c.add_member(bw)
    args = admit_args(c, bw, node=True, address="http://127.0.0.1:7704")
    proposal = c.propose(gov.ADMIT, "BW", args, effective=5)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="RU")])
    early = c.commit([c.vote(proposal, by="BW", key=bw.authority)])
    assert [type(x) for _, x in early.refused] == [errors.UnknownParticipant]
    c.until(4)
    participant = c.registry.participant("BW")
    assert participant.node_key == bw.node.public_bytes and participant.active
    assert c.registry.active_count == 5
    issuance = c.net.issue(exporting="BW", importing="BE")
    c.commit([issuance.event])
    c.commit([c.net.confirm(issuance)])
    record = c.store.get_certificate(issuance.event.number)
    assert record is not None and record.status == IMPORT_CONFIRMED


def test_suspension_stops_new_trade_and_keeps_history_and_reinstatement_restores(
    chain: Chain,
) -> None:
    c = chain
    before = c.net.issue(exporting="RU", importing="BE")
    c.commit([before.event])
    c.enact(gov.SUSPEND, "RU")
    refused = c.commit([c.net.issue(exporting="RU", importing="BE").event])
    assert [type(x) for _, x in refused.refused] == [errors.ParticipantNotActive]
    record = c.store.get_certificate(before.event.number)
    assert record is not None and record.status == ISSUED
    c.commit([c.net.confirm(before)])  # the importer still closes the old loop
    # With RU suspended, three participants vote: 2/3 needs all three.
    proposal = c.propose(gov.REINSTATE, "RU")
    c.commit([proposal, c.vote(proposal, by="AE")])
    assert c.store.get_proposal(proposal.event_id).status == gov.OPEN  # type: ignore[union-attr]
    c.commit([c.vote(proposal, by="IN")])
    c.until(c.store.get_proposal(proposal.event_id).effective_height - 1)  # type: ignore[union-attr]
    assert c.registry.participants["RU"].active
    assert not c.commit([c.net.issue(exporting="RU", importing="BE").event]).refused


def test_validator_changes_follow_the_register_and_headers_name_the_next_set(
    full_chain: Chain,
) -> None:
    c = full_chain
    bw = newcomer()
    c.add_member(bw)
    admit = admit_args(c, bw, node=True, address="http://127.0.0.1:7704")
    c.enact(gov.ADMIT, "BW", admit)
    change_height = c.add_validator(bw)
    header = c.store.header(change_height - 1)
    assert header is not None and header.validators_hash != header.next_validators_hash
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "RU", "BW"]
    assert c.store.validator_sets() == [(change_height, c.registry.validators)]
    # Block signed by the four old validators only is not enough for five.
    execution = c.build([])
    with pytest.raises(errors.InvalidCommitCertificate):
        c.sign(execution, signers=[0, 1]).verify(
            c.net.chain_id, [v.node_key for v in c.registry.validators]
        )
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "BW"]
    assert len(c.store.validator_sets()) == 2
    # A light client (the public audit) follows both changes from genesis, and only those.
    c.commit([])
    blocks, sets = public_blocks(c.store), dict(c.store.validator_sets())
    report = verify_public_chain(c.net.genesis, blocks, sets, c.height)
    assert report.ok and report.height_checked == c.height, report.fault
    forged = dict(sets)
    forged[change_height] = (*c.net.genesis.validators, Validator("XX", bytes(32), ""))
    report = verify_public_chain(c.net.genesis, blocks, forged, c.height)
    assert not report.ok and report.height_checked == change_height - 1
    assert f"header {change_height - 1} names next" in (report.fault or "")
    assert not verify_public_chain(c.net.genesis, blocks, {}, c.height).ok


def _network_of(codes: Sequence[str], make_store: Callable[..., Store]) -> Chain:
    net = TestNetwork([(code, (code,)) for code in codes])
    return Chain(net, make_store(net))


def test_a_validator_added_while_its_node_is_down_never_halts_the_chain(
    make_store: Callable[..., Store],
) -> None:
    """Issue 22: five validators, RU stopped, a sixth added whose node never started. Six would
    need five signatures with four live. Now the sixth waits, pending, and the set stays five."""
    c = _network_of(["BE", "AE", "IN", "RU", "CA"], make_store)
    c.down = {"RU"}
    bw = newcomer()
    c.add_member(bw)
    c.enact(gov.ADMIT, "BW", admit_args(c, bw, node=True))
    c.enact(gov.ADD_VALIDATOR, "BW", [bw.node.public_bytes, "http://127.0.0.1:7704"])
    assert len(c.registry.validators) == 5
    assert [v.participant for v in c.registry.pending_validators] == ["BW"]
    # The four live validators still finalise: a commit of four of five.
    execution = c.commit([c.net.issue(exporting="BE", importing="AE").event])
    live = [i for i, v in enumerate(c.registry.validators) if v.participant != "RU"]
    c.sign(execution, signers=live).verify(
        c.net.chain_id, [v.node_key for v in c.registry.validators]
    )
    # With IN down too, BW's readiness would make six with four live: it waits.
    c.down = {"RU", "IN"}
    c.until(c.height + 12)
    refused = c.commit([c.ready(bw)]).refused
    assert [type(x) for _, x in refused] == [errors.ValidatorsNotLive], refused
    assert len(c.registry.validators) == 5
    # IN back: four live of five, and BW's node: five of six. It enters the set.
    c.down = {"RU"}
    c.until(c.height + 12)
    entered = c.commit([c.ready(bw)])
    assert not entered.refused
    assert [v.participant for v in c.registry.validators][-1] == "BW"
    assert entered.register_changes[0].kind == "validator_ready"
    assert entered.header.next_validators_hash != entered.header.validators_hash
    assert not c.registry.pending_validators
    report = verify_chain(c.store, c.net.genesis)
    assert report.ok, report.fault


def test_no_removal_leaves_fewer_live_validators_than_a_quorum(
    make_store: Callable[..., Store],
) -> None:
    c = _network_of(["BE", "AE", "IN", "RU", "CA", "ZA", "NA"], make_store)
    c.down = {"RU", "CA"}  # five live of seven: quorum(7) = 5
    c.until(20)
    refused = c.commit(
        [c.propose(gov.REMOVE_VALIDATOR, "BE", [c.net.members["BE"].node.public_bytes])]
    )
    assert [type(x) for _, x in refused.refused] == [errors.ValidatorsNotLive]
    # Removing a validator that is down leaves five live of six: allowed.
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    assert "RU" not in [v.participant for v in c.registry.validators]


def test_a_removal_checked_again_when_it_takes_effect(make_store: Callable[..., Store]) -> None:
    """Proposed while all were live; by its height two validators are down: it fails."""
    c = _network_of(["BE", "AE", "IN", "RU", "CA", "ZA", "NA"], make_store)
    proposal = c.propose(
        gov.REMOVE_VALIDATOR, "BE", [c.net.members["BE"].node.public_bytes], effective=40
    )
    c.commit([proposal])
    c.commit([c.vote(proposal, by=v) for v in ("AE", "IN", "RU", "CA", "ZA")])
    c.down = {"RU", "CA"}
    c.until(39)
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.FAILED
    assert record.note.startswith("validators_not_live"), record.note
    assert len(c.registry.validators) == 7


def test_suspension_takes_the_validators_out_and_reinstatement_brings_them_back(
    make_store: Callable[..., Store],
) -> None:
    c = _network_of(["BE", "AE", "IN", "RU", "CA"], make_store)
    ca = c.net.members["CA"]
    c.enact(gov.SUSPEND, "CA")
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "RU"]
    assert [v.participant for v in c.registry.pending_validators] == ["CA"]
    wire = c.registry.to_wire()
    assert len(wire) == 6 and Registry.from_wire(decode(encode(wire))) == c.registry
    assert c.store.registry() == c.registry  # stored and reloaded, pending ones included
    c.down = {"CA"}
    c.commit()
    # Its node cannot bring it back while it is suspended.
    refused = c.commit([c.ready(ca)]).refused
    assert [type(x) for _, x in refused] == [errors.ParticipantNotActive]
    c.enact(gov.REINSTATE, "CA", voters=["AE", "IN", "RU"])
    assert len(c.registry.validators) == 4  # back once its node attests readiness
    c.down = set()
    assert not c.commit([c.ready(ca)]).refused
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "IN", "RU", "CA"]
    assert verify_chain(c.store, c.net.genesis).ok


def test_equivocation_evidence_removes_the_offender_from_the_next_height(
    make_store: Callable[..., Store],
) -> None:
    """Issue 22: evidence was stored and never used. Now it is an event every node checks; the
    offender leaves the set from the block after the one that records it."""
    c = _network_of(["BE", "AE", "IN", "RU", "CA"], make_store)
    c.until(3)
    recorded = c.commit([_report(c, _double_vote(c, "IN"))])
    assert [ch.kind for ch in recorded.register_changes] == ["evidence"]
    assert recorded.register_changes[0].subject == "IN"
    assert "IN" not in [v.participant for v in c.registry.validators]
    assert c.registry.participants["IN"].active  # the validator is jailed, not the participant
    assert recorded.header.next_validators_hash != recorded.header.validators_hash
    # Evidence of a past height is judged against the set of that height; RU's double
    # proposal at height 2 removes it too.
    validators = c.store.validators_at(2)
    index = next(i for i, v in enumerate(validators) if v.participant == "RU")
    key = c.net.members["RU"].node
    proposals = [
        Proposal.create(key, c.net.chain_id, 2, (index - 2) % 5, bytes([n]) * 32, -1, index)
        for n in (3, 4)
    ]
    second = c.commit([_report(c, ConflictingProposals(*proposals), by="AE")])
    assert not second.refused, second.refused
    assert [v.participant for v in c.registry.validators] == ["BE", "AE", "CA"]
    # The chain re-verified from genesis (the audit) reaches the same register.
    report = verify_chain(c.store, c.net.genesis)
    assert report.ok, report.fault
    again = c.commit([_report(c, _double_vote(c, "IN", height=3), by="CA")]).refused
    assert [type(x) for _, x in again] == [errors.EvidenceNotNeeded]


SEVEN = ["BE", "AE", "IN", "RU", "CA", "ZA", "NA"]


def _seven(make_store: Callable[..., Store]) -> Chain:
    net = TestNetwork([(code, (code,)) for code in SEVEN], validators=SEVEN[:4])
    return Chain(net, make_store(net))


def test_dormant_members_do_not_block_a_proposal(make_store: Callable[..., Store]) -> None:
    """Issue 22: the threshold counted every registered member; with some that never sign,
    nothing could pass. CA, ZA and NA signed nothing for 200 days: 4 yes of the 4 awake pass
    (without the rule 5 of 7 were needed)."""
    c = _seven(make_store)
    c.commit()  # block 1: every member enters
    c.net.now_ms += 200 * gov.DAY_MS
    proposal = c.propose(gov.REPLACE_KEY, "IN", _replacement(c, "IN"))
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="RU")])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.OPEN and record.yes == 3
    c.commit([c.vote(proposal, by="IN")])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.PASSED and record.yes == 4
    assert verify_chain(c.store, c.net.genesis).ok


def test_the_electorate_never_falls_below_two_thirds_and_a_member_returns_by_signing(
    make_store: Callable[..., Store],
) -> None:
    c = _seven(make_store)
    c.commit()
    c.net.now_ms += 200 * gov.DAY_MS
    # Only BE and AE are awake: the electorate is still 5 of 7 (2/3, rounded up): 4 yes needed.
    proposal = c.propose(gov.REPLACE_KEY, "IN", _replacement(c, "IN"))
    c.commit([proposal, c.vote(proposal, by="AE")])
    c.commit([c.vote(proposal, by="RU")])  # RU returns by voting: 3 yes of 5, not enough
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.OPEN and record.yes == 3
    c.commit([c.vote(proposal, by="CA")])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.PASSED and record.yes == 4


def test_suspending_opponents_one_by_one_gets_no_easier(make_store: Callable[..., Store]) -> None:
    """Issue 22: suspension shrank the count, each step easier than the last. With CA and ZA
    suspended, suspending NA still needs 5 yes (of 7), not 4 (of the 5 active)."""
    c = _seven(make_store)
    c.enact(gov.SUSPEND, "CA", voters=["AE", "IN", "RU", "ZA"])
    c.enact(gov.SUSPEND, "ZA", voters=["AE", "IN", "RU", "NA"])
    proposal = c.propose(gov.SUSPEND, "NA")
    c.commit([proposal, *(c.vote(proposal, by=v) for v in ("AE", "IN", "RU"))])
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.yes == 4 and record.status == gov.OPEN
    # Other changes count the five active members: 4 yes pass a reinstatement.
    back = c.propose(gov.REINSTATE, "CA")
    c.commit([back, *(c.vote(back, by=v) for v in ("AE", "IN", "RU"))])
    assert c.store.get_proposal(back.event_id).status == gov.PASSED  # type: ignore[union-attr]


def test_older_chains_keep_counting_every_active_member() -> None:
    raw = TestNetwork().genesis.to_json()
    del raw["parameters"]["governance_dormant_days"]
    assert Genesis.from_json(raw).parameters.governance_dormant_days == 0
    with pytest.raises(errors.MalformedInput, match="governance_dormant_days"):
        TestNetwork(parameters=Parameters(governance_dormant_days=7))


def _replacement(c: Chain, code: str) -> list[Any]:
    new = SigningKey.from_seed(_seed("replacement", code))
    return [
        gov.AUTHORITY,
        new.public_bytes,
        new.prove_possession(c.net.chain_id, code, "authority"),
    ]


def test_the_register_is_stored_and_reloaded(chain: Chain, tmp_path: Path) -> None:
    c = chain
    c.enact(gov.SET_PARAMETER, "", ["max_validity_days", 90])
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal])
    assert c.registry.parameters.max_validity_days == 90
    c.store.close()
    reopened = Store(c.store.path, c.net.genesis)
    try:
        assert reopened.registry() == c.registry
        assert reopened.registry().hash == reopened.head.registry_hash  # type: ignore[union-attr]
        assert proposal.event_id in reopened.registry().proposals  # type: ignore[union-attr]
        assert [r.kind for r in reopened.proposals()] == [gov.SET_PARAMETER, gov.SUSPEND]
    finally:
        reopened.close()
