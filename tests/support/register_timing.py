"""Times registering securities one call at a time (prints figures; asserts nothing).

Run: ``.venv/bin/python -m tests.support.register_timing [--count N]``. Figures:

- ``pipeline``: N new codes, one ``IndexPipeline.register_securities`` call each, on the
  built-in universe;
- ``control``: N ``add_constituent`` events, one ``ControlChannel.receive`` call (one fetch)
  each, and how much of that time ``register_securities`` took;
- ``per call at n``: the mean cost of one single-code registration once n codes are registered.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable

import msgspec

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.live.control import ControlChannel
from engine.live.kafka.fetch import FetchedRecord
from engine.maintenance.event_queue import EventLimits
from engine.maintenance.events import AddConstituent
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe

T = 1_795_138_200_000_000_000
DAY = 86_400 * 10**9


class _Discard:
    def write(self, levels: LevelColumns) -> None:
        del levels


def _pipeline() -> IndexPipeline:
    return IndexPipeline(IndexCalculator(load_builtin_universe()), _Discard())


def time_pipeline(count: int) -> float:
    """Seconds to register ``count`` codes one ``register_securities`` call at a time."""
    pipeline = _pipeline()
    codes = [f"N{k:06d}" for k in range(count)]
    start = time.perf_counter()
    for code in codes:
        pipeline.register_securities([code])
    return time.perf_counter() - start


def time_control(count: int) -> tuple[float, float]:
    """Seconds for ``count`` one-event fetches, and the part spent in ``register_securities``."""
    pipeline = _pipeline()
    limits = EventLimits(max_pending=count + 1, max_pending_bytes=1 << 30)
    channel = ControlChannel(pipeline, "json", limits, wall_clock=lambda: T)
    spent = [0.0]
    register = pipeline.register_securities

    def timed_register(codes: Iterable[str]) -> None:
        start = time.perf_counter()
        register(codes)
        spent[0] += time.perf_counter() - start

    pipeline.register_securities = timed_register  # type: ignore[method-assign]
    fetches = [
        [
            FetchedRecord(
                "control",
                0,
                k,
                b"HSI",
                msgspec.json.encode(
                    AddConstituent(
                        effective=T + DAY,
                        index="HSI",
                        security=f"N{k:06d}",
                        issued_shares=1e9,
                        faf=0.5,
                        price=10.0,
                        id=f"add-{k}",
                    )
                ),
            )
        ]
        for k in range(count)
    ]
    start = time.perf_counter()
    for records in fetches:
        letters = channel.receive(records, "dlq")
        assert not letters, letters[0].headers
    return time.perf_counter() - start, spent[0]


def per_call_at(registered: int, calls: int) -> float:
    """Mean seconds of one single-code registration with ``registered`` codes already in."""
    pipeline = _pipeline()
    pipeline.register_securities([f"B{k:07d}" for k in range(registered)])
    codes = [f"S{k:06d}" for k in range(calls)]
    start = time.perf_counter()
    for code in codes:
        pipeline.register_securities([code])
    return (time.perf_counter() - start) / calls


def main(argv: list[str] | None = None) -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args(argv)
    seconds = time_pipeline(args.count)
    print(f"pipeline: {seconds:.3f} s for {args.count} calls", flush=True)
    seconds, registering = time_control(args.count)
    print(
        f"control: {seconds:.3f} s for {args.count} fetches, "
        f"of which register_securities {registering:.3f} s",
        flush=True,
    )
    for registered in (10_000, 100_000):
        cost = per_call_at(registered, args.calls)
        print(f"per call at {registered}: {cost * 1e6:.1f} us", flush=True)


if __name__ == "__main__":
    main()
