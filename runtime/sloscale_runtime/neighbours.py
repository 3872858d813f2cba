"""CPU used by other processes while we measure (Linux /proc): a busy machine explains a slow run.

A latency measured on a shared machine is only as good as the CPU the server had. This reads
the machine's busy time (/proc/stat) and our own process tree's (this process, the Triton it
started, the backend stubs Triton started), and reports the rest in cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")


def clock_ticks() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def machine_busy_ticks(proc_stat: str) -> int:
    """Busy clock ticks of all CPUs from /proc/stat's first line (all but idle and iowait)."""
    fields = [int(v) for v in proc_stat.split("\n", 1)[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4]


def parse_pid_stat(text: str) -> tuple[int, int]:
    """(parent pid, utime + stime ticks) from /proc/<pid>/stat; the name may hold spaces."""
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])


def tree_ticks(root_pid: int, stats: dict[int, tuple[int, int]]) -> int:
    """CPU ticks of a process and all its descendants, from {pid: (ppid, ticks)}."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        total += stats.get(pid, (0, 0))[1]
        pending.extend(children.get(pid, []))
    return total


def read_pid_stats() -> dict[int, tuple[int, int]]:
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = parse_pid_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue  # a process that ended while we read
    return stats


class OtherCpu:
    """Cores used by processes outside this one's tree between start() and cores().

    A process of ours that ends in between is counted as another's (its ticks leave the tree):
    the figure can only overstate the neighbours, never hide them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.began: tuple[float, int, int] | None = None

    def _sample(self) -> tuple[float, int, int] | None:
        try:
            busy = machine_busy_ticks((PROC / "stat").read_text())
            return self.clock(), busy, tree_ticks(os.getpid(), read_pid_stats())
        except OSError:  # no /proc: not Linux
            return None

    def start(self) -> OtherCpu:
        self.began = self._sample()
        return self

    def cores(self) -> float:
        """Mean cores used by others since start(); NaN where /proc cannot be read."""
        now = self._sample()
        if self.began is None or now is None or now[0] <= self.began[0]:
            return float("nan")
        other_ticks = (now[1] - self.began[1]) - (now[2] - self.began[2])
        return max(0.0, other_ticks / clock_ticks() / (now[0] - self.began[0]))
