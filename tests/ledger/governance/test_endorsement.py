"""Restriction and endorsement, proofs across register changes, governance bodies on the wire."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ledger import authoring, errors
from ledger import governance as gov
from ledger.audit import verify_chain
from ledger.consensus import (
    CommitCertificate,
    Vote,
    VoteKind,
)
from ledger.encoding import encode
from ledger.errors import ZoneNotApproved
from ledger.events import Event
from ledger.keys import SigningKey
from ledger.proofs import (
    CertificateProof,
    FinalHeader,
    build_certificate_proof,
    verify_certificate_proof,
)
from ledger.records import IMPORT_CONFIRMED, ISSUED
from tests.ledger.governance.helpers import (
    MONITOR,
    Chain,
    _endorse,
    _restrict_args,
    _seed,
    admit_args,
    newcomer,
)

# -- restriction and endorsement -----------------------------------------------------------------


def test_restricted_exports_need_an_approved_zone_and_an_endorsement_before_import(
    chain: Chain,
) -> None:
    c = chain
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    without_zone = c.commit([c.net.issue(exporting="IN", importing="BE").event])
    assert [type(x) for _, x in without_zone.refused] == [ZoneNotApproved]
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-B")
    c.commit([issuance.event])
    record = c.store.get_certificate(issuance.event.number)
    assert record is not None and record.needs_endorsement and not record.endorsed
    early = c.commit([c.net.confirm(issuance)])
    assert [type(x) for _, x in early.refused] == [errors.EndorsementRequired]
    c.commit([_endorse(c, issuance)])
    record = c.store.get_certificate(issuance.event.number)
    assert record is not None and record.endorsed and record.status == ISSUED
    assert not c.commit([c.net.confirm(issuance)]).refused
    checked = verify_certificate_proof(
        build_certificate_proof(c.store, issuance.event.number), c.net.genesis
    )
    assert [t for t, _, _ in checked.history] == [
        "certificate.issue",
        gov.ENDORSE,
        "certificate.confirm_import",
    ]
    # Lifting the restriction frees new certificates from both rules.
    c.enact(gov.LIFT, "IN")
    free = c.net.issue(exporting="IN", importing="BE")
    c.commit([free.event])
    c.commit([c.net.confirm(free)])
    assert c.store.get_certificate(free.event.number).status == IMPORT_CONFIRMED  # type: ignore[union-attr]
    assert verify_chain(c.store, c.net.genesis).ok


def test_a_rejection_needs_no_endorsement(chain: Chain) -> None:
    c = chain
    c.enact(gov.RESTRICT, "IN", _restrict_args(MONITOR))
    issuance = c.net.issue(exporting="IN", importing="BE", zone="ZONE-A")
    c.commit([issuance.event])
    assert not c.commit([c.net.reject(issuance, "zone not credible")]).refused


# -- proofs across changes -----------------------------------------------------------------------


@pytest.fixture
def changed(full_chain: Chain) -> dict[str, Any]:
    """A certificate issued by genesis validators; then BW admitted and made a validator, RU
    removed, BE's key rotated; then a second certificate. Proofs of both."""
    c = full_chain
    early = c.net.issue(exporting="BE", importing="AE")
    c.commit([early.event])
    bw = newcomer()
    c.add_member(bw)
    address = "http://127.0.0.1:7704"
    admit = admit_args(c, bw, node=True, address=address)
    c.enact(gov.ADMIT, "BW", admit)
    c.add_validator(bw, address)
    c.enact(gov.REMOVE_VALIDATOR, "RU", [c.net.members["RU"].node.public_bytes])
    new = SigningKey.from_seed(_seed("be-3"))
    c.commit(
        [
            authoring.rotate_key(
                c.net.chain_id,
                "BE",
                gov.AUTHORITY,
                new,
                c.net.key("BE"),
                created_ms=c.net.tick(),
            )
        ]
    )
    late = c.net.issue(exporting="BW", importing="BE")
    c.commit([late.event])
    c.commit([c.net.confirm(early)])
    c.until(c.height + 2)
    return {
        "chain": c,
        "early": build_certificate_proof(c.store, early.event.number),
        "late": build_certificate_proof(c.store, late.event.number),
        "absent": build_certificate_proof(c.store, "BE-NOPE-9"),
    }


def _verify(proof: CertificateProof, c: Chain) -> Any:
    return verify_certificate_proof(CertificateProof.from_base64(proof.to_base64()), c.net.genesis)


