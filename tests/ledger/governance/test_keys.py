"""Key rotation and replacement: one key one role, proof of possession, valid points."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from ledger import authoring, errors
from ledger import governance as gov
from ledger.audit import verify_chain
from ledger.keys import EncryptionKey, SigningKey
from ledger.proofs import (
    build_certificate_proof,
    verify_certificate_proof,
)
from ledger.records import ISSUED
from tests.ledger.governance.helpers import (
    Chain,
    _rotate,
    _seed,
    admit_args,
    newcomer,
)

# -- key rotation --------------------------------------------------------------------------------


def test_a_rotated_key_is_refused_after_the_change_and_old_events_stay_valid(
    chain: Chain,
) -> None:
    c = chain
    old, new = c.net.key("BE"), SigningKey.from_seed(_seed("be-2"))
    early = c.net.issue(exporting="BE", importing="AE")
    c.commit([early.event])
    rotate = authoring.rotate_key(
        c.net.chain_id, "BE", gov.AUTHORITY, new, old, created_ms=c.net.tick()
    )
    same_block = c.net.issue(exporting="BE", importing="IN", key=old)
    rotation_block = c.commit([rotate, same_block.event])
    assert not rotation_block.refused  # the old key is in force until the block ends
    assert c.registry.participants["BE"].authority_key == new.public_bytes
    assert [ch.kind for ch in rotation_block.register_changes] == ["rotate_key"]
    late = c.commit([c.net.issue(exporting="BE", importing="AE", key=old).event])
    assert [type(x) for _, x in late.refused] == [errors.BadSignature]
    assert not c.commit([c.net.issue(exporting="BE", importing="AE", key=new).event]).refused
    # The whole chain, re-verified from genesis, holds: old events checked under the old key.
    report = verify_chain(c.store, c.net.genesis)
    assert report.ok, report.fault
    assert report.height_checked == c.height
    # And an offline proof of the certificate issued before the rotation still checks.
    checked = verify_certificate_proof(
        build_certificate_proof(c.store, early.event.number), c.net.genesis
    )
    assert checked.status == ISSUED


def test_replace_key_by_governance_wins_over_a_rotation_in_the_same_block(chain: Chain) -> None:
    c = chain
    thief = SigningKey.from_seed(_seed("thief"))
    rightful = SigningKey.from_seed(_seed("rightful"))
    replace = [
        gov.AUTHORITY,
        rightful.public_bytes,
        authoring.prove(rightful, "kp-test", "IN", "authority"),
    ]
    proposal = c.propose(gov.REPLACE_KEY, "IN", replace, by="AE")
    c.commit([proposal, c.vote(proposal, by="BE"), c.vote(proposal, by="RU")])
    c.until(proposal.body.effective_height - 2)
    rotation = authoring.rotate_key(
        c.net.chain_id, "IN", gov.AUTHORITY, thief, c.net.key("IN"), created_ms=1
    )
    c.commit([rotation])
    assert c.registry.participants["IN"].authority_key == rightful.public_bytes


def test_an_encryption_key_rotation_changes_who_new_identities_are_sealed_to(
    chain: Chain,
) -> None:
    c = chain
    new = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("ae-enc-2")))
    rotate = authoring.rotate_key(
        c.net.chain_id,
        "AE",
        gov.ENCRYPTION,
        new,
        c.net.key("AE"),
        created_ms=c.net.tick(),
    )
    c.commit([rotate])
    assert dict(c.registry.recipients_for("BE", "AE"))["AE"] == new.public_bytes


def test_one_key_cannot_vote_twice(chain: Chain) -> None:
    """The attack of issue 22: IN rotates to RU's key, then RU's key signs IN's vote."""
    c = chain
    refused = c.commit([_rotate(c, "IN", gov.AUTHORITY, c.net.key("RU"))]).refused
    assert [type(x) for _, x in refused] == [errors.KeyInUse]
    assert c.registry.participants["IN"].authority_key == c.net.key("IN").public_bytes
    proposal = c.propose(gov.SUSPEND, "RU")
    c.commit([proposal, c.vote(proposal, by="AE")])
    late = c.commit([c.vote(proposal, by="IN", key=c.net.key("RU"))])
    assert [type(x) for _, x in late.refused] == [errors.SignedByAnotherParticipant]
    assert late.refused[0][1].message.startswith("signed by RU's authority key;")
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.yes == 2 and record.status == gov.OPEN


def test_a_passed_admission_fails_when_its_key_was_taken_in_between(chain: Chain) -> None:
    """Checked when proposed, and again when it takes effect: a rotation took the key since."""
    c = chain
    m = newcomer()
    proposal = c.propose(gov.ADMIT, "BW", admit_args(c, m), effective=6)
    c.commit([proposal, c.vote(proposal, by="AE"), c.vote(proposal, by="IN")])
    # RU gets the newcomer's private key and rotates to it before the admission is in force.
    c.commit([_rotate(c, "RU", gov.AUTHORITY, m.authority)])
    c.until(5)
    record = c.store.get_proposal(proposal.event_id)
    assert record is not None and record.status == gov.FAILED
    assert record.note.startswith("key_in_use"), record.note
    assert "BW" not in c.registry.participants


