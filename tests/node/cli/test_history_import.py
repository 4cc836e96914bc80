"""node/cli/history.py's Importer against a scripted node: what it does with each answer a batch
can get (accepted, final, already recorded, refused, not now, rate-limited, refused whole), how
it follows accepted events until final, and when it stops waiting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.history import BadRow, HistoryRow
from node.cli import history
from node.cli.history import Importer, Outcome, _Stop
from node.client import Answer
from tests.helpers import TestNetwork

Verdict = Callable[[str, int], dict[str, Any]]


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reading of the importer's clock is a second later: its 120 s without progress pass
    in 120 readings, not in two minutes."""
    ticks = iter(range(10**9))
    monkeypatch.setattr(history.time, "monotonic", lambda: float(next(ticks)))


class ScriptedNode:
    """Answers POST /v1/events batches by `verdict(number, times this event was posted)`, and
    GET /v1/events/{id} by the last verdict given for it."""

    def __init__(self, verdict: Verdict, *, refuse_whole: Answer | None = None) -> None:
        self.verdict = verdict
        self.refuse_whole = refuse_whole
        self.posts: list[list[str]] = []
        self.posted: dict[str, int] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.numbers: dict[str, str] = {}
        self.rate_limited = 0

    def post(self, path: str, body: Any) -> Answer:
        assert path == "/v1/events" and set(body) == {"events"}
        if self.refuse_whole is not None:
            return self.refuse_whole
        if self.rate_limited:
            self.rate_limited -= 1
            return Answer(429, {"error": "rate_limited", "retry_after_s": 0.01})
        from ledger.events import Event

        results = []
        numbers = []
        for envelope in body["events"]:
            event = Event.from_envelope(envelope)
            key = event.event_id.hex()
            self.posted[key] = self.posted.get(key, 0) + 1
            self.numbers[key] = event.number
            result = {"event_id": key, **self.verdict(event.number, self.posted[key])}
            self.last[key] = result
            results.append(result)
            numbers.append(event.number)
        self.posts.append(numbers)
        return Answer(200, {"results": results})

    def get(self, path: str, **_: Any) -> Answer:
        """The event's status now: what posting it again would answer."""
        key = path.rsplit("/", 1)[1]
        if key not in self.numbers:
            return Answer(404, {"error": "event_not_found"})
        now = self.verdict(self.numbers[key], self.posted[key] + 1)
        if "error" in now:
            return Answer(200, {"event_id": key, "status": "rejected", **now})
        return Answer(200, {"event_id": key, **now})


def rows(net: TestNetwork, count: int, *, importing: str = "AE") -> list[HistoryRow | BadRow]:
    out: list[HistoryRow | BadRow] = []
    for i in range(count):
        cert = net.certificate(
            "BE", importing, number=f"BE-H-{i:05d}", issued_on="2010-01-01", expires_on="2010-03-01"
        )
        out.append(HistoryRow(i + 2, cert, "confirmed"))
    return out


def run(
    node: ScriptedNode, items: list[HistoryRow | BadRow], *, batch: int = 3, signer: str = "BE"
) -> tuple[Outcome, list[tuple[int, int]]]:
    net = TestNetwork()
    reports: list[tuple[int, int]] = []
    importer = Importer(
        node,  # type: ignore[arg-type]
        net.chain_id,
        net.registry,
        net.key(signer),
        signer,
        batch_size=batch,
        report=lambda outcome, sent: reports.append((outcome.recorded, sent)),
        sleep=lambda _: None,
    )
    return importer.run(iter(items)), reports


def test_each_answer_lands_where_it_belongs() -> None:
    net = TestNetwork()
    items = rows(net, 7)
    items.insert(3, BadRow(99, "BE-X", "invalid_certificate", "issued_on: no such date"))
    verdicts = {
        "BE-H-00000": {"status": "final", "height": 3},
        "BE-H-00001": {"error": "historical_record_exists", "message": "already"},
        "BE-H-00002": {"error": "backdated_too_far", "message": "before history_from"},
    }
    node = ScriptedNode(lambda number, _: verdicts.get(number, {"status": "pending"}))
    outcome, reports = run(node, items)
    # The pending ones are posted again until final: here they never become final.
    assert outcome.rows == 8 and outcome.recorded == 1 and outcome.skipped == 1
    assert [(b.line, b.code) for b in outcome.bad] == [
        (4, "backdated_too_far"),
        (99, "invalid_certificate"),
    ]
    assert reports[0] == (1, 3)  # the first batch's results, reported once it was settled
    assert [len(p) for p in node.posts[:3]] == [3, 3, 1]


