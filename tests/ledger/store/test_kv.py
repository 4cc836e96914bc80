"""The key-value contract, held by both backends: LevelDB and the in-memory MemoryKV."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.store.kv import KV, MemoryKV, prefix_stop
from ledger.store.leveldb import LevelDB


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    opened: KV = MemoryKV() if request.param == "memory" else LevelDB(tmp_path / "db")
    yield opened
    opened.close()


def _fill(kv: KV, pairs: dict[bytes, bytes]) -> None:
    with kv.batch() as batch:
        for key, value in pairs.items():
            batch.put(key, value)


def test_get_and_a_family_in_key_order(kv: KV) -> None:
    _fill(kv, {b"b/\x02": b"2", b"a/x": b"x", b"b/\x01": b"1", b"b/\xff\xff": b"ff", b"c/": b""})
    assert kv.get(b"b/\x01") == b"1" and kv.get(b"b/\x03") is None
    assert list(kv.items(b"b/")) == [(b"b/\x01", b"1"), (b"b/\x02", b"2"), (b"b/\xff\xff", b"ff")]
    assert list(kv.keys(b"b/", reverse=True)) == [b"b/\xff\xff", b"b/\x02", b"b/\x01"]
    assert list(kv.keys(start=b"b/\x02", stop=b"c/")) == [b"b/\x02", b"b/\xff\xff"]
    assert list(kv.keys(b"z/")) == []
    assert [k for k, _ in kv.items()] == [b"a/x", b"b/\x01", b"b/\x02", b"b/\xff\xff", b"c/"]


def test_a_batch_is_all_or_nothing(kv: KV) -> None:
    _fill(kv, {b"k/1": b"old"})
    with pytest.raises(RuntimeError, match="midway"), kv.batch(sync=True) as batch:
        batch.put(b"k/1", b"new")
        batch.put(b"k/2", b"two")
        raise RuntimeError("midway")
    assert dict(kv.items(b"k/")) == {b"k/1": b"old"}


def test_within_a_batch_the_later_operation_on_a_key_wins(kv: KV) -> None:
    _fill(kv, {b"k/1": b"one", b"k/2": b"two"})
    with kv.batch(sync=True) as batch:
        batch.delete(b"k/1")
        batch.put(b"k/1", b"again")
        batch.put(b"k/2", b"changed")
        batch.delete(b"k/2")
        batch.delete(b"k/absent")
    assert dict(kv.items(b"k/")) == {b"k/1": b"again"}


def test_a_walk_does_not_see_the_writes_made_during_it(kv: KV) -> None:
    _fill(kv, {b"k/1": b"1", b"k/2": b"2"})
    seen = []
    for key, _ in kv.items(b"k/"):
        seen.append(key)
        _fill(kv, {b"k/3": b"3"})
    assert seen == [b"k/1", b"k/2"]


def test_memory_counts_synced_batches_and_has_no_files() -> None:
    kv = MemoryKV()
    with kv.batch() as batch:
        batch.put(b"a", b"1")
    with kv.batch(sync=True) as batch:
        batch.put(b"b", b"2")
    assert kv.synced_batches == 1 and kv.check_files() == []
    kv.close()
    assert kv.closed
    with pytest.raises(RuntimeError, match="closed"):
        kv.get(b"a")


def test_a_prefix_and_a_range_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        list(MemoryKV().keys(b"a/", start=b"a/1"))


@pytest.mark.parametrize(
    ("prefix", "stop"), [(b"b/", b"b0"), (b"a\xff", b"b"), (b"\xff\xff", None), (b"", None)]
)
def test_prefix_stop(prefix: bytes, stop: bytes | None) -> None:
    assert prefix_stop(prefix) == stop


def test_both_backends_agree_on_random_operations(tmp_path: Path) -> None:
    rng = random.Random(7)
    memory, disk = MemoryKV(), LevelDB(tmp_path / "db")
    try:
        for _ in range(40):
            ops: list[tuple[bytes, bytes | None]] = []
            for _ in range(rng.randrange(1, 12)):
                key = bytes([rng.choice(b"ab"), ord("/"), rng.randrange(4), rng.randrange(256)])
                ops.append((key, None if rng.random() < 0.3 else bytes([rng.randrange(256)])))
            sync = rng.random() < 0.5
            for backend in (memory, disk):
                with backend.batch(sync=sync) as batch:
                    for key, value in ops:
                        if value is None:
                            batch.delete(key)
                        else:
                            batch.put(key, value)
            for prefix in (None, b"a/", b"b/\x01"):
                assert list(memory.items(prefix)) == list(disk.items(prefix))
                assert list(memory.keys(prefix, reverse=True)) == list(
                    disk.keys(prefix, reverse=True)
                )
    finally:
        disk.close()


def _table_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.ldb"))


def test_compacting_leveldb_takes_overwritten_and_deleted_entries_off_the_disk(
    tmp_path: Path,
) -> None:
    db = LevelDB(tmp_path / "db")
    try:
        rng = random.Random(7)
        keys = [b"s/" + rng.randbytes(32) for _ in range(4_000)]
        _fill(db, {key: rng.randbytes(200) for key in keys})
        db.compact()
        full = _table_bytes(tmp_path / "db")
        assert full > 4_000 * 200
        with db.batch() as batch:  # what pruning and rewriting records leave behind
            for key in keys[:3_000]:
                batch.delete(key)
            for key in keys[3_000:]:
                batch.put(key, b"new")
        db.compact()
        assert _table_bytes(tmp_path / "db") < full // 10
        assert list(db.items()) == [(key, b"new") for key in sorted(keys[3_000:])]
    finally:
        db.close()


def test_compacting_an_empty_leveldb_is_harmless(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    try:
        db.compact()
        assert list(db.items()) == []
    finally:
        db.close()
