"""The long-running processes' collector settings (`clarion.heap`) reach the CSV parsing
helpers: a spawned helper has settled its heap before its first task."""

from __future__ import annotations

import gc

from clarion import heap
from clarion.procs import worker_pool


def _collector_state() -> tuple[int, int]:
    return gc.get_freeze_count(), gc.get_threshold()[0]


def test_a_parsing_helper_starts_with_its_heap_settled() -> None:
    pool = worker_pool(1)
    try:
        frozen, young_threshold = pool.submit(_collector_state).result(timeout=60)
    finally:
        pool.shutdown()
    assert frozen > 0
    assert young_threshold == heap.YOUNG_THRESHOLD
