"""The repository's promises: README's test command is what CI runs, versions are ranges, data stays out."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


VENV = "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt -e . && "


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"^python3 -m venv .*$", readme, re.M)


def _test_command_in_readme() -> str:
    commands = [c for c in _readme_commands() if "pytest" in c]
    assert len(commands) == 1, "README states exactly one test command"
    return commands[0]


def test_the_quick_start_is_two_commands_in_a_virtual_environment():
    """Debian 12 and Ubuntu 24.04 refuse pip into the system Python (PEP 668): both commands make a venv first."""
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert all(c.startswith(VENV) for c in commands), commands
    assert commands[0].endswith("jupyter lab notebooks/01_vanilla_autoencoder.ipynb")
    assert (ROOT / "notebooks" / "01_vanilla_autoencoder.ipynb").exists()


def test_ci_runs_readmes_test_command():
    """CI runs the test command verbatim, virtual environment and install included, so the quick start is tested."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert _test_command_in_readme() in ci.splitlines()
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
    files += sorted((ROOT / "benchmarks").glob("*.md"))
    return files + [p for p in (ROOT / "README.md", ROOT / "CONTRIBUTING.md") if p.exists()]


def test_no_learner_text_names_the_reference_articles_by_their_internal_labels():
    pattern = re.compile(r"seed 00\d|the course sources", re.I)
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in _learner_files()
             for m in pattern.finditer(p.read_text(encoding="utf-8", errors="replace"))]
    assert not found, "cite papers and public code a learner can open: " + "; ".join(found[:10])


def test_readme_lists_every_lesson_with_its_study_time():
    """The lesson table is where a newcomer starts: one row per notebook, with the study time its header states."""
    import nbformat
    from autoenc_helpers import notebooks

    readme = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| \d\d \| \[[^\]]*\]\(notebooks/([^)]+\.ipynb)\).*$",
                                                       readme, re.M)}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert path.name in rows, f"README's lesson table has no row for {path.name}"
        match = notebooks.STUDY_TIME.search(nbformat.read(path, as_version=4).cells[0].source)
        if match:
            assert rows[path.name].rstrip(" |").endswith(f"{match.group('minutes')} min"), \
                f"README's row for {path.name} should end with its header's study time, {match.group('minutes')} min"
    assert len(rows) == len(list((ROOT / "notebooks").glob("*.ipynb"))), "a README row for a notebook that is gone"
