"""The verification page's own verifier (node/web/verify/kpproof.js), under Node.js, against
docs/testvectors/public_answers.json: the same verdict as ours on every genuine and tampered answer."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def js_verdicts(*flags: str) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed, so the page's verifier cannot run outside a browser")
    done = subprocess.run(
        [node, str(REPO / "tests" / "js" / "public_answers.mjs"), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("engine", ["webcrypto", "fallback"])
def test_every_public_answer_vector_gets_our_verdict(engine: str) -> None:
    vectors = json.loads((REPO / "docs" / "testvectors" / "public_answers.json").read_text())
    got = js_verdicts(*(["--fallback"] if engine == "fallback" else []))
    assert [g["name"] for g in got] == [v["name"] for v in vectors["vectors"]]
    for vector, verdict in zip(vectors["vectors"], got, strict=True):
        want = vector["verdict"]
        verdict.pop("name")
        assert verdict == want, vector["name"]


def test_the_vendored_libraries_are_the_pinned_ones() -> None:
    vendor = REPO / "node" / "web" / "verify" / "vendor"
    listed = {}
    for line in (vendor / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {
        p.relative_to(vendor).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in vendor.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS"
    }
    assert present == listed
