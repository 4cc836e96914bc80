"""node/portal/accounts.py, sessions.py, activity.py, i18n.py: accounts with Argon2id hashes,
the lock-out, idle sessions, the append-only activity log and the catalogues."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from ledger.errors import MalformedInput, OfficerExists, StoreCorrupt, UnknownOfficer, WeakPassword
from ledger.store import Store
from node.portal.accounts import LOCK_MS, MAX_FAILURES, Account, AccountBook
from node.portal.activity import ActivityLog
from node.portal.i18n import CATALOGUES, FR, choose, translator
from node.portal.sessions import SessionBook

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
REPO = Path(__file__).resolve().parents[3]


class FakeStore:
    def __init__(self) -> None:
        self.officer_records: dict[str, bytes] = {}
        self.log: dict[int, bytes] = {}

    def put_officer(self, name: str, record: bytes) -> None:
        self.officer_records[name] = record

    def officers(self) -> Iterator[tuple[str, bytes]]:
        return iter(sorted(self.officer_records.items()))

    def append_activity(self, seq: int, entry: bytes) -> None:
        assert seq not in self.log, "the activity log never overwrites an entry"
        self.log[seq] = entry

    def activity(self, *, reverse: bool = False) -> Iterator[tuple[int, bytes]]:
        return iter(sorted(self.log.items(), reverse=reverse))


def book(store: FakeStore | None = None, now: list[int] | None = None) -> AccountBook:
    clock = now or [1_000_000]
    return AccountBook(store or FakeStore(), lambda: clock[0], FAST)


def test_the_password_is_stored_as_an_argon2id_hash_only() -> None:
    store = FakeStore()
    accounts = book(store)
    account = accounts.add("iris", "issuer", PASSWORD)
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD.encode() not in store.officer_records["iris"]
    assert "password_hash" not in account.to_json(0)
    # Read back by a new book (a restart): the same account.
    assert book(store).get("iris") == account
    assert accounts.sign_in("iris", PASSWORD).outcome == "ok"


def test_refusals_of_bad_accounts() -> None:
    accounts = book()
    accounts.add("iris", "issuer", PASSWORD)
    with pytest.raises(OfficerExists):
        accounts.add("iris", "auditor", PASSWORD)
    with pytest.raises(MalformedInput):
        accounts.add("Iris Smith", "issuer", PASSWORD)
    with pytest.raises(MalformedInput):
        accounts.add("bob", "superuser", PASSWORD)
    with pytest.raises(WeakPassword):
        accounts.add("bob", "issuer", "short")
    with pytest.raises(UnknownOfficer):
        accounts.disable("nobody")
    assert accounts.get("bob") is None


def test_five_failures_lock_for_fifteen_minutes_then_it_opens() -> None:
    now = [1_000_000]
    accounts = book(now=now)
    accounts.add("iris", "issuer", PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        assert accounts.sign_in("iris", "wrong password!").outcome == "wrong"
    locked = accounts.sign_in("iris", "wrong password!")
    assert locked.outcome == "locked" and locked.locked_now
    assert locked.locked_until_ms == now[0] + LOCK_MS == 15 * 60 * 1000 + now[0]
    assert accounts.sign_in("iris", PASSWORD).outcome == "locked"
    now[0] += LOCK_MS - 1
    assert accounts.sign_in("iris", PASSWORD).outcome == "locked"
    now[0] += 1
    assert accounts.sign_in("iris", PASSWORD).outcome == "ok"
    # A good sign-in forgets earlier failures.
    for _ in range(MAX_FAILURES - 1):
        accounts.sign_in("iris", "wrong password!")
    assert accounts.sign_in("iris", PASSWORD).outcome == "ok"
    assert accounts.sign_in("iris", "wrong password!").outcome == "wrong"


def test_disable_and_reset() -> None:
    accounts = book()
    accounts.add("iris", "issuer", PASSWORD)
    accounts.disable("iris")
    assert accounts.sign_in("iris", PASSWORD).outcome == "disabled"
    accounts.reset("iris", "another long passphrase")
    assert accounts.sign_in("iris", PASSWORD).outcome == "wrong"
    assert accounts.sign_in("iris", "another long passphrase").outcome == "ok"


def test_an_unknown_name_is_told_like_a_wrong_password() -> None:
    assert book().sign_in("nobody", PASSWORD).outcome == "wrong"


def test_a_damaged_account_record_is_store_corrupt() -> None:
    store = FakeStore()
    store.officer_records["iris"] = b"\x93\x01\x02"
    with pytest.raises(StoreCorrupt):
        book(store)
    store.officer_records["iris"] = Account("eve", "issuer", "$argon2id$x", 0).encode()
    with pytest.raises(StoreCorrupt):
        book(store)


def test_accounts_and_the_log_live_in_the_nodes_store(tmp_path: Path) -> None:
    from node.files import load_genesis
    from node.netinit import init_network, parse_participants

    init_network(tmp_path, parse_participants("BE,AE"), base_port=7700, chain_id="kp-acc")
    genesis = load_genesis(tmp_path / "genesis.json")
    store = Store(tmp_path / "BE" / "data", genesis)
    AccountBook(store, lambda: 5, FAST).add("iris", "issuer", PASSWORD)
    ActivityLog(store, lambda: 5).record("iris", "issue", "final", certificate="BE-1")
    store.close()
    store = Store(tmp_path / "BE" / "data", genesis)
    try:
        assert AccountBook(store, lambda: 5, FAST).sign_in("iris", PASSWORD).outcome == "ok"
        log = ActivityLog(store, lambda: 6)
        log.record("iris", "void", "final", certificate="BE-1")
        assert [(e.seq, e.action) for e in log.entries(newest_first=False)] == [
            (1, "issue"),
            (2, "void"),
        ]
    finally:
        store.close()


def test_sessions_end_after_the_idle_time_and_are_renewed_by_use() -> None:
    now = [0]
    sessions = SessionBook(lambda: now[0], idle_ms=1000)
    cookie, session = sessions.start("iris")
    now[0] = 999
    assert sessions.get(cookie) is session
    now[0] = 1998
    assert sessions.get(cookie) is session  # renewed at 999
    now[0] = 2998
    assert sessions.get(cookie) is None
    assert sessions.get(cookie) is None
    other, _ = sessions.start("iris")
    assert sessions.end_all("iris") == 1 and sessions.get(other) is None
    assert sessions.get("made-up") is None and sessions.get(None) is None


def test_the_activity_log_appends_and_its_csv_defuses_formulas() -> None:
    store = FakeStore()
    log = ActivityLog(store, lambda: 1_700_000_000_000)
    log.record("iris", "issue", "final", certificate="BE-2026-1", event_id="ab" * 32)
    log.record("=cmd", "sign_in", "wrong", detail="-2+3")
    assert [e.seq for e in log.entries()] == [2, 1]
    text = log.csv()
    assert text.splitlines()[0] == "seq,time,officer,action,certificate,event_id,outcome,detail"
    assert "'=cmd" in text and "'-2+3" in text
    # A new log over the same store goes on after the last entry.
    ActivityLog(store, lambda: 0).record("iris", "void", "final")
    assert sorted(store.log) == [1, 2, 3]


TEXT = re.compile(r"""\bt\(\s*(?:\n\s*)?((?:"[^"]*"\s*)+)""")


def _used_strings() -> set[str]:
    """Every literal passed to t(...) in the portal's templates and its route module."""
    found: set[str] = set()
    sources = [*sorted((REPO / "node" / "web" / "portal" / "templates").glob("*.html"))]
    sources.append(REPO / "node" / "http" / "portal.py")
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for match in TEXT.finditer(text):
            found.add("".join(re.findall(r'"([^"]*)"', match.group(1))))
        for match in re.finditer(r"""\bt\('([^']*)'\)""", text):
            found.add(match.group(1))
    return found


def test_every_string_the_pages_use_has_a_french_entry_with_the_same_placeholders() -> None:
    used = _used_strings()
    assert "Sign in" in used and "Issue certificate" in used and len(used) > 60
    from node.http.portal import DONE_MESSAGES, HS_LABELS

    used |= set(DONE_MESSAGES.values()) | set(HS_LABELS.values())
    missing = sorted(s for s in used if s not in FR)
    assert not missing, f"no French for {missing}"
    for english, french in FR.items():
        assert re.findall(r"{\w+}", english) == re.findall(r"{\w+}", french), english
    assert set(CATALOGUES) == {"en", "fr"}


def test_the_language_is_the_switch_then_the_browser_then_english() -> None:
    assert choose("fr", "en") == "fr"
    assert choose(None, "de-DE,fr;q=0.8,en;q=0.5") == "fr"
    assert choose(None, "en-GB,fr;q=0.9") == "en"
    assert choose(None, "de") == "en" and choose("xx", None) == "en"
    assert choose(None, "fr;q=0") == "en"
    assert translator("fr")("{n} days left", n=3) == "3 jours restants"
    assert translator("en")("{n} days left", n=3) == "3 days left"


def test_every_void_reason_has_a_french_name() -> None:
    from ledger.events import VOID_REASONS

    assert all(reason in FR for reason in VOID_REASONS)


def test_every_status_and_event_type_a_page_shows_has_both_languages() -> None:
    from ledger.records import EXPIRED, STATUSES
    from node.portal.i18n import EN

    shown = {*STATUSES, EXPIRED, "certificate.issue", "certificate.confirm_import"}
    shown |= {"certificate.reject_import", "certificate.void", "certificate.endorse"}
    shown |= {"certificate.historical"}
    assert shown <= set(FR)
    assert set(EN) <= set(FR)
    assert translator("en")("import_confirmed") == "import confirmed"
