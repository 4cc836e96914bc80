"""Write docs/testvectors/*.json: the bytes and verdicts another implementation must reproduce.

Every vector is computed here by the ledger's own code from fixed inputs (seeds, salts, times, and
the HPKE ephemeral keys, sealed by a from-scratch RFC 9180 implementation in scripts/testvectors/crypto.py that the ledger's
code must open), so the files are the same on every run. tests/ledger/test_testvectors.py checks
the implementation against every vector and fails if a file is not what this script writes now.

    .venv/bin/python scripts/make_testvectors.py          write the files
    .venv/bin/python scripts/make_testvectors.py --check  exit 1 if a file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.testvectors.answers import genesis_vector, public_answer_vectors, state_tree_vectors  # noqa: E402

# tests/ledger/test_testvectors.py reads `untyped` from this module.
from scripts.testvectors.chain import built_chain, untyped  # noqa: E402, F401
from scripts.testvectors.primitives import (  # noqa: E402
    ed25519_vectors,
    encoding_vectors,
    event_vectors,
    hash_vectors,
    merkle_vectors,
)

OUT = REPO / "docs" / "testvectors"


def build_all() -> dict[str, Any]:
    """Every vector file's content, by file name."""
    with built_chain() as (g, store, chain):
        return {
            "encoding.json": encoding_vectors(),
            "hashes.json": hash_vectors(g),
            "ed25519.json": ed25519_vectors(),
            "merkle.json": merkle_vectors(),
            "state_tree.json": state_tree_vectors(),
            "genesis.json": genesis_vector(g),
            "events.json": event_vectors(chain),
            "public_answers.json": public_answer_vectors(g, store, chain),
        }


def render(content: Any) -> str:
    return json.dumps(content, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in build_all().items():
        path = OUT / name
        text = render(content)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run scripts/make_testvectors.py", file=sys.stderr)
        return 1
    print(f"{'stale' if args.check else 'written'}: {', '.join(stale) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
