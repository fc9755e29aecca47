"""The garbage collector's settings while the service runs.

CPython's cyclic collector runs its youngest generation every 700 net allocations of tracked
objects and, every so often, the whole heap. A fetch of 20,000 messages allocates far more than
that, and the records it holds live through the batch, so they are scanned again and again and
promoted into full collections that also walk every object the service loaded at start
(universe, reference data, modules). Nearly all of it is freed by reference counting anyway:
the batch data holds no cycles. So while serving, the start-up heap is frozen out of
collections and the youngest generation's threshold raised; both are restored on exit.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

SERVING_THRESHOLD = 50_000
"""Net tracked allocations between young collections while serving (CPython's default: 700)."""


class ServingGc:
    """The policy for one process's collector: the services serving under it, and the settings
    found when the first of them started (the collector is process-wide: ``serving_gc`` uses
    one instance per process)."""

    def __init__(self) -> None:
        self.active = 0
        self.saved = gc.get_threshold()

    @contextmanager
    def scope(self, enabled: bool = True) -> Iterator[None]:
        """Freeze the heap built so far and collect young objects less often, until exit.

        Overlapping scopes (several services in one process, ending in any order) share the
        policy: the first applies it, the last restores what the first found and unfreezes the
        heap (also objects frozen before by someone else). Start-up objects that become cyclic
        garbage while serving are only collected after that.

        Parameters
        ----------
        enabled : bool
            False leaves the collector as it is (``--no-tune-gc``).
        """
        if not enabled:
            yield
            return
        if self.active == 0:
            self.saved = gc.get_threshold()
            gc.set_threshold(SERVING_THRESHOLD, *self.saved[1:])
        self.active += 1
        try:
            gc.collect()
            gc.freeze()
            yield
        finally:
            self.active -= 1
            if self.active == 0:
                gc.set_threshold(*self.saved)
                gc.unfreeze()


_PROCESS_POLICY = ServingGc()


def serving_gc(enabled: bool = True) -> AbstractContextManager[None]:
    """This process's ``ServingGc.scope``: the policy while a service runs, shared by all.

    Parameters
    ----------
    enabled : bool
        False leaves the collector as it is (``--no-tune-gc``).
    """
    return _PROCESS_POLICY.scope(enabled)
