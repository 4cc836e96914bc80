"""The benchmark scripts run and report their figures (tiny sizes: no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_bench_ledger_reports_its_figures() -> None:
    result = run(
        "bench_ledger.py", "--events", "600", "--block-size", "200", "--audit-workers", "2"
    )
    assert result["events"] == 600 and result["blocks"] == 3
    assert result["ed25519_verify_per_s"] and result["disk_bytes_per_event"]
    assert isinstance(result["audit"], dict) and result["audit"]["events_per_s"]


def test_bench_core_reports_each_step_against_the_verify_rate() -> None:
    result = run("bench_core.py", "--events", "400", "--block-size", "200", "--no-gc")
    assert result["events"] == 400 and result["blocks"] == 2
    assert result["ed25519_verify_per_s"] and result["ceiling_sample"] == 400
    assert result["gc"] is False
    for step in (
        "admit",
        "build",
        "validate",
        "commit",
        "state_tree",
        "validator",
        "other_threads",
    ):
        assert isinstance(result[f"{step}_us"], float), step
        assert isinstance(result[f"{step}_verifications"], float), step


def test_bench_intake_decodes_and_takes_in_relayed_events() -> None:
    result = run("bench_intake.py", "--committed", "400", "--relayed", "300", "--repeats", "1")
    assert result["code"] == str(REPO) and result["signatures"] is True
    assert isinstance(result["relayed"], int) and isinstance(result["admitted"], int)
    # Every new relayed event is admitted once; the ones relayed again are not new.
    assert 0 < result["admitted"] < result["relayed"]
    assert result["decode_us"] and result["intake_us"]


def test_bench_audit_builds_audits_and_queries(tmp_path: Path) -> None:
    args = ("--events", "1500", "--block-size", "500", "--events-per-day", "100", "--workers", "2")
    result = run("bench_audit.py", *args, "--dir", str(tmp_path))
    assert result["events"] == 1500 and result["blocks"] == 3
    stats = result["stats"]
    assert isinstance(stats, dict) and stats["year"] == 2016 and stats["rows"]
    again = run("bench_audit.py", "--dir", str(tmp_path), "--reuse", "--workers", "1")
    assert again["events"] == 1500 and again["build_s"] is None


def test_bench_public_measures_one_live_node() -> None:
    result = run(
        "bench_public.py", "--certificates", "300", "--duration", "1", "--concurrency", "4"
    )
    assert result["certificates"] == 300 and result["transport"] == "TLS 1.3"
    for name in ("healthz", "hot_set", "random"):
        figures = result[name]
        assert isinstance(figures, dict) and figures["ok"] and not figures["failed"], name


def test_bench_observer_times_a_catch_up_and_lookups_through_an_observer(tmp_path: Path) -> None:
    import shutil

    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    args = ["--events", "600", "--duration", "1", "--concurrency", "4", "--dir", str(tmp_path)]
    result = run("bench_observer.py", *args, *([] if nginx else ["--no-nginx"]))
    chain = result["chain"]
    assert isinstance(chain, dict) and chain["events"] == 600
    caught = result["catch_up"]
    assert isinstance(caught, dict) and caught["events_per_s"] and caught["seconds_to_head"]
    assert result["ed25519_verify_per_s_before"] and result["ed25519_verify_per_s_after"]
    for name in ("observer_hot_set", "observer_random", *(["nginx_hot_set"] if nginx else [])):
        figures = result[name]
        assert isinstance(figures, dict) and figures["ok"] and not figures["failed"], name


def test_bench_snapshot_cuts_restores_and_serves(tmp_path: Path) -> None:
    result = run("bench_snapshot.py", "--events", "600", "--workers", "1", "--dir", str(tmp_path))
    chain = result["chain"]
    assert isinstance(chain, dict) and chain["events"] == 600
    for name in ("create_stopped", "create_running"):
        made = result[name]
        assert isinstance(made, dict) and made["bytes"] > 0 and made["seconds"] > 0
    restored = result["restore"]
    assert isinstance(restored, dict) and restored["events_audited"] == 600
    serving = result["serving"]
    assert isinstance(serving, dict) and serving["seconds_to_serving"] > restored["seconds"]
    assert result["ed25519_verify_per_s_before"] and result["ed25519_verify_per_s_after"]


def test_bench_network_measures_four_live_nodes() -> None:
    result = run("bench_network.py", "--rate", "20", "--duration", "2")
    assert result["transport"] == "TLS 1.3"
    loop = result["open_loop"]
    assert isinstance(loop, dict) and loop["finalised"] and not loop["refused"]
    assert result["ed25519_verify_per_s"]
    heights = result["final_heights"]
    assert isinstance(heights, dict) and len(heights) == 4 and min(heights.values()) >= 1


def test_bench_wan_measures_four_nodes_behind_lossy_links() -> None:
    result = run(
        "bench_wan.py", "--delay-ms", "20", "--rate", "10", "--duration", "2", "--settle", "30"
    )
    assert result["accepted"] == result["submitted"] == 20
    assert result["final"] == 20 and result["never_final"] == 0
    links = result["links"]
    assert isinstance(links, dict) and links["chunks"] > 0
    assert isinstance(result["blocks"], int) and result["blocks"] >= 1


def test_bench_network_refuses_to_time_blocks_whose_log_lines_were_suppressed(
    tmp_path: Path,
) -> None:
    # At 200 events/s the nodes' repeat filter kept 20 "block final" lines a minute and wrote a
    # summary line without a height: the benchmark died on a KeyError. Its nodes now log every
    # block, and a suppressed line is a clear refusal, not a figure.
    spec = importlib.util.spec_from_file_location(
        "bench_network", REPO / "scripts" / "bench_network.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules[spec.name]
    line = '{{"ts": "2026-12-01T13:00:0{i}.000Z", "event": "block final", "height": {i}}}'
    log = tmp_path / "BE.log"
    log.write_text("\n".join(line.format(i=i) for i in (1, 2)) + "\n", encoding="utf-8")
    assert sorted(bench.commit_times(log)) == [1, 2]
    summary = {
        "ts": "2026-12-01T13:01:00.000Z",
        "event": "7 similar lines suppressed",
        "suppressed": 7,
        "similar_to": "block final",
    }
    with log.open("a", encoding="utf-8") as out:
        out.write(json.dumps(summary) + "\n")
    with pytest.raises(RuntimeError, match="suppressed 7 'block final' lines"):
        bench.commit_times(log)
    assert bench.EVERY_BLOCK_LOGGED["log_repeat_burst"] >= 10**6


def _load_bench_network() -> object:
    spec = importlib.util.spec_from_file_location(
        "bench_network", REPO / "scripts" / "bench_network.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules[spec.name]
    return bench


def test_bench_network_batches_carry_each_events_own_envelope() -> None:
    # --batch N sends {"events": [...]} built from the signed encodings the benchmark holds:
    # each envelope must be the one the event itself would give (its unsigned bytes, its
    # signature), or the node would refuse the batch's events as malformed.
    from tests.helpers import TestNetwork

    bench: Any = _load_bench_network()
    net = TestNetwork()
    issued = net.issue()
    for event in (issued.event, net.confirm(issued)):
        assert bench.envelope(event.encoded) == event.to_envelope()
    with pytest.raises(SystemExit):
        bench.main(["--batch", "1001"])


def test_bench_streams_measures_slow_clients() -> None:
    result = run("bench_streams.py", "--blocks", "5", "--clients", "10", "--more", "2")
    assert result["blocks"] >= 5 and result["clients"] == 10 and result["tls"] is True
    assert result["healthz_while_connected"] == 200
    assert result["finality_while_connected_s"]["events"] == 2  # type: ignore[index]


def test_make_long_chain_writes_a_chain_the_audit_passes(tmp_path: Path) -> None:
    network = tmp_path / "net"
    result = run(
        "make_long_chain.py", "--dir", str(network), "--events", "2500", "--holders", "BE,AE"
    )
    assert result["events"] == 2500 and result["blocks"] == 2
    assert (network / "RU" / "node.toml").exists() and not (network / "RU" / "data").exists()
    for holder in ("BE", "AE"):
        audit = subprocess.run(
            [
                sys.executable,
                "-m",
                "node.cli",
                "audit",
                "--data",
                str(network / holder / "data"),
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        report = json.loads(audit.stdout)
        assert report["ok"] and report["events_checked"] == 2500, report
    timed = run("bench_audit_cli.py", "--data", str(network / "BE" / "data"), "--workers", "2")
    assert timed["ok"] and timed["events"] == 2500, timed
    assert isinstance(timed["cpu_s_other_processes"], list)
    again = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_long_chain.py"), "--dir", str(network)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert again.returncode != 0 and "already holds a network" in again.stderr


def test_bench_history_imports_checks_and_reports() -> None:
    result = run("bench_history.py", "--rows", "300", "--bad-every", "37")
    assert result["checks"] == {
        "bad_rows_by_line": True,
        "good_rows_final": True,
        "again_adds_nothing": True,
        "ingest_all_final": True,
    }
    for name in ("import", "again", "ingest"):
        figures = result[name]
        assert isinstance(figures, dict) and figures["rows"] > 0 and figures["rows_per_s"] > 0
    assert isinstance(result["ed25519_verify_per_s"], int)
