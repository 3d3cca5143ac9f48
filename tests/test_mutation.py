"""tools/mutation.py's own arithmetic (the random draw of mutants, the counts and the score's interval), and the
lines it adds to the scratch copy's conftest.py.

The mutation runs themselves take minutes to hours and need mutmut, so they are not run here.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from tools import mutation


def _names(n):
    return [f"autoenc_helpers.checks.x_check_psnr__mutmut_{i}" for i in range(1, n + 1)]


def test_the_draw_is_a_repeatable_subset_of_the_asked_size_and_differs_between_modules():
    names = _names(1000)
    drawn = mutation.draw(names, 40, "checks")
    assert len(drawn) == len(set(drawn)) == 40 and set(drawn) <= set(names)
    assert drawn == mutation.draw(list(reversed(names)), 40, "checks")          # the order given does not matter
    assert drawn != mutation.draw(names, 40, "widgets")
    assert drawn != sorted(names)[:40]                                          # drawn, not the first ones


def test_a_module_with_no_more_mutants_than_the_sample_runs_them_all():
    names = _names(30)
    assert mutation.draw(names, 30, "noise") == sorted(names)
    assert mutation.draw(names, 400, "noise") == sorted(names)


def test_counts_take_only_the_drawn_mutants_and_call_an_unknown_verdict_suspicious():
    verdicts = {"a": "killed", "b": "survived", "c": "timeout", "d": "no tests", "e": "killed", "f": "segfault",
                "g": "something new"}
    stats = mutation.count(verdicts, ["a", "b", "c", "d", "f", "g", "h"])
    assert (stats["killed"], stats["survived"], stats["timeout"], stats["no_tests"]) == (1, 1, 1, 1)
    assert (stats["segfault"], stats["suspicious"], stats["not_checked"], stats["total"]) == (1, 1, 1, 7)
    assert mutation.score(stats) == pytest.approx(50.0)                         # (1 + 1) / (1 + 1 + 1 + 1)


def test_the_interval_is_wilsons_and_narrows_with_the_sample():
    low, high = mutation.interval(380, 400)                                     # 95%: worked by hand
    assert low == pytest.approx(92.40, abs=0.01) and high == pytest.approx(96.74, abs=0.01)
    wide, narrow = mutation.interval(38, 40), mutation.interval(3800, 4000)
    assert wide[0] < low < narrow[0] < 95.0 < narrow[1] < high < wide[1]
    assert mutation.interval(400, 400)[1] == pytest.approx(100.0) and mutation.interval(400, 400)[0] > 99.0
    assert mutation.interval(0, 0) == (0.0, 100.0)


# A process forked from the runner dies holding tqdm's lock (a mutant stopped for its time while a bar redrew);
# then another forked process makes a bar, as every fit() does (even with progress=False).
_DEAD_HOLDER = textwrap.dedent("""
    import os, time
    from tqdm.auto import tqdm
    tqdm.get_lock()                                  # the runner's clean run has made bars: the lock exists
    pid = os.fork()
    if pid == 0:
        tqdm.get_lock().acquire()
        os._exit(0)
    os.waitpid(pid, 0)
    pid = os.fork()
    if pid == 0:
        tqdm(total=3, disable=True).close()
        os._exit(0)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            print("made a bar")
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        print("blocked")
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="mutmut forks its mutants; this needs os.fork")
def test_a_mutant_that_dies_holding_tqdms_lock_does_not_block_the_next_mutants_bars():
    """mutmut forks every mutant from one runner. tqdm's default lock is a multiprocessing semaphore all those
    processes share, so one mutant stopped while a bar held it blocked every later fit() until its time ran out
    (a false kill). The scratch conftest gives tqdm a lock of each process's own."""
    script = mutation.CONFTEST_EXTRA + _DEAD_HOLDER
    env = dict(os.environ, AUTOENC_SMOKE="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip() == "made a bar", out.stdout + out.stderr
    # and without those lines the next bar is blocked: what the test guards against
    bare = subprocess.run([sys.executable, "-c", _DEAD_HOLDER], capture_output=True, text=True, timeout=120, env=env)
    assert bare.stdout.strip() == "blocked", bare.stdout + bare.stderr
