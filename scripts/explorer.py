"""The chain explorer from a checkout: `python scripts/explorer.py head --node URL` (= `kpledger explore`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.cli.explore import explore

if __name__ == "__main__":
    explore(prog_name="explorer.py")
