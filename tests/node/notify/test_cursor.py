"""The stream cursor: resuming at any cursor gives exactly the suffix after it, page by page."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import MalformedInput
from node.notify.cursor import (
    BLOCK_END,
    START,
    Cursor,
    Interest,
    Page,
    StreamEvent,
    head_cursor,
    next_page,
)

PARTICIPANTS = ("BE", "AE", "IN", "RU")
TYPES = (
    "certificate.issue",
    "certificate.confirm_import",
    "certificate.void",
    "governance.propose",
    "governance.vote",
)


@dataclass
class ListChain:
    """A final chain held in lists: blocks of (event id, type, number); certificates' parties."""

    blocks: list[list[tuple[bytes, str, str]]]
    parties_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    reads: int = 0

    @property
    def height(self) -> int:
        return len(self.blocks)

    def block_events(self, height: int) -> list[tuple[bytes, str, str]]:
        self.reads += 1
        return self.blocks[height - 1]

    def block_time_ms(self, height: int) -> int:
        return 1_700_000_000_000 + height * 1000

    def parties(self, number: str) -> tuple[str, str]:
        return self.parties_of[number]


@st.composite
def chains(draw: st.DrawFn) -> ListChain:
    numbers = [f"BE-{i}" for i in range(6)]
    parties = {
        n: tuple(draw(st.permutations(PARTICIPANTS))[:2])  # type: ignore[misc]
        for n in numbers
    }
    serial = 0
    blocks = []
    for _ in range(draw(st.integers(0, 12))):
        block = []
        for _ in range(draw(st.integers(0, 5))):
            serial += 1
            kind = draw(st.sampled_from(TYPES))
            number = draw(st.sampled_from(numbers)) if kind.startswith("certificate.") else "AE"
            block.append((serial.to_bytes(32, "big"), kind, number))
        blocks.append(block)
    return ListChain(blocks, parties)


def everything(chain: ListChain, interest: Interest) -> list[StreamEvent]:
    """The wanted events of the whole chain, by brute force."""
    out = []
    for height, block in enumerate(chain.blocks, start=1):
        for index, (event_id, kind, number) in enumerate(block):
            if interest.types and kind not in interest.types:
                continue
            if kind.startswith("certificate.") and interest.participant not in chain.parties(
                number
            ):
                continue
            time_ms = chain.block_time_ms(height)
            out.append(StreamEvent(Cursor(height, index), event_id, kind, number, time_ms))
    return out


def read_all(
    chain: ListChain, interest: Interest, after: Cursor, max_events: int, max_blocks: int
) -> tuple[list[StreamEvent], list[Page]]:
    got: list[StreamEvent] = []
    pages: list[Page] = []
    while True:
        page = next_page(chain, interest, after, max_events=max_events, max_blocks=max_blocks)
        pages.append(page)
        assert page.cursor >= after, "a page never moves the cursor back"
        assert len(page.events) <= max_events
        got.extend(page.events)
        after = page.cursor
        if page.caught_up:
            return got, pages
        assert len(pages) < 10_000, "the pages must make progress"


def positions(chain: ListChain) -> list[Cursor]:
    """Every cursor worth trying: each event's, each block's end and past it, the start."""
    out = [START, Cursor(0, 5)]
    for height, block in enumerate(chain.blocks, start=1):
        out += [Cursor(height, i) for i in range(len(block) + 2)]
        out.append(Cursor(height, BLOCK_END))
    out.append(Cursor(chain.height + 1, 0))
    return out


interests = st.builds(
    Interest,
    st.sampled_from(PARTICIPANTS),
    st.sampled_from([frozenset(), frozenset({"certificate.issue"}), frozenset(TYPES[3:])]),
)


@settings(max_examples=150, deadline=None)
@given(chains(), interests, st.integers(1, 4), st.integers(1, 4), st.data())
def test_resume_at_any_cursor_gives_exactly_the_suffix(
    chain: ListChain,
    interest: Interest,
    max_events: int,
    max_blocks: int,
    data: st.DataObject,
) -> None:
    wanted = everything(chain, interest)
    after = data.draw(st.sampled_from(positions(chain)))
    got, _ = read_all(chain, interest, after, max_events, max_blocks)
    assert got == [e for e in wanted if e.cursor > after]


