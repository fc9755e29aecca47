"""Numpy arrays as raw little-endian bytes in checkpoint Structs, so they round-trip bitwise.

A JSON checkpoint cannot carry NaN in a list of floats (msgspec writes ``null``), and empty
ring-buffer slots and absent levels are NaN; raw bytes (base64 in JSON, ``bin`` in msgpack)
keep every bit, NaN payloads and signed zeros included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.analytics.errors import AnalyticsStateError


def pack(array: NDArray[Any]) -> bytes:
    """The array's elements as little-endian bytes, C order."""
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(little).tobytes()


def unpack(data: bytes, dtype: type[np.generic], shape: tuple[int, ...], what: str) -> NDArray[Any]:
    """A writable array of ``shape`` from ``pack``'s bytes.

    Raises
    ------
    AnalyticsStateError
        When the byte count does not match ``shape`` (``what`` names the field in the message).
    """
    little = np.dtype(dtype).newbyteorder("<")
    expected = little.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise AnalyticsStateError(
            f"captured {what} has {len(data)} bytes, expected {expected} for shape {shape}"
        )
    values = np.frombuffer(data, dtype=little).reshape(shape)
    return values.astype(np.dtype(dtype), copy=True)
