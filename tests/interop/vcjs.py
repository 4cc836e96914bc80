"""Run the third-party credential verifier (tests/interop/vc/verify.mjs, Digital Bazaar's VC stack
under Node.js) on credential files; skip, saying why, where Node.js or its packages are missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent / "vc"


def third_party_verdicts(files: list[Path], now: str | None = None) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed, so the third-party VC library cannot run")
    if not (HERE / "node_modules" / ".installed").exists():
        pytest.skip("tests/interop/vc has no node_modules: `make test` installs them (npm ci)")
    args = [node, str(HERE / "verify.mjs"), *(["--now", now] if now else []), *map(str, files)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
