"""The committed notebooks: outputs made by a full run of the current code, and no stored errors.

The notebooks themselves are executed by nbval in smoke mode (README's test command).
"""

import shutil

import nbformat
import pytest

from tools import notebooks

NOTEBOOKS = sorted(notebooks.NOTEBOOK_DIR.glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_vanilla_autoencoder.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_current_and_clean(path):
    assert notebooks.problems(path) == []


@pytest.fixture
def executed_copy(tmp_path):
    path = tmp_path / "copy.ipynb"
    shutil.copy(NOTEBOOKS[0], path)
    return path


def test_changed_code_is_detected(executed_copy):
    nb = nbformat.read(executed_copy, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.source += "\nEPOCHS = 1"
    nbformat.write(nb, executed_copy)
    assert any("code cells changed" in p for p in notebooks.problems(executed_copy))


def test_markdown_and_outputs_do_not_change_the_digest(executed_copy):
    nb = nbformat.read(executed_copy, as_version=4)
    before = notebooks.code_digest(nb)
    next(c for c in nb.cells if c.cell_type == "markdown").source += " (edited)"
    next(c for c in nb.cells if c.cell_type == "code").outputs = []
    assert notebooks.code_digest(nb) == before


def test_stored_error_is_detected(executed_copy):
    nb = nbformat.read(executed_copy, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[]))
    nbformat.write(nb, executed_copy)
    assert any("stores an error: ValueError: boom" in p for p in notebooks.problems(executed_copy))


def test_smoke_outputs_and_reordered_runs_are_detected(executed_copy):
    nb = nbformat.read(executed_copy, as_version=4)
    nb.metadata["autoenc"]["mode"] = "smoke"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    code_cells[0].execution_count, code_cells[1].execution_count = 2, 1
    nbformat.write(nb, executed_copy)
    found = notebooks.problems(executed_copy)
    assert any("'smoke' run" in p for p in found)
    assert any("not 1..n" in p for p in found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_template(path):
    """Title and Colab badge; one setup cell with the Colab branch; a settings cell whose knobs use ah.pick."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "colab.research.google.com/github/" in first.source and f"notebooks/{path.name}" in first.source
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert '"google.colab" in sys.modules' in code[0] and "import autoenc_helpers as ah" in code[0]
    assert "ah.set_seed(" in code[0]
    assert "ah.pick(full=" in code[1] and "ah.get_device(" in code[1]
    for source in code:   # only the package reads the environment
        assert "os.environ" not in source and "AUTOENC_" not in source
        assert ".cuda()" not in source, "models and data go to DEVICE, never to a hard-coded GPU"


def test_check_reports_a_broken_notebook_in_one_line_and_checks_the_rest(tmp_path, capsys):
    (tmp_path / "01_broken.ipynb").write_text("{not json")
    (tmp_path / "02_missing_keys.ipynb").write_text('{"nbformat": 4}')
    shutil.copy(NOTEBOOKS[0], tmp_path / NOTEBOOKS[0].name)
    code = notebooks.main(["check", *map(str, sorted(tmp_path.glob("*.ipynb")))])
    out = capsys.readouterr().out
    assert code == 1
    assert "01_broken.ipynb: \n  - cannot be read as a notebook (NotJSONError" in out
    assert "02_missing_keys.ipynb:" in out and f"{NOTEBOOKS[0].name}:" in out
    assert "Traceback" not in out


# -- every staleness check, on a crafted notebook -----------------------------------------------------------------


def _edited(executed_copy, edit):
    nb = nbformat.read(executed_copy, as_version=4)
    edit(nb)
    nbformat.write(nb, executed_copy)
    return notebooks.problems(executed_copy)


def _first_code(nb):
    return next(c for c in nb.cells if c.cell_type == "code")


def test_a_traceback_printed_to_stderr_is_detected(executed_copy):
    found = _edited(executed_copy, lambda nb: _first_code(nb).outputs.append(nbformat.v4.new_output(
        "stream", name="stderr", text="Traceback (most recent call last):\n  ValueError: boom\n")))
    assert any("printed a traceback to stderr" in p for p in found)


def test_another_kernel_is_detected(executed_copy):
    found = _edited(executed_copy, lambda nb: nb.metadata["kernelspec"].update(name="python3-custom"))
    assert "kernelspec name is not 'python3'" in found


@pytest.mark.parametrize("path", ["/home/alice/course/data", "/Users/bob/autoenc", "/tmp/autoenc-run-x1/checkpoints",
                                  "/content/data/checkpoints", "/root/.cache/x", "C:\\Users\\carol\\course"])
def test_a_path_of_another_machine_in_an_output_is_detected(executed_copy, path):
    found = _edited(executed_copy, lambda nb: _first_code(nb).outputs.append(
        nbformat.v4.new_output("stream", name="stdout", text=f"saved to {path}\n")))
    assert any("shows a path of some machine" in p for p in found), found


def test_a_solution_whose_check_failed_is_detected(executed_copy):
    def fail(nb):
        cell = next(c for c in nb.cells if "solution" in c.metadata.get("tags", []))
        failed = "❌ vae_loss: 2 of 5 hidden tests failed.\n"
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=failed)]
    assert any("worked solution whose check did not pass" in p for p in _edited(executed_copy, fail))


@pytest.mark.parametrize("smoke", [True, False])
def test_execute_records_the_mode_and_the_digest_of_what_ran(tmp_path, smoke):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 · probe\n\n**Study time:** about 5 minutes."),
                nbformat.v4.new_code_cell("import autoenc_helpers as ah\nprint('smoke' if ah.SMOKE else 'full')")]
    path = tmp_path / "99_probe.ipynb"
    nbformat.write(nb, path)
    notebooks.execute(path, smoke=smoke, timeout=120)
    ran = nbformat.read(path, as_version=4)
    meta = ran.metadata["autoenc"]
    assert meta["mode"] == ("smoke" if smoke else "full")
    assert ran.cells[1].outputs[0]["text"].strip() == meta["mode"]          # the kernel really ran in that mode
    assert meta["code_digest"] == notebooks.code_digest(ran)
    assert ("**Computing time:**" in ran.cells[0].source) is (not smoke)   # only a full run writes its time
