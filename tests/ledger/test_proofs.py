"""Public certificate proofs: a genuine one checks with genesis alone; every tampering fails, each its own way."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ledger.certificate import Certificate, Party
from ledger.consensus.messages import CommitCertificate, Vote, VoteKind
from ledger.encoding import decode, encode
from ledger.errors import InvalidProof
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.proofs import (
    CertificateProof,
    FinalHeader,
    StatusLeaf,
    build_certificate_proof,
    verify_certificate_proof,
)
from ledger.store import Store
from tests.helpers import TestNetwork

# -- tamperings, shared with the live-node tests (tests/node/http/test_public_e2e.py) --------------


def resign(
    final: FinalHeader,
    chain_id: str,
    keys: Sequence[SigningKey],
    signers: Sequence[int],
    *,
    key_for: Callable[[int], SigningKey] | None = None,
) -> FinalHeader:
    """The same header with a commit certificate of precommits by `signers` (by `key_for(i)`)."""
    header = final.header
    votes = [
        Vote.create(
            key_for(i) if key_for else keys[i],
            chain_id,
            VoteKind.PRECOMMIT,
            header.height,
            final.commit.round,
            header.hash,
            i,
        )
        for i in signers
    ]
    commit = CommitCertificate(
        header.height,
        final.commit.round,
        header.hash,
        tuple((v.validator, v.signature) for v in votes),
    )
    return FinalHeader(header, commit)


def flip_byte(data: bytes, position: int, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


def single_signature_flip(proof: CertificateProof) -> CertificateProof:
    """One bit of one precommit signature of the head's commit certificate changed."""
    commit = proof.head.commit
    index, signature = commit.signatures[0]
    signatures = ((index, flip_byte(signature, 10)), *commit.signatures[1:])
    head = FinalHeader(proof.head.header, dataclasses.replace(commit, signatures=signatures))
    return dataclasses.replace(proof, head=head)


