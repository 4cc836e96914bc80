"""The `kpledger` command line against a live network: SPEC 2's exit statuses, numbers as people
type them, the token from the environment or node.toml, --json failures, and no traceback ever."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from node.cli import main
from tests.e2e.harness import REPO, Network, http
from tests.node.conftest import Issued, Signer, build_demo_chain

pytestmark = pytest.mark.slow

#: Nothing listens there (port 9 is "discard", never served on a test machine).
NOWHERE = "http://127.0.0.1:9"


@dataclass
class Cli:
    """A live network with the demo trade, and the CLI run in-process against it."""

    net: Network
    issued: list[Issued]
    tmp: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        # KPLEDGER_TOKEN is unset unless a test sets it: the machine's own must not leak in.
        # KPLEDGER_GENESIS names the network's genesis, whose node keys the CLI pins (as an
        # operator sets it once for commands that take no --genesis, --key or --config).
        base = {"COLUMNS": "200", "KPLEDGER_TOKEN": None, "KPLEDGER_GENESIS": self.genesis}
        runner = CliRunner(env={**base, **(env or {})})  # type: ignore[dict-item]
        result = runner.invoke(main, list(args), catch_exceptions=True)
        # No input makes a traceback: an exception that escapes the CLI is a defect.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            repr(result.exception),
            result.output,
        )
        assert "Traceback" not in result.output, (args, result.output)
        return result

    def url(self, code: str = "BE") -> str:
        return self.net.node(code).url

    def token(self, code: str = "BE") -> str:
        return self.net.node(code).token

    def config(self, code: str = "BE") -> str:
        return str(self.net.node(code).config)

    def key(self, code: str) -> str:
        return str(self.net.directory / code / "authority.pem")

    @property
    def genesis(self) -> str:
        return str(self.net.directory / "genesis.json")

    def data_dir(self, code: str = "BE") -> str:
        config = self.net.node(code).config
        return str(config.parent / tomllib.loads(config.read_text())["data_dir"])

    def by_fate(self, fate: str, exporting: str = "BE", importing: str | None = None) -> Issued:
        return next(
            i
            for i in self.issued
            if i.fate == fate
            and i.exporting == exporting
            and (importing is None or i.importing == importing)
        )


@pytest.fixture(scope="module")
def cli(network_factory: Callable[..., Network], tmp_path_factory: pytest.TempPathFactory) -> Cli:
    net = network_factory("cli")
    issued = build_demo_chain(net, Signer.for_network(net), tag="CLI")
    return Cli(net, issued, tmp_path_factory.mktemp("cli-files"))


def failure_json(result: Result) -> dict[str, Any]:
    """What --json prints for a failure: one JSON object on stdout with error and message."""
    out: dict[str, Any] = json.loads(result.stdout)
    assert isinstance(out.get("error"), str) and out["error"], out
    assert isinstance(out.get("message"), str) and out["message"], out
    return out


def pasted(number: str) -> str:
    """A number as a person pastes it: lower case, a space before, a space and a newline after."""
    return f" {number.lower()} \n"


# -- 1. numbers as a person types them ------------------------------------------------------------
def test_a_pasted_number_just_works_everywhere(cli: Cli) -> None:
    confirmed = cli.by_fate("import_confirmed")
    typed = pasted(confirmed.number)
    done = cli.run("verify", typed, "--node", cli.url("IN"), "--genesis", cli.genesis, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["number"] == confirmed.number
    done = cli.run("cert", "show", typed, "--node", cli.url(), "--token", cli.token())
    assert done.exit_code == 0, done.output
    assert f"Certificate {confirmed.number}" in done.stdout
    done = cli.run("explore", "cert", typed, "--node", cli.url(), "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["proof"]["result"] == "valid"
    out = cli.tmp / "pasted.pdf"
    done = cli.run(
        "cert", "pdf", typed, "--node", cli.url(), "--token", cli.token(), "--out", str(out)
    )
    assert done.exit_code == 0, done.output
    assert out.read_bytes().startswith(b"%PDF")
    # A decision signed for a pasted number names the number exactly as the ledger has it.
    issued = cli.by_fate("issued", "AE", "RU")
    done = cli.run(
        "cert",
        "confirm",
        pasted(issued.number),
        "--node",
        cli.url("RU"),
        "--key",
        cli.key("RU"),
        "--wait",
        "--json",
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["number"] == issued.number
    # The routes do the same, and the number is quoted on the wire.
    quoted = "%20" + issued.number.lower() + "%20"
    status, body = http("GET", f"{cli.url()}/v1/public/certificates/{quoted}")
    assert status == 200 and body["number"] == issued.number
    assert body["status"] == "import_confirmed"
    status, body = http("GET", f"{cli.url()}/v1/public/verify/{quoted}")
    assert status == 200 and body["number"] == issued.number
    status, body = http("GET", f"{cli.url()}/v1/certificates/{quoted}", token=cli.token())
    assert status == 200 and body["number"] == issued.number


MALFORMED = ("BE 2026 000123", "BE-2026-000123 X", "XX-2026-1", "BE_2026", "B", "BE-" + "9" * 21)


def _number_commands(cli: Cli, number: str) -> list[list[str]]:
    node, key = ["--node", cli.url()], ["--key", cli.key("BE")]
    token = ["--token", cli.token()]
    return [
        ["verify", number, *node, "--genesis", cli.genesis],
        ["cert", "show", number, *node, *token],
        ["cert", "pdf", number, *node, *token, "--out", str(cli.tmp / "never.pdf")],
        ["cert", "confirm", number, *node, *key],
        ["cert", "reject", number, "--reason", "seal broken", *node, *key],
        ["cert", "void", number, "--reason", "lost", *node, *key],
        ["cert", "endorse", number, *node, *key],
        ["explore", "cert", number, *node],
    ]


@pytest.mark.parametrize("number", MALFORMED)
def test_a_malformed_number_is_a_clear_exit_1(cli: Cli, number: str) -> None:
    for args in _number_commands(cli, number):
        done = cli.run(*args)
        assert done.exit_code == 1, (args, done.output)
        assert "is not a certificate number" in done.output, (args, done.output)
        done = cli.run(*args, "--json")
        assert done.exit_code == 1, (args, done.output)
        assert failure_json(done)["error"] == "invalid_certificate_number", args
    assert not (cli.tmp / "never.pdf").exists()
    quoted = "".join(c if c.isalnum() or c == "-" else f"%{ord(c):02X}" for c in number)
    for path in ("/v1/public/certificates/", "/v1/public/verify/"):
        status, body = http("GET", cli.url() + path + quoted)
        assert status == 400 and body["error"] == "invalid_certificate_number", (path, body)


# -- 2. the token: --token, KPLEDGER_TOKEN, --config node.toml; wrong tokens exit 2 ---------------
def test_the_token_from_the_environment_or_node_toml(cli: Cli) -> None:
    number = cli.by_fate("import_confirmed").number
    env = {"KPLEDGER_TOKEN": cli.token()}
    node = ["--node", cli.url()]
    for how, extra, given_env in (
        ("env", [], env),
        ("config", ["--config", cli.config()], None),
        # --config beats the environment (it is on this command line); --token beats both.
        ("config over env", ["--config", cli.config()], {"KPLEDGER_TOKEN": "wrong-token-xyz"}),
        ("token over env", ["--token", cli.token()], {"KPLEDGER_TOKEN": "wrong-token-xyz"}),
    ):
        done = cli.run("cert", "show", number, *node, *extra, "--json", env=given_env)
        assert done.exit_code == 0, (how, done.output)
        assert json.loads(done.stdout)["number"] == number
        done = cli.run("reconcile", *node, *extra, "--json", env=given_env)
        assert done.exit_code == 0, (how, done.output)
        done = cli.run("stats", *node, "--year", "2026", *extra, "--json", env=given_env)
        assert done.exit_code == 0 and "pairs" in json.loads(done.stdout), (how, done.output)
        done = cli.run("explore", "cert", number, *node, *extra, "--json", env=given_env)
        assert done.exit_code == 0 and json.loads(done.stdout)["source"] == "participant", how
    done = cli.run("audit", *node, "--workers", "1", "--json", env=env)
    assert done.exit_code == 0 and json.loads(done.stdout)["scope"] == "full", done.output
    # The environment's token is not forced on a data directory (which takes none).
    done = cli.run(
        "explore", "participants", "--data", cli.data_dir("BE"), "--genesis", cli.genesis
    )
    assert done.exit_code in (0, 2), done.output  # 2: the running node holds the store
    # Both on one command line: which one is meant is unclear.
    done = cli.run("cert", "show", number, *node, "--token", cli.token(), "--config", cli.config())
    assert done.exit_code == 2 and "not both" in done.output
    # A node.toml that cannot be read, or holds no token.
    done = cli.run("cert", "show", number, *node, "--config", str(cli.tmp / "absent.toml"))
    assert done.exit_code == 2 and "cannot read" in done.output
    empty = cli.tmp / "empty.toml"
    empty.write_text("port = 1\n")
    done = cli.run("reconcile", *node, "--config", str(empty), "--json")
    assert done.exit_code == 2 and "api_token" in failure_json(done)["message"]
    # None at all, where one is needed: a usage error.
    done = cli.run("cert", "show", number, *node)
    assert done.exit_code == 2 and "KPLEDGER_TOKEN" in done.output


def _token_commands(cli: Cli, token: list[str]) -> list[list[str]]:
    number = cli.by_fate("import_confirmed").number
    node = ["--node", cli.url()]
    return [
        ["cert", "show", number, *node, *token],
        ["cert", "pdf", number, *node, *token, "--out", str(cli.tmp / "wrong.pdf")],
        ["stats", *node, "--year", "2026", *token],
        ["reconcile", *node, *token],
        ["audit", *node, *token, "--workers", "1"],
        ["explore", "cert", number, *node, *token],
        ["explore", "stats", "--year", "2026", *node, *token],
    ]


@pytest.mark.parametrize(
    "how", ["wrong", "another node's", "from the environment", "from a node.toml"]
)
def test_a_wrong_token_is_refused_as_such_and_exits_2(cli: Cli, how: str, tmp_path: Path) -> None:
    env = None
    if how == "wrong":
        token = ["--token", "not-the-token-at-all"]
    elif how == "another node's":
        token = ["--token", cli.token("IN")]
    elif how == "from the environment":
        token, env = [], {"KPLEDGER_TOKEN": "not-the-token-at-all"}
    else:
        config = tmp_path / "node.toml"
        config.write_text('api_token = "not-the-token-at-all"\n')
        token = ["--config", str(config)]
    for args in _token_commands(cli, token):
        done = cli.run(*args, env=env)
        assert done.exit_code == 2, (args, done.output)
        assert "token_refused" in done.output or "token refused" in done.output, (
            args,
            done.output,
        )
        if args[0] != "audit" or "--json" in args:
            done = cli.run(*args, "--json", env=env)
            assert done.exit_code == 2, (args, done.output)
            failure_json(done)
    assert not (cli.tmp / "wrong.pdf").exists()


def test_the_api_tells_a_missing_token_from_a_wrong_one(cli: Cli) -> None:
    path = f"{cli.url()}/v1/certificates/{cli.issued[0].number}"
    status, body = http("GET", path)
    assert status == 401 and body["error"] == "token_required", body
    status, body = http("GET", path, token="not-the-token-at-all")
    assert status == 401 and body["error"] == "token_refused", body
    assert "token refused" in body["message"]


# -- 3. other exit statuses of SPEC 2 -------------------------------------------------------------
def test_audit_of_a_running_nodes_store_is_a_usage_error(cli: Cli) -> None:
    done = cli.run("audit", "--data", cli.data_dir("BE"), "--workers", "1")
    assert done.exit_code == 2, done.output
    assert "in use by a running node; use audit --node" in done.output
    done = cli.run("audit", "--data", cli.data_dir("BE"), "--workers", "1", "--json")
    assert done.exit_code == 2 and failure_json(done)["error"] == "store_locked"


def test_an_empty_rejection_reason_is_refused_before_anything_is_sent(cli: Cli) -> None:
    item = cli.by_fate("issued", "IN", "RU")
    before = cli.net.node("RU").get("/metrics")[1]
    for reason in ("", "   ", "\t"):
        done = cli.run(
            "cert", "reject", item.number, "--reason", reason,
            "--node", cli.url("RU"), "--key", cli.key("RU"), "--json",
        )  # fmt: skip
        assert done.exit_code == 2, (reason, done.output)
        assert "--reason" in failure_json(done)["message"]
    # Nothing reached the node: its count of submitted events did not move.
    assert _posts(cli.net.node("RU").get("/metrics")[1]) == _posts(before)
    status, body = http("GET", f"{cli.url('RU')}/v1/public/certificates/{item.number}")
    assert status == 200 and body["status"] == "issued"


def _posts(metrics: Any) -> list[str]:
    text = metrics.decode() if isinstance(metrics, bytes) else str(metrics)
    return [
        line
        for line in text.splitlines()
        if line.startswith("kpledger_http_requests_total") and 'family="participant"' in line
    ]


# -- 4. --json failures, and stats --csv ---------------------------------------------------------
def test_json_failures_when_the_node_is_down(cli: Cli) -> None:
    document = cli.tmp / "good.json"
    signer = Signer.for_network(cli.net)
    document.write_text(json.dumps(signer.document("BE", "AE", "JSONF")))
    key = ["--key", cli.key("BE")]
    down = ["--node", NOWHERE]
    pid = "ab" * 32
    for args in (
        ["verify", "BE-1", *down, "--genesis", cli.genesis],
        ["cert", "issue", str(document), *down, *key],
        ["cert", "confirm", "BE-1", *down, *key],
        ["cert", "show", "BE-1", *down, "--token", "t"],
        ["stats", *down, "--year", "2026"],
        ["reconcile", *down, "--token", "t"],
        ["audit", *down],
        ["explore", "head", *down],
        ["explore", "cert", "BE-1", *down],
        ["gov", "list", *down],
        ["gov", "show", pid, *down],
        ["gov", "vote", pid, "--yes", *down, *key],
        ["key", "rotate", "--kind", "authority", "--new-key", cli.key("AE"), *down, *key],
    ):
        done = cli.run(*args, "--json")
        assert done.exit_code == 2, (args, done.output)
        assert failure_json(done)["error"] == "connection_failed", args


def test_json_failures_for_bad_files_and_refusals(cli: Cli) -> None:
    node, key = ["--node", cli.url()], ["--key", cli.key("BE")]
    invalid = cli.tmp / "invalid.json"
    invalid.write_text(json.dumps({"number": "BE-1", "carats": 1.5}))
    done = cli.run("cert", "issue", str(invalid), *node, *key, "--json")
    assert done.exit_code == 1 and failure_json(done)["error"] == "invalid_certificate"
    for text in ("{not json", "[" * 100_000 + "]" * 100_000, ""):
        bad = cli.tmp / "bad.json"
        bad.write_text(text)
        done = cli.run("cert", "issue", str(bad), *node, *key, "--json")
        assert done.exit_code == 2 and failure_json(done)["error"] == "usage", text[:10]
    done = cli.run("cert", "issue", str(cli.tmp / "absent.json"), *node, *key, "--json")
    assert done.exit_code == 2 and failure_json(done)["error"] == "usage"
    # The ledger says no: already issued (at submission), and not found.
    existing = cli.by_fate("issued")
    document = cli.tmp / "again.json"
    document.write_text(json.dumps(existing.document))
    done = cli.run("cert", "issue", str(document), *node, *key, "--json")
    assert done.exit_code == 1 and failure_json(done)["error"] == "certificate_number_taken"
    done = cli.run("cert", "show", "BE-NEVER-9", *node, "--token", cli.token(), "--json")
    assert done.exit_code == 1 and failure_json(done)["error"] == "certificate_not_found"
    done = cli.run("verify", "BE-NEVER-9", *node, "--genesis", cli.genesis, "--json")
    assert done.exit_code == 1 and failure_json(done)["error"] == "certificate_not_found"
    done = cli.run("explore", "cert", "BE-NEVER-9", *node, "--json")
    assert done.exit_code == 1 and failure_json(done)["error"] == "certificate_not_found"
    voided = cli.by_fate("voided")
    done = cli.run("verify", voided.number, *node, "--genesis", cli.genesis, "--json")
    assert done.exit_code == 1 and failure_json(done)["error"] == "certificate_voided"
    # A usage error caught by click itself is JSON too under --json.
    done = cli.run("cert", "void", "BE-1", "--reason", "bored", *node, *key, "--json")
    assert done.exit_code == 2 and failure_json(done)["error"] == "usage"
    done = cli.run("verify", "BE-1", *node, "--genesis", str(cli.tmp / "absent.json"), "--json")
    assert done.exit_code == 2 and failure_json(done)["error"] == "usage"


def test_stats_csv_gives_the_table_per_pair_on_request(cli: Cli) -> None:
    node = ["--node", cli.url(), "--year", str(_year(cli))]
    done = cli.run("stats", *node, "--csv", "--token", cli.token(), "--table", "pairs")
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    pairs = {(r["exporting_participant"], r["importing_participant"]) for r in rows}
    assert {("BE", "AE"), ("AE", "BE"), ("IN", "RU"), ("RU", "IN"), ("BE", "IN")} <= pairs
    be_ae = next(
        r for r in rows if (r["exporting_participant"], r["importing_participant"]) == ("BE", "AE")
    )
    # BE -> AE: confirmed, rejected, voided, issued; the voided one is not an export.
    assert int(be_ae["exported_certificates"]) >= 3 and int(be_ae["imported_certificates"]) >= 1
    # Without --table, the public table, and a word on stderr that the pairs are elsewhere.
    done = cli.run("stats", *node, "--csv", "--token", cli.token())
    assert done.exit_code == 0 and done.stdout.startswith("year,quarter,participant,role")
    assert "--table pairs" in done.stderr
    done = cli.run("stats", *node, "--csv", "--table", "pairs")
    assert done.exit_code == 2 and "token" in done.output


def _year(cli: Cli) -> int:
    return int(cli.issued[0].document["issued_on"][:4])


# -- 5. what a person reads from verify -----------------------------------------------------------
def test_verify_puts_the_deciding_verdict_first(cli: Cli) -> None:
    confirmed = cli.by_fate("import_confirmed")
    node = ["--node", cli.url("IN"), "--genesis", cli.genesis]
    changed = json.loads(json.dumps(confirmed.document))
    changed["exporter"]["name"] += " Ltd"
    document = cli.tmp / "changed.json"
    document.write_text(json.dumps(changed))
    done = cli.run("verify", confirmed.number, *node, "--document", str(document))
    assert done.exit_code == 1, done.output
    first, *rest = done.stdout.splitlines()
    assert "DOES NOT MATCH" in first, done.stdout
    assert "IMPORT CONFIRMED" not in first
    assert all("MATCHES" not in line for line in rest)
    done = cli.run("verify", confirmed.number, *node, "--document", str(document), "--json")
    assert done.exit_code == 1 and failure_json(done)["error"] == "document_mismatch"
    document.write_text(json.dumps(confirmed.document))
    done = cli.run("verify", confirmed.number, *node, "--document", str(document))
    assert done.exit_code == 0
    first = done.stdout.splitlines()[0]
    assert "IMPORT CONFIRMED" in first and "MATCHES the ledger" in first


def test_verify_shows_why_a_certificate_is_not_in_force(cli: Cli) -> None:
    node = ["--node", cli.url("IN"), "--genesis", cli.genesis]
    voided = cli.by_fate("voided")  # voided by the demo with reason "error"
    done = cli.run("verify", voided.number, *node)
    assert done.exit_code == 1
    assert done.stdout.splitlines()[0].endswith("VOIDED (reason: error)"), done.stdout
    done = cli.run("verify", voided.number, *node, "--json")
    assert json.loads(done.stdout)["void_reason"] == "error"
    rejected = cli.by_fate("import_rejected")
    done = cli.run("verify", rejected.number, *node)
    assert done.exit_code == 1 and "IMPORT REJECTED" in done.stdout
    assert "reason is not public" in done.stdout and "cert show" in done.stdout


def test_the_freshness_refusal_gives_a_sensible_age(cli: Cli) -> None:
    number = cli.by_fate("import_confirmed").number
    done = cli.run(
        "verify",
        number,
        "--node",
        cli.url(),
        "--genesis",
        cli.genesis,
        "--max-age-hours",
        "0.00001",
    )
    assert done.exit_code == 2 and "stale" in done.output
    assert "0.0 hours" not in done.output
    assert "second" in done.output or "minute" in done.output, done.output
    assert "limit of" in done.output


# -- 6. no traceback, whatever the input ---------------------------------------------------------
def _bad_inputs(cli: Cli) -> list[tuple[list[str], int]]:
    """(arguments, the exit status SPEC 2 gives them)."""
    node, key = ["--node", cli.url()], ["--key", cli.key("BE")]
    token = ["--token", cli.token()]
    garbage = cli.tmp / "garbage.json"
    garbage.write_bytes(b"\xff\xfe\x00garbage")
    not_a_key = cli.tmp / "not-a-key.pem"
    not_a_key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    absent = str(cli.tmp / "absent")
    weird = "é🙂\x00'\";&|"
    cases: list[tuple[list[str], int]] = [
        # Garbage numbers: exit 1, the number is malformed.
        (["verify", weird, *node, "--genesis", cli.genesis], 1),
        (["verify", "%2F..%2F", *node, "--genesis", cli.genesis], 1),
        (["cert", "show", "../../v1/participants", *node, *token], 1),
        (["cert", "void", "?x=1#", "--reason", "lost", *node, *key], 1),
        (["explore", "cert", "BE 1", *node], 1),
        # Unknown, but well-formed: the ledger says not found.
        (["cert", "show", "BE-NO-SUCH-1", *node, *token], 1),
        (["cert", "confirm", "BE-NO-SUCH-1", *node, *key], 1),
        (["explore", "block", "999999", *node], 1),
        # Files that are missing or not what they should be: usage.
        (["cert", "issue", absent, *node, *key], 2),
        (["cert", "issue", str(garbage), *node, *key], 2),
        (["cert", "confirm", cli.issued[0].number, *node, "--key", absent], 2),
        (["cert", "confirm", cli.issued[0].number, *node, "--key", str(not_a_key)], 2),
        (["verify", "BE-1", *node, "--genesis", str(garbage)], 2),
        (["verify", "BE-1", *node, "--genesis", absent], 2),
        (["audit", "--data", absent, "--genesis", cli.genesis], 2),
        (["audit", "--node", cli.url(), "--genesis", str(garbage)], 2),
        (["explore", "head", "--data", absent, "--genesis", cli.genesis], 2),
        (["node", "run", "--config", str(garbage)], 2),
        (["node", "run", "--config", absent], 2),
        (["cert", "show", "BE-1", *node, "--config", str(garbage)], 2),
        # Unreachable or unusable nodes: connection trouble.
        (["verify", "BE-1", "--node", NOWHERE, "--genesis", cli.genesis], 2),
        (["verify", "BE-1", "--node", "http://bad host:1", "--genesis", cli.genesis], 2),
        (["cert", "show", "BE-1", "--node", "http://[::1", *token], 2),
        (["stats", "--node", NOWHERE, "--year", "2026"], 2),
        (["gov", "list", "--node", "not a url at all"], 2),
        # Wrong token: authorisation.
        (["cert", "show", "BE-1", *node, "--token", "x" * 5000], 2),
        (["reconcile", *node, "--token", "bad\x7ftoken"], 2),
        # Usage.
        (["cert", "reject", "BE-1", "--reason", "", *node, *key], 2),
        (["cert", "reject", "BE-1", "--reason", "x" * 1001, *node, *key], 2),
        (["gov", "show", "not-hex", *node], 2),
        (["gov", "vote", "zz", "--yes", *node, *key], 2),
        (["stats", *node, "--year", "99999"], 2),
        (["audit"], 2),
        (["explore", "cert"], 2),
    ]
    return cases


def test_no_command_prints_a_traceback_for_any_input(cli: Cli) -> None:
    for args, expected in _bad_inputs(cli):
        for extra in ([], ["--json"]):
            if extra and args[:2] == ["node", "run"]:
                continue  # node run has no --json
            done = cli.run(*args, *extra)
            assert done.exit_code == expected, (args, extra, done.exit_code, done.output)
            if extra:
                failure_json(done)


def test_no_traceback_as_a_process_either(cli: Cli) -> None:
    """The same, as a person runs it: a real process, stderr and stdout both read."""
    for args in (
        ["verify", "BE 2026 000123", "--node", cli.url(), "--genesis", cli.genesis],
        ["cert", "show", "BE 2026 000123", "--node", cli.url(), "--token", cli.token()],
        ["cert", "confirm", "BE 2026 000123", "--node", cli.url(), "--key", cli.key("AE")],
        ["explore", "cert", "BE 2026 000123", "--node", cli.url()],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "node.cli", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr
        assert "is not a certificate number" in done.stderr


@contextmanager
def foreign_server(payload: bytes) -> Iterator[str]:
    """Something at --node that answers 200 with one JSON body to everything: not a kpledger node."""

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("payload", [b"{}", b"[1, 2]", b'{"header": {"height": "x"}, "proofs": 1}'])
def test_an_answer_not_from_a_kpledger_node_is_named_not_a_traceback(
    cli: Cli, payload: bytes
) -> None:
    pid = "ab" * 32
    key = ["--key", cli.key("BE")]
    with foreign_server(payload) as url:
        node = ["--node", url]
        for args in (
            ["verify", "BE-1", *node, "--genesis", cli.genesis],
            ["cert", "show", "BE-1", *node, "--token", cli.token()],
            ["cert", "pdf", "BE-1", *node, "--token", cli.token(), "--out", str(cli.tmp / "f.pdf")],
            ["cert", "confirm", "BE-1", *node, *key],
            ["stats", *node, "--year", "2026", "--token", cli.token()],
            ["reconcile", *node, "--token", cli.token()],
            ["explore", *node],
            ["explore", "participants", *node],
            ["explore", "block", "1", *node],
            ["gov", "list", *node],
            ["gov", "show", pid, *node],
            ["gov", "propose", "suspend", "--participant", "AE", *node, *key],
        ):
            done = cli.run(*args)  # asserts no traceback and no escaped exception
            assert done.exit_code == 2, (args, done.output)
        done = cli.run("cert", "confirm", "BE-1", *node, *key, "--json")
        assert done.exit_code == 2
        assert failure_json(done)["error"] in ("unexpected_answer", "connection_failed")
    assert not (cli.tmp / "f.pdf").exists()
