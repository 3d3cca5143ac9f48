"""tools/mutation.py's own arithmetic: the random draw of mutants, the counts and the score's interval.

The mutation runs themselves take minutes to hours and need mutmut, so they are not run here.
"""

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
