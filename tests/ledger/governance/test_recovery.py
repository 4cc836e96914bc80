"""The emergency recovery of a halted chain: the document, its checks, and the block it judges."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import errors
from ledger.audit import verify_chain
from ledger.chain import Execution, build_block, validate_block
from ledger.consensus.messages import CommitCertificate, Vote, VoteKind
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.events import Event, sign_event
from ledger.governance import (
    NODE_PREFIX,
    RecoveryBody,
    RecoveryDocument,
    SignedRecovery,
    check_recovery,
    register_for_block,
)
from ledger.keys import SigningKey
from ledger.registry import Registry
from ledger.store import Store
from tests.helpers import TestNetwork

DEAD = ("IN", "RU")


def _document(net: TestNetwork, store: Store, **changes: object) -> RecoveryDocument:
    head = store.head
    assert head is not None
    fields: dict[str, object] = {
        "chain_id": net.chain_id,
        "height": head.height + 1,
        "prev_hash": head.hash,
        "validators": tuple(v for v in net.genesis.validators if v.participant not in DEAD),
        "parameters": (("timeout_propose_ms", 3000),),
        "reason": "IN and RU lost their data centres",
    }
    fields.update(changes)
    return RecoveryDocument(**fields)  # type: ignore[arg-type]


def _signed(
    net: TestNetwork, document: RecoveryDocument, signers: Sequence[str] = ("BE", "AE", "IN")
) -> SignedRecovery:
    return SignedRecovery(document, tuple((c, document.sign(net.key(c))) for c in signers))


@pytest.fixture
def halted(network: TestNetwork, store: Store) -> tuple[TestNetwork, Store]:
    """Two final blocks of four validators (BE, AE, IN, RU); then IN's and RU's nodes die."""
    network.commit_block(store, [network.issue().event])
    network.commit_block(store, [network.issue().event])
    return network, store


def _check(net: TestNetwork, store: Store, signed: SignedRecovery) -> Registry:
    head = store.head
    assert head is not None
    return check_recovery(signed, net.registry, net.chain_id, head.height + 1, head.hash)


# -- the document and its checks -------------------------------------------------------------


def test_a_supermajority_recovery_makes_the_register_of_the_next_block(
    halted: tuple[TestNetwork, Store],
) -> None:
    net, store = halted
    recovered = _check(net, store, _signed(net, _document(net, store)))
    assert [v.participant for v in recovered.validators] == ["BE", "AE"]
    assert recovered.parameters.timeout_propose_ms == 3000
    assert recovered.participants == net.registry.participants


def test_the_document_round_trips_and_is_signed_under_its_own_tag(
    halted: tuple[TestNetwork, Store],
) -> None:
    net, store = halted
    signed = _signed(net, _document(net, store))
    assert SignedRecovery.from_wire(decode(encode(signed.to_wire()))) == signed
    # Domain separation: an event signature, or a vote, over the same bytes is no recovery's.
    key = net.key("BE")
    other_tag = key.sign(b"kp/event/1", signed.document.statement)
    forged = SignedRecovery(signed.document, (("BE", other_tag), *signed.signatures[1:]))
    with pytest.raises(errors.BadSignature):
        _check(net, store, forged)


REFUSALS = {
    "too_few_signatures": (
        lambda net, store: _signed(net, _document(net, store), ("BE", "AE")),
        errors.RecoveryTooFewSignatures,
    ),
    "a_key_signing_twice": (
        lambda net, store: _signed(net, _document(net, store), ("BE", "AE", "BE")),
        errors.RecoveryDuplicateSigner,
    ),
    "signatures_over_another_document": (
        lambda net, store: SignedRecovery(
            _document(net, store),
            _signed(net, _document(net, store, reason="another"), ("BE", "AE", "IN")).signatures,
        ),
        errors.BadSignature,
    ),
    "a_signature_by_another_key": (
        lambda net, store: SignedRecovery(
            _document(net, store),
            (
                *_signed(net, _document(net, store), ("BE", "AE")).signatures,
                ("IN", _document(net, store).sign(net.key("RU"))),
            ),
        ),
        errors.BadSignature,
    ),
    "a_height_that_is_not_the_next": (
        lambda net, store: _signed(net, _document(net, store, height=store.height + 2)),
        errors.RecoveryHeadMismatch,
    ),
    "a_head_that_is_not_the_final_one": (
        lambda net, store: _signed(net, _document(net, store, prev_hash=bytes(32))),
        errors.RecoveryHeadMismatch,
    ),
    "another_chain": (
        lambda net, store: _signed(net, _document(net, store, chain_id="kp-other")),
        errors.RecoveryHeadMismatch,
    ),
    "a_parameter_out_of_bounds": (
        lambda net, store: _signed(
            net, _document(net, store, parameters=(("max_event_bytes", 1),))
        ),
        errors.ParameterOutOfRange,
    ),
    "an_unknown_parameter": (
        lambda net, store: _signed(net, _document(net, store, parameters=(("speed", 1),))),
        errors.UnknownParameter,
    ),
    "a_validator_of_no_participant": (
        lambda net, store: _signed(
            net,
            _document(
                net,
                store,
                validators=(
                    *_document(net, store).validators,
                    type(net.genesis.validators[0])(
                        "ZZ", SigningKey.from_seed(b"z" * 32).public_bytes, "http://127.0.0.1:1"
                    ),
                ),
            ),
        ),
        errors.UnknownParticipant,
    ),
    "a_node_key_listed_twice": (
        lambda net, store: _signed(
            net,
            _document(
                net,
                store,
                validators=(*_document(net, store).validators, _document(net, store).validators[0]),
            ),
        ),
        errors.RecoveryInvalidValidators,
    ),
    "a_validator_key_that_is_an_authority_key": (
        lambda net, store: _signed(
            net,
            _document(
                net,
                store,
                validators=(
                    type(net.genesis.validators[0])(
                        "BE", net.key("AE").public_bytes, "http://127.0.0.1:1"
                    ),
                ),
            ),
        ),
        errors.KeyInUse,
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_each_bad_recovery_is_refused_with_its_own_error(
    halted: tuple[TestNetwork, Store], name: str
) -> None:
    net, store = halted
    make, expected = REFUSALS[name]
    with pytest.raises(expected):
        _check(net, store, make(net, store))


def test_a_suspended_participant_signs_no_recovery(make_network: type[TestNetwork]) -> None:
    net = make_network(suspended=("RU",))
    store_registry = net.registry
    document = RecoveryDocument(
        net.chain_id, 2, bytes(32), tuple(net.genesis.validators[:2]), (), ""
    )
    signed = _signed(net, document, ("BE", "AE", "RU"))
    with pytest.raises(errors.ParticipantNotActive):
        check_recovery(signed, store_registry, net.chain_id, 2, bytes(32))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_tampering_with_a_signed_recovery_is_detected(
    halted: tuple[TestNetwork, Store], data: st.DataObject
) -> None:
    net, store = halted
    signed = _signed(net, _document(net, store))
    encoded = encode(signed.to_wire())
    index = data.draw(st.integers(0, len(encoded) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = encoded[:index] + bytes([encoded[index] ^ flip]) + encoded[index + 1 :]
    with pytest.raises(LedgerError):
        _check(net, store, SignedRecovery.from_wire(decode(tampered)))


# -- on the chain ------------------------------------------------------------------------------


def _survivors(net: TestNetwork) -> list[tuple[int, SigningKey]]:
    return [(i, net.members[v.participant].node) for i, v in enumerate(net.genesis.validators)][:2]


def _recovery_event(net: TestNetwork, signed: SignedRecovery, code: str = "BE") -> Event:
    node = net.members[code].node
    return sign_event(
        net.chain_id,
        f"{NODE_PREFIX}{code}",
        RecoveryBody(node.public_bytes, signed),
        node,
        net.tick(),
    )


def _commit(net: TestNetwork, store: Store, registry: Registry, events: list[Event]) -> Execution:
    """Build, check and store a block judged by `registry`, signed by its validators."""
    prev = store.head
    built = build_block(
        store,
        registry,
        net.genesis.hash,
        prev,
        events,
        chain_id=net.chain_id,
        time_ms=net.tick(),
        proposer=0,
    )
    assert built.refused == []
    checked = validate_block(
        store, registry, net.genesis.hash, prev, built.block, chain_id=net.chain_id
    )
    keys = {m.node.public_bytes: m.node for m in net.members.values()}
    votes = [
        Vote.create(
            keys[v.node_key],
            net.chain_id,
            VoteKind.PRECOMMIT,
            checked.header.height,
            0,
            checked.header.hash,
            i,
        )
        for i, v in enumerate(registry.validators)
    ]
    certificate = CommitCertificate(
        checked.header.height,
        0,
        checked.header.hash,
        tuple((v.validator, v.signature) for v in votes),
    )
    store.commit(checked, encode(certificate.to_wire()))
    return checked


def test_the_recovered_chain_goes_on_and_the_audit_follows_it(
    halted: tuple[TestNetwork, Store],
) -> None:
    net, store = halted
    signed = _signed(net, _document(net, store))
    recovered = _check(net, store, signed)
    event = _recovery_event(net, signed)
    head = store.head
    assert head is not None
    assert (
        register_for_block(net.registry, [event], net.chain_id, head.height + 1, head.hash)
        == recovered
    )
    block = _commit(net, store, recovered, [event, net.issue().event])
    assert block.header.validators_hash != head.next_validators_hash
    assert [v.participant for v in store.validators_at(block.header.height)] == ["BE", "AE"]
    after = _commit(net, store, block.next_registry or recovered, [net.issue().event])
    assert after.header.height == head.height + 2
    report = verify_chain(store, net.genesis)
    assert report.ok, report.fault
    assert report.height_checked == store.height


def test_a_block_judged_by_another_register_must_record_the_recovery(
    halted: tuple[TestNetwork, Store],
) -> None:
    net, store = halted
    recovered = _check(net, store, _signed(net, _document(net, store)))
    with pytest.raises(errors.InvalidBlock, match="records no recovery"):
        build_block(
            store,
            recovered,
            net.genesis.hash,
            store.head,
            [net.issue().event],
            chain_id=net.chain_id,
            time_ms=net.tick(),
            proposer=0,
        )


def test_a_recovery_event_is_refused_in_a_block_judged_by_the_old_register(
    halted: tuple[TestNetwork, Store],
) -> None:
    net, store = halted
    event = _recovery_event(net, _signed(net, _document(net, store)))
    built = net.execute(store, [event])
    assert [type(exc) for _, exc in built.refused] == [errors.RecoveryNotNeeded]


def test_a_recovery_is_the_first_event_of_its_block(halted: tuple[TestNetwork, Store]) -> None:
    net, store = halted
    signed = _signed(net, _document(net, store))
    recovered = _check(net, store, signed)
    late = [net.issue().event, _recovery_event(net, signed)]
    with pytest.raises(errors.InvalidBlock, match="records no recovery"):
        build_block(
            store,
            recovered,
            net.genesis.hash,
            store.head,
            late,
            chain_id=net.chain_id,
            time_ms=net.tick(),
            proposer=0,
        )
    twice = [_recovery_event(net, signed), _recovery_event(net, signed, "AE")]
    built = build_block(
        store,
        recovered,
        net.genesis.hash,
        store.head,
        twice,
        chain_id=net.chain_id,
        time_ms=net.tick(),
        proposer=0,
    )
    assert [type(exc) for _, exc in built.refused] == [errors.RecoveryNotNeeded]