def test_accepted_events_are_followed_until_final_or_refused_in_their_block() -> None:
    def verdict(number: str, times: int) -> dict[str, Any]:
        if times == 1:
            return {"status": "pending"}
        if number == "BE-H-00003":  # refused when its block was built, then at admission
            return {"error": "historical_record_exists", "message": "AE's account came first"}
        if number == "BE-H-00004":
            return {"error": "certificate_number_taken", "message": "issued on the ledger"}
        return {"status": "final", "height": 9}

    node = ScriptedNode(verdict)
    outcome, _ = run(node, rows(TestNetwork(), 5))
    assert (outcome.recorded, outcome.skipped, outcome.pending) == (3, 1, 0)
    assert [(b.line, b.code) for b in outcome.bad] == [(6, "certificate_number_taken")]
    # Posted once each, then once more to learn each one's fate, in batches of at most 1,000.
    assert sorted(node.posted.values()) == [2] * 5


def test_not_now_is_sent_again_and_a_rate_limit_is_waited_out() -> None:
    def verdict(number: str, times: int) -> dict[str, Any]:
        if number == "BE-H-00001" and times < 3:
            return {"error": "mempool_full", "message": "try again"}
        return {"status": "final", "height": 2}

    node = ScriptedNode(verdict)
    node.rate_limited = 2
    outcome, _ = run(node, rows(TestNetwork(), 4))
    assert (outcome.recorded, outcome.bad, outcome.pending) == (4, [], 0)
    retried = next(k for k, n in node.numbers.items() if n == "BE-H-00001")
    assert node.posted[retried] == 3 and node.rate_limited == 0  # both limits were waited out


def test_a_row_neither_party_signs_is_bad_and_sent_nowhere() -> None:
    net = TestNetwork()
    node = ScriptedNode(lambda number, _: {"status": "final", "height": 1})
    outcome, _ = run(node, rows(net, 2, importing="IN"), signer="AE")
    assert [b.code for b in outcome.bad] == ["signer_not_allowed"] * 2 and node.posts == []


def test_a_batch_refused_whole_stops_the_import() -> None:
    node = ScriptedNode(lambda n, _: {}, refuse_whole=Answer(401, {"error": "token_refused"}))
    with pytest.raises(_Stop) as stopped:
        run(node, rows(TestNetwork(), 2))
    assert stopped.value.answer.error == "token_refused"


def test_waiting_ends_when_nothing_becomes_final() -> None:
    node = ScriptedNode(lambda n, _: {"status": "pending"})
    outcome, _ = run(node, rows(TestNetwork(), 2))
    assert outcome.pending == 2 and outcome.recorded == 0


def test_the_summary_names_every_bad_row() -> None:
    outcome = Outcome(rows=3, recorded=1, skipped=1)
    outcome.bad.append(BadRow(7, "BE-1", "not_yet_expired", "it expires on 2099-01-01"))
    assert outcome.summary().splitlines() == [
        "3 rows: 1 recorded, 1 already on the ledger (skipped), 1 bad",
        "  line 7: BE-1: not_yet_expired: it expires on 2099-01-01",
    ]
    assert outcome.to_json()["bad"] == [
        {
            "line": 7,
            "number": "BE-1",
            "error": "not_yet_expired",
            "message": "it expires on 2099-01-01",
        }
    ]


def test_a_bar_on_a_terminal_and_plain_lines_otherwise(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from node.cli.history import _Progress

    plain = _Progress(tmp_path / "archive.csv", as_json=False)
    assert not plain.tty  # pytest's stderr is no terminal
    with plain:
        plain.start(4)
        plain.update(Outcome(rows=4, recorded=4), 4)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("archive.csv: 4 rows")
    assert lines[1].startswith("history: 4/4 rows done (4 recorded, 0 skipped, 0 bad; 4 sent)")
    bar = _Progress(tmp_path / "archive.csv", as_json=False)
    bar.tty = True
    with bar:
        bar.start(4)
        bar.update(Outcome(rows=4, recorded=2), 2)
        bar.update(Outcome(rows=4, recorded=4), 4)
    out = capsys.readouterr()
    assert "importing archive.csv" in out.err and "4/4 rows" in out.err and out.out == ""
