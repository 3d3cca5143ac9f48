"""The repository's promises: README's test command is what CI runs, versions are ranges, data stays out."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _test_command_in_readme() -> str:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^pip install -r requirements.txt -e \. && (AUTOENC_SMOKE=1 .*pytest.*)$", readme, re.M)
    assert len(commands) == 1, "README states exactly one test command"
    return commands[0]


def test_ci_runs_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _test_command_in_readme() in ci.splitlines()
    assert "pip install -q -r requirements.txt -e ." in ci
    assert "apt-get install -y -qq dataset-fashion-mnist" in ci
    install = next(ln.split() for ln in ci.splitlines() if "apt-get install -y -qq dataset-fashion-mnist" in ln)
    assert "chromium" in install, "CI installs the browser that tests/test_browser.py needs"


def test_requirements_are_ranges_not_pins():
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    assert {"torch>=2.4", "torchvision>=0.19"} <= set(lines)
    assert any(ln.startswith("playwright>=") for ln in lines), "the browser test's driver"
    assert not [ln for ln in lines if "==" in ln], "exact pins would replace Colab's own torch"


def test_downloads_are_not_committed():
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "data/*" in ignore and "!data/README.md" in ignore
    assert "browser-failures/" in ignore, "screenshots and logs of a failed browser test"


def _learner_files():
    """What a learner reads: the notebooks, the package, README and the contributors' guide."""
    files = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "autoenc_helpers").rglob("*.py"))
    return files + [p for p in (ROOT / "README.md", ROOT / "CONTRIBUTING.md") if p.exists()]


def test_no_learner_text_names_the_reference_articles_by_their_internal_labels():
    pattern = re.compile(r"seed 00\d|the course sources", re.I)
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in _learner_files()
             for m in pattern.finditer(p.read_text(encoding="utf-8", errors="replace"))]
    assert not found, "cite papers and public code a learner can open: " + "; ".join(found[:10])
