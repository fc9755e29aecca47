"""The service's garbage-collector settings: applied while serving, restored after."""

from __future__ import annotations

import gc
import weakref

from engine.live.gc_policy import SERVING_THRESHOLD, serving_gc


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_serving_freezes_the_start_up_heap_and_restores_the_settings_after() -> None:
    before = gc.get_threshold()
    with serving_gc():
        assert gc.get_threshold() == (SERVING_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_overlapping_scopes_ending_out_of_order_restore_the_first_settings() -> None:
    before = gc.get_threshold()
    first, second = serving_gc(), serving_gc()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == SERVING_THRESHOLD  # the second service still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_while_serving_are_still_collected() -> None:
    with serving_gc():
        first = weakref.ref(_Node())
        assert first() is not None  # a cycle: reference counting alone never frees it
        for _ in range(2 * SERVING_THRESHOLD):
            _Node()
        assert first() is None


def test_disabled_leaves_the_collector_as_it_is() -> None:
    before = gc.get_threshold()
    with serving_gc(enabled=False):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