def _off_curve_y() -> bytes:
    """An Ed25519 encoding whose y has no x on the curve."""
    p, d = 2**255 - 19, -121665 * pow(121666, 2**255 - 21, 2**255 - 19)
    for y in range(2, 100):
        x2 = (y * y - 1) * pow(d * y * y + 1, p - 2, p) % p
        if pow(x2, (p - 1) // 2, p) == p - 1:
            return y.to_bytes(32, "little")
    raise AssertionError("no off-curve y below 100")  # pragma: no cover


def _twist_u() -> bytes:
    """A u-coordinate on the twist of Curve25519, not on the curve."""
    p = 2**255 - 19
    for u in range(2, 100):
        if pow((u**3 + 486662 * u * u + u) % p, (p - 1) // 2, p) == p - 1:
            return u.to_bytes(32, "little")
    raise AssertionError("no twist point below 100")  # pragma: no cover


ED25519_BAD = {
    "identity": bytes([1]) + bytes(31),
    "all zeros (order 4)": bytes(32),
    "order 2": bytes.fromhex("ec" + "ff" * 30 + "7f"),
    "order 8": bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    "non-canonical y >= p": bytes.fromhex("ed" + "ff" * 30 + "7f"),
    "off the curve": _off_curve_y(),
}
X25519_BAD = {
    "all zeros": bytes(32),
    "u = 1 (order 4)": bytes([1]) + bytes(31),
    "order 8": (
        325606250916557431795983626356110631294008115727848805560023387167927233504
    ).to_bytes(32, "little"),
    "u = p - 1": (2**255 - 20).to_bytes(32, "little"),
    "non-canonical u = p": (2**255 - 19).to_bytes(32, "little"),
    "on the twist": _twist_u(),
}


@pytest.mark.parametrize(
    ("kind", "what"),
    [(gov.AUTHORITY, w) for w in ED25519_BAD] + [(gov.ENCRYPTION, w) for w in X25519_BAD],
)
def test_a_rotation_to_an_invalid_point_is_refused(chain: Chain, kind: str, what: str) -> None:
    bad = (ED25519_BAD if kind == gov.AUTHORITY else X25519_BAD)[what]
    with pytest.raises(errors.InvalidPublicKey) as caught:
        _rotate(chain, "IN", kind, bad, proof=bytes(64))
    assert caught.value.code == "invalid_public_key" and caught.value.http_status == 400
    # Nor can governance bring one in, as a replacement, a new participant's or a validator's.
    with pytest.raises(errors.InvalidPublicKey):
        chain.propose(gov.REPLACE_KEY, "IN", [kind, bad, bytes(64)])
    if kind == gov.AUTHORITY:
        with pytest.raises(errors.InvalidPublicKey):
            chain.propose(gov.ADD_VALIDATOR, "IN", [bad, "http://127.0.0.1:9"])
        with pytest.raises(errors.InvalidPublicKey):
            chain.propose(gov.RESTRICT, "IN", [["ZONE-A"], bad])


def test_generated_keys_are_valid_points_and_prove_possession() -> None:
    import nacl.bindings

    from ledger.keys import (
        _montgomery_to_edwards,
        is_valid_ed25519_public,
        is_valid_x25519_public,
        verify_possession,
    )

    for i in range(20):
        signing = SigningKey.from_seed(_seed("valid", str(i)))
        encryption = EncryptionKey(x25519.X25519PrivateKey.from_private_bytes(_seed("x", str(i))))
        assert is_valid_ed25519_public(signing.public_bytes)
        assert is_valid_x25519_public(encryption.public_bytes)
        # XEdDSA: our u's Edwards form is the point libsodium maps back to the same u.
        edwards = _montgomery_to_edwards(encryption.public_bytes)
        assert (
            nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(edwards) == encryption.public_bytes
        )
        for key, role in ((signing, gov.AUTHORITY), (encryption, gov.ENCRYPTION)):
            proof = key.prove_possession("kp-test", "BW", role)
            assert verify_possession(key.public_bytes, role, "kp-test", "BW", proof)
            assert not verify_possession(key.public_bytes, role, "kp-test", "BE", proof)
            assert not verify_possession(key.public_bytes, role, "kp-other", "BW", proof)
            flipped = bytes([proof[0] ^ 1]) + proof[1:]
            assert not verify_possession(key.public_bytes, role, "kp-test", "BW", flipped)
        assert not verify_possession(
            signing.public_bytes,
            gov.NODE,
            "kp-test",
            "BW",
            signing.prove_possession("kp-test", "BW", gov.AUTHORITY),
        )