@settings(max_examples=100, deadline=None)
@given(chains(), interests, st.integers(1, 3), st.data())
def test_a_reader_that_stops_anywhere_and_resumes_from_its_last_id_misses_nothing(
    chain: ListChain, interest: Interest, max_events: int, data: st.DataObject
) -> None:
    """A client that disconnects after any event it received and reconnects with that event's
    id (Last-Event-ID) sees, over all its connections, every wanted event exactly once."""
    wanted = everything(chain, interest)
    seen: list[StreamEvent] = []
    after = START
    while True:
        got, _ = read_all(chain, interest, after, max_events, 2)
        if not got:
            break
        keep = data.draw(st.integers(1, len(got)))  # it read this many, then the line broke
        seen.extend(got[:keep])
        after = got[keep - 1].cursor
    assert seen == wanted


@settings(max_examples=60, deadline=None)
@given(chains(), interests)
def test_the_head_cursor_is_past_every_event(chain: ListChain, interest: Interest) -> None:
    head = head_cursor(chain)
    assert read_all(chain, interest, head, 3, 3)[0] == []
    assert [e for e in everything(chain, interest) if e.cursor > head] == []


def test_a_page_is_bounded_however_far_behind_the_reader_is() -> None:
    blocks = [[(i.to_bytes(32, "big"), "governance.vote", "AE")] for i in range(1, 1001)]
    chain = ListChain(blocks)
    page = next_page(chain, Interest("AE"), START, max_events=10, max_blocks=50)
    assert len(page.events) == 10 and page.cursor == Cursor(10, 0) and not page.caught_up
    quiet = ListChain([[] for _ in range(1000)])
    page = next_page(quiet, Interest("AE"), START, max_events=10, max_blocks=50)
    assert page.events == () and page.cursor == Cursor(50, 0) and not page.caught_up
    assert quiet.reads == 50


def test_certificate_events_go_to_their_parties_only_and_governance_to_everyone() -> None:
    blocks = [
        [
            (b"\x01" * 32, "certificate.issue", "BE-1"),
            (b"\x02" * 32, "governance.propose", "RU"),
            (b"\x03" * 32, "certificate.issue", "IN-1"),
        ]
    ]
    chain = ListChain(blocks, {"BE-1": ("BE", "AE"), "IN-1": ("IN", "RU")})
    mine = next_page(chain, Interest("AE"), START)
    assert [e.number for e in mine.events] == ["BE-1", "RU"]
    assert [e.status for e in mine.events] == ["issued", "final"]
    assert mine.caught_up and mine.cursor == Cursor(1, 2)
    only_issues = next_page(chain, Interest("RU", frozenset({"certificate.issue"})), START)
    assert [e.number for e in only_issues.events] == ["IN-1"]
    data = mine.events[0].to_json()
    assert data == {
        "event_id": "01" * 32,
        "type": "certificate.issue",
        "number": "BE-1",
        "height": 1,
        "time": "2023-11-14T22:13:21.000+00:00",
        "status": "issued",
        "cursor": "1:0",
    }


@pytest.mark.parametrize(
    ("text", "cursor"),
    [("12:3", Cursor(12, 3)), (" 0:0 ", START), ("7", Cursor(7, BLOCK_END))],
)
def test_cursor_parse(text: str, cursor: Cursor) -> None:
    assert Cursor.parse(text) == cursor


@pytest.mark.parametrize("text", ["", "a:1", "1:-1", "-1:0", "1:2:3", "1:", ":1", "9" * 20])
def test_cursor_parse_refuses_what_is_not_a_cursor(text: str) -> None:
    with pytest.raises(MalformedInput):
        Cursor.parse(text)


def test_every_certificate_event_says_the_status_after_it() -> None:
    """The stream's `status` of each certificate event type; a historical record's is
    `historical` (docs/api/notifications.md), never the `final` of a governance event."""
    from ledger.events import CERTIFICATE_EVENTS, HISTORICAL
    from ledger.governance import ENDORSE
    from node.notify.cursor import FINAL, STATUS_AFTER

    assert set(STATUS_AFTER) == {*CERTIFICATE_EVENTS, ENDORSE}
    assert STATUS_AFTER[HISTORICAL] == "historical" and FINAL not in STATUS_AFTER.values()
