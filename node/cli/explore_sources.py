"""Where `kpledger explore` reads from: a node's API (ApiSource) or a data directory (StoreSource)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ledger.encoding import decode
from ledger.errors import InvalidProof, LedgerError, StoreError
from ledger.genesis import Genesis, Validator
from ledger.proofs import CertificateProof, build_certificate_proof, verify_certificate_proof
from ledger.registry import Registry
from ledger.store import Store
from node.cli.common import EXIT_USAGE, fail, json_wanted, refused
from node.client import NodeClient, segment
from node.files import load_genesis
from node.views import certificate_facts_json, history_json


def _load_genesis(path: Path) -> Genesis:
    try:
        return load_genesis(path)
    except LedgerError as exc:
        fail(exc.message, EXIT_USAGE, as_json=_as_json(), code="usage")


def _as_json() -> bool:
    return json_wanted()


class NotOnLedger(Exception):
    """The ledger has no such block or certificate (exit 1)."""

    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}


def iso_time(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _proposer(validators: list[str], index: int) -> str:
    return validators[index] if 0 <= index < len(validators) else f"validator #{index}"


def block_summary(header: dict[str, Any], validators: list[str]) -> dict[str, Any]:
    """One line of a block listing, from a header in its JSON form."""
    return {
        "height": header["height"],
        "time": iso_time(header["time_ms"]),
        "time_ms": header["time_ms"],
        "events": header["event_count"],
        "proposer": _proposer(validators, header["proposer"]),
        "hash": header["hash"],
    }


def block_detail(
    header: dict[str, Any],
    signers: list[int],
    round_: int,
    events: list[dict[str, Any]],
    validators: list[str],
) -> dict[str, Any]:
    out = block_summary(header, validators)
    out.update(
        prev_hash=header["prev_hash"],
        event_count=header["event_count"],
        events_root=header["events_root"],
        state_root=header["state_root"],
        commit={
            "round": round_,
            "signatures": len(signers),
            "validators": [_proposer(validators, i) for i in signers],
        },
        events=events,
    )
    return out


def check_proof(proof_b64: str | None, genesis: Genesis, number: str) -> dict[str, Any]:
    """The result of checking a public proof against genesis, as the explorer reports it."""
    if not proof_b64:
        return {"result": "missing", "message": "the node gave no proof"}
    try:
        checked = verify_certificate_proof(CertificateProof.from_base64(proof_b64), genesis, number)
    except InvalidProof as exc:
        return {"result": "invalid", "message": exc.message}
    out: dict[str, Any] = {
        "result": "valid",
        "head_height": checked.head_height,
        "head_time": iso_time(checked.head_time_ms),
        "found": checked.found,
        "status": checked.status,
        "events": len(checked.history),
    }
    return out


class Source(Protocol):
    """Where the explorer reads the chain: a node's API or a stopped node's data directory."""

    kind: str

    def head(self, count: int) -> dict[str, Any]: ...

    def block(self, height: int) -> dict[str, Any]: ...

    def certificate(self, number: str) -> dict[str, Any]: ...

    def participants(self) -> dict[str, Any]: ...

    def stats(self, year: int, quarter: int | None) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ApiSource:
    """A node's public API; with the operator's token, its participant API too."""

    def __init__(self, url: str, token: str | None, genesis_path: Path | None) -> None:
        self.client = NodeClient(url, token)
        self.public = NodeClient(url)
        self.token = token
        self.kind = "participant" if token else "public"
        self.genesis_path = genesis_path
        self._validators: list[str] | None = None

    def close(self) -> None:
        pass

    def _get(self, path: str, client: NodeClient | None = None, **query: Any) -> dict[str, Any]:
        answer = (client or self.public).get(path, **query)
        if answer.status == 404 and isinstance(answer.body, dict):
            raise NotOnLedger(answer.error, answer.message, answer.body)
        if not answer.ok:
            refused(answer, _as_json())
        body: dict[str, Any] = answer.body
        return body

    def validators(self) -> list[str]:
        if self._validators is None:
            found = self._get("/v1/public/participants")
            self._validators = [v["participant"] for v in found["validators"]]
        return self._validators

    def head(self, count: int) -> dict[str, Any]:
        head = self._get("/v1/public/head")["header"]
        validators = self.validators()
        blocks = [block_summary(head, validators)]
        for height in range(head["height"] - 1, max(head["height"] - count, 0), -1):
            header = self._get(f"/v1/public/blocks/{height}")["header"]
            blocks.append(block_summary(header, validators))
        return {
            "source": self.kind,
            "chain_id": head["chain_id"],
            "height": head["height"],
            "hash": head["hash"],
            "time": iso_time(head["time_ms"]),
            "blocks": blocks[:count],
        }

    def block(self, height: int) -> dict[str, Any]:
        found = self._get(f"/v1/public/blocks/{height}")
        commit = found["commit_certificate"]
        # The public route gives event ids and types only: which certificate an event concerns
        # is read from the ledger's own store (--data), never published per block.
        events = [
            {"event_id": e["event_id"], "type": e["type"], "number": None} for e in found["events"]
        ]
        out = block_detail(
            found["header"],
            [s["validator"] for s in commit["signatures"]],
            commit["round"],
            events,
            self.validators(),
        )
        out["source"] = self.kind
        return out

    def _genesis(self) -> tuple[Genesis, str]:
        if self.genesis_path is not None:
            return _load_genesis(self.genesis_path), str(self.genesis_path)
        raw = self._get("/v1/public/genesis")
        try:
            return Genesis.from_json(raw), "the node's own genesis (pass --genesis to check it)"
        except LedgerError as exc:
            fail(f"the node's genesis does not read: {exc.message}", EXIT_USAGE, as_json=_as_json())

    def certificate(self, number: str) -> dict[str, Any]:
        genesis, against = self._genesis()
        answer = self.public.get(f"/v1/public/certificates/{segment(number)}")
        body = answer.body if isinstance(answer.body, dict) else {}
        if not answer.ok and answer.status != 404:
            refused(answer, _as_json())
        proof = check_proof(body.get("proof"), genesis, number)
        proof["checked_against"] = against
        if answer.status == 404:
            extra = {"number": number, "proof": proof} if "proof" in body else {"number": number}
            raise NotOnLedger(answer.error, answer.message, extra)
        public = {k: v for k, v in body.items() if k != "proof"}
        if proof["result"] == "valid" and proof["status"] != public.get("ledger_status"):
            proof = {
                "result": "invalid",
                "message": f"the node says {public.get('ledger_status')} but its proof says "
                f"{proof['status']}",
                "checked_against": against,
            }
        path = f"/v1/certificates/{segment(number)}"
        record = self._get(path, self.client) if self.token else public
        return {"source": self.kind, **record, "proof": proof}

    def participants(self) -> dict[str, Any]:
        path = "/v1/participants" if self.token else "/v1/public/participants"
        found = self._get(path, self.client)
        return _participants_json(
            found["participants"], found["validators"], self.kind, found.get("history", [])
        )

    def stats(self, year: int, quarter: int | None) -> dict[str, Any]:
        # With a token the participant API's live figures (and pairs); without, the public ones,
        # published per closed quarter (an open quarter is refused, saying when it will be).
        if self.token:
            data = self._get("/v1/stats", self.client, year=year, quarter=quarter)
        else:
            data = self._get("/v1/public/stats", year=year, quarter=quarter)
        return {"source": self.kind, **data}


class StoreSource:
    """A stopped node's LevelDB directory, opened through ledger.store and only read."""

    kind = "data"

    def __init__(self, data_dir: Path, genesis_path: Path) -> None:
        self.genesis = _load_genesis(genesis_path)
        # Store() would create an empty database in a wrong path: refuse before opening.
        if not (data_dir / "CURRENT").is_file():
            fail(f"{data_dir} is not a node's data directory (no LevelDB in it)", EXIT_USAGE)
        try:
            self.store = Store(data_dir, self.genesis)
        except StoreError as exc:
            fail(exc.message, EXIT_USAGE, as_json=_as_json(), code=exc.code)
        # Governance keeps the register in force in the store; until a change it is genesis's.
        stored = self.store.registry() if hasattr(self.store, "registry") else None
        self.registry = stored or Registry.from_genesis(self.genesis)

    def close(self) -> None:
        self.store.close()

    def validators(self, height: int) -> list[str]:
        """The validator set that signed block `height`, in order (proposer indexes into it)."""
        current = self.genesis.validators
        if hasattr(self.store, "validator_sets"):
            for first, validators in self.store.validator_sets():
                if first <= height:
                    current = validators
        return [v.participant for v in current]

    def _header(self, height: int) -> dict[str, Any]:
        header = self.store.header(height)
        if header is None:
            raise NotOnLedger("block_not_found", f"no final block at height {height}")
        out: dict[str, Any] = header.to_json()
        return out

    def head(self, count: int) -> dict[str, Any]:
        if self.store.head is None:
            raise NotOnLedger("no_blocks", "the ledger has no final block yet")
        height = self.store.height
        blocks = [
            block_summary(self._header(h), self.validators(h))
            for h in range(height, max(height - count, 0), -1)
        ]
        return {
            "source": self.kind,
            "chain_id": self.store.head.chain_id,
            "height": height,
            "hash": self.store.head.hash.hex(),
            "time": iso_time(self.store.head.time_ms),
            "blocks": blocks,
        }

    def block(self, height: int) -> dict[str, Any]:
        header = self._header(height)
        raw = self.store.commit_certificate_bytes(height)
        commit = decode(raw) if raw is not None else [None, height, 0, b"", []]
        events = []
        for leaf in self.store.event_leaves(height):
            event_id, event_type, number = decode(leaf)
            events.append({"event_id": event_id.hex(), "type": event_type, "number": number})
        signers = [i for i, _ in commit[4]]
        out = block_detail(header, signers, commit[2], events, self.validators(height))
        out["source"] = self.kind
        return out

    def certificate(self, number: str) -> dict[str, Any]:
        if self.store.head is None:
            raise NotOnLedger("no_blocks", "the ledger has no final block yet")
        try:
            proof = check_proof(
                build_certificate_proof(self.store, number).to_base64(), self.genesis, number
            )
        except InvalidProof as exc:
            proof = {"result": "invalid", "message": exc.message}
        proof["checked_against"] = "genesis.json, from this node's own store"
        record = self.store.get_certificate(number)
        if record is None:
            raise NotOnLedger(
                "certificate_not_found",
                f"certificate {number} is not on the ledger",
                {"number": number, "proof": proof},
            )
        out = certificate_facts_json(record, today=datetime.now(UTC).date())
        out["history"] = history_json(self.store, record)
        out["identities"] = (
            "sealed: the exporter and importer are readable only by the exporting and importing "
            "authorities' nodes"
        )
        return {"source": self.kind, **out, "proof": proof}

    def participants(self) -> dict[str, Any]:
        participants = [
            {**p.to_json(), "restricted": p.monitoring_key is not None}
            for p in self.registry.participants.values()
        ]
        validators = [v.to_json() for v in self.registry.validators]
        history = [
            {"height": height, "changes": [c.to_json() for c in changes]}
            for height, changes in self.store.register_history()
        ]
        return _participants_json(participants, validators, self.kind, history)

    def stats(self, year: int, quarter: int | None) -> dict[str, Any]:
        from node.reports import pair_stats

        # The data directory is the operator's own: the live figures, as the participant API.
        return {"source": self.kind, **pair_stats(self.store, year, quarter)}


def _participants_json(
    participants: list[dict[str, Any]],
    validators: list[dict[str, Any]],
    kind: str,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    validating = {v["participant"] for v in validators}
    return {
        "source": kind,
        "participants": [
            {
                "code": p["code"],
                "name": p["name"],
                "countries": p["countries"],
                "active": p["active"],
                "restricted": bool(p.get("restricted")),
                "validator": p["code"] in validating,
                "authority_key": p["authority_key"],
            }
            for p in participants
        ],
        "validators": [
            {"index": i, **Validator.from_json(v).to_json()} for i, v in enumerate(validators)
        ],
        # What governance changed, by the height each change is in force from.
        "history": [{"height": h["height"], **change} for h in history for change in h["changes"]],
    }
