"""Crash-test writer: appends blocks to a store forever, printing each committed height and hash.

Run as `python tests/ledger/store/crash_writer.py DATA_DIR`; test_crash.py kills it with SIGKILL
at random moments and checks that the store reopens consistent, with every printed block in it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ledger import authoring
from tests.helpers import TestNetwork

CODES = ("BE", "AE", "IN", "RU")
SEED = "crash-test"


def network() -> TestNetwork:
    return TestNetwork(seed=SEED, chain_id="kp-crash")


def main(path: str) -> None:
    net = network()
    store = net.open_store(path)
    if store.head is not None:
        net.now_ms = store.head.time_ms
    while True:
        height = store.height + 1
        events = []
        # Decide some certificates issued earlier: confirm, reject or void them.
        for n, record in enumerate(store.certificates(status="issued", limit=3)):
            facts = record.facts
            choice = (height + n) % 5
            if choice < 3:
                events.append(
                    authoring.confirm_import(
                        net.chain_id,
                        facts.importing_participant,
                        facts.number,
                        record.digest,
                        net.key(facts.importing_participant),
                        created_ms=net.tick(),
                    )
                )
            elif choice == 3:
                events.append(
                    authoring.reject_import(
                        net.chain_id,
                        facts.importing_participant,
                        facts.number,
                        record.digest,
                        "parcel count differs",
                        net.key(facts.importing_participant),
                        created_ms=net.tick(),
                    )
                )
            else:
                events.append(
                    authoring.void(
                        net.chain_id,
                        facts.exporting_participant,
                        facts.number,
                        "error",
                        net.key(facts.exporting_participant),
                        created_ms=net.tick(),
                    )
                )
        for i in range(1 + height % 4):
            exporting = CODES[(height + i) % 4]
            importing = CODES[(height + i + 1 + i % 2) % 4]
            number = f"{exporting}-{height}-{i}"
            events.append(net.issue(exporting=exporting, importing=importing, number=number).event)
        execution = net.commit_block(store, events)
        assert not execution.refused, execution.refused
        print(height, execution.header.hash.hex(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
