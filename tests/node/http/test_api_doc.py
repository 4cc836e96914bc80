"""docs/api/README.md tells a customs system how to sign events without our code: its Python
recipes (msgpack and cryptography only) must produce what the ledger accepts, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ledger import authoring
from ledger.certificate import Certificate
from ledger.confidential import open_sealed
from ledger.events import Event
from ledger.store import Store
from tests.helpers import TestNetwork

DOC = Path(__file__).resolve().parents[3] / "docs" / "api" / "README.md"


@pytest.fixture(scope="module")
def recipes() -> dict[str, Any]:
    """Every ```python block of the page, run in one namespace (imports included)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2, "the page lost its recipes"
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def test_confirmation_recipe_is_byte_for_byte_ours(recipes: dict[str, Any]) -> None:
    net = TestNetwork()
    issuance = net.issue(net.certificate("BE", "AE"))
    number = issuance.event.body.facts.number
    created = net.tick()
    envelope, event_id = recipes["build_confirmation"](
        net.chain_id, "AE", number, issuance.digest.hex(), net.key("AE").to_pem(), created
    )
    ours = authoring.confirm_import(
        net.chain_id, "AE", number, issuance.digest, net.key("AE"), created_ms=created
    )
    assert envelope == ours.to_envelope()
    assert event_id == ours.event_id.hex()
    assert Event.from_envelope(envelope).event_id == ours.event_id


def test_issuance_recipe_is_accepted_and_opens_for_both_parties(
    recipes: dict[str, Any], tmp_path: Path
) -> None:
    net = TestNetwork(extra_recipients=[("BE", "monitor-BE")])
    certificate = net.certificate_json("BE", "AE")
    ours = Certificate.from_json(dict(certificate))
    for field in ("carats", "value_usd"):  # the recipe takes hundredths, as on the wire
        whole, _, cents = certificate[field].partition(".")
        certificate[field] = int(whole) * 100 + int(cents.ljust(2, "0"))
    recipients = net.registry.recipients_for("BE", "AE")
    assert [name for name, _ in recipients] == ["BE", "AE", "monitor-BE"]
    envelope, event_id, salt = recipes["build_issuance"](
        net.chain_id, certificate, recipients, net.key("BE").to_pem(), net.tick()
    )

    event = Event.from_envelope(envelope)
    assert event.event_id.hex() == event_id
    assert event.body.facts == ours.facts
    for name, key in (
        ("BE", net.members["BE"].encryption),
        ("AE", net.members["AE"].encryption),
        ("monitor-BE", net.extra_keys["monitor-BE"]),
    ):
        identities, opened_salt = open_sealed(event.body.sealed, certificate["number"], name, key)
        assert identities == ours.identities
        assert opened_salt == salt

    store = Store(tmp_path / "chain", net.genesis)
    try:
        execution = net.commit_block(store, [event])
        assert not execution.refused
        record = store.get_certificate(certificate["number"])
        assert record is not None
        assert record.digest == ours.digest(salt)
        # The importer confirms it with the other recipe, against that digest.
        confirmation, _ = recipes["build_confirmation"](
            net.chain_id, "AE", ours.number, record.digest.hex(), net.key("AE").to_pem(), net.tick()
        )
        execution = net.commit_block(store, [Event.from_envelope(confirmation)])
        assert not execution.refused
        confirmed = store.get_certificate(ours.number)
        assert confirmed is not None and confirmed.status == "import_confirmed"
    finally:
        store.close()
