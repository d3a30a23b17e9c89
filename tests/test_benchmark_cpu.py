"""How the real-switch benchmark reads a process's CPU: the scheduler's
nanoseconds for a one-thread process, stat's ticks whenever they disagree."""

import subprocess
import sys

from benchmarks.run import TICKS, cpu_between, cpu_reading

TICK = 1 / TICKS


def test_the_schedulers_count_when_both_agree():
    assert cpu_between((1.00, 0.9973), (1.02, 1.0131)) == 1.0131 - 0.9973


def test_stats_ticks_when_a_thread_came_and_went_in_between():
    # 50 ms on stat's count, 3 ms on the one thread's: another thread's time.
    assert cpu_between((1.00, 0.998), (1.05, 1.001)) == 1.05 - 1.00


def test_stats_ticks_when_the_process_had_several_threads():
    assert cpu_between((1.00, None), (1.02, 1.013)) == 1.02 - 1.00
    assert cpu_between((1.00, 0.998), (1.02, None)) == 1.02 - 1.00


def _child(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(timeout=10)


def test_a_one_thread_process_is_read_to_the_nanosecond():
    proc = _child("import sys\nsum(range(3_000_000))\nprint('ready', flush=True)\nsys.stdin.read()")
    try:
        ticks, precise = cpu_reading(proc.pid)
        assert precise is not None and precise > 0
        assert abs(ticks - precise) <= 2 * TICK  # the same time, counted two ways
    finally:
        _stop(proc)


def test_a_process_with_two_threads_is_read_from_stat():
    proc = _child("import sys, threading\nt = threading.Thread(target=sys.stdin.read)\nt.start()\n"
                  "print('ready', flush=True)\nt.join()")
    try:
        assert cpu_reading(proc.pid)[1] is None
    finally:
        _stop(proc)
