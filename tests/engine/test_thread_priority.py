"""A training thread lowers its own priority only (engine.training.lower_thread_priority)."""

import os
import sys
import threading

import pytest

from engine.training import lower_thread_priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness belongs to each thread on Linux only")
def test_lower_thread_priority_changes_the_calling_thread_only():
    before = os.getpriority(os.PRIO_PROCESS, 0)
    seen = {}

    def work() -> None:
        lower_thread_priority(before + 3)
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, 0)
        inner = threading.Thread(target=lambda: seen.setdefault("started_by_worker", os.getpriority(os.PRIO_PROCESS, 0)))
        inner.start()
        inner.join()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == {"worker": before + 3, "started_by_worker": before + 3}
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


def test_zero_niceness_leaves_the_thread_alone():
    before = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None
    lower_thread_priority(0)
    if before is not None:
        assert os.getpriority(os.PRIO_PROCESS, 0) == before


def test_the_gui_threads_blas_runs_on_one_thread():
    """explorer.window.runtime.limit_blas_threads: a threaded OpenBLAS GEMM on the GUI thread spun beside the
    training team for 20–40 ms at each probe update."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from explorer.window.runtime import limit_blas_threads
    with threadpool_limits(limits=None):   # restored afterwards: the test process keeps its own
        limit_blas_threads()
        blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas)