def test_proofs_across_validator_changes_and_rotations_check_with_genesis_alone(
    changed: dict[str, Any],
) -> None:
    c = changed["chain"]
    early = _verify(changed["early"], c)
    assert early.status == IMPORT_CONFIRMED and early.history[0][1] == 1
    assert len(changed["early"].changes) == 2
    assert _verify(changed["late"], c).status == ISSUED
    assert not _verify(changed["absent"], c).found
    assert verify_chain(c.store, c.net.genesis).ok


@pytest.mark.parametrize("which", ["early", "late", "absent"])
def test_a_proof_without_a_validator_change_fails(changed: dict[str, Any], which: str) -> None:
    c, proof = changed["chain"], changed[which]
    for kept in (proof.changes[:1], proof.changes[1:], ()):
        with pytest.raises(errors.InvalidProof, match="validator"):
            _verify(dataclasses.replace(proof, changes=kept), c)


def test_a_forged_validator_change_fails(changed: dict[str, Any]) -> None:
    c, proof = changed["chain"], changed["early"]
    first = proof.changes[0]
    stranger = newcomer("ZA", ("ZA",)).node
    forged_set = (
        *first.validators[:-1],
        dataclasses.replace(first.validators[-1], node_key=stranger.public_bytes),
    )
    forged = dataclasses.replace(first, validators=forged_set)
    with pytest.raises(errors.InvalidProof, match="forged validator change"):
        _verify(dataclasses.replace(proof, changes=(forged, *proof.changes[1:])), c)
    # A change header re-signed by strangers is not final under the set in force.
    header = first.final.header
    votes = [
        Vote.create(stranger, c.net.chain_id, VoteKind.PRECOMMIT, header.height, 0, header.hash, i)
        for i in range(4)
    ]
    resigned = dataclasses.replace(
        first, final=FinalHeader(header, CommitCertificate.from_precommits(votes))
    )
    with pytest.raises(errors.InvalidProof, match="not final"):
        _verify(dataclasses.replace(proof, changes=(resigned, *proof.changes[1:])), c)
    # Changes out of order.
    with pytest.raises(errors.InvalidProof):
        _verify(dataclasses.replace(proof, changes=tuple(reversed(proof.changes))), c)


# -- bodies on the wire --------------------------------------------------------------------------


def test_governance_bodies_round_trip_and_malformed_ones_are_refused(chain: Chain) -> None:
    c = chain
    m = newcomer()
    for kind, subject, args in [
        (
            gov.ADMIT,
            "BW",
            admit_args(c, m, name="B"),
        ),
        (gov.SUSPEND, "RU", []),
        (gov.RESTRICT, "IN", [["Z1"], MONITOR.public_bytes]),
        (gov.SET_PARAMETER, "", ["max_validity_days", 10]),
        (
            gov.REPLACE_KEY,
            "IN",
            [gov.ENCRYPTION, m.encryption.public_bytes, m.encryption.prove_possession("c", "IN")],
        ),
    ]:
        event = c.propose(kind, subject, args)
        assert Event.decode(event.encoded) == event
        assert event.number == subject
    bad_bodies = [
        (gov.PROPOSE, ["nope", "RU", [], 9]),
        (gov.PROPOSE, [gov.SUSPEND, "XX", [], 9]),
        (gov.PROPOSE, [gov.SUSPEND, "RU", ["extra"], 9]),
        (gov.PROPOSE, [gov.SET_PARAMETER, "RU", ["max_validity_days", 1], 9]),
        (gov.PROPOSE, [gov.RESTRICT, "IN", [[], MONITOR.public_bytes], 9]),
        (gov.PROPOSE, [gov.ADD_VALIDATOR, "IN", [bytes(32), "ftp://x"], 9]),
        (gov.PROPOSE, [gov.SUSPEND, "RU", [], -1]),
        (gov.VOTE, [bytes(31), True]),
        (gov.VOTE, [bytes(32), 1]),
        (gov.ROTATE_KEY, ["node", bytes(32)]),
        (gov.ENDORSE, ["IN-1", bytes(31)]),
    ]
    from ledger.events import unsigned_wire
    from ledger.hashing import TAG_EVENT

    for type_, body in bad_bodies:

        class Raw:
            def __init__(self, wire: Any) -> None:
                self.wire = wire

            def to_wire(self) -> Any:
                return self.wire

        unsigned = unsigned_wire(c.net.chain_id, type_, "BE", 1, Raw(body))
        signature = c.net.key("BE").sign(TAG_EVENT, encode(unsigned))
        with pytest.raises(errors.MalformedInput):
            Event.decode(encode([unsigned, signature]))
