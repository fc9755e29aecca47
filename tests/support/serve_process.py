"""``tickindex serve`` as a subprocess for integration tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from tests.support.live import wait_until
from tests.support.paths import REPO


class ServeProcess:
    """One ``tickindex serve`` subprocess (output in ``log``), killed on leaving ``with``."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKINDEX_")}
        with log.open("wb") as handle:
            self.proc = subprocess.Popen(
                argv, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, env=env
            )

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_serving(self, timeout: float = 20.0) -> None:
        async def serving() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.output()}")
            return " serving " in self.output()

        await wait_until(serving, "the service to start", timeout)

    async def stop(self, signum: int, timeout: float = 15.0) -> int:
        """Send ``signum`` and wait for the exit code."""
        self.proc.send_signal(signum)
        return await asyncio.to_thread(self.proc.wait, timeout)
