"""CPU used by other processes: parsing /proc, summing a process tree, the meter's arithmetic."""

from __future__ import annotations

import math

import pytest

from sloscale_runtime import neighbours

PROC_STAT = "cpu  100 5 50 1000 20 1 2 30 0 0\ncpu0 50 2 25 500 10 0 1 15 0 0\n"


def test_machine_busy_ticks_leave_out_idle_and_iowait_but_count_steal() -> None:
    assert neighbours.machine_busy_ticks(PROC_STAT) == 100 + 5 + 50 + 1 + 2 + 30


def test_parse_pid_stat_survives_a_name_with_spaces_and_parentheses() -> None:
    text = "4242 (tritonserver (py) x) S 77 4242 4242 0 -1 4194560 1 0 0 0 130 25 0 0 20 0 9"
    assert neighbours.parse_pid_stat(text) == (77, 155)


def test_tree_ticks_sum_a_process_and_all_its_descendants() -> None:
    stats = {1: (0, 1000), 10: (1, 5), 11: (10, 7), 12: (11, 11), 20: (1, 100)}
    assert neighbours.tree_ticks(10, stats) == 5 + 7 + 11
    assert neighbours.tree_ticks(99, stats) == 0


def test_other_cpu_is_the_machines_busy_time_less_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter([(0.0, 1000, 300), (2.0, 1000 + 400, 300 + 150)])
    meter = neighbours.OtherCpu()
    monkeypatch.setattr(meter, "_sample", lambda: next(samples))
    monkeypatch.setattr(neighbours, "clock_ticks", lambda: 100)
    meter.start()
    assert meter.cores() == pytest.approx((400 - 150) / 100 / 2.0)


def test_other_cpu_is_nan_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = neighbours.OtherCpu()
    monkeypatch.setattr(meter, "_sample", lambda: None)
    assert math.isnan(meter.start().cores())


def test_other_cpu_reads_this_machine() -> None:
    cores = neighbours.OtherCpu().start().cores()
    assert math.isnan(cores) or cores >= 0.0
