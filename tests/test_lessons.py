"""What every lesson promises a learner, read off the committed notebook (no execution).

- a header with the study time (written by the author, at most 75 minutes) and the computing time
  (written by the run that made the outputs, matching the time it recorded);
- claims that the run checks (``ah.expect``), and no wall time written by hand in the prose;
- at least one checked exercise, whose worked solution is hidden in JupyterLab (``source_hidden``)
  and on Colab (a form cell, ``#@title``), and asserts that the check accepts it;
- "What to take away" and a References list at the end.
"""

import re

import nbformat
import pytest

from tools import notebooks

NOTEBOOKS = sorted(notebooks.NOTEBOOK_DIR.glob("*.ipynb"))
MAX_STUDY_MINUTES = 75

# A wall time written by hand: "35 s", "about 2 minutes", "a minute and a half", "10 seconds".
HAND_WRITTEN_TIME = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:s|sec|secs|seconds?|min|mins|minutes?)\b(?![-\w])"
    r"|\b(?:a|one|two|three|four|five|ten|half a|a few) (?:minutes?|seconds?)\b"
    r"|\ba minute and a half\b",
    re.I)


def _read(path):
    return nbformat.read(path, as_version=4)


def _markdown(nb):
    return [c for c in nb.cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_header_states_study_time_and_the_measured_computing_time(path):
    nb = _read(path)
    first = nb.cells[0].source
    match = notebooks.STUDY_TIME.search(first)
    assert match, "the first cell needs a line '**Study time:** about N minutes.' (the run adds the computing time)"
    assert int(match["minutes"]) <= MAX_STUDY_MINUTES, f"a lesson fits one sitting: at most {MAX_STUDY_MINUTES} minutes"
    meta = nb.metadata.get("autoenc", {})
    expected = notebooks.computing_time(meta.get("seconds", -1), meta.get("threads", 0))
    assert (match["computing"] or "").strip() == expected, (
        "the computing time is written by `python3 tools/notebooks.py run`, from the run's own clock")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_wall_time_is_written_by_hand(path):
    found = []
    for i, cell in enumerate(_markdown(_read(path))):
        text = notebooks.STUDY_TIME.sub("", cell.source)
        text = re.sub(r"\$[^$]*\$", "", text)                      # formulas: $s$ is a stride, not seconds
        found += [f"markdown cell {i}: {m.group(0)!r}" for m in HAND_WRITTEN_TIME.finditer(text)]
    assert not found, "wall times come from the run (print them), never from the prose: " + "; ".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_claims_are_checked_by_the_run(path):
    code = "\n".join(c.source for c in _read(path).cells if c.cell_type == "code")
    assert re.search(r"\bah\.expect\(", code), "a lesson's measured claims are checked with ah.expect"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_are_checked_and_solutions_hidden_everywhere(path):
    nb = _read(path)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    exercises = [c for c in nb.cells if c.cell_type == "code" and "solution" not in c.metadata.get("tags", [])
                 and "ah.checks.check_" in c.source]
    assert exercises, "at least one exercise whose answer a check function tests"
    assert solutions, "every checked exercise has a worked solution"
    for cell in solutions:
        assert cell.cell_type == "code"
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, "hidden in JupyterLab"
        assert cell.metadata.get("cellView") == "form", "hidden on Colab (a form cell)"
        assert cell.source.startswith("#@title "), "a Colab form cell opens with #@title"
        assert re.search(r"^assert ah\.checks\.check_\w+\(", cell.source, re.M), (
            "a solution asserts that its check accepts it, so CI fails when it does not")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_lesson_ends_with_what_to_take_away_and_references(path):
    headings = [ln.strip() for c in _markdown(_read(path)) for ln in c.source.splitlines() if ln.startswith("## ")]
    assert "## What to take away" in headings
    assert headings[-1] == "## References", "the last section lists what the lesson cites"
    last = _markdown(_read(path))[-1].source
    assert len(re.findall(r"^\s*[-*\d.]+\s+\S", last, re.M)) >= 2, "references as a list a learner can follow"
