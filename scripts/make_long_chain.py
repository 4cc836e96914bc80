"""Build a long, valid chain offline: a 4-participant network whose data dirs hold N events.

    .venv/bin/python scripts/make_long_chain.py --dir DIR [--events 1000000] [--plain-http]
        [--holders BE,AE,IN,RU] [--base-port P] [--json]

Benchmarks of catch-up, snapshot restore, public lookups and the audit need a chain far longer
than consensus on this machine builds in a session (877 finalised events/s would take 19
minutes for a million). This writes one straight into the data directories instead, with the
real ledger code: `kpledger network init`'s layout (genesis, keys, node.toml), certificates
issued by the exporters' authority keys (identities sealed to the parties), confirmations,
rejections and voids signed by their authorities, blocks executed by `ledger.chain.build_block`
and stored by `ledger.store`, each with a commit certificate signed by a quorum of the
validators' node keys. Byte for byte what the nodes would have stored had consensus ordered the
same events into the same blocks; `kpledger audit --data DIR/BE/data` passes on it, and
`kpledger node run --config DIR/BE/node.toml` serves it.

What is not real: the nodes never ran, so the blocks' times are one second apart, every event
was signed at one moment (the first block's time: within `max_event_age_ms`), and signature
checks are skipped while building (each event was just signed here; the audit re-checks them).

The holders (default all four) get a copy of the chain; a participant left out keeps an empty
data dir, to measure a node that catches up. DIR/chain.json records what was built.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import socket
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ledger import authoring  # noqa: E402
from ledger.certificate import Certificate  # noqa: E402
from ledger.chain import build_block  # noqa: E402
from ledger.consensus.messages import CommitCertificate, Vote, VoteKind, quorum_size  # noqa: E402
from ledger.encoding import encode  # noqa: E402
from ledger.events import Event  # noqa: E402
from ledger.keys import SigningKey  # noqa: E402
from ledger.registry import Registry  # noqa: E402
from ledger.store import Store  # noqa: E402
from node.files import load_genesis, load_signing_key  # noqa: E402
from node.netinit import init_network, parse_participants  # noqa: E402

CODES = ("BE", "AE", "IN", "RU")
CHAIN_ID = "kp-long-chain"
HS_CODES = ("7102.10", "7102.21", "7102.31")
ORIGINS = (["BW"], ["RU"], ["CD"], ["AO"], ["ZA"], ["CA"], ["NA", "BW"], ["MIXED"])
BLOCK_EVENTS = 2000
#: Certificates signed per task of the signing pool.
CHUNK = 1000
#: What a certificate brings on average: its issue, and a decision for 55% of them.
EVENTS_PER_CERTIFICATE = 1.55
MANIFEST = "chain.json"


def number(i: int) -> str:
    """The number of the i-th certificate of the chain (its exporter is CODES[i % 4])."""
    return f"{CODES[i % 4]}-B{i:08d}"


def free_port() -> int:
    """A port number for genesis's addresses when the caller names none (nothing need listen
    on it: a benchmark overrides the port of the one node it starts)."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sign_chunk(job: tuple[str, str, int, list[int]]) -> list[tuple[bytes, bytes | None]]:
    """Issue certificates `indexes` (and their follow-up), all signed at `created_ms`:
    [(issue encoding, follow-up encoding or None)]."""
    directory, chain_id, created_ms, indexes = job
    genesis = load_genesis(Path(directory) / "genesis.json")
    registry = Registry.from_genesis(genesis)
    keys = {c: load_signing_key(Path(directory) / c / "authority.pem") for c in CODES}
    signed_on = datetime.fromtimestamp(created_ms / 1000, UTC).date()
    out = []
    for i in indexes:
        rng = random.Random(i)
        exporting = CODES[i % 4]
        importing = CODES[(i + 1 + i // 4 % 3) % 4]
        issued_on = signed_on - timedelta(days=rng.randint(0, 6))  # within max_backdating_days
        raw = {
            "number": number(i),
            "exporting_participant": exporting,
            "importing_participant": importing,
            "origin": ORIGINS[i % len(ORIGINS)],
            "hs_code": HS_CODES[i % 3],
            "carats": f"{rng.randint(1, 90000)}.{rng.randint(0, 99):02d}",
            "value_usd": f"{rng.randint(100, 9_000_000)}.{rng.randint(0, 99):02d}",
            "parcels": rng.randint(1, 12),
            "exporter": {"name": f"Exporter {i} Ltd", "address": f"{i} Bourse Street"},
            "importer": {"name": f"Importer {i} LLC", "address": f"{i} Harbour Road"},
            "issued_on": issued_on.isoformat(),
            "expires_on": (issued_on + timedelta(days=120)).isoformat(),
        }
        issuance = authoring.issue(
            registry, chain_id, Certificate.from_json(raw), keys[exporting], created_ms=created_ms
        )
        roll = rng.random()
        follow: Event | None = None
        digest, code = issuance.digest, raw["number"]
        if roll < 0.45:
            follow = authoring.confirm_import(
                chain_id, importing, code, digest, keys[importing], created_ms=created_ms
            )
        elif roll < 0.50:
            follow = authoring.reject_import(
                chain_id, importing, code, digest, "seal broken", keys[importing],
                created_ms=created_ms,
            )  # fmt: skip
        elif roll < 0.55:
            follow = authoring.void(
                chain_id, exporting, code, "error", keys[exporting], created_ms=created_ms
            )
        out.append((issuance.event.encoded, follow.encoded if follow else None))
    return out


def commit_certificate(
    chain_id: str, height: int, value: bytes, node_keys: list[SigningKey]
) -> bytes:
    """The encoded commit certificate a quorum of `node_keys` signs for block `value`."""
    votes = [
        Vote.create(node_keys[i], chain_id, VoteKind.PRECOMMIT, height, 0, value, i)
        for i in range(quorum_size(len(node_keys)))
    ]
    cert = CommitCertificate(height, 0, value, tuple((v.validator, v.signature) for v in votes))
    return encode(cert.to_wire())


def _sign(
    directory: Path,
    chain_id: str,
    created_ms: int,
    log: Callable[[str], None],
    *,
    events: int | None = None,
    certificates: int | None = None,
) -> tuple[int, list[bytes]]:
    """Sign `certificates` certificates and their decisions, or as many as bring `events`
    events: (certificates, the events in the order the blocks take them: every issue, then the
    decisions, cut at `events`: never more issues than events, so the cut drops decisions only)."""
    issues: list[bytes] = []
    follows: list[bytes] = []
    started = time.monotonic()
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        while True:
            if certificates is not None:
                count = certificates - len(issues)
            else:
                assert events is not None
                missing = events - len(issues) - len(follows)
                count = min(missing, round(missing / EVENTS_PER_CERTIFICATE) + CHUNK // 10)
            if count <= 0:
                break
            first = len(issues)
            jobs = [
                (
                    str(directory),
                    chain_id,
                    created_ms,
                    list(range(s, min(s + CHUNK, first + count))),
                )
                for s in range(first, first + count, CHUNK)
            ]
            for chunk in pool.imap(_sign_chunk, jobs):
                for issue, follow in chunk:
                    issues.append(issue)
                    if follow is not None:
                        follows.append(follow)
                if len(issues) % (50 * CHUNK) == 0:
                    log(
                        f"  signed {len(issues):,} certificates ({time.monotonic() - started:.0f} s)"
                    )
    encoded = issues + follows
    return len(issues), encoded if events is None else encoded[:events]


def build(
    directory: Path,
    events: int | None = None,
    *,
    certificates: int | None = None,
    tls: bool = True,
    holders: tuple[str, ...] = CODES,
    base_port: int | None = None,
    chain_id: str = CHAIN_ID,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write a network in `directory` (which must not hold one) whose holders' data dirs hold a
    chain of `events` events (or of `certificates` certificates and their decisions); returns
    what DIR/chain.json records."""
    if (events is None) == (certificates is None):
        raise ValueError("give the chain's length in events or in certificates")
    started = time.monotonic()
    init_network(
        directory,
        parse_participants(",".join(CODES)),
        base_port=base_port or free_port(),
        chain_id=chain_id,
        tls=tls,
    )
    genesis = load_genesis(directory / "genesis.json")
    registry = Registry.from_genesis(genesis)
    node_keys = [
        load_signing_key(directory / v.participant / "node.pem") for v in genesis.validators
    ]
    length = events if events is not None else int((certificates or 0) * EVENTS_PER_CERTIFICATE)
    blocks = -(-length // BLOCK_EVENTS)
    # Blocks one second apart from the first, whose time every event was signed at: twice the
    # expected count of seconds before now (the decisions' share varies), and a minute more.
    first_block_ms = int(time.time() * 1000) - (2 * blocks + 60) * 1000
    signed, encoded = _sign(
        directory, chain_id, first_block_ms, log, events=events, certificates=certificates
    )
    log(f"  signed {signed:,} certificates: {len(encoded):,} events")
    store = Store(directory / holders[0] / "data", genesis)
    try:
        for index, start in enumerate(range(0, len(encoded), BLOCK_EVENTS)):
            batch = [Event.decode(e) for e in encoded[start : start + BLOCK_EVENTS]]
            height = store.height + 1
            execution = build_block(
                store,
                registry,
                genesis.hash,
                store.head,
                batch,
                chain_id=chain_id,
                time_ms=first_block_ms + index * 1000,
                proposer=height % len(node_keys),
                verified={e.event_id for e in batch},  # signed above by the authority keys
            )
            if execution.refused:
                _, error = execution.refused[0]
                raise SystemExit(f"block {height} refused an event: {error.code}: {error.message}")
            store.commit(
                execution, commit_certificate(chain_id, height, execution.header.hash, node_keys)
            )
            if height % 25 == 0:
                log(f"  block {height}/{blocks} ({time.monotonic() - started:.0f} s)")
        height = store.height
    finally:
        store.close()
    for code in holders[1:]:
        shutil.rmtree(directory / code / "data", ignore_errors=True)
        shutil.copytree(directory / holders[0] / "data", directory / code / "data")
    manifest = {
        "events": len(encoded),
        "certificates": signed,
        "blocks": height,
        "chain_id": chain_id,
        "tls": tls,
        "holders": list(holders),
        "build_s": round(time.monotonic() - started, 1),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"built {len(encoded):,} events in {height} blocks in {manifest['build_s']} s")
    return manifest


def built(
    directory: Path,
    *,
    events: int | None = None,
    certificates: int | None = None,
    tls: bool = True,
    holders: tuple[str, ...] = CODES,
    chain_id: str = CHAIN_ID,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The chain in `directory` if an earlier build left one at least that long, of the same
    transport and holders; else a new one, built over whatever `directory` held. Returns its
    DIR/chain.json record. (The benchmarks keep a long chain between runs with --dir.)"""
    manifest = directory / MANIFEST
    if manifest.exists():
        found: dict[str, Any] = json.loads(manifest.read_text())
        long_enough = found["events"] >= (events or 0) and found["certificates"] >= (
            certificates or 0
        )
        if long_enough and found["tls"] == tls and tuple(found["holders"]) == holders:
            log(f"reusing the chain in {directory}")
            return found
    if directory.exists():
        shutil.rmtree(directory)
    length = f"{events:,} events" if events is not None else f"{certificates:,} certificates"
    log(f"building {length} in {directory} ...")
    return build(
        directory,
        events,
        certificates=certificates,
        tls=tls,
        holders=holders,
        chain_id=chain_id,
        log=log,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="a new directory for the network")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the chain")
    parser.add_argument("--plain-http", action="store_true", help="a plain-HTTP network, not TLS")
    parser.add_argument(
        "--holders",
        default=",".join(CODES),
        help="participants whose data dir holds the chain (the others stay empty)",
    )
    parser.add_argument("--base-port", type=int, default=None, help="genesis's first port")
    parser.add_argument("--chain-id", default=CHAIN_ID)
    parser.add_argument("--json", action="store_true", help="print chain.json's record as JSON")
    args = parser.parse_args(argv)
    holders = tuple(code.strip().upper() for code in args.holders.split(",") if code.strip())
    unknown = [code for code in holders if code not in CODES]
    if not holders or unknown:
        parser.error(f"--holders: choose among {','.join(CODES)}")
    if args.events < 1:
        parser.error("--events: at least 1")
    if (args.dir / "genesis.json").exists():
        parser.error(f"{args.dir} already holds a network: give a new directory")
    log = (lambda _m: None) if args.json else print
    manifest = build(
        args.dir,
        args.events,
        tls=not args.plain_http,
        holders=holders,
        base_port=args.base_port,
        chain_id=args.chain_id,
        log=log,
    )
    if args.json:
        print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
