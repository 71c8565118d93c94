"""Where the cores went during a measurement: CPU time of named groups of processes and of
the whole machine (other work on it included), from /proc (Linux)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` used so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def family(pid: int) -> list[int]:
    """Process ``pid`` and its children (a server's worker processes)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [pid, *(int(child) for child in fh.read().split())]
    except FileNotFoundError:
        return [pid]


def machine_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of every core since boot."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


@dataclass
class Meter:
    """Started at construction; ``cores()``: the cores each group used on average since, and
    ``machine``: the machine's busy cores."""

    groups: dict[str, list[int]]
    _began: float = field(default_factory=time.monotonic, init=False)
    _start: dict[str, float] = field(default_factory=dict, init=False)
    _machine: tuple[float, float] = field(default_factory=machine_seconds, init=False)

    def __post_init__(self) -> None:
        self._start = {name: self._used(pids) for name, pids in self.groups.items()}

    @staticmethod
    def _used(pids: list[int]) -> float:
        return sum(process_seconds(pid) for pid in pids)

    def cores(self) -> dict[str, float]:
        wall = time.monotonic() - self._began
        found = {
            name: (self._used(pids) - self._start[name]) / wall
            for name, pids in self.groups.items()
        }
        busy, _ = machine_seconds()
        found["machine"] = (busy - self._machine[0]) / wall
        return found

    def line(self, others: dict[str, float] | None = None) -> str:
        """The cores of each group (and ``others``, measured elsewhere) and of the machine,
        for a report."""
        found = {**self.cores(), **(others or {})}
        machine = found.pop("machine")
        parts = [f"{name} {cores:.2f}" for name, cores in found.items()]
        return (
            f"cores used: {', '.join(parts)}; the whole machine {machine:.2f} of "
            f"{os.cpu_count()} (other work included)"
        )
