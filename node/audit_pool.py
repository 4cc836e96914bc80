"""The audit's worker processes: the pool that checks signatures ahead of re-execution, and the
process that keeps the state tree.

ledger/audit.py owns the audit and the pure parts (`check_events`, `StateKeeper`); this
module only runs them in other processes, `verify_chain`'s `pool` and `state`.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import queue
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from ledger.audit import (
    AuditReport,
    EventsVerdict,
    Progress,
    StateKeeper,
    check_events,
    verify_chain,
)
from ledger.errors import AuditWorkerLost
from ledger.genesis import Genesis
from ledger.store import Store

#: Stored state tree nodes sent to the state process in one message, for the final comparison.
_NODES_A_MESSAGE = 20_000


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not fork: the parent holds LevelDB's threads and file handles, which a forked child would
    # inherit mid-flight. A fork server starts clean and is quick to fork from.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessPool:
    """`workers` processes checking one block's events each, their bytes canonical and their
    signatures good (a ledger.audit.SignaturePool)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("an audit needs at least one worker")
        self.workers = workers
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context())

    def submit(self, encoded: list[bytes], keys: list[bytes | None]) -> Future[EventsVerdict]:
        try:
            running = self._executor.submit(check_events, encoded, keys)
        except BrokenProcessPool as exc:
            raise AuditWorkerLost(f"a signature worker process ended: {exc}") from exc
        answer: Future[EventsVerdict] = Future()

        def settle(done: Future[EventsVerdict]) -> None:
            failure = done.exception()
            if failure is None:
                answer.set_result(done.result())
            else:  # a worker that died (BrokenProcessPool) or failed: no verdict on the block
                lost = AuditWorkerLost(f"a signature worker process ended: {failure}")
                lost.__cause__ = failure
                answer.set_exception(lost)

        running.add_done_callback(settle)
        return answer

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _keep_state(conn: Connection) -> None:
    """The state process: a StateKeeper answering ("update", leaves) with the new root, and
    ("nodes", entries)... ("end",) with the verdict on the stored nodes."""
    # A thread takes each message off the pipe as soon as it is sent, so that the audit never
    # waits on a full pipe while this process works on the block before.
    inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_read_into, args=(conn, inbox), daemon=True).start()

    def receive() -> Any:
        data = inbox.get()
        if data is None:
            raise EOFError
        return pickle.loads(data)

    keeper = StateKeeper()
    try:
        while True:
            message = receive()
            if message[0] == "update":
                conn.send(("root", keeper.update(message[1])))
            elif message[0] in ("nodes", "end"):
                stream = _received_nodes(receive, message)
                fault = keeper.nodes_fault(stream)
                for _ in stream:  # what was sent after the first fault, up to its end
                    pass
                conn.send(("verdict", fault))
            else:
                return
    except EOFError:
        return  # the audit went away
    except BaseException:
        conn.send(("failed", traceback.format_exc(limit=8)))
        raise


def _read_into(conn: Connection, inbox: queue.SimpleQueue[bytes | None]) -> None:
    try:
        while True:
            inbox.put(conn.recv_bytes())
    except (EOFError, OSError):
        inbox.put(None)


def _received_nodes(
    receive: Callable[[], Any], message: tuple[Any, ...]
) -> Iterator[tuple[bytes, bytes]]:
    """The stored nodes of ("nodes", entries) messages, from `message` to ("end",)."""
    while message[0] == "nodes":
        yield from message[1]
        message = receive()


class StateProcess:
    """The audit's state tree in a worker process (a ledger.audit.StateRoots): the leaves of each
    block are sent as it is re-executed, and its root read back a few blocks later."""

    def __init__(self) -> None:
        context = _pool_context()
        self._conn, child = context.Pipe()
        self.process = context.Process(  # type: ignore[attr-defined]  # every context has one
            target=_keep_state, args=(child,), name="kpledger-audit-state", daemon=True
        )
        self.process.start()
        child.close()

    def _lost(self, exc: BaseException | None = None) -> AuditWorkerLost:
        self.process.join(timeout=1)
        return AuditWorkerLost(
            f"the audit's state tree process ended (exit code {self.process.exitcode})"
            + (f": {exc}" if exc is not None else "")
        )

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:  # BrokenPipeError: it died
            raise self._lost() from exc

    def _receive(self, kind: str) -> Any:
        try:
            answer = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._lost() from exc
        if answer[0] != kind:
            raise AuditWorkerLost(f"the audit's state tree process failed: {answer[1]}")
        return answer[1]

    def submit(self, leaves: dict[bytes, bytes]) -> None:
        self._send(("update", leaves))

    def next_root(self) -> bytes:
        root: bytes = self._receive("root")
        return root

    def nodes_fault(self, stored: Iterable[tuple[bytes, bytes]]) -> str | None:
        entries = iter(stored)
        while chunk := list(itertools.islice(entries, _NODES_A_MESSAGE)):
            self._send(("nodes", chunk))
        self._send(("end",))
        fault: str | None = self._receive("verdict")
        return fault

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self._conn.send(("stop",))
            except OSError:
                pass
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()

    def __enter__(self) -> StateProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def verify_chain_parallel(
    store: Store,
    genesis: Genesis,
    *,
    workers: int = 1,
    progress: Progress | None = None,
    check_derived: bool = True,
) -> AuditReport:
    """`ledger.audit.verify_chain`, its signature checks over `workers` processes and its state
    tree in one more when more than one (one: all in this process). A worker that crashes or is
    killed raises AuditWorkerLost: the audit then has no verdict."""
    if workers <= 1:
        return verify_chain(store, genesis, progress=progress, check_derived=check_derived)
    with ProcessPool(workers) as pool, StateProcess() as state:
        return verify_chain(
            store, genesis, progress=progress, check_derived=check_derived, pool=pool, state=state
        )
