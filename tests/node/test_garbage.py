"""The cyclic garbage collector's settings (node/garbage.py): every kpledger command runs with
them, and cyclic garbage is still collected under them."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from node import garbage
from tests.e2e.harness import REPO


@pytest.fixture
def tuned() -> Iterator[None]:
    before = gc.get_threshold()
    garbage.tune()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_every_kpledger_command_runs_with_the_collectors_settings() -> None:
    # A fresh interpreter, so that nothing this test process did counts: CPython's own
    # settings until the command group runs, then ours, whatever the command.
    probe = (
        "import gc, sys\n"
        "from node.cli import main\n"
        "print(gc.get_threshold())\n"
        "try:\n"
        "    main(['key', '--help'], prog_name='kpledger')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.get_threshold(), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "(700, 10, 10)"
    assert done.stderr.strip().splitlines()[-1] == str(
        (garbage.YOUNG_OBJECTS, garbage.GENERATION_RATIO, garbage.GENERATION_RATIO)
    )


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_cycle_is_still_collected_once_enough_new_objects_are_made(tuned: None) -> None:
    gc.collect()
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # reference counting alone never frees these two
    freed: list[bool] = []
    watch = weakref.ref(a, lambda _: freed.append(True))
    del a, b
    made = [[] for _ in range(garbage.YOUNG_OBJECTS // 10)]
    assert not freed, "collected before the youngest generation filled"
    made += [[] for _ in range(2 * garbage.YOUNG_OBJECTS)]
    assert freed and watch() is None
