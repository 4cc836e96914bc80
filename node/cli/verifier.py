"""`kpledger verifier export`: one self-contained HTML file, the genesis pinned inside, that checks
any certificate number against any node's public endpoint in the browser (docs/verification.md)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click

from ledger.errors import LedgerError
from ledger.genesis import Genesis
from node.cli.common import EXIT_USAGE, Command, Group, emit, fail
from node.files import load_genesis
from node.http.verify import script_json


def _asset(name: str) -> str:
    return resources.files("node").joinpath("web", "verify", name).read_text(encoding="utf-8")


def standalone_verifier(genesis: Genesis) -> str:
    """The verifier page with its script, style and `genesis` inline: it loads nothing else."""
    proof = _asset("kpproof.js")
    ui = "\n".join(
        line for line in _asset("verify.js").splitlines() if not line.startswith("import ")
    )
    boot = f"""
const GENESIS = {script_json(genesis.to_json())};
document.getElementById('kp-network').textContent = GENESIS.chain_id;
document.getElementById('kp-genesis-hash').textContent = {json.dumps(genesis.hash.hex())};
start({{genesis: GENESIS, number: null, digest: null, nodeUrl: null}});
"""
    script = f"{proof}\n{ui}\n{boot}"
    if "</script" in script.lower():
        raise AssertionError("a script inline in HTML must not contain </script")
    page = _asset("standalone.html")
    return page.replace("/*CSS*/", _asset("verify.css")).replace("/*SCRIPT*/", script)


@click.group(cls=Group)
def verifier() -> None:
    """The standalone verifier: a file a customs agency hosts anywhere or opens from disk."""


@verifier.command("export", cls=Command)
@click.option(
    "--genesis",
    "genesis_path",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The network's genesis.json, pinned in the file: the only thing it trusts.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the HTML file.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verifier_export(genesis_path: Path, out_path: Path, as_json: bool) -> None:
    """Write one self-contained HTML file that checks any certificate number against any node's
    public endpoint, in the browser, trusting nothing but the pinned genesis."""
    try:
        genesis = load_genesis(genesis_path)
    except LedgerError as exc:
        fail(exc.message, EXIT_USAGE, as_json=as_json, code="usage")
    page = standalone_verifier(genesis)
    try:
        out_path.write_text(page, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out_path}: {exc.strerror}", EXIT_USAGE, as_json=as_json, code="usage")
    emit(
        {
            "verifier": str(out_path),
            "chain_id": genesis.chain_id,
            "genesis_hash": genesis.hash.hex(),
        },
        as_json,
        f"{out_path}: verifier for {genesis.chain_id} (genesis {genesis.hash.hex()[:16]}...), "
        f"{len(page.encode())} bytes; open it in a browser, or host it anywhere",
    )
