"""The audit's worker processes: the pool that checks signatures ahead of re-execution.

ledger/audit.py owns the audit and the pure per-block check (`first_bad_signature`); this
module only runs that check in other processes, `verify_chain`'s `pool`.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

from ledger.audit import AuditReport, Progress, SignatureCheck, first_bad_signature, verify_chain
from ledger.genesis import Genesis
from ledger.store import Store


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not fork: the parent holds LevelDB's threads and file handles, which a forked child would
    # inherit mid-flight. A fork server starts clean and is quick to fork from.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessPool:
    """`workers` processes checking one block's signatures each (a ledger.audit.SignaturePool)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("an audit needs at least one worker")
        self.workers = workers
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context())

    def submit(self, checks: list[SignatureCheck]) -> Future[int]:
        return self._executor.submit(first_bad_signature, checks)

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


def verify_chain_parallel(
    store: Store,
    genesis: Genesis,
    *,
    workers: int = 1,
    progress: Progress | None = None,
    check_derived: bool = True,
) -> AuditReport:
    """`ledger.audit.verify_chain`, its signature checks over `workers` processes when more
    than one (one: all in this process)."""
    if workers <= 1:
        return verify_chain(store, genesis, progress=progress, check_derived=check_derived)
    with ProcessPool(workers) as pool:
        return verify_chain(
            store, genesis, progress=progress, check_derived=check_derived, pool=pool
        )