def tamperings(
    proof: CertificateProof, genesis: Genesis, validator_keys: Sequence[SigningKey]
) -> list[tuple[str, CertificateProof, str]]:
    """(name, altered proof, a fragment of the message verification must fail with).

    `proof` is a genuine proof of a certificate with an issue and one later event.
    """
    assert proof.leaf is not None and len(proof.events) == 2
    chain_id = genesis.chain_id
    n = len(validator_keys)
    stranger = SigningKey.from_seed(b"\x07" * 32)
    event = proof.events[1]
    other_type = (
        "certificate.reject_import"
        if event.type != "certificate.reject_import"
        else "certificate.confirm_import"
    )
    first_sibling = proof.state_proof.siblings[0]
    public = list(proof.public_wire or [])
    public[3] = "2001-01-01"  # issued_on
    return [
        (
            "a precommit signature altered",
            single_signature_flip(proof),
            "bad precommit signature from validator",
        ),
        (
            "the head signed by too few validators",
            dataclasses.replace(
                proof, head=resign(proof.head, chain_id, validator_keys, range(2 * n // 3))
            ),
            "too few signers",
        ),
        (
            "precommits by a key genesis does not list",
            dataclasses.replace(
                proof,
                head=resign(
                    proof.head,
                    chain_id,
                    validator_keys,
                    range(n),
                    key_for=lambda i: stranger if i == 1 else validator_keys[i],
                ),
            ),
            "bad precommit signature from validator 1",
        ),
        (
            "a signer index beyond the validator set",
            dataclasses.replace(
                proof,
                head=FinalHeader(
                    proof.head.header,
                    dataclasses.replace(
                        proof.head.commit,
                        signatures=(*proof.head.commit.signatures, (n + 3, bytes(64))),
                    ),
                ),
            ),
            f"signer {n + 3} is not a validator",
        ),
        (
            "a status that is not the one under the state root",
            dataclasses.replace(
                proof, leaf=dataclasses.replace(proof.leaf, status=_other_status(proof.leaf.status))
            ),
            "does not match the state root",
        ),
        (
            "a state proof sibling altered",
            dataclasses.replace(
                proof,
                state_proof=dataclasses.replace(
                    proof.state_proof,
                    siblings=(flip_byte(first_sibling, 0, 0x80), *proof.state_proof.siblings[1:]),
                ),
            ),
            "does not match the state root",
        ),
        (
            "the last event's type changed",
            dataclasses.replace(
                proof, events=(proof.events[0], dataclasses.replace(event, type=other_type))
            ),
            "event 2 of the history is not in block",
        ),
        (
            "an inclusion path hash altered",
            dataclasses.replace(
                proof,
                events=(
                    dataclasses.replace(
                        proof.events[0],
                        path=tuple(flip_byte(p, 5) for p in proof.events[0].path) or (bytes(32),),
                    ),
                    event,
                ),
            ),
            "event 1 of the history is not in block",
        ),
        (
            "the history cut short",
            dataclasses.replace(proof, events=proof.events[:1]),
            "the history does not end with the event the status names",
        ),
        (
            "a block header of the history missing",
            dataclasses.replace(proof, headers=()),
            "no final header is given for height",
        )
        if proof.headers
        else (
            "the history's events out of order",
            dataclasses.replace(proof, events=(event, proof.events[0])),
            "the history must start with the issue",
        ),
        (
            "a public fact altered (issued_on)",
            dataclasses.replace(proof, public_wire=public),
            "the public facts do not match the certificate digest",
        ),
        (
            "the confidential half's hash altered",
            dataclasses.replace(
                proof, confidential_hash=flip_byte(proof.confidential_hash or bytes(32), 0)
            ),
            "the public facts do not match the certificate digest",
        ),
    ]


def graft_stale_status(
    old: CertificateProof, new: CertificateProof
) -> list[tuple[str, CertificateProof]]:
    """An older status (and its history) presented under a newer head: each must fail."""
    return [
        (
            "old status and state path under the new head",
            dataclasses.replace(
                new,
                leaf=old.leaf,
                state_proof=old.state_proof,
                events=old.events,
                headers=old.headers,
            ),
        ),
        ("old status with the new state path", dataclasses.replace(new, leaf=old.leaf)),
    ]


def _other_status(status: str) -> str:
    return "voided" if status != "voided" else "issued"


# -- a small chain built offline -----------------------------------------------------------------


@pytest.fixture
def chain(network: TestNetwork, store: Store) -> dict[str, Any]:
    """Block 1: two issues; block 2: one confirmed; block 3: the other voided."""
    cert_a = network.certificate("BE", "AE")
    a = network.issue(cert_a)
    b = network.issue(exporting="BE", importing="IN")
    network.commit_block(store, [a.event, b.event])
    proof_a_issued = build_certificate_proof(store, a.event.body.number)
    network.commit_block(store, [network.confirm(a)])
    network.commit_block(store, [network.void(b, "lost")])
    return {"a": a, "b": b, "a_issued": proof_a_issued, "cert_a": cert_a}


def _check(proof: CertificateProof, genesis: Genesis, number: str | None = None) -> Any:
    # Through the wire form, as `kpledger verify` receives it.
    return verify_certificate_proof(
        CertificateProof.from_base64(proof.to_base64()), genesis, number
    )


def test_a_genuine_proof_checks_with_genesis_alone(
    network: TestNetwork, store: Store, chain: dict[str, Any]
) -> None:
    number = chain["a"].event.body.number
    checked = _check(build_certificate_proof(store, number), network.genesis, number)
    assert checked.found and checked.status == "import_confirmed"
    assert [t for t, _, _ in checked.history] == [
        "certificate.issue",
        "certificate.confirm_import",
    ]
    assert checked.digest == chain["a"].digest
    assert checked.head_height == 3
    assert (checked.exporting_participant, checked.importing_participant) == ("BE", "AE")


def test_an_unknown_number_has_a_proof_of_absence(
    network: TestNetwork, store: Store, chain: Any
) -> None:
    checked = _check(build_certificate_proof(store, "BE-NOPE-1"), network.genesis, "BE-NOPE-1")
    assert not checked.found and checked.status is None


def test_absence_cannot_be_claimed_for_a_number_on_the_ledger(
    network: TestNetwork, store: Store, chain: dict[str, Any]
) -> None:
    number = chain["b"].event.body.number
    genuine = build_certificate_proof(store, number)
    absent_elsewhere = build_certificate_proof(store, "BE-NOPE-2")
    forged = dataclasses.replace(
        genuine, leaf=None, state_proof=absent_elsewhere.state_proof, events=(), headers=()
    )
    with pytest.raises(InvalidProof, match="proof of absence does not match the state root"):
        _check(forged, network.genesis, number)


def test_a_proof_about_another_number_is_refused(
    network: TestNetwork, store: Store, chain: Any
) -> None:
    proof = build_certificate_proof(store, chain["a"].event.body.number)
    with pytest.raises(InvalidProof, match="the proof is about"):
        _check(proof, network.genesis, chain["b"].event.body.number)


def test_a_proof_of_another_network_is_refused(store: Store, chain: Any) -> None:
    other = TestNetwork(seed="another-network")
    proof = build_certificate_proof(store, chain["a"].event.body.number)
    with pytest.raises(InvalidProof, match=r"validator set genesis does not know|not final"):
        _check(proof, other.genesis)


def test_each_tampering_fails_with_its_own_message(
    network: TestNetwork, store: Store, chain: dict[str, Any]
) -> None:
    for number in (chain["a"].event.body.number, chain["b"].event.body.number):
        proof = build_certificate_proof(store, number)
        cases = tamperings(proof, network.genesis, network.validator_keys)
        for name, altered, message in cases:
            with pytest.raises(InvalidProof, match=message):
                _check(altered, network.genesis, number)
                pytest.fail(f"{name}: verified")


def test_a_stale_status_under_a_newer_head_fails(
    network: TestNetwork, store: Store, chain: dict[str, Any]
) -> None:
    number = chain["a"].event.body.number
    old, new = chain["a_issued"], build_certificate_proof(store, number)
    for _name, forged in graft_stale_status(old, new):
        with pytest.raises(InvalidProof, match="stale or altered status"):
            _check(forged, network.genesis, number)


def test_an_old_but_complete_proof_still_checks_and_says_how_old_it_is(
    network: TestNetwork, store: Store, chain: dict[str, Any]
) -> None:
    # Offline, a whole proof of an older state is genuine: only its head's age tells it is stale,
    # which is why `kpledger verify` refuses a head older than --max-age-hours.
    checked = _check(chain["a_issued"], network.genesis)
    assert checked.status == "issued" and checked.head_height == 1
    assert checked.head_time_ms < store.head.time_ms  # type: ignore[union-attr]


def test_every_single_byte_change_of_the_wire_form_is_refused(
    network: TestNetwork, store: Store, chain: dict[str, Any]
) -> None:
    for number in (chain["a"].event.body.number, "BE-NOPE-3"):
        encoded = build_certificate_proof(store, number).encode()
        for position in range(len(encoded)):
            for mask in (0x01, 0x80):
                altered = flip_byte(encoded, position, mask)
                try:
                    verify_certificate_proof(
                        CertificateProof.decode(altered), network.genesis, number
                    )
                except InvalidProof:
                    continue
                pytest.fail(f"byte {position} ^ {mask:#x} of the proof of {number} went unnoticed")


def test_a_document_with_a_changed_name_does_not_match_the_digest(
    network: TestNetwork, store: Store, chain: dict[str, Any]
) -> None:
    a = chain["a"]
    number = a.event.body.number
    checked = _check(build_certificate_proof(store, number), network.genesis, number)
    original: Certificate = chain["cert_a"]
    assert original.digest(a.salt) == checked.digest
    exporter = original.identities.exporter
    renamed = dataclasses.replace(
        original,
        identities=dataclasses.replace(
            original.identities, exporter=Party(exporter.name + " Ltd", exporter.address)
        ),
    )
    assert renamed.digest(a.salt) != checked.digest
    assert original.digest(bytes(32)) != checked.digest  # the salt is part of it


def test_proofs_decode_only_their_own_shape(tmp_path: Path) -> None:
    for junk in (b"", b"\xc0", encode([2, "x"]), encode([1] * 9), b"\xff" * 10):
        with pytest.raises(InvalidProof):
            CertificateProof.decode(junk)
    with pytest.raises(InvalidProof, match="base64"):
        CertificateProof.from_base64("not base64!")
    assert decode(encode([1])) == [1]


def test_status_leaf_wire_round_trip() -> None:
    leaf = StatusLeaf("issued", bytes(32), bytes(32), 1)
    assert leaf.to_wire() == ["issued", bytes(32), bytes(32), 1]
