"""What the gateway load benchmark reads of the gateway process: memory, CPU and metrics."""

from __future__ import annotations

import os
from pathlib import Path


def process_memory(pid: int) -> tuple[int, int]:
    """(resident, peak resident) bytes of process ``pid`` (Linux ``/proc``; zeros elsewhere)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    kb = {
        line.split(":")[0]: int(line.split()[1]) * 1024
        for line in status.splitlines()
        if line.startswith(("VmRSS:", "VmHWM:"))
    }
    return kb.get("VmRSS", 0), kb.get("VmHWM", 0)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_value(text: str, name: str, value: str, *, label: str = "reason") -> int:
    """The value of series ``name{label="value"}`` in a Prometheus text exposition (0: absent)."""
    prefix = f'{name}{{{label}="{value}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return int(float(line[len(prefix) :]))
    return 0
