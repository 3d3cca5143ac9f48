"""The repository's promises: README's test command is what CI runs, versions are ranges, data stays out."""

import re
import shutil
from pathlib import Path

import pytest

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
    from tools import notebooks

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


def test_readme_lesson_table_is_the_one_tools_lessons_writes():
    """Titles and study times come from the notebooks, what each teaches from tools/lessons.py: one place each."""
    from tools import lessons

    readme = (ROOT / "README.md").read_text()
    between = readme.split(lessons.BEGIN, 1)[1].split(lessons.END, 1)[0]
    assert between.strip() == lessons.readme_table(), "run `python3 tools/notebooks.py readme` and commit README.md"


def test_the_readme_command_rewrites_a_stale_table_and_names_a_notebook_without_a_row(tmp_path, monkeypatch):
    from tools import lessons

    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace("| 60 min |", "| 59 min |")
    assert stale != readme
    (tmp_path / "README.md").write_text(stale)
    assert lessons.write_readme(tmp_path) is True
    assert (tmp_path / "README.md").read_text() == readme
    assert lessons.write_readme(tmp_path) is False
    shutil.copy(ROOT / "notebooks" / "05_reparameterization_trick.ipynb", tmp_path / "notebooks" / "13_new.ipynb")
    with pytest.raises(ValueError, match="no row for 13_new"):
        lessons.write_readme(tmp_path)
    (tmp_path / "notebooks" / "13_new.ipynb").unlink()
    (tmp_path / "notebooks" / "12_distributed_training.ipynb").unlink()
    with pytest.raises(ValueError, match="no notebook for 12_distributed_training"):
        lessons.readme_table(tmp_path)


def test_the_package_holds_only_what_lessons_import():
    """The maintainers' tooling lives in tools/ and benchmarks/, never in the installed package."""
    import ast

    package = ROOT / "autoenc_helpers"
    modules = {p.stem for p in package.glob("*.py")} - {"__init__"}

    def imported_by(name: str) -> set[str]:
        """The package's modules that ``name`` imports (``from . import x``, ``from .x import y``)."""
        tree = ast.parse((package / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module} if node.module else {alias.name for alias in node.names}
        return found & modules

    reached, todo = set(), ["__init__"]
    while todo:                                     # what `import autoenc_helpers` loads, followed through
        for name in imported_by(todo.pop()) - reached:
            reached.add(name)
            todo.append(name)
    assert modules == reached, f"modules `import autoenc_helpers` never loads: {sorted(modules - reached)}"
    for path in sorted(package.glob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) (tools|benchmarks)\b", text, re.M), f"{path.name} imports the tooling"
    assert not {"notebooks", "benchmark"} & modules


def test_test_files_are_named_after_what_they_test():
    """tests/test_<module>[_<topic>].py: a package module, a tool, or one of the course-wide concerns."""
    modules = {p.stem for p in (ROOT / "autoenc_helpers").glob("*.py")} - {"__init__"}
    tools = {p.stem for p in (ROOT / "tools").glob("*.py")} | {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    concerns = {"browser", "colab", "gpu", "repository", "baselines"}   # the course as a whole, and tests/baselines.py
    strays = [p.name for p in (ROOT / "tests").glob("test_*.py")
              if p.stem.removeprefix("test_").split("_")[0] not in modules | tools | concerns]
    assert not strays, f"name these after the module they test: {strays}"
