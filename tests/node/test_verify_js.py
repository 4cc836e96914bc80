"""The verification page's own verifier (node/web/verify/kpproof.js), under Node.js, against
docs/testvectors/public_answers.json: the same verdict as ours on every genuine and tampered answer."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def js_verdicts() -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed, so the page's verifier cannot run outside a browser")
    done = subprocess.run(
        [node, str(REPO / "tests" / "js" / "public_answers.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_public_answer_vector_gets_our_verdict() -> None:
    vectors = json.loads((REPO / "docs" / "testvectors" / "public_answers.json").read_text())
    got = js_verdicts()
    assert [g["name"] for g in got] == [v["name"] for v in vectors["vectors"]]
    for vector, verdict in zip(vectors["vectors"], got, strict=True):
        want = vector["verdict"]
        verdict.pop("name")
        assert verdict == want, vector["name"]
