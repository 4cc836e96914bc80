"""`kpledger token add|list|revoke` against a running node over TLS: the change holds at once,
without a restart, through the node's admin API; each scope where SPEC 6 allows it; and no token
in any line of the node's log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import Network, http
from tests.e2e.test_key_custody_e2e import kpledger

pytestmark = pytest.mark.slow


def test_token_commands_manage_the_running_node(tmp_path: Path) -> None:
    net = Network.create(tmp_path / "net", tls=True)
    net.lift_rate_limits()
    be = net.node("BE")
    config = str(be.config)
    try:
        net.start("BE")
        run = kpledger("token", "add", "--config", config, "--name", "reader", "--scope", "read",
                       "--json")  # fmt: skip
        assert run.returncode == 0, run.stderr
        reader = json.loads(run.stdout)["token"]
        # Human output prints the token once, on its own line.
        run = kpledger("token", "add", "--config", config, "--name", "deputy", "--scope", "admin",
                       "--expires-days", "30")  # fmt: skip
        assert run.returncode == 0, run.stderr
        deputy = run.stdout.splitlines()[0]
        assert deputy.startswith("kpt_") and "shown this once" in run.stdout
        # The node took them without a restart: the read token opens the confidential reads.
        status, _ = http("GET", be.url + "/v1/certificates", token=reader)
        assert status == 200
        # list, with the file's admin token, and with the deputy's over --node --token.
        run = kpledger("token", "list", "--config", config, "--json")
        assert run.returncode == 0, run.stderr
        listed = {t["name"]: t for t in json.loads(run.stdout)["tokens"]}
        assert listed["reader"]["state"] == "active" and listed["deputy"]["expires_ms"]
        assert reader not in run.stdout and deputy not in run.stdout
        genesis = str(net.directory / "genesis.json")
        run = kpledger("token", "list", "--node", be.url, "--genesis", genesis, "--json",
                       env={"KPLEDGER_TOKEN": deputy})  # fmt: skip
        assert run.returncode == 0, run.stderr
        # A read token cannot manage tokens: exit 2, the node's reason.
        run = kpledger("token", "add", "--node", be.url, "--genesis", genesis, "--token", reader,
                       "--name", "sneaky", "--scope", "admin", "--json")  # fmt: skip
        assert run.returncode == 2, run.stdout
        assert json.loads(run.stdout)["error"] == "token_scope"
        # Revoke: the next request with it is refused (401), for the API and the CLI alike.
        run = kpledger("token", "revoke", "reader", "--config", config, "--json")
        assert run.returncode == 0 and json.loads(run.stdout)["state"] == "revoked", run.stderr
        status, body = http("GET", be.url + "/v1/certificates", token=reader)
        assert status == 401 and body["error"] == "token_revoked"
        run = kpledger("cert", "show", "BE-X-1", "--node", be.url, "--token", reader, "--json",
                       env={"KPLEDGER_GENESIS": genesis})  # fmt: skip
        assert run.returncode == 2 and json.loads(run.stdout)["error"] == "token_revoked"
        # The ledger's no is exit 1: revoking a name never issued.
        run = kpledger("token", "revoke", "nobody", "--config", config, "--json")
        assert run.returncode == 1 and json.loads(run.stdout)["error"] == "unknown_token"
        # Nothing names the node: a usage error.
        run = kpledger("token", "list")
        assert run.returncode == 2 and "--config node.toml" in run.stderr
        be.stop()
        run = kpledger("token", "list", "--config", config)
        assert run.returncode == 2 and "is it running" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
        # The log names the tokens and never shows one.
        log = be.log.read_text(encoding="utf-8")
        assert '"token_name": "reader"' in log and '"event": "token revoked"' in log
        for token in (reader, deputy):
            assert token not in log
            assert token[4:] not in log
    finally:
        net.close()
