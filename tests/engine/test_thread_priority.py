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
