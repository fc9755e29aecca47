"""Append-only numpy arrays grown in amortised O(k) for k new elements.

Per-security state grows whenever securities are registered, often one at a time: copying the
whole array on every append (``np.append``) would make each registration O(universe).
"""

from __future__ import annotations

import weakref
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

ScalarT = TypeVar("ScalarT", bound=np.generic)

MIN_CAPACITY = 64

# Buffers allocated here, by id: only their prefix views may grow in place.
_buffers: weakref.WeakValueDictionary[int, NDArray[Any]] = weakref.WeakValueDictionary()


def appended(array: NDArray[ScalarT], count: int, fill: float) -> NDArray[ScalarT]:
    """``np.append(array, [fill] * count)``, in amortised O(count).

    The result is a writable prefix view of a buffer with room to spare (capacity doubles), so
    appending to it again writes into the spare room instead of copying. Views taken earlier
    keep their length and values. Only the owner of the state may append to it: two appends to
    the same view would share the spare room. Read-only views (``flags.writeable`` False) are
    always copied.

    Parameters
    ----------
    array : ndarray
        One-dimensional.
    count : int
        Elements to append, at least 0.
    fill : float
        Value of the appended elements.
    """
    size = array.size
    owned = _buffers.get(id(array.base))
    if (
        owned is not None  # then it is ``array.base``: ids are unique among live objects
        and array.flags.writeable
        and array.flags.c_contiguous
        and array.dtype == owned.dtype
        and owned.size >= size + count
        and array.__array_interface__["data"][0] == owned.__array_interface__["data"][0]
    ):
        grown: NDArray[ScalarT] = owned[: size + count]
    else:
        buffer = np.empty(max(2 * (size + count), MIN_CAPACITY), dtype=array.dtype)
        _buffers[id(buffer)] = buffer
        buffer[:size] = array
        grown = buffer[: size + count]
    grown[size:] = fill
    return grown
