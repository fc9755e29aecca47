"""``tickindex bench --kafka --mechanisms``: the service with each speed mechanism on and off.

Per mechanism (``MECHANISMS``, each switched off by its ``ServiceConfig`` setting), the service
runs on the single-tick messages of the main run with it on and with it off, every other setting
as in that run, back to back and in alternating order, for ``mechanism_rounds`` rounds. The
fastest run of each side is compared: other load on the machine only ever slows a run down.
Every run has its own group and output topics (a run must not restore another's checkpoint).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from engine.live.config import ServiceConfig
from tickindex.bench.kafka_figures import (
    MECHANISMS,
    KafkaBenchSettings,
    MechanismFigures,
    ServiceFigures,
)

ConfigFactory = Callable[[str, dict[str, Any]], ServiceConfig]
"""Service settings of a run from its name and settings over the defaults (fresh topics)."""
TimeService = Callable[[ServiceConfig], Awaitable[ServiceFigures]]
"""Times one service run on the single-tick messages."""


class MechanismRuns:
    """The on/off runs of every mechanism (none unless ``settings.mechanisms``).

    Parameters
    ----------
    settings : KafkaBenchSettings
        ``mechanisms``, ``mechanism_rounds`` and the ``service`` settings of every run.
    make_config : callable
        Settings of a run from its name and settings over the defaults, on fresh topics.
    single : ServiceConfig
        The main single-tick run: its tick topic is read by every run.
    mechanisms : tuple of str, optional
        The settings switched on and off; default: ``MECHANISMS`` with ``settings.mechanisms``.
    rounds : int, optional
        On/off pairs per setting; default: ``settings.mechanism_rounds``.
    """

    def __init__(
        self,
        settings: KafkaBenchSettings,
        make_config: ConfigFactory,
        single: ServiceConfig,
        *,
        mechanisms: tuple[str, ...] | None = None,
        rounds: int | None = None,
    ) -> None:
        def run(setting: str, value: bool, number: int) -> ServiceConfig:
            state = "on" if value else "off"
            config = make_config(f"{single.group_id}-{setting}-{state}{number}", settings.service)
            return msgspec.structs.replace(config, tick_topic=single.tick_topic, **{setting: value})

        if mechanisms is None:
            mechanisms = MECHANISMS if settings.mechanisms else ()
        numbers = range(settings.mechanism_rounds if rounds is None else rounds)
        self.pairs = {
            setting: [(run(setting, True, n), run(setting, False, n)) for n in numbers]
            for setting in mechanisms
        }

    def configs(self) -> list[ServiceConfig]:
        """Every run's settings (to create and delete their topics)."""
        return [config for pairs in self.pairs.values() for pair in pairs for config in pair]

    async def time(self, time_service: TimeService) -> list[MechanismFigures]:
        """Time every pair, in alternating order; one ``MechanismFigures`` per mechanism."""
        figures = []
        for setting, pairs in self.pairs.items():
            on: list[ServiceFigures] = []
            off: list[ServiceFigures] = []
            for number, (with_it, without) in enumerate(pairs):
                if number % 2 == 0:
                    on.append(await time_service(with_it))
                    off.append(await time_service(without))
                else:
                    off.append(await time_service(without))
                    on.append(await time_service(with_it))
            best_on, best_off = (max(side, key=lambda run: run.ticks_per_s) for side in (on, off))
            figures.append(
                MechanismFigures(
                    setting,
                    best_on.ticks_per_s / best_off.ticks_per_s,
                    best_on,
                    best_off,
                    [run.ticks_per_s for run in on],
                    [run.ticks_per_s for run in off],
                )
            )
        return figures
